"""Reports the pid that imported the module and the pid serving the request (--preload tests)."""
import os

IMPORTED_IN = os.getpid()


def app(environ, start_response):
    body = ("imported_in=%d serving_in=%d\n" % (IMPORTED_IN, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
