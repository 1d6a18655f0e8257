"""The event-loop side of gunicorn-rs's asgi worker (embedded in the binary).

The worker's thread runs an asyncio (or uvloop) event loop. This module creates it, runs the
ASGI lifespan protocol, serves each inherited listener with `loop.create_server`, whose
protocol objects are written in Rust (`server.protocol(index)`: parsing, scope building and
response framing happen there), and around that: a heartbeat every second (`server.tick()`,
which also closes connections idle past keep-alive and notices a new parent), a reader on the
worker's shutdown pipe (TERM = graceful, INT/QUIT = quick), and the graceful stop: close the
listeners, close idle connections, wait for busy ones up to `graceful_timeout`, then the
lifespan shutdown.
"""

import asyncio
import inspect
import socket

# How often the graceful drain looks again at the open connections.
_DRAIN_POLL = 0.1


def asgi_interface(app):
    """'asgi3' or 'asgi2' for how to call `app`; raises TypeError (one line, exit 4) for an
    object that is not an ASGI application, such as a WSGI callable given to -k asgi."""
    if not callable(app):
        raise TypeError("Application object must be callable.")
    if inspect.isclass(app):
        call = getattr(app, "__call__", None)
        # ASGI 2: the class is instantiated with the scope, the instance awaited.
        if call is not None and inspect.iscoroutinefunction(call):
            return "asgi2"
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
        getattr(app, "__call__", None)
    ):
        return "asgi3"
    try:
        params = [
            p
            for p in inspect.signature(app).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return "asgi3"
    if len(params) == 2:
        raise TypeError(
            "Application object is a WSGI application (it takes environ and start_response); "
            "-k asgi needs an ASGI application: async def app(scope, receive, send)"
        )
    if len(params) == 1:
        return "asgi2"
    return "asgi3"


# What one body message of `http.response.pathsend` carries.
_PATHSEND_CHUNK = 256 * 1024


async def pathsend(send, path):
    """`http.response.pathsend` (ASGI path send extension): the file at `path` as the rest of
    the response, in chunks through `send`, which waits while the client is slow to read."""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_PATHSEND_CHUNK)
            if not chunk:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def fail_app(text):
    """The ASGI form of the page `--reload` serves while the application has a SyntaxError
    (gunicorn's `make_fail_app`): 500 with the traceback; the lifespan completes."""
    body = text.encode("utf-8", "replace")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"text/plain"),
                        (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})

    return app


def _new_loop(kind, server):
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                server.log_warning("uvloop not available, falling back to asyncio")
        else:
            server.log_debug("Using uvloop event loop")
            return uvloop.new_event_loop()
    server.log_debug("Using asyncio event loop")
    return asyncio.new_event_loop()


class LifespanFailed(Exception):
    """The app answered lifespan.startup.failed (or .shutdown.failed)."""


class Lifespan:
    """The ASGI lifespan protocol: one task for the app's lifespan scope, messages through
    queues, startup and shutdown awaited from the driver."""

    def __init__(self, app, interface, state):
        self.app = app
        self.interface = interface
        self.state = state
        self.inbox = asyncio.Queue()
        self.startup_done = asyncio.Event()
        self.shutdown_done = asyncio.Event()
        self.failure = None
        self.error = None
        self.task = None

    async def receive(self):
        return await self.inbox.get()

    async def send(self, message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self.startup_done.set()
        elif kind == "lifespan.startup.failed":
            self.failure = message.get("message", "") or "lifespan.startup.failed"
            self.startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self.shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self.failure = message.get("message", "") or "lifespan.shutdown.failed"
            self.shutdown_done.set()

    async def _main(self):
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            if self.interface == "asgi2":
                await self.app(scope)(self.receive, self.send)
            else:
                await self.app(scope, self.receive, self.send)
        except BaseException as e:  # noqa: BLE001 - any failure ends the lifespan
            self.error = e
        finally:
            self.startup_done.set()
            self.shutdown_done.set()

    async def startup(self):
        self.task = asyncio.get_running_loop().create_task(self._main())
        await self.inbox.put({"type": "lifespan.startup"})
        await self.startup_done.wait()
        if self.failure is not None:
            raise LifespanFailed(self.failure)
        if self.error is not None:
            raise self.error

    async def shutdown(self):
        if self.task is None or self.task.done():
            return
        self.shutdown_done.clear()
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.shutdown_done.wait()
        if self.failure is not None:
            raise LifespanFailed(self.failure)


async def _serve(server, app, interface, listeners, lifespan_mode, backlog, stop_kind):
    loop = asyncio.get_running_loop()
    state = {}
    lifespan = None
    if lifespan_mode != "off":
        lifespan = Lifespan(app, interface, state)
        try:
            await lifespan.startup()
        except LifespanFailed as e:
            server.log_error("ASGI lifespan startup failed: %s" % e)
            return 3
        except BaseException as e:  # noqa: BLE001
            if lifespan_mode == "on":
                server.log_error("ASGI lifespan startup failed: %s" % e)
                return 3
            server.log_debug("ASGI lifespan not supported by app: %s" % e)
            lifespan = None
    server.start(loop, state, pathsend)

    servers = []
    for index, (fd, family) in enumerate(listeners):
        sock = socket.socket(family, socket.SOCK_STREAM, 0, fd)
        srv = await loop.create_server(
            lambda i=index: server.protocol(i), sock=sock, backlog=backlog
        )
        servers.append(srv)

    stopped = asyncio.Event()

    def on_wake():
        kind = server.stop_requested()
        if kind is not None:
            stop_kind.append(kind)
            stopped.set()

    loop.add_reader(server.wake_fd, on_wake)
    on_wake()

    async def heartbeat():
        while server.tick():
            await asyncio.sleep(1.0)
        stop_kind.append("graceful")
        stopped.set()

    beat = loop.create_task(heartbeat())
    await stopped.wait()

    for srv in servers:
        srv.close()
    if stop_kind[0] != "quick":
        deadline = loop.time() + server.graceful_timeout
        while server.connections() > 0:
            if stop_kind[-1] == "quick":
                break
            if loop.time() >= deadline:
                server.log_warning("Worker graceful timeout (pid:%d)" % server.pid)
                break
            server.close_idle()
            await asyncio.sleep(_DRAIN_POLL)
            on_wake()
    server.close_all()
    loop.remove_reader(server.wake_fd)
    if lifespan is not None and stop_kind[-1] != "quick":
        try:
            await lifespan.shutdown()
        except BaseException as e:  # noqa: BLE001
            server.log_error("ASGI lifespan shutdown error: %s" % e)
    beat.cancel()
    return None


def _cancel_all(loop):
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))


def run(server, app, interface, listeners, loop_kind, lifespan_mode, backlog):
    """Serves until a stop; returns None, or 3 when the lifespan startup failed."""
    loop = _new_loop(loop_kind, server)
    asyncio.set_event_loop(loop)
    stop_kind = []
    try:
        return loop.run_until_complete(
            _serve(server, app, interface, listeners, lifespan_mode, backlog, stop_kind)
        )
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
