"""A streamed response of 100 chunks with no Content-Length."""

CHUNK = b"x" * 100


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (CHUNK for _ in range(100))
