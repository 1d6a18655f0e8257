# Logger classes for --logger-class (gunicorn-cli/tests/logger_class.rs), written as gunicorn
# users write them: subclasses of gunicorn.glogging.Logger. The app is logger_app.py.
import json
import logging
import os

from gunicorn import glogging


class JsonAccessLogger(glogging.Logger):
    """The common recipe: one JSON object per request, built from atoms() and the
    resp / req / request_time objects."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        self.access_log.info(json.dumps({
            "remote_ip": atoms["h"],
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "version": list(req.version),
            "req_user_agent": dict(req.headers).get("USER-AGENT"),
            "status": resp.status,
            "status_code": resp.status_code,
            "trace": dict(resp.headers).get("X-Trace"),
            "length": resp.response_length,
            "sent": resp.sent,
            "duration_ok": request_time.total_seconds() >= 0,
            "atom_status": atoms["s"],
            "atom_user_agent": atoms["a"],
            "atom_header": atoms["{x-req}i"],
            "pid_matches": atoms["p"] == "<%d>" % os.getpid(),
        }, sort_keys=True))


class JsonErrorLogger(JsonAccessLogger):
    """Also the error log as JSON: setup() gives both loggers' handlers a JSON formatter."""

    class Formatter(logging.Formatter):
        def format(self, record):
            return json.dumps({"level": record.levelname, "message": record.getMessage()})

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(self.Formatter())


class DropHealth(logging.Filter):
    def filter(self, record):
        return "/health" not in record.getMessage()


class ExtraHandlerLogger(glogging.Logger):
    """setup() adds a handler of its own to both loggers (a file named by the environment)
    and a filter that drops health checks from the access log."""

    def setup(self, cfg):
        super().setup(cfg)
        handler = logging.FileHandler(os.environ["EXTRA_LOG_FILE"])
        handler.setFormatter(logging.Formatter("extra %(name)s %(levelname)s %(message)s"))
        self.error_log.addHandler(handler)
        self.access_log.addHandler(handler)
        self.access_log.addFilter(DropHealth())


class FormatLogger(glogging.Logger):
    """Only the class attributes change: gunicorn formats with them."""

    access_fmt = "ACCESS %(message)s"
    error_fmt = "%(levelname)s|%(message)s"


class Broken(glogging.Logger):
    def __init__(self, cfg):
        raise ValueError("this logger refuses to start")


class Install(glogging.Logger):
    """gunicorn calls a class's install() hook before building it."""

    installed = False

    @classmethod
    def install(cls):
        cls.installed = True

    def setup(self, cfg):
        super().setup(cfg)
        self.info("install() ran: %s", type(self).installed)
