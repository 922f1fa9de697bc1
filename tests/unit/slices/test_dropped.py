"""dropped_fields / strip by value: what an apiserver with a gate off keeps of a slice, and which gate it was."""

from __future__ import annotations

import copy

from dra_kwok.slices.dropped import Dropped, dropped_fields, gate_for, strip, strip_spec

TAINT = {"key": "example.com/unhealthy", "value": "xid-79", "effect": "NoSchedule"}


def _device(name: str, **extra) -> dict:
    return {"name": name, "attributes": {"type": {"string": "t4"}}, "capacity": {"memory": {"value": "16Gi"}}, **extra}


def _spec(*devices: dict, **extra) -> dict:
    return {"driver": "gpu.example.com", "pool": {"name": "n/gpu", "generation": 1, "resourceSliceCount": 1},
            "nodeName": "n", "devices": list(devices), **extra}


def test_nothing_dropped_when_the_server_keeps_everything_and_only_fills_in_or_canonicalises():
    sent = _spec(_device("gpu-0", taints=[TAINT]))
    returned = _spec(_device("gpu-0", taints=[{**TAINT, "timeAdded": "2026-01-01T00:00:00Z"}],
                             capacity={"memory": {"value": "17179869184"}}))
    assert dropped_fields(sent, returned) == []


def test_dropped_taints_are_one_path_for_every_device_with_their_gate():
    sent = _spec(_device("gpu-0", taints=[TAINT]), _device("gpu-1", taints=[TAINT]))
    returned = _spec(_device("gpu-0"), _device("gpu-1"))
    assert dropped_fields(sent, returned) == [Dropped("devices[].taints", "DRADeviceTaints")]


def test_consumable_capacity_paths_name_the_map_values_and_the_gate():
    policy = {"default": "1Gi", "validRange": {"min": "1Gi"}}
    sent = _spec(_device("gpu-0", allowMultipleAllocations=True,
                         capacity={"memory": {"value": "16Gi", "requestPolicy": policy}}))
    returned = _spec(_device("gpu-0"))
    assert dropped_fields(sent, returned) == [
        Dropped("devices[].allowMultipleAllocations", "DRAConsumableCapacity"),
        Dropped("devices[].capacity{}.requestPolicy", "DRAConsumableCapacity"),
    ]


def test_a_counters_only_slice_stored_empty_and_binding_fields():
    counters = [{"name": "gpu-0-counters", "counters": {"memory": {"value": "80Gi"}}}]
    assert dropped_fields(_spec(sharedCounters=counters), _spec()) == [
        Dropped("sharedCounters", "DRAPartitionableDevices")]
    sent = _spec(_device("gpu-0", bindsToNode=True, bindingConditions=["ready"], bindingFailureConditions=["bad"]))
    assert [d.gate for d in dropped_fields(sent, _spec(_device("gpu-0")))] == ["DRADeviceBindingConditions"] * 3


def test_empty_fields_sent_are_not_drops_and_unknown_fields_have_no_gate():
    sent = _spec(_device("gpu-0", taints=[], consumesCounters=None), somethingNew={"a": 1})
    dropped = dropped_fields(sent, _spec(_device("gpu-0")))
    assert dropped == [Dropped("somethingNew", None)]
    assert str(dropped[0]) == "somethingNew (unknown to this apiserver)"
    assert str(Dropped("devices[].taints", "DRADeviceTaints")) == "devices[].taints (feature gate DRADeviceTaints)"


def test_a_list_attribute_dropped_next_to_a_scalar_is_named_by_the_map_not_the_key():
    # the one list attribute the apiserver drops silently (alone, the attribute would be left empty: 422)
    sent = _spec(_device("gpu-0", attributes={"type": {"string": "t4"}, "ids": {"int": 1, "ints": [1, 2]}}))
    returned = _spec(_device("gpu-0", attributes={"type": {"string": "t4"}, "ids": {"int": 1}}))
    assert dropped_fields(sent, returned) == [Dropped("devices[].attributes{}.ints", "DRAListTypeAttributes")]


def test_gate_for_walks_up_to_the_closest_field_of_the_table():
    assert gate_for("devices[].capacity{}.requestPolicy.validRange") == "DRAFractionalCapacityRange"
    assert gate_for("devices[].capacity{}.requestPolicy.validValues") == "DRAConsumableCapacity"
    assert gate_for("devices[].consumesCounters[].compatibilityGroups") == "DRADeviceCompatibilityGroups"
    assert gate_for("devices[].name") is None


def test_strip_gives_what_the_server_keeps_and_never_edits_its_input():
    policy = {"default": "1Gi", "validValues": ["1Gi", "2Gi"]}
    sent = _spec(_device("gpu-0", taints=[TAINT], allowMultipleAllocations=True,
                         capacity={"memory": {"value": "16Gi", "requestPolicy": policy}}), _device("gpu-1"))
    before = copy.deepcopy(sent)
    kept = strip(sent, ["devices[].taints", "devices[].allowMultipleAllocations",
                        "devices[].capacity{}.requestPolicy"])
    assert kept == _spec(_device("gpu-0"), _device("gpu-1"))
    assert sent == before
    assert kept["devices"][1] is sent["devices"][1]  # what is not stripped is shared, not copied
    assert dropped_fields(sent, kept) != [] and dropped_fields(kept, kept) == []


def test_strip_returns_the_same_object_when_nothing_is_there_to_strip():
    spec = _spec(_device("gpu-0"))
    assert strip(spec, ["devices[].taints", "sharedCounters"]) is spec
    body = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "spec": spec}
    assert strip_spec(body, ["devices[].taints"]) is body
    counters = _spec(sharedCounters=[{"name": "c", "counters": {"m": {"value": "1"}}}])
    assert strip_spec({"spec": counters}, ["sharedCounters"]) == {"spec": _spec()}
