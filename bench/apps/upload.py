"""Reads the whole request body and answers with its length."""


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = str(len(body)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]
