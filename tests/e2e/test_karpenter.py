"""Karpenter's real KWOK provider (sigs.k8s.io/karpenter/kwok v1.15.0, built by hack/karpenter/build.sh) against
the test control plane with the real KWOK controller, kube-scheduler, kube-controller-manager and `dra-kwok run`
(issue #17): what the README's Karpenter section tells a user, shown by Karpenter itself, with the README's objects
(examples/karpenter/nodepool.yaml, examples/karpenter/gpu-capacity.yaml).

- A pod with a ResourceClaim alone makes Karpenter launch nothing, with either value of IGNORE_DRA_REQUESTS: true
  (its default) records `... not yet supported by Karpenter`, false `... no instance type can satisfy the
  allocation` (no KWOK instance type declares a device); no NodeClaim appears.
- A claim-less placeholder pod does make it launch a node (NodeClaim -> KWOK Node, Ready by KWOK); dra-kwok gives
  that node, which no test code created, its ResourceSlice; and the kube-scheduler then allocates the waiting DRA
  pod's claim from it and binds the pod there, where KWOK makes it Running. Karpenter launches no second node.

Karpenter runs only during this test, and only for this test's pods: its NodePool's nodes carry a label and a taint
of this test's own, which only this test's pods select and tolerate. `python3 -m pytest tests/e2e/test_karpenter.py`
(about 40 s for both cases); with the binary missing it fails saying how to build it.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from dra_kwok.testing.karpenter import log_lines, start_karpenter
from tests.e2e.support import TEST_LABEL, Scenario, until
from tests.integration.driver import config_text, mapping
from tests.support.helpers import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "karpenter"
#: The README's objects, as a user applies them: the KWOKNodeClass and NodePool, and the claim-less placeholders.
NODE_CLASS, NODE_POOL = yaml.safe_load_all((EXAMPLES / "nodepool.yaml").read_text())
PLACEHOLDERS = yaml.safe_load((EXAMPLES / "gpu-capacity.yaml").read_text())
#: The instance type the example pool launches and the placeholders select (one of the provider's built-in types)
[INSTANCE_TYPE] = NODE_POOL["spec"]["template"]["spec"]["requirements"][0]["values"]
NODEPOOLS = "/apis/karpenter.sh/v1/nodepools"
NODECLAIMS = "/apis/karpenter.sh/v1/nodeclaims"
NODECLASSES = "/apis/karpenter.kwok.sh/v1alpha1/kwoknodeclasses"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
#: What Karpenter v1.15.0 records on a pod with a ResourceClaim (Warning FailedScheduling) and logs, by the value of
#: IGNORE_DRA_REQUESTS: true (its default) skips the pod; false simulates the allocation, but no KWOK instance type
#: declares a device (the provider's instance-type file has no field for one), so none can satisfy it.
#: The event is "Failed to schedule pod, <causes>"; with false, the causes of other NodePools (a taint the pod does
#: not tolerate, say another test's left behind on this shared control plane) come first, "; "-separated.
DRA_EVENT = {
    True: "Failed to schedule pod, pod has Dynamic Resource Allocation requirements that are not yet supported by "
          "Karpenter",
    False: "allocating dynamic resources, no instance type can satisfy the allocation",
}
DRA_LOG = {
    True: ('"message":"skipping pod with Dynamic Resource Allocation requirements, not yet supported by Karpenter"',),
    False: ('"message":"could not schedule pod"', "allocating dynamic resources, no instance type can satisfy the "
            'allocation"'),
}
LAUNCH_TIMEOUT = 30.0


class KarpenterPool:
    """This test's KWOKNodeClass and NodePool, and the NodeClaims and Nodes Karpenter makes for it."""

    def __init__(self, sc: Scenario, ignore_dra_requests: bool) -> None:
        self.sc = sc
        self.ignore_dra_requests = ignore_dra_requests  # what Karpenter runs with
        self.name = f"e2e-{sc.unique}"
        self.taint = {"key": TEST_LABEL, "value": sc.unique, "effect": "NoSchedule"}
        self.toleration = {"key": TEST_LABEL, "operator": "Equal", "value": sc.unique, "effect": "NoSchedule"}

    def create(self) -> None:
        """examples/karpenter/nodepool.yaml under this test's names, its nodes labelled and tainted for this test,
        and never disrupted while it runs."""
        node_class, pool = copy.deepcopy(NODE_CLASS), copy.deepcopy(NODE_POOL)
        node_class["metadata"]["name"] = pool["metadata"]["name"] = self.name
        template = pool["spec"]["template"]
        template["spec"]["nodeClassRef"]["name"] = self.name
        template.setdefault("metadata", {}).setdefault("labels", {})[TEST_LABEL] = self.sc.unique
        template["spec"]["taints"] = [self.taint]
        template["spec"]["expireAfter"] = "Never"
        pool["spec"]["disruption"] = {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}
        self.sc.rest.post(NODECLASSES, node_class)
        self.sc.rest.post(NODEPOOLS, pool)

    def nodeclaims(self) -> list[dict]:
        return self.sc.rest.get(NODECLAIMS, query={"labelSelector": f"{NODEPOOL_LABEL}={self.name}"})["items"]

    def nodes(self) -> list[dict]:
        return self.sc.rest.get("/api/v1/nodes", query={"labelSelector": f"{NODEPOOL_LABEL}={self.name}"})["items"]

    def delete(self) -> None:
        """Delete the NodeClaims (Karpenter then terminates their Nodes), the NodePool and the class; if Karpenter has
        not finished within 30 s, drop its finalizers so nothing of this test outlives it on the shared control plane.
        The NodeClaims are deleted by name, not left to the NodePool's garbage collection: kube-controller-manager
        discovers a new CRD's resources only every 30 s."""
        rest = self.sc.rest
        paths = [f"{NODECLAIMS}/{c['metadata']['name']}" for c in self.nodeclaims()]
        for path in (*paths, f"{NODEPOOLS}/{self.name}", f"{NODECLASSES}/{self.name}"):
            try:
                rest.delete(path, {"propagationPolicy": "Background"})
            except ApiException as err:
                if err.status != 404:
                    print(f"karpenter teardown: {path}: {err.status}")
        try:
            wait_for(lambda: not self.nodeclaims() and not self.nodes(), timeout=30, interval=0.5,
                     message="Karpenter's NodeClaims and Nodes gone")
        except Exception as err:
            print(f"karpenter teardown: {err}; removing finalizers")
            for path in ([f"{NODECLAIMS}/{c['metadata']['name']}" for c in self.nodeclaims()]
                         + [f"/api/v1/nodes/{n['metadata']['name']}" for n in self.nodes()]):
                for call in (lambda: rest.patch(path, {"metadata": {"finalizers": None}}),
                             lambda: rest.delete(path, {})):
                    try:
                        call()
                    except ApiException:
                        pass


@pytest.fixture
def karpenter(request, scenario: Scenario):
    """Karpenter with IGNORE_DRA_REQUESTS=<the test's parameter>, and this test's pool; everything it launched is
    gone, and Karpenter stopped, when the test ends."""
    comp = start_karpenter(scenario.cp, ignore_dra_requests=request.param)
    pool = KarpenterPool(scenario, request.param)
    try:
        yield pool
    finally:
        try:
            scenario.remove_pods()  # the placeholders first: Karpenter's drain of their node would wait for them
            pool.delete()
        finally:
            # shown by pytest only if the test failed: what Karpenter decided, without its DEBUG lines
            lines = [ln for ln in log_lines(scenario.cp, "") if '"level":"DEBUG"' not in ln]
            print(f"--- Karpenter's log {comp.log_path} (last 40 lines above DEBUG)", *lines[-40:], sep="\n")
            scenario.cp.stop_component("karpenter")
            assert not comp.alive()


def _dra_pod(sc: Scenario, pool: KarpenterPool, name: str, claim: str) -> dict:
    """A pod using ResourceClaim `claim`, for this test's nodes (examples/scheduling/01-one-gpu's pod, retargeted)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": sc.namespace}, "spec": {
        "nodeSelector": {TEST_LABEL: sc.unique},
        "tolerations": [pool.toleration],
        "resourceClaims": [{"name": "gpu", "resourceClaimName": claim}],
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m"}, "claims": [{"name": "gpu"}]}}],
    }}


def _placeholders(sc: Scenario, pool: KarpenterPool) -> dict:
    """examples/karpenter/gpu-capacity.yaml with one replica, in this test's namespace, for this test's nodes."""
    deployment = copy.deepcopy(PLACEHOLDERS)
    deployment["metadata"]["namespace"] = sc.namespace
    deployment["spec"]["replicas"] = 1
    spec = deployment["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"node.kubernetes.io/instance-type": INSTANCE_TYPE}, spec["nodeSelector"]
    spec["nodeSelector"][TEST_LABEL] = sc.unique
    spec["tolerations"].append(pool.toleration)
    return deployment


def _karpenter_events(sc: Scenario, pod: str) -> list[dict]:
    events = sc.rest.get(f"/api/v1/namespaces/{sc.namespace}/events")["items"]
    return [e for e in events if (e.get("involvedObject") or {}).get("name") == pod
            and ((e.get("source") or {}).get("component") == "karpenter" or e.get("reportingComponent") == "karpenter")]


@pytest.mark.parametrize("karpenter", [True, False], indirect=True,
                         ids=["IGNORE_DRA_REQUESTS=true", "IGNORE_DRA_REQUESTS=false"])
def test_karpenter_launches_nodes_for_claimless_pods_only_and_dra_kwok_gives_them_slices(scenario, karpenter):
    sc, pool = scenario, karpenter
    ignore = pool.ignore_dra_requests
    driver = f"e2e-{sc.unique}.dra-kwok-driver.karpenter.sh"
    sc.drivers.add(driver)
    # dra-kwok: one fake GPU on every node of the KWOK provider's instance type that carries this test's label
    sc.apply_config_text(config_text(driver, [mapping("gpu", [{"node.kubernetes.io/instance-type": INSTANCE_TYPE,
                                                                TEST_LABEL: sc.unique}],
                                                      devices=[{"name": "gpu", "count": 1}])]))
    sc.start_driver()
    cls = f"fake-gpu-{sc.unique}"
    sc.create({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": cls},
               "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{driver}"'}}]}})
    sc.create({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
               "metadata": {"name": "one-gpu", "namespace": sc.namespace},
               "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
                   "deviceClassName": cls, "allocationMode": "ExactCount", "count": 1}}]}}})
    pool.create()

    # 1. A DRA pod alone: Karpenter launches nothing, and says why.
    sc.create(_dra_pod(sc, pool, "dra-pod", claim="one-gpu"))
    [event] = until(lambda: _karpenter_events(sc, "dra-pod"), bool, LAUNCH_TIMEOUT,
                    "Karpenter's event on the DRA pod")
    assert (event["type"], event["reason"]) == ("Warning", "FailedScheduling"), event
    assert event["message"].startswith("Failed to schedule pod, ") and event["message"].endswith(DRA_EVENT[ignore]), event
    first, *rest = DRA_LOG[ignore]
    assert until(lambda: [ln for ln in log_lines(sc.cp, first) if all(r in ln for r in rest)], bool, 10,
                 "Karpenter's log line about the DRA pod")
    time.sleep(3)  # a batch window (2 s here) and more: had Karpenter decided to launch, the NodeClaim would be there
    assert pool.nodeclaims() == [] and pool.nodes() == []
    assert not sc.get("Pod", "dra-pod")["spec"].get("nodeName")

    # 2. A claim-less placeholder (the README's Deployment): Karpenter launches a node of the pool's instance type.
    sc.create(_placeholders(sc, pool))
    [claim] = until(pool.nodeclaims, bool, LAUNCH_TIMEOUT, "a NodeClaim for the placeholder")
    [node] = until(pool.nodes, bool, LAUNCH_TIMEOUT, "the Node of that NodeClaim (Karpenter's KWOK provider)")
    name = node["metadata"]["name"]
    assert name not in sc.nodes  # not created by the test
    labels = node["metadata"]["labels"]
    assert labels["node.kubernetes.io/instance-type"] == INSTANCE_TYPE and labels[TEST_LABEL] == sc.unique, labels
    assert labels["kwok.x-k8s.io/node"] == "fake" and node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["spec"]["providerID"] == f"kwok://{name}" and name.startswith(f"kwok-{claim['metadata']['name']}-")
    [placeholder] = sc.wait_all_running("app=gpu-capacity", 1, timeout=LAUNCH_TIMEOUT)
    assert placeholder["spec"]["nodeName"] == name
    registered = until(lambda: sc.rest.get(f"{NODECLAIMS}/{claim['metadata']['name']}"),
                       lambda c: c.get("status", {}).get("nodeName") == name, LAUNCH_TIMEOUT,
                       "the NodeClaim registered with its Node")
    assert registered["status"]["providerID"] == f"kwok://{name}"

    # 3. dra-kwok publishes that node's device, and the waiting DRA pod is allocated it and runs there.
    [slice_] = until(lambda: sc.slices(driver, node=name), bool, 10, f"dra-kwok's slice for {name}")
    assert slice_["spec"]["pool"]["name"] == f"{name}/gpu" and [d["name"] for d in slice_["spec"]["devices"]] == \
        ["gpu-0"], slice_
    pod = sc.wait_running("dra-pod", timeout=LAUNCH_TIMEOUT)
    assert pod["spec"]["nodeName"] == name
    [allocated] = sc.allocated(pod)
    [result] = allocated["status"]["allocation"]["devices"]["results"]
    assert (result["driver"], result["pool"], result["device"]) == (driver, f"{name}/gpu", "gpu-0"), result
    assert len(pool.nodeclaims()) == 1  # the DRA pod went to the placeholder's node; Karpenter launched no other
