"""The bench's Flask peer (gunicorn -w 1): examples/hello.c's three routes, same bodies."""
import json

from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/")
def hello():
    return Response("Hello, World!", mimetype="text/plain")


@app.get("/users/<user_id>")
def user(user_id):
    return Response(json.dumps({"id": user_id}, separators=(",", ":")), mimetype="application/json")


@app.post("/echo")
def echo():
    return Response(request.get_data(), mimetype="application/octet-stream")
