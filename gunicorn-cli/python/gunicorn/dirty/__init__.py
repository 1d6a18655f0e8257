"""Dirty arbiters (gunicorn 25+): a second pool of long-lived worker processes for blocking or
heavy work (ML models, big computations), called by the web workers.

Configure ``dirty_apps`` (``module:Class`` or ``module:Class:N``) and ``dirty_workers``; write
each app as a ``DirtyApp`` subclass; call it from a web worker::

    from gunicorn.dirty import get_dirty_client

    result = get_dirty_client().execute("myapp.ml:Model", "predict", data)

See docs/dirty.md.
"""

from . import stash
from .app import DirtyApp
from .arbiter import DirtyArbiter
from .client import (
    DirtyClient,
    close_dirty_client,
    close_dirty_client_async,
    get_dirty_client,
    get_dirty_client_async,
    set_dirty_socket_path,
)
from .errors import (
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyConnectionError,
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtyTimeoutError,
    DirtyWorkerError,
)
from .stash import (
    StashClient,
    StashError,
    StashKeyNotFoundError,
    StashTable,
    StashTableNotFoundError,
)

__all__ = [
    "DirtyError", "DirtyTimeoutError", "DirtyConnectionError", "DirtyWorkerError",
    "DirtyAppError", "DirtyAppNotFoundError", "DirtyNoWorkersAvailableError",
    "DirtyProtocolError", "DirtyApp", "DirtyClient", "get_dirty_client",
    "get_dirty_client_async", "close_dirty_client", "close_dirty_client_async", "stash",
    "StashClient", "StashTable", "StashError", "StashTableNotFoundError",
    "StashKeyNotFoundError", "DirtyArbiter", "set_dirty_socket_path",
]
