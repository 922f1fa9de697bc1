"""Nothing the driver remembers per name grows without bound while names churn (Karpenter creates unique node
names forever, each bringing its own slices, work-queue keys and watch events).

By value and without an apiserver: 10,000 unique names go through each piece of per-name bookkeeping (the
ResourceSlice controller's record of its own writes, its settled requests, the informers' caches, indexes and
tombstones, the work queue and the controller loop, the event recorder) and what is left is counted.
"""

from __future__ import annotations

import logging

from kubernetes import client

from dra_kwok.config.types import Config
from dra_kwok.controllers import resourceslice
from dra_kwok.controllers.metrics import DriverMetrics
from dra_kwok.controllers.resourceslice import PoolsRequest, ResourceSliceController
from dra_kwok.controllers.store import Store
from dra_kwok.runtime import events
from dra_kwok.runtime.controller import Controller, TerminalError
from dra_kwok.runtime.events import EventRecorder
from dra_kwok.runtime.metrics import Metrics
from dra_kwok.slices.plan import Action, devices_digest

CHURN = 10_000
KWOK = "kwok.x-k8s.io/node"
DEVICES = [{"name": "gpu-0", "attributes": {"model": {"string": "a"}}}]
DIGEST = devices_digest(DEVICES)


def controller() -> ResourceSliceController:
    store = Store()
    store.set(Config("gpu.example.com"))  # known (not UNKNOWN), maps nothing: a reconcile never writes
    return ResourceSliceController(client.ApiClient(), store, DriverMetrics(), kwok_annotation=KWOK)


def write(verb: str, name: str) -> Action:
    if verb == "delete":
        return Action("delete", name, uid=f"uid-{name}", resource_version="1")
    body = {"metadata": {"name": name}, "spec": {"devices": DEVICES, "pool": {"name": f"{name}/gpu", "generation": 0}}}
    return Action(verb, name, body=body, digest=DIGEST)


def served(name: str, rv: int) -> dict:
    """What the apiserver answers (and then watches) for our write of slice `name`."""
    return {"metadata": {"name": name, "resourceVersion": str(rv)},
            "spec": {"nodeName": name, "devices": DEVICES, "pool": {"name": f"{name}/gpu", "generation": 0}}}


def node_event(kind: str, name: str, rv: int) -> dict:
    return {"type": kind, "object": {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": str(rv),
                                                  "annotations": {KWOK: "fake"}, "labels": {"churn": "yes"}}}}


def test_own_writes_of_10000_churned_slices_leave_nothing_once_seen_back():
    ctrl = controller()
    for i in range(CHURN):
        name = f"node-{i}-gpu-abcde"
        ctrl._expect(write("create", name))
        response = ctrl._transform(served(name, 2 * i))  # the write's response (or its watch event, first)
        assert ctrl.is_own_write(response)  # the watch event: ours, nothing to do
        ctrl._expect(write("delete", name))
        assert ctrl.is_own_write(response, deleted=True)  # node gone, its slice deleted by us, seen back
    assert len(ctrl._expected) == 0 and len(ctrl._sent) == 0


def test_own_writes_never_seen_back_are_bounded():
    """A watch that broke between a write and its event (the next LIST shows the state, not the event)."""
    ctrl = controller()
    total = resourceslice.MAX_EXPECTED + CHURN
    for i in range(total):
        ctrl._expect(write("delete", f"slice-{i}"))
    assert len(ctrl._expected) == resourceslice.MAX_EXPECTED
    assert f"slice-{total - 1}" in ctrl._expected and "slice-0" not in ctrl._expected  # the oldest go first


def test_10000_churned_nodes_leave_no_per_name_state_in_the_controller_its_queue_or_its_informers():
    ctrl = controller()
    queue, loop = ctrl.queue, ctrl.controller

    def drain() -> int:
        n = 0
        while (key := queue.get(timeout=0)) is not None:
            loop.process(key)
            n += 1
        return n

    settled_while_present = 0
    for i in range(CHURN):
        name = f"karpenter-{i:05d}-x7k2p"
        ctrl.nodes._dispatch(node_event("ADDED", name, 3 * i))
        assert drain() == 1
        settled_while_present += PoolsRequest(name) in ctrl._settled  # found right: remembered while it exists
        ctrl.nodes._dispatch(node_event("DELETED", name, 3 * i + 1))
        assert drain() == 1  # the reconcile of a node that does not exist
    assert settled_while_present == CHURN
    assert ctrl._settled == {}
    assert len(ctrl.nodes) == 0 and ctrl.nodes._index == {}
    assert len(ctrl.nodes._tombstones) == 4096
    assert queue.idle() and not queue._dirty and not queue._added_at and not queue._failures
    assert loop._terminal == {}
    assert len(ctrl._expected) == 0 and len(ctrl._sent) == 0


def test_10000_churned_slices_leave_nothing_in_the_slice_informers_index():
    ctrl = controller()
    slices = ctrl.slices
    for i in range(CHURN):
        name = f"karpenter-{i:05d}-x7k2p-gpu-q8z4m"
        slices._dispatch({"type": "ADDED", "object": served(name, 3 * i)})
        assert slices.by_index(name) != []
        slices._dispatch({"type": "DELETED", "object": served(name, 3 * i + 1)})
    assert len(slices) == 0 and slices._index == {} and slices.index_values() == []
    assert len(slices._tombstones) == 4096
    assert [PoolsRequest(None)] == ctrl._all_keys()


def test_keys_that_failed_or_failed_terminally_are_forgotten_once_they_succeed(caplog):
    """Each key fails (retried with backoff), then fails terminally (not retried), then, at its next event, succeeds."""
    caplog.set_level(logging.CRITICAL, logger="controller")  # 20,000 expected error lines, not worth writing
    outcomes: dict[str, list[Exception | None]] = {}

    def reconcile(key: str) -> None:
        err = outcomes[key].pop(0)
        if err is not None:
            raise err

    loop: Controller[str] = Controller("churn", reconcile, Metrics(), keys=list)

    def drain() -> None:
        while (key := loop.queue.get(timeout=0.5)) is not None:  # waits for the retries' 5 ms backoff too
            loop.process(key)

    for i in range(CHURN):
        outcomes[f"node-{i}"] = [RuntimeError("409 Conflict"), TerminalError("not ours"), None]
        loop.queue.add(f"node-{i}")
    drain()
    assert len(loop._terminal) == CHURN and loop.queue._failures == {}  # a terminal error is not retried
    for key in outcomes:
        loop.queue.add(key)  # the next event of each key
    drain()
    assert all(o == [] for o in outcomes.values())
    assert loop._terminal == {} and loop.queue._failures == {} and loop.queue.idle() and not loop.queue._added_at


class Rest:
    """The EventRecorder's seam: records each POST (by object uid) and PATCH (by event name's object part)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def post(self, path: str, body: dict) -> dict:
        self.calls.append(("post", body["involvedObject"]["uid"]))
        return body

    def patch(self, path: str, body: dict) -> dict:
        self.calls.append(("patch", path.rsplit("/", 1)[1].split(".")[0]))
        return body


def configmap(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "karpenter", "name": f"cm-{i}", "uid": f"uid-{i}"}


def test_the_event_recorder_remembers_at_most_max_cache_events_the_most_recent_ones():
    rest = Rest()
    recorder = EventRecorder(rest)  # type: ignore[arg-type]
    for i in range(CHURN):
        recorder.record(configmap(i), "Warning", "InvalidConfig", "mappings[0].name: required")
    assert len(recorder._last) == events.MAX_CACHE
    assert rest.calls == [("post", f"uid-{i}") for i in range(CHURN)]
    rest.calls.clear()
    recorder.record(configmap(CHURN - 1), "Warning", "InvalidConfig", "mappings[0].name: required")
    recorder.record(configmap(0), "Warning", "InvalidConfig", "mappings[0].name: required")
    # the most recent is aggregated (PATCH of its count); the oldest was forgotten: a new Event, not a wrong PATCH
    assert rest.calls == [("patch", f"cm-{CHURN - 1}"), ("post", "uid-0")]
    assert len(recorder._last) == events.MAX_CACHE


def test_a_repeated_event_stays_remembered_however_many_others_come_and_go():
    rest = Rest()
    recorder = EventRecorder(rest)  # type: ignore[arg-type]
    hot = configmap(-1)
    for i in range(CHURN):
        recorder.record(configmap(i), "Warning", "InvalidConfig", "bad")
        recorder.record(hot, "Warning", "InvalidConfig", "bad")
    assert rest.calls.count(("post", "uid--1")) == 1  # aggregated throughout: recently used is never evicted
    assert recorder._last[("uid--1", "InvalidConfig", "bad")][1] == CHURN
