"""The bench's FastAPI peer (uvicorn, one worker): examples/hello.c's three routes, same bodies."""
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def hello():
    return "Hello, World!"


@app.get("/users/{user_id}")
async def user(user_id: str):
    return {"id": user_id}


@app.post("/echo")
async def echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")
