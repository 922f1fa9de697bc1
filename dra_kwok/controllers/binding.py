"""The binding controller: dra-kwok plays the driver of devices with ``bindingConditions``.

Why: a device that publishes ``bindingConditions`` (Kubernetes 1.36+: DRADeviceBindingConditions and
DRAResourceClaimDeviceStatus on by default) keeps the pod that got it waiting in the scheduler's PreBind until its
driver reports the conditions True in the allocated ResourceClaim's ``status.devices`` (the scheduler polls every
5 s, up to its bindingTimeout, 600 s by default), or a ``bindingFailureConditions`` entry True, after which the
scheduler unreserves, deallocates the claim in the next cycle's PostFilter and tries again. dra-kwok's devices
have no driver behind them, so a mapping's ``bindingSimulation: {delay, outcome}`` makes dra-kwok that driver:
``delay`` after the claim's ``allocationTimestamp`` it sets the device's binding conditions (``outcome: ready``) or
its first failure condition (``outcome: fail``) True.

Shape (controller-runtime's, as the ResourceSlice controller): an informer on ResourceClaims keeps, of each claim,
its metadata and, only when an allocation result carries bindingConditions, its status (every other claim costs a
few hundred bytes); events enqueue only such claims; a reconcile decides from the cache (pure:
:func:`plan_claim`) and either writes once through the ``resourceclaims/status`` subresource (a PUT carrying the
cached resourceVersion: a claim changed meanwhile is a 409, retried from the newer cache) or requeues the key for
when the delay ends. A claim already in the desired state costs no write, so an idle resync writes nothing.

Safety: only results whose (driver, pool) is a pool this instance publishes (its own slice cache says so) and whose
device a mapping with ``bindingSimulation`` renders are touched; other drivers' entries of the same claim are sent
back as they were. Nothing is written while no config is known or this replica is not the leader. The claim
informer starts only when a config first uses ``bindingSimulation``, so a driver that never uses it needs no RBAC
on claims and makes no request for them (deploy/components/binding-conditions grants it).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from kubernetes import client
from prometheus_client import Counter

from dra_kwok.config.types import Config
from dra_kwok.config.validation import binding_delay_seconds
from dra_kwok.controllers.metrics import DriverMetrics
from dra_kwok.controllers.store import Store
from dra_kwok.runtime.controller import Controller
from dra_kwok.runtime.informer import EventHandler, Informer, meta_key
from dra_kwok.runtime.log import get_logger
from dra_kwok.runtime.rest import Rest

__all__ = ["BindingController", "Plan", "Rule", "plan_claim", "rules_of"]

NAME = "binding"
CLAIMS_API = "/apis/resource.k8s.io/v1"
REASON_READY = "DraKwokSimulatedReady"
REASON_FAILED = "DraKwokSimulatedFailure"
_WAITING = "binding"  # the informer index value of claims with an allocation result carrying bindingConditions
log = get_logger("controller.binding")


@dataclass(frozen=True)
class Rule:
    """One mapping's ``bindingSimulation``: which devices (driver, pool as written, device names) and what to do."""

    mapping: str
    driver: str
    pool: str  # the pool template name; node-local pools are published as <node>/<pool>
    cluster_wide: bool
    devices: frozenset[str]
    delay: float
    outcome: str  # ready | fail

    def matches(self, driver: str, pool: str, device: str) -> bool:
        if driver != self.driver or device not in self.devices:
            return False
        return pool == self.pool if self.cluster_wide else pool.endswith("/" + self.pool)


def rules_of(config: Config) -> list[Rule]:
    """The binding rules of a (validated) config: one per mapping with ``bindingSimulation``."""
    out = []
    for m in config.mappings:
        sim = m.binding_simulation
        if sim is None:
            continue
        names: set[str] = set()
        for d in m.resource_slice.devices:
            if d.binding_conditions:
                names.update([d.name] if d.count is None else (f"{d.name}-{i}" for i in range(d.count)))
        out.append(Rule(m.name, config.slice_driver(m), m.resource_slice.pool.name, m.resource_slice.cluster_wide,
                        frozenset(names), binding_delay_seconds(sim.delay), sim.outcome or "ready"))
    return out


@dataclass(frozen=True)
class Plan:
    """What one reconcile of a claim does: write ``status`` (None: nothing to write now), and/or look again in
    ``wait`` seconds (None: never, nothing of ours is pending)."""

    status: dict | None = None
    wait: float | None = None


def _timestamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _condition(kind: str, reason: str, message: str, now: float) -> dict:
    stamp = datetime.fromtimestamp(int(now), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": stamp}


def plan_claim(status: dict, rules: list[Rule], owns_pool: Callable[[str, str], bool], now: float,
               allocated_at: float | None = None) -> Plan:
    """Pure: the status to write for a claim whose ``status`` is given, at wall-clock time ``now``.

    Each allocation result with bindingConditions whose device a rule matches, in a pool this instance publishes,
    gets, once ``delay`` has passed since ``allocationTimestamp`` (or ``allocated_at``, when first seen, for an
    allocation without one), a ``status.devices`` entry (driver, pool, device, shareID) with the rule's conditions
    True; entries and conditions of anything else are kept as they are."""
    allocation = status.get("allocation") or {}
    results = (allocation.get("devices") or {}).get("results") or []
    start = _timestamp(allocation.get("allocationTimestamp"))
    start = start if start is not None else allocated_at if allocated_at is not None else now
    entries = [dict(e) for e in status.get("devices") or []]
    changed, wait = False, None
    for result in results:
        conditions = result.get("bindingConditions") or []
        if not conditions:
            continue
        driver, pool, device = result.get("driver", ""), result.get("pool", ""), result.get("device", "")
        rule = next((r for r in rules if r.matches(driver, pool, device)), None)
        if rule is None or not owns_pool(driver, pool):
            continue
        if rule.outcome == "fail":
            failures = result.get("bindingFailureConditions") or []
            if not failures:
                continue  # validation requires them; a result without any has nothing to report
            targets, reason = [failures[0]], REASON_FAILED
        else:
            targets, reason = list(conditions), REASON_READY
        share = result.get("shareID")
        entry = next((e for e in entries if (e.get("driver"), e.get("pool"), e.get("device"), e.get("shareID"))
                      == (driver, pool, device, share)), None)
        have = {c.get("type"): c for c in (entry or {}).get("conditions") or []}
        if all((have.get(t) or {}).get("status") == "True" for t in targets):
            continue
        remaining = start + rule.delay - now
        if remaining > 0:
            wait = remaining if wait is None else min(wait, remaining)
            continue
        if entry is None:
            entry = {"driver": driver, "pool": pool, "device": device, **({"shareID": share} if share else {})}
            entries.append(entry)
        message = f"set by dra-kwok: bindingSimulation of mapping {rule.mapping} (outcome {rule.outcome})"
        for t in targets:
            have[t] = _condition(t, reason, message, now)
        entry["conditions"] = list(have.values())
        changed = True
    return Plan({**status, "devices": entries} if changed else None, wait)


def claim_transform(raw: dict) -> dict:
    """Of a claim: its identity, and its status only when an allocation result carries bindingConditions (the
    only claims this controller acts on; every other one is a few names in memory)."""
    meta = raw.get("metadata") or {}
    kept: dict[str, Any] = {"metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion")
                                         if k in meta}}
    status = raw.get("status") or {}
    results = ((status.get("allocation") or {}).get("devices") or {}).get("results") or []
    if any(r.get("bindingConditions") for r in results):
        kept["status"] = status
    return kept


def _waiting(claim: dict) -> str | None:
    return _WAITING if "status" in claim else None


class BindingController:
    def __init__(
        self,
        api: client.ApiClient,
        store: Store,
        metrics: DriverMetrics,
        owns_pool: Callable[[str, str], bool],
        *,
        resync_period: float = 30.0,
        workers: int = 1,
        watch_timeout: int = 60,
        request_timeout: float = 15.0,
        can_write: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.owns_pool = owns_pool
        self.can_write = can_write
        self.clock = clock
        self.rest = Rest(api, metrics.observe_request, timeout=(5.0, request_timeout))
        self.controller: Controller[str] = Controller(NAME, self.reconcile, metrics, keys=self._keys, workers=workers,
                                                      resync_period=resync_period)
        self.queue = self.controller.queue
        self.claims: Informer[dict] = Informer(
            "resourceclaims", client.ResourceV1Api(api).list_resource_claim_for_all_namespaces, claim_transform,
            handler=_ClaimEvents(self), watch_timeout=watch_timeout, request_timeout=request_timeout,
            on_request=lambda verb: metrics.observe_request(verb.upper(), "resourceclaims", 200), index=_waiting,
            version=lambda c: c["metadata"].get("resourceVersion"),
        )
        self.writes = Counter("dra_kwok_binding_condition_writes_total", "ResourceClaim status writes of simulated "
                              "binding conditions, by outcome and result", ["outcome", "result"],
                              registry=metrics.registry)
        self._lock = threading.Lock()
        self._rules: tuple[object, list[Rule]] = (None, [])
        self._first_seen: dict[str, float] = {}  # claim uid -> when an allocation without a timestamp was first seen
        store.on_change(lambda old, new: self.maybe_start_informer())

    # ------------------------------------------------------------------ lifecycle
    def wanted(self) -> bool:
        """Does the config in force use bindingSimulation?"""
        return bool(self.rules())

    def maybe_start_informer(self) -> None:
        """Start watching claims the first time a config uses bindingSimulation (then keep watching: a config that
        drops it and comes back costs no re-list)."""
        with self._lock:
            if self.claims.started or not self.wanted():
                return
            log.info("A mapping uses bindingSimulation: watching ResourceClaims")
            self.claims.start()
        self.controller.enqueue_all()

    def start(self) -> None:
        """The leader's part: the workers."""
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
        if self.claims.started:
            self.claims.stop(0.5)

    def rules(self) -> list[Rule]:
        cfg = self.store.get()
        cached_for, rules = self._rules
        if cached_for is cfg:
            return rules
        rules = rules_of(cfg) if isinstance(cfg, Config) else []
        self._rules = (cfg, rules)
        return rules

    def _keys(self) -> list[str]:
        return [meta_key(c) for c in self.claims.by_index(_WAITING)]

    # ------------------------------------------------------------------ reconcile
    def reconcile(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None or "status" not in claim:
            return
        rules = self.rules()
        if not rules:
            return
        meta = claim["metadata"]
        status = claim["status"]
        allocated_at = None
        if not (status.get("allocation") or {}).get("allocationTimestamp"):
            allocated_at = self._first_seen.setdefault(meta.get("uid", key), self.clock())
        plan = plan_claim(status, rules, self.owns_pool, self.clock(), allocated_at)
        if plan.status is not None:
            if not self.can_write() or self.controller.stopping:
                return
            self._write(meta, plan.status, rules)
        if plan.wait is not None:
            self.queue.add_after(key, plan.wait)

    def _write(self, meta: dict, status: dict, rules: list[Rule]) -> None:
        outcome = "fail" if any(c.get("reason") == REASON_FAILED for e in status.get("devices") or []
                                for c in e.get("conditions") or []) else "ready"
        body = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta},
                "status": status}
        path = f"{CLAIMS_API}/namespaces/{meta['namespace']}/resourceclaims/{meta['name']}/status"
        try:
            obj = self.rest.put(path, body)
        except Exception:
            self.writes.labels(outcome=outcome, result="error").inc()
            raise
        self.writes.labels(outcome=outcome, result="success").inc()
        self.claims.mutate(obj)
        log.v(2).info("Set simulated binding conditions", claim=f"{meta['namespace']}/{meta['name']}",
                      outcome=outcome, resourceVersion=(obj.get("metadata") or {}).get("resourceVersion"))

    def forget(self, claim: dict) -> None:
        self._first_seen.pop(claim["metadata"].get("uid", ""), None)


class _ClaimEvents(EventHandler[dict]):
    """Only claims with an allocation that carries bindingConditions are worth a reconcile."""

    def __init__(self, ctrl: BindingController) -> None:
        self.ctrl = ctrl

    def on_add(self, obj: dict) -> None:
        if "status" in obj:
            self.ctrl.queue.add(meta_key(obj))

    def on_update(self, old: dict, new: dict) -> None:
        if "status" in new:
            self.ctrl.queue.add(meta_key(new))
        else:
            self.ctrl.forget(new)

    def on_delete(self, obj: dict) -> None:
        self.ctrl.forget(obj)
