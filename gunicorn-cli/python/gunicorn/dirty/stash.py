"""The stash: key-value tables kept in the dirty arbiter's memory, shared by every dirty
worker and web worker of the server (gunicorn 25's ``gunicorn.dirty.stash``).

``stash.put(table, key, value)``, ``get(table, key, default=None)``, ``delete``, ``keys(table,
pattern=None)`` (fnmatch patterns), ``clear``, ``info`` (``{"size", "table"}``), ``ensure``,
``exists(table, key=None)``, ``delete_table``, ``tables()`` and ``table(name)`` (a dict-like
view). A table is created by its first ``put``. The tables live as long as the dirty arbiter:
if it dies and is started again, they are empty. Values travel like task arguments (JSON values
and bytes); keys must be strings or numbers.
"""

import fnmatch
import socket
import threading
import uuid

from . import protocol
from .errors import DirtyError


class StashError(DirtyError):
    """A stash operation failed."""


class StashTableNotFoundError(StashError):
    def __init__(self, table_name):
        self.table_name = table_name
        super().__init__("Stash table not found: %s" % (table_name,))


class StashKeyNotFoundError(StashError):
    def __init__(self, table_name, key):
        self.table_name = table_name
        self.key = key
        super().__init__("Key not found in %s: %s" % (table_name, key))


_MISSING_KEY = "StashKeyNotFoundError"
_MISSING_TABLE = "StashTableNotFoundError"


def _key(key):
    # JSON turns numbers-as-keys into strings nowhere (keys travel as values), so a key is kept
    # as sent; lists (JSON's tuples) are not hashable and are refused.
    if isinstance(key, (list, dict)):
        raise StashError("Stash keys must be strings or numbers, not %s" % type(key).__name__)
    return key


def handle(tables, message):
    """The arbiter's answer to one stash message (runs in the arbiter's loop)."""
    request_id = message.get("id") or "unknown"
    op = message.get("op")
    name = message.get("table")
    try:
        table = tables.get(name)
        if op == "put":
            tables.setdefault(name, {})[_key(message.get("key"))] = message.get("value")
            result = True
        elif op == "get":
            key = _key(message.get("key"))
            if table is None or key not in table:
                return _error(request_id, _MISSING_KEY, "Key not found: %s" % (key,))
            result = table[key]
        elif op == "delete":
            key = _key(message.get("key"))
            result = table is not None and table.pop(key, _error) is not _error
        elif op == "keys":
            pattern = message.get("pattern")
            result = [k for k in (table or ())
                      if not pattern or fnmatch.fnmatch(str(k), pattern)]
        elif op == "clear":
            if table is not None:
                table.clear()
            result = True
        elif op == "info":
            if table is None:
                return _error(request_id, _MISSING_TABLE, "Table not found: %s" % (name,))
            result = {"size": len(table), "table": name}
        elif op == "ensure":
            tables.setdefault(name, {})
            result = True
        elif op == "delete_table":
            result = tables.pop(name, None) is not None
        elif op == "tables":
            result = list(tables)
        elif op == "exists":
            key = message.get("key")
            result = table is not None and (key is None or _key(key) in table)
        else:
            return _error(request_id, "StashError", "Unknown stash operation: %s" % (op,))
    except StashError as e:
        return _error(request_id, "StashError", e.message)
    except TypeError as e:
        return _error(request_id, "StashError", str(e))
    return protocol.make_response(request_id, result)


def _error(request_id, kind, message):
    return {"type": protocol.MSG_TYPE_ERROR, "id": request_id,
            "error": {"error_type": kind, "message": message, "details": {}}}


class StashClient:
    """A connection to the dirty arbiter for stash operations."""

    def __init__(self, socket_path, timeout=30.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self._sock = None
        self._lock = threading.Lock()

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise StashError("Failed to connect to dirty arbiter: %s" % e) from e
        self._sock = sock

    def close(self):
        with self._lock:
            self._drop()

    def _drop(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _execute(self, op, table, key=None, value=None, pattern=None):
        message = {"type": protocol.MSG_TYPE_STASH, "id": str(uuid.uuid4()), "op": op,
                   "table": table, "key": key, "value": value, "pattern": pattern}
        with self._lock:
            if self._sock is None:
                self._connect()
            try:
                protocol.write_message(self._sock, message)
                reply = protocol.read_message(self._sock)
            except Exception as e:
                self._drop()
                if isinstance(e, StashError):
                    raise
                raise StashError("Stash operation failed: %s" % e) from e
        if reply.get("type") == protocol.MSG_TYPE_RESPONSE:
            return reply.get("result")
        error = reply.get("error") or {}
        kind = error.get("error_type")
        if kind == _MISSING_TABLE:
            raise StashTableNotFoundError(table)
        if kind == _MISSING_KEY:
            raise StashKeyNotFoundError(table, key)
        raise StashError(error.get("message") or "Unknown error")

    def put(self, table, key, value):
        self._execute("put", table, key=key, value=value)

    def get(self, table, key, default=None):
        try:
            return self._execute("get", table, key=key)
        except StashKeyNotFoundError:
            return default

    def delete(self, table, key):
        return self._execute("delete", table, key=key)

    def keys(self, table, pattern=None):
        return self._execute("keys", table, pattern=pattern)

    def clear(self, table):
        self._execute("clear", table)

    def info(self, table):
        return self._execute("info", table)

    def ensure(self, table):
        self._execute("ensure", table)

    def exists(self, table, key=None):
        return self._execute("exists", table, key=key)

    def delete_table(self, table):
        return self._execute("delete_table", table)

    def tables(self):
        return self._execute("tables", "")

    def table(self, name):
        return StashTable(self, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class StashTable:
    """A dict-like view of one table: ``t[key]``, ``t[key] = v``, ``del t[key]``, ``in``,
    ``len``, iteration over keys, ``get``, ``keys``, ``items``, ``values``, ``clear``."""

    def __init__(self, client, name):
        self._client = client
        self._name = name

    @property
    def name(self):
        return self._name

    def __getitem__(self, key):
        try:
            return self._client._execute("get", self._name, key=key)
        except StashKeyNotFoundError:
            raise KeyError(key) from None

    def __setitem__(self, key, value):
        self._client.put(self._name, key, value)

    def __delitem__(self, key):
        if not self._client.delete(self._name, key):
            raise KeyError(key)

    def __contains__(self, key):
        return self._client.exists(self._name, key)

    def __iter__(self):
        return iter(self._client.keys(self._name))

    def __len__(self):
        try:
            return self._client.info(self._name).get("size", 0)
        except StashTableNotFoundError:
            return 0

    def get(self, key, default=None):
        return self._client.get(self._name, key, default)

    def keys(self, pattern=None):
        return self._client.keys(self._name, pattern=pattern)

    def clear(self):
        self._client.clear(self._name)

    def items(self):
        for key in self._client.keys(self._name):
            yield key, self._client.get(self._name, key)

    def values(self):
        for key in self._client.keys(self._name):
            yield self._client.get(self._name, key)


_thread_local = threading.local()
_socket_path = None


def set_stash_socket_path(path):
    global _socket_path
    _socket_path = path


def get_stash_socket_path():
    from .client import get_dirty_socket_path
    if _socket_path:
        return _socket_path
    try:
        return get_dirty_socket_path()
    except DirtyError:
        raise StashError("Stash socket path not configured. "
                         "Make sure dirty_workers > 0 and dirty_apps are configured.") from None


def _client():
    client = getattr(_thread_local, "client", None)
    if client is None:
        client = StashClient(get_stash_socket_path())
        _thread_local.client = client
    return client


def put(table, key, value):
    _client().put(table, key, value)


def get(table, key, default=None):
    return _client().get(table, key, default)


def delete(table, key):
    return _client().delete(table, key)


def keys(table, pattern=None):
    return _client().keys(table, pattern)


def clear(table):
    _client().clear(table)


def info(table):
    return _client().info(table)


def ensure(table):
    _client().ensure(table)


def exists(table, key=None):
    return _client().exists(table, key)


def delete_table(table):
    return _client().delete_table(table)


def tables():
    return _client().tables()


def table(name):
    return StashTable(_client(), name)
