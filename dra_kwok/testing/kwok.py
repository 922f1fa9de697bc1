"""KWOK nodes as KWOK documents them, and waiting until KWOK has made them Ready.

Why in the package: the tests, the demo and the benchmark all need the same nodes, built the way a user's cluster
has them (see dra-facts.md): KWOK's documented node (annotation `kwok.x-k8s.io/node: fake`, which is what the KWOK
controller manages nodes by, label `type: kwok`, taint `kwok.x-k8s.io/node=fake:NoSchedule` so that no real pod lands
on a fake node) with what Karpenter's KWOK provider adds (label `kwok.x-k8s.io/node: fake`, an instance type, a
`kwok://` providerID). Nobody here writes a node's status: the KWOK controller the harness runs
(`ControlPlane.start_kwok`) makes the node Ready and keeps it so, and kube-controller-manager's node-lifecycle
controller then lifts the not-ready taint, exactly as in a user's cluster.
"""

from __future__ import annotations

import json
import time

from kubernetes import client

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
#: KWOK's documented taint on its fake nodes; every pod meant for a KWOK node tolerates it (examples/).
KWOK_TAINT = {"key": KWOK_ANNOTATION, "value": "fake", "effect": "NoSchedule"}
KWOK_TOLERATION = {"key": KWOK_ANNOTATION, "operator": "Equal", "value": "fake", "effect": "NoSchedule"}
#: The taint the apiserver puts on a new node and node-lifecycle removes once the node is Ready.
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def kwok_node(name: str, labels: dict[str, str] | None = None, kwok: bool = True,
              instance_type: str = "c-4x-amd64-linux") -> dict:
    """A Node body; kwok=False gives an ordinary node (no annotation, no KWOK label or taint), which KWOK ignores.
    `labels` win over the defaults (a test's `type: gpu` replaces KWOK's `type: kwok`)."""
    kwok_labels = {KWOK_ANNOTATION: "fake", "type": "kwok"} if kwok else {}
    meta: dict = {"name": name, "labels": {INSTANCE_TYPE_LABEL: instance_type, "kubernetes.io/hostname": name,
                                           **kwok_labels, **(labels or {})}}
    spec: dict = {"providerID": f"kwok://{name}"}
    if kwok:
        meta["annotations"] = {KWOK_ANNOTATION: "fake"}
        spec["taints"] = [dict(KWOK_TAINT)]
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec}


def create_node(api: client.ApiClient, body: dict) -> dict:
    """Create a Node (KWOK, if it manages it, does the rest)."""
    node = client.CoreV1Api(api).create_node(body)  # type: ignore[arg-type]  # a dict body is sent as it is
    return node.to_dict()


def schedulable(node: dict) -> bool:
    """Ready (KWOK's node-initialize stage) and no longer carrying the not-ready taint (node-lifecycle): what the
    scheduler needs of a node. `node` is the API's JSON (camelCase)."""
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (node.get("status") or {}).get("conditions") or [])
    taints = (node.get("spec") or {}).get("taints") or []
    return ready and not any(t.get("key") == NOT_READY_TAINT for t in taints)


def wait_schedulable(api: client.ApiClient, names: list[str], timeout: float = 60.0) -> None:
    """Wait until KWOK has made every node Ready and node-lifecycle has lifted its not-ready taint. One list per
    poll (by name, client-side), so thousands of nodes cost one request each time."""
    wanted = set(names)
    deadline = time.monotonic() + timeout
    core = client.CoreV1Api(api)
    while True:
        items = json.loads(core.list_node(_preload_content=False).data)["items"]  # type: ignore[attr-defined]
        pending = wanted - {n["metadata"]["name"] for n in items if schedulable(n)}
        if not pending:
            return
        if time.monotonic() > deadline:
            sample = sorted(pending)[:5]
            raise TimeoutError(f"{len(pending)} nodes not Ready and untainted after {timeout:.0f}s (e.g. {sample}):"
                               " is KWOK running (ControlPlane.start_kwok) and kube-controller-manager with"
                               " node-lifecycle?")
        time.sleep(0.2)
