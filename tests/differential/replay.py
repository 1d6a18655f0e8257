"""Replays the request corpus (tests/requests/) against a running server and records, per
case, what a client sees: the statuses of the complete responses, and whether the server closed
the connection. The same code drives our server and real gunicorn 27 (record.py), so their
answers can be compared case by case (test_differential.py).

Only the cases with no `setting.` line are replayed: they need nothing but the defaults (the
others set a peer address, a PROXY mode or limits a test connection cannot stand for).
"""

import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "requests"
# How long a client waits for the first byte: long enough for a connection that waited in the
# backlog of a busy sync worker.
FIRST = 3.0
# How long a client then waits for more bytes or the close before it concludes the server keeps
# the connection open (a kept-alive connection).
QUIET = 0.6
ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text):
    """The corpus's `.http` notation (tests/requests/README.md) to bytes."""
    out = bytearray()
    text = text.replace("\r", "").replace("\n", "")
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("latin-1")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in ESCAPES:
            out += ESCAPES[nxt]
            i += 2
        elif nxt == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif nxt == "*":
            m = re.match(r"\\\*(\d+)\((.)\)", text[i:])
            out += m.group(2).encode("latin-1") * int(m.group(1))
            i += m.end()
        else:
            raise ValueError("bad escape at %d: %r" % (i, text[i:i + 6]))
    return bytes(out)


def cases():
    """(name, bytes) of every replayable case, in name order."""
    found = []
    for kind in ("valid", "invalid"):
        for http in sorted((CORPUS / kind).glob("*.http")):
            expect = http.with_suffix(".expect").read_text()
            if "setting." in expect:
                continue
            found.append(("%s/%s" % (kind, http.stem), unescape(http.read_text())))
    return found


STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


def responses(data):
    """The statuses of the complete responses in `data` (Content-Length or chunked bodies)."""
    statuses = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1")
        m = STATUS.match(data)
        if not m:
            break
        status = int(m.group(1))
        rest = data[end + 4:]
        length = re.search(r"(?im)^content-length:\s*(\d+)", head)
        chunked = re.search(r"(?im)^transfer-encoding:.*chunked", head)
        if status in (204, 304) or 100 <= status < 200:
            body_end = 0
        elif length:
            body_end = int(length.group(1))
            if len(rest) < body_end:
                break
        elif chunked:
            body_end = chunked_end(rest)
            if body_end is None:
                break
        else:
            body_end = len(rest)  # until the close
        if 100 <= status < 200:
            data = rest
            continue
        statuses.append(status)
        data = rest[body_end:]
    return statuses


def chunked_end(data):
    pos = 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(data[pos:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", line_end)
            if data[line_end:line_end + 4] == b"\r\n\r\n":
                return line_end + 4
            return None if trailer_end < 0 else trailer_end + 4
        pos = line_end + 2 + size + 2
        if pos > len(data):
            return None


def replay_one(port, raw):
    """Sends `raw` on a new connection; returns {"statuses": [...], "closed": bool}."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(raw)
        except OSError:
            pass
        data = b""
        closed = False
        deadline = time.monotonic() + 10
        s.settimeout(FIRST)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            s.settimeout(QUIET)
    return {"statuses": responses(data), "closed": closed}


def replay_all(port, selected=None, parallel=16):
    todo = [(n, raw) for n, raw in cases() if selected is None or n in selected]
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda c: replay_one(port, c[1]), todo))
    return {name: r for (name, _), r in zip(todo, results)}


def start_server(argv, env=None):
    """Starts `argv + ["-b", "127.0.0.1:PORT"]` and waits until it accepts; returns (proc, port)."""
    import os
    import subprocess
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(list(argv) + ["-b", "127.0.0.1:%d" % port], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited: %s" % proc.stderr.read().decode(errors="replace"))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(0.5)  # every worker booted
            return proc, port
        except OSError:
            time.sleep(0.05)
    os.killpg(proc.pid, 9)
    raise RuntimeError("server did not start: %s" % argv)


def stop_server(proc):
    import os
    import signal
    import subprocess
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# The worker classes compared, with the flags both servers get. Sync workers serve one
# connection at a time: as many workers as parallel clients.
CLASSES = {
    "sync": ["-k", "sync", "-w", "4"],
    "gthread": ["-k", "gthread", "-w", "1", "--threads", "4"],
    "gevent": ["-k", "gevent", "-w", "1"],
}
PARALLEL = 4


def run_class(gunicorn, worker_class, env=None):
    """Every case against `gunicorn` (a command: list) with the flags of `worker_class`."""
    flags = CLASSES.get(worker_class, ["-k", worker_class, "-w", "1"])
    argv = list(gunicorn) + flags + ["--chdir", str(ROOT / "tests" / "apps"), "corpus_echo:app"]
    proc, port = start_server(argv, env)
    try:
        return replay_all(port, parallel=PARALLEL)
    finally:
        stop_server(proc)
