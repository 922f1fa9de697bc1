"""validate_slice(): the apiserver's ResourceSlice rules, by value."""

from __future__ import annotations

import pytest

from dra_kwok.slices.rules import Version, validate_slice


def test_string_length_is_counted_in_bytes_like_the_apiserver() -> None:
    body = {"name": "a", "attributes": {"s": {"string": "ü" * 33}}}
    assert "spec.devices[0].attributes[s].string" in {e.path for e in validate_slice(_body(devices=[body]))}
    body = {"name": "a", "attributes": {"s": {"string": "ü" * 32}}}
    assert validate_slice(_body(devices=[body])) == []


def _body(**spec: object) -> dict:
    base = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": "n1-pool-0", "labels": {"app.kubernetes.io/managed-by": "dra-kwok"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u",
                                          "controller": True}]},
        "spec": {"driver": "gpu.example.com", "pool": {"name": "n1/pool", "generation": 0, "resourceSliceCount": 1},
                 "nodeName": "n1", "devices": [{"name": "gpu-0", "attributes": {"type": {"string": "t4"}},
                                                "capacity": {"memory": {"value": "16Gi"}}}]},
    }
    base["spec"].update(spec)  # type: ignore[union-attr]
    return {k: v for k, v in base.items()}


def slice_errors(body: dict) -> dict[str, str]:
    return {e.path: e.message for e in validate_slice(body)}


def test_validate_slice_accepts_a_valid_body() -> None:
    assert validate_slice(_body()) == []
    assert validate_slice(_body(devices=[])) == []
    body = _body(driver="GPU.Example.COM")  # the apiserver lowercases driver names before checking
    assert validate_slice(body) == []


@pytest.mark.parametrize(
    "spec,path",
    [
        ({"driver": ""}, "spec.driver"),
        ({"driver": "a/b"}, "spec.driver"),
        ({"pool": {"name": "", "generation": 0, "resourceSliceCount": 1}}, "spec.pool.name"),
        ({"pool": {"name": "p", "generation": -1, "resourceSliceCount": 1}}, "spec.pool.generation"),
        ({"pool": {"name": "p", "generation": 0, "resourceSliceCount": 0}}, "spec.pool.resourceSliceCount"),
        ({"pool": {"name": "p", "generation": 0}}, "spec.pool.resourceSliceCount"),
        ({"nodeName": None}, "spec"),
        ({"nodeName": ""}, "spec.nodeName"),
        ({"allNodes": True}, "spec"),
        ({"nodeName": None, "allNodes": False}, "spec.allNodes"),
        ({"nodeName": None, "nodeSelector": {"nodeSelectorTerms": []}}, "spec.nodeSelector.nodeSelectorTerms"),
        ({"nodeName": None, "nodeSelector": {"nodeSelectorTerms": [{}, {}]}}, "spec.nodeSelector.nodeSelectorTerms"),
        ({"nodeName": None, "nodeSelector": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "a", "operator": "In"}]}]}},
         "spec.nodeSelector.nodeSelectorTerms[0].matchExpressions[0].values"),
        ({"nodeName": None, "nodeSelector": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["x"]}]}]}},
         "spec.nodeSelector.nodeSelectorTerms[0].matchFields[0].key"),
        ({"devices": [{"name": f"d{i}"} for i in range(129)]}, "spec.devices"),
        ({"devices": [{"name": "GPU_0"}]}, "spec.devices[0].name"),
        ({"devices": [{"name": "a"}, {"name": "a"}]}, "spec.devices[1]"),
        ({"devices": [{"name": "a", "attributes": {"t": {"string": "a", "int": 1}}}]}, "spec.devices[0].attributes[t]"),
        ({"devices": [{"name": "a", "attributes": {"t": {}}}]}, "spec.devices[0].attributes[t]"),
        ({"devices": [{"name": "a", "attributes": {"t-x": {"int": 1}}}]}, "spec.devices[0].attributes"),
        ({"devices": [{"name": "a", "attributes": {"t": {"string": "x" * 65}}}]}, "spec.devices[0].attributes[t].string"),
        ({"devices": [{"name": "a", "attributes": {"t": {"version": "1.0"}}}]}, "spec.devices[0].attributes[t].version"),
        ({"devices": [{"name": "a", "capacity": {"m": {"value": "1TB"}}}]}, "spec.devices[0].capacity[m].value"),
        ({"devices": [{"name": "a", "capacity": {"m": {"value": "1", "requestPolicy": {}}}}]},
         "spec.devices[0].capacity[m].requestPolicy"),
        ({"devices": [{"name": "a", "attributes": {f"a{i}": {"int": i} for i in range(33)}}]}, "spec.devices[0]"),
        ({"perDeviceNodeSelection": True}, "spec"),
        ({"bogus": 1}, "spec.bogus"),
    ],
)
def test_validate_slice_rules(spec: dict, path: str) -> None:
    body = _body(**spec)
    if body["spec"].get("nodeName") is None:
        body["spec"].pop("nodeName", None)
    assert path in slice_errors(body), slice_errors(body)


def test_validate_slice_metadata() -> None:
    body = _body()
    body["metadata"]["name"] = "Bad_Name"
    assert "metadata.name" in slice_errors(body)
    body = _body()
    body["metadata"]["labels"] = {"a/b/c": "x"}
    assert "metadata.labels" in slice_errors(body)
    body = _body()
    body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "",
                                            "controller": True}]
    assert "metadata.ownerReferences[0].uid" in slice_errors(body)
    body = _body()
    body["metadata"]["ownerReferences"] *= 2
    assert "metadata.ownerReferences" in slice_errors(body)




# -- per version (real-drivers.md §7.3) -----------------------------------------------------------------------------

V34, V35, V36, V37 = Version(34), Version(35), Version(36), Version(37)
TAINT = {"key": "example.com/broken", "value": "yes", "effect": "NoSchedule"}
SETS = [{"name": "gpu-0", "counters": {"memory": {"value": "40Gi"}, "sm": {"value": "98"}}}]
CONSUMER = {"name": "part-0", "consumesCounters": [{"counterSet": "gpu-0", "counters": {"memory": {"value": "5Gi"}}}]}


def _device(**fields: object) -> dict:
    return {"name": "gpu-0", "attributes": {"type": {"string": "t4"}}, "capacity": {"memory": {"value": "16Gi"}},
            **fields}


def errors_at(version: Version, **spec: object) -> dict[str, str]:
    body = _body(**spec)
    if body["spec"].get("nodeName") is None:
        body["spec"].pop("nodeName", None)
    return {e.path: e.message for e in validate_slice(body, version)}


def test_default_is_the_newest_version() -> None:
    assert validate_slice(_body(devices=[_device(taints=[TAINT])])) == []
    assert validate_slice(_body(devices=[_device(taints=[TAINT])]), V34) != []


@pytest.mark.parametrize("version", [V34, V35], ids=str)
def test_a_gated_field_names_its_gate_and_when_it_is_on_by_default(version: Version) -> None:
    body = _body(devices=[_device(taints=[TAINT], allowMultipleAllocations=True, bindsToNode=True)])
    assert {p.severity for p in validate_slice(body, version)} == {"warning"}  # dropped silently: not refused
    errors = errors_at(version, devices=[_device(taints=[TAINT], allowMultipleAllocations=True, bindsToNode=True)])
    assert errors["spec.devices[0].taints"] == (
        f"dropped by an apiserver without the alpha feature gate DRADeviceTaints (Kubernetes 1.{version.minor}; on "
        "by default since Kubernetes 1.36): that apiserver stores the slice without it, and dra-kwok reports the drop "
        "(a DroppedFields Warning Event); the scheduler does not see the taints: a claim without a toleration can get "
        "a tainted device")
    assert errors["spec.devices[0].allowMultipleAllocations"].endswith(
        "the device is not shared: it is allocated to one claim at a time")
    assert "DRAConsumableCapacity" in errors["spec.devices[0].allowMultipleAllocations"]
    assert "DRADeviceBindingConditions" in errors["spec.devices[0].bindsToNode"]
    assert "DRAPartitionableDevices" in errors_at(version, sharedCounters=SETS, devices=None)["spec.sharedCounters"]
    assert errors_at(version, perDeviceNodeSelection=True, nodeName=None)["spec.perDeviceNodeSelection"].startswith(
        "refused (422) by an apiserver without the alpha feature gate DRAPartitionableDevices")


def test_a_gate_turned_on_or_off_by_flag_counts() -> None:
    assert errors_at(Version(34, {"DRADeviceTaints": True}), devices=[_device(taints=[TAINT])]) == {}
    off = errors_at(Version(37, {"DRAConsumableCapacity": False}), devices=[_device(allowMultipleAllocations=True)])
    assert "beta feature gate DRAConsumableCapacity (Kubernetes 1.37 (--feature-gates=DRAConsumableCapacity=false)" \
        in off["spec.devices[0].allowMultipleAllocations"]
    # binding fields need DRAResourceClaimDeviceStatus too
    binding = _device(bindsToNode=True)
    assert errors_at(Version(35, {"DRADeviceBindingConditions": True}), devices=[binding]) == {}
    assert "DRAResourceClaimDeviceStatus" in errors_at(Version(35, {"DRADeviceBindingConditions": True,
                                                                    "DRAResourceClaimDeviceStatus": False}),
                                                       devices=[binding])["spec.devices[0].bindsToNode"]


def test_list_attributes() -> None:
    strings = _device(attributes={"models": {"strings": ["a", "b"]}})
    assert "unknown field to a Kubernetes 1.35 apiserver: it needs feature gate DRAListTypeAttributes" in errors_at(
        V35, devices=[strings])["spec.devices[0].attributes[models].strings"]
    on37 = errors_at(V37, devices=[strings])
    assert on37["spec.devices[0].attributes[models].strings"].startswith("refused (422) by an apiserver without the "
                                                                         "alpha feature gate DRAListTypeAttributes")
    both = _device(attributes={"n": {"int": 1, "ints": [1]}})  # the list is dropped, the int stays: no 422
    for version in (V35, V37):
        assert errors_at(version, devices=[both])["spec.devices[0].attributes[n].ints"].startswith(
            "dropped by an apiserver without")
    gated = Version(37, {"DRAListTypeAttributes": True})
    assert errors_at(gated, devices=[strings]) == {}
    assert list(errors_at(gated, devices=[both])) == ["spec.devices[0].attributes[n]"]  # exactly one value
    assert "spec.devices[0].attributes[n].ints" in errors_at(gated, devices=[_device(attributes={"n": {"ints": []}})])
    assert "spec.devices[0].attributes[s].strings[1]" in errors_at(
        gated, devices=[_device(attributes={"s": {"strings": ["a", "x" * 65]}})])
    many = {f"a{i}": {"ints": list(range(3))} for i in range(17)}  # 51 values
    assert "spec.devices[0].attributes" in errors_at(gated, devices=[_device(attributes=many)])
    assert "spec.devices" in errors_at(gated, devices=[_device(name=f"d{i}", attributes={"n": {"ints": [1]}})
                                                       for i in range(65)])


@pytest.mark.parametrize(
    "version, taints, path",
    [
        (V37, [TAINT] * 16, None),
        (V37, [TAINT] * 17, "spec.devices[0].taints"),
        (V34.__class__(34, {"DRADeviceTaints": True}), [TAINT] * 5, "spec.devices[0].taints"),
        (V35, None, None),
        (V37, [{**TAINT, "effect": "None"}], None),
        (Version(34, {"DRADeviceTaints": True}), [{**TAINT, "effect": "None"}], "spec.devices[0].taints[0].effect"),
        (V37, [{**TAINT, "effect": "Evict"}], "spec.devices[0].taints[0].effect"),
        (V37, [{"key": "a", "effect": "NoExecute"}], None),
        (V37, [{"key": "a/b/c", "effect": "NoExecute"}], "spec.devices[0].taints[0].key"),
        (V37, [{"key": "a", "value": "-x", "effect": "NoExecute"}], "spec.devices[0].taints[0].value"),
        (V37, [{"value": "x", "effect": "NoExecute"}], "spec.devices[0].taints[0].key"),
        (V37, [{"key": "a"}], "spec.devices[0].taints[0].effect"),
    ],
)
def test_taints(version: Version, taints: list | None, path: str | None) -> None:
    errors = errors_at(version, devices=[_device(**({"taints": taints} if taints is not None else {}))])
    assert (list(errors) == [path]) if path else errors == {}, errors


def test_devices_per_slice_drop_to_64_with_taints_or_counters_from_135() -> None:
    tainted = [_device(name=f"d{i}", taints=[TAINT] if i == 0 else []) for i in range(65)]
    assert errors_at(V37, devices=tainted)["spec.devices"].startswith("Too many: 65: must have at most 64 items")
    assert errors_at(V37, devices=tainted[:64]) == {}
    assert errors_at(Version(34, {"DRADeviceTaints": True}), devices=tainted) == {}
    assert errors_at(V37, devices=[_device(name=f"d{i}", allowMultipleAllocations=True) for i in range(128)]) == {}
    consumers = [{**CONSUMER, "name": f"p{i}"} for i in range(65)]
    assert "spec.devices" in errors_at(V37, devices=consumers)


def test_counters_135_and_later() -> None:
    assert errors_at(V37, sharedCounters=SETS, devices=None) == {}
    assert errors_at(V37, devices=[CONSUMER]) == {}  # references resolve within the pool, not the slice
    assert errors_at(V37, sharedCounters=SETS, devices=[CONSUMER]) == {
        "spec": "Invalid value: only one of `sharedCounters` or `devices` is allowed"}
    nine = [{"name": f"s{i}", "counters": {"c": {"value": "1"}}} for i in range(9)]
    assert list(errors_at(V37, sharedCounters=nine, devices=None)) == ["spec.sharedCounters"]
    wide = [{"name": "s", "counters": {f"c{i}": {"value": "0"} for i in range(33)}}]
    assert list(errors_at(V37, sharedCounters=wide, devices=None)) == ["spec.sharedCounters[0].counters"]
    assert list(errors_at(V37, sharedCounters=[SETS[0], SETS[0]], devices=None)) == ["spec.sharedCounters[1].name"]
    assert list(errors_at(V37, sharedCounters=[{"name": "a.b", "counters": {"C": {"value": "1"}}}],
                          devices=None)) == ["spec.sharedCounters[0].name", "spec.sharedCounters[0].counters"]
    entry = CONSUMER["consumesCounters"][0]  # type: ignore[index]
    three = [{**entry, "counterSet": f"s{i}"} for i in range(3)]
    assert list(errors_at(V37, devices=[{"name": "p", "consumesCounters": three}])) == [
        "spec.devices[0].consumesCounters"]
    assert list(errors_at(V37, devices=[{"name": "p", "consumesCounters": [entry, entry]}])) == [
        "spec.devices[0].consumesCounters[1].counterSet"]


def test_counters_134_share_a_slice_and_resolve_in_it() -> None:
    v34 = Version(34, {"DRAPartitionableDevices": True})
    assert errors_at(v34, sharedCounters=SETS, devices=[CONSUMER]) == {}
    assert list(errors_at(v34, devices=[CONSUMER])) == ["spec.devices[0].consumesCounters[0].counterSet"]
    other = {"name": "p", "consumesCounters": [{"counterSet": "gpu-0", "counters": {"power": {"value": "1"}}}]}
    assert list(errors_at(v34, sharedCounters=SETS, devices=[other])) == ["spec.devices[0].consumesCounters[0].counters"]
    sets = [{"name": f"s{i}", "counters": {f"c{j}": {"value": "1"} for j in range(11)}} for i in range(3)]  # 33
    assert list(errors_at(v34, sharedCounters=sets, devices=None)) == ["spec.sharedCounters"]
    assert errors_at(v34, sharedCounters=[{"name": f"s{i}", "counters": {"c": {"value": "1"}}} for i in range(9)],
                     devices=None) == {}


def _policy(policy: dict, value: str = "100", multiple: bool = True) -> list[dict]:
    return [{"name": "nic", "allowMultipleAllocations": multiple,
             "capacity": {"bw": {"value": value, "requestPolicy": policy}}}]


P = "spec.devices[0].capacity[bw].requestPolicy"


@pytest.mark.parametrize(
    "policy, paths",
    [
        ({"default": "10"}, []),
        ({"default": "10", "validValues": ["10", "20", "100"]}, []),
        ({"validValues": ["10"]}, [f"{P}.default"]),
        ({"default": "10", "validValues": ["20", "10"]}, [f"{P}.validValues[1]"]),
        ({"default": "10", "validValues": ["10", "10"]}, [f"{P}.validValues[1]"]),
        ({"default": "10", "validValues": ["10", "200"]}, [f"{P}.validValues[1]"]),
        ({"default": "15", "validValues": ["10", "20"]}, [f"{P}.default"]),
        ({"default": "1", "validValues": [str(i) for i in range(1, 12)]}, [f"{P}.validValues"]),
        ({"default": "10", "validValues": ["10"], "validRange": {"min": "10"}}, [P]),
        ({"default": "10", "validRange": {"min": "10", "max": "50", "step": "10"}}, []),
        ({"default": "10", "validRange": {"max": "50"}}, [f"{P}.validRange.min"]),
        ({"default": "5", "validRange": {"min": "10"}}, [f"{P}.default"]),
        ({"default": "200", "validRange": {"min": "200"}}, [f"{P}.validRange.min"]),
        ({"default": "10", "validRange": {"min": "10", "max": "5"}}, [f"{P}.validRange.max", f"{P}.default"]),
        ({"default": "10", "validRange": {"min": "10", "max": "500"}}, [f"{P}.validRange.max"]),
        ({"default": "60", "validRange": {"min": "10", "max": "50"}}, [f"{P}.default"]),
        ({"default": "10", "validRange": {"min": "10", "step": "0"}}, [f"{P}.validRange.step"]),
        ({"default": "10", "validRange": {"min": "10", "step": "95"}}, [f"{P}.validRange.step"]),
        ({"default": "15", "validRange": {"min": "10", "step": "10"}}, [f"{P}.default"]),
        ({"default": "10", "validRange": {"min": "10", "max": "45", "step": "10"}}, [f"{P}.validRange.max"]),
    ],
)
def test_request_policy(policy: dict, paths: list[str]) -> None:
    assert list(errors_at(V37, devices=_policy(policy))) == paths


def test_request_policy_needs_allow_multiple_allocations() -> None:
    assert errors_at(V37, devices=_policy({"default": "1"}, multiple=False)) == {
        P: "Forbidden: allowMultipleAllocations must be true"}


@pytest.mark.parametrize(
    "device, paths",
    [
        ({"bindsToNode": True}, []),
        ({"bindingConditions": ["a"], "bindingFailureConditions": ["example.com/b"]}, []),
        ({"bindingConditions": ["a"]}, ["spec.devices[0].bindingFailureConditions"]),
        ({"bindingFailureConditions": ["a"]}, ["spec.devices[0].bindingConditions"]),
        ({"bindingConditions": list("abcde"), "bindingFailureConditions": ["f"]}, ["spec.devices[0].bindingConditions"]),
        ({"bindingConditions": ["a", "a"], "bindingFailureConditions": ["f"]}, ["spec.devices[0].bindingConditions[1]"]),
        ({"bindingConditions": ["a"], "bindingFailureConditions": ["a"]},
         ["spec.devices[0].bindingFailureConditions[0]"]),
        ({"bindingConditions": ["a b"], "bindingFailureConditions": ["f"]}, ["spec.devices[0].bindingConditions[0]"]),
    ],
)
def test_binding_conditions(device: dict, paths: list[str]) -> None:
    assert list(errors_at(V37, devices=[{"name": "d", **device}])) == paths


def test_per_device_node_selection() -> None:
    per_device = {"perDeviceNodeSelection": True, "nodeName": None}
    assert errors_at(V37, devices=[{"name": "a", "nodeName": "n1"}, {"name": "b", "allNodes": True}],
                     **per_device) == {}
    assert list(errors_at(V37, devices=[{"name": "a"}], **per_device)) == ["spec.devices[0]"]
    assert list(errors_at(V37, devices=[{"name": "a", "nodeName": "n1", "allNodes": True}], **per_device)) == [
        "spec.devices[0]"]
    assert list(errors_at(V37, devices=[{"name": "a", "nodeName": "n1"}])) == ["spec.devices[0].nodeName"]
