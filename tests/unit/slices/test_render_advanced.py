"""Rendering the 1.36/1.37 beta fields (taints, counters, consumable capacity, binding conditions), per version."""

from __future__ import annotations

import copy

from dra_kwok.config import load_config
from dra_kwok.slices.plan import devices_digest
from dra_kwok.slices.render import NodeInfo, render
from dra_kwok.slices.rules import Version, validate_slice

GATES = {"DRAPartitionableDevices": True, "DRADeviceTaints": True, "DRAConsumableCapacity": True,
         "DRADeviceBindingConditions": True}
NODE = NodeInfo("kwok-node-1", "6b3c6f0e-3a54-4a39-9f8a-5b0b2b7b8d11", {"type": "kwok"})


def _config(sets: int = 1, count: int = 2, taints: bool = True, slice_count: str = "") -> str:
    counter_sets = "".join(f"        - name: gpu-{i}\n          counters: {{memory: {{value: 40Gi}}}}\n"
                           for i in range(sets))
    taint = '          taints: [{key: example.com/health, value: "h-{{device}}", effect: NoSchedule}]\n' if taints else ""
    return f"""\
driver: gpu.example.com
mappings:
  - name: gpu
    nodeSelectorTerms: [{{matchExpressions: [{{key: type, operator: In, values: [kwok]}}]}}]
    resourceSlice:
      pool: {{name: gpu{slice_count}}}
      sharedCounters:
{counter_sets}      devices:
        - name: part
          count: {count}
          attributes: {{type: {{string: mig}}}}
{taint}          consumesCounters: [{{counterSet: gpu-0, counters: {{memory: {{value: 1.5Gi}}}}}}]
        - name: nic
          allowMultipleAllocations: true
          bindsToNode: true
          bindingConditions: [ready]
          bindingFailureConditions: [failed]
          capacity:
            bw: {{value: 1000M, requestPolicy: {{default: 0.1G, validRange: {{min: 100M, max: 1G, step: 100M}}}}}}
            queues: {{value: "8", requestPolicy: {{default: "1", validValues: ["1", "2", "4"]}}}}
"""


def specs(text: str, version: Version) -> list[dict]:
    pools = render(load_config(text, "t"), [NODE], version=version)
    return [s["spec"] for p in pools for s in p.slices]


def test_the_v1_shape_with_canonical_quantities_and_placeholders_in_taint_values() -> None:
    counters, devices = specs(_config(), Version(37))
    assert counters == {"driver": "gpu.example.com", "nodeName": "kwok-node-1",
                        "pool": {"name": "kwok-node-1/gpu", "generation": 0, "resourceSliceCount": 2},
                        "sharedCounters": [{"name": "gpu-0", "counters": {"memory": {"value": "40Gi"}}}]}
    part0, part1, nic = devices["devices"]
    assert part0 == {"name": "part-0", "attributes": {"type": {"string": "mig"}},
                     "taints": [{"key": "example.com/health", "value": "h-part-0", "effect": "NoSchedule"}],
                     "consumesCounters": [{"counterSet": "gpu-0", "counters": {"memory": {"value": "1536Mi"}}}]}
    assert part1["taints"][0]["value"] == "h-part-1"
    assert nic == {"name": "nic", "allowMultipleAllocations": True, "bindsToNode": True,
                   "bindingConditions": ["ready"], "bindingFailureConditions": ["failed"],
                   "capacity": {"bw": {"value": "1G", "requestPolicy": {
                       "default": "100M", "validRange": {"min": "100M", "max": "1G", "step": "100M"}}},
                       "queues": {"value": "8", "requestPolicy": {"default": "1", "validValues": ["1", "2", "4"]}}}}


def test_devices_of_one_template_do_not_share_containers() -> None:
    devices = specs(_config(), Version(37))[1]["devices"]
    assert devices[0]["consumesCounters"] is not devices[1]["consumesCounters"]
    assert devices[0]["taints"] is not devices[1]["taints"]


def test_counter_slices_come_first_eight_sets_each_on_135_and_later() -> None:
    out = specs(_config(sets=9), Version(35, GATES))
    assert [len(s.get("sharedCounters", [])) for s in out] == [8, 1, 0]
    assert ["devices" in s for s in out] == [False, False, True]
    assert {s["pool"]["resourceSliceCount"] for s in out} == {3}


def test_on_134_counters_share_the_first_device_slice() -> None:
    (only,) = specs(_config(), Version(34, GATES))
    assert [c["name"] for c in only["sharedCounters"]] == ["gpu-0"] and len(only["devices"]) == 3


def test_64_devices_per_slice_with_taints_or_counters_from_135() -> None:
    assert [len(s["devices"]) for s in specs(_config(count=127), Version(37))[1:]] == [64, 64]
    assert [len(s["devices"]) for s in specs(_config(count=127), Version(34, GATES))] == [128]


def test_every_rendered_slice_passes_the_rules_of_its_version() -> None:
    for minor in (36, 37):
        pools = render(load_config(_config(count=100, sets=3), "t"), [NODE], version=Version(minor))
        assert [e for p in pools for s in p.slices for e in validate_slice(s, Version(minor))] == []


def test_the_servers_taint_time_added_is_not_a_difference() -> None:
    devices = specs(_config(), Version(37))[1]["devices"]
    stored = copy.deepcopy(devices)
    stored[0]["taints"][0]["timeAdded"] = "2026-11-30T12:00:00Z"
    assert devices_digest(stored) == devices_digest(devices)
    stored[0]["taints"][0]["effect"] = "NoExecute"
    assert devices_digest(stored) != devices_digest(devices)


def test_list_attributes_render_as_lists_with_placeholders_in_strings() -> None:
    text = _config(count=2).replace("attributes: {type: {string: mig}}",
                                    'attributes: {type: {strings: [mig, "m-{{index}}"]}, n: {ints: [1, 2]}}')
    gated = Version(37, {"DRAListTypeAttributes": True})
    part0, part1 = specs(text, gated)[1]["devices"][:2]
    assert part0["attributes"] == {"n": {"ints": [1, 2]}, "type": {"strings": ["mig", "m-0"]}}
    assert part1["attributes"]["type"] == {"strings": ["mig", "m-1"]}
    assert part0["attributes"]["n"]["ints"] is not part1["attributes"]["n"]["ints"]
