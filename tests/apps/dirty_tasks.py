"""Dirty apps for the dirty arbiter tests (gunicorn-cli/tests/dirty_arbiter.rs); written
against gunicorn 27's API so that the same files run under both servers."""

import os
import time

from gunicorn.dirty import DirtyApp


class Counter(DirtyApp):
    """State kept across calls in each dirty worker."""

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

    def close(self):
        if self.closed_marker:
            with open(self.closed_marker, "a") as f:
                f.write("closed %d\n" % os.getpid())


class Heavy(DirtyApp):
    """Loaded by one dirty worker only (``workers = 1``)."""

    workers = 1

    def whoami(self):
        return os.getpid()
