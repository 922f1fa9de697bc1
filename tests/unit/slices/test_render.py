"""render: node matching, pools, slices, names, labels, placeholders, determinism (by value)."""

from __future__ import annotations

import json
import os
import re

import pytest

from dra_kwok.config import ConfigInvalid, load_config
from dra_kwok.config.formats import is_dns_label, is_dns_subdomain, is_label_value
from dra_kwok.config.types import NodeSelectorTerm
from dra_kwok.slices.render import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    MAPPING_LABEL,
    NODE_LABEL,
    FrozenLabels,
    NodeInfo,
    Pool,
    RenderError,
    node_label_value,
    node_matches,
    render,
    render_cluster,
    render_node,
)
from dra_kwok.slices.rules import validate_slice
from tests.unit.config.builders import KWOK, attrs, config, device, mapping, req, term

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
UID = "6b3c6f0e-3a54-4a39-9f8a-5b0b2b7b8d11"


def node(name: str = "kwok-node-1", **labels: str) -> NodeInfo:
    return NodeInfo(name, UID, labels or {"type": "kwok"})


def names(pool: Pool) -> list[str]:
    return [d["name"] for s in pool.slices for d in s["spec"]["devices"]]


def dump(pools: list[Pool]) -> str:
    return json.dumps([(p.driver, p.name, p.node_name, p.slices) for p in pools], sort_keys=True)


# -- NodeInfo --------------------------------------------------------------------------------------------


def test_node_info_is_hashable_and_frozen() -> None:
    a = NodeInfo("n", "u", {"b": "2", "a": "1"})
    b = NodeInfo("n", "u", FrozenLabels([("a", "1"), ("b", "2")]))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.labels["a"] == "1" and dict(a.labels) == {"a": "1", "b": "2"} and list(a.labels) == ["a", "b"]
    assert "c" not in a.labels and NodeInfo("n", "u").labels == {}


# -- node matching (upstream NodeSelector semantics) -----------------------------------------------------


@pytest.mark.parametrize(
    "requirement,labels,expected",
    [
        (req("type", "In", "kwok", "x"), {"type": "kwok"}, True),
        (req("type", "In", "kwok"), {"type": "real"}, False),
        (req("type", "In", "kwok"), {}, False),
        (req("type", "NotIn", "kwok"), {"type": "real"}, True),
        (req("type", "NotIn", "kwok"), {}, True),
        (req("type", "NotIn", "kwok"), {"type": "kwok"}, False),
        (req("type", "Exists"), {"type": ""}, True),
        (req("type", "Exists"), {}, False),
        (req("type", "DoesNotExist"), {}, True),
        (req("type", "DoesNotExist"), {"type": "x"}, False),
        (req("gpus", "Gt", "3"), {"gpus": "4"}, True),
        (req("gpus", "Gt", "3"), {"gpus": "3"}, False),
        (req("gpus", "Gt", "007"), {"gpus": "8"}, True),
        (req("gpus", "Gt", "-1"), {"gpus": "5"}, False),  # "-1" is not a label value: upstream refuses it
        (req("gpus", "Lt", "3"), {"gpus": "2"}, True),
        (req("gpus", "Lt", "3"), {"gpus": "3"}, False),
        (req("gpus", "Gt", "3"), {}, False),
        (req("gpus", "Gt", "3"), {"gpus": "many"}, False),
        (req("gpus", "Gt", "3"), {"gpus": "4.0"}, False),
        (req("gpus", "Gt", "x"), {"gpus": "4"}, False),
        (req("gpus", "Gt", "3", "4"), {"gpus": "9"}, False),
        # Invalid requirements match nothing, as upstream (the term fails to parse).
        (req("type", "In"), {"type": ""}, False),
        (req("type", "NotIn"), {}, False),
        (req("type", "Exists", "x"), {"type": "x"}, False),
        (req("type", "Equals", "kwok"), {"type": "kwok"}, False),
        (req("a/b/c", "DoesNotExist"), {}, False),
        (req("type", "NotIn", "bad value"), {}, False),
    ],
)
def test_match_expressions(requirement: object, labels: dict[str, str], expected: bool) -> None:
    m = mapping(terms=(term(requirement),))  # type: ignore[arg-type]
    assert node_matches(m, NodeInfo("n1", UID, labels)) is expected


@pytest.mark.parametrize(
    "field,expected",
    [(req("metadata.name", "In", "n1"), True), (req("metadata.name", "In", "n2"), False),
     (req("metadata.name", "NotIn", "n2"), True), (req("metadata.name", "NotIn", "n1"), False),
     (req("metadata.name", "In", "n1", "n2"), False), (req("metadata.uid", "In", "n1"), False),
     (req("metadata.name", "Exists"), False)],
)
def test_match_fields(field: object, expected: bool) -> None:
    m = mapping(terms=(term(fields=(field,)),))  # type: ignore[arg-type]
    assert node_matches(m, NodeInfo("n1", UID, {})) is expected


def test_terms_are_ored_and_requirements_anded() -> None:
    both = term(req("type", "In", "kwok"), req("zone", "In", "a"), fields=(req("metadata.name", "NotIn", "x"),))
    m = mapping(terms=(both,))
    assert node_matches(m, node(type="kwok", zone="a"))
    assert not node_matches(m, node(type="kwok", zone="b"))
    assert not node_matches(m, node("x", type="kwok", zone="a"))
    either = mapping(terms=(term(req("zone", "In", "a")), term(req("zone", "In", "b"))))
    assert node_matches(either, node(zone="a")) and node_matches(either, node(zone="b"))
    assert not node_matches(either, node(zone="c"))


def test_empty_terms_match_nothing() -> None:
    assert not node_matches(mapping(terms=()), node())
    assert not node_matches(mapping(terms=(NodeSelectorTerm(),)), node())
    assert node_matches(mapping(terms=(NodeSelectorTerm(), KWOK)), node())


# -- node-local pools ------------------------------------------------------------------------------------


def test_node_local_slice_body() -> None:
    cfg = config(mapping(devices=[device("gpu-0", attributes=attrs(type="t4", cores=2560, fast=True),
                                         capacity={"memory": "16Gi"})]))
    (pool,) = render_node(cfg, node())
    assert (pool.driver, pool.name, pool.node_name) == ("gpu.example.com", "kwok-node-1/gpu-pool", "kwok-node-1")
    (body,) = pool.slices
    assert body == {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {
            "name": body["metadata"]["name"],
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MAPPING_LABEL: "gpu", NODE_LABEL: "kwok-node-1"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "kwok-node-1", "uid": UID,
                                 "controller": True}],
        },
        "spec": {
            "driver": "gpu.example.com",
            "pool": {"name": "kwok-node-1/gpu-pool", "generation": 0, "resourceSliceCount": 1},
            "nodeName": "kwok-node-1",
            "devices": [{
                "name": "gpu-0",
                "attributes": {"cores": {"int": 2560}, "fast": {"bool": True}, "type": {"string": "t4"}},
                "capacity": {"memory": {"value": "16Gi"}},
            }],
        },
    }
    assert re.fullmatch(r"kwok-node-1-gpu-pool-[0-9a-f]{8}-0", body["metadata"]["name"])
    assert (MANAGED_BY_LABEL, MANAGED_BY_VALUE) == ("app.kubernetes.io/managed-by", "dra-kwok")
    assert validate_slice(body) == []


def test_non_matching_node_gets_nothing() -> None:
    assert render_node(config(), node(type="real")) == []
    assert render(config(), [node(type="real")]) == []


def test_every_node_gets_its_own_pool() -> None:
    pools = render(config(), [node("b"), node("a")])
    assert [p.name for p in pools] == ["a/gpu-pool", "b/gpu-pool"]
    assert len({s["metadata"]["name"] for p in pools for s in p.slices}) == 2


def test_count_expansion() -> None:
    (pool,) = render_node(config(mapping(devices=[device("gpu", count=3), device("cpu")])), node())
    assert names(pool) == ["gpu-0", "gpu-1", "gpu-2", "cpu"]


def test_splitting_into_slices_of_at_most_128() -> None:
    (pool,) = render_node(config(mapping(devices=[device("d", count=300)])), node())
    sizes = [len(s["spec"]["devices"]) for s in pool.slices]
    assert sizes == [100, 100, 100]
    assert [s["spec"]["pool"]["resourceSliceCount"] for s in pool.slices] == [3, 3, 3]
    assert names(pool) == [f"d-{i}" for i in range(300)]
    assert len({s["metadata"]["name"] for s in pool.slices}) == 3
    (pool,) = render_node(config(mapping(devices=[device("d", count=257)])), node())
    assert [len(s["spec"]["devices"]) for s in pool.slices] == [86, 86, 85]


def test_explicit_slice_count() -> None:
    (pool,) = render_node(config(mapping(devices=[device("d", count=10)], slices=4)), node())
    assert [len(s["spec"]["devices"]) for s in pool.slices] == [3, 3, 2, 2]
    assert names(pool) == [f"d-{i}" for i in range(10)]  # contiguous
    (pool,) = render_node(config(mapping(devices=[device("d")], slices=3)), node())
    assert [len(s["spec"]["devices"]) for s in pool.slices] == [1, 0, 0]
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in pool.slices} == {3}
    assert all(validate_slice(s) == [] for s in pool.slices)


def test_empty_pool_is_one_empty_slice() -> None:
    cfg = load_config("driver: gpu.example.com\nmappings:\n- name: m\n  nodeSelectorTerms: [{matchExpressions: "
                      "[{key: type, operator: Exists}]}]\n  resourceSlice: {pool: {name: p}, devices: []}\n")
    (pool,) = render_node(cfg, node())
    (body,) = pool.slices
    assert body["spec"]["devices"] == [] and body["spec"]["pool"]["resourceSliceCount"] == 1


def test_mappings_sharing_a_pool_form_one_pool() -> None:
    cfg = config(
        mapping("a", devices=[device("a0"), device("a1")], terms=(term(req("a", "Exists")),)),
        mapping("b", devices=[device("b0")], terms=(term(req("b", "Exists")),)),
        mapping("c", devices=[device("c0")], pool="other", terms=(term(req("b", "Exists")),)),
    )
    pools = render_node(cfg, node(a="", b=""))
    assert [(p.name, names(p)) for p in pools] == [("kwok-node-1/gpu-pool", ["a0", "a1", "b0"]),
                                                  ("kwok-node-1/other", ["c0"])]
    assert pools[0].slices[0]["metadata"]["labels"][MAPPING_LABEL] == "a"
    (pool,) = render_node(cfg, node(b=""))[:1]
    assert names(pool) == ["b0"] and pool.slices[0]["metadata"]["labels"][MAPPING_LABEL] == "b"


def test_different_drivers_are_different_pools() -> None:
    cfg = config(mapping("a"), mapping("b", driver="fpga.example.com"))
    pools = render_node(cfg, node())
    assert [(p.driver, p.name) for p in pools] == [("fpga.example.com", "kwok-node-1/gpu-pool"),
                                                  ("gpu.example.com", "kwok-node-1/gpu-pool")]
    assert pools[0].slices[0]["metadata"]["name"] != pools[1].slices[0]["metadata"]["name"]


def test_long_node_names_still_render_valid_slices() -> None:
    long_name = ".".join(["n" * 63] * 3) + ".kwok"  # 197 characters
    pool_name = "/".join(["p" * 63, "p" * 63, "p" * 61])  # 189: the longest validation allows
    cfg = config(mapping(pool=pool_name, devices=[device(attributes=attrs(host="{{node}}"))]))
    (pool,) = render_node(cfg, node(long_name))
    assert len(pool.name) <= 253 and pool.name.endswith("/" + pool_name)
    (body,) = pool.slices
    assert validate_slice(body) == [], validate_slice(body)
    assert body["spec"]["nodeName"] == long_name
    label = body["metadata"]["labels"][NODE_LABEL]
    assert label == node_label_value(long_name) and is_label_value(label) and len(label) == 63
    assert body["spec"]["devices"][0]["attributes"]["host"]["string"] == label
    assert is_dns_subdomain(body["metadata"]["name"])


def test_object_names_are_valid_and_bounded() -> None:
    for node_name, pool_name in [("a", "b"), ("n" * 253, "p" * 189), ("x.y-z", "a.b/c.d/e")]:
        cfg = config(mapping(pool=pool_name, devices=[device("d", count=300)]))
        for body in render_node(cfg, node(node_name))[0].slices:
            name = body["metadata"]["name"]
            assert is_dns_subdomain(name) and len(name) <= 253 and name == name.lower()


# -- cluster-wide pools ----------------------------------------------------------------------------------


def test_all_nodes_pool() -> None:
    cfg = config(mapping(all_nodes=True, pool="shared", devices=[device("nvme", capacity={"size": "1T"})]))
    (pool,) = render_cluster(cfg, [node("a"), node("b")])
    assert (pool.name, pool.node_name) == ("shared", None)
    (body,) = pool.slices
    assert "ownerReferences" not in body["metadata"] and "nodeName" not in body["spec"]
    assert body["metadata"]["labels"] == {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MAPPING_LABEL: "gpu"}
    assert body["spec"]["allNodes"] is True
    assert re.fullmatch(r"shared-[0-9a-f]{8}-0", body["metadata"]["name"])
    assert render_node(cfg, node("a")) == []  # cluster-wide pools are not per node
    assert render(cfg, [node("a"), node("b")]) == [pool]


def test_node_selector_pool() -> None:
    selector = term(req("zone", "In", "a"))
    cfg = config(mapping(node_selector=(selector,), pool="zone-a"))
    (pool,) = render_cluster(cfg, [node()])
    assert pool.slices[0]["spec"]["nodeSelector"] == {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
    }
    assert "allNodes" not in pool.slices[0]["spec"]
    cfg = config(mapping(node_selector=(term(req("zone", "Exists"), fields=(req("metadata.name", "In", "n"),)),)))
    term_body = render_cluster(cfg, [node()])[0].slices[0]["spec"]["nodeSelector"]["nodeSelectorTerms"][0]
    assert term_body == {"matchExpressions": [{"key": "zone", "operator": "Exists"}],
                         "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}


def test_cluster_pool_exists_while_a_node_matches() -> None:
    cfg = config(mapping(all_nodes=True, terms=(term(req("storage", "In", "true")),)))
    assert render_cluster(cfg, []) == []
    assert render_cluster(cfg, [node(storage="false")]) == []
    assert len(render_cluster(cfg, [node("a", storage="false"), node("b", storage="true")])) == 1


# -- placeholders ----------------------------------------------------------------------------------------


def test_placeholders() -> None:
    cfg = config(mapping(devices=[device("gpu", count=2, attributes=attrs(
        host="{{node}}", me="{{device}}/{{index}}", serial="SN-{{hash}}", long="{{hash:20}}", uuid="GPU-{{uuid}}",
        plain="no {placeholders} here"))]))
    (pool,) = render_node(cfg, node("n1"))
    first, second = (d["attributes"] for d in pool.slices[0]["spec"]["devices"])
    assert first["host"] == {"string": "n1"} and first["me"] == {"string": "gpu-0/0"}
    assert second["me"] == {"string": "gpu-1/1"} and first["plain"] == {"string": "no {placeholders} here"}
    assert re.fullmatch(r"SN-[0-9a-f]{8}", first["serial"]["string"])
    assert re.fullmatch(r"[0-9a-f]{20}", first["long"]["string"])
    assert re.fullmatch(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first["uuid"]["string"])
    assert first["serial"] != second["serial"] and first["uuid"] != second["uuid"]
    (other,) = render_node(cfg, node("n2"))
    assert other.slices[0]["spec"]["devices"][0]["attributes"]["serial"] != first["serial"]
    (again,) = render_node(cfg, node("n1"))
    assert again == pool  # stable


def test_capacity_is_rendered_in_canonical_form() -> None:
    cfg = config(mapping(devices=[device(capacity={"a": "1.5Gi", "b": "1000m", "c": "16Gi", "d": "1000"})]))
    (pool,) = render_node(cfg, node())
    assert pool.slices[0]["spec"]["devices"][0]["capacity"] == {
        "a": {"value": "1536Mi"}, "b": {"value": "1"}, "c": {"value": "16Gi"}, "d": {"value": "1k"}}


# -- determinism -----------------------------------------------------------------------------------------


def test_rendering_is_deterministic() -> None:
    text = open(os.path.join(ROOT, "examples", "multi-device.yaml"), encoding="utf-8").read()
    cfg = load_config(text)
    nodes = [NodeInfo(f"node-{i}", UID, {"accelerator-type": "gpu"}) for i in range(5)]
    assert dump(render(cfg, nodes)) == dump(render(load_config(text), list(reversed(nodes))))
    pools = render(cfg, nodes)
    assert [(p.node_name, p.name) for p in pools][:2] == [("node-0", "node-0/fpga-pool"), ("node-0", "node-0/gpu-pool")]
    assert len(pools) == 10


def test_cluster_pools_sort_first() -> None:
    cfg = config(mapping("a"), mapping("b", pool="shared", all_nodes=True, devices=[device("x")]))
    assert [p.node_name for p in render(cfg, [node()])] == [None, "kwok-node-1"]


# -- check -----------------------------------------------------------------------------------------------


def test_check_refuses_what_the_apiserver_would_reject() -> None:
    cfg = config(mapping(devices=[device("GPU_0")]))
    with pytest.raises(RenderError) as info:
        render(cfg, [node()])
    assert isinstance(info.value, ConfigInvalid)
    assert any("spec.devices[0].name" in e.path for e in info.value.errors)
    (pool,) = render(cfg, [node()], check=False)
    assert pool.slices[0]["spec"]["devices"][0]["name"] == "GPU_0"
    assert render(cfg, [node()], check=False) == [pool]


def test_check_refuses_duplicate_devices_across_slices() -> None:
    cfg = config(mapping(devices=[device("a"), device("a")], slices=2))
    with pytest.raises(RenderError) as info:
        render_node(cfg, node())
    assert "duplicate device name" in str(info.value)
    assert len(render_node(cfg, node(), check=False)[0].slices) == 2


def test_unchecked_renders_invalid_values_as_written() -> None:
    cfg = config(mapping(devices=[device("d", count=129, capacity={"m": "1TB"})], slices=1))
    (pool,) = render_node(cfg, node(), check=False)
    (body,) = pool.slices
    assert len(body["spec"]["devices"]) == 129 and body["spec"]["devices"][0]["capacity"] == {"m": {"value": "1TB"}}
    cfg = config(mapping(slices=0))
    (pool,) = render_node(cfg, node(), check=False)
    assert [s["spec"]["pool"]["resourceSliceCount"] for s in pool.slices] == [0]
    cfg = config(mapping(all_nodes=True, node_selector=(KWOK,)))
    spec = render_cluster(cfg, [node()], check=False)[0].slices[0]["spec"]
    assert spec["allNodes"] is True and "nodeSelector" in spec


def test_hard_limits_hold_even_unchecked() -> None:
    with pytest.raises(RenderError):
        render_node(config(mapping(devices=[device("d", count=10**9)])), node(), check=False)
    with pytest.raises(RenderError):
        render_node(config(mapping(slices=10**9)), node(), check=False)


def test_device_names_render_as_dns_labels() -> None:
    (pool,) = render_node(config(mapping(devices=[device("d", count=1000)])), node())
    assert all(is_dns_label(n) for n in names(pool))
