"""The feature-gate table (real-drivers.md §7.1, §7.2), by value."""

from __future__ import annotations

import pytest

from dra_kwok.slices.features import FEATURES, Version, default_on_since, enabled, gate_of

# §7.1, row by row: gate -> stage/default per 1.34..1.37 ("-": the gate does not exist).
TABLE = {
    "DRADeviceTaints": ["alpha off", "alpha off", "beta on", "GA on"],
    "DRADeviceTaintRules": ["-", "alpha off", "beta off", "GA on"],
    "DRAPartitionableDevices": ["alpha off", "alpha off", "beta on", "beta on"],
    "DRAConsumableCapacity": ["alpha off", "alpha off", "beta on", "beta on"],
    "DRAFractionalCapacityRange": ["-", "-", "-", "beta on"],
    "DRADeviceBindingConditions": ["alpha off", "alpha off", "beta on", "beta on"],
    "DRAResourceClaimDeviceStatus": ["beta on", "beta on", "beta on", "GA-locked on"],
    "DRAListTypeAttributes": ["-", "-", "alpha off", "alpha off"],
    "DRANodeAllocatableResources": ["-", "-", "alpha off", "alpha off"],
    "DRAPartitionableDevicesType": ["-", "-", "-", "alpha off"],
    "DRADeviceCompatibilityGroups": ["-", "-", "-", "alpha off"],
    "DRAOptionalNodeOperations": ["-", "-", "-", "alpha off"],
    "DRAResourcePoolStatus": ["-", "-", "alpha off", "alpha off"],
    "DynamicResourceAllocation": ["GA on", "GA-locked on", "GA-locked on", "GA-locked on"],
}


def _cell(gate: str, minor: int) -> str:
    stage = FEATURES[gate].stages.get(minor)
    return "-" if stage is None else f"{stage[0]} {'on' if stage[1] else 'off'}"


def test_the_table_is_section_7_1() -> None:
    assert {gate: [_cell(gate, m) for m in (34, 35, 36, 37)] for gate in FEATURES} == TABLE


def test_fields_and_what_an_apiserver_without_the_gate_does() -> None:
    assert gate_of("devices[].taints") == "DRADeviceTaints"
    assert gate_of("sharedCounters") == gate_of("devices[].consumesCounters") == "DRAPartitionableDevices"
    assert gate_of("perDeviceNodeSelection") == gate_of("devices[].allNodes") == "DRAPartitionableDevices"
    assert gate_of("devices[].capacity{}.requestPolicy") == "DRAConsumableCapacity"
    assert gate_of("devices[].bindingConditions") == "DRADeviceBindingConditions"
    assert FEATURES["DRADeviceBindingConditions"].requires == ("DRAResourceClaimDeviceStatus",)
    assert gate_of("devices[].attributes{}.strings") == "DRAListTypeAttributes"
    # skipNodeOperations is a slice field (ResourceSliceSpec), not a device field
    assert gate_of("skipNodeOperations") == "DRAOptionalNodeOperations"
    assert gate_of("partitionTypeAttribute") == "DRAPartitionableDevicesType"
    assert gate_of("devices[].consumesCounters[].compatibilityGroups") == "DRADeviceCompatibilityGroups"
    assert gate_of("devices[].nodeAllocatableResources") == "DRANodeAllocatableResources"
    assert {g for g, f in FEATURES.items() if f.when_off == "reject"} == {"DRAListTypeAttributes",
                                                                         "DynamicResourceAllocation"}


def test_enabled_by_default() -> None:
    assert enabled(34) == {"DRAResourceClaimDeviceStatus", "DynamicResourceAllocation"}
    assert enabled(35) == enabled(34)
    slice_features = {"DRADeviceTaints", "DRAPartitionableDevices", "DRAConsumableCapacity",
                      "DRADeviceBindingConditions", "DRAResourceClaimDeviceStatus", "DynamicResourceAllocation"}
    assert enabled(36) == slice_features
    assert enabled(37) == slice_features | {"DRADeviceTaintRules", "DRAFractionalCapacityRange"}
    assert default_on_since("DRADeviceTaints") == 36
    assert default_on_since("DRADeviceTaintRules") == 37
    assert default_on_since("DRAListTypeAttributes") is None


def test_overrides() -> None:
    assert "DRADeviceTaints" in enabled(34, {"DRADeviceTaints": True})
    assert "DRAConsumableCapacity" not in enabled(37, {"DRAConsumableCapacity": False})
    # a gate whose prerequisite is off is off
    assert "DRADeviceBindingConditions" not in enabled(36, {"DRAResourceClaimDeviceStatus": False})
    assert "DRAFractionalCapacityRange" not in enabled(37, {"DRAConsumableCapacity": False})
    # kube_features.go: DRAPartitionableDevicesType depends on DRAResourcePoolStatus too
    assert "DRAPartitionableDevicesType" not in enabled(37, {"DRAPartitionableDevicesType": True})
    assert "DRAPartitionableDevicesType" in enabled(37, {"DRAPartitionableDevicesType": True,
                                                         "DRAResourcePoolStatus": True})
    with pytest.raises(ValueError, match="unrecognized feature gate 'DRAListTypeAttributes' on Kubernetes 1.35"):
        enabled(35, {"DRAListTypeAttributes": True})
    with pytest.raises(ValueError, match="locked to true"):
        enabled(37, {"DRAResourceClaimDeviceStatus": False})
    with pytest.raises(ValueError, match="1.33 is not supported"):
        enabled(33)


def test_version() -> None:
    assert Version() == Version(37)
    assert hash(Version(35, {"DRADeviceTaints": True})) == hash(Version(35, {"DRADeviceTaints": True}))
    assert len({Version(37), Version(37, {}), Version(37, {"DRAListTypeAttributes": True})}) == 2
    assert Version.parse("v1.34.4") == Version(34)
    parsed = Version.parse("1.35", "DRADeviceTaints=true, DRAConsumableCapacity=False")
    assert parsed.feature_gates == {"DRADeviceTaints": True, "DRAConsumableCapacity": False}
    assert str(parsed) == "1.35 (--feature-gates=DRAConsumableCapacity=false,DRADeviceTaints=true)"
    assert parsed.on("DRADeviceTaints") and not parsed.on("DRAConsumableCapacity")
    for bad in ("1.x", "2.0", "37"):
        with pytest.raises(ValueError, match="not a Kubernetes version like 1.37"):
            Version.parse(bad)
    with pytest.raises(ValueError, match="Name=true or Name=false"):
        Version.parse("1.37", "DRADeviceTaints")
    with pytest.raises(ValueError, match="unrecognized feature gate 'Nope'"):
        Version.parse("1.37", "Nope=true")
