#!/usr/bin/env python3
"""End-to-end tests of examples/notes.c over sockets, with Python's http.client: the
notes API's answers, its declared inputs checked before the handlers (422 listing every
problem in FastAPI's shape, 400 for malformed JSON, 415 for a body that is not JSON,
404 for an id that is not an integer) and its /openapi.json.

usage: python3 tests/notes.py NOTES_BINARY

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import serve_example, summary, HOST, T, check, run_each, short  # noqa: E402

JSON = {"Content-Type": "application/json"}


class Notes:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=T(10))  # one keep-alive connection

    def call(self, method, path, body=None, headers=None):
        """(status, the body parsed as JSON or None, the Content-Type)."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        self.conn.request(method, path, body=body, headers=JSON if headers is None else headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None, r.getheader("Content-Type")


def detail(*errors):
    return {"status": 422, "error": "Unprocessable Content",
            "detail": [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in errors]}


def test_notes_crud(n):
    status, body, ctype = n.call("GET", "/notes")
    check("notes_list_starts_empty", (status, body, ctype) == (200, [], "application/json"), short(body))
    status, body, _ = n.call("POST", "/notes", {"title": "Groceries", "body": "milk", "tags": ["home"]})
    check("notes_post_answers_201_with_the_note",
          (status, body) == (201, {"id": 1, "title": "Groceries", "body": "milk", "tags": ["home"]}), short(body))
    status, body, _ = n.call("POST", "/notes", {"title": "Ideas", "body": ""})
    check("notes_post_without_tags", (status, body) == (201, {"id": 2, "title": "Ideas", "body": ""}), short(body))
    status, body, _ = n.call("GET", "/notes/1")
    check("notes_get_one", status == 200 and body["title"] == "Groceries", short(body))
    status, body, _ = n.call("PUT", "/notes/2", {"title": "Ideas", "body": "fly", "tags": []})
    check("notes_put_replaces", (status, body) == (200, {"id": 2, "title": "Ideas", "body": "fly", "tags": []}),
          short(body))
    status, body, _ = n.call("DELETE", "/notes/1")
    check("notes_delete_answers_204", (status, body) == (204, None), short(body))
    for method in ("GET", "PUT", "DELETE"):
        status, body, _ = n.call(method, "/notes/1", {"title": "x", "body": "y"} if method == "PUT" else None)
        check("notes_%s_deleted_is_404" % method.lower(), status == 404 and body["status"] == 404, short(body))
    status, body, _ = n.call("GET", "/notes")
    check("notes_list_after_changes", [x["id"] for x in body] == [2], short(body))


def test_notes_validation(n):
    status, body, _ = n.call("POST", "/notes", {"title": "x" * 201, "tags": ["a", 7, None], "color": "red"})
    check("notes_post_422_lists_every_problem", (status, body) == (422, detail(
        (("body", "title"), "String should have at most 200 characters", "string_too_long"),
        (("body", "body"), "Field required", "missing"),
        (("body", "tags", 1), "Input should be a valid string", "string_type"),
        (("body", "tags", 2), "Input should be a valid string", "string_type"),
        (("body", "color"), "Extra inputs are not permitted", "extra_forbidden"))), short(body))
    status, body, _ = n.call("PUT", "/notes/2", {"title": "", "body": 5})
    check("notes_put_422", (status, body) == (422, detail(
        (("body", "title"), "String should have at least 1 character", "string_too_short"),
        (("body", "body"), "Input should be a valid string", "string_type"))), short(body))
    status, body, _ = n.call("POST", "/notes", '{"title": "a", "body": "b",}')
    check("notes_malformed_json_is_400_with_offset", status == 400 and body.get("offset") == 27, short(body))
    status, body, _ = n.call("POST", "/notes", "title=a", {"Content-Type": "application/x-www-form-urlencoded"})
    check("notes_form_body_is_415", status == 415 and "application/json" in body["detail"], short(body))
    status, body, _ = n.call("POST", "/notes", b"")
    check("notes_empty_body_is_422_missing", (status, body) == (422, detail((("body",), "Field required", "missing"))),
          short(body))
    status, body, _ = n.call("GET", "/notes/abc")
    check("notes_id_not_an_integer_is_404", status == 404, short(body))
    status, body, _ = n.call("GET", "/notes")
    check("notes_rejected_requests_changed_nothing", [x["id"] for x in body] == [2], short(body))


def test_notes_openapi(n):
    status, doc, ctype = n.call("GET", "/openapi.json")
    check("notes_openapi_served", status == 200 and ctype == "application/json" and doc["openapi"] == "3.1.0",
          short(doc))
    operations = sorted((path, method) for path, item in doc["paths"].items() for method in item)
    check("notes_openapi_lists_every_route_once", operations == [
        ("/docs", "get"), ("/notes", "get"), ("/notes", "post"), ("/notes/{id}", "delete"), ("/notes/{id}", "get"),
        ("/notes/{id}", "put"), ("/openapi.json", "get")], short(operations))
    n.conn.request("GET", "/docs")
    r = n.conn.getresponse()
    page = r.read()
    check("notes_docs_page_served", r.status == 200 and r.getheader("Content-Type") == "text/html; charset=utf-8"
          and b"/openapi.json" in page, "%d %s" % (r.status, r.getheader("Content-Type")))
    post = doc["paths"]["/notes"]["post"]
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    check("notes_openapi_request_body", body_schema == {
        "type": "object", "additionalProperties": False, "required": ["title", "body"],
        "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 200}, "body": {"type": "string"},
                       "tags": {"type": "array", "items": {"type": "string"}}}}, short(body_schema))
    check("notes_openapi_responses", sorted(post["responses"]) == ["201", "400", "415", "422"]
          and post["responses"]["422"] == {"$ref": "#/components/responses/ValidationError"}, short(post))
    param = doc["paths"]["/notes/{id}"]["get"]["parameters"]
    check("notes_openapi_path_parameter_is_an_integer",
          param == [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}], short(param))
    check("notes_openapi_named_schema_is_a_component",
          doc["components"]["schemas"]["Note"]["required"] == ["id", "title", "body"], short(doc["components"]))


TESTS = [test_notes_crud, test_notes_validation, test_notes_openapi]


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[5], file=sys.stderr)
        return 2
    serve_example("notes", argv[0], lambda port: run_each(TESTS, Notes(port)), {"MW_THREADS": "2"})
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
