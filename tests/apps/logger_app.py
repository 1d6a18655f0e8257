# The application of gunicorn-cli/tests/logger_class.rs (its loggers are in json_logger.py).


def app(environ, start_response):
    body = b"hello\n"
    start_response("201 Created", [("Content-Type", "text/plain"),
                                   ("Content-Length", str(len(body))),
                                   ("X-Trace", "tr-1")])
    return [body]


async def asgi_app(scope, receive, send):
    """The same response for -k asgi."""
    if scope["type"] != "http":
        return
    body = b"hello\n"
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-trace", b"tr-1")]})
    await send({"type": "http.response.body", "body": body})
