"""nvidia-gpu against real-drivers.md §1, by value: the golden files (§1.8's 8xH100 DynamicMIG node and the
other modes), the 1.34 combined layout, the relations the reference states, and parameter errors."""

from __future__ import annotations

import pytest

from dra_kwok.slices.profiles import PROFILES, check_pool
from tests.unit.slices.profiles.support import NAMES, check_golden, devices, load, mismatches, render

NVIDIA = PROFILES["nvidia-gpu"]


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("nvidia-gpu")])
def test_one_node_matches_the_reference(name: str) -> None:
    check_golden(name)


def test_dynamic_mig_on_1_35_is_9_slices_208_devices_8_counter_sets_of_15() -> None:
    """§1.6/§1.8: slice 0 holds the 8 counter sets and no devices; then one slice of 26 devices per GPU."""
    slices = NVIDIA.render({"mode": "dynamic-mig"}, "h100-node-1", "uid", 35).slices
    assert [len(s.get("devices") or ()) for s in slices] == [0] + [26] * 8
    assert [len(s.get("sharedCounters") or ()) for s in slices] == [8] + [0] * 8
    assert {len(c["counters"]) for c in slices[0]["sharedCounters"]} == {15}
    assert check_pool(slices, 35) == []


def test_dynamic_mig_before_1_35_combines_each_gpus_counter_set_with_its_devices() -> None:
    """§1.6 "combined": G slices, each the GPU's counter set + its 26 devices; same devices as the 1.35 golden."""
    doc = load("nvidia-gpu-dynamic-mig-h100-k135")
    counters, per_gpu = doc["slices"][0]["sharedCounters"], doc["slices"][1:]
    expected = [{"sharedCounters": [c], "devices": s["devices"]} for c, s in zip(counters, per_gpu, strict=True)]
    actual = render(doc, k8s_minor=34)
    assert mismatches(expected, actual, "slices") == []
    assert check_pool(actual, 34) == []
    assert check_pool(actual, 35) != []  # the same layout is invalid on 1.35 (devices and counters in one slice)


def test_mig_devices_name_their_parent_gpu_and_the_full_gpu_consumes_every_counter() -> None:
    slices = NVIDIA.render({"mode": "dynamic-mig"}, "h100-node-1", "uid", 35).slices
    for gpu_slice, counter_set in zip(slices[1:], slices[0]["sharedCounters"], strict=True):
        gpu, *migs = gpu_slice["devices"]
        assert gpu["consumesCounters"] == [{"counterSet": counter_set["name"], "counters": counter_set["counters"]}]
        assert {m["attributes"]["parentUUID"]["string"] for m in migs} == {gpu["attributes"]["uuid"]["string"]}
        assert all("uuid" not in m["attributes"] for m in migs)  # §1.3: not on dynamic MIG devices


def test_a100_dynamic_mig_publishes_no_full_gpu_but_its_counter_set() -> None:
    out = NVIDIA.render({"mode": "dynamic-mig", "model": "A100-SXM4-40GB"}, "a100-node-1", "uid", 35)
    assert out.device_count == 8 * 25 and len(out.counter_sets) == 8
    assert not [d for d in devices(out.slices) if d["attributes"]["type"]["string"] == "gpu"]


@pytest.mark.parametrize("shares, memory_policy", [
    ("unlimited", {"default": "0", "validRange": {"min": "0", "max": "81559Mi", "step": "1Mi"}}),
    ("memory", {"default": "81559Mi", "validRange": {"min": "1Mi", "max": "81559Mi", "step": "1Mi"}}),
])
def test_consumable_shares_policies(shares: str, memory_policy: dict) -> None:
    """§1.7: unlimited -> default 0, 0..mem step 1Mi; memory -> default = max, 1Mi..mem; no shares capacity."""
    (device,) = devices(NVIDIA.render({"count": 1, "consumableShares": shares}, "n", "uid", 35).slices)
    assert device["allowMultipleAllocations"] is True
    assert device["capacity"] == {"memory": {"value": "81559Mi", "requestPolicy": memory_policy}}


def test_consumable_shares_apply_to_dynamic_mig_devices_too() -> None:
    out = NVIDIA.render({"mode": "dynamic-mig", "consumableShares": "memory"}, "n", "uid", 36)
    mig = next(d for d in devices(out.slices) if d["name"] == "gpu-0-mig-1g10gb-19-0")
    assert mig["capacity"]["memory"]["requestPolicy"]["default"] == "9984Mi"
    assert check_pool(out.slices, 36) == []


def test_non_fatal_xid_gets_effect_none_which_1_34_refuses() -> None:
    out = NVIDIA.render({"count": 1, "healthTaints": ["gpu-0=xid:13"]}, "n", "uid", 34)
    assert devices(out.slices)[0]["taints"] == [{"key": "gpu.nvidia.com/xid", "value": "13", "effect": "None"}]
    assert check_pool(out.slices, 34) == ["slice 0: device gpu-0.taints: effect 'None' is not valid on 1.34 "
                                          "(NoSchedule, NoExecute)"]


@pytest.mark.parametrize("params, problem", [
    ({"model": "H200"}, "profile.model: unknown value 'H200'; known: H100-80GB, A100-SXM4-40GB"),
    ({"mode": "mig"}, "profile.mode: unknown value 'mig'; known: full, static-mig, dynamic-mig"),
    ({"count": 9}, "profile.count: 9 is out of range; use 1..8"),
    ({"consumableShares": 1}, "profile.consumableShares: 1 is out of range; use disabled, unlimited, memory or an "
                              "integer >= 2"),
    ({"mode": "static-mig", "migLayout": "5g.50gb"},
     "profile.migLayout: unknown MIG profile '5g.50gb' for this model; known: 1g.10gb, 1g.10gb+me, 1g.20gb, "
     "2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb (or all-1g, all-balanced, all-7g)"),
    ({"migLayout": "all-7g"}, "profile.migLayout: only used with mode: static-mig"),
    ({"mode": "dynamic-mig", "healthTaints": ["gpu-0=gpu-lost"]},
     "profile.healthTaints: the driver's health check (NVMLDeviceHealthCheck) is mutually exclusive with "
     "DynamicMIG; use mode full or static-mig"),
    ({"healthTaints": ["gpu-0:79"]},
     "profile.healthTaints: 'gpu-0:79' is not <device>=xid:<N>, <device>=gpu-lost or <device>=unmonitored"),
    ({"count": 2, "healthTaints": ["gpu-5=gpu-lost"]},
     "profile.healthTaints: 'gpu-5=gpu-lost': no device 'gpu-5' on a node (devices: gpu-0, gpu-1, ...)"),
    ({"driver": "Gpu_Nvidia"}, "profile.driver: "),
])
def test_bad_parameters_name_the_field_and_the_allowed_values(params: dict, problem: str) -> None:
    problems = NVIDIA.validate_params(params)
    assert any(p.startswith(problem) for p in problems), problems


def test_static_mig_layouts_are_placed_where_they_fit() -> None:
    names = [d["name"] for d in devices(NVIDIA.render(
        {"count": 1, "mode": "static-mig", "migLayout": "all-balanced"}, "n", "u", 35).slices)]
    # mig-parted all-balanced (2x1g.10gb, 2g.20gb, 3g.40gb): the only layouts that fit put 3g.40gb at 4
    assert names == ["gpu-0-mig-1g10gb-19-2", "gpu-0-mig-1g10gb-19-3", "gpu-0-mig-2g20gb-14-0",
                     "gpu-0-mig-3g40gb-9-4"]
    assert NVIDIA.validate_params({"mode": "static-mig", "migLayout": "3g.40gb,3g.40gb,1g.10gb"}) == [
        "profile.migLayout: '3g.40gb,3g.40gb,1g.10gb' does not fit on one GPU (at most 7 instances over 8 memory "
        "slices)"]
