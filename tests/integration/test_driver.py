"""The driver against the real apiserver: every ResourceSlice-controller behaviour of the original Go driver, and
what dra-kwok adds (sub-second reaction, zero idle writes, safety of foreign slices, leader election, probes)."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client

from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.render import SLICES_PATH
from tests.integration.driver import (
    delete_configmap,
    http_get,
    mapping,
    metric,
    put_configmap,
    run_manager,
    run_process,
    sigterm_and_wait,
    slices,
    wait_ready,
)
from tests.support.helpers import wait_for


def _device_names(items: list[dict]) -> list[str]:
    return sorted(d["name"] for s in items for d in s["spec"].get("devices") or [])


def test_slices_for_a_matching_kwok_node_with_labels_node_name_and_owner(api, env):
    node = env.node("a", {"type": "gpu"})
    env.config(mapping("gpu", {**env.tag, "type": "gpu"}))
    with run_manager(env.cp, env.namespace):
        items = wait_for(lambda: env.slices("a"), message="slices for the node")
    assert len(items) == 1
    s = items[0]
    assert s["spec"]["nodeName"] == env.name("a")
    assert s["spec"]["pool"] == {"name": f"{env.name('a')}/gpu", "generation": 0, "resourceSliceCount": 1}
    assert _device_names(items) == ["gpu-0", "gpu-1"]
    assert s["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "dra-kwok"
    assert s["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": env.name("a"), "uid": node["metadata"]["uid"], "controller": True}
    ]


def test_kwok_detection_needs_the_annotation_not_a_label(api, env):
    env.node("kwok", {"type": "gpu"})
    env.node("labelonly", {"type": "gpu", "kwok.x-k8s.io/node": "fake", "type.kwok.x-k8s.io": "kwok"}, kwok=False)
    env.node("plain", {"type": "gpu"}, kwok=False)
    env.config(mapping("gpu", {**env.tag, "type": "gpu"}))
    with run_manager(env.cp, env.namespace) as drv:
        wait_for(lambda: env.slices("kwok"), message="slices for the KWOK node")
        wait_for(drv.idle, message="queue drained")
        assert env.slices("labelonly") == [] and env.slices("plain") == []


def test_matching_single_label_multiple_labels_and_or_across_terms(api, env):
    env.node("single", {"a": "1"})
    env.node("both", {"a": "1", "b": "2"})
    env.node("other", {"c": "3"})
    env.node("none", {"z": "9"})
    env.config(
        mapping("single", {**env.tag, "a": "1"}, pool="single"),
        mapping("multi", {**env.tag, "a": "1", "b": "2"}, pool="multi"),
        mapping("either", [{**env.tag, "b": "2"}, {**env.tag, "c": "3"}], pool="either"),
    )
    with run_manager(env.cp, env.namespace) as drv:
        wait_for(lambda: len(env.slices("both")) == 3, message="three pools on the node matching all mappings")
        wait_for(drv.idle, message="queue drained")
        pools = lambda sfx: sorted(s["spec"]["pool"]["name"].split("/")[-1] for s in env.slices(sfx))  # noqa: E731
        assert pools("single") == ["single"]
        assert pools("both") == ["either", "multi", "single"]  # all matching mappings applied
        assert pools("other") == ["either"]
        assert pools("none") == []


def test_two_nodes_two_slice_sets_with_distinct_pools(api, env):
    env.node("a")
    env.node("b")
    env.config(mapping("gpu", env.tag))
    with run_manager(env.cp, env.namespace):
        wait_for(lambda: env.slices("a") and env.slices("b"), message="both nodes' slices")
    pools = {s["spec"]["pool"]["name"] for s in env.slices()}
    assert pools == {f"{env.name('a')}/gpu", f"{env.name('b')}/gpu"}


def test_cleanup_on_node_delete_label_change_and_config_clear(api, env):
    core = client.CoreV1Api(api)
    for sfx in ("del", "relabel", "keep"):
        env.node(sfx, {"type": "gpu"})
    env.config(mapping("gpu", {**env.tag, "type": "gpu"}))
    with run_manager(env.cp, env.namespace):
        wait_for(lambda: all(env.slices(s) for s in ("del", "relabel", "keep")), message="all slices")
        core.delete_node(env.name("del"))
        wait_for(lambda: not env.slices("del"), timeout=2, message="slices of the deleted node gone")
        core.patch_node(env.name("relabel"), {"metadata": {"labels": {"type": "cpu"}}})
        wait_for(lambda: not env.slices("relabel"), timeout=2, message="slices of the relabelled node gone")
        assert env.slices("keep")
        delete_configmap(api, env.namespace, "dra-kwok-configmap")
        wait_for(lambda: not env.slices(), timeout=2, message="all slices gone after the ConfigMap was deleted")


def test_configmap_update_propagates_including_an_attribute_only_edit(api, env):
    env.node("a")
    env.config(mapping("gpu", env.tag))
    with run_manager(env.cp, env.namespace) as drv:
        wait_for(lambda: env.slices("a"), message="slices")
        changed = mapping("gpu", env.tag)
        changed["resourceSlice"]["devices"][0]["attributes"]["type"] = {"string": "nvidia-h100"}
        t0 = time.monotonic()
        env.config(changed)

        def updated():
            items = env.slices("a")
            return items and all(d["attributes"]["type"] == {"string": "nvidia-h100"} for d in items[0]["spec"]["devices"])

        wait_for(updated, timeout=2, message="the attribute edit on the slice")
        assert time.monotonic() - t0 < 2
        assert env.slices("a")[0]["spec"]["pool"]["generation"] == 0  # one slice changed in place: generation kept
        wait_for(drv.idle, message="the write counted")  # the PUT is on the server before the worker counts it
        assert metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total", verb="update") == 1


def test_node_created_while_running_gets_slices_within_two_seconds(api, env):
    env.config(mapping("gpu", env.tag))
    with run_manager(env.cp, env.namespace):
        t0 = time.monotonic()
        env.node("late")
        wait_for(lambda: env.slices("late"), timeout=2, message="slices of the new node")
        assert time.monotonic() - t0 < 2


def test_no_writes_over_three_resync_periods_after_convergence(api, env):
    for sfx in ("a", "b", "c"):
        env.node(sfx)
    env.config(mapping("gpu", env.tag), mapping("fpga", env.tag, pool="fpga", devices=[{"name": "fpga"}]))
    with run_manager(env.cp, env.namespace, resync_period=1.0) as drv:
        wait_for(lambda: len(env.slices()) == 6, message="six slices")
        wait_for(drv.idle, message="converged")
        before_rv = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in env.slices()}
        before_writes, text = drv.writes(), drv.metrics_text()
        lists_before = metric(text, "rest_client_requests_total", method="LIST")
        reconciles_before = metric(text, "controller_runtime_reconcile_total")
        time.sleep(3.5)  # three resync periods must pass; this test is about what does NOT happen in them
        text = drv.metrics_text()
        assert metric(text, "controller_runtime_reconcile_total") >= reconciles_before + 3 * 4  # resyncs ran
        assert drv.writes() == before_writes
        assert metric(text, "rest_client_requests_total", method="LIST") == lists_before
        assert {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in env.slices()} == before_rv


def test_invalid_config_keeps_every_slice_and_emits_a_warning_event(api, env):
    env.node("a")
    env.config(mapping("gpu", env.tag))
    with run_manager(env.cp, env.namespace) as drv:
        before = wait_for(lambda: env.slices("a"), message="slices")
        put_configmap(api, env.namespace, "dra-kwok-configmap", "driver: karpenter.sh/dra-kwok-driver\nmappings: []\n")

        def warning():
            events = client.CoreV1Api(api).list_namespaced_event(env.namespace).items
            return [e for e in events if e.type == "Warning" and e.reason == "InvalidConfig"]

        events = wait_for(warning, message="Warning event on the ConfigMap")
        assert events[0].involved_object.kind == "ConfigMap"
        assert "driver" in events[0].message
        assert metric(drv.metrics_text(), "dra_kwok_config_valid") == 0
        wait_for(drv.idle, message="queue drained")
        assert env.slices("a") == before
        env.config(mapping("gpu", env.tag))  # the next valid update recovers
        wait_for(lambda: metric(drv.metrics_text(), "dra_kwok_config_valid") == 1, message="config valid again")


def test_foreign_and_unlabelled_slices_survive_everything(api, env):
    env.node("a")
    rest = Rest(api)
    foreign = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
               "metadata": {"name": f"foreign-{env.name('a')}", "labels": {"app.kubernetes.io/managed-by": "other"}},
               "spec": {"driver": env.driver, "nodeName": env.name("a"),
                        "pool": {"name": f"{env.name('a')}/gpu", "resourceSliceCount": 1}, "devices": [{"name": "x"}]}}
    unlabelled = json.loads(json.dumps(foreign))
    unlabelled["metadata"] = {"name": f"unlabelled-{env.name('a')}"}
    unlabelled["spec"]["driver"] = "other.example.com"
    for body in (foreign, unlabelled):
        rest.post(SLICES_PATH, body)
    env.config(mapping("gpu", env.tag))
    with run_manager(env.cp, env.namespace, resync_period=1.0) as drv:
        wait_for(lambda: env.slices("a"), message="our slices")
        delete_configmap(api, env.namespace, "dra-kwok-configmap")
        wait_for(lambda: not env.slices("a"), message="our slices removed on config clear")
        client.CoreV1Api(api).delete_node(env.name("a"))
        wait_for(drv.idle, message="queue drained")
    for body in (foreign, unlabelled):
        got = rest.get(f"{SLICES_PATH}/{body['metadata']['name']}")
        assert got["spec"]["devices"] == [{"name": "x"}]


def test_hand_deleted_slice_is_recreated_and_hand_edited_slice_restored(api, env):
    env.node("a")
    env.config(mapping("gpu", env.tag))
    rest = Rest(api)
    with run_manager(env.cp, env.namespace):
        original = wait_for(lambda: env.slices("a"), message="slices")[0]
        name = original["metadata"]["name"]
        edited = json.loads(json.dumps(original))
        edited["spec"]["devices"][0]["attributes"]["type"] = {"string": "tampered"}
        rest.put(f"{SLICES_PATH}/{name}", edited)
        wait_for(lambda: env.slices("a")[0]["spec"]["devices"] == original["spec"]["devices"], timeout=2,
                 message="the edit reverted")
        rest.delete(f"{SLICES_PATH}/{name}")
        wait_for(lambda: env.slices("a") and env.slices("a")[0]["metadata"]["uid"] != original["metadata"]["uid"],
                 timeout=2, message="the slice recreated")
        assert env.slices("a")[0]["spec"]["devices"] == original["spec"]["devices"]


@pytest.mark.parametrize("tamper", ["owner-reference-removed", "resource-slice-count-edited"])
def test_tampering_that_keeps_devices_and_generation_is_restored_on_the_event(api, env, tamper):
    """#18.6: an edit that leaves the devices and the generation as they were used to pass for the echo of our
    own last write, whenever that write's response had reached the cache before its watch event did (about 40% of
    writes), and waited for the next resync. With a 10-minute resync only the watch event can restore it; five
    rounds, each after a write of ours, so that the unlucky ordering is met."""
    env.node("a")
    env.config(mapping("gpu", env.tag))
    rest = Rest(api)
    with run_manager(env.cp, env.namespace, resync_period=600) as drv:
        original = wait_for(lambda: env.slices("a"), message="slices")[0]
        for round_ in range(1, 6):
            wait_for(drv.idle, message="converged")
            edited = env.slices("a")[0]
            if tamper == "owner-reference-removed":
                del edited["metadata"]["ownerReferences"]
            else:
                edited["spec"]["pool"]["resourceSliceCount"] = 5
            rest.put(f"{SLICES_PATH}/{original['metadata']['name']}", edited)
            restored = wait_for(lambda: (s := env.slices("a")[0])["metadata"].get("ownerReferences") ==
                                original["metadata"]["ownerReferences"] and
                                s["spec"]["pool"] == original["spec"]["pool"] and s,
                                timeout=3, message=f"the tampering undone (round {round_})")
            assert restored["metadata"]["uid"] == original["metadata"]["uid"]
            updates = lambda: metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total", verb="update")  # noqa: E731
            wait_for(lambda: updates() >= round_, timeout=2, message="the write counted")  # counted after its response
            assert updates() == round_


def test_a_slice_of_our_name_that_lost_our_label_is_never_taken_over(api, env):
    """Someone removes our managed-by label: the slice is no longer ours. The driver's re-create meets it (409
    AlreadyExists), says so in words, backs off, and never writes to it."""
    env.node("a")
    env.config(mapping("gpu", env.tag))
    rest = Rest(api)
    with run_process(env.cp, env.namespace, "--resync-period=1") as drv:
        wait_ready(drv["health"])
        original = wait_for(lambda: env.slices("a"), message="slices")[0]
        name = original["metadata"]["name"]
        taken = json.loads(json.dumps(original))
        taken["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "someone-else"}
        taken["spec"]["devices"] = [{"name": "theirs"}]
        taken = rest.put(f"{SLICES_PATH}/{name}", taken)
        wait_for(lambda: f"ResourceSlice {name} already exists without the label app.kubernetes.io/managed-by=dra-kwok"
                 in drv["log"].read_text(errors="replace"), timeout=10, message="the conflict explained in the log")
        time.sleep(2.5)  # two more resyncs and retries
        assert metric(http_get(drv["metrics"])[1], "rest_client_requests_total", code="409", method="POST") >= 1
    try:
        got = rest.get(f"{SLICES_PATH}/{name}")
        assert got["metadata"]["resourceVersion"] == taken["metadata"]["resourceVersion"]
        assert got["spec"]["devices"] == [{"name": "theirs"}]
    finally:
        rest.delete(f"{SLICES_PATH}/{name}")


def test_more_than_128_devices_become_several_slices_with_consistent_generation(api, env):
    env.node("big")
    env.config(mapping("gpu", env.tag, devices=[{"name": "gpu", "count": 200, "attributes": {"t": {"string": "x"}}}]))
    with run_manager(env.cp, env.namespace) as drv:
        items = wait_for(lambda: len(env.slices("big")) == 2 and env.slices("big"), message="two slices")
        assert all(len(s["spec"]["devices"]) <= 128 for s in items)
        assert {(s["spec"]["pool"]["generation"], s["spec"]["pool"]["resourceSliceCount"]) for s in items} == {(0, 2)}
        assert len(_device_names(items)) == len(set(_device_names(items))) == 200
        # grow to three slices: every slice of the pool is rewritten at generation 1
        env.config(mapping("gpu", env.tag, devices=[{"name": "gpu", "count": 300, "attributes": {"t": {"string": "x"}}}]))
        items = wait_for(lambda: len(env.slices("big")) == 3 and env.slices("big"), message="three slices")
        wait_for(drv.idle, message="converged")
        items = env.slices("big")
        assert {(s["spec"]["pool"]["generation"], s["spec"]["pool"]["resourceSliceCount"]) for s in items} == {(1, 3)}


@pytest.mark.parametrize("example", ["gpu", "fpga", "multi-device", "cluster-wide"])
def test_examples_produce_slices_the_apiserver_accepts(api, env, example):
    import yaml

    from dra_kwok.config import load_config

    with open(f"examples/{example}.yaml") as f:
        manifest = yaml.safe_load(f)
    config = load_config(manifest["data"]["config.yaml"])
    labels: dict[str, str] = {}
    for m in config.mappings:  # a node that every mapping of the example matches
        for term in m.node_selector_terms[:1]:
            for req in term.match_expressions:
                labels[req.key] = (req.values or ["x"])[0]
    env.node("ex", labels)
    put_configmap(api, env.namespace, "dra-kwok-configmap", manifest["data"]["config.yaml"])
    with run_manager(env.cp, env.namespace) as drv:
        wait_for(lambda: drv.idle() and slices(api), message="slices")
        wait_for(lambda: metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total", result="success") > 0,
                 message="writes")
        assert metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total", result="error") == 0
        drivers = {config.slice_driver(m) for m in config.mappings}
        ours = [s for s in slices(api, instance=drv.app.instance) if s["spec"]["driver"] in drivers]
        expected_pools = {m.resource_slice.pool.name for m in config.mappings}
        assert {s["spec"]["pool"]["name"].split("/")[-1] for s in ours} == expected_pools
        delete_configmap(api, env.namespace, "dra-kwok-configmap")  # the examples share drivers and pool names
        wait_for(lambda: not slices(api, instance=drv.app.instance), message="this instance's slices removed")


def test_probes_and_metrics_answer_with_documented_content(api, env):
    env.node("a")
    env.config(mapping("gpu", env.tag))
    with run_manager(env.cp, env.namespace) as drv:
        wait_for(lambda: env.slices("a"), message="slices")
        assert http_get(drv.health_url + "/healthz") == (200, "ok\n")
        assert http_get(drv.health_url + "/readyz") == (200, "ok\n")
        code, verbose = http_get(drv.health_url + "/readyz?verbose")
        assert code == 200 and "[+]informer-nodes ok" in verbose and "readyz check passed" in verbose
        text = drv.metrics_text()
        for family in ("controller_runtime_reconcile_total", "controller_runtime_reconcile_errors_total",
                       "controller_runtime_reconcile_time_seconds_bucket", "workqueue_depth", "workqueue_adds_total",
                       "rest_client_requests_total", "dra_kwok_resourceslices", "dra_kwok_kwok_nodes",
                       "dra_kwok_config_valid"):
            assert f"\n{family}" in text, family
        assert metric(text, "dra_kwok_config_valid") == 1
        assert metric(text, "dra_kwok_kwok_nodes", state="matched") >= 1
        assert metric(text, "controller_runtime_reconcile_total", controller="resourceslice", result="success") >= 1


def test_sigterm_exits_zero_within_five_seconds(api, env):
    env.node("a")
    env.config(mapping("gpu", env.tag))
    with run_process(env.cp, env.namespace) as drv:
        wait_ready(drv["health"])
        wait_for(lambda: env.slices("a"), message="slices")
        code, seconds = sigterm_and_wait(drv["proc"])
    assert code == 0, drv["log"].read_text()[-2000:]
    assert seconds < 5


def test_two_replicas_with_leader_election_one_writes_and_failover_within_20s(api, env):
    env.config(mapping("gpu", env.tag))
    args = ("--leader-elect", "--resync-period=1")
    with run_process(env.cp, env.namespace, *args) as first:
        wait_ready(first["health"])
        with run_process(env.cp, env.namespace, *args) as second:
            wait_ready(second["health"])
            for sfx in ("a", "b"):
                env.node(sfx)
            wait_for(lambda: len(env.slices()) == 2, message="slices")
            texts = [http_get(r["metrics"])[1] for r in (first, second)]
            leaders = [metric(t, "leader_election_master_status") for t in texts]
            assert sorted(leaders) == [0.0, 1.0]
            writes = [metric(t, "dra_kwok_resourceslice_writes_total") for t in texts]
            leader, standby = (first, second) if leaders[0] == 1 else (second, first)
            assert writes[leaders.index(1.0)] >= 2 and writes[leaders.index(0.0)] == 0
            leader["proc"].kill()  # no release: the standby must wait out the lease
            t0 = time.monotonic()
            wait_for(lambda: metric(http_get(standby["metrics"])[1], "leader_election_master_status") == 1,
                     timeout=20, message="the standby to take over")
            env.node("c")
            wait_for(lambda: env.slices("c"), timeout=5, message="the new leader writes")
            assert time.monotonic() - t0 < 20


def test_local_config_file_mode_reloads_the_file_and_reports_its_thread(api, env, tmp_path):
    from tests.integration.driver import config_text

    env.node("a")
    path = tmp_path / "config.yaml"
    path.write_text(config_text(env.driver, [mapping("gpu", env.tag)]))
    with run_manager(env.cp, env.namespace, config_file=str(path)) as drv:
        wait_for(lambda: env.slices("a"), message="slices from the file")
        changed = mapping("gpu", env.tag)
        changed["resourceSlice"]["devices"][0]["attributes"]["type"] = {"string": "from-the-file"}
        path.write_text(config_text(env.driver, [changed]))
        wait_for(lambda: env.slices("a")[0]["spec"]["devices"][0]["attributes"]["type"]["string"] == "from-the-file",
                 timeout=5, message="the edited file applied")
        code, verbose = http_get(drv.health_url + "/healthz?verbose")
        assert code == 200 and "[+]config-file ok" in verbose
