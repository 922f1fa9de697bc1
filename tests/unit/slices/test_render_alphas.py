"""Per-device node selection and the 1.37 alphas, rendered and judged per version, by value."""

from __future__ import annotations

from dra_kwok.accept import validate
from dra_kwok.config import load_config
from dra_kwok.slices.features import Version
from dra_kwok.slices.render import NodeInfo, render
from dra_kwok.slices.rules import validate_slice
from tests.unit.config.test_loader import ALPHAS
from tests.unit.slices.test_rules import CONSUMER, errors_at

GATES = {"DRAPartitionableDevicesType": True, "DRAResourcePoolStatus": True, "DRADeviceCompatibilityGroups": True,
         "DRAOptionalNodeOperations": True, "DRANodeAllocatableResources": True}
V37_ALPHAS = Version(37, GATES)
NODE = NodeInfo("kwok-node-0", "u", {"type": "kwok"})
CONFIG = load_config(ALPHAS.replace("          count: 2\n", "          count: 2\n          capacity: {cores: {value: '8'}}\n"
                                    "          attributes: {profile: {string: half}}\n"))


def test_per_device_pool_is_cluster_wide_and_the_alphas_go_on_device_slices_only() -> None:
    (pool,) = render(CONFIG, [NODE], version=V37_ALPHAS)
    assert pool.node_name is None and pool.name == "tpu"
    counters, devices = (s["spec"] for s in pool.slices)
    assert counters == {"driver": "gpu.example.com", "pool": {"name": "tpu", "generation": 0, "resourceSliceCount": 2},
                        "perDeviceNodeSelection": True, "sharedCounters": [{"name": "s", "counters": {"c": {"value": "2"}}}]}
    assert devices["perDeviceNodeSelection"] is True and "nodeName" not in devices
    assert devices["skipNodeOperations"] == ["NodePrepareResources", "NodeUnprepareResources"]
    assert devices["partitionTypeAttribute"] == "gpu.example.com/profile"
    a0, a1, b, c = devices["devices"]
    assert (a0["nodeName"], a1["nodeName"]) == ("kwok-node-0", "kwok-node-1")  # {{index}} filled in
    assert a0["consumesCounters"] == [{"counterSet": "s", "counters": {"c": {"value": "1"}},
                                       "compatibilityGroups": ["g1", "g2"]}]
    assert a0["nodeAllocatableResources"] == {"cpu": {"mapping": {"capacityKey": "cores", "capacityMultiplier": "2"}},
                                              "memory": {"overhead": {"perPod": "1Gi", "perContainer": "0"}}}
    assert b == {"name": "b", "nodeSelector": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1"]}]}]}}
    assert c == {"name": "c", "allNodes": True}
    assert [e for s in pool.slices for e in validate_slice(s, V37_ALPHAS)] == []


def test_verdict_per_version_names_the_gate() -> None:
    def problems(version: Version, severity: str) -> list[str]:
        return [p.message for p in validate(CONFIG, version) if p.severity == severity]

    assert problems(V37_ALPHAS, "error") == []
    assert not [m for m in problems(V37_ALPHAS, "warning") if "dropped by" in m]
    assert problems(Version(37), "error") == []  # the alphas off: dropped silently, so warnings
    on_137 = "\n".join(problems(Version(37), "warning"))
    for gate in ("DRAOptionalNodeOperations", "DRAPartitionableDevicesType", "DRANodeAllocatableResources",
                 "DRADeviceCompatibilityGroups"):
        assert f"dropped by an apiserver without the alpha feature gate {gate} (Kubernetes 1.37" in on_137
    assert "that apiserver stores the slice without it, and dra-kwok reports the drop" in on_137
    # 1.34: perDeviceNodeSelection dropped leaves a slice without node selection, which the apiserver refuses
    assert "spec.perDeviceNodeSelection: refused (422) by an apiserver without the alpha feature gate " \
           "DRAPartitionableDevices (Kubernetes 1.34; on by default since Kubernetes 1.36)" in \
           "\n".join(problems(Version(34), "error"))
    assert "spec.skipNodeOperations: dropped by an apiserver without the feature gate DRAOptionalNodeOperations: an " \
           "unknown field to a Kubernetes 1.34 apiserver" in "\n".join(problems(Version(34), "warning"))
    on_136 = "\n".join(problems(Version(36, {"DRANodeAllocatableResources": True}), "warning"))
    assert "knows only the older shape nodeAllocatableResourceMappings" in on_136


def test_config_rules() -> None:
    text = (ALPHAS.replace("NodePrepareResources, NodeUnprepareResources", "NodePrepareResources")
            .replace("kwok-node-{{index}}", "kwok-{{node}}").replace("[g1, g2]", "[g1, g1, g2]")
            .replace("capacityKey: cores, capacityMultiplier: \"2\"", "capacityKey: cores")
            .replace("        - name: c\n          allNodes: true\n", "        - name: c\n"))
    problems = {p.path: p.message for p in validate(load_config(text)) if p.severity == "error"}
    d = "mappings[0].resourceSlice.devices"
    assert set(problems) == {
        "mappings[0].resourceSlice.skipNodeOperations", f"{d}[0].nodeName",
        f"{d}[0].consumesCounters[0].compatibilityGroups", f"{d}[0].consumesCounters[0].compatibilityGroups[1]",
        f"{d}[0].nodeAllocatableResources[cpu].mapping.capacityKey",
        f"{d}[0].nodeAllocatableResources[cpu].mapping.capacityMultiplier", f"{d}[0].attributes", f"{d}[2]"}
    assert "{{node}} is only available in node-local pools" in problems[f"{d}[0].nodeName"]
    assert "must carry the partition type attribute 'gpu.example.com/profile'" in problems[f"{d}[0].attributes"]
    assert "exactly one of nodeName, nodeSelector or allNodes: true" in problems[f"{d}[2]"]


def test_device_node_fields_need_per_device_node_selection() -> None:
    text = ALPHAS.replace("      perDeviceNodeSelection: true\n", "")
    problems = {p.path for p in validate(load_config(text)) if p.severity == "error"}
    d = "mappings[0].resourceSlice.devices"
    assert {f"{d}[0].nodeName", f"{d}[1].nodeSelector", f"{d}[2].allNodes"} <= problems


def test_slice_rules_for_the_alphas() -> None:
    with_type = {**CONSUMER, "attributes": {"profile": {"string": "1g"}}}
    assert errors_at(V37_ALPHAS, partitionTypeAttribute="gpu.example.com/profile", devices=[with_type]) == {}
    assert list(errors_at(V37_ALPHAS, partitionTypeAttribute="gpu.example.com/profile")) == [
        "spec.partitionTypeAttribute"]
    assert list(errors_at(V37_ALPHAS, partitionTypeAttribute="gpu.example.com/profile", devices=[CONSUMER])) == [
        "spec.devices[0].attributes[gpu.example.com/profile]"]
    assert list(errors_at(V37_ALPHAS, skipNodeOperations=["NodePrepareResources"])) == ["spec.skipNodeOperations"]
    assert errors_at(V37_ALPHAS, skipNodeOperations=["NodePrepareResources", "*"]) == {}
    assert list(errors_at(V37_ALPHAS, skipNodeOperations=["Reboot"])) == ["spec.skipNodeOperations[0]"]
    groups = {**CONSUMER, "consumesCounters": [{**CONSUMER["consumesCounters"][0], "compatibilityGroups": list("abc")}]}
    assert list(errors_at(V37_ALPHAS, devices=[groups])) == ["spec.devices[0].consumesCounters[0].compatibilityGroups"]
    device = {"name": "d", "nodeAllocatableResources": {"ephemeral-storage": {"mapping": {"deviceMultiplier": "0"}}}}
    assert set(errors_at(V37_ALPHAS, devices=[device])) == {
        "spec.devices[0].nodeAllocatableResources[ephemeral-storage]",
        "spec.devices[0].nodeAllocatableResources[ephemeral-storage].mapping.deviceMultiplier"}
