"""An ASGI app calling the dirty apps of dirty_tasks.py with gunicorn.dirty's asyncio client:
/incr answers JSON {"result": ...} from Counter.incr, /tokens the items of Counter.tokens."""

import json

from gunicorn.dirty import get_dirty_client_async

APP = "dirty_tasks:Counter"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    client = await get_dirty_client_async()
    if scope["path"] == "/tokens":
        result = [item async for item in client.stream_async(APP, "tokens", 3)]
    else:
        result = await client.execute_async(APP, "incr", 2)
    body = json.dumps({"result": result}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
