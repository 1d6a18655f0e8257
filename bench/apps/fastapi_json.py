"""The Flask JSON benchmark's route in FastAPI: one JSON object with the request path."""
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/")
async def root(request: Request):
    return {"message": "hello", "path": request.url.path}
