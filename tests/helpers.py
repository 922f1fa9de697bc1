"""Helpers shared by the integration and e2e tests: waiting on conditions, and KWOK nodes as Karpenter makes them."""

from __future__ import annotations

import time
from typing import Callable

from kubernetes import client


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, message: str = "") -> object:
    """Poll until `condition()` is truthy; fail with `message` (and the last value) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}: last={last!r}")


def kwok_node(name: str, labels: dict[str, str] | None = None, kwok: bool = True, instance_type: str = "c-4x-amd64-linux") -> dict:
    """A Node as Karpenter's KWOK provider creates it (annotation and label kwok.x-k8s.io/node=fake)."""
    meta: dict = {
        "name": name,
        "labels": {"node.kubernetes.io/instance-type": instance_type, "kubernetes.io/hostname": name, **(labels or {})},
    }
    if kwok:
        meta["annotations"] = {"kwok.x-k8s.io/node": "fake"}
        meta["labels"]["kwok.x-k8s.io/node"] = "fake"
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": {"providerID": f"kwok://{name}"}}


def create_node(api: client.ApiClient, body: dict, ready: bool = False) -> dict:
    """Create a Node; with ready=True also make it schedulable without a kubelet (see dra-facts.md)."""
    core = client.CoreV1Api(api)
    node = core.create_node(body)
    if ready:
        core.patch_node(body["metadata"]["name"], {"spec": {"taints": []}})
        core.patch_node_status(body["metadata"]["name"], {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake",
                            "lastHeartbeatTime": None, "lastTransitionTime": None}],
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        }})
    return node.to_dict() if hasattr(node, "to_dict") else node


def list_slices(api: client.ApiClient, **kwargs) -> list:
    return client.ResourceV1Api(api).list_resource_slice(**kwargs).items
