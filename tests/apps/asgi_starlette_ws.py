"""A Starlette WebSocket echo for the asgi worker's framework tests: text and binary come
back as they went; the text "close:CODE" closes with that code and the reason "asked"."""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
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


app = Starlette(routes=[WebSocketRoute("/ws", echo), WebSocketRoute("/refuse", refuse)])
