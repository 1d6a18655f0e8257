# The application of gunicorn-cli/tests/logger_class.rs (its loggers are in json_logger.py).


def app(environ, start_response):
    body = b"hello\n"
    start_response("201 Created", [("Content-Type", "text/plain"),
                                   ("Content-Length", str(len(body))),
                                   ("X-Trace", "tr-1")])
    return [body]
