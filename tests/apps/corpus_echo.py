"""Echo app of the end-to-end corpus replay (gunicorn-cli/tests/http_corpus.rs).

Reads the whole body first (so body-stage errors surface before any response), then answers
with every str environ value and the body in a length-prefixed form that carries any byte:
one item per key, `NAME LENGTH\\n<LENGTH bytes>\\n`, values encoded as latin-1 (WSGI strings are
latin-1 code points), the body under the name `wsgi.input`. JSON would need a JSON parser in
the Rust test and turns latin-1 bytes into escapes.
"""


def item(name, data):
    return b"%s %d\n%s\n" % (name.encode("latin-1"), len(data), data)


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = []
    for key in sorted(environ):
        value = environ[key]
        if isinstance(value, str):
            out.append(item(key, value.encode("latin-1", "backslashreplace")))
    out.append(item("wsgi.input", body))
    data = b"".join(out)
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))],
    )
    return [data]
