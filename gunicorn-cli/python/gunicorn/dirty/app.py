"""The ``DirtyApp`` base class and how the dirty workers load the apps of ``dirty_apps``."""

import importlib
import sys

from .errors import DirtyAppError, DirtyAppNotFoundError


class DirtyApp:
    """A stateful application living in the dirty workers.

    Each dirty worker that loads the app makes one instance, calls ``init()`` once, then calls
    the instance for every task: ``app(action, *args, **kwargs)``, which by default runs the
    method named ``action`` (names starting with ``_`` are refused). ``close()`` runs when the
    worker stops. Attributes set in ``init()`` or by an action stay for the worker's life.

    ``workers``: how many dirty workers load this app (``None``: all of them). The
    ``module:Class:N`` form of ``dirty_apps`` overrides it.

    With ``dirty_threads > 1`` several tasks run at once in one worker: the app must be
    thread-safe.
    """

    workers = None

    def init(self):
        """Loads the app's resources (a model, a connection pool...). Runs in the dirty worker."""

    def __call__(self, action, *args, **kwargs):
        method = getattr(self, action, None) if isinstance(action, str) else None
        if method is None or action.startswith("_"):
            raise ValueError("Unknown action: %s" % (action,))
        return method(*args, **kwargs)

    def close(self):
        """Releases the app's resources when the dirty worker stops."""


def _bad_format(spec):
    return DirtyAppError(
        "Invalid import path format: %s. Expected 'module.path:ClassName' or "
        "'module.path:ClassName:N'" % spec, app_path=spec)


def parse_dirty_app_spec(spec):
    """``"pkg.mod:Class"`` -> ``("pkg.mod:Class", None)``; ``"pkg.mod:Class:2"`` ->
    ``("pkg.mod:Class", 2)``. Raises ``DirtyAppError`` for any other shape or a count below 1."""
    parts = spec.split(":") if isinstance(spec, str) else []
    if len(parts) == 2 and all(parts):
        return spec, None
    if len(parts) == 3 and parts[0] and parts[1]:
        try:
            count = int(parts[2])
        except ValueError:
            raise DirtyAppError(
                "Invalid worker count in spec: %s. Expected integer, got '%s'"
                % (spec, parts[2]), app_path=spec) from None
        if count < 1:
            raise DirtyAppError(
                "Invalid worker count in spec: %s. Worker count must be >= 1, got %d"
                % (spec, count), app_path=spec)
        return "%s:%s" % (parts[0], parts[1]), count
    raise _bad_format(spec)


def _find_class(import_path):
    if ":" not in import_path:
        raise _bad_format(import_path)
    module_name, class_name = import_path.rsplit(":", 1)
    try:
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
    except ImportError as e:
        raise DirtyAppNotFoundError(import_path) from e
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise DirtyAppNotFoundError(import_path) from None
    if not isinstance(cls, type):
        raise DirtyAppError("%s is not a class" % import_path, app_path=import_path)
    return cls


def get_app_workers_attribute(import_path):
    """The ``workers`` class attribute of the app, without making an instance."""
    return getattr(_find_class(import_path), "workers", None)


def load_dirty_app(import_path):
    """Imports the class at ``module:Class`` and returns an instance of it."""
    cls = _find_class(import_path)
    try:
        app = cls()
    except Exception as e:
        raise DirtyAppError("Failed to instantiate %s: %s" % (import_path, e),
                            app_path=import_path) from e
    for name in ("init", "__call__", "close"):
        if not callable(getattr(app, name, None)):
            raise DirtyAppError("%s is missing required method: %s" % (import_path, name),
                                app_path=import_path)
    return app


def load_dirty_apps(import_paths):
    """``{import_path: instance}`` for every path."""
    return {path: load_dirty_app(path) for path in import_paths}
