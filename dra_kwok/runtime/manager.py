"""The manager: owns the threads, named health checks, the probe and metrics servers, leader election and signals.

Why (controller-runtime's ``pkg/manager``): controllers should only read caches, diff and apply; everything about
*running* them lives here, and knows nothing of what they do. Runnables come in two groups. Plain ones (config
sources, informers) start on every replica, so that a standby's caches are warm; leader-election runnables
(reconcilers) start only once the caches have synced and this replica leads. Start order: HTTP servers -> plain
runnables -> wait for every cache -> leader election (or not) -> leader runnables. Stop order is the reverse;
SIGTERM/SIGINT finish the in-flight write, release the lease and return 0 within a few seconds. A lost lease stops
the writes at once and returns 1, so that the pod restarts as a clean standby (as controller-runtime).

Health checks (``pkg/healthz``): named functions returning ``None`` when passing, else why not. ``/healthz`` and
``/livez`` run the liveness checks, ``/readyz`` the readiness checks; ``?verbose`` lists each check. A check may
also pass with something to say (a :class:`Note`): it does not fail the probe, ``?verbose`` shows it.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from kubernetes import client
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dra_kwok.runtime.httpserver import HttpServer
from dra_kwok.runtime.leaderelection import LeaderElector
from dra_kwok.runtime.log import get_logger
from dra_kwok.runtime.metrics import Metrics

__all__ = ["Check", "LeaderElection", "Manager", "Note", "Runnable"]

log = get_logger("manager")
Check = Callable[[], "str | None"]  # None: passing; else the reason it fails (a Note: passing, with a remark)


class Note(str):
    """A check result that passes but says something (``[+]name ok: <text>`` in ``?verbose``): a state worth
    knowing that is no reason to take the pod out of service."""


class Runnable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class LeaderElection:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


class Manager:
    def __init__(
        self,
        api: client.ApiClient,
        metrics: Metrics,
        *,
        bind_address: str = "0.0.0.0",
        health_port: int = 0,
        metrics_port: int = 0,
        leader_election: LeaderElection | None = None,
    ) -> None:
        self.api = api
        self.metrics = metrics
        self.bind_address, self.health_port, self.metrics_port = bind_address, health_port, metrics_port
        self.stopping = threading.Event()
        self.exit_code = 0
        self._runnables: list[Runnable] = []
        self._leader_runnables: list[Runnable] = []
        self._caches: list[Callable[[], bool]] = []
        self._healthz: dict[str, Check] = {}
        self._readyz: dict[str, Check] = {}
        self._on_scrape: list[Callable[[], None]] = []
        self._servers: list[HttpServer] = []
        self._started_leading = threading.Event()
        self._lease_name = leader_election.name if leader_election else ""
        self.elector: LeaderElector | None = None
        if leader_election is not None:
            le = leader_election
            self.elector = LeaderElector(
                api, le.namespace, le.name, le.identity, on_started=self._on_started_leading,
                on_stopped=self._on_lost_lease, lease_duration=le.lease_duration, renew_deadline=le.renew_deadline,
                retry_period=le.retry_period,
            )
            self.add_healthz_check(
                "leader-election",
                lambda: None if not self.elector.started or self.elector.alive() or self.stopping.is_set()  # type: ignore[union-attr]
                else "elector stopped")

    # ------------------------------------------------------------------ building
    def add(self, runnable: Runnable, *, needs_leader: bool = False) -> None:
        (self._leader_runnables if needs_leader else self._runnables).append(runnable)

    def add_cache(self, synced: Callable[[], bool]) -> None:
        """Leader runnables wait until every cache says it has synced."""
        self._caches.append(synced)

    def add_healthz_check(self, name: str, check: Check) -> None:
        self._healthz[name] = check

    def add_readyz_check(self, name: str, check: Check) -> None:
        self._readyz[name] = check

    def on_scrape(self, hook: Callable[[], None]) -> None:
        """Run before each /metrics scrape (gauges computed on demand)."""
        self._on_scrape.append(hook)

    def is_leader(self) -> bool:
        return self.elector.is_leader if self.elector is not None else True

    def can_write(self) -> bool:
        """Leader (or no election) and not stopping: what every writer checks before each write."""
        return self.is_leader() and not self.stopping.is_set()

    # ------------------------------------------------------------------ probes
    def checks(self, which: str) -> dict[str, str | None]:
        """name -> None when passing, else why not; ``which`` is healthz / livez (liveness) or readyz."""
        checks = self._readyz if which == "readyz" else self._healthz
        return {name: check() for name, check in checks.items()}

    def _probe(self, which: str, verbose: bool) -> tuple[int, str, bytes]:
        results = self.checks(which)
        failing = {k: v for k, v in results.items() if v and not isinstance(v, Note)}
        code = 500 if failing else 200
        if verbose:
            lines = [f"[-]{name} failed: {why}" if name in failing else f"[+]{name} ok{': ' + why if why else ''}"
                     for name, why in results.items()]
            lines.append(f"{which} check {'passed' if code == 200 else 'failed'}")
            return code, "text/plain", ("\n".join(lines) + "\n").encode()
        if failing:
            return code, "text/plain", ("; ".join(f"{k}: {v}" for k, v in failing.items()) + "\n").encode()
        return code, "text/plain", b"ok\n"

    def _scrape(self, verbose: bool) -> tuple[int, str, bytes]:
        for hook in self._on_scrape:
            hook()
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)

    def _serve(self, port: int, routes: dict[str, Callable[[bool], tuple[int, str, bytes]]]) -> None:
        """One thread per port, whatever the number of connections (see runtime/httpserver.py)."""
        self._servers.append(HttpServer(self.bind_address, port, routes).start())

    # ------------------------------------------------------------------ leadership
    def _on_started_leading(self) -> None:
        self.metrics.leader.labels(name=self._lease_name).set(1)
        self._started_leading.set()

    def _on_lost_lease(self) -> None:
        self.metrics.leader.labels(name=self._lease_name).set(0)
        self.exit_code = 1
        self.stopping.set()

    # ------------------------------------------------------------------ run
    def run(self, install_signals: bool = True) -> int:
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stopping.set())
        health = {"/healthz": lambda v: self._probe("healthz", v), "/livez": lambda v: self._probe("livez", v),
                  "/readyz": lambda v: self._probe("readyz", v)}
        if self.health_port and self.health_port == self.metrics_port:
            self._serve(self.health_port, {**health, "/metrics": self._scrape})
        else:
            if self.health_port:
                self._serve(self.health_port, health)
            if self.metrics_port:
                self._serve(self.metrics_port, {"/metrics": self._scrape})
        for runnable in self._runnables:
            runnable.start()
        t0 = time.monotonic()
        while not self.stopping.is_set() and not all(synced() for synced in self._caches):
            self.stopping.wait(0.05)
        if not self.stopping.is_set():
            log.info("Caches synced", seconds=round(time.monotonic() - t0, 3))
            if self.elector is not None:
                self.metrics.leader.labels(name=self._lease_name).set(0)
                self.elector.start()
                while not self.stopping.is_set() and not self._started_leading.is_set():
                    self.stopping.wait(0.1)
            if not self.stopping.is_set():
                for runnable in self._leader_runnables:
                    runnable.start()
        self.stopping.wait()
        return self.shutdown()

    def shutdown(self) -> int:
        t0 = time.monotonic()
        log.info("Stopping manager", reason="lost lease" if self.exit_code else "signal")
        for runnable in reversed(self._runnables + self._leader_runnables):  # the reverse of the start order
            runnable.stop()
        if self.elector is not None:
            self.elector.stop()
            self.metrics.leader.labels(name=self._lease_name).set(0)
        for server in self._servers:
            server.stop()
        log.info("Stopped manager", seconds=round(time.monotonic() - t0, 3))
        return self.exit_code
