"""``profile:`` in a mapping, end to end without a cluster: loading, validation (parameters, placement, per-version
rules and feature gates), the driver name, and rendering to the real driver's slice layout for each Kubernetes
version. Expected values come from shared/reference/real-drivers.md (§1.6 slice layout) and the golden files
written from it, not from our own output."""

from __future__ import annotations

import pytest

from dra_kwok.accept import Rejected, accept, validate
from dra_kwok.config import ConfigInvalid, load_config
from dra_kwok.config.types import PROFILE_DRIVERS, Config
from dra_kwok.slices.profiles import PROFILES
from dra_kwok.slices.render import NodeInfo, render_node
from dra_kwok.slices.rules import Version
from tests.unit.slices.profiles.support import load, mismatches

HEADER = """driver: gpu.example.com
mappings:
"""
NODE = NodeInfo("h100-node-1", "0b9f6a1e-0000-4000-8000-000000000001", {"type": "kwok"})


def mapping(name: str, slice_yaml: str) -> str:
    body = "\n".join("    " + line for line in slice_yaml.strip().splitlines())
    return (f"- name: {name}\n  nodeSelectorTerms: [{{matchExpressions: [{{key: type, operator: In, values: [kwok]}}]}}]"
            f"\n  resourceSlice:\n{body}\n")


def cfg(*mappings: str) -> Config:
    return load_config(HEADER + "".join(mappings))


def errors(config: Config, version: Version | None = None) -> dict[str, str]:
    return {p.path: p.message for p in validate(config, version or Version()) if p.severity == "error"}


DYNAMIC = mapping("h100", "pool: {name: gpus}\nprofile: {name: nvidia-gpu, model: H100-80GB, count: 8, mode: dynamic-mig}")


def specs(config: Config, version: Version) -> list[dict]:
    (pool,) = render_node(config, NODE, version=version)
    return [s["spec"] for s in pool.slices]


# ------------------------------------------------------------------------------------------------ loading


def test_profile_loads_as_written_and_devices_may_be_left_out() -> None:
    config = cfg(mapping("a", "pool: {name: gpus}\nprofile: {name: nvidia-gpu, count: 2, healthTaints: [gpu-1=gpu-lost]}"))
    template = config.mappings[0].resource_slice
    assert template.profile == {"name": "nvidia-gpu", "count": 2, "healthTaints": ["gpu-1=gpu-lost"]}
    assert template.devices == ()
    assert hash(config) == hash(cfg(mapping("a", "pool: {name: gpus}\nprofile: {name: nvidia-gpu, count: 2, "
                                                 "healthTaints: [gpu-1=gpu-lost]}")))


def test_without_profile_devices_stay_required_and_profile_values_are_plain() -> None:
    with pytest.raises(ConfigInvalid) as err:
        cfg(mapping("a", "pool: {name: gpus}"),
            mapping("b", "pool: {name: g}\nprofile: {name: nvidia-gpu, count: 2.5, model: {x: 1}}"),
            mapping("c", "pool: {name: h}\nprofile: {count: 2}"))
    got = {e.path: e.message for e in err.value.errors}
    assert got == {
        "mappings[0].resourceSlice.devices": "required field is missing",
        "mappings[1].resourceSlice.profile.count": "expected a string, integer, boolean or list of strings, got "
                                                   "number 2.5",
        "mappings[1].resourceSlice.profile.model": "expected a string, integer, boolean or list of strings, got a "
                                                   "mapping",
        "mappings[2].resourceSlice.profile.name": "required field is missing",
    }


def test_profile_drivers_table_matches_the_profiles() -> None:
    assert PROFILE_DRIVERS == {p.name: p.default_driver for p in PROFILES.values()}


def test_driver_is_the_real_drivers_unless_overridden() -> None:
    config = cfg(DYNAMIC,
                 mapping("cpu", "pool: {name: cpus}\nprofile: {name: cpu, driver: cpu.vendor-b.example}"),
                 mapping("nic", "pool: {name: nics}\ndriver: net.vendor-c.example\nprofile: {name: nic}"),
                 mapping("own", "pool: {name: own}\ndevices: [{name: d}]"))
    assert [config.slice_driver(m) for m in config.mappings] == [
        "gpu.nvidia.com", "cpu.vendor-b.example", "net.vendor-c.example", "gpu.example.com"]
    drivers = {p.driver: p.name for p in render_node(config, NODE)}
    assert drivers == {"gpu.nvidia.com": "h100-node-1/gpus", "cpu.vendor-b.example": "h100-node-1/cpus",
                       "net.vendor-c.example": "h100-node-1/nics", "gpu.example.com": "h100-node-1/own"}


# ------------------------------------------------------------------------------------------------ validation


def test_unknown_profile_model_mode_and_parameter_name_the_field_and_the_known_values() -> None:
    config = cfg(mapping("a", "pool: {name: g}\nprofile: {name: nvidia-gpu, model: H200, mode: dynamic, colour: red}"),
                 mapping("b", "pool: {name: h}\nprofile: {name: nvidia}"),
                 mapping("c", "pool: {name: i}\nprofile: {name: cpu, sockets: 9}"))
    assert errors(config) == {
        "mappings[0].resourceSlice.profile.model": "unknown value 'H200'; known: H100-80GB, A100-SXM4-40GB",
        "mappings[0].resourceSlice.profile.mode": "unknown value 'dynamic'; known: full, static-mig, dynamic-mig",
        "mappings[0].resourceSlice.profile.colour": "unknown parameter of profile nvidia-gpu; known: driver, model, "
                                                    "count, mode, migLayout, consumableShares, healthTaints",
        "mappings[1].resourceSlice.profile.name": "unknown profile 'nvidia'; known: nvidia-gpu, example-gpu, cpu, "
                                                  "nic, intel-gpu, amd-gpu",
        "mappings[2].resourceSlice.profile.sockets": "9 is out of range; use 1..8",
    }
    with pytest.raises(Rejected, match=r"profile\.model: unknown value 'H200'"):
        accept(HEADER + mapping("a", "pool: {name: g}\nprofile: {name: nvidia-gpu, model: H200}"), "<t>")


def test_profile_placement_rules() -> None:
    config = cfg(mapping("a", "pool: {name: g}\nallNodes: true\nprofile: {name: cpu}"),
                 mapping("b", "pool: {name: h, resourceSliceCount: 2}\nprofile: {name: cpu}"),
                 mapping("c", "pool: {name: i}\ndriver: dra.cpu\nprofile: {name: cpu, driver: cpu.other}"),
                 mapping("d", "pool: {name: j}\nprofile: {name: nic}"),
                 mapping("e", "pool: {name: j, resourceSliceCount: 1}\ndriver: dra.net\ndevices: [{name: extra}]"))
    assert errors(config) == {
        "mappings[0].resourceSlice.profile": "a profile publishes one node's devices, as the real driver does (a "
                                             "pool per node); remove allNodes/nodeSelector, or write the devices by "
                                             "hand",
        "mappings[1].resourceSlice.pool.resourceSliceCount": "the profile lays out its slices as the real driver "
                                                             "does; remove resourceSliceCount",
        "mappings[2].resourceSlice.profile.driver": "'cpu.other' differs from resourceSlice.driver 'dra.cpu'; set the "
                                                    "driver name in one place",
        "mappings[4].resourceSlice.pool.resourceSliceCount": "pool 'j' is laid out by the profile of mappings[3]; "
                                                             "remove resourceSliceCount",
    }


def test_dynamic_mig_loses_its_counters_before_136_with_a_warning_naming_the_gate() -> None:
    assert errors(cfg(DYNAMIC), Version(37)) == {}
    assert [p for p in validate(cfg(DYNAMIC), Version(36))] == []
    for minor, sets in ((35, 1), (34, 8)):  # 1.35: one counters slice; 1.34: counters beside the devices, 8 slices
        assert errors(cfg(DYNAMIC), Version(minor)) == {}  # stored, without the fields: valid, with warnings
        warnings = [p for p in validate(cfg(DYNAMIC), Version(minor)) if p.severity == "warning"]
        assert [p.path for p in warnings] == ["mappings[0].resourceSlice.profile"] * 2
        gate = (f"dropped by an apiserver without the alpha feature gate DRAPartitionableDevices (Kubernetes 1.{minor}; "
                "on by default since Kubernetes 1.36)")
        assert warnings[0].message.startswith(f"the profile's ResourceSlices lose fields on a Kubernetes 1.{minor} "
                                              f"apiserver: spec.sharedCounters: {gate}")
        assert warnings[1].message.startswith(f"the profile's ResourceSlices lose fields on a Kubernetes 1.{minor} "
                                              f"apiserver: spec.devices[].consumesCounters: {gate}")
        assert warnings[0].message.endswith(f" ({sets} times)" if sets > 1 else ")")
        assert warnings[1].message.endswith(" (208 times)")  # every device of the 8 GPUs
        assert [p for p in validate(cfg(DYNAMIC), Version(minor, {"DRAPartitionableDevices": True}))] == []


def test_full_gpus_pass_every_version_and_none_taints_need_135() -> None:
    full = mapping("a", "pool: {name: g}\nprofile: {name: nvidia-gpu, healthTaints: [gpu-0=unmonitored]}")
    assert errors(cfg(full), Version(36)) == {}
    gate = {"DRADeviceTaints": True}
    assert errors(cfg(full), Version(35, gate)) == {}
    problems = errors(cfg(full), Version(34, gate))
    assert list(problems) == ["mappings[0].resourceSlice.profile"]
    assert "effect" in problems["mappings[0].resourceSlice.profile"]


# ------------------------------------------------------------------------------------------------ rendering


def test_dynamic_mig_on_135_plus_is_the_reference_layout() -> None:
    golden = load("nvidia-gpu-dynamic-mig-h100-k135")  # the reference's worked 8xH100 node (§1.8), 9 slices
    assert golden["node"] == NODE.name
    (pool,) = render_node(cfg(DYNAMIC), NODE, version=Version(37))
    assert (pool.driver, pool.name, pool.node_name) == ("gpu.nvidia.com", "h100-node-1/gpus", "h100-node-1")
    assert len(pool.slices) == 9
    for body in pool.slices:
        spec = body["spec"]
        assert spec["pool"] == {"name": "h100-node-1/gpus", "generation": 0, "resourceSliceCount": 9}
        assert spec["nodeName"] == "h100-node-1"
        assert body["metadata"]["ownerReferences"][0]["name"] == "h100-node-1"
    content = [{k: v for k, v in s["spec"].items() if k in ("devices", "sharedCounters")} for s in pool.slices]
    assert mismatches(golden["slices"], content, "slices") == []


def test_dynamic_mig_on_134_is_combined_one_slice_per_gpu() -> None:
    got = specs(cfg(DYNAMIC), Version(34, {"DRAPartitionableDevices": True}))
    assert len(got) == 8  # §1.6: G slices, each that GPU's counter set and its 26 devices
    for minor, spec in enumerate(got):
        assert [c["name"] for c in spec["sharedCounters"]] == [f"gpu-{minor}-counter-set"]
        assert len(spec["devices"]) == 26
        assert {e["counterSet"] for d in spec["devices"] for e in d["consumesCounters"]} == {f"gpu-{minor}-counter-set"}
        assert spec["pool"]["resourceSliceCount"] == 8


def test_profile_beside_hand_written_devices() -> None:
    extra = mapping("extra", "pool: {name: gpus}\ndriver: gpu.nvidia.com\ndevices: [{name: spare, count: 2}]")
    got = specs(cfg(DYNAMIC, extra), Version(37))
    assert len(got) == 10  # the profile's 9 slices as the driver lays them out, then the hand-written one
    assert [d["name"] for d in got[9]["devices"]] == ["spare-0", "spare-1"]
    assert {s["pool"]["resourceSliceCount"] for s in got} == {10}
    assert errors(cfg(DYNAMIC, extra)) == {}

    clash = mapping("clash", "pool: {name: gpus}\ndriver: gpu.nvidia.com\ndevices: [{name: gpu-3}]")
    problems = errors(cfg(DYNAMIC, clash))
    assert list(problems) == ["mappings[0].resourceSlice.profile"]
    assert "device gpu-3: duplicate device name in the pool" in problems["mappings[0].resourceSlice.profile"]


def test_render_of_every_profile_with_defaults_is_valid_on_137() -> None:
    for name, profile in PROFILES.items():
        config = cfg(mapping("m", f"pool: {{name: p}}\nprofile: {{name: {name}}}"))
        assert errors(config) == {}, name
        (pool,) = render_node(config, NODE)
        expected = profile.render({}, NODE.name, "", 37).slices
        assert [{k: v for k, v in s["spec"].items() if k in ("devices", "sharedCounters")} for s in pool.slices] \
            == expected, name
        assert pool.driver == profile.default_driver


def test_two_profiles_in_one_pool_are_refused_once_with_the_fix() -> None:
    config = cfg(mapping("a", "pool: {name: cpus}\nprofile: {name: cpu}"),
                 mapping("b", "pool: {name: cpus}\nprofile: {name: cpu, sockets: 1}"))
    assert errors(config) == {
        "mappings[1].resourceSlice.pool.name": "mappings[0] also publishes a profile into pool 'cpus' of driver "
                                               "'dra.cpu'; a node matching both would get each device twice (mappings "
                                               "sharing driver and pool name form one pool per node): give each its "
                                               "own pool name"}
