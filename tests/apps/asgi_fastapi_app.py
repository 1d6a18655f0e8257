"""A FastAPI application for the asgi worker's framework tests: JSON, path and query
parameters, a form with a file upload, a StreamingResponse and BackgroundTasks."""

import asyncio
import os

from fastapi import BackgroundTasks, FastAPI, File, Form, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/")
async def root():
    return {"message": "Hello, World!"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None, limit: int = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "price_cents": round(item.price * 100), "tags": item.tags}


@app.post("/upload")
async def upload(name: str = Form(...), file: UploadFile = File(...)):
    data = await file.read()
    return {
        "name": name,
        "filename": file.filename,
        "content_type": file.content_type,
        "size": len(data),
        "sum": sum(data),
    }


@app.get("/stream")
async def stream(n: int = 5):
    async def lines():
        for i in range(n):
            yield f"line {i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/events")
async def events():
    """An endless event stream; its generator's cleanup leaves a mark when the client goes."""

    async def ticks():
        try:
            while True:
                yield "data: tick\n\n"
                await asyncio.sleep(0.05)
        finally:
            mark = os.environ.get("FASTAPI_STREAM_MARK")
            if mark:
                with open(mark, "w") as f:
                    f.write("closed\n")

    return StreamingResponse(ticks(), media_type="text/event-stream")


async def after_response(go: str, mark: str):
    """Runs after the response went out: waits (bounded) until the test says go, then
    leaves a mark, so the test sees the response come before the task ends."""
    for _ in range(200):
        if os.path.exists(go):
            break
        await asyncio.sleep(0.05)
    with open(mark, "w") as f:
        f.write("done\n")


@app.post("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(after_response, os.environ["FASTAPI_BG_GO"], os.environ["FASTAPI_BG_MARK"])
    return {"queued": True}
