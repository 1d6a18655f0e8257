# The Python side of --logger-class: loading the class as gunicorn's util.load_class does, the
# `cfg` object it is built with, and the `resp` / `req` objects its access() receives. Executed
# by logger_class.rs as "gunicorn_rs_logger_class". gunicorn.glogging itself comes from the
# `gunicorn` package, or in the bare binary from the built-in modules (builtin_package.rs).
import ast
import datetime
import importlib
import os
import sys
import traceback

DEFAULT = "gunicorn.glogging.Logger"


def _not_found(uri):
    # Called inside the `except` block: the traceback is the one being handled.
    return RuntimeError("class uri %r invalid or not found: \n\n[%s]"
                        % (uri, traceback.format_exc()))


def _entry_point(dist, name):
    from importlib import metadata
    try:
        entry_points = metadata.distribution(dist).entry_points
    except metadata.PackageNotFoundError:
        # No such distribution (this server's is gunicorn-rs): no such entry point either.
        entry_points = []
    found = [ep for ep in entry_points
             if ep.group == "gunicorn.loggers" and ep.name == name]
    if not found:
        raise ImportError("Entry point %r not found" % (("gunicorn.loggers", name),))
    return found[0].load()


def load_class(uri):
    """A class from `egg:DIST#NAME` (an entry point of the group gunicorn.loggers), a bare
    NAME (an entry point of the gunicorn distribution) or `module.Class`; RuntimeError with
    gunicorn's "class uri ... invalid or not found" text otherwise."""
    if uri.startswith("egg:"):
        dist, _, name = uri[len("egg:"):].rpartition("#")
        if not dist:
            dist, name = name, DEFAULT
        try:
            return _entry_point(dist, name)
        except Exception:
            raise _not_found(uri) from None
    module_name, _, class_name = uri.rpartition(".")
    if not module_name:
        try:
            return _entry_point("gunicorn", uri.lstrip("#"))
        except Exception:
            raise _not_found(uri) from None
    try:
        module = importlib.import_module(module_name)
    except Exception:
        raise _not_found(uri) from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        # gunicorn 27 fails here with an unrelated TypeError ("'str' object is not
        # callable"); the same message as for a missing module says what is wrong.
        raise _not_found(uri) from None


class Config:
    """The `cfg` a logger is built with: every setting as an attribute, as gunicorn's Config
    (`cfg.loglevel`, `cfg.accesslog`, `cfg.user` as a uid...)."""

    def __init__(self, values):
        self.__dict__.update(values)
        self.settings = dict(values)

    def __repr__(self):
        return "<Config %d settings>" % len(self.settings)


def make_config(rows, exact):
    """`rows`: [(name, text)] as --print-config shows them, literals made Python values;
    `exact`: the values given as Python objects already (strings that must stay strings)."""
    values = {}
    for name, text in rows:
        try:
            values[name] = ast.literal_eval(text)
        except Exception:
            values[name] = text
    values.update(exact)
    # gunicorn's cfg.user / cfg.group are numeric ids (this process's when unset).
    values["user"] = _numeric_id(values.get("user"), os.geteuid, "pwd", "getpwnam", "pw_uid")
    values["group"] = _numeric_id(values.get("group"), os.getegid, "grp", "getgrnam", "gr_gid")
    return Config(values)


def _numeric_id(value, current, module, lookup, field):
    if value is None or value == "":
        return current()
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return getattr(getattr(importlib.import_module(module), lookup)(str(value)), field)
    except KeyError:
        return current()


def build(cls, cfg):
    """The logger instance; a class with an `install` hook gets it called first (gunicorn's
    Config.logger_class does so)."""
    if hasattr(cls, "install"):
        cls.install()
    logger = cls(cfg)
    close = getattr(logger, "close_on_exec", None)
    if close is not None:
        close()
    return logger


class Response:
    """The `resp` access() receives: gunicorn's http.wsgi.Response attributes."""

    def __init__(self, status, headers, sent, version):
        self.status = status
        self.status_code = int(status.split(None, 1)[0]) if status else None
        self.headers = headers
        self.sent = sent
        self.version = version
        self.headers_sent = True
        self.response_length = None
        self.chunked = False
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                try:
                    self.response_length = int(value)
                except ValueError:
                    pass
            elif lower == "transfer-encoding" and "chunked" in value.lower():
                self.chunked = True

    def __repr__(self):
        return "<Response %s>" % self.status


def access(logger, req, environ, status, headers, sent, micros, server):
    resp = Response(status, headers, sent, server)
    logger.access(resp, req, environ, datetime.timedelta(microseconds=micros))
