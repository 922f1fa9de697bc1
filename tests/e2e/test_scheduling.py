"""End to end: the real kube-scheduler (and kube-controller-manager for claim templates, Deployments and garbage
collection) allocates dra-kwok's fake devices to pods on KWOK nodes.

Every test runs `dra-kwok run` as a subprocess watching its own ConfigMap, creates KWOK nodes as KWOK documents them
(the real KWOK controller makes them Ready, node-lifecycle lifts the not-ready taint, and KWOK's pod-ready stage makes
bound pods Running, which the tests wait for), and applies one documented example of
examples/scheduling/ (config.yaml, workload.yaml) with its names made unique (see tests/e2e/support.py). A failing
test appends its pods' scheduling conditions, the namespace's events, claims, slices and logs to the report.
"""

from __future__ import annotations

from collections import Counter

from kubernetes import client

from tests.e2e.support import (
    EXAMPLE_DRIVERS,
    device_key,
    is_unschedulable,
    published_devices,
    results,
)
from tests.integration.driver import http_get, metric
from tests.support.helpers import wait_for

FPGA_DRIVER, GPU_DRIVER = EXAMPLE_DRIVERS


def _node_pinned(claim: dict, node: str) -> bool:
    """A node-local allocation carries a node selector on exactly that node's name."""
    terms = claim["status"]["allocation"]["nodeSelector"]["nodeSelectorTerms"]
    return terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]


def test_one_gpu_pod_runs_on_the_matching_kwok_node(scenario):
    ex = scenario.load("01-one-gpu")
    gpu_node = scenario.node("gpu", "g4dn.xlarge")
    scenario.node("cpu", "c-4x-amd64-linux")  # a KWOK node without devices: the pod must not go there
    scenario.apply_config(ex)
    scenario.start_driver()
    published = published_devices(scenario.wait_slices(1))

    scenario.create_all(ex)
    pod = scenario.wait_running("one-gpu")

    assert pod["spec"]["nodeName"] == gpu_node
    [claim] = scenario.allocated(pod)
    [result] = results(claim)
    assert result["driver"] == ex.driver()
    assert result["pool"] == f"{gpu_node}/gpu"
    assert result["device"] == "gpu-0" and device_key(result) in published
    assert _node_pinned(claim, gpu_node)
    assert [r["name"] for r in claim["status"]["reservedFor"]] == ["one-gpu"]


def test_per_node_pools_24_pods_on_3_nodes_and_a_25th_pending(scenario):
    ex = scenario.load("02-per-node-pools")
    nodes = [scenario.node(f"p3-{i}", "p3.16xlarge") for i in range(3)]
    scenario.apply_config(ex)
    scenario.start_driver()
    slices = scenario.wait_slices(3)
    assert sum(len(s["spec"]["devices"]) for s in slices) == 24
    published = published_devices(slices)  # pool names (<node>/gpu) are checked below, after what they are for

    scenario.create_all(ex)  # DeviceClass, ResourceClaimTemplate, Deployment with 24 replicas
    pods = scenario.wait_all_running("app=gpu-workers", 24, timeout=60)

    assert Counter(p["spec"]["nodeName"] for p in pods) == {n: 8 for n in nodes}
    assert sorted({pool for _, pool, _ in published}) == sorted(f"{n}/gpu" for n in nodes)
    allocated = []
    for pod in pods:
        [claim] = scenario.allocated(pod)
        [result] = results(claim)
        assert result["pool"] == f"{pod['spec']['nodeName']}/gpu"  # the device is on the pod's own node
        allocated.append(device_key(result))
    assert len(set(allocated)) == 24 and set(allocated) == set(published)  # distinct, and every device used

    scenario.scale("gpu-workers", 25)
    pending = wait_for(lambda: [p for p in scenario.pods("app=gpu-workers") if is_unschedulable(p)],
                       timeout=30, message="a 25th replica Unschedulable with 'cannot allocate all claims'")
    assert len(pending) == 1
    assert sum(1 for p in scenario.pods("app=gpu-workers") if p["spec"].get("nodeName")) == 24


def test_gpu_and_fpga_from_two_mappings_and_two_drivers_on_one_node(scenario):
    ex = scenario.load("03-gpu-and-fpga")
    both = scenario.node("gpu-fpga", labels={"accelerator-type": "gpu-fpga"})
    gpu_only = scenario.node("gpu", labels={"accelerator-type": "gpu"})
    scenario.apply_config(ex)
    scenario.start_driver()
    scenario.wait_slices(3)  # a GPU pool on each node, an FPGA pool (second driver) on one
    assert [s["spec"]["nodeName"] for s in scenario.slices(ex.driver(FPGA_DRIVER))] == [both]
    assert {s["spec"]["nodeName"] for s in scenario.slices(ex.driver(GPU_DRIVER))} == {both, gpu_only}

    scenario.create_all(ex)
    pod = scenario.wait_running("gpu-and-fpga")

    assert pod["spec"]["nodeName"] == both
    [claim] = scenario.allocated(pod)
    by_request = {r["request"]: device_key(r) for r in results(claim)}
    assert by_request == {
        "gpu": (ex.driver(GPU_DRIVER), f"{both}/gpu", by_request["gpu"][2]),
        "fpga": (ex.driver(FPGA_DRIVER), f"{both}/fpga", "fpga-0"),
    }
    assert set(by_request.values()) <= set(published_devices(scenario.slices()))


def test_pool_of_200_devices_over_4_slices_is_allocated_from_every_slice(scenario):
    ex = scenario.load("04-large-pool")
    node = scenario.node("accel", "accel-200.metal")
    scenario.apply_config(ex)
    scenario.start_driver()
    slices = scenario.wait_slices(4)
    assert {s["spec"]["pool"]["name"] for s in slices} == {f"{node}/accel"}
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in slices} == {4}
    assert [len(s["spec"]["devices"]) for s in slices] == [50, 50, 50, 50]
    published = published_devices(slices)
    assert len(published) == 200

    scenario.create_all(ex)  # 8 replicas × 25 devices = the whole pool
    pods = scenario.wait_all_running("app=accel-workers", 8, timeout=60)

    allocated = []
    for pod in pods:
        [claim] = scenario.allocated(pod)
        assert len(results(claim)) == 25
        allocated += [device_key(r) for r in results(claim)]
    assert len(allocated) == 200 and set(allocated) == set(published)
    used_slices = {published[k][1]["metadata"]["name"] for k in allocated}
    assert used_slices == {s["metadata"]["name"] for s in slices}  # devices came from all 4 slices

    scenario.scale("accel-workers", 9)
    wait_for(lambda: [p for p in scenario.pods("app=accel-workers") if is_unschedulable(p)], timeout=30,
             message="a 9th replica Unschedulable: the pool is exhausted")


def test_cel_selectors_on_attributes_and_capacity_choose_the_nodes(scenario):
    ex = scenario.load("05-cel-selectors")
    p5 = scenario.node("p5", "p5.48xlarge")
    p4d = scenario.node("p4d", "p4d.24xlarge")
    g4dn = scenario.node("g4dn", "g4dn.xlarge")
    scenario.apply_config(ex)
    scenario.start_driver()
    published = published_devices(scenario.wait_slices(3))

    scenario.create_all(ex, "DeviceClass")
    # the attribute selector first: the capacity selector would also accept the H100s
    scenario.create(ex.get("ResourceClaim", "h100"))
    scenario.create(ex.get("Pod", "h100"))
    pod = scenario.wait_running("h100")
    assert pod["spec"]["nodeName"] == p5
    [claim] = scenario.allocated(pod)
    [result] = results(claim)
    assert result["pool"] == f"{p5}/h100"
    assert published[device_key(result)][0]["attributes"]["type"] == {"string": "nvidia-h100"}

    scenario.create(ex.get("ResourceClaimTemplate", "big-memory-gpu"))
    scenario.create(ex.get("Deployment", "big-memory"))
    pods = scenario.wait_all_running("app=big-memory", 3)
    assert Counter(p["spec"]["nodeName"] for p in pods) == {p5: 1, p4d: 2}  # never the 16Gi T4 node
    for p in pods:
        [claim] = scenario.allocated(p)
        [result] = results(claim)
        assert published[device_key(result)][0]["capacity"]["memory"]["value"] in ("80Gi", "40Gi")

    scenario.scale("big-memory", 4)  # every >= 40Gi device is taken; the free T4s do not qualify
    wait_for(lambda: [p for p in scenario.pods("app=big-memory") if is_unschedulable(p)], timeout=30,
             message="a 4th big-memory replica Unschedulable although the T4s are free")
    assert not any(r["pool"] == f"{g4dn}/t4" for c in scenario.claims() for r in results(c))


def test_cluster_wide_pool_is_allocatable_from_pods_on_any_node(scenario):
    ex = scenario.load("06-cluster-wide")
    nodes = [scenario.node("storage", labels={"has-shared-storage": "true"}), scenario.node("plain-0"),
             scenario.node("plain-1")]
    scenario.apply_config(ex)
    scenario.start_driver()
    [slice_] = scenario.wait_slices(1)
    spec = slice_["spec"]
    assert spec.get("allNodes") is True and not spec.get("nodeName")
    assert spec["pool"]["name"] == "shared-nvme" and "ownerReferences" not in slice_["metadata"]

    scenario.create_all(ex, "DeviceClass", "ResourceClaimTemplate")
    template = ex.get("Pod")
    for i, node in enumerate(nodes):  # one pod pinned to each node, labelled or not
        pod = ex.get("Pod")
        pod["metadata"]["name"] = f"{template['metadata']['name']}-{i}"
        pod["spec"]["nodeSelector"]["kubernetes.io/hostname"] = node
        scenario.create(pod)

    allocated = []
    for i, node in enumerate(nodes):
        pod = scenario.wait_running(f"{template['metadata']['name']}-{i}")
        assert pod["spec"]["nodeName"] == node
        [claim] = scenario.allocated(pod)
        [result] = results(claim)
        assert (result["driver"], result["pool"]) == (ex.driver(), "shared-nvme")
        assert not claim["status"]["allocation"].get("nodeSelector")  # usable from any node
        allocated.append(device_key(result))
    assert len(set(allocated)) == 3

    # the pool exists while a node matches the mapping: deleting the only labelled node removes it (it has no owner)
    client.CoreV1Api(scenario.api).delete_node(nodes[0])
    wait_for(lambda: not scenario.slices(), timeout=10, message="the cluster-wide slice deleted with the last match")


def test_claim_template_controller_manager_creates_the_claims(scenario):
    ex = scenario.load("07-claim-template")
    node = scenario.node("g4", "g4dn.2xlarge")
    scenario.apply_config(ex)
    scenario.start_driver()
    scenario.wait_slices(1)

    scenario.create_all(ex)
    devices = set()
    for name in ("gpu-job-a", "gpu-job-b"):
        pod = scenario.wait_running(name)
        assert pod["spec"]["nodeName"] == node
        [status] = pod["status"]["resourceClaimStatuses"]
        [claim] = scenario.allocated(pod)
        assert claim["metadata"]["name"] == status["resourceClaimName"]
        [owner] = claim["metadata"]["ownerReferences"]  # created by kube-controller-manager for this pod
        assert (owner["kind"], owner["name"], owner["uid"], owner.get("controller")) == (
            "Pod", name, pod["metadata"]["uid"], True)
        [result] = results(claim)
        assert result["pool"] == f"{node}/gpu"
        devices.add(device_key(result))
    assert len(devices) == 2


def test_removing_a_device_type_from_the_config(scenario):
    before, after = scenario.load("03-gpu-and-fpga"), scenario.load("08-config-change")
    node = scenario.node("gpu-fpga", labels={"accelerator-type": "gpu-fpga"})
    gpu_driver, fpga_driver = before.driver(GPU_DRIVER), before.driver(FPGA_DRIVER)
    scenario.apply_config(before)
    scenario.start_driver()
    scenario.wait_slices(2)
    scenario.create_all(before)
    pod = scenario.wait_running("gpu-and-fpga")
    [claim] = scenario.allocated(pod)
    assert {r["driver"] for r in results(claim)} == {gpu_driver, fpga_driver}
    gpu_slices = scenario.slices(gpu_driver)

    scenario.apply_config(after)  # the fpga mapping is gone
    wait_for(lambda: not scenario.slices(fpga_driver), timeout=10, message="the FPGA slices deleted")
    assert scenario.slices(gpu_driver) == gpu_slices  # the GPU slices untouched (same resourceVersion)

    scenario.create_all(after)  # a new pod that asks for an FPGA
    scenario.wait_unschedulable("fpga-late")

    # the pod that was bound keeps its node, its claim keeps its allocation; nothing of theirs is deleted
    pod_now, claim_now = scenario.get("Pod", "gpu-and-fpga"), scenario.get("ResourceClaim", claim["metadata"]["name"])
    assert pod_now["metadata"]["uid"] == pod["metadata"]["uid"] and pod_now["spec"]["nodeName"] == node
    assert "deletionTimestamp" not in pod_now["metadata"] and "deletionTimestamp" not in claim_now["metadata"]
    assert claim_now["metadata"]["uid"] == claim["metadata"]["uid"]
    assert claim_now["status"] == claim["status"]


def test_node_deletion_removes_its_slices_by_the_controller_and_by_garbage_collection(scenario, api):
    ex = scenario.load("01-one-gpu")
    core = client.CoreV1Api(api)
    a, b = scenario.node("a", "g4dn.xlarge"), scenario.node("b", "g4dn.xlarge")
    scenario.apply_config(ex)
    driver = scenario.start_driver()
    scenario.wait_slices(2)
    for name in (a, b):
        [s] = scenario.slices(node=name)
        [owner] = s["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Node", name, core.read_node(name).metadata.uid)
    slice_b = scenario.slices(node=b)

    # 1. By dra-kwok: with kube-controller-manager (and so its garbage collector) stopped, only the driver can
    #    remove the slices of a deleted node.
    cp = scenario.cp
    cp.stop_component("kube-controller-manager")
    try:
        deletes = metric(_http(driver["metrics"]), "dra_kwok_resourceslice_writes_total", verb="delete")
        core.delete_node(a)
        wait_for(lambda: not scenario.slices(node=a), timeout=10, message=f"dra-kwok deletes the slices of {a}")
        # the slice is gone on the server a moment before the driver's thread counts its DELETE: wait, not assert
        wait_for(lambda: metric(_http(driver["metrics"]), "dra_kwok_resourceslice_writes_total",
                                verb="delete") >= deletes + 1, timeout=5, message="the DELETE is counted")
        assert metric(_http(driver["metrics"]), "dra_kwok_resourceslice_writes_total", verb="delete") == deletes + 1
        assert scenario.slices(node=b) == slice_b
    finally:
        cp.start_controller_manager()

    # 2. By garbage collection: with the driver stopped, the owner reference to the Node is enough.
    scenario.stop_driver()
    assert scenario.slices(node=b) == slice_b  # stopping the driver deletes nothing
    core.delete_node(b)
    wait_for(lambda: not scenario.slices(node=b), timeout=60, interval=0.2,
             message=f"the garbage collector deletes the slices of {b}")


def _http(url: str) -> str:
    return http_get(url)[1]
