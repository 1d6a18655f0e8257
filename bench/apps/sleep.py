"""An app that waits 50 ms, as if on a database: thread-bound."""
import time

BODY = b"slept"


def app(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
