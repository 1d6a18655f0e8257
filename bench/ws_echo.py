"""WebSocket echo messages per second, server and client on separate cores.

Each server runs pinned to core 0 with one worker and the echo app (apps/asgi_ws_echo.py); the
client, pinned to core 1, opens --conns WebSocket connections and on each sends --messages text
messages of --size bytes, --window at a time before reading their echoes (1: round trips, as a
chat or an RPC over WebSocket does; more: a stream, where the client's own cost per message
matters less). Rounds alternate between the servers; the median round is
reported, with the server's CPU time per message (its whole process tree).

Usage:
  python bench/ws_echo.py --server "ours=../target/release/gunicorn -k asgi" \\
      --server "uvicorn=raw:uvicorn --host 127.0.0.1 --port {port} --app-dir {apps} {app}"
A CMD is a gunicorn command line (the script adds -b, -w 1, --chdir and the app) or `raw:` with
{port}, {app} and {apps} filled in.
"""
import argparse
import subprocess
import sys
from pathlib import Path

from harness import free_port, server_cpu_ns, start_pinned, stop_group, wait_ready

APPS = Path(__file__).resolve().parent / "apps"

CLIENT = r'''
import asyncio, sys, time
from websockets.asyncio.client import connect

async def one(port, messages, payload, window):
    async with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
        for _ in range(messages // window):
            for _ in range(window):
                await ws.send(payload)
            for _ in range(window):
                await ws.recv()

async def main(port, conns, messages, size, window):
    payload = "x" * size
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(
        *(one(port, messages, payload, window) for _ in range(conns))), 300)
    print(conns * (messages // window) * window, time.monotonic() - t0)

asyncio.run(main(*map(int, sys.argv[1:])))
'''


WSLOAD = Path(__file__).resolve().parent / "wsload" / "target" / "release" / "wsload"


def client_argv(kind):
    """The client command, pinned to core 1: the Python `websockets` client, or the Rust one
    (bench/wsload, built with cargo on first use), whose cost per message is a fraction of the
    Python client's, so that the server, not the client, is what is measured."""
    if kind == "rust":
        if not WSLOAD.exists():
            subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=WSLOAD.parents[2],
                           check=True, timeout=600)
        return ["taskset", "-c", "1", str(WSLOAD)]
    return ["taskset", "-c", "1", sys.executable, "-c", CLIENT]


def one_round(cmd, app, conns, messages, size, window, client_kind):
    port = free_port()
    proc = start_pinned(cmd, app, port, APPS)
    try:
        if not wait_ready(port, proc):
            raise SystemExit(f"did not start: {cmd}: {proc.stderr.read(2000).decode()}")
        client = client_argv(client_kind)
        subprocess.run(client + [str(port), "1", "200", str(size), "1"], check=True,
                       timeout=120, capture_output=True)  # warm-up
        before = server_cpu_ns(proc.pid)
        out = subprocess.run(client + [str(port), str(conns), str(messages), str(size),
                              str(window)],
                             check=True, timeout=400, capture_output=True, text=True).stdout
        used = server_cpu_ns(proc.pid) - before
        sent, elapsed = out.split()
        sent, elapsed = int(sent), float(elapsed)
        return {"mps": sent / elapsed, "cpu_us": used / 1000 / sent}
    finally:
        stop_group(proc)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", action="append", required=True)
    p.add_argument("--app", default="asgi_ws_echo:app")
    p.add_argument("--conns", type=int, default=10)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--client", choices=["python", "rust"], default="python")
    p.add_argument("--window", type=int, default=1,
                   help="messages each connection sends before reading their echoes")
    args = p.parse_args()
    servers = [s.split("=", 1) for s in args.server]
    results = {name: [] for name, _ in servers}
    for _ in range(args.rounds):
        for name, cmd in servers:
            results[name].append(
                one_round(cmd, args.app, args.conns, args.messages, args.size, args.window,
                          args.client))
    print(f"WebSocket echo: {args.conns} connections x {args.messages} messages of "
          f"{args.size} bytes, {args.window} in flight per connection, {args.client} client "
          f"on core 1, server on core 0; median round")
    print("| server | messages/s | server CPU µs/message | rounds messages/s |")
    print("|---|---:|---:|---|")
    for name, rs in results.items():
        med = sorted(rs, key=lambda r: r["mps"])[len(rs) // 2]
        rounds = " / ".join(f"{r['mps']:.0f}" for r in rs)
        print(f"| {name} | {med['mps']:.0f} | {med['cpu_us']:.1f} | {rounds} |")


if __name__ == "__main__":
    main()
