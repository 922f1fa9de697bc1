"""Several dra-kwok instances on one cluster (#18), against the real apiserver, with real `dra-kwok run` processes
where two of them meet: each owns only the slices carrying its instance label, a pool published first by one is
refused by the other (reported once, never fought over), a ConfigMap that does not exist makes an instance not
ready and costs nobody anything, and the slices of the release before the instance label are adopted in place."""

from __future__ import annotations

import json
import time

from kubernetes import client

from dra_kwok.config import load_config
from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.nodes import NodeInfo
from dra_kwok.slices.render import INSTANCE_LABEL, SLICES_PATH, render_node
from dra_kwok.testing.controlplane import _get
from tests.integration.driver import (
    config_text,
    ensure_namespace,
    http_get,
    mapping,
    metric,
    put_configmap,
    run_manager,
    run_process,
    slices,
    wait_ready,
)
from tests.support.helpers import wait_for

CONFLICT_LINE = "Refusing pools published first by another dra-kwok instance"


def _state(items: list[dict]) -> dict[str, tuple[str, str]]:
    return {s["metadata"]["name"]: (s["metadata"]["uid"], s["metadata"]["resourceVersion"]) for s in items}


def _metrics(proc: dict) -> str:
    return http_get(proc["metrics"])[1]


def _apiserver_slice_writes(cp) -> float:
    """Writes to ResourceSlices as the apiserver counts them (its own apiserver_request_total), from every client."""
    code, text = _get(f"{cp.url}/metrics", cp.token, timeout=10)
    assert code == 200, text[:300]
    return sum(metric(text, "apiserver_request_total", resource="resourceslices", verb=verb)
               for verb in ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION"))


def _log(proc: dict) -> str:
    return proc["log"].read_text(errors="replace")


def _fpga(env) -> dict:
    return mapping("fpga", env.tag, pool="fpga", devices=[{"name": "fpga"}])


def test_a_second_instance_with_a_config_file_refuses_the_pools_of_the_first_and_publishes_the_rest(api, env,
                                                                                                  tmp_path):
    """The laptop case of #18: instance A (the ConfigMap) runs; instance B (`--config-file`, the same mapping plus
    one of its own, resync every second) joins for 15 s. A's slices keep their uid and resourceVersion, B writes
    only its own pool, says once why it refuses the others, and exports the count."""
    for sfx in ("a", "b"):
        env.node(sfx)
    env.config(mapping("gpu", env.tag))
    local = tmp_path / "local.yaml"
    local.write_text(config_text(env.driver, [mapping("gpu", env.tag), _fpga(env)]))
    instance_a = f"{env.namespace}.dra-kwok-configmap"
    with run_process(env.cp, env.namespace, "--resync-period=1") as a:
        wait_ready(a["health"])
        before = _state(wait_for(lambda: len(slices(api, instance=instance_a)) == 2 and
                                 slices(api, instance=instance_a), message="A's slices"))
        with run_process(env.cp, env.namespace, f"--config-file={local}", "--resync-period=1") as b:
            wait_ready(b["health"])
            wait_for(lambda: len(env.slices()) == 4, message="B's fpga pools beside A's gpu pools")
            settled = _apiserver_slice_writes(env.cp)
            assert settled >= 4  # the count is there: A's and B's creates
            time.sleep(15)  # fifteen resyncs of B: a write war would show as thousands of writes here
            assert _apiserver_slice_writes(env.cp) == settled  # not one slice write, by the apiserver's count
            text_b = _metrics(b)
            assert metric(text_b, "dra_kwok_pool_conflicts", holder=instance_a) == 2
            assert metric(text_b, "dra_kwok_resourceslice_writes_total") == 2  # its two fpga slices, nothing else
            assert metric(text_b, "rest_client_requests_total", code="409") == 0
            assert _log(b).count(CONFLICT_LINE) == 1, _log(b)[-3000:]
            assert metric(_metrics(a), "dra_kwok_pool_conflicts") == 0
            assert metric(_metrics(a), "dra_kwok_resourceslice_writes_total") == 2
        assert _state(slices(api, instance=instance_a)) == before
        by_pool = {s["spec"]["pool"]["name"].split("/")[-1]: s["metadata"]["labels"][INSTANCE_LABEL]
                   for s in env.slices()}
        assert by_pool["gpu"] == instance_a and by_pool["fpga"].startswith("file-")


def test_two_deployments_in_two_namespaces_with_leader_election_never_fight(api, env, unique):
    """The #18 case of two replicas with --leader-elect in two namespaces (two Leases, so two leaders): the second
    refuses the first one's pools, a Warning Event PoolConflict on its ConfigMap says why (once), and nobody's
    slices move."""
    for sfx in ("a", "b", "c"):
        env.node(sfx)
    env.config(mapping("gpu", env.tag))
    other = f"drv2-{unique}"
    ensure_namespace(api, other)
    put_configmap(api, other, "dra-kwok-configmap", config_text(env.driver, [mapping("gpu", env.tag)]))
    with run_process(env.cp, env.namespace, "--leader-elect", "--resync-period=1") as a:
        wait_ready(a["health"])
        before = _state(wait_for(lambda: len(env.slices()) == 3 and env.slices(), message="A's slices"))
        with run_process(env.cp, other, "--leader-elect", "--resync-period=1") as b:
            wait_ready(b["health"])

            def conflict_events() -> list:
                return [e for e in client.CoreV1Api(api).list_namespaced_event(other).items
                        if e.reason == "PoolConflict"]

            events = wait_for(conflict_events, timeout=15, message="a PoolConflict Event on B's ConfigMap")
            time.sleep(8)
            assert metric(_metrics(b), "leader_election_master_status") == 1
            assert metric(_metrics(b), "dra_kwok_resourceslice_writes_total") == 0
            assert metric(_metrics(b), "dra_kwok_pool_conflicts") == 3
            events = conflict_events()
            assert len(events) == 1 and events[0].count == 1 and events[0].type == "Warning"
            assert events[0].involved_object.name == "dra-kwok-configmap"
            assert f"dra-kwok instance {env.namespace}.dra-kwok-configmap" in events[0].message
        assert _state(env.slices()) == before


def test_two_instances_started_together_settle_each_pool_on_one_of_them(api, env, unique):
    """No cache to learn from: the nodes appear while both run, so both create at once, meet on the slice names
    (409 AlreadyExists), learn the holder and withdraw. Every pool ends held by exactly one instance and the
    writes stop."""
    big = mapping("gpu", env.tag, devices=[{"name": "gpu", "count": 300}])  # three slices per pool
    env.config(big)
    other = f"drv2-{unique}"
    ensure_namespace(api, other)
    put_configmap(api, other, "dra-kwok-configmap", config_text(env.driver, [big]))
    with run_process(env.cp, env.namespace, "--resync-period=1") as a, \
            run_process(env.cp, other, "--resync-period=1") as b:
        for proc in (a, b):
            wait_ready(proc["health"])
        for i in range(6):
            env.node(str(i))
        wait_for(lambda: len(env.slices()) == 18, timeout=20, message="18 slices")

        def writes() -> float:
            return sum(metric(_metrics(p), "dra_kwok_resourceslice_writes_total") for p in (a, b))

        wait_for(lambda: a["proc"].poll() is None and b["proc"].poll() is None, message="both running")
        time.sleep(3)
        settled = writes()
        time.sleep(5)
        assert writes() == settled, "the two instances are still writing"
        assert sum(metric(_metrics(p), "rest_client_requests_total", code="409") for p in (a, b)) >= 1  # raced
        assert settled <= 18 + 6 * 3  # each slice created once, at most one withdrawal per pool's slices
        pools: dict[str, set[str]] = {}
        for s in env.slices():
            pools.setdefault(s["spec"]["pool"]["name"], set()).add(s["metadata"]["labels"][INSTANCE_LABEL])
        assert len(pools) == 6 and all(len(holders) == 1 for holders in pools.values()), pools
        for proc in (a, b):
            assert "without the label app.kubernetes.io/managed-by=dra-kwok" not in _log(proc)


def test_a_namespace_typo_is_not_ready_and_touches_nothing(api, env):
    """`--namespace karpentr`: no ConfigMap there. That instance is not ready, says which ConfigMap it is missing
    (in /readyz?verbose and in its log), writes nothing, and the running instance's slices do not move."""
    env.node("a")
    env.config(mapping("gpu", env.tag))
    with run_process(env.cp, env.namespace) as a:
        wait_ready(a["health"])
        before = _state(wait_for(lambda: env.slices("a"), message="A's slices"))
        typo = env.namespace[:-1]
        settled = _apiserver_slice_writes(env.cp)
        assert settled >= 1  # the count is there: A's create
        with run_process(env.cp, typo, "--resync-period=1") as b:
            wait_for(lambda: "not found" in http_get(b["health"] + "/readyz?verbose")[1], message="B's verdict")
            time.sleep(3)
            assert _apiserver_slice_writes(env.cp) == settled  # by the apiserver's count: nobody wrote a slice
            code, verbose = http_get(b["health"] + "/readyz?verbose")
            assert code == 500
            assert f"[-]config failed: configmap {typo}/dra-kwok-configmap not found" in verbose
            assert "Configuration not found" in _log(b)
            assert metric(_metrics(b), "dra_kwok_resourceslice_writes_total") == 0
        assert _state(env.slices("a")) == before


def test_a_missing_configmap_at_start_removes_only_this_instances_slices(api, env):
    """The documented choice: an instance whose ConfigMap is gone when it starts removes its own slices, as it
    would have had the ConfigMap been deleted while it ran; another instance's slices stay."""
    env.node("a")
    env.config(mapping("gpu", env.tag))
    with run_manager(env.cp, env.namespace) as drv:
        mine = wait_for(lambda: env.slices("a"), message="slices")
        instance = drv.app.instance
    client.CoreV1Api(api).delete_namespaced_config_map("dra-kwok-configmap", env.namespace)
    foreign = json.loads(json.dumps(mine[0]))
    foreign["metadata"] = {"name": "other-" + mine[0]["metadata"]["name"],
                           "labels": {**mine[0]["metadata"]["labels"], INSTANCE_LABEL: "someone-else"}}
    foreign["spec"]["pool"]["name"] += "-other"
    rest = Rest(api)
    foreign = rest.post(SLICES_PATH, foreign)
    with run_process(env.cp, env.namespace) as b:
        wait_for(lambda: not slices(api, instance=instance), timeout=15, message="this instance's slices removed")
        assert "not found" in http_get(b["health"] + "/readyz?verbose")[1]
    assert rest.get(f"{SLICES_PATH}/{foreign['metadata']['name']}")["metadata"]["resourceVersion"] == \
        foreign["metadata"]["resourceVersion"]


def test_slices_of_the_previous_release_are_adopted_in_place(api, env):
    """Upgrade without churn: slices labelled by the release before instances (managed-by only) are adopted by
    the instance whose config renders their pool: the label added by an update, same uid, same generation, no
    create and no delete. A previous-release slice of a pool no config renders is left alone."""
    node = env.node("a")
    gpu = mapping("gpu", env.tag, devices=[{"name": "gpu", "count": 200}])  # two slices
    text = config_text(env.driver, [gpu])
    env.config(gpu)
    info = NodeInfo(env.name("a"), node["metadata"]["uid"], node["metadata"]["labels"])
    rest = Rest(api)
    old = [rest.post(SLICES_PATH, body) for pool in render_node(load_config(text), info) for body in pool.slices]
    assert len(old) == 2 and all(INSTANCE_LABEL not in s["metadata"]["labels"] for s in old)
    orphan = json.loads(json.dumps(old[0]))
    orphan["metadata"] = {"name": "orphan-" + env.unique, "labels": {"app.kubernetes.io/managed-by": "dra-kwok"}}
    orphan["spec"]["pool"]["name"] = f"{env.name('a')}/retired"
    orphan = rest.post(SLICES_PATH, orphan)
    with run_manager(env.cp, env.namespace) as drv:
        adopted = wait_for(lambda: len(slices(api, instance=drv.app.instance)) == 2 and
                           slices(api, instance=drv.app.instance), message="the old slices adopted")
        wait_for(drv.idle, message="converged")
        text_m = drv.metrics_text()
        assert metric(text_m, "dra_kwok_resourceslice_writes_total", verb="update") == 2
        assert metric(text_m, "dra_kwok_resourceslice_writes_total", verb="create") == 0
        assert metric(text_m, "dra_kwok_resourceslice_writes_total", verb="delete") == 0
    assert {s["metadata"]["name"]: s["metadata"]["uid"] for s in adopted} == \
        {s["metadata"]["name"]: s["metadata"]["uid"] for s in old}
    assert {s["spec"]["pool"]["generation"] for s in adopted} == {0}
    assert rest.get(f"{SLICES_PATH}/{orphan['metadata']['name']}")["metadata"]["resourceVersion"] == \
        orphan["metadata"]["resourceVersion"]
    rest.delete(f"{SLICES_PATH}/{orphan['metadata']['name']}")


def test_replicas_of_one_instance_without_leader_election_say_so_truthfully(api, env):
    """#19.6: two replicas of the same instance started together without --leader-elect race on creates. A 409
    on a slice that carries our labels is not reported as a slice 'without the label'; the replica that lost
    says, once, that another replica runs without leader election."""
    env.config(mapping("gpu", env.tag))
    with run_process(env.cp, env.namespace) as a, run_process(env.cp, env.namespace) as b:
        for proc in (a, b):
            wait_ready(proc["health"])
        for i in range(8):
            env.node(str(i))  # seen by both at once: both create
        wait_for(lambda: len(env.slices()) == 8, timeout=20, message="8 slices")
        time.sleep(2)
        for proc in (a, b):
            log = _log(proc)
            assert "without the label" not in log
            lost = metric(_metrics(proc), "rest_client_requests_total", code="409", method="POST")
            assert log.count("another replica of this instance runs without --leader-elect") == (1 if lost else 0)
