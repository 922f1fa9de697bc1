"""amd-gpu against real-drivers.md §5, by value."""

from __future__ import annotations

import pytest

from dra_kwok.slices.profiles import PROFILES
from tests.unit.slices.profiles.support import NAMES, check_golden, devices


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("amd-gpu")])
def test_one_node_matches_the_reference(name: str) -> None:
    check_golden(name)


def test_partitions_carry_their_parents_address_and_share_the_gpu() -> None:
    slices = PROFILES["amd-gpu"].render({"partitionProfile": "cpx_nps4"}, "n", "u", 35).slices
    parts = devices(slices)
    assert len(parts) == 64 and len({d["name"] for d in parts}) == 64
    parents = {d["attributes"]["parentPciAddr"]["string"] for d in parts}
    assert len(parents) == 8
    whole = devices(PROFILES["amd-gpu"].render({}, "n", "u", 35).slices)
    assert {d["attributes"]["pciAddr"]["string"] for d in whole} == parents
