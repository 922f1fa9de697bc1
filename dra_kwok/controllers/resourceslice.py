"""The ResourceSlice controller: keeps every KWOK node's (and the cluster's) slices equal to what the config renders.

Why this shape (controller-runtime's): informers on Nodes and on our own ResourceSlices keep caches, events enqueue
only the keys they affect, and reconcile threads take keys from a rate-limited work queue, render the desired pools
(pure), diff them against the cached slices (pure) and apply only the difference. An idle resync re-enqueues keys
from the caches, so it costs no LIST and, when nothing differs, no write.

Instances: every slice carries the instance label (:mod:`dra_kwok.controllers.instance`); the slice informer
selects ours (managed-by AND our instance), a second, slim informer sees every other dra-kwok slice (managed-by,
NOT our instance): those of other instances, kept as (name, driver, pool, node, instance, creationTimestamp) only,
and those of an older release (no instance label), kept whole so that the instance whose config renders their pool
adopts them by an update (label added, same object). A pool that another instance published first is refused:
not written, reported once per holder (a log line, a Warning Event on the ConfigMap, the gauge
``dra_kwok_pool_conflicts``), and the rest is published as usual. "First" is decided the same way by both sides,
from the objects themselves: the earliest creationTimestamp among each side's slices of the pool, ties going to
the smaller instance name; so one side keeps the pool, the other withdraws, and nothing flaps.

Requests: :class:`PoolsRequest` — ``PoolsRequest(node=<name>)`` for a node's node-local pools, ``PoolsRequest(None)``
for the cluster-wide pools. The work queue, workers, backoff and resync are the generic
:class:`~dra_kwok.runtime.controller.Controller`'s; this module is the reconciler and its event handlers.
Safety: the slice informer only ever sees slices with our managed-by and instance labels, and nothing else is ever
written, but for the adoption of an older release's slices of a pool we render;
nothing at all is written while the configuration is UNKNOWN (no valid config seen yet) or this replica is not
the leader; a 409 or a failed write is retried with per-key backoff and never blocks other keys.

Dropped fields: an apiserver whose feature gate for a field is off stores the slice without it, silently
(:mod:`dra_kwok.slices.dropped`). Every create/update response is compared with what was sent (a plain equality
first: the usual answer is the same spec, and then nothing more is done); a field found dropped is remembered for
this apiserver (path -> gate, a handful at most, kept until a write shows the field kept again), and from then on
the desired slices are compared as the apiserver keeps them (without those fields, unless the stored slice has them),
so that the stored slice counts as converged and an idle resync writes nothing. Writes still send the full desired
slice: a changed slice or a new node is published with every field, and should the gate be turned on, it is kept.
Reported: ``dra_kwok_dropped_fields_total{field}`` (+1 per write that lost the field), a Warning Event
``DroppedFields`` on the ConfigMap once per config revision and field, and a passing ``dropped-fields`` line in
``/readyz?verbose`` (published and converged, so no reason to take the pod out of service).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable

from kubernetes import client

from dra_kwok.config.types import Config
from dra_kwok.config.validation import MAX_DEVICES_PER_NODE
from dra_kwok.controllers.metrics import DriverMetrics
from dra_kwok.controllers.store import UNKNOWN, Store
from dra_kwok.runtime.budget import Budget
from dra_kwok.runtime.controller import Controller, TerminalError
from dra_kwok.runtime.errors import AlreadyExists, NotFound
from dra_kwok.runtime.informer import EventHandler, Informer
from dra_kwok.runtime.log import get_logger
from dra_kwok.runtime.manager import Note
from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.dropped import dropped_fields, strip_spec
from dra_kwok.slices.features import DEFAULT, Version
from dra_kwok.slices.nodes import NodeInfo, node_matches
from dra_kwok.slices.plan import Action, devices_digest, plan, pool_key, same_spec
from dra_kwok.slices.profiles.mapping import render_profile
from dra_kwok.slices.render import (
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SLICES_PATH,
    Pool,
    render_cluster,
    render_node,
)

NAME = "resourceslice"
DELETED = object()  # marks a slice whose last write of ours was its deletion
#: Devices that reconciles may hold rendered at once, whatever --workers is: four of the largest node a config may
#: give (README, "Memory budget", measured the 256Mi limit for four). A reconcile weighs the devices its config can
#: give one node (or the cluster-wide pools), so with small nodes every worker runs, and with the largest four.
RENDER_BUDGET = 4 * MAX_DEVICES_PER_NODE
MAX_EXPECTED = 65_536  # our writes not yet seen back; bounded, since node names churn forever (Karpenter)
log = get_logger("controller.resourceslice")


@dataclass(frozen=True, order=True)
class PoolsRequest:
    """What one reconcile is about: the node-local pools of ``node``, or (``node=None``) the cluster-wide pools."""

    node: str | None

    def __str__(self) -> str:
        return f"node/{self.node}" if self.node is not None else "cluster"


CLUSTER = PoolsRequest(None)


@dataclass(frozen=True)
class NodeRecord:
    """What the controller keeps of a Node: enough to render, and whether it is a KWOK node."""

    info: NodeInfo
    kwok: bool


def node_transform(kwok_annotation: str) -> Callable[[dict], NodeRecord]:
    def transform(raw: dict) -> NodeRecord:
        meta = raw.get("metadata") or {}
        labels = meta.get("labels") or {}
        return NodeRecord(
            NodeInfo(name=meta.get("name", ""), uid=meta.get("uid", ""), labels=labels),
            kwok=kwok_annotation in (meta.get("annotations") or {}),
        )

    return transform


def slice_transform(raw: dict, digest: str | None = None) -> dict:
    """Keep only what the diff reads (client-go's SetTransform): no managedFields, and the devices (the bulk of a
    slice) as a digest; everything else of the spec stays, for the generation logic and the immutable fields.
    `digest`: the devices' digest, when the caller knows it already."""
    meta = raw.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations",
                                 "ownerReferences") if k in meta}
    spec = raw.get("spec") or {}
    return {"metadata": kept, "spec": {k: v for k, v in spec.items() if k != "devices"},
            "devicesDigest": digest or devices_digest(spec.get("devices"))}


def other_transform(raw: dict) -> dict:
    """A dra-kwok slice that is not ours. Another instance's: only what deciding who holds its pool needs (name,
    driver, pool, node, instance, creationTimestamp; ~10 times less than slice_transform). An older release's
    (no instance label): slice_transform, since the instance that renders its pool adopts it by an update."""
    meta = raw.get("metadata") or {}
    holder = (meta.get("labels") or {}).get(INSTANCE_LABEL)
    if holder is None:
        return slice_transform(raw)
    spec = raw.get("spec") or {}
    slim_spec = {"driver": spec.get("driver"), "pool": {"name": (spec.get("pool") or {}).get("name")}}
    if spec.get("nodeName") is not None:
        slim_spec["nodeName"] = spec["nodeName"]
    return {"metadata": {"name": meta.get("name"), "creationTimestamp": meta.get("creationTimestamp"),
                         "labels": {INSTANCE_LABEL: holder}}, "spec": slim_spec}


def holder_of(obj: dict) -> str | None:
    """The instance label of a slice; None for a slice of an older release."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(INSTANCE_LABEL)


def _claim(obj: dict, instance: str) -> tuple[str, str]:
    """What decides who was first on a pool: (creationTimestamp, instance); RFC 3339 UTC strings sort in time."""
    return (obj.get("metadata") or {}).get("creationTimestamp") or "", instance


def arbitrate(instance: str, desired: list[Pool], own: list[dict], others: list[dict]
              ) -> tuple[list[Pool], list[dict], dict[tuple[str, str], str]]:
    """(pools to publish, slices to diff them against, refused pool -> holder) for one request (pure).

    A desired pool that another instance holds slices of is refused, unless this instance was first on it (see the
    module docstring); then, while the other still holds any of the pool's object names, the pool is left as it is
    (the other withdraws; its delete events wake us). Older-release slices of a pool we publish are adopted."""
    if not others:
        return desired, own, {}
    own_names = {s["metadata"]["name"] for s in own}
    foreign: dict[tuple[str, str], list[dict]] = {}
    legacy: dict[tuple[str, str], list[dict]] = {}
    for obj in others:
        if obj["metadata"]["name"] in own_names:
            continue  # adopted a moment ago, its watch event not seen yet: our copy is the newer one
        (foreign if holder_of(obj) is not None else legacy).setdefault(pool_key(obj), []).append(obj)
    mine: dict[tuple[str, str], list[dict]] = {}
    for obj in own:
        mine.setdefault(pool_key(obj), []).append(obj)
    kept: list[Pool] = []
    actual, refused = list(own), {}
    for pool in desired:
        key = (pool.driver, pool.name)
        theirs = foreign.get(key)
        if theirs:
            first = min(_claim(o, holder_of(o) or "") for o in theirs)
            ours = min((_claim(o, instance) for o in mine.get(key, ())), default=None)
            if ours is None or first < ours:
                refused[key] = first[1]
                continue  # our slices of it, if any, are deleted: desired has no such pool
            names = {s["metadata"]["name"] for s in pool.slices}
            if any(o["metadata"]["name"] in names for o in theirs):
                actual = [a for a in actual if pool_key(a) != key]
                continue
        kept.append(pool)
        actual.extend(legacy.get(key, ()))
    return kept, actual, refused


def _slice_node(obj: dict) -> str | None:
    return (obj.get("spec") or {}).get("nodeName")


def _is_cluster_wide(config: Config) -> bool:
    return any(m.resource_slice.cluster_wide for m in config.mappings)


class ResourceSliceController:
    def __init__(
        self,
        api: client.ApiClient,
        store: Store,
        metrics: DriverMetrics,
        *,
        kwok_annotation: str = "kwok.x-k8s.io/node",
        resync_period: float = 30.0,
        workers: int = 1,
        watch_timeout: int = 60,
        request_timeout: float = 15.0,
        can_write: Callable[[], bool] = lambda: True,
        instance: str = "default",
        on_conflict: Callable[[str], None] = lambda message: None,
        version: Version = DEFAULT,
        on_dropped: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.store = store
        self.instance = instance
        self.version = version  # the cluster's kube-apiserver: what it keeps decides the slice layout
        self.on_conflict = on_conflict  # told once per (driver, holder) that starts refusing pools (a Warning Event)
        self.on_dropped = on_dropped  # told once per config revision and dropped field (a Warning Event)
        self.rest = Rest(api, metrics.observe_request, timeout=(5.0, request_timeout))
        self.can_write = can_write
        self.controller: Controller[PoolsRequest] = Controller(
            NAME, self.reconcile, metrics, keys=self._all_keys, workers=workers, resync_period=resync_period)
        self.queue = self.controller.queue
        self._settled: dict[PoolsRequest, tuple] = {}  # request -> the inputs of its last reconcile that wrote nothing
        # slice name -> what our last write of it left (see _expect); an entry goes when its watch event is seen
        self._expected: OrderedDict[str, object] = OrderedDict()
        self._sent: dict[str, tuple[list, str]] = {}  # slice name -> (devices, digest) of a write not yet seen back
        self._conflict_lock = threading.Lock()
        self._refused: dict[PoolsRequest, dict[tuple[str, str], str]] = {}  # request -> refused pool -> holder
        self._conflicts: dict[tuple[str, str], int] = {}  # (driver, holder) -> refused pools, reported once
        self._pool_conflicts = metrics.pool_conflicts
        self._stale: OrderedDict[str, None] = OrderedDict()  # names whose create met an object our caches lacked
        self._replica_race_reported = False
        # what this apiserver was seen to drop: field path -> gate; replaced whole (readers take no lock)
        self._drops: dict[str, str | None] = {}
        self._drops_lock = threading.Lock()
        self._drops_reported: tuple[int, frozenset[str]] = (-1, frozenset())  # (config revision, paths reported)
        self._dropped_total = metrics.dropped_fields
        self.budget = Budget(RENDER_BUDGET)
        self._weights: tuple[object, int, int] = (None, 1, 1)  # (config, node weight, cluster weight)
        core, resource = client.CoreV1Api(api), client.ResourceV1Api(api)
        observe = lambda resource_name: (lambda verb: metrics.observe_request(verb.upper(), resource_name, 200))  # noqa: E731
        self.nodes: Informer[NodeRecord] = Informer(
            "nodes", core.list_node, node_transform(kwok_annotation),
            handler=_NodeEvents(self), watch_timeout=watch_timeout, request_timeout=request_timeout,
            on_request=observe("nodes"),
        )
        self.slices: Informer[dict] = Informer(
            "resourceslices", resource.list_resource_slice, self._transform,
            handler=_SliceEvents(self),
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{INSTANCE_LABEL}={instance}",
            watch_timeout=watch_timeout, request_timeout=request_timeout, on_request=observe("resourceslices"),
            index=_slice_node, version=lambda s: s["metadata"].get("resourceVersion"),
        )
        # every other dra-kwok slice (other instances', an older release's): who holds which pool
        self.others: Informer[dict] = Informer(
            "other-resourceslices", resource.list_resource_slice, other_transform, handler=_OtherEvents(self),
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{INSTANCE_LABEL}!={instance}",
            watch_timeout=watch_timeout, request_timeout=request_timeout, on_request=observe("resourceslices"),
            index=_slice_node, version=lambda s: s["metadata"].get("resourceVersion"),
        )
        store.on_change(self._config_changed)
        self._writes = {(v, r): metrics.writes.labels(verb=v, result=r)
                        for v in ("create", "update", "delete") for r in ("success", "error")}
        # evaluated at scrape time, so the hot path pays nothing for them
        self._kwok_counted: tuple[float, tuple[int, int]] = (-math.inf, (0, 0))
        metrics.slices_managed.set_function(lambda: len(self.slices))
        metrics.kwok_nodes.labels(state="all").set_function(lambda: self._count_kwok()[0])
        metrics.kwok_nodes.labels(state="matched").set_function(lambda: self._count_kwok()[1])

    # ------------------------------------------------------------------ lifecycle
    def start_informers(self) -> None:
        self.nodes.start()
        self.slices.start()
        self.others.start()

    def synced(self) -> bool:
        return self.nodes.synced.is_set() and self.slices.synced.is_set() and self.others.synced.is_set()

    def start_workers(self) -> None:
        """Start reconciling (the leader only)."""
        self.controller.start()

    def stop_informers(self) -> None:
        self.nodes.stop(0.5)
        self.slices.stop(0.5)
        self.others.stop(0.5)

    def stop(self, timeout: float = 3.0) -> None:
        self.controller.stop(timeout)
        self.stop_informers()

    # ------------------------------------------------------------------ enqueueing
    def _all_keys(self) -> list[PoolsRequest]:
        names = {n.info.name for n in self.nodes.list() if n.kwok}
        names |= {v for v in self.slices.index_values() if v}
        return [PoolsRequest(n) for n in sorted(names)] + [CLUSTER]

    def _config_changed(self, old: Config | None, new: Config | None) -> None:
        """Enqueue the nodes either config can touch, plus those that hold our slices, plus the cluster key."""
        configs = [c for c in (old, new) if c is not None]
        names = {v for v in self.slices.index_values() if v}
        for rec in self.nodes.list():
            if rec.kwok and any(node_matches(m, rec.info) for c in configs for m in c.mappings):
                names.add(rec.info.name)
        for name in sorted(names):
            self.queue.add(PoolsRequest(name))
        self.queue.add(CLUSTER)

    def node_changed(self, old: NodeRecord | None, new: NodeRecord | None) -> None:
        name = (new or old).info.name  # type: ignore[union-attr]
        self.queue.add(PoolsRequest(name))
        cfg = self.store.get()
        if isinstance(cfg, Config) and _is_cluster_wide(cfg):
            self.queue.add(CLUSTER)

    def slice_changed(self, obj: dict) -> None:
        self.queue.add(PoolsRequest(_slice_node(obj)))

    # ------------------------------------------------------------------ reconcile
    def desired_and_actual(self, request: PoolsRequest) -> tuple[list, list[dict]]:
        """(the pools to publish, our slices to diff them against); see :meth:`view`."""
        desired, actual, _ = self.view(request)
        return desired, actual

    def view(self, request: PoolsRequest) -> tuple[list[Pool], list[dict], dict[tuple[str, str], str]]:
        """What `request` should publish and against which slices, and the pools refused (held by another
        instance); see :func:`arbitrate`."""
        cfg = self.store.get()
        name = request.node
        # check=False: the store only ever holds configs that passed validate(), which renders every pool of the
        # config for a worst-case node through the same validate_slice, and the renderer keeps any node valid
        # (tests/unit/config/test_properties.py proves it on generated configs and nodes). Checking every node's
        # slices again cost a third of the render, and the apiserver still refuses what would be invalid.
        if name is not None:
            rec = self.nodes.get(name)
            desired = (render_node(cfg, rec.info, check=False, instance=self.instance, version=self.version)
                       if isinstance(cfg, Config) and rec and rec.kwok else [])
        else:
            kwok = [r.info for r in self.nodes.list() if r.kwok]
            desired = render_cluster(cfg, kwok, check=False, instance=self.instance, version=self.version) if isinstance(cfg, Config) else []
        return arbitrate(self.instance, desired, self.slices.by_index(name), self.others.by_index(name))

    def _inputs(self, request: PoolsRequest, revision: int) -> tuple:
        """Everything a reconcile of `request` depends on, cheaply: the config revision, the node record(s) and the
        (name, resourceVersion) of the stored slices."""
        if request.node is not None:
            nodes: object = self.nodes.get(request.node)
        else:
            nodes = frozenset(r for r in self.nodes.list() if r.kwok)
        stored = frozenset((s["metadata"]["name"], s["metadata"].get("resourceVersion"))
                           for s in self.slices.by_index(request.node))
        others = frozenset((s["metadata"]["name"], s["metadata"].get("resourceVersion"), holder_of(s),
                            s["metadata"].get("creationTimestamp")) for s in self.others.by_index(request.node))
        return revision, nodes, stored, others

    def reconcile(self, request: PoolsRequest) -> None:
        revision = self.store.revision
        cfg = self.store.get()
        if cfg is UNKNOWN:
            return  # no valid config seen yet: touch nothing
        inputs = self._inputs(request, revision)
        if self._settled.get(request) == inputs:
            return  # found right last time and nothing it depends on changed: a resync costs no render, no diff
        with self.budget.hold(self._weight(cfg, request)):
            self._reconcile(request, inputs)

    def _weight(self, cfg: object, request: PoolsRequest) -> int:
        """The most devices `request`'s render can hold under `cfg` (computed once per config): every node-local
        mapping matching the node, or every cluster-wide pool."""
        known, node, cluster = self._weights
        if known is not cfg:
            node = cluster = 1
            if isinstance(cfg, Config):
                for mapping in cfg.mappings:
                    template = mapping.resource_slice
                    n = sum(d.count if isinstance(d.count, int) and d.count > 0 else 1 for d in template.devices)
                    n += sum(len(s.get("devices") or ())
                             for s in render_profile(cfg, mapping, "weight", self.version.minor))
                    if template.cluster_wide:
                        cluster += n
                    else:
                        node += n
            self._weights = (cfg, node, cluster)
        return node if request.node is not None else cluster

    def _reconcile(self, request: PoolsRequest, inputs: tuple) -> None:
        desired, actual, refused = self.view(request)
        self._set_refused(request, refused)
        if self._drops:
            full = {b["metadata"]["name"]: b for p in desired for b in p.slices}
            actions = [_with_spec(a, full[a.name]) for a in plan(self._as_kept(desired, actual), actual)]
        else:
            actions = plan(desired, actual)
        try:
            for action in actions:
                if not self.can_write() or self.controller.stopping:
                    return
                self._apply(action)
        except _CacheBehind as behind:
            if behind.name in self._stale:
                raise  # twice in a row: back off (our caches learnt it, so this should not happen)
            self._stale[behind.name] = None
            while len(self._stale) > 1024:
                self._stale.popitem(last=False)
            self.queue.add(request)  # decided again at once, from caches that now hold the object
            return
        except TerminalError:
            self._settled[request] = inputs  # reported once; retried when an input changes, not on every resync
            raise
        for action in actions:
            self._stale.pop(action.name, None)
        if actions:
            self._settled.pop(request, None)
            log.v(2).info("Reconciled", request=str(request), writes=len(actions))
        elif inputs[1] or inputs[2] or inputs[3]:
            self._settled[request] = inputs
        else:
            self._settled.pop(request, None)  # a node that is gone and has no slices: forget it

    def _as_kept(self, desired: list[Pool], actual: list[dict]) -> list[Pool]:
        """The desired pools as this apiserver keeps them: each slice without the fields it was seen to drop, unless
        the stored slice has them (an apiserver keeps a gated field that the stored object uses already)."""
        paths = frozenset(self._drops)
        stored = {a["metadata"]["name"]: a for a in actual}
        out = []
        for pool in desired:
            slices = []
            for body in pool.slices:
                kept = strip_spec(body, paths)
                if kept is not body:
                    have = stored.get(body["metadata"]["name"])
                    if have is not None and same_spec(body, have):
                        kept = body
                slices.append(kept)
            same = all(a is b for a, b in zip(slices, pool.slices, strict=True))
            out.append(pool if same else replace(pool, slices=tuple(slices)))
        return out

    def _check_dropped(self, action: Action, obj: dict) -> None:
        """Compare what the apiserver answered a create/update with to what was sent: learn, count and report the
        fields it dropped; forget those it keeps again (its gate was turned on)."""
        sent, got = action.body["spec"], obj.get("spec") or {}  # type: ignore[index]
        if sent == got:
            if self._drops:
                self._kept_again(sent)
            return
        dropped = dropped_fields(sent, got)
        if self._drops:
            self._kept_again(sent, {d.path for d in dropped})
        if not dropped:
            return
        for d in dropped:
            self._dropped_total.labels(field=d.path).inc()
        revision = self.store.revision
        with self._drops_lock:
            if any(d.path not in self._drops for d in dropped):
                self._drops = {**self._drops, **{d.path: d.gate for d in dropped}}
            at, reported = self._drops_reported
            if at != revision:
                reported = frozenset()
            new = [d for d in dropped if d.path not in reported]
            self._drops_reported = (revision, reported | {d.path for d in new})
        if not new:
            return
        fields = ", ".join(str(d) for d in new)
        gates = sorted({d.gate for d in new if d.gate})
        log.warning("The apiserver dropped fields of a ResourceSlice: its feature gate is off; publishing what it "
                    "keeps", slice=action.name, fields=[d.path for d in new], gates=gates, assumed=str(self.version))
        fix = (f"turn the gate on in kube-apiserver (--feature-gates={','.join(g + '=true' for g in gates)}), or "
               "remove the field from the config" + (f", or run dra-kwok with --feature-gates="
                                                     f"{','.join(g + '=false' for g in gates)} to have such a config "
                                                     "refused" if gates else ""))
        self.on_dropped(f"The apiserver dropped {fields} from ResourceSlice {action.name} (dra-kwok assumed "
                        f"Kubernetes {self.version}): the slices are published without it and not rewritten (see "
                        f"dra_kwok_dropped_fields_total and /readyz?verbose). To keep it: {fix}.")

    def _kept_again(self, sent: dict, dropped: set[str] | None = None) -> None:
        """Forget the remembered drops that a write sent and the apiserver kept (their gate is on now)."""
        kept = [p for p in self._drops if p not in (dropped or ()) and strip_spec({"spec": sent}, [p])["spec"] is not sent]
        if kept:
            with self._drops_lock:
                self._drops = {p: g for p, g in self._drops.items() if p not in kept}
            log.info("The apiserver keeps fields it dropped before", fields=kept)

    def dropped_note(self) -> Note | None:
        """The readiness check ``dropped-fields``: passing, and naming what this apiserver drops, if anything."""
        drops = self._drops
        if not drops:
            return None
        fields = ", ".join(f"{p} (feature gate {g})" if g else f"{p} (unknown field)" for p, g in sorted(drops.items()))
        return Note(f"the apiserver drops {fields}; published without, see dra_kwok_dropped_fields_total")

    def _expect(self, action: Action) -> None:
        """Remember what this write will leave on the server, before sending it: the watch event of our own write
        often arrives before the response does, and must not queue the key again (measured: 60% extra reconciles)."""
        if action.verb == "delete":
            expected: object = DELETED
        else:
            spec = action.body["spec"]  # type: ignore[index]
            digest = action.digest or devices_digest(spec.get("devices"))
            expected = (digest, spec["pool"]["generation"])
            self._sent[action.name] = (spec.get("devices") or [], digest)
        self._expected[action.name] = expected
        self._expected.move_to_end(action.name)
        while len(self._expected) > MAX_EXPECTED:
            self._expected.popitem(last=False)

    def _transform(self, raw: dict) -> dict:
        """slice_transform, reusing the digest of what we sent when the server sent the same devices back (our own
        write's response or watch event, whichever comes first: the second has the same resourceVersion and is not
        transformed at all), so that a write costs one digest, not two."""
        sent = self._sent.pop((raw.get("metadata") or {}).get("name", ""), None)
        if sent is not None and sent[0] == (raw.get("spec") or {}).get("devices"):
            return slice_transform(raw, sent[1])
        return slice_transform(raw)

    def is_own_write(self, obj: dict, deleted: bool = False) -> bool:
        """Is this watched state exactly what our last write of that slice left? Then there is nothing to do."""
        name = obj["metadata"]["name"]
        expected = self._expected.get(name)
        if deleted:
            own = expected is DELETED
        else:
            own = expected == (obj.get("devicesDigest"), (obj["spec"].get("pool") or {}).get("generation"))
        if own:
            del self._expected[name]  # seen back: later events of this slice are someone else's
        return own

    def _apply(self, action: Action) -> None:
        obj: dict = {}
        self._expect(action)
        try:
            if action.verb == "create":
                try:
                    obj = self.rest.post(SLICES_PATH, action.body)  # type: ignore[arg-type]
                except AlreadyExists as err:
                    self._who_has(action.name, err)
                self.slices.mutate(obj)
                self._check_dropped(action, obj)
            elif action.verb == "update":
                obj = self.rest.put(f"{SLICES_PATH}/{action.name}", action.body)  # type: ignore[arg-type]
                self.slices.mutate(obj)
                self._check_dropped(action, obj)
            else:
                body = {"kind": "DeleteOptions", "apiVersion": "v1",
                        "preconditions": {"uid": action.uid, "resourceVersion": action.resource_version}}
                try:
                    self.rest.delete(f"{SLICES_PATH}/{action.name}", body)
                except NotFound:
                    pass
                self.slices.mutate(None, key=action.name)
        except Exception:
            self._sent.pop(action.name, None)
            self._expected.pop(action.name, None)
            self._writes[action.verb, "error"].inc()
            raise
        # Our write is in the cache now (mutate): its watch event is either seen already (is_own_write took the
        # entry) or will be dropped by the informer as a resourceVersion it holds. Either way the entry has done
        # its job; kept, it would make the next change by someone else that leaves the devices and generation as
        # they were (an ownerReference removed, resourceSliceCount edited) look like our own write, restored only
        # at the next resync.
        self._expected.pop(action.name, None)
        self._writes[action.verb, "success"].inc()
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        log.v(3).info(_WRITE_MESSAGES[action.verb], slice=action.name, **({"resourceVersion": rv} if rv else {}))

    def _who_has(self, name: str, err: AlreadyExists) -> None:
        """A create met an object of that name that our caches do not hold: find out whose it is, tell the truth
        about it (a foreign object; another instance's slice; another replica of this instance, running without
        leader election), and put it where the next decision will see it (raises, always)."""
        # a LIST by name, not a GET: the ClusterRole grants list (the informers') and nothing more
        items = self.rest.get(SLICES_PATH, query={"fieldSelector": f"metadata.name={name}"}).get("items") or []
        if not items:
            raise err  # gone meanwhile: retried with backoff
        obj = items[0]
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
            raise NotOurs(name) from err
        holder = labels.get(INSTANCE_LABEL)
        if holder == self.instance:
            if not self._replica_race_reported:
                self._replica_race_reported = True
                log.warning("A slice of this instance was created by someone else first: another replica of this "
                            "instance runs without --leader-elect (run every replica with --leader-elect)",
                            slice=name, instance=self.instance)
            self.slices.mutate(obj)
        else:
            log.v(2).info("Slice already published by another dra-kwok instance" if holder else
                          "Slice of an older dra-kwok release (no instance label) found", slice=name,
                          holder=holder or "none")
            self.others.mutate(obj)
        raise _CacheBehind(name) from err

    def _set_refused(self, request: PoolsRequest, refused: dict[tuple[str, str], str]) -> None:
        """Record the pools `request` refuses; report a (driver, holder) once, when its first pool is refused, and
        keep ``dra_kwok_pool_conflicts`` equal to the number of refused pools per (driver, holder)."""
        with self._conflict_lock:
            before = self._refused.get(request, {})
            if refused == before:
                return
            if refused:
                self._refused[request] = dict(refused)
            else:
                self._refused.pop(request, None)
            had = set(self._conflicts)
            for (driver, _pool), holder in before.items():
                self._conflicts[driver, holder] -= 1
            example: dict[tuple[str, str], str] = {}
            for (driver, pool), holder in refused.items():
                self._conflicts[driver, holder] = self._conflicts.get((driver, holder), 0) + 1
                example.setdefault((driver, holder), pool)
                if before.get((driver, pool)) != holder:
                    log.v(2).info("Refusing a pool published first by another dra-kwok instance", driver=driver,
                                  pool=pool, holder=holder)
            for key, count in list(self._conflicts.items()):
                if count > 0:
                    self._pool_conflicts.labels(driver=key[0], holder=key[1]).set(count)
                    continue
                del self._conflicts[key]
                try:
                    self._pool_conflicts.remove(*key)
                except KeyError:
                    pass
                log.info("No pool refused any more", driver=key[0], holder=key[1])
            new = [(key, pool) for key, pool in example.items() if key not in had]
        for (driver, holder), pool in new:  # outside the lock: the Event is a request
            message = (f"Pool {pool} of driver {driver} is already published by dra-kwok instance {holder}: this "
                       f"instance ({self.instance}) does not publish it, nor any other pool {holder} published "
                       "first, and publishes the rest. Give the two configs different drivers or pools, or stop one "
                       "of the two instances.")
            log.warning("Refusing pools published first by another dra-kwok instance", driver=driver, holder=holder,
                        pool=pool, instance=self.instance)
            self.on_conflict(message)

    def _count_kwok(self) -> tuple[int, int]:
        """(KWOK nodes, those a mapping matches), for the two gauges of one scrape: matching every node against
        every mapping (15 ms at 5,000 nodes and 2 mappings) is done once per scrape, not once per gauge."""
        at, counts = self._kwok_counted
        if time.monotonic() - at < 1.0:
            return counts
        counts = self._count_kwok_now()
        self._kwok_counted = (time.monotonic(), counts)
        return counts

    def _count_kwok_now(self) -> tuple[int, int]:
        cfg = self.store.get()
        kwok = [n for n in self.nodes.list() if n.kwok]
        if not isinstance(cfg, Config):
            return len(kwok), 0
        return len(kwok), sum(1 for n in kwok if any(node_matches(m, n.info) for m in cfg.mappings))


def _with_spec(action: Action, full: dict) -> Action:
    """A write planned from a slice as the apiserver keeps it, sending the full desired spec (with the planned
    generation). Its digest stays the kept one: what the server will store, which _expect looks for."""
    if action.body is None:
        return action
    return replace(action, body={**action.body, "spec": {**full["spec"], "pool": action.body["spec"]["pool"]}})


class NotOurs(TerminalError):
    """A create met an object of the same name that carries no managed-by label of ours: not a dra-kwok slice."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"ResourceSlice {name} already exists without the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}; dra-kwok "
            "never takes over an object it does not own: delete it, or put the label back to hand it over")


class _CacheBehind(Exception):
    """A create met a dra-kwok slice our caches did not hold yet; now they do, and the request is decided again."""

    def __init__(self, name: str) -> None:
        super().__init__(f"ResourceSlice {name} exists already (created by another dra-kwok instance or replica)")
        self.name = name


class _NodeEvents(EventHandler[NodeRecord]):
    def __init__(self, ctrl: ResourceSliceController) -> None:
        self.ctrl = ctrl

    def on_add(self, obj: NodeRecord) -> None:
        if obj.kwok:
            self.ctrl.node_changed(None, obj)

    def on_update(self, old: NodeRecord, new: NodeRecord) -> None:
        if old != new and (old.kwok or new.kwok):
            self.ctrl.node_changed(old, new)

    def on_delete(self, obj: NodeRecord) -> None:
        self.ctrl.node_changed(obj, None)


class _SliceEvents(EventHandler[dict]):
    """Our slices changed by someone else (or deleted): reconcile their key to restore them."""

    def __init__(self, ctrl: ResourceSliceController) -> None:
        self.ctrl = ctrl

    def on_add(self, obj: dict) -> None:
        if self.ctrl.synced() and not self.ctrl.is_own_write(obj):
            self.ctrl.slice_changed(obj)

    def on_update(self, old: dict, new: dict) -> None:
        if not self.ctrl.is_own_write(new):
            self.ctrl.slice_changed(new)

    def on_delete(self, obj: dict) -> None:
        if not self.ctrl.is_own_write(obj, deleted=True):
            self.ctrl.slice_changed(obj)


class _OtherEvents(EventHandler[dict]):
    """Another instance's (or an older release's) slice came, changed or went: who holds its pool may have changed."""

    def __init__(self, ctrl: ResourceSliceController) -> None:
        self.ctrl = ctrl

    def on_add(self, obj: dict) -> None:
        if self.ctrl.synced():
            self.ctrl.slice_changed(obj)

    def on_update(self, old: dict, new: dict) -> None:
        self.ctrl.slice_changed(new)

    def on_delete(self, obj: dict) -> None:
        self.ctrl.slice_changed(obj)


_WRITE_MESSAGES = {"create": "Created ResourceSlice", "update": "Updated ResourceSlice", "delete": "Deleted ResourceSlice"}
