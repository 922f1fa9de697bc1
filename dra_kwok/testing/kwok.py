"""KWOK nodes as Karpenter's KWOK provider creates them, and how to make them schedulable without a kubelet.

Why in the package: the tests, the demo and the benchmark all need the same nodes, built the way a user's cluster
has them (see dra-facts.md): annotation and label `kwok.x-k8s.io/node=fake`, an instance type, `kwok://` providerID.
"""

from __future__ import annotations

from kubernetes import client

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


def kwok_node(name: str, labels: dict[str, str] | None = None, kwok: bool = True,
              instance_type: str = "c-4x-amd64-linux") -> dict:
    """A Node body; kwok=False gives an ordinary node (no annotation, no KWOK label)."""
    meta: dict = {"name": name, "labels": {INSTANCE_TYPE_LABEL: instance_type, "kubernetes.io/hostname": name,
                                           **(labels or {})}}
    if kwok:
        meta["annotations"] = {KWOK_ANNOTATION: "fake"}
        meta["labels"][KWOK_ANNOTATION] = "fake"
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": {"providerID": f"kwok://{name}"}}


def make_schedulable(api: client.ApiClient, name: str) -> None:
    """What the node-lifecycle controller and a kubelet would do: drop the apiserver's not-ready taint and report
    Ready with allocatable cpu, memory and pods (the create ignores .status, so it is a status patch)."""
    core = client.CoreV1Api(api)
    core.patch_node(name, {"spec": {"taints": []}})
    core.patch_node_status(name, {"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kwok fake node"}],
        "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
    }})


def create_node(api: client.ApiClient, body: dict, ready: bool = False) -> dict:
    """Create a Node; with ready=True also make it schedulable without a kubelet."""
    node = client.CoreV1Api(api).create_node(body)  # type: ignore[arg-type]  # a dict body is sent as it is
    if ready:
        make_schedulable(api, body["metadata"]["name"])
    return node.to_dict()
