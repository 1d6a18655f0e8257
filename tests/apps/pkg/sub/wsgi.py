"""A dotted module path: pkg.sub.wsgi (default object name `application`)."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"pkg.sub.wsgi\n"]
