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
import time
from datetime import datetime, timezone

import pytest
import yaml
from kubernetes import client

from dra_kwok.runtime.rest import Rest
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
