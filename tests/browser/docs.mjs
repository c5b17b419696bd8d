// docs.mjs - the /docs page (mw_docs) in a real browser: Debian's chromium, driven by
// playwright-core (which never downloads a browser of its own).
//
// usage: node tests/browser/docs.mjs DOCSAPP_BINARY [SCREENSHOT_DIR [NOTES_BINARY]]
//
// tests/docsapp.c serves a notes API, its OpenAPI 3.1 document at /openapi.json and the
// page at /docs. The page lists every operation of the document once, under its tag,
// with its parameters, request body and responses; its "try it" forms send real
// requests: a POST with the example the page built from the schema (201), a GET with a
// path parameter and one with a query parameter (200), a POST that breaks the schema
// (its 422 shown as a list: where, then what, and the request as a curl command line),
// malformed JSON sent by Ctrl+Enter (400), a DELETE (204, no body). Every request the
// page makes goes to the server; it loads with no console error and no Content-
// Security-Policy violation. A document with HTML in every text is shown as text and
// runs nothing; without a document the page says what serves one. A document as
// FastAPI writes one (anyOf with null, type lists, allOf, a schema that holds itself,
// operations without tags) is shown as well.
// With NOTES_BINARY (examples/notes.c), the page also reads the document mw_openapi made:
// every route listed once, and try-it answers 422 (its list), 201 and 200 (notes-docs.png).
// Screenshots: docs.png (the page as it opens), docs-try.png (an operation open with a
// 422 answer) and docs-dark.png (an operation open, in a dark colour scheme) in
// SCREENSHOT_DIR (build by default).
// Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { HOST, LAUNCH_ARGS, SCALE, check, startServer, summary, waitFor } from "./harness.mjs";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const op = (method, path) => `details.op[data-method="${method}"][data-path="${path}"]`;

/* Every operation of an OpenAPI document, as "METHOD /path". */
function operationsOf(doc) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`));
}

/* A tab that records every request, console message and CSP violation. */
async function openTab(context, seen) {
  const tab = await context.newPage();
  tab.on("request", (r) => seen.requests.push(r.url()));
  tab.on("console", (m) => seen.console.push(`${m.type()}: ${m.text()}`));
  tab.on("pageerror", (e) => seen.console.push(`pageerror: ${e}`));
  await tab.addInitScript(() => {
    window.violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.violations.push(e.violatedDirective));
  });
  return tab;
}

/* Opens operation sel, fills its try-it form (inputs by name; body: the textarea) and
   sends it; returns what the answer shows. */
async function tryIt(tab, sel, fields = {}, byKeyboard = false) {
  const d = tab.locator(sel);
  if (!(await d.evaluate((e) => e.open))) await d.locator("summary").click();
  for (const [name, value] of Object.entries(fields)) {
    if (name === "body") await d.locator("textarea").fill(value);
    else await d.locator(`.try [name="${name}"]`).fill(value);
  }
  await d.locator(".result").evaluate((r) => { r.hidden = true; }); // shown again by the answer
  if (byKeyboard) await d.locator("textarea").press("Control+Enter");
  else await d.locator("button.send").click();
  await d.locator(".result:not([hidden])").waitFor();
  return d.locator(".result").evaluate((r) => ({
    status: Number(r.querySelector(".rhead .status")?.textContent),
    line: r.querySelector(".rhead code")?.textContent,
    body: r.querySelector(":scope > pre.out")?.textContent ?? null,
    curl: r.querySelector("details.curl pre")?.textContent,
    empty: !!r.querySelector("p.muted"),
    headers: Object.fromEntries([...r.querySelectorAll("table.headers tr")].map((tr) =>
      [tr.cells[0].textContent, tr.cells[1].textContent])),
    errors: [...r.querySelectorAll("table.errors tr")].map((tr) => ({
      loc: [...tr.cells[0].querySelectorAll("span")].map((s) => s.textContent),
      msg: tr.cells[1].textContent, type: tr.cells[2].textContent,
    })),
  }));
}

/* A screenshot of operation sel down to the end of its answer, under the page's header
   bar and beside its sidebar: the viewport grows to hold it all, then shrinks back. */
async function shootOperation(tab, sel, path) {
  const size = tab.viewportSize();
  const { top, height } = await tab.evaluate((s) => {
    const d = document.querySelector(s), bar = document.querySelector("header").offsetHeight;
    const y = d.getBoundingClientRect().top + window.scrollY - bar - 16;
    return { top: y, height: d.querySelector(".result").getBoundingClientRect().bottom + window.scrollY + 30 - y };
  }, sel);
  await tab.setViewportSize({ width: size.width, height: Math.ceil(height) });
  await tab.evaluate((y) => window.scrollTo(0, y), top);
  await tab.screenshot({ path });
  await tab.setViewportSize(size);
}

async function checkListing(tab, doc) {
  const want = operationsOf(doc).sort();
  const shown = await tab.$$eval("details.op", (ds) => ds.map((d) => `${d.dataset.method} ${d.dataset.path}`));
  check("every_operation_is_listed_once", JSON.stringify(shown.slice().sort()) === JSON.stringify(want),
        `shown ${JSON.stringify(shown)}, document ${JSON.stringify(want)}`);
  const nav = await tab.$$eval("nav a[data-op]", (as) => as.map((a) => a.textContent));
  check("the_sidebar_links_every_operation", nav.length === want.length, JSON.stringify(nav));
  const tags = await tab.$$eval("section.tag", (ss) => ss.map((s) => [s.dataset.tag, s.querySelectorAll("details.op").length]));
  check("operations_are_grouped_by_tag", JSON.stringify(tags) === JSON.stringify([["notes", 5], ["meta", 1]]),
        JSON.stringify(tags));
  const head = await tab.evaluate(() => ({ title: document.title, h1: document.getElementById("title").textContent,
                                           version: document.getElementById("version").textContent,
                                           intro: document.querySelector(".intro").textContent }));
  check("title_version_and_description_are_shown",
        head.h1 === doc.info.title && head.version === `v${doc.info.version}` && head.title.startsWith(doc.info.title) &&
          head.intro.includes("Notes kept in memory.") && head.intro.includes("OpenAPI 3.1.0"),
        JSON.stringify(head));
  const summaries = await tab.$$eval("details.op .sum", (ss) => ss.map((s) => s.textContent));
  check("each_operation_shows_its_summary", summaries.includes("Create a note") && summaries.includes("Is the service up?"),
        JSON.stringify(summaries));
}

async function checkSchemas(tab) {
  const list = op("GET", "/notes");
  await tab.locator(`${list} > summary`).click();
  const params = await tab.$$eval(`${list} tr[data-param]`, (rows) => rows.map((r) => r.textContent));
  check("query_parameters_show_their_schema",
        params.length === 3 && params[0].includes("limit") && params[0].includes("integer") &&
          params[0].includes("1..100") && params[0].includes("default 20") && params[2].includes("one of asc | desc"),
        JSON.stringify(params));
  const post = op("POST", "/notes");
  await tab.locator(`${post} > summary`).click();
  const body = await tab.locator(`${post} .body > .schema`).first().textContent();
  check("request_body_schema_resolves_its_ref",
        body.startsWith("NoteIn") && /title\s*required\s*string\s*1\.\.200 chars/.test(body) &&
          /tags\s*optional\s*array<string>/.test(body) && body.includes("no other fields"),
        body);
  const responses = await tab.$$eval(`${post} .resp`, (rs) => rs.map((r) => r.dataset.status));
  check("responses_are_listed_per_status", JSON.stringify(responses) === JSON.stringify(["201", "400", "422"]),
        JSON.stringify(responses));
  const nested = await tab.locator(`${post} .resp[data-status="422"]`).textContent();
  check("nested_arrays_of_refs_are_a_tree", /detail\s*required\s*array<ValidationError>/.test(nested) &&
        /items\s*ValidationError/.test(nested) && /loc\s*required\s*array<string \| integer>/.test(nested), nested);
  const example = await tab.locator(`${post} textarea`).inputValue();
  let parsed = null;
  try { parsed = JSON.parse(example); } catch { /* parsed stays null */ }
  check("the_body_is_prefilled_with_an_example_from_the_schema",
        parsed && typeof parsed.title === "string" && typeof parsed.body === "string" && Array.isArray(parsed.tags),
        example);
}

async function checkTryIt(tab, origin, shots) {
  const created = await tryIt(tab, op("POST", "/notes")); // the example as the page built it
  let note = null;
  try { note = JSON.parse(created.body); } catch { /* note stays null */ }
  check("try_it_post_with_the_example_answers_201", created.status === 201 && note && note.id >= 1 &&
        created.line === "POST /notes", JSON.stringify(created));
  check("try_it_shows_the_response_headers", created.headers["content-type"] === "application/json" &&
        Number(created.headers["content-length"]) > 0 && /GMT$/.test(created.headers.date || ""),
        JSON.stringify(created.headers));

  const read = await tryIt(tab, op("GET", "/notes/{id}"), { id: String(note && note.id) });
  check("try_it_get_with_a_path_parameter_answers_200", read.status === 200 && read.line === `GET /notes/${note && note.id}` &&
        JSON.stringify(JSON.parse(read.body)) === JSON.stringify(note), JSON.stringify(read));
  const listed = await tryIt(tab, op("GET", "/notes"), { limit: "1" });
  check("try_it_get_with_a_query_parameter_answers_200", listed.status === 200 &&
        listed.line === "GET /notes?limit=1&sort=asc" && JSON.parse(listed.body).length === 1, JSON.stringify(listed));
  const missing = await tab.locator(op("GET", "/notes/{id}")).evaluate((d) => {
    d.querySelector('.try [name="id"]').value = "";
    d.querySelector("button.send").click();
    return d.querySelector(".problem").textContent;
  });
  check("a_missing_path_parameter_is_asked_for_not_sent", missing === "Fill in id", missing);

  const bad = op("POST", "/notes");
  const invalid = await tryIt(tab, bad, { body: `{"title": "", "tags": ["ok", 7], "colour": "it's red"}` });
  const want = [
    { loc: ["body", "title"], msg: "String should have at least 1 character", type: "string_too_short" },
    { loc: ["body", "body"], msg: "Field required", type: "missing" },
    { loc: ["body", "tags", "1"], msg: "Input should be a valid string", type: "string_type" },
    { loc: ["body", "colour"], msg: "Extra inputs are not permitted", type: "extra_forbidden" },
  ];
  check("try_it_422_shows_its_error_list", invalid.status === 422 &&
        JSON.stringify(invalid.errors) === JSON.stringify(want), JSON.stringify(invalid));
  check("the_request_is_offered_as_a_curl_command", invalid.curl ===
        `curl -X POST '${origin}/notes' -H 'Accept: application/json' -H 'Content-Type: application/json' ` +
        `--data-raw '{"title": "", "tags": ["ok", 7], "colour": "it'\\''s red"}'`, invalid.curl);
  const caption = await tab.locator(`${bad} table.errors caption`).textContent();
  check("the_error_list_says_how_many", caption === "4 problems in the request", caption);
  await shootOperation(tab, bad, join(shots, "docs-try.png"));

  const malformed = await tryIt(tab, bad, { body: '{"title": ' }, true);
  check("ctrl_enter_sends_and_malformed_json_shows_the_400", malformed.status === 400 && malformed.errors.length === 0 &&
        JSON.parse(malformed.body).offset === 10, JSON.stringify(malformed));
  const gone = await tryIt(tab, op("DELETE", "/notes/{id}"), { id: String(note && note.id) });
  check("try_it_delete_answers_204_with_no_body", gone.status === 204 && gone.empty && gone.body === null,
        JSON.stringify(gone));
  const after = await tryIt(tab, op("GET", "/notes/{id}"), { id: String(note && note.id) });
  check("try_it_404_after_the_delete", after.status === 404 && JSON.parse(after.body).status === 404, JSON.stringify(after));
}

async function checkFilterAndLinks(tab, origin) {
  await tab.fill("#filter", "health");
  const visible = await tab.$$eval("details.op:not([hidden])", (ds) => ds.map((d) => d.dataset.path));
  const sections = await tab.$$eval("section.tag:not([hidden])", (ss) => ss.map((s) => s.dataset.tag));
  check("the_filter_keeps_matching_operations", JSON.stringify(visible) === '["/health"]' &&
        JSON.stringify(sections) === '["meta"]', `${JSON.stringify(visible)} ${JSON.stringify(sections)}`);
  await tab.fill("#filter", "");
  await tab.goto(`${origin}/docs#op-replace_note`);
  const open = await waitFor(() => tab.evaluate(() => document.getElementById("op-replace_note")?.open || null), 5000);
  check("a_link_to_an_operation_opens_it", open === true, String(open));
}

/* The document with HTML in each text a page shows: none of it may become an element. */
function hostile(doc) {
  const x = (s) => `${s}<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`;
  const d = structuredClone(doc);
  d.info.title = x("Notes");
  d.info.description = x("Desc") + " [link](javascript:window.pwned=3)";
  d.tags[0].description = x("Tag");
  const post = d.paths["/notes"].post;
  post.summary = x("Create");
  post.description = x("Stores");
  d.paths["/notes"].get.parameters[0].description = x("limit");
  d.paths["/notes"].get.parameters[2].schema.enum = [x("asc"), "desc"];
  d.components.schemas.NoteIn.properties[x("field")] = { type: "string", description: x("field") };
  d.paths[x("/evil")] = { get: { summary: x("evil"), tags: [x("tag")], responses: { 200: { description: x("ok") } } } };
  return d;
}

async function checkHostileDocument(context, doc, origin, seen) {
  const tab = await openTab(context, seen);
  await tab.route("**/openapi.json", (route) => route.fulfill({ contentType: "application/json",
                                                                   body: JSON.stringify(hostile(doc)) }));
  await tab.goto(`${origin}/docs`);
  await tab.waitForSelector("details.op");
  await tab.evaluate(() => { for (const d of document.querySelectorAll("details.op")) d.open = true; });
  await tab.waitForFunction(() => document.querySelectorAll("details.op .body").length === 7);
  const dom = await tab.evaluate(() => ({
    made: document.querySelectorAll("main img, main script, nav img, header img").length,
    pwned: window.pwned ?? null,
    title: document.getElementById("title").textContent,
    links: [...document.querySelectorAll("main a")].map((a) => a.getAttribute("href")),
  }));
  check("html_in_the_document_is_shown_as_text_and_runs_nothing",
        dom.made === 0 && dom.pwned === null && dom.title.startsWith("Notes<img src=x") && dom.links.length === 0,
        JSON.stringify(dom));
  await tab.close();
}

async function checkMissingDocument(context, origin, seen) {
  const tab = await openTab(context, seen);
  await tab.route("**/openapi.json", (route) => route.fulfill({ status: 404, body: "" }));
  await tab.goto(`${origin}/docs`);
  const said = await waitFor(() => tab.evaluate(() => document.querySelector("main .fail")?.textContent || null), 5000);
  check("without_a_document_the_page_says_what_serves_one",
        said === "/openapi.json answered 404 Not Found: mw_openapi(app, title, version) serves it.", String(said));
  await tab.close();
}

/* A document as FastAPI writes one: nullable fields as anyOf with null, a type list, a
   schema that holds itself, allOf, exclusiveMinimum, no tags on some operations. */
const FASTAPI_LIKE = {
  openapi: "3.1.0",
  info: { title: "Shop", version: "0.1.0" },
  paths: {
    "/items/{item_id}": {
      put: {
        summary: "Update Item",
        operationId: "update_item",
        parameters: [{ name: "item_id", in: "path", required: true, schema: { type: "integer", title: "Item Id" } },
                     { name: "q", in: "query", schema: { anyOf: [{ type: "string", maxLength: 50 }, { type: "null" }] } }],
        requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/Item" } } } },
        responses: { 200: { description: "Successful Response", content: { "application/json": { schema: {} } } } },
      },
    },
    "/admins/": {
      post: {
        tags: ["users"],
        summary: "Create Admin",
        requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/Admin" } } } },
        responses: { 201: { description: "Created" } },
      },
    },
  },
  components: {
    schemas: {
      Item: {
        type: "object",
        required: ["name", "price"],
        properties: {
          name: { type: "string" },
          price: { type: "number", exclusiveMinimum: 0 },
          owner: { anyOf: [{ $ref: "#/components/schemas/User" }, { type: "null" }] },
        },
      },
      User: {
        type: "object",
        required: ["email"],
        properties: {
          id: { type: ["integer", "null"] },
          email: { type: "string", format: "email" },
          friends: { type: "array", items: { $ref: "#/components/schemas/User" } },
        },
      },
      Admin: { allOf: [{ $ref: "#/components/schemas/User" },
                       { type: "object", required: ["role"], properties: { role: { enum: ["owner", "staff"] } } }] },
    },
  },
};

async function checkAnotherDocument(context, origin, seen) {
  const tab = await openTab(context, seen);
  await tab.route("**/openapi.json", (route) => route.fulfill({ contentType: "application/json",
                                                                   body: JSON.stringify(FASTAPI_LIKE) }));
  await tab.goto(`${origin}/docs`);
  await tab.waitForSelector("details.op");
  const tags = await tab.$$eval("section.tag", (ss) => ss.map((x) => x.dataset.tag));
  check("operations_without_tags_go_under_default", JSON.stringify(tags) === '["default","users"]', JSON.stringify(tags));
  const put = op("PUT", "/items/{item_id}"), post = op("POST", "/admins/");
  await tab.locator(`${put} > summary`).click();
  await tab.locator(`${post} > summary`).click();
  const item = await tab.locator(`${put} .body > .schema`).textContent();
  check("nullable_and_self_holding_schemas_read_as_types",
        /price\s*required\s*number\s*> 0/.test(item) && /owner\s*optional\s*User \| null/.test(item) &&
          /id\s*optional\s*integer \| null/.test(item) && /friends\s*optional\s*array<User>/.test(item), item);
  const q = await tab.locator(`${put} tr[data-param="q"]`).textContent();
  check("a_nullable_query_parameter_shows_its_schema", q.includes("string | null"), q);
  let example = null;
  try { example = JSON.parse(await tab.locator(`${put} textarea`).inputValue()); } catch { /* stays null */ }
  check("the_example_of_a_schema_that_holds_itself_ends",
        example && example.price === 1 && example.owner.email === "user@example.com" &&
          JSON.stringify(example.owner.friends) === "[]", JSON.stringify(example));
  const admin = await tab.locator(`${post} .body > .schema`).textContent();
  check("all_of_merges_the_fields", /email\s*required\s*string/.test(admin) &&
        /role\s*required\s*enum\s*one of owner \| staff/.test(admin), admin);
  await tab.close();
}

/* examples/notes.c: the page over the document mw_openapi generates from the declarations. */
async function checkGeneratedDocument(browser, binary, shots) {
  const server = startServer(binary, 0);
  try {
    const port = await server.ready;
    if (!check("notes_server_starts", port, server.lines.join(" | "))) return;
    const origin = `http://${HOST}:${port}`;
    const doc = await (await fetch(`${origin}/openapi.json`)).json();
    const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    context.setDefaultTimeout(10000 * SCALE);
    const seen = { requests: [], console: [] };
    const tab = await openTab(context, seen);
    await tab.goto(`${origin}/docs`);
    await tab.waitForSelector("details.op");
    const shown = await tab.$$eval("details.op", (ds) => ds.map((d) => `${d.dataset.method} ${d.dataset.path}`));
    check("notes_every_generated_operation_is_listed_once",
          JSON.stringify(shown.slice().sort()) === JSON.stringify(operationsOf(doc).sort()), JSON.stringify(shown));
    const invalid = await tryIt(tab, op("POST", "/notes"), { body: `{"body": 5, "tags": ["a", null]}` });
    const errors = invalid.errors.map((e) => `${e.loc.join(".")}: ${e.type}`);
    check("notes_try_it_422_lists_every_problem", invalid.status === 422 && JSON.stringify(errors) ===
          JSON.stringify(["body.title: missing", "body.body: string_type", "body.tags.1: string_type"]),
          JSON.stringify(invalid));
    const created = await tryIt(tab, op("POST", "/notes"), { body: `{"title": "Milk", "body": "2 l", "tags": ["shop"]}` });
    check("notes_try_it_post_answers_201", created.status === 201 && JSON.parse(created.body).title === "Milk",
          JSON.stringify(created));
    const read = await tryIt(tab, op("GET", "/notes/{id}"), { id: String(JSON.parse(created.body).id) });
    check("notes_try_it_get_answers_200", read.status === 200 && JSON.parse(read.body).body === "2 l", JSON.stringify(read));
    await tab.locator(op("POST", "/notes")).scrollIntoViewIfNeeded();
    await tab.screenshot({ path: join(shots, "notes-docs.png") });
    check("notes_page_no_request_outside_the_server", seen.requests.every((u) => u.startsWith(`${origin}/`)),
          JSON.stringify(seen.requests));
    await context.close();
  } finally {
    if (server.exited === null) server.proc.kill("SIGTERM");
    check("notes_server_exits_0", (await server.exit) === 0);
  }
}

async function main() {
  const binary = resolve(process.argv[2] || "");
  const here = dirname(fileURLToPath(import.meta.url));
  const shots = resolve(process.argv[3] || join(here, "..", "..", "build"));
  mkdirSync(shots, { recursive: true });
  let server, browser;
  try {
    server = startServer(binary, 0);
    const port = await server.ready;
    if (!check("server_starts", port, server.lines.join(" | "))) return;
    const origin = `http://${HOST}:${port}`;
    const doc = await (await fetch(`${origin}/openapi.json`)).json();
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: LAUNCH_ARGS });
    const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
    context.setDefaultTimeout(10000 * SCALE);
    const seen = { requests: [], console: [] };
    const tab = await openTab(context, seen);
    await tab.goto(`${origin}/docs`);
    await tab.waitForSelector("details.op");
    await tab.screenshot({ path: join(shots, "docs.png") });
    check("the_page_loads_with_no_console_message", seen.console.length === 0, JSON.stringify(seen.console));
    check("the_page_asks_only_for_itself_and_the_document",
          JSON.stringify(seen.requests) === JSON.stringify([`${origin}/docs`, `${origin}/openapi.json`]),
          JSON.stringify(seen.requests));

    await checkListing(tab, doc);
    await checkSchemas(tab);
    await checkTryIt(tab, origin, shots);
    await checkFilterAndLinks(tab, origin);
    // the browser logs each answer of 400 and above it was given: those the try-it calls asked for
    const unexpected = seen.console.filter((m) => !/^error: Failed to load resource: the server responded with a status of (400|404|422) /.test(m));
    check("no_console_error_beyond_the_refusals_asked_for", unexpected.length === 0, JSON.stringify(unexpected));
    check("no_content_security_policy_violation", (await tab.evaluate(() => window.violations)).length === 0,
          JSON.stringify(await tab.evaluate(() => window.violations)));

    const dark = await browser.newContext({ viewport: { width: 1366, height: 860 }, colorScheme: "dark" });
    const night = await openTab(dark, seen);
    await night.goto(`${origin}/docs#op-create_note`);
    await night.waitForSelector("#op-create_note .body");
    await night.screenshot({ path: join(shots, "docs-dark.png") });
    await dark.close();

    await checkHostileDocument(context, doc, origin, seen);
    await checkMissingDocument(context, origin, seen);
    await checkAnotherDocument(context, origin, seen);
    if (process.argv[4]) await checkGeneratedDocument(browser, resolve(process.argv[4]), shots);
    const outside = seen.requests.filter((u) => !u.startsWith(`${origin}/`));
    check("every_request_went_to_the_server", outside.length === 0 && seen.requests.length > 10,
          JSON.stringify(outside.length ? outside : seen.requests.length));
  } catch (e) {
    check("browser_test_runs", false, e.stack || String(e));
  } finally {
    if (browser) await browser.close();
    if (server) {
      if (server.exited === null) server.proc.kill("SIGTERM");
      const status = await server.exit;
      check("server_exits_0", status === 0, `exit ${status}`);
    }
    console.log(`  screenshots: ${shots}/docs.png, ${shots}/docs-try.png, ${shots}/docs-dark.png`);
    summary();
  }
}

main();
