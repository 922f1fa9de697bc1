"""End to end: the slice features that Kubernetes 1.36/1.37 turn on by default (partitionable devices, device taints,
consumable capacity, extended-resource mapping), published by dra-kwok and honoured by the real kube-scheduler and
kube-controller-manager.

Each test applies one documented example of examples/scheduling/ (09 … 12) as test_scheduling.py does. The same
tests run on every control plane CI starts (1.37 and 1.34): on a cluster where the feature's gate is off by default
they assert the documented behaviour there instead: `dra-kwok validate --kubernetes-version <the cluster's>` passes
with a warning naming each field the apiserver would drop and its gate; the running driver publishes the slices,
which the apiserver stores without those fields, and records a DroppedFields Warning Event on the ConfigMap naming
field and gate; and the real scheduler then allocates as if the fields were never there (partitions are independent
devices, a tainted device goes to a claim without a toleration, a shareable device goes to one claim only). For the
extended-resource mapping, which lives in the DeviceClass (no dra-kwok field), the 1.34 apiserver drops
`extendedResourceName` and the pod stays Pending for want of the resource.
"""

from __future__ import annotations

from dra_kwok.slices.features import Version
from dra_kwok.testing.controlplane import k8s_version
from tests.e2e.support import (
    Example,
    Scenario,
    assert_dropped_on_this_cluster,
    is_running,
    is_unschedulable,
    object_path,
    results,
    until,
    validate,
)
from tests.support.helpers import wait_for

CLUSTER = Version.parse(k8s_version())
CLUSTER_MINOR = f"1.{CLUSTER.minor}"
#: DRAExtendedResource (a DeviceClass field and a scheduler feature, no slice field, so not in slices/features.py):
#: alpha and off in 1.34, GA in 1.37 (`kube-apiserver --help` of each); 1.35/1.36 are not run here.
EXTENDED_RESOURCE = CLUSTER.minor >= 37


# ---------------------------------------------------------------------------------------------- helpers
def assert_valid_on_137(ex: Example) -> None:
    code, out = validate(ex, "1.37")
    assert code == 0, out


def start(scenario: Scenario, name: str, instance_type: str, gate: str, *fields: str) -> Example:
    """The common opening: a KWOK node of `instance_type`, the example's ConfigMap (valid for 1.37) and the driver.
    On a cluster with `gate` off, assert first that `fields` are dropped there and reported (see above)."""
    ex = scenario.load(name)
    scenario.node(instance_type.split(".")[0], instance_type)
    assert_valid_on_137(ex)
    scenario.apply_config(ex)
    scenario.start_driver()
    if not CLUSTER.on(gate):
        assert_dropped_on_this_cluster(scenario, ex, gate, list(fields))
    return ex


def delete_pod(scenario: Scenario, name: str) -> None:
    """Delete a pod at once (no kubelet would confirm a graceful deletion) and wait until it is gone."""
    scenario.rest.delete(object_path("Pod", scenario.namespace, name), {"gracePeriodSeconds": 0})
    wait_for(lambda: name not in {p["metadata"]["name"] for p in scenario.pods()}, timeout=15,
             message=f"pod {name} deleted")


def device_of(scenario: Scenario, pod: dict) -> str:
    [claim] = scenario.allocated(pod)
    [result] = results(claim)
    return result["device"]


# ---------------------------------------------------------------------------------------------- 09 partitions
def test_partitions_share_one_gpus_counters(scenario):
    ex = start(scenario, "09-partitions", "p4d.24xlarge", "DRAPartitionableDevices",
               "sharedCounters", "devices[].consumesCounters")
    if not CLUSTER.on("DRAPartitionableDevices"):  # 1.34: ten independent devices, nothing shared
        [slice_] = scenario.wait_slices(1)
        names = [d["name"] for d in slice_["spec"]["devices"]]
        assert names == ["gpu-0", "gpu-0-3g-0", "gpu-0-3g-4"] + [f"gpu-0-1g-{i}" for i in range(7)]
        scenario.create_all(ex, "DeviceClass", "ResourceClaimTemplate")
        taken = []
        for name in ("mig-3g-a", "mig-3g-b", "whole-gpu"):
            scenario.create(ex.get("Pod", name))
            taken.append(device_of(scenario, scenario.wait_running(name)))
        # the whole GPU is allocated next to both 3g partitions of it: no counters, no conflict
        assert sorted(taken) == ["gpu-0", "gpu-0-3g-0", "gpu-0-3g-4"]
        scenario.create(ex.get("Deployment", "mig-1g"))  # 5 replicas: all fit, on top of everything
        wait_for(lambda: sum(map(is_running, scenario.pods("app=mig-1g"))) == 5, timeout=60,
                 message="all 5 mig-1g pods Running")
        return
    [node] = scenario.nodes

    # 1.35+: the counter set in a slice of its own, the ten devices in another, one pool
    counters, devices = sorted(scenario.wait_slices(2), key=lambda s: "devices" in s["spec"])
    assert [c["name"] for c in counters["spec"]["sharedCounters"]] == ["gpu-0-counters"]
    assert not counters["spec"].get("devices")
    names = [d["name"] for d in devices["spec"]["devices"]]
    assert names == ["gpu-0", "gpu-0-3g-0", "gpu-0-3g-4"] + [f"gpu-0-1g-{i}" for i in range(7)]
    assert {c["counterSet"] for d in devices["spec"]["devices"] for c in d["consumesCounters"]} == {"gpu-0-counters"}
    assert {s["spec"]["pool"]["name"] for s in (counters, devices)} == {f"{node}/gpu"}
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in (counters, devices)} == {2}

    scenario.create_all(ex, "DeviceClass", "ResourceClaimTemplate")
    three_g = {}
    for name in ("mig-3g-a", "mig-3g-b"):
        scenario.create(ex.get("Pod", name))
        three_g[name] = device_of(scenario, scenario.wait_running(name))
    assert sorted(three_g.values()) == ["gpu-0-3g-0", "gpu-0-3g-4"]  # two partitions of the one GPU

    # every memory slice is taken: the whole GPU (which consumes them all) cannot be allocated
    scenario.create(ex.get("Pod", "whole-gpu"))
    scenario.wait_unschedulable("whole-gpu")

    # free the 3g partition on memory slices 0-3: exactly the four 1g partitions there fit (1g-4 … 1g-6 overlap
    # the other 3g); the fifth 1g pod and the whole GPU stay Pending
    [freed] = [pod for pod, device in three_g.items() if device == "gpu-0-3g-0"]
    claim_name = scenario.allocated(scenario.get("Pod", freed))[0]["metadata"]["name"]
    delete_pod(scenario, freed)

    def released() -> bool:  # kube-controller-manager deallocates the claim; the garbage collector deletes it later
        claim = next((c for c in scenario.claims() if c["metadata"]["name"] == claim_name), None)
        return claim is None or not (claim.get("status") or {}).get("allocation")

    wait_for(released, timeout=60, message="the freed pod's claim deallocated (or deleted) by kube-controller-manager")
    scenario.create(ex.get("Deployment", "mig-1g"))  # 5 replicas

    def settled() -> bool:
        pods = scenario.pods("app=mig-1g")
        return (len(pods) == 5 and sum(map(is_running, pods)) == 4
                and sum(is_unschedulable(p) for p in pods) == 1)

    wait_for(settled, timeout=60, message="4 mig-1g pods Running and 1 Unschedulable")
    ones = sorted(device_of(scenario, p) for p in scenario.pods("app=mig-1g") if is_running(p))
    assert ones == [f"gpu-0-1g-{i}" for i in range(4)]
    assert is_unschedulable(scenario.get("Pod", "whole-gpu"))
    [kept] = set(three_g) - {freed}
    assert device_of(scenario, scenario.get("Pod", kept)) == "gpu-0-3g-4"


# ---------------------------------------------------------------------------------------------- 10 device taints
def test_device_taints_keep_pods_off_and_evict_them(scenario):
    ex = start(scenario, "10-device-taints", "g5.12xlarge", "DRADeviceTaints", "devices[].taints")
    if not CLUSTER.on("DRADeviceTaints"):  # 1.34: two untainted devices, one for each of the first two claims
        [slice_] = scenario.wait_slices(1)
        assert [d["name"] for d in slice_["spec"]["devices"]] == ["gpu-0", "gpu-1"]
        scenario.create_all(ex, "DeviceClass", "ResourceClaim", "ResourceClaimTemplate")
        got = []
        for name in ("untolerant", "untolerant-2"):
            scenario.create(ex.get("Pod", name))
            got.append(device_of(scenario, scenario.wait_running(name)))
        assert sorted(got) == ["gpu-0", "gpu-1"]  # the "tainted" gpu-0 went to a claim without a toleration
        scenario.create(ex.get("Pod", "tolerant"))
        scenario.wait_unschedulable("tolerant")  # both devices are taken
        return

    [slice_] = scenario.wait_slices(1)
    taints = {d["name"]: [(t["key"], t["effect"]) for t in d.get("taints") or []] for d in slice_["spec"]["devices"]}
    assert taints == {"gpu-0": [("example.com/unhealthy", "NoSchedule")], "gpu-1": []}

    scenario.create_all(ex, "DeviceClass", "ResourceClaim", "ResourceClaimTemplate")
    scenario.create(ex.get("Pod", "untolerant"))
    untolerant = scenario.wait_running("untolerant")
    assert device_of(scenario, untolerant) == "gpu-1"  # never the tainted gpu-0
    scenario.create(ex.get("Pod", "untolerant-2"))
    scenario.wait_unschedulable("untolerant-2")  # gpu-0 is free, but tainted
    scenario.create(ex.get("Pod", "tolerant"))
    assert device_of(scenario, scenario.wait_running("tolerant")) == "gpu-0"  # its request tolerates the taint

    # NoExecute on the allocated gpu-1, by a change of the ConfigMap: kube-controller-manager's
    # device-taint-eviction-controller deletes the pod that uses it, and the claim is deallocated
    scenario.apply_config_text(ex.variant("config-noexecute.yaml"))
    wait_for(lambda: "untolerant" not in {p["metadata"]["name"] for p in scenario.pods()}, timeout=30,
             message="pod untolerant evicted (device-taint-eviction-controller)")
    claim = until(lambda: scenario.get("ResourceClaim", "untolerant"),
                  lambda c: not (c.get("status") or {}).get("allocation"), 30, "claim untolerant deallocated")
    assert not claim["status"].get("reservedFor")

    def evictions() -> list[tuple[str, str]]:  # events are recorded asynchronously: wait for it
        events = scenario.rest.get(f"/api/v1/namespaces/{scenario.namespace}/events")["items"]
        return [(e["reason"], e.get("reportingComponent")) for e in events
                if e["involvedObject"].get("kind") == "Pod" and e["involvedObject"].get("name") == "untolerant"
                and e["reason"] == "DeviceTaintManagerEviction"]

    assert until(evictions, bool, 10, "a DeviceTaintManagerEviction event on pod untolerant") == [
        ("DeviceTaintManagerEviction", "device-taint-eviction-controller")]
    # the tolerating pod keeps gpu-0 (NoSchedule only); gpu-1 now repels new claims too
    assert is_running(scenario.get("Pod", "tolerant"))
    assert is_unschedulable(scenario.get("Pod", "untolerant-2"))


# ---------------------------------------------------------------------------------------------- 11 shared capacity
def test_shared_capacity_two_claims_share_one_device(scenario):
    ex = start(scenario, "11-shared-capacity", "g6e.xlarge", "DRAConsumableCapacity",
               "devices[].allowMultipleAllocations")
    if not CLUSTER.on("DRAConsumableCapacity"):  # 1.34: an ordinary device, allocated to one claim only
        [slice_] = scenario.wait_slices(1)
        [device] = slice_["spec"]["devices"]
        assert "allowMultipleAllocations" not in device and "requestPolicy" not in device["capacity"]["memory"]
        scenario.create_all(ex, "DeviceClass", "ResourceClaimTemplate")
        scenario.create(ex.get("Pod", "share-a"))
        [claim] = scenario.allocated(scenario.wait_running("share-a"))
        [result] = results(claim)
        assert result["device"] == "gpu-0" and "consumedCapacity" not in result and "shareID" not in result
        scenario.create(ex.get("Pod", "share-b"))
        scenario.wait_unschedulable("share-b")  # the one device is taken: no sharing
        return

    [slice_] = scenario.wait_slices(1)
    [device] = slice_["spec"]["devices"]
    assert device["allowMultipleAllocations"] is True
    assert device["capacity"]["memory"]["requestPolicy"]["validRange"] == {"min": "1Gi", "max": "40Gi", "step": "1Gi"}

    scenario.create_all(ex, "DeviceClass", "ResourceClaimTemplate")
    shares = []
    for name in ("share-a", "share-b"):
        scenario.create(ex.get("Pod", name))
        [claim] = scenario.allocated(scenario.wait_running(name))
        [result] = results(claim)
        shares.append(result)
    assert [r["device"] for r in shares] == ["gpu-0", "gpu-0"]  # one device, two claims
    assert [r["consumedCapacity"] for r in shares] == [{"memory": "16Gi"}, {"memory": "16Gi"}]
    assert shares[0]["shareID"] != shares[1]["shareID"]  # each allocation is a share of its own

    scenario.create(ex.get("Pod", "too-big"))  # 16Gi asked, 8Gi left
    scenario.wait_unschedulable("too-big")
    scenario.create(ex.get("Pod", "the-rest"))  # exactly the 8Gi left
    [claim] = scenario.allocated(scenario.wait_running("the-rest"))
    [result] = results(claim)
    assert (result["device"], result["consumedCapacity"]) == ("gpu-0", {"memory": "8Gi"})
    assert is_unschedulable(scenario.get("Pod", "too-big"))


# ---------------------------------------------------------------------------------------------- 12 extended resource
def test_extended_resource_limits_get_our_devices(scenario):
    ex = scenario.load("12-extended-resource")
    node = scenario.node("g4", "g4dn.12xlarge")
    for version in ("1.37", "1.34"):  # nothing gated in the config: the mapping lives in the DeviceClass
        code, out = validate(ex, version)
        assert code == 0, out
    scenario.apply_config(ex)
    scenario.start_driver()
    [slice_] = scenario.wait_slices(1)
    published = {d["name"] for d in slice_["spec"]["devices"]}
    assert published == {f"gpu-{i}" for i in range(4)}
    scenario.create_all(ex, "DeviceClass")
    stored = scenario.rest.get(object_path("DeviceClass", None, ex.class_name("fake-gpu")))
    scenario.create(ex.get("Pod", "two-gpus-a"))
    if not EXTENDED_RESOURCE:
        # the 1.34 apiserver drops the field (its gate is off) and the scheduler knows no such resource
        assert "extendedResourceName" not in stored["spec"]
        scenario.wait_unschedulable("two-gpus-a", "Insufficient example.com/gpu")
        assert scenario.claims() == []
        return

    assert stored["spec"]["extendedResourceName"] == "example.com/gpu"
    devices = []
    for name in ("two-gpus-a", "two-gpus-b"):
        if name != "two-gpus-a":  # created above
            scenario.create(ex.get("Pod", name))
        pod = scenario.wait_running(name)
        assert pod["spec"]["nodeName"] == node
        status = pod["status"]["extendedResourceClaimStatus"]  # the claim the scheduler made for the pod
        claim = until(lambda: scenario.get("ResourceClaim", status["resourceClaimName"]), results, 10,
                      f"the extended-resource claim of {name} allocated")
        assert [m["resourceName"] for m in status["requestMappings"]] == ["example.com/gpu"]
        got = results(claim)
        assert len(got) == 2 and {r["pool"] for r in got} == {f"{node}/gpu"}
        devices += [r["device"] for r in got]
    assert sorted(devices) == sorted(published)  # two pods, two GPUs each, all four distinct

    scenario.create(ex.get("Pod", "two-gpus-c"))
    scenario.wait_unschedulable("two-gpus-c")  # the DRA plugin: "cannot allocate all claims"
