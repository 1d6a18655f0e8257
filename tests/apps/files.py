"""wsgi.file_wrapper responses. FILE_PATH names the file to send."""
import io
import os


def path():
    return os.environ.get("FILE_PATH", __file__)


def with_length(environ, start_response):
    f = open(path(), "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, 4096)


def chunked(environ, start_response):
    f = open(path(), "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)


def offset(environ, start_response):
    """The file position is where sending starts; Content-Length caps it."""
    f = open(path(), "rb")
    f.seek(10)
    start_response("200 OK", [("Content-Length", "20")])
    return environ["wsgi.file_wrapper"](f)


def in_memory(environ, start_response):
    """No real fileno(): the wrapper is iterated in blocks."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 20000), 8192)
