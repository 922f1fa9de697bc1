"""intel-gpu against real-drivers.md §5, by value."""

from __future__ import annotations

from dra_kwok.slices.profiles import PROFILES
from tests.unit.slices.profiles.support import check_golden, devices


def test_one_node_matches_the_reference() -> None:
    check_golden("intel-gpu")


def test_name_is_pci_address_and_device_id() -> None:
    """§5: `<PCI address with :/. -> ->>-<PCI device id>`, one slice."""
    slices = PROFILES["intel-gpu"].render({"count": 3}, "n", "u", 35).slices
    assert len(slices) == 1
    for d in devices(slices):
        address = d["attributes"]["pciAddress"]["string"]
        assert d["name"] == address.replace(":", "-").replace(".", "-") + "-0xe211"
    assert PROFILES["intel-gpu"].validate_params({"model": "A770"}) == [
        "profile.model: unknown value 'A770'; known: B60"]
