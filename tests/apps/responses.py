"""Response shapes for the WSGI bridge tests: write(), generators, close(), exc_info, errors."""
import sys

CLOSED = []


def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one ")
    write(b"two ")
    return [b"three"]


class ClosingIterable:
    def __init__(self, parts, fail_at=None):
        self.parts = parts
        self.fail_at = fail_at

    def __iter__(self):
        for i, p in enumerate(self.parts):
            if i == self.fail_at:
                raise RuntimeError("iteration failed")
            yield p

    def close(self):
        CLOSED.append(True)
        with open(self.marker_path(), "a") as f:
            f.write("closed\n")

    @staticmethod
    def marker_path():
        import os
        return os.environ.get("CLOSE_MARKER", "/dev/null")


def closing(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIterable([b"a", b"b", b"c"])


def closing_fails(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIterable([b"a", b"b", b"c"], fail_at=1)


def generator(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"gen-"
    yield b""
    yield b"erated"


def too_long(environ, start_response):
    start_response("200 OK", [("Content-Length", "5")])
    return [b"0123", b"456789"]


def raises(environ, start_response):
    raise ValueError("boom in the app")


def str_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["not bytes"]


def exc_info_before_headers(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise KeyError("x")
    except KeyError:
        start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced"]


def exc_info_after_headers(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"partial")
    try:
        raise KeyError("late")
    except KeyError:
        start_response("500 Oops", [], sys.exc_info())
    return [b"never"]


def second_start_response(environ, start_response):
    start_response("200 OK", [])
    try:
        start_response("201 Created", [])
    except AssertionError as e:
        msg = str(e).encode()
        return [msg]
    return [b"no error"]


def bad_header(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nInjected: yes")])
    return [b"x"]


def no_content(environ, start_response):
    start_response("204 No Content", [])
    return [b"dropped"]


def early_hints(environ, start_response):
    environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload")])
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def errors_stream(environ, start_response):
    environ["wsgi.errors"].write("to wsgi.errors\n")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def list_headers(environ, start_response):
    """Headers as lists rather than tuples (gunicorn accepts any pair)."""
    start_response("200 OK", [["Content-Type", "text/plain"], ["Content-Length", "2"]])
    return [b"ok"]


def bad_header_shape(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain", "extra")])
    return [b"x"]


def start_response_errors(environ, start_response):
    """Which error start_response raises for a bad status or header: a type error in the list
    wins over a bad value wherever it is; then the status, then the first bad header."""
    cases = [
        ("2x OK", [("X-A", 1)]),
        ("2x OK", [("X-A", "a\r\nb")]),
        ("200 OK", [("X A", "v"), ("Y", 2)]),
        ("200 OK", [("X A", "v"), ("Y", "a\r\nb")]),
        ("200 OK", [("Content-Length", "1"), ("Content-Length", "2")]),
        ("200 OK", [("X-A", "v"), ("bad",)]),
    ]
    lines = []
    for status, headers in cases:
        try:
            start_response(status, headers)
            lines.append("accepted")
        except Exception as e:
            lines.append(f"{type(e).__name__}: {e}")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]


class _Reordered(list):
    """A list subclass that iterates otherwise than it stores: iteration decides."""

    def __iter__(self):
        return iter([("X-Iterated", "yes"), ("Content-Length", "2")])


def header_containers(environ, start_response):
    """start_response with a tuple of pairs, a list subclass and a generator of pairs."""
    kind = environ["QUERY_STRING"]
    if kind == "tuple":
        headers = (("X-Tuple", "yes"), ("Content-Length", "2"))
    elif kind == "subclass":
        headers = _Reordered([("X-Stored", "yes")])
    else:
        headers = (h for h in [("X-Generated", "yes"), ("Content-Length", "2")])
    start_response("200 OK", headers)
    return [b"ok"]
