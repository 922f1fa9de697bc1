"""example-gpu against real-drivers.md §2, by value."""

from __future__ import annotations

import pytest

from dra_kwok.slices.profiles import PROFILES, check_pool
from tests.unit.slices.profiles.support import NAMES, check_golden, devices

EXAMPLE = PROFILES["example-gpu"]


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("example-gpu")])
def test_one_node_matches_the_reference(name: str) -> None:
    check_golden(name)


def test_partitions_before_1_35_share_one_slice_with_their_counters() -> None:
    """A 1.34 apiserver resolves consumesCounters only within the slice (§7.3), so both go into one."""
    slices = EXAMPLE.render({"count": 2, "partitions": 2}, "kind-worker", "u", 34).slices
    assert len(slices) == 1 and len(slices[0]["sharedCounters"]) == 2 and len(slices[0]["devices"]) == 6
    assert check_pool(slices, 34) == []


def test_allow_multiple_allocations_adds_request_policies() -> None:
    """§2: memory range min 1Gi / step 1Gi / max = value, default = value; compute min 1 / step 1."""
    device = devices(EXAMPLE.render({"count": 1, "allowMultipleAllocations": True}, "n", "u", 36).slices)[0]
    assert device["allowMultipleAllocations"] is True
    assert device["capacity"] == {
        "compute": {"value": "100", "requestPolicy": {"default": "100", "validRange": {"min": "1", "step": "1"}}},
        "memory": {"value": "80Gi", "requestPolicy": {"default": "80Gi",
                                                      "validRange": {"min": "1Gi", "max": "80Gi", "step": "1Gi"}}},
    }
    assert check_pool([{"devices": [device]}], 36) == []


@pytest.mark.parametrize("params, problem", [
    ({"count": 9, "partitions": 2}, "profile.count: 9 GPUs with partitions need 9 counter sets; one slice holds at "
                                    "most 8 (use count <= 8)"),
    ({"count": 8, "partitions": 8}, "profile.partitions: 8 GPUs x (8 partitions + full) = 72 devices consuming "
                                    "counters; a slice holds at most 64 such devices"),
    ({"allowMultipleAllocations": "yes"}, "profile.allowMultipleAllocations: 'yes' is not a boolean; use true or "
                                          "false"),
    ({"colour": "red"}, "profile.colour: unknown parameter of profile example-gpu; known: driver, count, "
                        "partitions, allowMultipleAllocations"),
])
def test_bad_parameters(params: dict, problem: str) -> None:
    assert problem in EXAMPLE.validate_params(params)
