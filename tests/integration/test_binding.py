"""bindingSimulation against the real apiserver: the driver (the real App in-process) sets the binding condition, or
the failure condition, on a ResourceClaim allocated one of its devices, after the configured delay, through the
resourceclaims/status subresource; it leaves alone claims allocated to devices that are not its own, and writes
nothing more once the claim is as it should be. The allocation is written by the test (no scheduler here), as the
scheduler writes it: status.allocation with the device's bindingConditions and an allocationTimestamp.

On Kubernetes 1.34 (DRADeviceBindingConditions alpha, off) the driver refuses such a config (naming the gate) and
the apiserver drops bindingConditions from an allocation, so there is nothing to simulate: that is asserted instead.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from dra_kwok.app import App
from dra_kwok.runtime.rest import Rest
from dra_kwok.settings import Settings
from dra_kwok.slices.features import Version
from dra_kwok.testing.controlplane import k8s_version
from tests.integration.driver import mapping, metric, put_configmap, run_manager
from tests.support.helpers import wait_for

pytestmark = pytest.mark.integration

VERSION = Version.parse(k8s_version())
GATED = VERSION.on("DRADeviceBindingConditions")
ATTACHED, FAILED = "example.com/attached", "example.com/failed"
CLAIMS = "/apis/resource.k8s.io/v1/namespaces/{ns}/resourceclaims"


def _config(env, outcome: str, delay: str) -> str:
    m = mapping("gpus", env.tag, devices=[{"name": "gpu", "count": 2, "attributes": {"type": {"string": "t4"}},
                                           "bindingConditions": [ATTACHED], "bindingFailureConditions": [FAILED]}])
    m["bindingSimulation"] = {"delay": delay, "outcome": outcome}
    return yaml.safe_dump({"driver": env.driver, "mappings": [m]}, sort_keys=False)


def _claim(rest: Rest, ns: str, name: str, driver: str, pool: str, device: str) -> dict:
    """A claim, allocated (by the test, as the scheduler would) to (driver, pool, device) with its binding
    conditions and allocationTimestamp = now."""
    claim = rest.post(CLAIMS.format(ns=ns), {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": name, "namespace": ns},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "any"}}]}}})
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    claim["status"] = {"allocation": {"allocationTimestamp": now, "devices": {"results": [
        {"request": "gpu", "driver": driver, "pool": pool, "device": device,
         "bindingConditions": [ATTACHED], "bindingFailureConditions": [FAILED]}]}}}
    return rest.put(f"{CLAIMS.format(ns=ns)}/{name}/status", claim)


def _get(rest: Rest, ns: str, name: str) -> dict:
    return rest.get(f"{CLAIMS.format(ns=ns)}/{name}")


def _conditions(claim: dict) -> dict[tuple[str, str], str]:
    """(device, condition type) -> status, over status.devices."""
    return {(d["device"], c["type"]): c["status"] for d in (claim.get("status") or {}).get("devices") or []
            for c in d.get("conditions") or []}


def _warnings(api, ns: str) -> list[dict]:
    resp = client.CoreV1Api(api).list_namespaced_event(ns, field_selector="type=Warning", _preload_content=False)
    return json.loads(resp.data)["items"]


def _status_writes(drv) -> float:
    text = drv.metrics_text()
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith("rest_client_requests_total{") and 'method="PUT"' in line
               and "resourceclaims" in line)


@pytest.mark.parametrize("outcome", ["ready", "fail"])
def test_driver_sets_the_condition_after_the_delay_on_its_own_claims_only(api, control_plane, env, outcome):
    rest = Rest(api)
    env.node("a")
    if not GATED:
        env.config(mapping("plain", env.tag))
        with run_manager(control_plane, env.namespace) as drv:
            wait_for(lambda: env.slices("a"), timeout=15, message="slices published")
            put_configmap(api, env.namespace, "dra-kwok-configmap", _config(env, outcome, "3s"))
            events = wait_for(lambda: _warnings(api, env.namespace), timeout=15, message="config refused")
            message = events[0]["message"]
            assert "bindingSimulation" in message and "DRADeviceBindingConditions" in message, message
            assert metric(drv.metrics_text(), "dra_kwok_config_valid") == 0
            assert not drv.app.binding.claims.started, "the refused config must not start the claim informer"
        # and the apiserver drops bindingConditions from an allocation: nothing would wait for a driver
        claim = _claim(rest, env.namespace, "c-dropped", env.driver, f"{env.name('a')}/gpu", "gpu-0")
        assert "bindingConditions" not in claim["status"]["allocation"]["devices"]["results"][0]
        return
    put_configmap(api, env.namespace, "dra-kwok-configmap", _config(env, outcome, "3s"))
    with run_manager(control_plane, env.namespace) as drv:
        pool = f"{env.name('a')}/gpu"
        wait_for(lambda: env.slices("a"), timeout=15, message="slices published")
        wait_for(lambda: drv.app.binding.claims.synced.is_set(), timeout=15, message="claim informer synced")
        mine = _claim(rest, env.namespace, "mine", env.driver, pool, "gpu-0")
        # not ours: another driver's device, and our driver's name with a pool we do not publish
        other = _claim(rest, env.namespace, "other-driver", f"x{env.driver}", pool, "gpu-0")
        foreign_pool = _claim(rest, env.namespace, "foreign-pool", env.driver, "someone-else/gpu", "gpu-0")
        t0 = time.monotonic()
        target = FAILED if outcome == "fail" else ATTACHED
        wait_for(lambda: _conditions(_get(rest, env.namespace, "mine")).get(("gpu-0", target)) == "True",
                 timeout=15, interval=0.1, message=f"{target} set True")
        waited = time.monotonic() - t0
        # the delay counts from allocationTimestamp (RFC 3339, whole seconds): 3 s, minus up to 1 s of truncation
        assert 1.9 <= waited <= 6.0, waited
        got = _get(rest, env.namespace, "mine")
        entry = got["status"]["devices"][0]
        assert (entry["driver"], entry["pool"], entry["device"]) == (env.driver, pool, "gpu-0")
        assert [c["type"] for c in entry["conditions"]] == [target]
        assert entry["conditions"][0]["reason"] == ("DraKwokSimulatedFailure" if outcome == "fail"
                                                    else "DraKwokSimulatedReady")
        assert got["status"]["allocation"] == mine["status"]["allocation"], "the allocation is sent back unchanged"
        # idle: a resync and more time cost no further claim write, and the others were never touched
        writes = _status_writes(drv)
        assert writes == 1, writes
        drv.app.binding.controller.enqueue_all()
        time.sleep(1.5)
        assert _status_writes(drv) == writes
        for name, before in (("other-driver", other), ("foreign-pool", foreign_pool)):
            after = _get(rest, env.namespace, name)
            assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], name
            assert "devices" not in after["status"], name
        # deallocated (as the scheduler's PostFilter does after a failure) and allocated again: a new delay, a new
        # write; the driver's cached claim was stale, so this proves the write carries a resourceVersion the
        # apiserver accepts only for the current object
        fresh = _get(rest, env.namespace, "mine")
        fresh["status"] = {}
        rest.put(f"{CLAIMS.format(ns=env.namespace)}/mine/status", fresh)
        again = _get(rest, env.namespace, "mine")
        again["status"] = {"allocation": {**mine["status"]["allocation"], "allocationTimestamp":
                                          datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
        rest.put(f"{CLAIMS.format(ns=env.namespace)}/mine/status", again)
        wait_for(lambda: _conditions(_get(rest, env.namespace, "mine")).get(("gpu-0", target)) == "True",
                 timeout=15, interval=0.1, message=f"{target} set True after the re-allocation")
        assert _status_writes(drv) == 2


def test_a_config_without_binding_simulation_never_watches_claims(api, control_plane, env):
    """The default: no request for claims at all (the base RBAC grants none)."""
    env.node("a")
    env.config(mapping("gpus", env.tag))
    with run_manager(control_plane, env.namespace) as drv:
        wait_for(lambda: env.slices("a"), timeout=15, message="slices published")
        assert not drv.app.binding.claims.started
        text = drv.metrics_text()
        assert not [line for line in text.splitlines() if "resourceclaims" in line and not line.startswith("#")
                    and not line.rstrip().endswith(" 0.0")], "a request for claims"


# ------------------------------------------------------------------------------------------------ RBAC
COMPONENT = Path(__file__).resolve().parents[2] / "deploy" / "components" / "binding-conditions" / "rbac.yaml"
BASE_RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"


def _grant(api, env, sa: str, rules: list[dict], ns_rules: list[dict]) -> None:
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    rest, subject = Rest(api), [{"kind": "ServiceAccount", "name": sa, "namespace": env.namespace}]
    name = f"{sa}-{env.unique}"
    rest.post(f"{rbac}/clusterroles", {"metadata": {"name": name}, "rules": rules})
    rest.post(f"{rbac}/clusterrolebindings", {"metadata": {"name": name}, "subjects": subject, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}})
    rest.post(f"{rbac}/namespaces/{env.namespace}/roles", {"metadata": {"name": name}, "rules": ns_rules})
    rest.post(f"{rbac}/namespaces/{env.namespace}/rolebindings", {"metadata": {"name": name}, "subjects": subject,
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}})


def _docs(path: Path, kind: str) -> dict:
    return next(d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == kind)


def test_the_shipped_rbac_is_enough_and_the_driver_rule_is_needed_from_1_36(api, control_plane, env):
    """deploy/rbac.yaml + deploy/components/binding-conditions as the only permissions of a ServiceAccount: on a
    cluster with the gates the driver sets the condition with them; without the component's resourceclaims/driver
    rule the apiserver refuses the status.devices change (1.36+ granular status authorization). On 1.34 there is
    no such check: the status write alone is authorized."""
    component = _docs(COMPONENT, "ClusterRole")["rules"]
    base = _docs(BASE_RBAC, "ClusterRole")["rules"]
    ns_rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}]
    without_driver = [r for r in component if r["resources"] != ["resourceclaims/driver"]]
    assert len(without_driver) == len(component) - 1
    _grant(api, env, "full", base + component, ns_rules)
    _grant(api, env, "partial", base + without_driver, ns_rules)
    pool = f"{env.name('a')}/gpu"

    def as_sa(sa: str):
        client_ = control_plane.api_client()
        client_.set_default_header("Impersonate-User", f"system:serviceaccount:{env.namespace}:{sa}")
        return client_

    admin = Rest(api)
    claim = _claim(admin, env.namespace, "rbac", env.driver, pool, "gpu-0")
    claim["status"]["devices"] = [{"driver": env.driver, "pool": pool, "device": "gpu-0", "conditions": [
        {"type": ATTACHED, "status": "True", "reason": "Test", "message": "",
         "lastTransitionTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}]}]
    path = f"{CLAIMS.format(ns=env.namespace)}/rbac/status"
    partial = Rest(as_sa("partial"))
    if not GATED:
        del claim["status"]["devices"][0]["conditions"]  # bindingConditions are dropped here: a bare entry
        written = partial.put(path, claim)
        assert written["status"]["devices"][0]["device"] == "gpu-0"
        return
    with pytest.raises(Exception) as refused:
        partial.put(path, claim)
    assert getattr(refused.value, "status", None) == 422, refused.value  # Forbidden inside a 422 Invalid
    assert "resourceclaims/driver" in str(getattr(refused.value, "body", refused.value))

    env.node("a")
    put_configmap(api, env.namespace, "dra-kwok-configmap", _config(env, "ready", "1s"))
    settings = Settings(kubeconfig=str(control_plane.kubeconfig), namespace=env.namespace, health_port=0,
                        metrics_port=0)
    app = App(settings, api=as_sa("full"))
    thread = threading.Thread(target=lambda: app.run(install_signals=False), daemon=True)
    thread.start()
    try:
        wait_for(lambda: env.slices("a"), timeout=20, message="slices published as the ServiceAccount")
        mine = _claim(admin, env.namespace, "mine", env.driver, pool, "gpu-1")
        wait_for(lambda: _conditions(_get(admin, env.namespace, "mine")).get(("gpu-1", ATTACHED)) == "True",
                 timeout=15, interval=0.1, message="condition set as the ServiceAccount")
        assert mine["metadata"]["name"] == "mine"
    finally:
        app.manager.stopping.set()
        thread.join(10)
