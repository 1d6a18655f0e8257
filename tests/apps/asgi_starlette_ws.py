"""A Starlette app for the asgi worker's framework tests: a WebSocket echo (text and binary
come back as they went; the text "close:CODE" closes with that code and the reason "asked"),
and a FileResponse."""

import os

from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return
            text = msg.get("text")
            if text is not None and text.startswith("close:"):
                await websocket.close(code=int(text[6:]), reason="asked")
                return
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(msg["bytes"])
    except WebSocketDisconnect:
        return


async def refuse(websocket: WebSocket):
    await websocket.close()


async def file(request):
    """A FileResponse of $STARLETTE_FILE (sent through http.response.pathsend when the server
    offers it)."""
    return FileResponse(os.environ["STARLETTE_FILE"], media_type="application/octet-stream")


app = Starlette(routes=[
    WebSocketRoute("/ws", echo),
    WebSocketRoute("/refuse", refuse),
    Route("/file", file),
])
