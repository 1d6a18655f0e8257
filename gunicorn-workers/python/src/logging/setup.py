# Python logging inside a gunicorn-rs process: the "gunicorn.error" and "gunicorn.access"
# loggers an application (or a Flask recipe reusing their handlers) expects, writing to the
# destinations the Rust side owns, then the user's logging configuration applied on top.
import logging
# Imported even without a logging configuration (~0.9 MiB per worker with the logging.handlers,
# socketserver, pickle and queue it brings): gunicorn's workers always have it, and apps that
# call logging.config.dictConfig() after a bare `import logging` rely on that.
import logging.config
import os

GENERIC_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
GENERIC_DATEFMT = "[%Y-%m-%d %H:%M:%S %z]"


class GunicornHandler(logging.Handler):
    """Hands each formatted record to gunicorn's log writer (which reopens its files on USR1
    and also feeds syslog)."""

    def __init__(self, sink, level=logging.NOTSET):
        super().__init__(level)
        self.sink = sink

    def emit(self, record):
        try:
            self.sink(record.levelno, self.format(record), record.getMessage())
        except Exception:
            self.handleError(record)


def dict_defaults():
    # What gunicorn merges a logconfig_dict / logconfig_json over: the root logger and
    # gunicorn.access on stdout, gunicorn.error on stderr, all with the generic format.
    console = {"class": "logging.StreamHandler", "formatter": "generic",
               "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"],
                               "propagate": True, "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"],
                                "propagate": True, "qualname": "gunicorn.access"},
        },
        "handlers": {
            "console": console,
            "error_console": dict(console, stream="ext://sys.stderr"),
        },
        "formatters": {
            "generic": {"format": GENERIC_FORMAT, "datefmt": GENERIC_DATEFMT,
                        "class": "logging.Formatter"},
        },
    }


def install(error_sink, access_sink, level, access_enabled, config_dict, config_json,
            config_ini):
    if getattr(logging, "_gunicorn_rs_installed", False):
        return False
    error_log = logging.getLogger("gunicorn.error")
    error_log.propagate = False
    error_log.setLevel(level)
    handler = GunicornHandler(error_sink)
    handler.setFormatter(logging.Formatter(GENERIC_FORMAT, GENERIC_DATEFMT))
    error_log.handlers = [handler]

    access_log = logging.getLogger("gunicorn.access")
    access_log.propagate = False
    access_log.setLevel(logging.INFO)
    access_log.handlers = []
    if access_enabled:
        handler = GunicornHandler(access_sink)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.handlers = [handler]

    configured = False
    if config_dict:
        merged = dict_defaults()
        merged.update(config_dict)
        logging.config.dictConfig(merged)
        configured = True
    elif config_json:
        import json
        with open(config_json) as f:
            user = json.load(f)
        merged = dict_defaults()
        merged.update(user)
        logging.config.dictConfig(merged)
        configured = True
    elif config_ini:
        if not os.path.exists(config_ini):
            raise RuntimeError("Error: log config '%s' not found" % config_ini)
        defaults = {"__file__": config_ini, "here": os.path.dirname(config_ini)}
        logging.config.fileConfig(config_ini, defaults=defaults,
                                  disable_existing_loggers=False)
        configured = True
    logging._gunicorn_rs_installed = True
    return configured


def reopen_files():
    """USR1: reopen the files of every FileHandler (logrotate moved them away)."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger()] + [
        lg for lg in list(manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
    seen = set()
    for lg in loggers:
        for handler in lg.handlers:
            if not isinstance(handler, logging.FileHandler) or id(handler) in seen:
                continue
            seen.add(id(handler))
            handler.acquire()
            try:
                if handler.stream is not None:
                    handler.stream.close()
                    handler.stream = handler._open()
            finally:
                handler.release()
