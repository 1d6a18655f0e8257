"""A dirty worker: one process forked by the dirty arbiter, holding its share of the dirty apps.

It serves the arbiter on a unix socket the arbiter bound before the fork (so requests routed to
a worker that is still loading its apps wait in the socket's backlog instead of failing). Each
connection carries one request; ``dirty_threads`` threads serve them, so that many tasks run at
once. The arbiter enforces ``dirty_timeout`` (and kills the worker of a task past it: a Python
thread cannot be cancelled).
"""

import asyncio
import inspect
import os
import queue
import signal
import socket
import threading
import traceback

from . import protocol
from .app import load_dirty_app
from .errors import DirtyAppError, DirtyAppNotFoundError, DirtyError, DirtyWorkerError

# gunicorn's exit status for a worker that could not boot.
WORKER_BOOT_ERROR = 3


class DirtyWorker:
    """The worker as hooks see it: ``pid``, ``ppid``, ``age``, ``app_paths``, ``apps``
    (import path -> instance, once loaded), ``cfg``, ``log``, ``socket_path``, ``alive``,
    ``booted``."""

    def __init__(self, age, ppid, app_paths, cfg, log, socket_path):
        self.age = age
        self.ppid = ppid
        self.pid = None
        self.app_paths = list(app_paths)
        self.cfg = cfg
        self.log = log
        self.socket_path = socket_path
        self.apps = {}
        self.alive = True
        self.booted = False
        self.aborted = False
        # Set in the arbiter: the worker was asked to go (TTOU, HUP) and takes no new task.
        self.retiring = False
        self._listener = None
        self._stop = threading.Event()
        self._quick = False
        self._tasks = queue.Queue()
        self._local = threading.local()

    def __str__(self):
        return "<DirtyWorker %s>" % self.pid

    # ---- in the child ----

    def run(self, listener, hooks, reopen_logs):
        """The child's whole life; returns its exit status."""
        self.pid = os.getpid()
        self._listener = listener
        self._reopen_logs = reopen_logs
        self._install_signals()
        try:
            self._load_apps()
        except Exception as e:
            self.log.error("Failed to load dirty apps: %s", e)
            self.log.exception("Exception in dirty worker process")
            return WORKER_BOOT_ERROR
        try:
            hooks.call("dirty_worker_init", self)
        except Exception:
            self.log.exception("Exception in dirty_worker_init hook")
            return WORKER_BOOT_ERROR
        self.booted = True
        self.log.info("Dirty worker %s listening on %s", self.pid, self.socket_path)
        threads = [threading.Thread(target=self._serve_tasks, daemon=True,
                                    name="dirty-worker-%s-%d" % (self.pid, i))
                   for i in range(max(1, int(self.cfg.dirty_threads)))]
        for t in threads:
            t.start()
        self._accept_loop()
        for _ in threads:
            self._tasks.put(None)
        if not self._quick:
            # Graceful: the tasks running finish (the arbiter kills us after
            # dirty_graceful_timeout if they do not).
            for t in threads:
                t.join()
        self._close_apps()
        self.log.info("Dirty worker %s exiting", self.pid)
        return 0

    def _install_signals(self):
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD,
                    signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, self._graceful)
        signal.signal(signal.SIGINT, self._graceful)
        signal.signal(signal.SIGQUIT, self._quick_stop)
        signal.signal(signal.SIGUSR1, lambda *_: self._reopen_logs())
        signal.pthread_sigmask(signal.SIG_SETMASK, [])

    def _graceful(self, *_):
        self.alive = False
        self._stop.set()

    def _quick_stop(self, *_):
        self._quick = True
        self._graceful()

    def _load_apps(self):
        for path in self.app_paths:
            app = load_dirty_app(path)
            self.log.debug("Loaded dirty app: %s", path)
            try:
                app.init()
            except Exception as e:
                self.log.error("Failed to initialize dirty app %s: %s", path, e)
                raise
            self.apps[path] = app
            self.log.info("Initialized dirty app: %s", path)

    def _close_apps(self):
        for path, app in self.apps.items():
            try:
                app.close()
                self.log.debug("Closed dirty app: %s", path)
            except Exception as e:
                self.log.error("Error closing dirty app %s: %s", path, e)

    def _accept_loop(self):
        self._listener.settimeout(1.0)
        while not self._stop.is_set():
            if os.getppid() != self.ppid:
                self.log.info("Parent changed, shutting down: dirty worker (pid: %s)", self.pid)
                # Nobody is left to read the answers or to kill a stuck task: do not wait.
                self._quick = True
                break
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            except OSError as e:
                if self._stop.is_set():
                    break
                self.log.error("Dirty worker accept failed: %s", e)
                break
            conn.settimeout(None)
            self._tasks.put(conn)
        self._listener.close()

    def _serve_tasks(self):
        while True:
            conn = self._tasks.get()
            if conn is None:
                return
            try:
                self._serve(conn)
            except Exception as e:
                self.log.error("Connection error: %s", e)
            finally:
                conn.close()

    def _serve(self, conn):
        try:
            message = protocol.read_message(conn)
        except (ConnectionError, OSError):
            return
        except DirtyError as e:
            protocol.write_message(conn, protocol.make_error_response("unknown", e))
            return
        request_id = message.get("id") or "unknown"
        if message.get("type") != protocol.MSG_TYPE_REQUEST:
            protocol.write_message(conn, protocol.make_error_response(
                request_id, DirtyWorkerError("Unknown message type: %s" % message.get("type"),
                                             worker_id=self.pid)))
            return
        app_path = message.get("app_path")
        action = message.get("action")
        try:
            result = self._execute(app_path, action, message.get("args") or [],
                                   message.get("kwargs") or {})
            if inspect.isgenerator(result):
                for item in result:
                    protocol.write_message(conn, protocol.make_chunk(request_id, item))
                protocol.write_message(conn, protocol.make_end(request_id))
            elif inspect.isasyncgen(result):
                loop = self._loop()
                while True:
                    try:
                        item = loop.run_until_complete(result.__anext__())
                    except StopAsyncIteration:
                        break
                    protocol.write_message(conn, protocol.make_chunk(request_id, item))
                protocol.write_message(conn, protocol.make_end(request_id))
            else:
                protocol.write_message(conn, protocol.make_response(request_id, result))
        except (BrokenPipeError, ConnectionResetError):
            # The arbiter gave up on this task (timeout, or the caller went away).
            return
        except DirtyError as e:
            protocol.write_message(conn, protocol.make_error_response(request_id, e))
        except Exception as e:
            tb = traceback.format_exc()
            self.log.error("Error executing %s.%s: %s\n%s", app_path, action, e, tb.rstrip())
            protocol.write_message(conn, protocol.make_error_response(
                request_id, DirtyAppError(str(e), app_path=app_path, action=action,
                                          traceback=tb)))

    def _loop(self):
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = asyncio.new_event_loop()
            self._local.loop = loop
        return loop

    def _execute(self, app_path, action, args, kwargs):
        app = self.apps.get(app_path)
        if app is None:
            raise DirtyAppNotFoundError(app_path)
        result = app(action, *args, **kwargs)
        if inspect.iscoroutine(result):
            result = self._loop().run_until_complete(result)
        return result
