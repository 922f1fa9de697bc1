"""End to end: binding conditions with the real kube-scheduler, dra-kwok playing the driver (examples/scheduling/
13-binding-conditions).

Kubernetes 1.36+ (DRADeviceBindingConditions on): the pod whose device has bindingConditions is allocated and
reserved but stays unbound (the scheduler waits in PreBind, Event BindingConditionsPending) until dra-kwok sets the
condition, `delay` after the claim's allocationTimestamp; then it is bound and Running. The pod whose device gets
the failure condition is never bound: the scheduler's PreBind fails, Unreserve drops the reservation, the next
cycle's PostFilter deallocates the claim (allocation and status.devices cleared) and a later cycle allocates it again
(a new allocationTimestamp), which dra-kwok fails again.

Kubernetes 1.34 (the gate alpha, off): dra-kwok refuses the example config (a Warning Event on the ConfigMap naming
bindingSimulation and the gate) and publishes nothing, so both pods stay Pending, unschedulable.
"""

from __future__ import annotations

import queue
import time

from kubernetes import client

from dra_kwok.runtime.informer import EventHandler, Informer
from dra_kwok.slices.features import Version
from dra_kwok.testing.controlplane import k8s_version
from tests.e2e.support import is_unschedulable, results
from tests.integration.driver import http_get, metric
from tests.support.helpers import wait_for

VERSION = Version.parse(k8s_version())
ATTACHED, FAILED = "dra-kwok.x-k8s.io/attached", "dra-kwok.x-k8s.io/attachFailed"


def _condition(claim: dict, kind: str) -> dict | None:
    for entry in (claim.get("status") or {}).get("devices") or []:
        for cond in entry.get("conditions") or []:
            if cond["type"] == kind:
                return cond
    return None


def _events(scenario, reason: str, name: str) -> list[dict]:
    items = scenario.rest.get(f"/api/v1/namespaces/{scenario.namespace}/events")["items"]
    return [e for e in items if e.get("reason") == reason and e["involvedObject"].get("name") == name]


def test_binding_conditions_hold_the_pod_until_dra_kwok_sets_them(scenario):
    ex = scenario.load("13-binding-conditions")
    ok_node = scenario.node("attach", "g4dn.xlarge")
    scenario.node("flaky", "p3.2xlarge")
    scenario.apply_config(ex)
    if not VERSION.on("DRADeviceBindingConditions"):
        _refused_on_this_version(scenario, ex)
        return
    info = scenario.start_driver()
    scenario.wait_slices(2)
    scenario.create_all(ex)

    # allocated and reserved, but not bound: waiting in PreBind for the binding condition
    claim = wait_for(lambda: (c := scenario.get("ResourceClaim", "attaches")).get("status", {}).get("reservedFor")
                     and c, timeout=30, message="claim attaches allocated and reserved")
    [result] = results(claim)
    assert result["bindingConditions"] == [ATTACHED]
    allocated_at = claim["status"]["allocation"]["allocationTimestamp"]
    if _condition(claim, ATTACHED) is None:
        assert not scenario.get("Pod", "attaches")["spec"].get("nodeName"), "bound before the condition was set"
    wait_for(lambda: _events(scenario, "BindingConditionsPending", "attaches"), timeout=15,
             message="Event BindingConditionsPending on the pod")

    pod = scenario.wait_running("attaches", timeout=60)
    assert pod["spec"]["nodeName"] == ok_node
    claim = scenario.get("ResourceClaim", "attaches")
    cond = _condition(claim, ATTACHED)
    assert cond is not None and cond["status"] == "True" and cond["reason"] == "DraKwokSimulatedReady", claim
    # set no earlier than the configured 8 s after the allocation (both whole-second server/driver timestamps)
    assert _seconds(cond["lastTransitionTime"]) - _seconds(allocated_at) >= 7, (allocated_at, cond)
    # the pod was bound after the condition was set, not before
    scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert _seconds(scheduled["lastTransitionTime"]) >= _seconds(cond["lastTransitionTime"])

    # the failure path: never bound; the claim is failed, deallocated and allocated again. Every version of the claim
    # is read from a watch (the project's informer), not by polling: the deallocation and the next allocation can
    # land within one poll interval.
    seen: queue.Queue[dict] = queue.Queue()

    class Versions(EventHandler[dict]):
        def on_add(self, obj: dict) -> None:
            seen.put(obj)

        def on_update(self, old: dict, new: dict) -> None:
            seen.put(new)

    claims = Informer("fails", client.ResourceV1Api(scenario.api).list_namespaced_resource_claim, lambda raw: raw,
                      Versions(), namespace=scenario.namespace, field_selector="metadata.name=fails")
    claims.start()
    stamps: set[str] = set()
    failed_seen = deallocated_seen = False
    deadline = time.monotonic() + 75
    try:
        while time.monotonic() < deadline and not (failed_seen and deallocated_seen and len(stamps) >= 2):
            try:
                c = seen.get(timeout=1)
            except queue.Empty:
                continue
            allocation = (c.get("status") or {}).get("allocation")
            if allocation:
                stamps.add(allocation["allocationTimestamp"])
                failed_seen |= (_condition(c, FAILED) or {}).get("status") == "True"
            elif stamps:
                deallocated_seen = True
                assert not (c.get("status") or {}).get("devices"), "status.devices kept after deallocation"
            assert not scenario.get("Pod", "fails")["spec"].get("nodeName"), "the failing pod was bound"
    finally:
        claims.stop()
    assert failed_seen, "dra-kwok never set the failure condition"
    assert deallocated_seen, "the scheduler never deallocated the failed claim"
    assert len(stamps) >= 2, f"the claim was not allocated again after the failure: {stamps}"
    assert metric(http_get(info["metrics"])[1], "dra_kwok_binding_condition_writes_total", outcome="fail",
                  result="success") >= 2


def _refused_on_this_version(scenario, ex) -> None:
    info = scenario.start_driver()
    events = wait_for(lambda: [e for e in scenario.rest.get(f"/api/v1/namespaces/{scenario.namespace}/events")["items"]
                               if e["type"] == "Warning" and "bindingSimulation" in e.get("message", "")],
                      timeout=20, message="a Warning Event refusing the config")
    assert "DRADeviceBindingConditions" in events[0]["message"], events[0]["message"]
    assert metric(http_get(info["metrics"])[1], "dra_kwok_config_valid") == 0
    assert scenario.slices() == []
    scenario.create_all(ex)
    for name in ("attaches", "fails"):
        wait_for(lambda: is_unschedulable(scenario.get("Pod", name)), timeout=30,
                 message=f"pod {name} unschedulable: no device published")
    assert all("devices" not in (c.get("status") or {}) for c in scenario.claims())


def _seconds(stamp: str) -> float:
    from datetime import datetime, timezone

    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
