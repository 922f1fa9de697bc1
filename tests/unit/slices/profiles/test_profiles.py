"""Every profile x variant: the pool passes the structural rules of each apiserver version (check_pool, and
dra_kwok.slices.rules.validate_slice for the fields it knows), illustrative values are unique and stable,
parameters are validated, the generated golden files are the reference's expansion, and the golden comparison
does fail when a value changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dra_kwok.slices.profiles import PROFILES, check_pool, get_profile
from dra_kwok.slices.rules import Version, validate_slice
from tests.unit.slices.profiles import reference
from tests.unit.slices.profiles.support import devices, load, mismatches, render

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("nvidia-gpu", {}),
    ("nvidia-gpu", {"model": "A100-SXM4-40GB"}),
    ("nvidia-gpu", {"mode": "static-mig"}),
    ("nvidia-gpu", {"mode": "static-mig", "migLayout": "all-balanced", "consumableShares": 8}),
    ("nvidia-gpu", {"mode": "dynamic-mig"}),
    ("nvidia-gpu", {"mode": "dynamic-mig", "model": "A100-SXM4-40GB", "consumableShares": "unlimited"}),
    ("nvidia-gpu", {"healthTaints": ["gpu-0=xid:79", "gpu-7=gpu-lost"]}),
    ("example-gpu", {}),
    ("example-gpu", {"partitions": 4}),
    ("example-gpu", {"count": 128}),
    ("example-gpu", {"allowMultipleAllocations": True}),
    ("cpu", {}),
    ("cpu", {"mode": "individual", "sockets": 4, "coresPerSocket": 96}),
    ("cpu", {"groupBy": "socket", "smt": False}),
    ("cpu", {"groupBy": "machine"}),
    ("nic", {}),
    ("nic", {"count": 8, "model": "ConnectX-8", "mtu": 1500}),
    ("intel-gpu", {"count": 16}),
    ("amd-gpu", {}),
    ("amd-gpu", {"partitionProfile": "cpx_nps4"}),
    ("amd-gpu", {"partitionProfile": "dpx_nps1", "count": 3}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in params.items()) or 'defaults'}" for name, params in VARIANTS]
ALPHA = ("taints", "consumesCounters", "allowMultipleAllocations", "sharedCounters", "requestPolicy")


def test_every_profile_has_variants_here() -> None:
    assert {name for name, _ in VARIANTS} == set(PROFILES)


@pytest.mark.parametrize("name, params", VARIANTS, ids=IDS)
@pytest.mark.parametrize("minor", [34, 35, 36, 37])
def test_the_pool_meets_the_apiservers_structural_rules(name: str, params: dict, minor: int) -> None:
    profile = PROFILES[name]
    assert profile.validate_params(params) == []
    slices = profile.render(params, "node-a", "uid", minor).slices
    assert check_pool(slices, minor) == []
    assert devices(slices), "a profile with no devices"


@pytest.mark.parametrize("minor", [35, 36, 37])
@pytest.mark.parametrize("name, params", VARIANTS, ids=IDS)
def test_validate_slice_accepts_every_profile_slice(name: str, params: dict, minor: int) -> None:
    """rules.validate_slice with the default gates of 1.<minor> (taints, counters, allowMultipleAllocations are beta
    and on from 1.36; on 1.35 they are alpha and refused, naming their gate; nothing else may be wrong)."""
    for i, spec in enumerate(PROFILES[name].render(params, "node-a", "uid", minor).slices):
        body = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": f"s-{i}"},
                "spec": {"driver": PROFILES[name].default_driver, "nodeName": "node-a",
                         "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1}, **spec}}
        problems = [p for p in validate_slice(body, Version(minor)) if p.severity == "error"]
        if minor >= 36:
            assert problems == []
        else:
            assert [p for p in problems if not any(f in p.path for f in ALPHA)] == []
            assert all("feature gate DRA" in p.message for p in problems)


@pytest.mark.parametrize("name, params", VARIANTS, ids=IDS)
def test_illustrative_identifiers_are_unique_per_node_and_device_and_stable(name: str, params: dict) -> None:
    """UUIDs and MACs: never repeated on another node or under another driver name; within a node one per device
    (example-gpu partitions carry their GPU's uuid)."""
    profile = PROFILES[name]
    keys = ("uuid", "dra.net/mac")

    def identifiers(node: str, driver_params: dict) -> list[str]:
        slices = profile.render({**params, **driver_params}, node, "uid-1", 35).slices
        assert profile.render({**params, **driver_params}, node, "uid-2", 35).slices == slices  # name, not uid
        return [d["attributes"][k]["string"] for d in devices(slices) for k in keys if k in d["attributes"]]

    a, b = identifiers("node-a", {}), identifiers("node-b", {})
    other = identifiers("node-a", {"driver": "gpu.other-vendor.example"})
    assert not set(a) & set(b) and not set(a) & set(other)
    if not params.get("partitions"):
        assert len(a) == len(set(a))


def test_bus_ids_are_unique_within_a_node() -> None:
    out = PROFILES["nvidia-gpu"].render({}, "n", "u", 35)
    buses = [d["attributes"]["resource.kubernetes.io/pciBusID"]["string"] for d in devices(out.slices)]
    assert len(set(buses)) == 8


def test_generated_golden_files_are_the_references_expansion() -> None:
    for name in reference.GENERATED:
        assert (reference.GOLDEN / f"{name}.yaml").read_text() == reference.golden_text(name), (
            f"{name}.yaml was edited by hand or reference.py changed: run python -m tests.unit.slices.profiles.reference")


@pytest.mark.parametrize("path, value", [
    (("devices", 1, "capacity", "memory", "value"), "9983Mi"),
    (("devices", 0, "attributes", "architecture", "string"), "Ampere"),
    (("devices", 0, "consumesCounters", 0, "counters", "memory-slice-7", "value"), "0"),
    (("devices", 8, "attributes", "profile", "string"), "1g.10gb"),
])
def test_a_change_that_breaks_fidelity_is_caught(path: tuple, value: Any) -> None:
    """The golden comparison is not vacuous: one changed value in the rendered slices is a difference (reported
    wherever the value is shared: the profile shares node-independent sub-objects between devices)."""
    doc = load("nvidia-gpu-dynamic-mig-h100-k135")
    actual = copy.deepcopy(render(doc))
    target = actual[1]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert repr(value) in mismatches(doc["slices"], actual, "slices")[0]


def test_reordered_devices_or_a_dropped_attribute_are_caught() -> None:
    doc = load("nvidia-gpu-full-h100")
    actual = copy.deepcopy(render(doc))
    actual[0]["devices"].reverse()
    assert mismatches(doc["slices"], actual, "slices")
    actual = copy.deepcopy(render(doc))
    del actual[0]["devices"][0]["attributes"]["brand"]
    assert mismatches(doc["slices"], actual, "slices") == ["slices[0].devices[gpu-0].attributes.brand: missing"]
    actual = copy.deepcopy(render(doc))
    actual[0]["devices"][0]["attributes"]["resource.kubernetes.io/numaNode"] = {"int": False}
    assert mismatches(doc["slices"], actual, "slices")  # False == 0 in Python; the comparison checks types


@pytest.mark.parametrize("slices, minor, problem", [
    ([{"devices": [{"name": "a"}]}, {"devices": [{"name": "a"}]}], 35, "slice 1: device a: duplicate device name"),
    ([{"devices": [{"name": "A_1"}]}], 35, "slice 0: device A_1.name: "),
    ([{"devices": [{"name": "a", "consumesCounters": [{"counterSet": "x", "counters": {"c": {"value": "1"}}}]}]}],
     35, "slice 0: device a: counter set 'x' is not defined in the pool"),
    ([{"sharedCounters": [{"name": "x", "counters": {"c": {"value": "1"}}}]},
      {"devices": [{"name": "a", "consumesCounters": [{"counterSet": "x", "counters": {"c": {"value": "2"}}}]}]}],
     35, "slice 1: device a: consumes 2 of x/c, which has 1"),
    ([{"sharedCounters": [{"name": "x", "counters": {"c": {"value": "1"}}}]},
      {"devices": [{"name": "a", "consumesCounters": [{"counterSet": "x", "counters": {"c": {"value": "1"}}}]}]}],
     34, "slice 1: device a: counter set 'x' must be in the same slice on 1.34"),
    ([{"sharedCounters": [{"name": "x", "counters": {}}], "devices": [{"name": "a"}]}], 35,
     "slice 0: devices and sharedCounters in one slice"),
    ([{"sharedCounters": [{"name": f"s{i}", "counters": {}} for i in range(9)]}], 35, "slice 0: 9 counter sets"),
    ([{"devices": [{"name": f"d{i}", "taints": [{"key": "k", "effect": "NoSchedule"}]} for i in range(65)]}], 35,
     "slice 0: 65 devices; at most 64"),
    ([{"devices": [{"name": f"d{i}"} for i in range(129)]}], 35, "slice 0: 129 devices; at most 128"),
    ([{"devices": [{"name": "a", "attributes": {f"a{i}": {"int": i} for i in range(33)}}]}], 35,
     "slice 0: device a: 33 attributes and capacities; at most 32"),
    ([{"devices": [{"name": "a", "attributes": {"s": {"string": "x" * 65}}}]}], 35,
     "slice 0: device a.attributes[s]: string longer than 64 bytes"),
    ([{"devices": [{"name": "a", "capacity": {"m": {"value": "1Gi", "requestPolicy": {"default": "1"}}}}]}], 35,
     "slice 0: device a.capacity[m].requestPolicy: only with allowMultipleAllocations: true"),
])
def test_check_pool_finds_what_the_apiserver_refuses(slices: list, minor: int, problem: str) -> None:
    assert any(p.startswith(problem) for p in check_pool(slices, minor)), check_pool(slices, minor)


def test_unknown_profile_lists_the_known_ones() -> None:
    assert get_profile("nvidia") == (None, ["profile.name: unknown profile 'nvidia'; known: nvidia-gpu, example-gpu, "
                                            "cpu, nic, intel-gpu, amd-gpu"])
    assert get_profile("cpu")[0] is PROFILES["cpu"]
    assert PROFILES["cpu"].validate_params({"name": "cpu", "mode": "grouped"}) == []
