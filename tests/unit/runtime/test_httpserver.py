"""The probe and metrics ports under hostile load: probes stay fast, threads stay bounded (#18 item 4).

A real Manager serves its real probe port; the flood is 1,000 real TCP connections (and some sending half a request
line) on loopback. The server's own bounds (eviction order, header deadline, header size) are checked on an
HttpServer with small limits, so that each takes milliseconds.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
import urllib.request
from contextlib import ExitStack
from typing import Iterator

import pytest

from dra_kwok.runtime.httpserver import HttpServer
from dra_kwok.runtime.manager import Manager
from dra_kwok.runtime.metrics import Metrics
from dra_kwok.testing.controlplane import free_port

FLOOD = 1000


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes, float]:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(), time.monotonic() - t0
    except urllib.error.HTTPError as err:
        return err.code, err.read(), time.monotonic() - t0


@pytest.fixture
def manager() -> Iterator[Manager]:
    m = Manager(None, Metrics(), bind_address="127.0.0.1", health_port=free_port(), metrics_port=free_port())  # type: ignore[arg-type]
    thread = threading.Thread(target=m.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not m._servers or len(m._servers) < 2:
        assert time.monotonic() < deadline, "the manager did not start its servers"
        time.sleep(0.01)
    yield m
    m.stopping.set()
    thread.join(10)
    assert not thread.is_alive()


@pytest.fixture
def enough_file_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FLOOD + 512
    if soft < need:
        assert hard == resource.RLIM_INFINITY or hard >= need, f"the hard limit of open files ({hard}) is below {need}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _flood(stack: ExitStack, port: int, count: int, half: int) -> list[socket.socket]:
    """``count`` idle connections, ``half`` of which send half a request line and stop."""
    socks = []
    for i in range(count):
        s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        if i < half:
            s.sendall(b"GET /heal")
        socks.append(s)
    return socks


def test_probes_stay_fast_and_threads_bounded_under_1000_idle_connections(manager, enough_file_descriptors):
    health = f"http://127.0.0.1:{manager.health_port}"
    assert get(f"{health}/healthz")[:2] == (200, b"ok\n")
    threads_before = threading.active_count()
    with ExitStack() as stack:
        _flood(stack, manager.health_port, FLOOD, half=100)
        _flood(stack, manager.metrics_port, 100, half=50)
        latencies = []
        for _ in range(20):
            code, body, seconds = get(f"{health}/healthz")
            assert (code, body) == (200, b"ok\n")
            latencies.append(seconds)
        assert max(latencies) < 0.5, latencies
        assert get(f"http://127.0.0.1:{manager.metrics_port}/metrics")[0] == 200
        assert threading.active_count() <= threads_before  # no thread per connection
        assert threading.active_count() < 10
        assert all(server.open_connections <= server.max_connections for server in manager._servers)
    # all closed: everything still answers
    assert get(f"{health}/readyz?verbose")[:2] == (200, b"readyz check passed\n")
    assert get(f"http://127.0.0.1:{manager.metrics_port}/metrics")[0] == 200
    assert get(f"{health}/nope")[0] == 404


@pytest.fixture
def small() -> Iterator[HttpServer]:
    server = HttpServer("127.0.0.1", 0, {"/x": lambda verbose: (200, "text/plain", b"v\n" if verbose else b"x\n")},
                        max_connections=3, header_timeout=0.5, max_header_bytes=1024).start()
    yield server
    server.stop()


def _closed_by_server(sock: socket.socket, within: float = 2.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_the_oldest_idle_connection_is_closed_first(small):
    with ExitStack() as stack:
        first, second, third = _flood(stack, small.port, 3, half=0)
        time.sleep(0.1)
        assert get(f"http://127.0.0.1:{small.port}/x")[:2] == (200, b"x\n")  # the fourth: `first` goes
        assert _closed_by_server(first, 0.5)
        assert not _closed_by_server(third, 0.1)


def test_a_slow_loris_is_closed_after_the_header_timeout(small):
    with socket.create_connection(("127.0.0.1", small.port)) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\n")
        t0 = time.monotonic()
        assert _closed_by_server(sock, 3)
        assert 0.4 < time.monotonic() - t0 < 2


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /x?verbose HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK"),
    (b"HEAD /x HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK"),
    (b"POST /x HTTP/1.1\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed"),
    (b"nonsense\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
    (b"GET /x HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n", b"HTTP/1.1 431 Request Header Fields Too Large"),
])
def test_requests_get_their_status_and_the_connection_is_closed(small, request_bytes, status):
    with socket.create_connection(("127.0.0.1", small.port), timeout=3) as sock:
        sock.sendall(request_bytes)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(status + b"\r\n"), reply
    if request_bytes.startswith(b"GET /x?verbose"):
        assert reply.endswith(b"\r\n\r\nv\n") and b"Content-Length: 2\r\n" in reply
    if request_bytes.startswith(b"HEAD"):
        assert reply.endswith(b"Content-Length: 2\r\nConnection: close\r\n\r\n")


def test_a_failing_handler_answers_500_and_the_server_goes_on():
    def boom(verbose: bool) -> tuple[int, str, bytes]:
        raise RuntimeError("bug")

    server = HttpServer("127.0.0.1", 0, {"/boom": boom, "/ok": lambda v: (200, "text/plain", b"ok\n")}).start()
    try:
        assert get(f"http://127.0.0.1:{server.port}/boom")[0] == 500
        assert get(f"http://127.0.0.1:{server.port}/ok")[:2] == (200, b"ok\n")
    finally:
        server.stop()
