"""A WSGI app calling the dirty apps of dirty_tasks.py: /call?app=APP&action=ACTION&args=JSON
answers JSON ``{"result": ...}`` or ``{"error": CLASS, "message": ..., "is_dirty_error": bool}``;
/stream?n=N joins the items of Counter.tokens; /stash?table=T&key=K reads the stash from the web
worker."""

import json
from urllib.parse import parse_qs

from gunicorn.dirty import DirtyError, get_dirty_client

APP = "dirty_tasks:Counter"


def _answer(start_response, payload, status="200 OK"):
    body = json.dumps(payload, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    client = get_dirty_client(timeout=float(query.get("timeout", "30")))
    try:
        if environ["PATH_INFO"] == "/stash":
            from gunicorn.dirty import stash
            value = stash.get(query["table"], query["key"], "missing")
            return _answer(start_response, {"result": value})
        if environ["PATH_INFO"] == "/async":
            import asyncio
            from gunicorn.dirty import DirtyClient
            from gunicorn.dirty.client import get_dirty_socket_path

            async def run():
                async with DirtyClient(get_dirty_socket_path()) as c:
                    one = await c.execute_async(APP, query["action"],
                                                *json.loads(query.get("args", "[]")))
                    items = [i async for i in c.stream_async(APP, "tokens", 2)]
                    return {"one": one, "items": items}
            return _answer(start_response, {"result": asyncio.run(run())})
        if environ["PATH_INFO"] == "/stream":
            items = list(client.stream(APP, "tokens", int(query.get("n", "3"))))
            return _answer(start_response, {"result": items})
        args = json.loads(query.get("args", "[]"))
        kwargs = json.loads(query.get("kwargs", "{}"))
        result = client.execute(query.get("app", APP), query["action"], *args, **kwargs)
        return _answer(start_response, {"result": result})
    except DirtyError as e:
        return _answer(start_response, {"error": type(e).__name__, "message": e.message,
                                        "is_dirty_error": True})
