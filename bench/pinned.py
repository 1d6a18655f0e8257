"""Side-by-side runs with the server and the load generator on separate cores.

Each server command runs pinned to core 0 (`taskset -c 0`, one worker), wrk pinned to core 1
(`-t1 -c50`, keep-alive), on loopback. Rounds alternate between the servers; the median round is
reported with the server's CPU time per request (schedstat of the master and its workers), so
that a noisy machine shows up as spread between rounds rather than as a false difference.

Usage:
  python bench/pinned.py --app hello:app --server NAME=CMD [--server NAME=CMD ...]
  python bench/pinned.py --app upload:app --upload chunked --conns 8 --server ...
(`--upload length|chunked` POSTs 1 MiB bodies, as the harness's upload scenarios.)
  python bench/pinned.py --tls CERT KEY [--close] --server ...
(`--tls` serves https: gunicorn command lines get --certfile/--keyfile; `--close` makes every
request a new connection, so req/s are handshakes/s.)
  python bench/pinned.py --h2 [--tls CERT KEY] --server ...
(`--h2` loads with h2load instead of wrk: 10 connections of 10 concurrent streams, HTTP/2 by
ALPN with --tls, else h2c with prior knowledge; gunicorn command lines get
--http-protocols h2,h1 and, without TLS, --http2-cleartext prior-knowledge.) A CMD starting with `raw:` is run as
given, with {port}, {app} and {apps} filled in (for peers with other flags, e.g. granian).
CMD is a gunicorn command line without -b/-w/the app (e.g. "/venv/bin/gunicorn -k gthread
--threads 4"); "{port}" is not needed, the script adds -b and -w 1 and the app.
A --server given as a bare name is a peer from PEERS (bjoern, granian, uwsgi, pyruvate, gunicorn
27's gthread and sync from bench/.venv). Besides req/s and CPU µs per request, the table gives
wrk's p99 latency and, at the end of the round, the worker's VmRSS and PSS (a single-process
server counts as its own worker).
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The harness's helpers: a free port, waiting for the server, the CPU time of its process tree.
from harness import (H2C_PROBE, free_port, lua_upload, memory_mib, server_cpu_ns as cpu_ns,
                     start_pinned, stop_group, wait_ready)

APPS = Path(__file__).resolve().parent / "apps"
VENV_BIN = Path(__file__).resolve().parent / ".venv" / "bin"

# Peers by name (`--server bjoern`), each as a gunicorn user would run it with one process on
# the server's core: single-process servers as they are, thread pools of 4 like our gthread.
PEERS = {
    "bjoern": "raw:python {apps}/bjoern_serve.py {app} {port}",
    "granian": "raw:granian --interface wsgi --workers 1 --host 127.0.0.1 "
               "--port {port} --working-dir {apps} {app}",
    "uwsgi": "raw:uwsgi --http11-socket 127.0.0.1:{port} --chdir {apps} --module {app} "
             "--processes 1 --threads 4 --disable-logging --die-on-term",
    "pyruvate": "raw:python {apps}/pyruvate_serve.py {app} {port} 4",
    "gunicorn27-gthread": f"{VENV_BIN / 'gunicorn'} -k gthread --threads 4",
    "gunicorn27-sync": f"{VENV_BIN / 'gunicorn'} -k sync",
}


def wrk(port, duration, path, conns=50, lua="", scheme="http"):
    script = None
    if lua:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(lua)
            script = f.name
    try:
        out = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s",
             "--latency"]
            + (["-s", script] if script else []) + [f"{scheme}://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, timeout=duration + 60,
        ).stdout
    finally:
        if script:
            os.unlink(script)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return requests, errors, p99_ms(out)


def p99_ms(out):
    """wrk's 99th percentile latency (`--latency`), in ms."""
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def h2load(port, duration, path, scheme="http"):
    """h2load on core 1: 10 connections x 10 streams for `duration` s; (requests, errors)."""
    out = subprocess.run(
        ["taskset", "-c", "1", "h2load", "-c10", "-m10", "-t1", "-D", str(duration),
         f"{scheme}://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=duration + 60,
    ).stdout
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", out)
    if not m:
        raise SystemExit(f"h2load output not understood:\n{out}")
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    ok = int(status.group(1)) if status else 0
    bad = sum(int(status.group(i)) for i in (2, 3, 4)) if status else 0
    return ok, int(m.group(5)) + int(m.group(6)) + bad, float("nan")


def wait_ready_tls(port, proc, deadline_s=30.0):
    """`wait_ready` over TLS (the certificate is not verified: it is the bench's own)."""
    import socket
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                    s.settimeout(5)
                    if s.recv(16).startswith(b"HTTP/"):
                        return True
        except OSError:
            time.sleep(0.2)
    return False


def cores_busy(cores=(0, 1), sample_s=0.5):
    """The busiest of `cores` over `sample_s`, as a fraction of the time (from /proc/stat)."""
    def ticks():
        out = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name = line.split()[0]
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
                v = [int(x) for x in line.split()[1:]]
                out[name] = (sum(v), v[3] + v[4])  # total, idle + iowait
        return out
    a = ticks()
    time.sleep(sample_s)
    b = ticks()
    return max(1 - (b[k][1] - a[k][1]) / max(b[k][0] - a[k][0], 1) for k in a)


def wait_idle(limit, max_wait_s=120):
    """Waits (at most `max_wait_s`) until neither core is busier than `limit` (other people's
    builds on a shared machine); True if they were quiet."""
    end = time.monotonic() + max_wait_s
    while time.monotonic() < end:
        if cores_busy() <= limit:
            return True
        time.sleep(2)
    return False


def one_round(cmd, app, duration, path, conns=50, lua="", tls=None, h2=False):
    port = free_port()
    extra = []
    if tls:
        extra += ["--certfile", tls[0], "--keyfile", tls[1]]
    if h2:
        extra += ["--http-protocols", "h2,h1"]
        if not tls:
            extra += ["--http2-cleartext", "prior-knowledge"]
    scheme = "https" if tls else "http"
    proc = start_pinned(cmd, app, port, APPS, extra)
    try:
        if tls:
            ready = wait_ready_tls(port, proc)
        elif h2:
            ready = wait_ready(port, proc, probe=H2C_PROBE)
        else:
            ready = wait_ready(port, proc)
        if not ready:
            os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit(f"did not start: {cmd}: {proc.stderr.read(2000).decode()}")
        load = (lambda d: h2load(port, d, path, scheme)) if h2 else (
            lambda d: wrk(port, d, path, conns, lua, scheme))
        load(1)  # warm-up
        before, t0 = cpu_ns(proc.pid), time.monotonic()
        requests, errors, p99 = load(duration)
        elapsed = time.monotonic() - t0
        used = cpu_ns(proc.pid) - before
        rss, pss, _ = memory_mib(proc.pid)
        return {"rps": requests / duration, "cpu_us": used / 1000 / max(requests, 1),
                "errors": errors, "elapsed": elapsed, "p99": p99, "rss": rss, "pss": pss}
    finally:
        stop_group(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", default="hello:app")
    ap.add_argument("--path", default="/")
    ap.add_argument("--server", action="append", required=True,
                    help="NAME=CMD, or a peer's name: " + ", ".join(PEERS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--upload", choices=["length", "chunked"], default=None)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), default=None)
    ap.add_argument("--close", action="store_true")
    ap.add_argument("--h2", action="store_true")
    ap.add_argument("--wait-idle", type=float, default=None, metavar="FRACTION",
                    help="before each round, wait (up to 2 min) until cores 0 and 1 are at most "
                         "this busy, e.g. 0.1: other work on a shared machine skews the figures")
    args = ap.parse_args()
    lua = lua_upload(args.upload == "chunked") if args.upload else ""
    if args.close:
        lua += 'wrk.headers["Connection"] = "close"\n'
    servers = [s.split("=", 1) if "=" in s else [s, PEERS[s]] for s in args.server]
    results = {name: [] for name, _ in servers}
    for r in range(args.rounds):
        order = servers if r % 2 == 0 else list(reversed(servers))
        for name, cmd in order:
            if args.wait_idle is not None and not wait_idle(args.wait_idle):
                print(f"round {r + 1} of {name}: the cores stayed busy", file=sys.stderr)
            results[name].append(
                one_round(cmd, args.app, args.duration, args.path, args.conns, lua, args.tls,
                          args.h2))
    what = f", 1 MiB uploads ({args.upload})" if args.upload else ""
    what += ", https" if args.tls else ""
    what += ", a new connection per request" if args.close else ""
    loader = "h2load -c10 -m10 (HTTP/2)" if args.h2 else f"wrk -t1 -c{args.conns}"
    print(f"app {args.app}{what}, {args.rounds} rounds of {args.duration} s, server on core 0, "
          f"{loader} on core 1; median round")
    print("| server | req/s | CPU µs/req | p99 ms | RSS MiB | PSS MiB | rounds: req/s (µs/req) | errors |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for name, _ in servers:
        rs = sorted(results[name], key=lambda x: x["rps"])
        med = rs[(len(rs) - 1) // 2]
        rounds = " / ".join(f"{x['rps']:.0f} ({x['cpu_us']:.1f})" for x in results[name])
        errors = sum(x["errors"] for x in rs)
        print(f"| {name} | {med['rps']:.0f} | {med['cpu_us']:.1f} | {med['p99']:.2f} | "
              f"{med['rss']:.1f} | {med['pss']:.1f} | {rounds} | {errors} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
