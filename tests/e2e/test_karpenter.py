"""Karpenter's real KWOK provider (sigs.k8s.io/karpenter/kwok, built by hack/karpenter/build.sh) against the test
control plane with the real KWOK controller, kube-scheduler, kube-controller-manager and `dra-kwok run` (issue #17):
what the README's Karpenter section tells a user, shown by Karpenter itself.

- A pod with a ResourceClaim alone makes Karpenter launch nothing: with its default `IGNORE_DRA_REQUESTS=true` it
  records a FailedScheduling event saying DRA is not yet supported, and no NodeClaim appears.
- A claim-less placeholder pod does make it launch a node (NodeClaim -> KWOK Node, Ready by KWOK); dra-kwok gives
  that node, which no test code created, its ResourceSlices; and the kube-scheduler then allocates the waiting DRA
  pod's claim from them and binds it there, where KWOK makes it Running.

Karpenter runs only during this test, and only for this test's pods: its NodePool's nodes carry a label and a taint
of this test's own, which only this test's pods select and tolerate.
"""

from __future__ import annotations

import time

import pytest
from kubernetes.client.exceptions import ApiException

from dra_kwok.testing.karpenter import NODE_CLASS_GROUP, NODE_CLASS_KIND, log_lines, start_karpenter
from tests.e2e.support import TEST_LABEL, Scenario, until
from tests.integration.driver import config_text, mapping
from tests.support.helpers import wait_for

INSTANCE_TYPE = "c-4x-amd64-linux"  # one of the KWOK provider's built-in instance types (4 vCPU, amd64, linux)
NODEPOOLS = "/apis/karpenter.sh/v1/nodepools"
NODECLAIMS = "/apis/karpenter.sh/v1/nodeclaims"
NODECLASSES = f"/apis/{NODE_CLASS_GROUP}/v1alpha1/kwoknodeclasses"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
#: What Karpenter v1.15.0 records on a pod with a ResourceClaim (Warning FailedScheduling) and logs, by the value of
#: IGNORE_DRA_REQUESTS: true (its default) skips the pod; false simulates the allocation, but no KWOK instance type
#: declares a device (the provider's instance-type file has no field for one), so none can satisfy it.
DRA_EVENT = {
    True: "Failed to schedule pod, pod has Dynamic Resource Allocation requirements that are not yet supported by "
          "Karpenter",
    False: "Failed to schedule pod, allocating dynamic resources, no instance type can satisfy the allocation",
}
DRA_LOG = {
    True: '"message":"skipping pod with Dynamic Resource Allocation requirements, not yet supported by Karpenter"',
    False: '"error":"allocating dynamic resources, no instance type can satisfy the allocation"',
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
        rest = self.sc.rest
        rest.post(NODECLASSES, {"apiVersion": f"{NODE_CLASS_GROUP}/v1alpha1", "kind": NODE_CLASS_KIND,
                                "metadata": {"name": self.name}})
        rest.post(NODEPOOLS, {
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": self.name},
            "spec": {
                "template": {
                    "metadata": {"labels": {TEST_LABEL: self.sc.unique}},
                    "spec": {
                        "nodeClassRef": {"group": NODE_CLASS_GROUP, "kind": NODE_CLASS_KIND, "name": self.name},
                        "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                                          "values": [INSTANCE_TYPE]}],
                        "taints": [self.taint],
                        "expireAfter": "Never",
                    },
                },
                "limits": {"cpu": "8"},  # two nodes at most
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"},
            },
        })

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
            for p in scenario.pods():  # no kubelet will confirm; Karpenter's drain would wait for it
                scenario.rest.delete(f"/api/v1/namespaces/{scenario.namespace}/pods/{p['metadata']['name']}",
                                     {"gracePeriodSeconds": 0})
            pool.delete()
        finally:
            scenario.cp.stop_component("karpenter")
            assert not comp.alive()


def _pod(sc: Scenario, pool: KarpenterPool, name: str, claim: str | None = None) -> dict:
    spec: dict = {
        "nodeSelector": {TEST_LABEL: sc.unique},
        "tolerations": [pool.toleration],
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m"}}}],
    }
    if claim:
        spec["resourceClaims"] = [{"name": "gpu", "resourceClaimName": claim}]
        spec["containers"][0]["resources"]["claims"] = [{"name": "gpu"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": sc.namespace}, "spec": spec}


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
    sc.create(_pod(sc, pool, "dra-pod", claim="one-gpu"))
    [event] = until(lambda: _karpenter_events(sc, "dra-pod"), bool, LAUNCH_TIMEOUT,
                    "Karpenter's event on the DRA pod")
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "FailedScheduling",
                                                                  DRA_EVENT[ignore]), event
    assert until(lambda: log_lines(sc.cp, DRA_LOG[ignore]), bool, 10, "Karpenter's log line about the DRA pod")
    time.sleep(3)  # a batch window (2 s here) and more: had Karpenter decided to launch, the NodeClaim would be there
    assert pool.nodeclaims() == [] and pool.nodes() == []
    assert not sc.get("Pod", "dra-pod")["spec"].get("nodeName")

    # 2. A claim-less placeholder: Karpenter launches a node of the pool's instance type for it.
    sc.create(_pod(sc, pool, "placeholder"))
    [claim] = until(pool.nodeclaims, bool, LAUNCH_TIMEOUT, "a NodeClaim for the placeholder")
    [node] = until(pool.nodes, bool, LAUNCH_TIMEOUT, "the Node of that NodeClaim (Karpenter's KWOK provider)")
    name = node["metadata"]["name"]
    assert name not in sc.nodes  # not created by the test
    labels = node["metadata"]["labels"]
    assert labels["node.kubernetes.io/instance-type"] == INSTANCE_TYPE and labels[TEST_LABEL] == sc.unique, labels
    assert labels["kwok.x-k8s.io/node"] == "fake" and node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["spec"]["providerID"] == f"kwok://{name}" and name.startswith(f"kwok-{claim['metadata']['name']}-")
    placeholder = sc.wait_running("placeholder", timeout=LAUNCH_TIMEOUT)
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
