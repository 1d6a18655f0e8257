# The Python side of the server hooks: the objects passed to the hooks of gunicorn.conf.py
# (server, worker, req, resp), the arity check and the "module.func" resolution.
# Executed once per process by server_hooks.rs as the module "_gunicorn_hooks"; `_emit(level,
# text)` is injected by Rust and writes one line through the server's error log.

import importlib
import inspect
import traceback

# Python logging's numeric levels, which `_emit` maps onto ours.
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50


def _format(msg, args):
    text = str(msg)
    if args:
        if len(args) == 1 and isinstance(args[0], dict) and args[0]:
            args = args[0]
        try:
            text = text % args
        except Exception:
            text = "%s %r" % (text, args)
    return text


class Log:
    """What hooks use as `server.log` / `worker.log` (gunicorn's glogging.Logger methods)."""

    def debug(self, msg, *args, **kwargs):
        self.log(DEBUG, msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        self.log(INFO, msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.log(WARNING, msg, *args, **kwargs)

    warn = warning

    def error(self, msg, *args, **kwargs):
        self.log(ERROR, msg, *args, **kwargs)

    def critical(self, msg, *args, **kwargs):
        self.log(CRITICAL, msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        kwargs.setdefault("exc_info", True)
        self.log(ERROR, msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            lvl = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR,
                   "critical": CRITICAL}.get(lvl.lower(), INFO)
        text = _format(msg, args)
        exc_info = kwargs.get("exc_info")
        if exc_info:
            if isinstance(exc_info, BaseException):
                tb = "".join(traceback.format_exception(type(exc_info), exc_info,
                                                        exc_info.__traceback__))
            else:
                tb = traceback.format_exc()
            if tb and not tb.startswith("NoneType: None"):
                text = text + "\n" + tb.rstrip("\n")
        _emit(int(lvl), text)


LOG = Log()


class Config:
    """`server.cfg` / `worker.cfg`: every setting as an attribute (`cfg.workers`, `cfg.bind`)."""

    def __init__(self, values):
        self.__dict__.update(values)
        self.settings = dict(values)

    def __repr__(self):
        return "<Config %d settings>" % len(self.settings)


def make_config(rows):
    """`rows` is [(name, text)] as --print-config renders them; literals become Python values."""
    import ast
    values = {}
    for name, text in rows:
        try:
            values[name] = ast.literal_eval(text)
        except Exception:
            values[name] = text
    return Config(values)


class Server:
    """The master as hooks see it (gunicorn's Arbiter): pid, cfg, log, num_workers, WORKERS."""

    def __init__(self, pid, cfg):
        self.pid = pid
        self.cfg = cfg
        self.log = LOG
        self.num_workers = cfg.__dict__.get("workers", 1)
        # pid -> Worker for the workers this master has forked and not yet reaped.
        self.WORKERS = {}
        self.worker_age = 0

    def __repr__(self):
        return "<gunicorn master %d>" % self.pid


class Worker:
    """A worker as hooks see it (gunicorn's Worker): pid, ppid, age, cfg, log, alive, booted."""

    def __init__(self, age, ppid, cfg, pid="[booting]"):
        self.age = age
        self.pid = pid
        self.ppid = ppid
        self.cfg = cfg
        self.log = LOG
        self.alive = True
        self.booted = False
        self.aborted = False

    def __repr__(self):
        return "<Worker %s>" % self.pid


class Request:
    """gunicorn's http.Request attributes that hooks and a logger class's access() read."""

    def __init__(self, method, uri, path, query, fragment, version, headers, scheme):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.fragment = fragment
        self.version = version
        self.headers = headers
        self.trailers = []
        self.scheme = scheme

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.uri)


class Response:
    """gunicorn's http.wsgi.Response attributes hooks read."""

    def __init__(self, status, headers, sent):
        self.status = status
        self.status_code = int(status.split(None, 1)[0]) if status else None
        self.headers = headers
        self.sent = sent

    def __repr__(self):
        return "<Response %s>" % self.status


def arity(fn):
    """gunicorn's util.get_arity: the number of positional parameters."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in inspect.signature(fn).parameters.values() if p.kind in positional)


def resolve(value):
    """A hook value as gunicorn's validate_callable accepts it: a callable or "module.func".
    Raises TypeError with the reason otherwise."""
    if isinstance(value, str):
        if "." not in value:
            raise TypeError("Value '%s' is not import string. "
                            "Format: module[.submodules...].object" % value)
        mod_name, obj_name = value.rsplit(".", 1)
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as e:
            raise TypeError(str(e))
        try:
            value = getattr(mod, obj_name)
        except AttributeError:
            raise TypeError("Can not load '%s' from '%s'" % (obj_name, mod_name))
    if not callable(value):
        raise TypeError("Value is not callable: %s" % (value,))
    return value


def check(name, value, wanted):
    """Resolves a hook and checks its arity; post_request takes 2, 3 or 4 arguments and is
    wrapped to always take 4, as gunicorn does."""
    fn = resolve(value)
    n = arity(fn)
    if name == "post_request":
        if n == 4:
            return fn
        if n == 3:
            return lambda worker, req, environ, resp: fn(worker, req, environ)
        if n == 2:
            return lambda worker, req, environ, resp: fn(worker, req)
        raise TypeError("Value must have an arity of: 4")
    if n != wanted:
        raise TypeError("Value must have an arity of: %d" % wanted)
    return fn
