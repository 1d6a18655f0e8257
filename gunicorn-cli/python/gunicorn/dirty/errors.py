"""The exceptions of the dirty arbiter API, as gunicorn 25+ names them.

Every error raised by ``DirtyClient.execute`` is a ``DirtyError``. An error crosses the process
boundary as a dict (``to_dict`` / ``DirtyError.from_dict``) and is raised in the web worker as
the class it had in the dirty worker, with its ``message`` and ``details``.
"""


class DirtyError(Exception):
    """Base class of every dirty arbiter error: ``message`` and a ``details`` dict."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.message = message
        self.details = dict(details) if details else {}

    def __str__(self):
        if self.details:
            return "%s: %s" % (self.message, self.details)
        return self.message

    def to_dict(self):
        return {
            "error_type": type(self).__name__,
            "message": self.message,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data):
        """Rebuilds the error sent by the dirty side: same class (``DirtyError`` for a name it
        does not know), same message, same details, and the attributes each class has."""
        kind = _CLASSES.get(data.get("error_type"), DirtyError)
        error = kind.__new__(kind)
        message = data.get("message") or "Unknown error"
        DirtyError.__init__(error, message, data.get("details") or {})
        for attr in _ATTRIBUTES.get(kind, ()):
            setattr(error, attr, error.details.get(attr))
        return error


class DirtyTimeoutError(DirtyError):
    """The task did not finish within the timeout (``timeout``: the seconds it had)."""

    def __init__(self, message="Operation timed out", timeout=None):
        super().__init__(message, {"timeout": timeout} if timeout else None)
        self.timeout = timeout


class DirtyConnectionError(DirtyError):
    """The dirty arbiter's socket cannot be reached."""

    def __init__(self, message="Connection failed", socket_path=None):
        super().__init__(message, {"socket_path": socket_path} if socket_path else None)
        self.socket_path = socket_path


class DirtyWorkerError(DirtyError):
    """The dirty worker failed (it died, or could not be talked to)."""

    def __init__(self, message, worker_id=None, traceback=None):
        details = {}
        if worker_id is not None:
            details["worker_id"] = worker_id
        if traceback:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.worker_id = worker_id
        self.traceback = traceback


class DirtyAppError(DirtyError):
    """The dirty app raised: ``app_path``, ``action`` and the dirty side's ``traceback``."""

    def __init__(self, message, app_path=None, action=None, traceback=None):
        details = {}
        if app_path:
            details["app_path"] = app_path
        if action:
            details["action"] = action
        if traceback:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.app_path = app_path
        self.action = action
        self.traceback = traceback


class DirtyAppNotFoundError(DirtyAppError):
    """No dirty app of that import path is configured (or it cannot be imported)."""

    def __init__(self, app_path):
        super().__init__("Dirty app not found: %s" % app_path, app_path=app_path)


class DirtyNoWorkersAvailableError(DirtyError):
    """The app is configured but no dirty worker that loaded it is running right now (e.g. its
    only worker died and its replacement is booting)."""

    def __init__(self, app_path, message=None):
        super().__init__(message or "No workers available for app: %s" % app_path,
                         {"app_path": app_path})
        self.app_path = app_path


class DirtyProtocolError(DirtyError):
    """A message could not be encoded or decoded."""

    def __init__(self, message="Protocol error", raw_data=None):
        details = {}
        if raw_data is not None:
            if isinstance(raw_data, bytes):
                raw_data = raw_data[:100].hex()
            details["raw_data"] = str(raw_data)[:200]
        super().__init__(message, details)


_CLASSES = {c.__name__: c for c in (
    DirtyError, DirtyTimeoutError, DirtyConnectionError, DirtyWorkerError, DirtyAppError,
    DirtyAppNotFoundError, DirtyNoWorkersAvailableError, DirtyProtocolError)}

_ATTRIBUTES = {
    DirtyTimeoutError: ("timeout",),
    DirtyConnectionError: ("socket_path",),
    DirtyWorkerError: ("worker_id", "traceback"),
    DirtyAppError: ("app_path", "action", "traceback"),
    DirtyAppNotFoundError: ("app_path", "action", "traceback"),
    DirtyNoWorkersAvailableError: ("app_path",),
}
