"""The manager: owns the client, the threads, probes and metrics, leader election and signals (controller-runtime's).

Why: controllers should only read caches, diff and apply; everything about *running* them lives here. Start order:
HTTP servers -> config source and informers (on every replica, so a standby's caches are warm) -> wait for the
caches -> leader election (or not) -> the ResourceSlice workers, on the leader only. Stop order is the reverse;
SIGTERM/SIGINT finish the in-flight write, release the lease and return 0 within a few seconds. A lost lease
stops the writes at once and exits non-zero, so that the pod restarts as a clean standby (as controller-runtime).
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dra_kwok.controllers.source import ConfigMapController, FileConfigSource
from dra_kwok.controllers.resourceslice import ResourceSliceController
from dra_kwok.runtime.events import EventRecorder
from dra_kwok.runtime.rest import Rest, new_api_client
from dra_kwok.runtime.leaderelection import LeaderElector
from dra_kwok.runtime.log import get_logger
from dra_kwok.runtime.metrics import Metrics
from dra_kwok.controllers.store import Store

log = get_logger("manager")
LEASE_NAME = "dra-kwok-leader"


@dataclass
class Options:
    kubeconfig: str | None = None
    namespace: str = "karpenter"
    configmap: str = "dra-kwok-configmap"
    config_file: str | None = None
    resync_period: float = 30.0
    leader_elect: bool = False
    leader_election_namespace: str | None = None
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    health_port: int = 8081
    metrics_port: int = 8080
    bind_address: str = "0.0.0.0"
    workers: int = 4
    kwok_annotation: str = "kwok.x-k8s.io/node"
    watch_timeout: int = 60
    request_timeout: float = 15.0
    identity: str | None = None


class Manager:
    def __init__(self, opts: Options, api=None) -> None:
        self.opts = opts
        self.api = api or new_api_client(opts.kubeconfig)
        self.metrics = Metrics()
        self.store = Store()
        self.identity = opts.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self.stopping = threading.Event()
        self.exit_code = 0
        self._started_leading = threading.Event()
        self.elector: LeaderElector | None = None
        if opts.leader_elect:
            self.elector = LeaderElector(
                self.api, opts.leader_election_namespace or opts.namespace, LEASE_NAME, self.identity,
                on_started=self._on_started_leading, on_stopped=self._on_lost_lease,
                lease_duration=opts.lease_duration, renew_deadline=opts.renew_deadline, retry_period=opts.retry_period,
            )
        is_leader: Callable[[], bool] = (lambda: self.elector.is_leader) if self.elector else (lambda: True)  # type: ignore[union-attr]
        self.is_leader = is_leader
        self.slices = ResourceSliceController(
            self.api, self.store, self.metrics, kwok_annotation=opts.kwok_annotation,
            resync_period=opts.resync_period, workers=opts.workers, watch_timeout=opts.watch_timeout,
            request_timeout=opts.request_timeout, can_write=lambda: is_leader() and not self.stopping.is_set(),
        )
        if opts.config_file:
            self.source: ConfigMapController | FileConfigSource = FileConfigSource(self.store, self.metrics, opts.config_file)
        else:
            recorder = EventRecorder(Rest(self.api, self.metrics.observe_request), instance=self.identity)
            self.source = ConfigMapController(
                self.api, self.store, self.metrics, recorder, opts.namespace, opts.configmap, can_record=is_leader,
                watch_timeout=opts.watch_timeout, request_timeout=opts.request_timeout,
            )
        self._servers: list[ThreadingHTTPServer] = []

    # ------------------------------------------------------------------ probes
    def checks(self, which: str) -> dict[str, str | None]:
        """name -> None when passing, else why not. healthz: threads alive, watches not stuck. readyz: synced."""
        out: dict[str, str | None] = {}
        informers = [self.slices.nodes, self.slices.slices]
        if isinstance(self.source, ConfigMapController):
            informers.append(self.source.informer)
        if which == "healthz":
            for inf in informers:
                if inf.started:
                    out[f"informer-{inf.name}"] = (
                        "thread died" if not inf.alive() else "watch stuck past its timeouts" if inf.stuck() else None
                    )
            if isinstance(self.source, FileConfigSource):
                out["config-file"] = None if self.source.alive() else "reload thread died"
            if self.slices.workers_started:
                out["reconcilers"] = None if self.slices.workers_alive() else "worker died"
            if self.elector is not None and self.elector.started:
                out["leader-election"] = None if self.elector.alive() or self.stopping.is_set() else "elector stopped"
        else:
            out["config"] = None if self.source.synced() else "configuration not loaded yet"
            for inf in informers:
                out[f"informer-{inf.name}"] = (
                    "not synced" if not inf.synced.is_set() else None if inf.connected else "disconnected from apiserver"
                )
        return out

    def _serve(self, port: int, routes: dict[str, Callable[[], tuple[int, str, bytes]]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                route = routes.get(self.path.split("?")[0])
                code, ctype, body = route() if route else (404, "text/plain", b"not found\n")
                if route and "verbose" in self.path and ctype == "text/plain":
                    code, ctype, body = route_verbose(self.path.split("?")[0], code)
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # quiet
                pass

        def route_verbose(path: str, code: int) -> tuple[int, str, bytes]:
            lines = [f"[{'+' if why is None else '-'}]{name} {'ok' if why is None else 'failed: ' + why}"
                     for name, why in self.checks(path.strip("/")).items()]
            lines.append(f"{path.strip('/')} check {'passed' if code == 200 else 'failed'}")
            return code, "text/plain", ("\n".join(lines) + "\n").encode()

        server = ThreadingHTTPServer((self.opts.bind_address, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name=f"http-{port}", daemon=True).start()
        self._servers.append(server)

    def _probe(self, which: str) -> tuple[int, str, bytes]:
        failing = {k: v for k, v in self.checks(which).items() if v}
        if failing:
            return 500, "text/plain", ("; ".join(f"{k}: {v}" for k, v in failing.items()) + "\n").encode()
        return 200, "text/plain", b"ok\n"

    def _metrics(self) -> tuple[int, str, bytes]:
        self.slices.queue.update_processing_metrics()
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)

    # ------------------------------------------------------------------ leadership
    def _on_started_leading(self) -> None:
        self.metrics.leader.labels(name=LEASE_NAME).set(1)
        self._started_leading.set()

    def _on_lost_lease(self) -> None:
        self.metrics.leader.labels(name=LEASE_NAME).set(0)
        self.exit_code = 1
        self.stopping.set()

    # ------------------------------------------------------------------ run
    def run(self, install_signals: bool = True) -> int:
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stopping.set())
        self.metrics.config_valid.set(1)
        health = {"/healthz": lambda: self._probe("healthz"), "/readyz": lambda: self._probe("readyz"),
                  "/livez": lambda: self._probe("healthz")}
        if self.opts.health_port == self.opts.metrics_port and self.opts.health_port:
            self._serve(self.opts.health_port, {**health, "/metrics": self._metrics})
        else:
            if self.opts.health_port:
                self._serve(self.opts.health_port, health)
            if self.opts.metrics_port:
                self._serve(self.opts.metrics_port, {"/metrics": self._metrics})
        log.info("Starting manager", identity=self.identity, leaderElection=bool(self.elector),
                 config=self.opts.config_file or f"configmap {self.opts.namespace}/{self.opts.configmap}")
        self.source.start()
        self.slices.start_informers()
        t0 = time.monotonic()
        while not self.stopping.is_set() and not (self.source.synced() and self.slices.synced()):
            self.stopping.wait(0.05)
        if not self.stopping.is_set():
            log.info("Caches synced", seconds=round(time.monotonic() - t0, 3), nodes=len(self.slices.nodes),
                     slices=len(self.slices.slices))
            if self.elector is not None:
                self.metrics.leader.labels(name=LEASE_NAME).set(0)
                self.elector.start()
                while not self.stopping.is_set() and not self._started_leading.is_set():
                    self.stopping.wait(0.1)
            if not self.stopping.is_set():
                self.slices.start_workers()
                log.info("Started workers", controller="resourceslice", workers=self.opts.workers)
        self.stopping.wait()
        return self.shutdown()

    def shutdown(self) -> int:
        t0 = time.monotonic()
        log.info("Stopping manager", reason="lost lease" if self.exit_code else "signal")
        self.slices.stop()
        self.source.stop()
        if self.elector is not None:
            self.elector.stop()
            self.metrics.leader.labels(name=LEASE_NAME).set(0)
        for server in self._servers:
            server.shutdown()
            server.server_close()
        log.info("Stopped manager", seconds=round(time.monotonic() - t0, 3))
        return self.exit_code

