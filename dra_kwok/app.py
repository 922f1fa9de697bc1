"""Wiring: the runtime manager, the config source, the ResourceSlice controller and their health checks.

Why its own module: the runtime (:mod:`dra_kwok.runtime`) knows nothing of DRA and the controllers know nothing of
threads and probes; this is the one place that knows both, as a controller-runtime ``main.go`` does.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from dataclasses import dataclass

from kubernetes import client

from dra_kwok.controllers.binding import BindingController
from dra_kwok.controllers.instance import instance_name
from dra_kwok.controllers.metrics import DriverMetrics
from dra_kwok.controllers.resourceslice import ResourceSliceController
from dra_kwok.controllers.source import ConfigMapController, FileConfigSource
from dra_kwok.controllers.store import Store
from dra_kwok.runtime.events import EventRecorder
from dra_kwok.runtime.informer import Informer
from dra_kwok.runtime.log import get_logger
from dra_kwok.runtime.manager import Check, LeaderElection, Manager
from dra_kwok.runtime.rest import Rest, new_api_client
from dra_kwok.settings import LEASE_NAME, Settings
from dra_kwok.slices.features import MINORS, Version

__all__ = ["App"]

log = get_logger("app")


@dataclass
class _Informers:
    """The ResourceSlice controller's informers as one plain runnable (every replica keeps warm caches)."""

    slices: ResourceSliceController

    def start(self) -> None:
        self.slices.start_informers()

    def stop(self) -> None:
        self.slices.stop_informers()


class App:
    """A built driver: ``run()`` it, or read its parts (tests do)."""

    def __init__(self, settings: Settings, api: client.ApiClient | None = None) -> None:
        self.settings = s = settings
        self.instance = instance_name(namespace=s.namespace, configmap=s.configmap, config_file=s.config_file,
                                      explicit=s.instance)  # first: a bad --instance is refused before any I/O
        # a pooled connection per worker, per watch (up to 5) and for leader election and Events
        self.api = api or new_api_client(s.kubeconfig, connections=s.workers + 8)
        self.metrics = DriverMetrics()
        self.store = Store()
        self.identity = s.identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4()}"
        election = LeaderElection(
            s.leader_election_namespace or s.namespace, LEASE_NAME, self.identity, s.lease_duration,
            s.renew_deadline, s.retry_period) if s.leader_elect else None
        self.version = cluster_version(self.api, s.kubernetes_version, s.feature_gates)
        self.manager = m = Manager(self.api, self.metrics, bind_address=s.bind_address, health_port=s.health_port,
                                   metrics_port=s.metrics_port, leader_election=election)
        self.slices = ResourceSliceController(
            self.api, self.store, self.metrics, kwok_annotation=s.kwok_annotation, resync_period=s.resync_period,
            workers=s.workers, watch_timeout=int(s.watch_timeout), request_timeout=s.request_timeout,
            can_write=m.can_write, instance=self.instance, version=self.version,
            on_conflict=lambda message: self.source.warn("PoolConflict", message),
            on_dropped=lambda message: self.source.warn("DroppedFields", message),
        )
        informers: list[Informer] = [self.slices.nodes, self.slices.slices, self.slices.others]
        if s.config_file:
            self.source: ConfigMapController | FileConfigSource = FileConfigSource(self.store, self.metrics,
                                                                                   s.config_file)
            m.add_healthz_check("config-file", lambda: None if self.source.alive() else "reload thread died")  # type: ignore[union-attr]
        else:
            recorder = EventRecorder(Rest(self.api, self.metrics.observe_request), instance=self.identity)
            self.source = ConfigMapController(
                self.api, self.store, self.metrics, recorder, s.namespace, s.configmap, can_record=m.is_leader,
                watch_timeout=int(s.watch_timeout), request_timeout=s.request_timeout,
            )
            informers.append(self.source.informer)
        self.source.version = self.version
        m.add(self.source)
        m.add(_Informers(self.slices))
        m.add(self.slices.controller, needs_leader=True)
        # Always built (a store listener, no request): it starts watching claims only once a config uses
        # bindingSimulation, so a driver that never does needs no RBAC on ResourceClaims.
        self.binding = BindingController(
            self.api, self.store, self.metrics, self._owns_pool, resync_period=s.resync_period,
            watch_timeout=int(s.watch_timeout), request_timeout=s.request_timeout, can_write=m.can_write)
        m.add(self.binding, needs_leader=True)
        m.add_healthz_check("informer-resourceclaims", _informer_alive(self.binding.claims))
        m.add_cache(self.source.synced)
        m.add_cache(self.slices.synced)
        m.add_readyz_check("config", self.source.problem)
        m.add_readyz_check("dropped-fields", self.slices.dropped_note)  # passes: reports what the apiserver drops
        for inf in informers:
            m.add_healthz_check(f"informer-{inf.name}", _informer_alive(inf))
            m.add_readyz_check(f"informer-{inf.name}", _informer_ready(inf))
        m.add_healthz_check("reconcilers", lambda: None if not self.slices.controller.started
                            or self.slices.controller.alive() else "worker died")
        m.on_scrape(self.slices.queue.update_processing_metrics)

    def _owns_pool(self, driver: str, pool: str) -> bool:
        """Does this instance publish the pool (driver, pool)? Its own slice cache is the truth: a pool refused to
        it (another instance holds it) is not there."""
        return any(s["spec"].get("driver") == driver and (s["spec"].get("pool") or {}).get("name") == pool
                   for s in self.slices.slices.list())

    def run(self, install_signals: bool = True) -> int:
        s = self.settings
        log.info("Starting manager", identity=self.identity, instance=self.instance, kubernetes=str(self.version), leaderElection=s.leader_elect,
                 config=s.config_file or f"configmap {s.namespace}/{s.configmap}")
        return self.manager.run(install_signals)


def _informer_alive(inf: Informer) -> Check:
    def check() -> str | None:
        if not inf.started:
            return None
        return "thread died" if not inf.alive() else "watch stuck past its timeouts" if inf.stuck() else None
    return check


def _informer_ready(inf: Informer) -> Check:
    def check() -> str | None:
        return "not synced" if not inf.synced.is_set() else None if inf.connected else "disconnected from apiserver"
    return check



def cluster_version(api: client.ApiClient, given: str | None, feature_gates: str, wait: float = 30.0) -> Version:
    """The kube-apiserver's version, as dra-kwok validates and renders for it: ``given`` (--kubernetes-version), else
    its ``/version`` (asked for up to ``wait`` seconds, for an apiserver that is still starting). A version newer than
    dra-kwok knows is treated as the newest it knows; one without ``resource.k8s.io/v1`` is refused."""
    try:  # the flags first: a typo is refused at once, not after waiting for /version
        Version.parse(f"1.{MINORS[-1]}", feature_gates)
        minor = _minor(given) if given is not None else None
    except ValueError as err:
        raise RuntimeError(f"--kubernetes-version/--feature-gates: {err}") from None
    deadline = time.monotonic() + wait
    while minor is None:
        try:
            given = client.VersionApi(api).get_code().git_version
            minor = _minor(given)
        except Exception as err:  # connection refused, timeout, 5xx
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot read the apiserver's /version ({err}); set --kubernetes-version") from None
            time.sleep(1.0)
    if minor < MINORS[0]:
        raise RuntimeError(f"Kubernetes {given} has no resource.k8s.io/v1: dra-kwok needs 1.{MINORS[0]} or later")
    if minor > MINORS[-1]:
        log.info("Kubernetes newer than dra-kwok knows: publishing with the newest rules it knows", version=given,
                 rules=f"1.{MINORS[-1]}")
    return Version.parse(f"1.{min(minor, MINORS[-1])}", feature_gates)


def _minor(text: str) -> int:
    """The minor version of ``1.37``, ``v1.37.2``, ``v1.38.0-rc.1+abc``; ValueError for anything else."""
    match = re.fullmatch(r"v?1\.(\d+)(\.\d+)?([-+].*)?", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes version like 1.37")
    return int(match[1])
