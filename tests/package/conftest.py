"""Fixtures for the Python package's end-to-end tests.

scripts/test builds the wheels (once per Python version), installs each into a fresh venv under
target/package-venvs/, and runs these tests with:

- PKG_VENVS: the venvs to test, separated by ':' (each has the wheel, flask, django and
  PasteDeploy installed; nothing else of the project);
- PKG_WHEELS: the directory holding the built wheels;
- PKG_REFERENCE_VENV (optional): a venv with real gunicorn 27, for the differential checks.

Every server is started with a clean environment (env -i, PATH without the venv or cargo), on a
free loopback port, and stopped with SIGTERM; every wait is bounded.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "apps"
CLEAN_PATH = "/usr/bin:/bin"


def venvs():
    return [Path(v) for v in os.environ.get("PKG_VENVS", "").split(":") if v]


def pytest_generate_tests(metafunc):
    if "venv" in metafunc.fixturenames:
        found = venvs()
        if not found:
            pytest.fail("PKG_VENVS is empty: run the package tests through scripts/test")
        metafunc.parametrize("venv", found, ids=[v.name for v in found])


@pytest.fixture
def reference_venv():
    ref = os.environ.get("PKG_REFERENCE_VENV")
    if not ref:
        pytest.fail("PKG_REFERENCE_VENV is not set: run the package tests through scripts/test")
    return Path(ref)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def wait_port(port, proc, seconds=30.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_get(port, path="/", timeout=10.0):
    """One GET with Connection: close; returns (status, headers dict, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return status, headers, body


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


class Server:
    """A server process started with argv in a clean environment; output goes to a file."""

    def __init__(self, argv, cwd, port, env=None, log=None):
        self.port = port
        self.log = log
        self.out = open(log, "w+b")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env or clean_env(), stdout=self.out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready(self, seconds=30.0):
        ok = wait_port(self.port, self.proc, seconds)
        assert ok, "server did not start:\n" + self.output()
        return self

    def output(self):
        self.out.flush()
        return Path(self.log).read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, seconds=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()
        return self.proc.returncode

    def kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def serve(tmp_path):
    """serve(argv, cwd=..., env=...) -> a ready Server on port server.port; argv may hold
    "{port}", replaced by a free port. Every server is stopped at the end of the test."""
    started = []

    def start(argv, cwd=APPS, env=None, wait=True):
        port = free_port()
        argv = [str(a).replace("{port}", str(port)) for a in argv]
        server = Server(argv, cwd, port, env=env, log=tmp_path / ("server%d.log" % len(started)))
        started.append(server)
        return server.ready() if wait else server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop()
        server.kill_group()


def ps_args(pid):
    # -ww: without a terminal, ps cuts lines at 80 columns.
    out = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True,
                         text=True)
    return out.stdout.strip()


def children(pid):
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(p.name))
    return sorted(found)


def eventually(predicate, seconds=20.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
