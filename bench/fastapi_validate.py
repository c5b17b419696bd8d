"""The bench's FastAPI peer for bench/validate.py (uvicorn, one worker): POST /notes with
the body examples/notes.c declares, as a pydantic model; 201 with the id and the title."""
from typing import List, Optional

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Extra, constr

app = FastAPI()


class NoteIn(BaseModel, extra=Extra.forbid):
    title: constr(min_length=1, max_length=200)
    body: str
    tags: Optional[List[str]] = None


@app.get("/", response_class=PlainTextResponse)
async def ready():  # the bench waits for GET / to answer 200
    return "ready"


@app.post("/notes", status_code=201)
async def add_note(note: NoteIn):
    return {"id": 1, "title": note.title}
