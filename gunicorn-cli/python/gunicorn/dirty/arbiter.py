"""The dirty arbiter: the process the master supervises (started by the Rust side, see
docs/dirty.md) that keeps ``dirty_workers`` dirty workers running and routes the web workers'
tasks to them.

One thread, one asyncio loop: it accepts the web workers on its unix socket, sends each task
to a dirty worker that loaded the task's app (round-robin), relays the answer, enforces
``dirty_timeout``, answers stash operations from its own tables, reaps and replaces dirty
workers, and handles its signals (TERM/INT graceful stop, QUIT quick stop, HUP new
generation of workers, USR1 reopen logs, TTIN/TTOU one worker more/less).
"""

import asyncio
import errno
import os
import signal
import socket
import time

from . import protocol, stash
from .app import get_app_workers_attribute, parse_dirty_app_spec
from .errors import (
    DirtyAppNotFoundError, DirtyError, DirtyNoWorkersAvailableError, DirtyTimeoutError,
    DirtyWorkerError,
)
from .worker import WORKER_BOOT_ERROR, DirtyWorker


class Hooks:
    """The config file's dirty hooks (``on_dirty_starting``, ``dirty_post_fork``,
    ``dirty_worker_init``, ``dirty_worker_exit``), by name; an unset one does nothing."""

    def __init__(self, hooks):
        self._hooks = dict(hooks or {})

    def call(self, name, *args):
        hook = self._hooks.get(name)
        if hook is not None:
            hook(*args)

    def call_logged(self, log, name, *args):
        try:
            self.call(name, *args)
        except Exception:
            log.exception("Exception in %s hook", name)


class DirtyArbiter:
    """The arbiter as hooks see it: ``pid``, ``ppid``, ``cfg``, ``log``, ``socket_path``,
    ``workers`` (pid -> DirtyWorker), ``num_workers``, ``alive``."""

    def __init__(self, cfg, log, socket_path, pidfile=None, hooks=None, reopen_logs=None):
        self.cfg = cfg
        self.log = log
        self.socket_path = socket_path
        self.tmpdir = os.path.dirname(socket_path)
        self.pidfile = pidfile
        self.hooks = Hooks(hooks)
        self._reopen_logs = reopen_logs or (lambda: None)
        self.pid = None
        self.ppid = os.getppid()
        self.workers = {}
        self.worker_age = 0
        self.num_workers = int(cfg.dirty_workers)
        self.alive = True
        self._quick = False
        self._server = None
        self._loop = None
        self._stopped = None
        # The web workers' open connections, closed when the arbiter stops.
        self._clients = set()
        # import path -> worker limit (None: every worker), in dirty_apps' order.
        self.app_specs = {}
        # import path -> pids of the live workers that loaded it.
        self.app_worker_map = {}
        self._rr = {}
        # App lists of workers that died, for their replacements.
        self._pending_respawns = []
        self._next_spawn = 0.0
        self.stash_tables = {}
        for spec in cfg.dirty_apps:
            path, count = parse_dirty_app_spec(spec)
            if count is None:
                try:
                    count = get_app_workers_attribute(path)
                except Exception as e:
                    self.log.warning("Could not read workers attribute from %s: %s", path, e)
            self.app_specs[path] = count
            self.app_worker_map[path] = set()

    # ---- life ----

    def run(self):
        """The process's whole life; returns its exit status."""
        self.pid = os.getpid()
        self.log.info("Dirty arbiter starting (pid: %s)", self.pid)
        self._write_pidfile()
        os.environ["GUNICORN_DIRTY_SOCKET"] = self.socket_path
        from .client import set_dirty_socket_path
        set_dirty_socket_path(self.socket_path)
        try:
            self.hooks.call("on_dirty_starting", self)
        except Exception:
            self.log.exception("Exception in on_dirty_starting hook")
            self._cleanup()
            return 1
        try:
            asyncio.run(self._main())
        finally:
            self._cleanup()
        return 0

    def _write_pidfile(self):
        if not self.pidfile:
            return
        try:
            tmp = "%s.%d.tmp" % (self.pidfile, self.pid)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write("%d\n" % self.pid)
            os.replace(tmp, self.pidfile)
        except OSError as e:
            self.log.warning("Failed to write PID file: %s", e)

    def _cleanup(self):
        if self.pidfile:
            try:
                with open(self.pidfile) as f:
                    mine = f.read().strip() == str(self.pid)
                if mine:
                    os.unlink(self.pidfile)
            except OSError:
                pass
        for name in (self.socket_path,):
            try:
                os.unlink(name)
            except OSError:
                pass
        self.log.info("Dirty arbiter exiting (pid: %s)", self.pid)

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        for sig, handler in ((signal.SIGTERM, self._graceful), (signal.SIGINT, self._graceful),
                             (signal.SIGQUIT, self._quick_stop), (signal.SIGHUP, self._hup),
                             (signal.SIGUSR1, self._reopen), (signal.SIGTTIN, self._ttin),
                             (signal.SIGTTOU, self._ttou), (signal.SIGCHLD, self._chld)):
            self._loop.add_signal_handler(sig, handler)
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._handle_client,
                                                           path=self.socket_path)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        self.log.info("Dirty arbiter listening on %s", self.socket_path)
        self.manage_workers()
        monitor = asyncio.ensure_future(self._monitor())
        await self._stopped.wait()
        monitor.cancel()
        # No new connection; the tasks running finish (the workers finish them on TERM) and
        # their answers are relayed before the web workers' connections are closed.
        self._server.close()
        await self._stop_workers()
        for writer in list(self._clients):
            writer.close()

    async def _monitor(self):
        while self.alive:
            await asyncio.sleep(1.0)
            if os.getppid() != self.ppid:
                self.log.warning("Parent changed, shutting down dirty arbiter")
                self._graceful()
                return
            self._reap()
            self.manage_workers()

    # ---- signals ----

    def _graceful(self):
        self.alive = False
        self._stopped.set()

    def _quick_stop(self):
        self._quick = True
        self._graceful()

    def _reopen(self):
        self._reopen_logs()
        for pid in list(self.workers):
            self._kill(pid, signal.SIGUSR1)

    def _chld(self):
        """A worker died: reap it and start its replacement at once (not at the next tick)."""
        self._reap()
        self.manage_workers()

    def _ttin(self):
        self.num_workers += 1
        self.log.info("SIGTTIN: Increasing dirty workers to %s", self.num_workers)
        self.manage_workers()

    def _ttou(self):
        minimum = self._minimum_workers()
        if self.num_workers <= minimum:
            self.log.warning("SIGTTOU: Cannot decrease below %s workers "
                             "(required by app specs)", minimum)
            return
        self.num_workers -= 1
        self.log.info("SIGTTOU: Decreasing dirty workers to %s", self.num_workers)
        self.manage_workers()

    def _hup(self):
        """A new generation: every worker is replaced (they reload their apps); the old ones
        finish their tasks and exit."""
        self.log.info("Reloading dirty workers")
        old = [w for w in self.workers.values() if not w.retiring]
        for w in old:
            self._retire(w)
        self.manage_workers()

    # ---- workers ----

    def _minimum_workers(self):
        limits = [n for n in self.app_specs.values() if n is not None]
        return max([1] + limits)

    def _live(self):
        return [w for w in self.workers.values() if not w.retiring]

    def _apps_for_new_worker(self):
        if self._pending_respawns:
            return self._pending_respawns.pop(0)
        return [path for path, limit in self.app_specs.items()
                if limit is None or len(self.app_worker_map[path]) < limit]

    def _retire(self, worker):
        worker.retiring = True
        for pids in self.app_worker_map.values():
            pids.discard(worker.pid)
        self._kill(worker.pid, signal.SIGTERM)

    def manage_workers(self):
        if not self.alive:
            return
        while len(self._live()) < self.num_workers and time.monotonic() >= self._next_spawn:
            apps = self._apps_for_new_worker()
            if not apps:
                break
            if self.spawn_worker(apps) is None:
                break
        for _ in range(max(0, len(self._live()) - self.num_workers)):
            self._retire(self._retire_choice())

    def _retire_choice(self):
        """The worker TTOU retires: the oldest one whose apps all have another worker, so that
        no app is left without one; the oldest of all if there is none such."""
        live = sorted(self._live(), key=lambda w: w.age)
        for w in live:
            if all(len(self.app_worker_map.get(app, ())) > 1 for app in w.app_paths):
                return w
        return live[0]

    def spawn_worker(self, app_paths):
        self.worker_age += 1
        path = os.path.join(self.tmpdir, "worker-%d.sock" % self.worker_age)
        try:
            os.unlink(path)
        except OSError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(path)
            listener.listen(128)
        except OSError as e:
            listener.close()
            self.log.error("Cannot create the socket of a dirty worker: %s", e)
            return None
        finally:
            os.umask(old_umask)
        worker = DirtyWorker(self.worker_age, self.pid, app_paths, self.cfg, self.log, path)
        # Signals stay blocked across the fork until the child has its own handlers
        # (DirtyWorker._install_signals unblocks them): a TERM sent to a worker that has just
        # been forked (a `dirty remove` right after `dirty add`) would otherwise reach the
        # arbiter's inherited asyncio handler, which only writes to the arbiter's wakeup fd,
        # and the worker would never stop.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            listener.close()
            raise
        if pid == 0:
            status = 1
            try:
                self._close_in_child()
                status = worker.run(listener, self.hooks, self._reopen_logs)
            except SystemExit as e:
                status = e.code if isinstance(e.code, int) else 1
            except BaseException:
                self.log.exception("Exception in dirty worker process")
                status = 1 if worker.booted else WORKER_BOOT_ERROR
            finally:
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        listener.close()
        worker.pid = pid
        self.workers[pid] = worker
        for app in app_paths:
            self.app_worker_map.setdefault(app, set()).add(pid)
        self.hooks.call_logged(self.log, "dirty_post_fork", self, worker)
        self.log.info("Spawned dirty worker (pid: %s) with apps: %s", pid, app_paths)
        return pid

    def _close_in_child(self):
        """The arbiter's own socket is not the worker's."""
        for sock in (self._server.sockets if self._server else ()):
            try:
                os.close(sock.fileno())
            except OSError:
                pass

    def _kill(self, pid, sig):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                return
            if not pid:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            if os.WIFSIGNALED(status):
                self.log.warning("Dirty worker (pid:%s) killed by signal %s",
                                 pid, os.WTERMSIG(status))
            elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == WORKER_BOOT_ERROR:
                self.log.error("Dirty worker failed to boot (pid:%s)", pid)
                # A worker that cannot boot is tried again once a second, not in a loop.
                self._next_spawn = time.monotonic() + 1.0
            for pids in self.app_worker_map.values():
                pids.discard(pid)
            if not worker.retiring and self.alive:
                self._pending_respawns.append(worker.app_paths)
            try:
                os.unlink(worker.socket_path)
            except OSError:
                pass
            self.hooks.call_logged(self.log, "dirty_worker_exit", self, worker)
            self.log.info("Dirty worker exited (pid:%s)", pid)
        # Not reached.

    async def _stop_workers(self):
        sig = signal.SIGQUIT if self._quick else signal.SIGTERM
        for pid in list(self.workers):
            self._kill(pid, sig)
        limit = time.monotonic() + (0 if self._quick else int(self.cfg.dirty_graceful_timeout))
        while self.workers and time.monotonic() < limit:
            self._reap()
            await asyncio.sleep(0.1)
        for pid in list(self.workers):
            self._kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while self.workers and time.monotonic() < deadline:
            self._reap()
            await asyncio.sleep(0.05)

    # ---- the master's questions (gunicornc's `show dirty`, `dirty add`, `dirty remove`) ----

    def status(self):
        """gunicorn's `show dirty` answer, seen from the dirty arbiter itself."""
        workers = [{"pid": w.pid, "age": w.age, "apps": list(w.app_paths),
                    "booted": None, "last_heartbeat": None}
                   for w in sorted(self._live(), key=lambda w: w.age)]
        apps = [{"import_path": path, "worker_count": limit,
                 "current_workers": len(self.app_worker_map.get(path, ())),
                 "worker_pids": sorted(self.app_worker_map.get(path, ()))}
                for path, limit in self.app_specs.items()]
        return {"enabled": True, "pid": self.pid, "workers": workers, "apps": apps,
                "target_workers": self.num_workers}

    def manage(self, op, count):
        """`dirty add N` / `dirty remove N`: N TTINs or TTOUs at once."""
        try:
            count = max(0, int(count))
        except (TypeError, ValueError):
            return {"success": False, "error": "count must be an integer"}
        before = len(self._live())
        if op == "add":
            self.num_workers += count
            self.log.info("Worker management: add %d dirty workers (now %d)", count,
                          self.num_workers)
            self.manage_workers()
            return {"success": True, "operation": "add", "requested": count,
                    "spawned": len(self._live()) - before, "total_workers": len(self._live()),
                    "target_workers": self.num_workers}
        if op == "remove":
            target = max(self._minimum_workers(), self.num_workers - count)
            removed = self.num_workers - target
            self.num_workers = target
            self.log.info("Worker management: remove %d dirty workers (now %d)", removed,
                          self.num_workers)
            self.manage_workers()
            return {"success": True, "operation": "remove", "requested": count,
                    "removed": before - len(self._live()), "total_workers": len(self._live()),
                    "target_workers": self.num_workers}
        return {"success": False, "error": "Unknown manage operation: %s" % (op,)}

    # ---- the web workers' requests ----

    async def _handle_client(self, reader, writer):
        self._clients.add(writer)
        try:
            while self.alive:
                try:
                    message = await protocol.read_message_async(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                except DirtyError as e:
                    await protocol.write_message_async(
                        writer, protocol.make_error_response("unknown", e))
                    break
                kind = message.get("type")
                if kind == protocol.MSG_TYPE_STASH:
                    reply = stash.handle(self.stash_tables, message)
                    await protocol.write_message_async(writer, reply)
                elif kind in (protocol.MSG_TYPE_STATUS, protocol.MSG_TYPE_MANAGE):
                    result = (self.status() if kind == protocol.MSG_TYPE_STATUS
                              else self.manage(message.get("op"), message.get("count", 1)))
                    await protocol.write_message_async(
                        writer, protocol.make_response(message.get("id") or "unknown", result))
                else:
                    await self._route(message, writer)
        except asyncio.CancelledError:
            pass
        except Exception as e:
            self.log.error("Client connection error: %s", e)
        finally:
            self._clients.discard(writer)
            writer.close()

    def _pick_worker(self, app_path):
        if app_path not in self.app_specs:
            raise DirtyAppNotFoundError(app_path)
        # A worker killed for a timeout is still here until it is reaped: not routed to.
        pids = sorted(pid for pid in self.app_worker_map.get(app_path, ())
                      if not self.workers[pid].aborted)
        if not pids:
            if not self.workers:
                raise DirtyError("No dirty workers available")
            raise DirtyNoWorkersAvailableError(app_path)
        i = self._rr.get(app_path, 0) % len(pids)
        self._rr[app_path] = i + 1
        return self.workers[pids[i]]

    # How long a task waits for a worker of its app when none is running (one just died and its
    # replacement is being forked) before DirtyNoWorkersAvailableError.
    WAIT_FOR_WORKER_SECONDS = 5.0

    async def _worker_for(self, app_path):
        deadline = time.monotonic() + self.WAIT_FOR_WORKER_SECONDS
        while True:
            try:
                return self._pick_worker(app_path)
            except DirtyAppNotFoundError:
                raise
            except DirtyError:
                if not self.alive or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.05)

    async def _route(self, request, client):
        request_id = request.get("id") or "unknown"
        try:
            worker = await self._worker_for(request.get("app_path"))
        except DirtyError as e:
            await protocol.write_message_async(client, protocol.make_error_response(request_id, e))
            return
        timeout = int(self.cfg.dirty_timeout) or None
        try:
            reader, writer = await asyncio.open_unix_connection(worker.socket_path)
        except OSError as e:
            await protocol.write_message_async(client, protocol.make_error_response(
                request_id, DirtyWorkerError("Worker communication failed: %s" % e,
                                             worker_id=worker.pid)))
            return
        try:
            await protocol.write_message_async(writer, request)
            while True:
                try:
                    message = await asyncio.wait_for(protocol.read_message_async(reader),
                                                     timeout=timeout)
                except asyncio.TimeoutError:
                    self._task_timed_out(worker, request)
                    await protocol.write_message_async(client, protocol.make_error_response(
                        request_id, DirtyTimeoutError("Worker timeout", timeout)))
                    return
                except (asyncio.IncompleteReadError, ConnectionError) as e:
                    await protocol.write_message_async(client, protocol.make_error_response(
                        request_id, DirtyWorkerError(
                            "Worker communication failed: %s" % (e or "connection closed"),
                            worker_id=worker.pid)))
                    return
                await protocol.write_message_async(client, message)
                if message.get("type") != protocol.MSG_TYPE_CHUNK:
                    return
        finally:
            writer.close()

    def _task_timed_out(self, worker, request):
        """A task past dirty_timeout: its thread cannot be stopped, so its worker is killed
        and replaced (the other tasks it was running get a DirtyWorkerError)."""
        if worker.pid not in self.workers or worker.aborted:
            return
        worker.aborted = True
        self.log.critical("DIRTY WORKER TIMEOUT (pid:%s): %s.%s ran over %ss", worker.pid,
                          request.get("app_path"), request.get("action"),
                          self.cfg.dirty_timeout)
        self._kill(worker.pid, signal.SIGKILL)
