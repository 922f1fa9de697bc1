"""The harness starts a real control plane: the apiserver enforces resource.k8s.io/v1 rules, serves field
selectors and watches, the scheduler is healthy, and the controller-manager garbage-collects."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from dra_kwok.runtime.rest import Rest, new_api_client
from dra_kwok.slices.render import SLICES_PATH
from dra_kwok.testing.controlplane import MIN_ETCD, _get, cache_dir, etcd_version
from tests.support.helpers import create_node, kwok_node, wait_for


def _slice(name: str, node: str, devices: list[dict]) -> dict:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {"driver": "gpu.example.com", "nodeName": node, "pool": {"name": node, "resourceSliceCount": 1},
                 "devices": devices},
    }


def test_node_and_v1_resourceslice_are_served(api, unique):
    create_node(api, kwok_node(f"cp-node-{unique}"))
    created = Rest(api).post(SLICES_PATH, _slice(f"cp-slice-{unique}", f"cp-node-{unique}", [{"name": "gpu-0"}]))
    assert created["apiVersion"] == "resource.k8s.io/v1"
    assert created["spec"]["devices"] == [{"name": "gpu-0"}]
    assert client.VersionApi(api).get_code().minor.startswith(("34", "35", "36", "37"))


def test_etcd_is_a_supported_one(control_plane):
    """Kubernetes 1.34 supports etcd 3.5 and 3.6: the harness runs the one hack/etcd/build.sh builds (else one >= 3.5
    from KUBEBUILDER_ASSETS or PATH), never Debian's 3.4."""
    status, body = _get(f"{control_plane.etcd_url}/version")
    assert status == 200, body
    version = json.loads(body)["etcdserver"]
    assert tuple(map(int, version.split(".")[:2])) >= MIN_ETCD
    if control_plane.components["etcd"].argv[0] == str(cache_dir() / "etcd" / etcd_version() / "etcd"):
        assert version == etcd_version()


@pytest.mark.parametrize(
    "devices, message",
    [
        ([{"name": f"gpu-{i}"} for i in range(129)], "must have at most 128 items"),
        ([{"name": "GPU_0"}], "a lowercase RFC 1123 label"),
    ],
    ids=["129-devices", "invalid-device-name"],
)
def test_apiserver_rejects_invalid_slices(api, unique, devices, message):
    with pytest.raises(ApiException) as err:
        Rest(api).post(SLICES_PATH, _slice(f"bad-{unique}", f"n-{unique}", devices))
    assert err.value.status == 422
    assert message in err.value.body


def test_field_selector_on_node_name(api, unique):
    for n in ("a", "b"):
        Rest(api).post(SLICES_PATH, _slice(f"fs-{n}-{unique}", f"fs-node-{n}-{unique}", [{"name": "d"}]))
    items = client.ResourceV1Api(api).list_resource_slice(field_selector=f"spec.nodeName=fs-node-a-{unique}").items
    assert [s.metadata.name for s in items] == [f"fs-a-{unique}"]


def test_watch_delivers_added_modified_deleted(api, unique):
    core = client.CoreV1Api(api)
    name = f"watch-node-{unique}"
    seen: list[str] = []
    w = watch.Watch()
    rv = core.list_node().metadata.resource_version

    def consume():
        for event in w.stream(core.list_node, field_selector=f"metadata.name={name}", resource_version=rv,
                              timeout_seconds=20, _request_timeout=30):
            seen.append(event["type"])
            if event["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    create_node(api, kwok_node(name))
    core.patch_node(name, {"metadata": {"labels": {"changed": "yes"}}})
    core.delete_node(name)
    t.join(25)
    # kube-controller-manager, when another test started it, also annotates new nodes (its TTL controller)
    assert seen[0] == "ADDED" and seen[-1] == "DELETED" and set(seen[1:-1]) == {"MODIFIED"}, seen


def test_scheduler_is_healthy(scheduler):
    comp = scheduler.components["kube-scheduler"]
    status, body = _get(comp.health_url)
    assert (status, body.strip()) == (200, "ok")


def test_controller_manager_garbage_collects_orphans(controller_manager, api, unique):
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": f"owner-{unique}"}})
    core.create_namespaced_config_map("default", {"metadata": {
        "name": f"dependent-{unique}",
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name,
                             "uid": owner.metadata.uid}],
    }})
    core.delete_namespaced_config_map(owner.metadata.name, "default")

    def gone():
        try:
            core.read_namespaced_config_map(f"dependent-{unique}", "default")
            return False
        except ApiException as err:
            return err.status == 404

    wait_for(gone, timeout=60, message="the garbage collector to delete the dependent")


def test_rest_rereads_the_token_from_the_configuration_every_auth_refresh(control_plane, mocker):
    """Rest caches the auth header (re-reading it costs a proxy-environment scan per request) but not forever: a
    rotated token is picked up within AUTH_REFRESH seconds (the clock is the seam)."""
    api = new_api_client(str(control_plane.kubeconfig))
    try:
        now = [1000.0]
        mocker.patch("dra_kwok.runtime.rest.time.monotonic", side_effect=lambda: now[0])
        rest = Rest(api)
        assert rest.get("/version")["gitVersion"]
        api.configuration.refresh_api_key_hook = None  # the kubeconfig's hook would restore the good token
        api.configuration.api_key["BearerToken"] = "Bearer not-a-valid-token"
        now[0] += Rest.AUTH_REFRESH - 1
        assert rest.get("/version")["gitVersion"]  # still the cached header
        now[0] += 2
        with pytest.raises(ApiException) as err:
            rest.get("/version")
        assert err.value.status == 401
    finally:
        api.close()
