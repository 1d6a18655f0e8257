"""Reports which Python serves the app: sys.prefix, sys.executable, and whether the module
`only_in_this_venv` (present only in a test virtualenv) is importable."""
import json
import sys


def app(environ, start_response):
    try:
        import only_in_this_venv

        mark = only_in_this_venv.MARK
    except ImportError:
        mark = None
    body = json.dumps({"prefix": sys.prefix, "executable": sys.executable, "mark": mark}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
