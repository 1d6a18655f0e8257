"""``gunicorn.glogging``: the logger class that ``--logger-class`` subclasses.

gunicorn-rs writes its default log lines in Rust. When ``logger_class`` names another class,
the master imports it, builds one instance with the configuration (``cfg``: every setting as
an attribute), and from then on every line of the master and of the workers goes through that
instance: the server's own messages through ``critical()`` ... ``debug()``, each finished
request through ``access(resp, req, environ, request_time)``. This module is the base class
with gunicorn's API (class attributes, methods, the ``gunicorn.error`` / ``gunicorn.access``
loggers), so that a subclass written for gunicorn works unchanged. See docs/logging.md.

The same source is built into the ``gunicorn`` command: without the pip package (the bare Rust
binary) ``gunicorn.glogging`` is still importable, by the config file, the logger class and the
application.
"""

import base64
import binascii
import json
import logging
import logging.config
import logging.handlers
import os
import socket
import sys
import threading
import time
import traceback

# The facility names syslog(3) knows, with their codes (RFC 5424 section 6.2.1), as accepted by
# --log-syslog-facility.
SYSLOG_FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

_GENERIC = {
    "format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s",
    "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
    "class": "logging.Formatter",
}

# What a logconfig_dict / --log-config-json is merged over (top-level keys replaced), as in
# gunicorn: the root logger and gunicorn.access on stdout, gunicorn.error on stderr.
CONFIG_DEFAULTS = {
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
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {"generic": dict(_GENERIC)},
}


def loggers():
    """Every logger created so far (the root excluded)."""
    names = list(logging.root.manager.loggerDict)
    return [logging.getLogger(name) for name in names]


class SafeAtoms(dict):
    """The access-log atoms as ``access_log_format`` reads them: double quotes in strings are
    escaped, an unknown atom is ``-``, and ``{header}i``-style atoms ignore case."""

    def __init__(self, atoms):
        super().__init__()
        for key, value in atoms.items():
            self[key] = value.replace('"', '\\"') if isinstance(value, str) else value

    def __getitem__(self, key):
        if key.startswith("{"):
            key = key.lower()
        try:
            return super().__getitem__(key)
        except KeyError:
            return "-"


def parse_syslog_address(addr):
    """``udp://HOST:PORT``, ``tcp://HOST:PORT`` or ``unix://PATH[#dgram|#stream]`` as
    ``(socket type, address)`` for ``logging.handlers.SysLogHandler``."""
    if addr.startswith("unix://"):
        path, _, kind = addr[len("unix://"):].partition("#")
        # None lets SysLogHandler try a datagram socket, then a stream one.
        return (socket.SOCK_DGRAM if kind == "dgram" else None, path)
    for scheme, kind in (("udp://", socket.SOCK_DGRAM), ("tcp://", socket.SOCK_STREAM)):
        if addr.startswith(scheme):
            rest = addr[len(scheme):]
            break
    else:
        raise RuntimeError("invalid syslog address")
    if rest.startswith("[") and "]" in rest:
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = rest.partition(":")
    host = host.lower() or "localhost"
    if not port:
        return (kind, (host, 514))
    if not port.isdigit():
        raise RuntimeError("%r is not a valid port number." % port)
    return (kind, (host, int(port)))


def _check_writable(path):
    """gunicorn refuses a log file it cannot append to, with this message."""
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise RuntimeError("Error: '%s' isn't writable [%r]" % (path, e)) from e


class Logger:
    """gunicorn's logger: error lines to ``gunicorn.error``, access lines to
    ``gunicorn.access``, each with the handlers ``setup()`` gives them from the settings."""

    LOG_LEVELS = {
        "critical": logging.CRITICAL,
        "error": logging.ERROR,
        "warning": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG,
    }
    loglevel = logging.INFO

    error_fmt = r"%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
    datefmt = r"[%Y-%m-%d %H:%M:%S %z]"
    access_fmt = "%(message)s"
    syslog_fmt = "[%(process)d] %(message)s"

    atoms_wrapper_class = SafeAtoms

    def __init__(self, cfg):
        self.error_log = logging.getLogger("gunicorn.error")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("gunicorn.access")
        self.access_log.propagate = False
        self.error_handlers = []
        self.access_handlers = []
        self.logfile = None
        self.lock = threading.Lock()
        self.cfg = cfg
        self.setup(cfg)

    # ---- configuration ----

    def setup(self, cfg):
        """(Re)builds the handlers from ``cfg``; run at start and again on HUP."""
        self.cfg = cfg
        self._access_log_enabled = self._compute_access_log_enabled()
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)

        # A second setup (HUP) replaces the handlers the first one made.
        for log in (self.error_log, self.access_log):
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)

        if cfg.capture_output and cfg.errorlog != "-":
            self._capture_output()

        self._set_handler(self.error_log, cfg.errorlog,
                          logging.Formatter(self.error_fmt, self.datefmt))
        if cfg.accesslog is not None:
            self._set_handler(self.access_log, cfg.accesslog,
                              fmt=logging.Formatter(self.access_fmt), stream=sys.stdout)

        if cfg.syslog:
            self._set_syslog_handler(self.error_log, cfg, self.syslog_fmt, "error")
            if not cfg.disable_redirect_access_to_syslog:
                self._set_syslog_handler(self.access_log, cfg, self.syslog_fmt, "access")

        self._apply_logconfig(cfg)

    def _apply_logconfig(self, cfg):
        if cfg.logconfig_dict:
            merged = dict(CONFIG_DEFAULTS)
            merged.update(cfg.logconfig_dict)
            try:
                logging.config.dictConfig(merged)
            except (AttributeError, ImportError, ValueError, TypeError) as e:
                raise RuntimeError(str(e)) from e
        elif cfg.logconfig_json:
            if not os.path.exists(cfg.logconfig_json):
                return
            merged = dict(CONFIG_DEFAULTS)
            try:
                with open(cfg.logconfig_json) as f:
                    merged.update(json.load(f))
                logging.config.dictConfig(merged)
            except (json.JSONDecodeError, AttributeError, ImportError, ValueError,
                    TypeError) as e:
                raise RuntimeError(str(e)) from e
        elif cfg.logconfig:
            if not os.path.exists(cfg.logconfig):
                raise RuntimeError("Error: log config '%s' not found" % cfg.logconfig)
            defaults = dict(CONFIG_DEFAULTS)
            defaults["__file__"] = cfg.logconfig
            defaults["here"] = os.path.dirname(cfg.logconfig)
            logging.config.fileConfig(cfg.logconfig, defaults=defaults,
                                      disable_existing_loggers=False)

    def _capture_output(self):
        """--capture-output: stdout and stderr (fds 1 and 2) go to the error log file."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        with self.lock:
            if self.logfile is not None:
                self.logfile.close()
            self.logfile = open(self.cfg.errorlog, "a+")
            os.dup2(self.logfile.fileno(), sys.stdout.fileno())
            os.dup2(self.logfile.fileno(), sys.stderr.fileno())

    # ---- the error log ----

    def critical(self, msg, *args, **kwargs):
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    # ---- the access log ----

    def atoms(self, resp, req, environ, request_time):
        """The values ``access_log_format`` can name, for one finished request."""
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        seconds, micros = request_time.seconds, request_time.microseconds
        method = environ.get("REQUEST_METHOD")
        atoms = {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": "%s %s %s" % (method, environ.get("RAW_URI"), environ.get("SERVER_PROTOCOL")),
            "s": status,
            "m": method,
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "H": environ.get("SERVER_PROTOCOL"),
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": seconds,
            "D": seconds * 1000000 + micros,
            "M": seconds * 1000 + micros // 1000,
            "L": "%d.%06d" % (seconds, micros),
            "p": "<%s>" % os.getpid(),
        }
        req_headers = getattr(req, "headers", req)
        if hasattr(req_headers, "items"):
            req_headers = req_headers.items()
        for name, value in req_headers:
            atoms["{%s}i" % name.lower()] = value
        resp_headers = resp.headers
        if hasattr(resp_headers, "items"):
            resp_headers = resp_headers.items()
        for name, value in resp_headers:
            atoms["{%s}o" % name.lower()] = value
        for name, value in environ.items():
            atoms["{%s}e" % name.lower()] = value
        return atoms

    @property
    def access_log_enabled(self):
        """Whether an access line goes anywhere (computed by ``setup()``)."""
        try:
            return self._access_log_enabled
        except AttributeError:
            return self._compute_access_log_enabled()

    def _compute_access_log_enabled(self):
        cfg = self.cfg
        return bool(cfg.accesslog or cfg.logconfig or cfg.logconfig_dict or cfg.logconfig_json
                    or (cfg.syslog and not cfg.disable_redirect_access_to_syslog))

    def access(self, resp, req, environ, request_time):
        """Logs one finished request with ``access_log_format`` (Apache's combined format by
        default: http://httpd.apache.org/docs/2.4/logs.html#combined)."""
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(self.cfg.access_log_format, atoms)
        except Exception:
            self.error(traceback.format_exc())

    def now(self):
        """The time in Apache's common log format: ``[05/Dec/2026:02:43:03 +0000]``."""
        return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")

    # ---- files ----

    def reopen_files(self):
        """USR1 (after logrotate): every FileHandler opens its file again."""
        if self.cfg.capture_output and self.cfg.errorlog != "-":
            self._capture_output()
        for log in loggers():
            for handler in log.handlers:
                if not isinstance(handler, logging.FileHandler):
                    continue
                handler.acquire()
                try:
                    if handler.stream:
                        handler.close()
                        handler.stream = handler._open()
                finally:
                    handler.release()

    def close_on_exec(self):
        """Marks the log files close-on-exec (USR2 re-executes the master)."""
        import fcntl
        for log in loggers():
            for handler in log.handlers:
                if not isinstance(handler, logging.FileHandler):
                    continue
                handler.acquire()
                try:
                    if handler.stream:
                        fd = handler.stream.fileno()
                        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
                        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
                finally:
                    handler.release()

    # ---- handlers ----

    def _get_gunicorn_handler(self, log):
        for handler in log.handlers:
            if getattr(handler, "_gunicorn", False):
                return handler
        return None

    def _set_handler(self, log, output, fmt, stream=None):
        """Gives ``log`` one handler of ours for ``output`` (``-``: ``stream``, stderr when
        None), replacing the previous one."""
        previous = self._get_gunicorn_handler(log)
        if previous is not None:
            log.handlers.remove(previous)
        if output is None:
            return
        if output == "-":
            handler = logging.StreamHandler(stream)
        else:
            _check_writable(output)
            handler = logging.FileHandler(output)
            # The workers run as --user/--group and must still be able to reopen it.
            try:
                os.chown(handler.baseFilename, self.cfg.user, self.cfg.group)
            except OSError:
                pass  # not ours to give (e.g. /dev/null)
        handler.setFormatter(fmt)
        handler._gunicorn = True
        log.addHandler(handler)

    def _set_syslog_handler(self, log, cfg, fmt, name):
        prefix = cfg.syslog_prefix or cfg.proc_name.replace(":", ".")
        formatter = logging.Formatter("gunicorn.%s.%s: %s" % (prefix, name, fmt))
        try:
            facility = SYSLOG_FACILITIES[cfg.syslog_facility.lower()]
        except KeyError as e:
            raise RuntimeError("unknown facility name") from e
        socktype, address = parse_syslog_address(cfg.syslog_addr)
        handler = logging.handlers.SysLogHandler(address=address, facility=facility,
                                                 socktype=socktype)
        handler.setFormatter(formatter)
        handler._gunicorn = True
        log.addHandler(handler)

    def _get_user(self, environ):
        """The user name of HTTP Basic authentication (RFC 7617), or None."""
        auth = environ.get("HTTP_AUTHORIZATION")
        if not auth or not auth.lower().startswith("basic"):
            return None
        parts = auth.split(" ", 1)
        if len(parts) != 2:
            return None
        try:
            decoded = base64.b64decode(parts[1].strip().encode("utf-8"))
            return decoded.split(b":", 1)[0].decode("utf-8")
        except (TypeError, binascii.Error, UnicodeDecodeError) as e:
            self.debug("Couldn't get username: %s", e)
            return None
