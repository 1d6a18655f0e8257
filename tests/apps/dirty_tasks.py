"""Dirty apps for the dirty arbiter tests (gunicorn-cli/tests/dirty_arbiter.rs); written
against gunicorn 27's API so that the same files run under both servers."""

import asyncio
import os
import threading
import time

from gunicorn.dirty import DirtyApp


class Counter(DirtyApp):
    """State kept across calls in each dirty worker."""

    _lock = threading.Lock()
    _waiting = None

    def init(self):
        self.count = 0
        self.closed_marker = os.environ.get("DIRTY_TEST_CLOSE_MARKER")

    def incr(self, n=1):
        self.count += n
        return {"count": self.count, "pid": os.getpid()}

    def echo(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}

    def nap(self, seconds):
        time.sleep(seconds)
        return "slept %s" % seconds

    def boom(self):
        raise ValueError("boom from the dirty app")

    def tokens(self, n):
        for i in range(n):
            yield "t%d" % i

    def stash_put(self, table, key, value):
        from gunicorn.dirty import stash
        stash.put(table, key, value)
        return sorted(stash.keys(table))

    def rendezvous(self, seconds):
        """Meets a second concurrent call in the same worker (dirty_threads >= 2), or gives up."""
        with Counter._lock:
            event = Counter._waiting
            if event is None:
                Counter._waiting = event = threading.Event()
                first = True
            else:
                Counter._waiting = None
                first = False
        if not first:
            event.set()
            return "met"
        return "met" if event.wait(seconds) else "alone"

    async def later(self, value):
        await asyncio.sleep(0)
        return {"awaited": value}

    def close(self):
        if self.closed_marker:
            with open(self.closed_marker, "a") as f:
                f.write("closed %d\n" % os.getpid())


class Heavy(DirtyApp):
    """Loaded by one dirty worker only (``workers = 1``)."""

    workers = 1

    def whoami(self):
        return os.getpid()
