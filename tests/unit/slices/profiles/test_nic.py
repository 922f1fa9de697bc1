"""nic (dranet) against real-drivers.md §4, by value."""

from __future__ import annotations

from dra_kwok.slices.profiles import PROFILES
from tests.unit.slices.profiles.support import check_golden, devices

NIC = PROFILES["nic"]


def test_one_node_matches_the_reference() -> None:
    check_golden("nic")


def test_no_capacity_counters_or_taints_and_sorted_by_name() -> None:
    """§4: no capacity on NICs, no counters/taints; one slice sorted by device name."""
    slices = NIC.render({"count": 8, "model": "ConnectX-8"}, "n", "u", 35).slices
    names = [d["name"] for d in devices(slices)]
    assert len(slices) == 1 and names == sorted(names) and len(set(names)) == 8
    assert all(set(d) == {"name", "attributes"} for d in devices(slices))
    assert {d["attributes"]["dra.net/pciDevice"]["string"] for d in devices(slices)} == {"CX8 Family [ConnectX-8]"}
