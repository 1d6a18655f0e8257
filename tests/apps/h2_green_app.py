"""Routes for the HTTP/2 tests of the greenlet workers: h2_app's, and /sleep?S, which sleeps S
seconds in the stream's greenlet (`time.sleep`, patched by gevent or eventlet), so the other
streams and connections of the worker must be served meanwhile."""
import time

from h2_app import app as h2_app


def app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept\n"]
    return h2_app(environ, start_response)
