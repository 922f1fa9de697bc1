"""End to end: claims written as each real DRA driver's documentation writes them select and allocate the devices of
dra-kwok's built-in profiles (`profile:` in a mapping), with the real kube-scheduler.

Each test applies one documented example of examples/scheduling/ (20-nvidia-gpu, 21-nvidia-mig, 22-cpu, 23-nic).
The DeviceClasses select on the real driver names (`device.driver == "gpu.nvidia.com"`), which the examples keep;
tests/e2e/support.py reads a real driver's slices on the test's own nodes only. Where a profile needs a feature
gate that is off by default on the cluster's version (DynamicMIG counters: DRAPartitionableDevices; the CPU groups'
consumable capacity: DRAConsumableCapacity; both on by default from 1.36), the test asserts the documented
behaviour there instead: `validate` warns naming the gate, dra-kwok publishes, the apiserver stores the slices without
the gated fields, dra-kwok records a DroppedFields Warning Event, and the scheduler allocates what was stored (the MIG
partitions and the full GPU become independent devices; a CPU group goes whole to one claim).
"""

from __future__ import annotations

from dra_kwok.slices.features import Version
from dra_kwok.testing.controlplane import k8s_version
from tests.e2e.support import assert_dropped_on_this_cluster, device_key, published_devices, results

CLUSTER = Version.parse(k8s_version())


def _started(scenario, name: str, suffix: str, instance_type: str):
    """Apply example `name` for one KWOK node of `instance_type` and start dra-kwok: (example, node)."""
    ex = scenario.load(name)
    node = scenario.node(suffix, instance_type)
    scenario.apply_config(ex)
    scenario.start_driver()
    return ex, node


def test_nvidia_gpu_claim_on_product_name(scenario):
    ex = scenario.load("20-nvidia-gpu")
    h100 = scenario.node("h100", "p5.48xlarge")
    a100 = scenario.node("a100", "p4d.24xlarge")
    scenario.apply_config(ex)
    scenario.start_driver()
    slices = scenario.wait_slices(2)  # one slice per node: 8 full GPUs each (§1.6, no DynamicMIG)
    published = published_devices(slices)
    assert sorted(published) == sorted([("gpu.nvidia.com", f"{h100}/h100", f"gpu-{i}") for i in range(8)]
                                       + [("gpu.nvidia.com", f"{a100}/a100", f"gpu-{i}") for i in range(8)])
    products = {pool: dev["attributes"]["productName"]["string"] for (_, pool, _), (dev, _) in published.items()}
    assert products == {f"{h100}/h100": "NVIDIA H100 80GB HBM3", f"{a100}/a100": "NVIDIA A100-SXM4-40GB"}

    scenario.create_all(ex)
    pod = scenario.wait_running("one-h100")

    assert pod["spec"]["nodeName"] == h100
    [claim] = scenario.allocated(pod)
    [result] = results(claim)
    assert (result["driver"], result["pool"]) == ("gpu.nvidia.com", f"{h100}/h100")
    device, _ = published[device_key(result)]
    assert device["attributes"]["type"] == {"string": "gpu"}
    assert device["attributes"]["uuid"]["string"].startswith("GPU-")


def test_mig_claim_blocks_the_full_gpu(scenario):
    ex, node = _started(scenario, "21-nvidia-mig", "h100", "p5.4xlarge")
    if not CLUSTER.on("DRAPartitionableDevices"):  # 1.34/1.35 defaults: the counters are dropped
        stored = assert_dropped_on_this_cluster(scenario, ex, "DRAPartitionableDevices",
                                                ["sharedCounters", "devices[].consumesCounters"])
        assert len(published_devices(stored)) == 26
        scenario.create_all(ex)  # the MIG device and the full GPU: both allocated, nothing shared any more
        assert {scenario.wait_running(p)["spec"]["nodeName"] for p in ("mig", "full-gpu")} == {node}
        return
    slices = scenario.wait_slices(2, node=node)  # 1.35+: the counters slice, then GPU 0's 26 devices (§1.6)
    assert [[c["name"] for c in s["spec"].get("sharedCounters") or []] for s in slices] == [["gpu-0-counter-set"], []]
    published = published_devices(slices)
    assert len(published) == 26

    scenario.create_all(ex, "DeviceClass", "ResourceClaim")
    scenario.create(ex.get("Pod", "mig"))
    mig = scenario.wait_running("mig")
    [claim] = scenario.allocated(mig)
    [result] = results(claim)
    assert result["device"].startswith("gpu-0-mig-1g10gb-19-"), result  # §1.2: gpu-<minor>-mig-<profile>-<gi>-<start>
    device, _ = published[device_key(result)]
    assert device["attributes"]["profile"] == {"string": "1g.10gb"}

    scenario.create(ex.get("Pod", "full-gpu"))  # gpu-0 consumes every counter, one memory slice of which is taken
    scenario.wait_unschedulable("full-gpu")
    assert mig["spec"]["nodeName"] == node


def test_cpu_claims_consume_capacity(scenario):
    ex, node = _started(scenario, "22-cpu", "cpu", "c7i.32xlarge")
    if not CLUSTER.on("DRAConsumableCapacity"):  # 1.34/1.35 defaults: allowMultipleAllocations is dropped
        assert_dropped_on_this_cluster(scenario, ex, "DRAConsumableCapacity", ["devices[].allowMultipleAllocations"])
        scenario.create_all(ex)  # each claim takes a whole NUMA group (the capacity request is dropped too)
        used = sorted(results(scenario.allocated(scenario.wait_running(p))[0])[0]["device"] for p in ("cpus-a", "cpus-b"))
        assert used == ["cpudevnuma000", "cpudevnuma001"]
        scenario.wait_unschedulable("cpus-c")
        return
    [cpu_slice] = scenario.wait_slices(1, node=node)
    devices = {d["name"]: d for d in cpu_slice["spec"]["devices"]}
    assert {n: d["capacity"]["dra.cpu/cpu"]["value"] for n, d in devices.items()} == {
        "cpudevnuma000": "64", "cpudevnuma001": "64"}

    scenario.create_all(ex, "DeviceClass", "ResourceClaim")
    used = []
    for name in ("cpus-a", "cpus-b"):  # one at a time: 40 of 64 fit once per NUMA group
        scenario.create(ex.get("Pod", name))
        pod = scenario.wait_running(name)
        [claim] = scenario.allocated(pod)
        [result] = results(claim)
        assert result["driver"] == "dra.cpu" and result["pool"] == f"{node}/cpus"
        assert result["consumedCapacity"] == {"dra.cpu/cpu": "40"}
        used.append(result["device"])
    assert sorted(used) == ["cpudevnuma000", "cpudevnuma001"]

    scenario.create(ex.get("Pod", "cpus-c"))  # 24 CPUs left in each group
    scenario.wait_unschedulable("cpus-c")


def test_nic_claim_on_rdma(scenario):
    ex, node = _started(scenario, "23-nic", "nics", "BM.GPU.H100.8")  # attributes only: every version
    [nic_slice] = scenario.wait_slices(1, node=node)
    published = published_devices([nic_slice])
    assert [dev for _, _, dev in published] == ["pci-0000-1a-00-0", "pci-0000-3c-00-0", "pci-0000-9a-00-0",
                                               "pci-0000-bc-00-0"]

    scenario.create_all(ex)
    pod = scenario.wait_running("rdma")

    [claim] = scenario.allocated(pod)
    got = sorted(r["device"] for r in results(claim))
    assert got == ["pci-0000-9a-00-0", "pci-0000-bc-00-0"]  # the two NICs of NUMA node 1 (§4 worked example)
    for r in results(claim):
        device, _ = published[device_key(r)]
        assert device["attributes"]["dra.net/rdma"] == {"bool": True}
        assert device["attributes"]["resource.kubernetes.io/numaNode"] == {"int": 1}
