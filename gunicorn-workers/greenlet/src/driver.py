"""The event-loop side of gunicorn-rs's greenlet workers (embedded in the binary).

The hub of gevent or eventlet owns the worker's thread. This module monkey-patches the standard
library (before the application is imported), accepts connections on the inherited listeners
through the library's cooperative sockets, and runs one greenlet per connection from a pool of
`worker_connections`. Each connection greenlet calls `server.serve(index, sock)`, written in
Rust: it parses requests, runs the WSGI application through the bridge and writes responses,
waiting only inside calls on the cooperative socket, so it never blocks the hub.

HTTP/2 (when `server.h2_fd` is set): the worker's HTTP/2 thread rings a pipe when streams
arrive or a parked greenlet is to be woken. A watcher on that pipe, run by the hub, gives each
new stream a greenlet of its own (a stream runner: `server.serve_stream()` until none waits;
an idle runner is woken, else a new one spawned) and switches back into the greenlets parked in
`wait(token)` (a runner waiting for request data or for room for its response, a connection
greenlet waiting for its HTTP/2 connection to end). Runners are kept for the next streams
(up to `_IDLE_RUNNERS`): a new greenlet costs Python a fresh frame stack (an mmap and an munmap
each), which a greenlet per stream paid for every request.

Around that: a heartbeat greenlet (`server.tick()` every second, which also notices a new parent
pid), a wait on the worker's shutdown pipe (TERM = graceful, INT/QUIT = quick), and the graceful
stop: close the listeners, end the waits of idle keep-alive connections, wait for the pool to
drain up to `graceful_timeout`, then return.
"""

import errno
import socket
import sys
import time
import warnings

# How often the graceful drain looks for a quick stop (QUIT/INT) arriving meanwhile.
_DRAIN_POLL = 0.5
# How often it looks at the HTTP/2 stream greenlets left once the connections are closed.
_STREAMS_POLL = 0.05
# Idle HTTP/2 stream runners kept for the next streams (http2_max_concurrent_streams' default).
_IDLE_RUNNERS = 100


# The library was already imported when the worker started (inherited over fork from a master
# that imported it, e.g. `--preload` of an app importing gevent): its hub needs re-initializing.
_inherited = False


def import_library(name):
    """Imports gevent or eventlet (ImportError when it is not installed)."""
    global _inherited
    _inherited = name in sys.modules
    with warnings.catch_warnings():
        # eventlet warns about its own deprecation on import: noise in every worker's log.
        warnings.simplefilter("ignore")
        __import__(name)


def patch_gevent():
    """`gevent.monkey.patch_all()`; a hub inherited over fork (`--preload` imported gevent in
    the master) is re-initialized for this process."""
    from gevent import monkey

    monkey.patch_all()
    if _inherited:
        import gevent

        gevent.reinit()


def patch_eventlet():
    """`eventlet.monkey_patch()` and a fresh hub for this process."""
    import eventlet

    eventlet.monkey_patch()
    from eventlet import hubs

    hubs.use_hub()


def _serve(server, index, sock, _address=None):
    server.serve(index, sock)


def _heartbeat(server, sleep):
    while server.tick():
        sleep(1.0)


def _wait_for_stop(server, wait_read):
    """Sleeps on the shutdown pipe until a stop is requested; returns its kind."""
    while True:
        kind = server.stop_requested()
        if kind is not None:
            return kind
        wait_read(server.wake_fd)


def _drain(server, busy, wait):
    """Waits for the connection greenlets to finish, up to `graceful_timeout`, and returns
    early on a quick stop. `busy()` counts them, `wait(t)` waits up to `t` seconds."""
    deadline = time.monotonic() + server.graceful_timeout
    while busy():
        if server.stop_requested() == "quick":
            return
        left = deadline - time.monotonic()
        if left <= 0:
            server.log_warning("Worker graceful timeout (pid:%d)" % server.pid)
            return
        wait(min(left, _DRAIN_POLL))


def _h2_gevent(server):
    """Starts HTTP/2 on gevent's hub: `wait(token)` parks the calling greenlet on a Waiter; the
    pipe's io watcher (run in the hub, where Waiter.switch must be called) wakes them and gives
    each new stream a runner (raw greenlets, the cheapest: the server counts the streams).
    Returns the watcher (kept alive)."""
    from gevent import spawn_raw
    from gevent.hub import Waiter, get_hub

    waiting = {}
    idle = []

    def runner():
        while True:
            while server.serve_stream():
                pass
            if len(idle) >= _IDLE_RUNNERS:
                return
            waiter = Waiter()
            idle.append(waiter)
            waiter.get()

    def wait(token):
        waiter = Waiter()
        waiting[token] = waiter
        try:
            waiter.get()
        finally:
            if waiting.get(token) is waiter:
                del waiting[token]

    def ready():
        count, tokens = server.h2_ready()
        for token in tokens:
            waiter = waiting.pop(token, None)
            if waiter is not None:
                waiter.switch(None)
        for _ in range(count):
            if idle:
                idle.pop().switch(None)
            else:
                spawn_raw(runner)

    server.h2_start(wait)
    watcher = get_hub().loop.io(server.h2_fd, 1)
    watcher.start(ready)
    return watcher


def run_gevent(server, listeners, worker_connections, max_accept):
    import gevent
    import gevent.pool
    import gevent.server
    import gevent.socket

    pool = gevent.pool.Pool(worker_connections)
    # HTTP/2 streams run outside `pool`: bounded by http2_max_concurrent_streams per
    # connection, whose greenlet holds a slot of `pool`.
    h2_watcher = _h2_gevent(server) if server.h2_fd is not None else None
    servers = []
    for index, (fd, family) in enumerate(listeners):
        sock = gevent.socket.socket(family, socket.SOCK_STREAM, 0, fd)
        srv = gevent.server.StreamServer(
            sock, lambda s, a, i=index: _serve(server, i, s, a), spawn=pool
        )
        srv.max_accept = max_accept
        srv.start()
        servers.append(srv)
    gevent.spawn(_heartbeat, server, gevent.sleep)
    kind = _wait_for_stop(server, gevent.socket.wait_read)
    if kind == "quick":
        server.h2_stop(False)
        return
    for srv in servers:
        srv.close()
    server.close_idle()
    # GOAWAY on every HTTP/2 connection; their streams in flight finish.
    server.h2_stop(True)

    def wait(t):
        if len(pool):
            pool.join(timeout=t)
        else:
            gevent.sleep(min(t, _STREAMS_POLL))

    _drain(server, lambda: len(pool) + server.h2_streams, wait)
    if h2_watcher is not None:
        h2_watcher.stop()


def _accept_loop(server, index, sock, pool, eventlet):
    while True:
        try:
            conn, _address = sock.accept()
        except OSError as e:
            # Another worker took it, the peer gave up, or a signal: try again. Anything else
            # (EMFILE...) is logged and retried a little later rather than spinning.
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EINTR):
                server.log_error("Error accepting a connection: %s" % e)
                eventlet.sleep(0.1)
            continue
        # Waits for a free slot when worker_connections are busy.
        pool.spawn_n(_serve, server, index, conn)


def _h2_eventlet(server):
    """Starts HTTP/2 on eventlet's hub: `wait(token)` parks the calling greenlet in
    `hub.switch()` (as eventlet's own trampoline does); the pipe's listener (run in the hub)
    switches back into it and gives each new stream a runner (`spawn_n`, the cheapest: the
    server counts the streams)."""
    import eventlet
    import eventlet.hubs
    from eventlet.support import greenlets as greenlet

    hub = eventlet.hubs.get_hub()
    waiting = {}
    idle = []

    def runner():
        while True:
            while server.serve_stream():
                pass
            if len(idle) >= _IDLE_RUNNERS:
                return
            idle.append(greenlet.getcurrent())
            hub.switch()

    def wait(token):
        current = greenlet.getcurrent()
        waiting[token] = current
        try:
            hub.switch()
        finally:
            if waiting.get(token) is current:
                del waiting[token]

    def ready(_fd):
        count, tokens = server.h2_ready()
        for token in tokens:
            parked = waiting.pop(token, None)
            if parked is not None:
                parked.switch()
        for _ in range(count):
            if idle:
                idle.pop().switch()
            else:
                eventlet.spawn_n(runner)

    def closed(*_args):
        pass

    server.h2_start(wait)
    return hub.add(hub.READ, server.h2_fd, ready, closed, closed)


def run_eventlet(server, listeners, worker_connections, _max_accept):
    import eventlet
    import eventlet.greenpool
    import eventlet.hubs
    from eventlet.green import socket as green_socket

    pool = eventlet.greenpool.GreenPool(worker_connections)
    # HTTP/2 streams run outside `pool`: bounded by http2_max_concurrent_streams per
    # connection, whose greenlet holds a slot of `pool`.
    if server.h2_fd is not None:
        _h2_eventlet(server)
    acceptors = []
    socks = []
    for index, (fd, family) in enumerate(listeners):
        sock = green_socket.socket(family, socket.SOCK_STREAM, 0, fd)
        socks.append(sock)
        acceptors.append(eventlet.spawn(_accept_loop, server, index, sock, pool, eventlet))
    eventlet.spawn(_heartbeat, server, eventlet.sleep)
    kind = _wait_for_stop(
        server, lambda fd: eventlet.hubs.trampoline(fd, read=True)
    )
    if kind == "quick":
        server.h2_stop(False)
        return
    for acceptor in acceptors:
        acceptor.kill()
    for sock in socks:
        sock.close()
    server.close_idle()
    # GOAWAY on every HTTP/2 connection; their streams in flight finish.
    server.h2_stop(True)

    def wait(t):
        if pool.running():
            with eventlet.Timeout(t, False):
                pool.waitall()
        else:
            eventlet.sleep(min(t, _STREAMS_POLL))

    _drain(server, lambda: pool.running() + server.h2_streams, wait)
