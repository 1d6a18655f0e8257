"""Echoes the request: a JSON object with every str/int/bool/tuple environ value, the body read
with wsgi.input.read(), and the types of the wsgi.* objects."""
import json


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    env = {}
    for key, value in environ.items():
        if isinstance(value, (str, int, bool, type(None))):
            env[key] = value
        elif isinstance(value, tuple):
            env[key] = list(value)
        else:
            env[key] = "<%s>" % type(value).__name__
    data = json.dumps({"environ": env, "body": body.decode("latin-1")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def lines(environ, start_response):
    """Reads the body line by line with readline(), then iterates the rest."""
    inp = environ["wsgi.input"]
    first = inp.readline()
    second = inp.readline(3)
    rest = list(inp)
    data = json.dumps([first.decode(), second.decode(), [r.decode() for r in rest]]).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


def readlines(environ, start_response):
    data = json.dumps([l.decode() for l in environ["wsgi.input"].readlines()]).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


def sized_reads(environ, start_response):
    """read(3) until EOF, recording each piece."""
    inp = environ["wsgi.input"]
    pieces = []
    while True:
        chunk = inp.read(3)
        if not chunk:
            break
        pieces.append(chunk.decode())
    data = json.dumps(pieces).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]
