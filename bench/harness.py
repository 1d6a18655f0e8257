"""Side-by-side benchmark of our gunicorn against gunicorn, granian and bjoern.

Every server runs the same app with the same worker count, one after the other, on loopback; wrk
drives the load. Results go to docs/benchmarks.md (tables) and docs/benchmarks.png (chart).

Usage: python bench/harness.py [--duration S] [--only SCENARIO,...] [--servers NAME,...]
Run it through bench/run, which installs the peers and wrk first.
"""
import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "bench" / "apps"
# bench/run builds into $CARGO_TARGET_DIR when it is set, as cargo does.
OURS = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release" / "gunicorn"
VENV_BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- servers: name -> function(app "module:var", port, workers, kind) -> argv or None --------


def gunicorn_cli(binary, kind):
    """Our gunicorn and the original take the same command line: that is the point."""

    def cmd(app, port, workers):
        argv = [str(binary), "-b", f"127.0.0.1:{port}", "-w", str(workers), "--chdir", str(APPS)]
        if kind == "gthread":
            argv += ["-k", "gthread", "--threads", "4"]
        elif kind == "gevent":
            argv += ["-k", "gevent", "--worker-connections", "1000"]
        return argv + ["--log-level", "warning", app]

    return cmd


def ours(kind):
    return gunicorn_cli(OURS, kind)


def gunicorn(kind):
    return gunicorn_cli(VENV_BIN / "gunicorn", kind)


def granian(app, port, workers):
    return [str(VENV_BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--working-dir", str(APPS),
            "--log-level", "warning", app]


def bjoern(app, port, workers):
    # bjoern is single-process: it is measured with 1 process whatever the worker count.
    return [sys.executable, str(APPS / "bjoern_serve.py"), app, str(port)]


SERVERS = {
    "ours-sync": ours("sync"),
    "ours-gthread": ours("gthread"),
    "ours-gevent": ours("gevent"),
    "gunicorn-sync": gunicorn("sync"),
    "gunicorn-gthread": gunicorn("gthread"),
    "gunicorn-gevent": gunicorn("gevent"),
    "granian": granian,
    "bjoern": bjoern,
}

# ---- scenarios ---------------------------------------------------------------------------------

LUA_CLOSE = 'wrk.headers["Connection"] = "close"\n'


def lua_upload(chunked):
    size = 1 << 20
    if chunked:
        # wrk would add Content-Length to a body it formats itself, so build the raw request.
        return (
            "local piece = string.rep('x', 65536)\n"
            "local parts = {}\n"
            f"for i = 1, {size // (64 * 1024)} do parts[#parts+1] = '10000\\r\\n' .. piece .. '\\r\\n' end\n"
            "local body = table.concat(parts) .. '0\\r\\n\\r\\n'\n"
            "local raw = 'POST / HTTP/1.1\\r\\nHost: localhost\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n' .. body\n"
            "request = function() return raw end\n"
        )
    return (
        f"wrk.method = 'POST'\nwrk.body = string.rep('x', {size})\n"
        "wrk.headers['Content-Type'] = 'application/octet-stream'\n"
    )


def lua_errors():
    # Count non-2xx responses as errors in the JSON summary.
    return (
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        "  io.write(string.format('JSON{\"requests\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,"
        "\"status\":%d,\"timeout\":%d,\"p50\":%d,\"p99\":%d,\"duration_us\":%d}\\n',"
        " summary.requests, e.connect, e.read, e.write, e.status, e.timeout,"
        " latency:percentile(50), latency:percentile(99), summary.duration))\n"
        "end\n"
    )


SCENARIOS = [
    # name, app, connections, extra lua, servers (with workers), needs
    dict(name="hello-keepalive", app="hello:app", conns=64, lua="",
         servers=["ours-gthread", "granian", "gunicorn-gthread", "bjoern"]),
    # Connection: close costs the load generator a connect and a close per request: one wrk
    # thread is then the ceiling (93 % of a core while our workers idle), so these use two.
    dict(name="hello-sync", app="hello:app", conns=16, lua=LUA_CLOSE, wrk_threads=2,
         servers=["ours-sync", "gunicorn-sync"]),
    dict(name="hello-close", app="hello:app", conns=16, lua=LUA_CLOSE, wrk_threads=2,
         servers=["ours-gthread", "granian", "gunicorn-gthread"]),
    dict(name="flask-json", app="flask_json:app", conns=64, lua="",
         servers=["ours-gthread", "granian", "gunicorn-gthread"]),
    dict(name="upload-1mib-length", app="upload:app", conns=8, lua=lua_upload(False),
         servers=["ours-gthread", "granian", "gunicorn-gthread"]),
    dict(name="upload-1mib-chunked", app="upload:app", conns=8, lua=lua_upload(True),
         servers=["ours-gthread", "granian", "gunicorn-gthread"]),
    dict(name="stream-100-chunks", app="stream:app", conns=32, lua="",
         servers=["ours-gthread", "granian", "gunicorn-gthread"]),
    dict(name="sleep-50ms", app="sleep:app", conns=64, lua="",
         servers=["ours-gthread", "granian", "gunicorn-gthread"]),
    dict(name="slow-clients", app="hello:app", conns=32, lua="", slow=True,
         servers=["ours-gthread", "granian", "gunicorn-gthread"]),
    dict(name="gevent-hello", app="hello:app", conns=500, lua="",
         servers=["ours-gevent", "gunicorn-gevent"]),
    dict(name="gevent-sleep-50ms", app="sleep:app", conns=500, lua="",
         servers=["ours-gevent", "gunicorn-gevent"]),
]


# What a server that only speaks h2c answers: the client preface and an empty SETTINGS frame
# get the server's SETTINGS frame back.
H2C_PROBE = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", b"")


def start_pinned(cmd, app, port, apps, extra=()):
    """Starts a server pinned to core 0 in its own process group: CMD is a gunicorn command
    line (given -b, -w 1, --chdir APPS, --log-level warning, `extra`, then the app) or `raw:`
    followed by a peer's command with {port}, {app} and {apps} filled in."""
    if cmd.startswith("raw:"):
        argv = ["taskset", "-c", "0"] + shlex.split(cmd[4:].format(port=port, app=app, apps=apps))
    else:
        argv = ["taskset", "-c", "0"] + shlex.split(cmd) + [
            "-b", f"127.0.0.1:{port}", "-w", "1", "--chdir", str(apps), "--log-level", "warning",
            *extra, app]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def stop_group(proc):
    """TERM to the server's process group, KILL after 15 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_ready(port, proc, deadline_s=30.0, probe=(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", b"HTTP/")):
    """Waits until the server answers `probe` (bytes to send, prefix its answer starts with)."""
    send, expect = probe
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(send)
                s.settimeout(5)
                answer = s.recv(16)
                if answer and answer.startswith(expect):
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def proc_field_kib(path, field):
    """The value in kB of `field` (e.g. "VmRSS:") in a /proc file, 0 if absent or gone."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mib(master_pid):
    """(average VmRSS of the workers, their average PSS, PSS of the master and workers
    together), in MiB; a single-process server counts as its own worker.

    PSS divides each shared page among the processes mapping it, so shared library code
    counts once in the total; VmRSS counts it in full in every process that touched it."""
    workers = children(master_pid) or [master_pid]
    rss = [proc_field_kib(f"/proc/{pid}/status", "VmRSS:") for pid in workers]
    pss = [proc_field_kib(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in workers]
    total = sum(pss)
    if workers != [master_pid]:
        total += proc_field_kib(f"/proc/{master_pid}/smaps_rollup", "Pss:")
    n = len(workers) * 1024.0
    return sum(rss) / n, sum(pss) / n, total / 1024.0


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def server_cpu_ns(master_pid):
    """CPU time (ns, every thread) of the master and its workers so far: schedstat counts it
    exactly, where utime/stime are clock-tick samples that miss short bursts."""
    total = 0
    for pid in [master_pid] + children(master_pid):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


class SlowClients:
    """500 idle keep-alive connections plus a slowloris sending one header byte per second."""

    def __init__(self, port, idle=500):
        self.port, self.idle, self.socks, self.stop = port, idle, [], threading.Event()
        self.thread = threading.Thread(target=self._slowloris, daemon=True)

    def __enter__(self):
        for _ in range(self.idle):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.socks.append(s)
            except OSError:
                break
        self.thread.start()
        return self

    def _slowloris(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            self.socks.append(s)
            for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                if self.stop.wait(1.0):
                    return
                s.send(bytes([b]))
        except OSError:
            return

    def __exit__(self, *exc):
        self.stop.set()
        for s in self.socks:
            s.close()


def run_wrk(port, conns, duration, lua, threads=1):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua + lua_errors())
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "5s", "-s", script,
             f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(script)
    m = re.search(r"^JSON(\{.*\})$", out, re.M)
    if not m:
        return None
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return r


def bench_one(server, scenario, workers, duration):
    port = free_port()
    argv = SERVERS[server](scenario["app"], port, workers)
    env = dict(os.environ)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    try:
        if not wait_ready(port, proc):
            err = proc.stderr.read(2000).decode(errors="replace") if proc.poll() is not None else ""
            return {"error": f"did not start {err.strip()[:200]}"}
        run_wrk(port, min(scenario["conns"], 16), 1, scenario["lua"])  # warm-up
        cpu_before = server_cpu_ns(proc.pid)
        threads = int(os.environ.get("BENCH_WRK_THREADS", scenario.get("wrk_threads", 1)))
        if scenario.get("slow"):
            with SlowClients(port):
                r = run_wrk(port, scenario["conns"], duration, scenario["lua"], threads)
        else:
            r = run_wrk(port, scenario["conns"], duration, scenario["lua"], threads)
        if r is None:
            return {"error": "wrk gave no result"}
        # Read right after wrk ended (the slow clients' idle connections cost next to nothing).
        cpu_ns = server_cpu_ns(proc.pid) - cpu_before
        r["cpu_us_per_req"] = cpu_ns / 1000 / max(r["requests"], 1)
        r["rss_mib"], r["pss_mib"], r["pss_total_mib"] = memory_mib(proc.pid)
        return r
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def median_run(rs):
    """The median round by req/s (its own latency, memory and CPU figures), with every
    round's req/s and the errors summed over all rounds."""
    ok = sorted((r for r in rs if "error" not in r), key=lambda r: r["rps"])
    if not ok:
        return rs[0]
    r = dict(ok[(len(ok) - 1) // 2])
    r["rounds_rps"] = [round(x["rps"]) if "error" not in x else None for x in rs]
    r["errors"] = sum(x["errors"] for x in ok)
    r["failed_rounds"] = len(rs) - len(ok)
    return r


def write_report(results, args, started):
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `bench/run {' '.join(sys.argv[1:])}`".rstrip() + f" on {started} "
        f"({os.cpu_count()} cores, loopback, wrk -t1 or -t2 (see the scenarios), "
        f"{args.duration} s per run, {args.rounds} rounds in alternating order, the median "
        f"round shown; {args.workers} workers/processes each; bjoern is single-process). "
        "Errors are summed over all rounds. RSS is the workers' average VmRSS; PSS splits shared "
        "pages among the processes sharing them (the total is master + workers).",
        "",
    ]
    for name, rows in results.items():
        lines += [f"## {name}", "", "| server | req/s | ours ÷ this | rounds req/s | p50 ms "
                  "| p99 ms | errors | RSS/worker MiB | PSS/worker MiB | PSS total MiB "
                  "| server CPU µs/req |",
                  "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        ours = next((r["rps"] for s, r in rows.items() if s.startswith("ours") and "error" not in r),
                    None)
        for server, r in rows.items():
            if "error" in r:
                lines.append(f"| {server} | — | — | — | — | — | {r['error']} | — | — | — | — |")
            else:
                ratio = f"{ours / r['rps']:.2f}×" if ours and r["rps"] else "—"
                rounds = " / ".join("—" if x is None else str(x) for x in r.get("rounds_rps", []))
                lines.append(
                    f"| {server} | {r['rps']:.0f} | {ratio} | {rounds} | {r['p50'] / 1000:.2f} "
                    f"| {r['p99'] / 1000:.2f} | {r['errors']} | {r['rss_mib']:.1f} "
                    f"| {r['pss_mib']:.1f} | {r['pss_total_mib']:.1f} "
                    f"| {r['cpu_us_per_req']:.1f} |")
        lines.append("")
    out = ROOT / "docs" / "benchmarks-results.md"
    out.write_text("\n".join(lines))
    (ROOT / "docs" / "benchmarks-results.json").write_text(json.dumps(results, indent=1))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart")
        return
    fig, axes = plt.subplots(len(results), 1, figsize=(8, 2.2 * len(results)), squeeze=False)
    for ax, (name, rows) in zip(axes[:, 0], results.items()):
        names = [s for s, r in rows.items() if "error" not in r]
        ax.barh(names, [rows[s]["rps"] for s in names],
                color=["tab:green" if s.startswith("ours") else "tab:gray" for s in names])
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("requests/s", fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "benchmarks.png", dpi=90)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--servers", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    servers = set(filter(None, args.servers.split(",")))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {}
    for sc in SCENARIOS:
        if only and sc["name"] not in only:
            continue
        names = [srv for srv in sc["servers"] if not servers or srv in servers]
        runs = {srv: [] for srv in names}
        # Rounds alternate the order of the servers, so that a slow minute of this shared
        # machine does not always fall on the same one; the median round is reported.
        for rnd in range(args.rounds):
            for server in (names if rnd % 2 == 0 else names[::-1]):
                r = bench_one(server, sc, args.workers, args.duration)
                runs[server].append(r)
                shown = r.get("error") or f"{r['rps']:.0f} req/s, p99 {r['p99'] / 1000:.1f} ms, " \
                                            f"{r['errors']} errors, {r['rss_mib']:.1f} MiB/worker " \
                                            f"(PSS {r['pss_mib']:.1f}, total {r['pss_total_mib']:.1f}), " \
                                            f"{r['cpu_us_per_req']:.1f} µs CPU/req"
                print(f"{sc['name']:<22} {server:<18} {shown}", flush=True)
        results[sc["name"]] = {srv: median_run(rs) for srv, rs in runs.items()}
    write_report(results, args, started)


if __name__ == "__main__":
    main()
