"""Application factories and objects that are not applications."""


def create_app(name="default", debug=False):
    def app(environ, start_response):
        body = ("%s debug=%s\n" % (name, debug)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def returns_none():
    return None


def type_error_inside():
    return len(42)


not_callable = 42
