"""Probe latency, threads and RSS of the probe port under a flood of idle connections (#18 item 4).

Usage: PYTHONPATH=. python3 bench/http_flood.py [--connections 1000] [--half 100]

Runs the probe server in a child process, twice: ``threading`` is the server dra-kwok had before
(``http.server.ThreadingHTTPServer``, a thread per connection) and ``manager`` is today's Manager with its
selectors server. For each, opens N idle TCP connections (the first ``--half`` of them send half a request line and
stop), then times 20 GETs of /healthz, and reads the child's thread count and RSS from /proc. Loopback only; every
socket is closed and every child stopped at the end. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack

CHILD = {
    "threading": """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers(); self.wfile.write(b"ok\\n")
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H); s.daemon_threads = True
print("ready", flush=True); s.serve_forever()
""",
    "manager": """
import sys
from dra_kwok.runtime.manager import Manager
from dra_kwok.runtime.metrics import Metrics
m = Manager(None, Metrics(), bind_address="127.0.0.1", health_port=int(sys.argv[1]))
print("ready", flush=True); m.run()
""",
}


def proc_status(pid: int) -> tuple[int, float]:
    """(threads, RSS MiB) of a process."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(port: int) -> float:
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        assert resp.status == 200 and resp.read() == b"ok\n"
    return time.monotonic() - t0


def measure(kind: str, connections: int, half: int) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD[kind], str(port)], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 10
        while True:
            try:
                probe(port)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.05)
        time.sleep(0.3)
        threads0, rss0 = proc_status(child.pid)
        idle = [probe(port) for _ in range(20)]
        with ExitStack() as stack:
            for i in range(connections):
                s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
                if i < half:
                    s.sendall(b"GET /heal")
            time.sleep(1.0)
            flooded = [probe(port) for _ in range(20)]
            threads1, rss1 = proc_status(child.pid)
        after = [probe(port) for _ in range(5)]
        return {"threads0": threads0, "rss0": rss0, "threads1": threads1, "rss1": rss1,
                "p50_idle": statistics.median(idle), "p50": statistics.median(flooded), "max": max(flooded),
                "after": max(after)}
    finally:
        child.terminate()
        child.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--half", type=int, default=100, help="connections that send half a request line")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 256), hard))
    print(f"{args.connections} idle connections ({args.half} with half a request line), 20 GETs /healthz each")
    print(f"{'server':<10} {'threads':>13} {'RSS MiB':>15} {'p50 idle ms':>12} {'p50 flood ms':>13} "
          f"{'max flood ms':>13} {'after ms':>9}")
    for kind in ("threading", "manager"):
        r = measure(kind, args.connections, args.half)
        print(f"{kind:<10} {r['threads0']:>5.0f} -> {r['threads1']:>5.0f} {r['rss0']:>6.1f} -> {r['rss1']:>6.1f} "
              f"{r['p50_idle'] * 1000:>12.1f} {r['p50'] * 1000:>13.1f} {r['max'] * 1000:>13.1f} "
              f"{r['after'] * 1000:>9.1f}")


if __name__ == "__main__":
    main()
