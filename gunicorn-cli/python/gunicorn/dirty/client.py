"""The client web workers use to run tasks in the dirty workers.

``get_dirty_client()`` gives each thread its own ``DirtyClient`` connected to the dirty
arbiter's unix socket (``$GUNICORN_DIRTY_SOCKET``, which the master sets before it forks the
web workers). ``execute(app_path, action, *args, **kwargs)`` returns the action's result or
raises the ``DirtyError`` subclass it failed with; ``stream(...)`` iterates over the items of
an action that returns a generator. ``execute_async`` / ``stream_async`` are the same for
asyncio code, with ``get_dirty_client_async()`` giving one client per context.
"""

import asyncio
import contextvars
import os
import socket
import threading
import time
import uuid

from . import protocol
from .errors import DirtyConnectionError, DirtyError, DirtyTimeoutError


def _raise_or_result(message):
    kind = message.get("type")
    if kind == protocol.MSG_TYPE_RESPONSE:
        return message.get("result")
    if kind == protocol.MSG_TYPE_ERROR:
        raise DirtyError.from_dict(message.get("error") or {})
    raise DirtyError("Unknown response type: %s" % (kind,))


class DirtyClient:
    """One connection to the dirty arbiter. ``timeout``: seconds a call may take before
    ``DirtyTimeoutError`` (the connection is then dropped, so a late answer is never read as
    the answer to the next call)."""

    def __init__(self, socket_path, timeout=30.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self._sock = None
        self._reader = None
        self._writer = None
        self._lock = threading.Lock()

    # ---- blocking API ----

    # While the dirty arbiter is (re)starting its socket is missing or refuses connections for
    # a moment (the master starts it just before the web workers, and again if it dies): the
    # connection is tried again for up to this many seconds (never past the client's timeout).
    CONNECT_RETRY_SECONDS = 2.0

    def connect(self):
        if self._sock is not None:
            return
        deadline = time.monotonic() + min(self.CONNECT_RETRY_SECONDS, self.timeout or 0)
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError) as e:
                sock.close()
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise DirtyConnectionError("Failed to connect to dirty arbiter: %s" % e,
                                           socket_path=self.socket_path) from e
            except OSError as e:
                sock.close()
                raise DirtyConnectionError("Failed to connect to dirty arbiter: %s" % e,
                                           socket_path=self.socket_path) from e
            self._sock = sock
            return

    def _close_socket(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _send(self, request):
        """Sends the request; a connection the dirty arbiter closed (it was restarted since
        this client last used it) is replaced once: the request never reached it, so sending
        it again cannot run the task twice."""
        try:
            protocol.write_message(self._sock, request)
        except (BrokenPipeError, ConnectionResetError):
            self._close_socket()
            self.connect()
            protocol.write_message(self._sock, request)

    def _exchange(self, request):
        try:
            self._send(request)
            return protocol.read_message(self._sock)
        except socket.timeout:
            self._close_socket()
            raise DirtyTimeoutError("Timeout waiting for dirty app response",
                                    timeout=self.timeout) from None
        except DirtyError:
            self._close_socket()
            raise
        except Exception as e:
            self._close_socket()
            raise DirtyConnectionError("Communication error: %s" % e) from e

    def execute(self, app_path, action, *args, **kwargs):
        """Runs ``action`` of the dirty app ``app_path`` and returns its result."""
        with self._lock:
            self.connect()
            request = protocol.make_request(str(uuid.uuid4()), app_path, action, args, kwargs)
            return _raise_or_result(self._exchange(request))

    def stream(self, app_path, action, *args, **kwargs):
        """An iterator over the items yielded by ``action`` (a generator in the dirty app)."""
        return DirtyStreamIterator(self, app_path, action, args, kwargs)

    def close(self):
        with self._lock:
            self._close_socket()

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- asyncio API ----

    async def connect_async(self):
        if self._writer is not None:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path), timeout=self.timeout)
        except asyncio.TimeoutError:
            raise DirtyTimeoutError("Timeout connecting to dirty arbiter",
                                    timeout=self.timeout) from None
        except OSError as e:
            raise DirtyConnectionError("Failed to connect to dirty arbiter: %s" % e,
                                       socket_path=self.socket_path) from e

    async def _close_async(self):
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            try:
                writer.close()
                await writer.wait_closed()
            except Exception:
                pass

    async def execute_async(self, app_path, action, *args, **kwargs):
        await self.connect_async()
        request = protocol.make_request(str(uuid.uuid4()), app_path, action, args, kwargs)
        try:
            await protocol.write_message_async(self._writer, request)
            message = await asyncio.wait_for(protocol.read_message_async(self._reader),
                                             timeout=self.timeout)
        except asyncio.TimeoutError:
            await self._close_async()
            raise DirtyTimeoutError("Timeout waiting for dirty app response",
                                    timeout=self.timeout) from None
        except DirtyError:
            await self._close_async()
            raise
        except Exception as e:
            await self._close_async()
            raise DirtyConnectionError("Communication error: %s" % e) from e
        return _raise_or_result(message)

    def stream_async(self, app_path, action, *args, **kwargs):
        return DirtyAsyncStreamIterator(self, app_path, action, args, kwargs)

    async def close_async(self):
        await self._close_async()

    async def __aenter__(self):
        await self.connect_async()
        return self

    async def __aexit__(self, *exc):
        await self.close_async()


class _StreamState:
    """What both stream iterators track: the whole stream gets the client's timeout, and each
    item at most ``idle_timeout`` (30 s by default, as gunicorn)."""

    DEFAULT_IDLE_TIMEOUT = 30.0

    def __init__(self, client, app_path, action, args, kwargs, idle_timeout=None):
        self.client = client
        self.request = protocol.make_request(str(uuid.uuid4()), app_path, action, args, kwargs)
        self.started = False
        self.done = False
        self.deadline = None
        self.last_item = None
        self.idle_timeout = (idle_timeout if idle_timeout is not None
                             else min(self.DEFAULT_IDLE_TIMEOUT, client.timeout))

    def start_clock(self):
        now = time.monotonic()
        self.deadline = now + self.client.timeout
        self.last_item = now

    def read_timeout(self):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.done = True
            raise DirtyTimeoutError("Stream exceeded total timeout", timeout=self.client.timeout)
        return min(remaining, self.idle_timeout)

    def timed_out(self):
        self.done = True
        now = time.monotonic()
        if now >= self.deadline:
            return DirtyTimeoutError("Stream exceeded total timeout", timeout=self.client.timeout)
        return DirtyTimeoutError("Timeout waiting for next chunk (idle %.1fs)"
                                 % (now - self.last_item), timeout=self.idle_timeout)

    def item(self, message):
        """The next item, or ``None`` at the end (``self.done`` is then set)."""
        self.last_item = time.monotonic()
        kind = message.get("type")
        if kind == protocol.MSG_TYPE_CHUNK:
            return message.get("data")
        self.done = True
        if kind in (protocol.MSG_TYPE_END, protocol.MSG_TYPE_RESPONSE):
            return None
        if kind == protocol.MSG_TYPE_ERROR:
            raise DirtyError.from_dict(message.get("error") or {})
        raise DirtyError("Unknown message type: %s" % (kind,))


class DirtyStreamIterator(_StreamState):
    """``client.stream(...)``: yields each item the dirty app's generator yields."""

    def __iter__(self):
        return self

    def __next__(self):
        if self.done:
            raise StopIteration
        client = self.client
        with client._lock:
            if not self.started:
                client.connect()
                self.start_clock()
                self.started = True
                try:
                    protocol.write_message(client._sock, self.request)
                except OSError as e:
                    self.done = True
                    client._close_socket()
                    raise DirtyConnectionError("Communication error: %s" % e) from e
            timeout = self.read_timeout()
            try:
                client._sock.settimeout(timeout)
                message = protocol.read_message(client._sock)
            except socket.timeout:
                client._close_socket()
                raise self.timed_out() from None
            except DirtyError:
                self.done = True
                client._close_socket()
                raise
            except Exception as e:
                self.done = True
                client._close_socket()
                raise DirtyConnectionError("Communication error: %s" % e) from e
            finally:
                if client._sock is not None:
                    client._sock.settimeout(client.timeout)
        value = self.item(message)
        if self.done:
            raise StopIteration
        return value


class DirtyAsyncStreamIterator(_StreamState):
    """``client.stream_async(...)``: ``async for`` over the items."""

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.done:
            raise StopAsyncIteration
        client = self.client
        if not self.started:
            await client.connect_async()
            self.start_clock()
            self.started = True
            await protocol.write_message_async(client._writer, self.request)
        timeout = self.read_timeout()
        try:
            message = await asyncio.wait_for(protocol.read_message_async(client._reader),
                                             timeout=timeout)
        except asyncio.TimeoutError:
            await client._close_async()
            raise self.timed_out() from None
        except DirtyError:
            self.done = True
            await client._close_async()
            raise
        except Exception as e:
            self.done = True
            await client._close_async()
            raise DirtyConnectionError("Communication error: %s" % e) from e
        value = self.item(message)
        if self.done:
            raise StopAsyncIteration
        return value


_thread_local = threading.local()
_async_client = contextvars.ContextVar("gunicorn_dirty_client")
_socket_path = None


def set_dirty_socket_path(path):
    """Sets the dirty arbiter's socket path for this process (instead of
    ``$GUNICORN_DIRTY_SOCKET``)."""
    global _socket_path
    _socket_path = path


def get_dirty_socket_path():
    path = _socket_path or os.environ.get("GUNICORN_DIRTY_SOCKET")
    if not path:
        raise DirtyError("Dirty socket path not configured. "
                         "Make sure dirty_workers > 0 and dirty_apps are configured.")
    return path


def get_dirty_client(timeout=30.0):
    """This thread's client (made on first use; ``timeout`` applies then)."""
    client = getattr(_thread_local, "client", None)
    if client is None:
        client = DirtyClient(get_dirty_socket_path(), timeout=timeout)
        _thread_local.client = client
    return client


async def get_dirty_client_async(timeout=30.0):
    """This context's client, for asyncio code."""
    try:
        return _async_client.get()
    except LookupError:
        client = DirtyClient(get_dirty_socket_path(), timeout=timeout)
        _async_client.set(client)
        return client


def close_dirty_client():
    client = getattr(_thread_local, "client", None)
    if client is not None:
        client.close()
        _thread_local.client = None


async def close_dirty_client_async():
    try:
        client = _async_client.get()
    except LookupError:
        return
    await client.close_async()
