"""dra_kwok/testing/kwok.py by value: the node body is KWOK's documented one (plus Karpenter's instance type), and
`schedulable` is what the scheduler needs of a node (Ready, no not-ready taint), judged from the API's JSON."""

from __future__ import annotations

from dra_kwok.testing.kwok import KWOK_TOLERATION, kwok_node, schedulable


def test_kwok_node_is_the_documented_kwok_node_with_an_instance_type():
    node = kwok_node("n1", {"team": "a"}, instance_type="g4dn.xlarge")
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}  # what KWOK manages
    assert node["metadata"]["labels"] == {
        "type": "kwok", "kwok.x-k8s.io/node": "fake", "kubernetes.io/hostname": "n1",
        "node.kubernetes.io/instance-type": "g4dn.xlarge", "team": "a",
    }
    assert node["spec"] == {"providerID": "kwok://n1",
                            "taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]}
    assert "status" not in node  # KWOK writes it, nobody else


def test_the_callers_labels_win():
    assert kwok_node("n1", {"type": "gpu"})["metadata"]["labels"]["type"] == "gpu"


def test_the_examples_toleration_matches_the_taint():
    [taint] = kwok_node("n1")["spec"]["taints"]
    assert KWOK_TOLERATION == {**taint, "operator": "Equal"}


def test_an_ordinary_node_has_nothing_of_kwok():
    node = kwok_node("n2", kwok=False)
    assert "annotations" not in node["metadata"] and "taints" not in node["spec"]
    assert "type" not in node["metadata"]["labels"] and "kwok.x-k8s.io/node" not in node["metadata"]["labels"]


def _node(ready: str | None, taints: list[str]) -> dict:
    conditions = [{"type": "Ready", "status": ready}] if ready else []
    return {"spec": {"taints": [{"key": k, "effect": "NoSchedule"} for k in taints]},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, *conditions]}}


def test_schedulable_needs_ready_and_no_not_ready_taint():
    assert schedulable(_node("True", ["kwok.x-k8s.io/node"]))  # KWOK's own taint is tolerated by our pods
    assert not schedulable(_node("True", ["node.kubernetes.io/not-ready"]))  # node-lifecycle has not run yet
    assert not schedulable(_node("False", []))
    assert not schedulable(_node(None, []))  # just created: no status at all yet
    assert not schedulable({"metadata": {"name": "fresh"}})
