"""A small HTTP/1.1 server for the probe and metrics ports: one thread, bounded connections, header deadline.

Why not ``ThreadingHTTPServer``: it starts a thread per connection, so 1,000 idle (or slow-loris) connections to
the probe port are 1,000 threads (RSS 76 -> 102 MiB, probe latency up to 1 s), and nothing bounds them. Here one
thread runs a ``selectors`` loop: an idle connection costs a socket and a small buffer, never a thread. The handlers
(health checks, metrics generation) are fast and synchronous, so running them on the loop thread is what keeps
the answers fast. Hostile load is bounded three ways:

- at most ``max_connections`` open; past that the oldest connection still waiting for its request is closed first
  (a fresh probe is never the one evicted, and a response being written is not cut);
- a request's headers must arrive in full within ``header_timeout`` of the accept (slow loris), and at most
  ``max_header_bytes`` of them;
- a response must be taken by the client within ``write_timeout``.

Every response closes its connection (``Connection: close``): kubelet probes and Prometheus scrapes open one per
request anyway, and it keeps the state machine to "read a request, write a response".
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable

from dra_kwok.runtime.log import get_logger

__all__ = ["HttpServer", "Route"]

log = get_logger("http")
Route = Callable[[bool], "tuple[int, str, bytes]"]  # verbose -> (status, content type, body)


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    accepted: float
    inbox: bytearray = field(default_factory=bytearray)
    outbox: memoryview | None = None  # set once the response is ready
    write_deadline: float = 0.0


class HttpServer:
    """``routes`` maps a path (without query) to a handler called with ``verbose`` ("verbose" in the query)."""

    def __init__(self, host: str, port: int, routes: dict[str, Route], *, max_connections: int = 128,
                 header_timeout: float = 5.0, write_timeout: float = 30.0, max_header_bytes: int = 16384) -> None:
        self.routes = routes
        self.max_connections, self.header_timeout = max_connections, header_timeout
        self.write_timeout, self.max_header_bytes = write_timeout, max_header_bytes
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=socket.SOMAXCONN)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._conns: OrderedDict[socket.socket, _Conn] = OrderedDict()  # in accept order: oldest first
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"http-{self.port}", daemon=True)

    def start(self) -> "HttpServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every socket (returns once the loop thread has ended)."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(5)
        for conn in list(self._conns.values()):
            self._close(conn)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        while not self._stopping:
            try:
                events = self._selector.select(timeout=0.5)
            except OSError:  # closed under us by stop()
                return
            for key, mask in events:
                sock = key.fileobj
                if sock is self._listener:
                    self._accept()
                elif sock is self._wake_r:
                    try:
                        self._wake_r.recv(64)
                    except OSError:
                        pass
                else:
                    conn = self._conns.get(sock) if isinstance(sock, socket.socket) else None
                    if conn is None:
                        continue
                    try:
                        self._write(conn) if mask & selectors.EVENT_WRITE else self._read(conn)
                    except Exception as err:  # a handler bug or a socket error: close this one, keep serving
                        log.error("HTTP connection failed", err=err, port=self.port)
                        self._close(conn)
            self._expire(time.monotonic())

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # EMFILE and the like: stop accepting for this round, the backlog keeps them
                log.error("HTTP accept failed", err=err, port=self.port)
                return
            sock.setblocking(False)
            if len(self._conns) >= self.max_connections:
                self._evict_one()
            conn = _Conn(sock, time.monotonic())
            self._conns[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ)

    def _evict_one(self) -> None:
        """Close the oldest connection still waiting for its request (else the oldest of all)."""
        victim = next((c for c in self._conns.values() if c.outbox is None), None)
        self._close(victim or next(iter(self._conns.values())))

    def _expire(self, now: float) -> None:
        for conn in list(self._conns.values()):
            if (conn.outbox is None and now - conn.accepted > self.header_timeout) or (
                    conn.outbox is not None and now > conn.write_deadline):
                self._close(conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.inbox += data
        end = conn.inbox.find(b"\r\n\r\n")
        if end < 0:
            end = conn.inbox.find(b"\n\n")
        if end < 0:
            if len(conn.inbox) > self.max_header_bytes:
                self._respond(conn, 431, "text/plain", b"request header fields too large\n")
            return
        if end > self.max_header_bytes:
            self._respond(conn, 431, "text/plain", b"request header fields too large\n")
            return
        self._respond(conn, *self._handle(bytes(conn.inbox[:end])))

    def _handle(self, head: bytes) -> tuple[int, str, bytes, bool]:
        """(status, content type, body, send body) for a request head."""
        parts = head.split(b"\n", 1)[0].decode("latin-1").strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, "text/plain", b"bad request\n", True
        method, target = parts[0], parts[1]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n", method != "HEAD"
        path, _, query = target.partition("?")
        route = self.routes.get(path)
        if route is None:
            return 404, "text/plain", b"not found\n", method == "GET"
        try:
            code, ctype, body = route("verbose" in query)
        except Exception as err:  # a handler bug answers 500, and the server goes on
            log.error("HTTP handler failed", err=err, path=path)
            return 500, "text/plain", b"internal error\n", method == "GET"
        return code, ctype, body, method == "GET"

    def _respond(self, conn: _Conn, code: int, ctype: str, body: bytes, send_body: bool = True) -> None:
        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = ""
        head = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n").encode("latin-1")
        conn.inbox = bytearray()
        conn.outbox = memoryview(head + body if send_body else head)
        conn.write_deadline = time.monotonic() + self.write_timeout
        self._selector.modify(conn.sock, selectors.EVENT_WRITE)
        self._write(conn)  # most responses fit the socket buffer: done without another round

    def _write(self, conn: _Conn) -> None:
        assert conn.outbox is not None
        try:
            sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.outbox = conn.outbox[sent:]
        if not conn.outbox:
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock, None) is None:
            return
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
