"""Routes for the HTTP/2 tests: concurrency between the streams of one connection, large
bodies both ways, early hints, the environ, and how many times the app ran."""
import hashlib
import json
import threading

# Four streams must be inside the app at once to pass: they run concurrently only if the
# server runs the streams of a connection on several threads.
BARRIER = threading.Barrier(4)
CALLS = {"n": 0}
LOCK = threading.Lock()


def pattern(n):
    """n deterministic bytes."""
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


def app(environ, start_response):
    with LOCK:
        CALLS["n"] += 1
    path = environ["PATH_INFO"]
    if path == "/barrier":
        try:
            BARRIER.wait(timeout=10)
            status, body = "200 OK", b"together\n"
        except threading.BrokenBarrierError:
            status, body = "500 Internal Server Error", b"alone\n"
        start_response(status, [("Content-Type", "text/plain")])
        return [body]
    if path == "/big":
        n = int(environ.get("QUERY_STRING") or "0")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        data = pattern(n)
        return [data[i:i + 65536] for i in range(0, n, 65536)]
    if path == "/upload":
        h = hashlib.sha256()
        size = 0
        inp = environ["wsgi.input"]
        while True:
            piece = inp.read(10000)
            if not piece:
                break
            size += len(piece)
            h.update(piece)
        body = json.dumps({"size": size, "sha256": h.hexdigest()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/hints":
        environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hinted\n"]
    if path == "/calls":
        body = str(CALLS["n"]).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/file":
        import io
        data = io.BytesIO(pattern(100000))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](data, 8192)
    if path == "/raise":
        raise RuntimeError("boom")
    env = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool))}
    body = json.dumps(env).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
