"""validate_slice(): the apiserver's ResourceSlice rules, by value."""

from __future__ import annotations

import pytest

from dra_kwok.slices.rules import validate_slice


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
        ({"devices": [{"name": "a", "taints": []}]}, "spec.devices[0].taints"),
        ({"perDeviceNodeSelection": True}, "spec.perDeviceNodeSelection"),
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


