"""Replies after sleeping `?s=SECONDS` (default 1): for graceful-stop and timeout tests."""
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["1"])[0])
    # Tests wait for this line to know the request is inside the app.
    environ["wsgi.errors"].write("slow app: sleeping %s s\n" % seconds)
    environ["wsgi.errors"].flush()
    time.sleep(seconds)
    body = b"slept\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
