"""ASGI applications for the asgi worker's end-to-end tests (plain ASGI, no framework)."""

import asyncio
import json
import os
import time

STARTED = {"lifespan": False}
# /barrier?N: requests waiting until N are in at once (one event loop serves them all).
BARRIER = {"count": 0, "event": None}


async def app(scope, receive, send):
    """Routes by path: hello, echo (streams the body back), scope (the scope as JSON), stream
    (a chunked response), error (raises), sleep (waits), disconnect (waits for the client to
    leave), ws (a WebSocket echo)."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                scope["state"]["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                path = os.environ.get("ASGI_SHUTDOWN_MARK")
                if path:
                    with open(path, "w") as f:
                        f.write("shutdown\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    path = scope["path"]
    if path == "/echo":
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/scope":
        view = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
        view["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
        view["raw_path"] = scope["raw_path"].decode("latin-1")
        view["query_string"] = scope["query_string"].decode("latin-1")
        view["state"] = dict(scope.get("state", {}))
        data = json.dumps(view).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"part%d\n" % i, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/trailers":
        # The HTTP trailers extension: a chunked body, then trailer fields.
        assert "http.response.trailers" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"data", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        await send({"type": "http.response.trailers", "more_trailers": True,
                    "headers": [(b"x-checksum", b"abc")]})
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-status", b"done"), (b"content-length", b"9")]})
        return
    if path == "/pathsend":
        # The path send extension: this very file as the body.
        assert "http.response.pathsend" in scope["extensions"]
        size = os.path.getsize(__file__)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        await send({"type": "http.response.pathsend", "path": __file__})
        return
    if path == "/error":
        raise RuntimeError("boom in the app")
    if path == "/sleep":
        await asyncio.sleep(float(scope["query_string"] or b"1"))
    if path == "/disconnect":
        msg = await receive()
        while msg["type"] != "http.disconnect":
            msg = await receive()
        mark = os.environ.get("ASGI_DISCONNECT_MARK")
        if mark:
            with open(mark, "w") as f:
                f.write("disconnected\n")
        return
    if path == "/noresponse":
        return
    if path == "/block":
        # Blocks the event loop itself (a sync call in an async app): only the heartbeat's
        # silence tells the master, which kills the worker at --timeout.
        time.sleep(float(scope["query_string"] or b"1"))
    if path == "/cancelled":
        # Ignores http.disconnect: only the server's cancel (after the disconnect grace
        # period) ends it; the mark says so.
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            mark = os.environ.get("ASGI_CANCEL_MARK")
            if mark:
                with open(mark, "w") as f:
                    f.write("cancelled\n")
            raise
        return
    if path == "/big":
        # N chunks of 256 KiB, each of one repeated byte: a response far larger than the
        # transport's buffer, for write flow control.
        count = int(scope["query_string"] or b"8")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(count * 262144).encode())]})
        for i in range(count):
            await send({"type": "http.response.body", "body": bytes([65 + i % 26]) * 262144,
                        "more_body": i + 1 < count})
        return
    if path == "/inject":
        # A header value that would split the response: refused, never written.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-a", b"v\r\nX-Injected: 1"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/overlong":
        # More body than the Content-Length said: cut at the length.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"0123456789"})
        return
    if path == "/forever":
        # A stream that never ends (server-sent events): only a stop ends it.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        while True:
            await send({"type": "http.response.body", "body": b"data: tick\n\n",
                        "more_body": True})
            await asyncio.sleep(0.1)
    if path == "/barrier":
        # 200 once N requests are in here at the same time, 504 if they never are (10 s).
        need = int(scope["query_string"] or b"2")
        if BARRIER["event"] is None or BARRIER["event"].is_set():
            BARRIER["event"] = asyncio.Event()
            BARRIER["count"] = 0
        event = BARRIER["event"]
        BARRIER["count"] += 1
        if BARRIER["count"] >= need:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), 10)
            status = 200
        except asyncio.TimeoutError:
            status = 504
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/duplex":
        # Each piece of the request body goes back as a chunk as soon as it arrives.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            if msg.get("body"):
                await send({"type": "http.response.body", "body": msg["body"],
                            "more_body": True})
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/pid":
        data = str(os.getpid()).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
        return
    if path == "/hints":
        await send({"type": "http.response.informational", "status": 103,
                    "headers": [(b"link", b"</style.css>; rel=preload; as=style")]})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def websocket(scope, receive, send):
    msg = await receive()
    assert msg["type"] == "websocket.connect"
    if scope["path"] == "/ws/refuse":
        await send({"type": "websocket.close"})
        return
    if scope["path"] == "/ws/raise":
        raise RuntimeError("boom before accept")
    if scope["path"] == "/ws/scope":
        await send({"type": "websocket.accept"})
        view = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
        view["query_string"] = scope["query_string"].decode("latin-1")
        await send({"type": "websocket.send", "text": json.dumps(view)})
        await send({"type": "websocket.close", "code": 1000})
        return
    sub = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
            return
        if msg.get("text") == "raise":
            raise RuntimeError("boom after accept")
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})


def wsgi_app(environ, start_response):
    """A WSGI callable, which -k asgi must refuse at boot. Under a WSGI worker it answers what
    `app` answers for / (the access log tests compare the two workers' lines)."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


async def failing_startup(scope, receive, send):
    """An app whose lifespan startup fails (lifespan.startup.failed)."""
    if scope["type"] == "lifespan":
        msg = await receive()
        assert msg["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
    await app(scope, receive, send)


async def no_lifespan(scope, receive, send):
    """An app that does not speak the lifespan protocol (raises on its scope, as many do)."""
    if scope["type"] != "http":
        raise RuntimeError("only http is supported")
    await app(scope, receive, send)


async def paths(scope, receive, send):
    """Any path: the scope's path, raw_path and query_string as JSON (what the server made of
    the request target)."""
    if scope["type"] != "http":
        return
    data = json.dumps({"path": scope["path"], "raw_path": scope["raw_path"].decode("latin-1"),
                       "query_string": scope["query_string"].decode("latin-1")}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
