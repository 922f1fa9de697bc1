"""Faults survived with nothing lost, on a private control plane (its apiserver is killed, paused and restarted).

Each test names the fault it injects. Waits are on conditions with timeouts; the only sleeps are the fault's own
duration (how long the apiserver stays paused), which is what is being tested.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter

import pytest
from kubernetes import client, watch

from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.render import SLICES_PATH
from dra_kwok.testing.controlplane import ControlPlane, _get
from tests.integration.driver import (
    TestEnv,
    delete_configmap,
    http_get,
    mapping,
    metric,
    private_env,
    put_configmap,
    run_manager,
    run_process,
    wait_ready,
)
from tests.support.helpers import wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def private_cp():
    cp = ControlPlane().start()
    yield cp
    cp.stop()


@pytest.fixture
def fenv(private_cp, unique):
    with private_env(private_cp, unique, clean=private_cp.components["kube-apiserver"].alive) as e:
        yield e


def _foreign(env: TestEnv) -> dict:
    body = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": f"foreign-{env.unique}", "labels": {"app.kubernetes.io/managed-by": "someone-else"}},
            "spec": {"driver": env.driver, "allNodes": True, "pool": {"name": "shared", "resourceSliceCount": 1},
                     "devices": [{"name": "keep-me"}]}}
    return Rest(env.api).post(SLICES_PATH, body)


def _exactly_once(env: TestEnv, nodes: int, pools_per_node: int) -> bool:
    items = env.slices()
    per_pool = Counter((s["spec"]["nodeName"], s["spec"]["pool"]["name"]) for s in items)
    return len(per_pool) == nodes * pools_per_node and set(per_pool.values()) == {1}


def _log(proc_info: dict) -> str:
    return proc_info["log"].read_text(errors="replace")


@pytest.mark.parametrize("when", ["mid-convergence", "steady-state"])
def test_apiserver_killed_and_restarted(fenv, private_cp, when):
    """Fault: kube-apiserver SIGKILLed, down for a while, restarted on the same etcd."""
    nodes = 40 if when == "mid-convergence" else 5
    for i in range(nodes):
        fenv.node(str(i))
    foreign = _foreign(fenv)
    fenv.config(mapping("gpu", fenv.tag), mapping("fpga", fenv.tag, pool="fpga", devices=[{"name": "fpga"}]))
    with run_process(private_cp, fenv.namespace, "--resync-period=2") as drv:
        wait_ready(drv["health"])
        if when == "mid-convergence":
            wait_for(lambda: len(fenv.slices()) >= 5, message="convergence under way")
        else:
            wait_for(lambda: _exactly_once(fenv, nodes, 2), timeout=30, message="converged")
        private_cp.stop_apiserver(kill=True)
        wait_for(lambda: http_get(drv["health"] + "/readyz")[0] == 500, timeout=90,
                 message="readyz to report the outage")
        assert drv["proc"].poll() is None, "the driver must stay up"
        assert http_get(drv["health"] + "/healthz")[0] == 200  # alive: no restart loop because the apiserver is down
        private_cp.start_apiserver()
        wait_ready(drv["health"], timeout=90)
        wait_for(lambda: _exactly_once(fenv, nodes, 2), timeout=60, message="every slice exactly once")
        assert drv["proc"].poll() is None
    got = Rest(fenv.api).get(f"{SLICES_PATH}/{foreign['metadata']['name']}")
    assert got["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]


def test_watch_expiry_410_gone_relists_and_reflects_the_gap(fenv, private_cp):
    """Fault: the driver is frozen while the cluster changes, etcd is compacted and the apiserver restarts, so its
    watches resume from a compacted resourceVersion (410 Gone)."""
    for sfx in ("stay", "doomed"):
        fenv.node(sfx)
    fenv.config(mapping("gpu", fenv.tag))
    with run_process(private_cp, fenv.namespace, "--resync-period=300", "-v", "2") as drv:
        wait_ready(drv["health"])
        wait_for(lambda: len(fenv.slices()) == 2, message="converged")
        drv["proc"].send_signal(signal.SIGSTOP)
        try:
            # Restart first, so that no event of the gap reaches the frozen driver's open connections.
            private_cp.stop_apiserver()
            private_cp.start_apiserver()
            fenv.node("added")
            client.CoreV1Api(fenv.api).delete_node(fenv.name("doomed"))
            changed = mapping("gpu", fenv.tag)
            changed["resourceSlice"]["devices"][0]["attributes"]["type"] = {"string": "changed-in-the-gap"}
            fenv.config(changed)
            private_cp.compact_etcd()
            private_cp.stop_apiserver()  # and again, so that the watch cache starts after the compaction
            private_cp.start_apiserver()
        finally:
            drv["proc"].send_signal(signal.SIGCONT)

        def reflected() -> bool:
            items = fenv.slices()
            return sorted(s["spec"]["nodeName"] for s in items) == [fenv.name("added"), fenv.name("stay")] and all(
                d["attributes"]["type"]["string"] == "changed-in-the-gap" for s in items for d in s["spec"]["devices"])

        wait_for(reflected, timeout=60, message="the gap's changes reflected")
        assert "Watch expired, re-listing" in _log(drv), _log(drv)


def test_dead_connection_is_noticed_through_timeouts(fenv, private_cp):
    """Fault: the apiserver is SIGSTOPped (connections stay open, nothing answers) longer than the client's
    timeouts, then SIGCONTed."""
    fenv.node("a")
    fenv.config(mapping("gpu", fenv.tag))
    with run_manager(private_cp, fenv.namespace, watch_timeout=3, request_timeout=3, resync_period=1.0) as drv:
        wait_for(lambda: fenv.slices("a"), message="converged")
        private_cp.signal_apiserver(signal.SIGSTOP)
        try:
            wait_for(lambda: http_get(drv.health_url + "/readyz")[0] == 500, timeout=30,
                     message="readyz to notice the dead connection")
            assert "disconnected" in http_get(drv.health_url + "/readyz?verbose")[1]
            assert http_get(drv.health_url + "/healthz")[0] == 200
        finally:
            private_cp.signal_apiserver(signal.SIGCONT)
        wait_for(lambda: http_get(drv.health_url + "/readyz")[0] == 200, timeout=60, message="recovered")
        fenv.node("after")
        wait_for(lambda: fenv.slices("after"), timeout=10, message="works again after the outage")


def test_conflict_from_another_writer_is_retried(fenv, private_cp, mocker):
    """Fault: another actor updates our slice between the driver's read and its write (a real 409 Conflict)."""
    from dra_kwok.runtime.rest import Rest as RestClass

    fenv.node("a")
    fenv.config(mapping("gpu", fenv.tag))
    other = Rest(fenv.api)
    with run_manager(private_cp, fenv.namespace) as drv:
        original = wait_for(lambda: fenv.slices("a"), message="converged")[0]
        real_put = RestClass.put
        raced: list[int] = []

        def racing_put(self, path, body, **kw):
            if not raced:  # the other writer wins the race once, for real
                raced.append(1)
                current = other.get(path)
                current["metadata"].setdefault("annotations", {})["tamper"] = "yes"
                real_put(other, path, current)
            return real_put(self, path, body, **kw)

        mocker.patch.object(RestClass, "put", racing_put)
        changed = mapping("gpu", fenv.tag)
        changed["resourceSlice"]["devices"][0]["attributes"]["type"] = {"string": "after-conflict"}
        fenv.config(changed)
        wait_for(lambda: fenv.slices("a")[0]["spec"]["devices"][0]["attributes"]["type"]["string"] == "after-conflict",
                 timeout=10, message="the update to land after the conflict")
        text = drv.metrics_text()
        assert metric(text, "rest_client_requests_total", code="409", method="PUT") >= 1
        assert metric(text, "controller_runtime_reconcile_errors_total") >= 1
        final = fenv.slices("a")[0]
        assert final["metadata"]["uid"] == original["metadata"]["uid"]
        assert final["metadata"]["annotations"]["tamper"] == "yes"  # their annotation kept


def test_tampering_while_writing_ends_correct(fenv, private_cp):
    """Fault: another actor keeps editing and deleting our slices while the driver converges."""
    for i in range(10):
        fenv.node(str(i))
    fenv.config(mapping("gpu", fenv.tag))
    other = Rest(fenv.api)
    stop = threading.Event()

    def tamper() -> None:
        while not stop.is_set():
            for s in fenv.slices():
                try:
                    if hash(s["metadata"]["name"]) % 2:
                        s["spec"]["devices"] = [{"name": "bogus"}]
                        other.put(f"{SLICES_PATH}/{s['metadata']['name']}", s)
                    else:
                        other.delete(f"{SLICES_PATH}/{s['metadata']['name']}")
                except Exception:
                    pass  # conflicts and 404s are the point
            stop.wait(0.05)

    with run_manager(private_cp, fenv.namespace, resync_period=1.0) as drv:
        t = threading.Thread(target=tamper)
        t.start()
        time.sleep(2)  # the fault's duration
        stop.set()
        t.join()

        def correct() -> bool:
            items = fenv.slices()
            return len(items) == 10 and all(
                sorted(d["name"] for d in s["spec"]["devices"]) == ["gpu-0", "gpu-1"] for s in items)

        wait_for(correct, timeout=20, message="every slice restored")
        assert drv.thread.is_alive()


def test_driver_sigkilled_between_writes_adopts_its_slices_on_restart(fenv, private_cp):
    """Fault: `dra-kwok run` SIGKILLed in the middle of converging, then started again."""
    for i in range(60):
        fenv.node(str(i))
    fenv.config(mapping("gpu", fenv.tag))
    with run_process(private_cp, fenv.namespace, "--workers=1") as first:
        wait_ready(first["health"])
        wait_for(lambda: len(fenv.slices()) >= 10, message="some slices written")
        first["proc"].kill()
        first["proc"].wait(5)
    before = {s["metadata"]["name"]: s["metadata"]["uid"] for s in fenv.slices()}
    assert 0 < len(before) < 60, "the kill must land between writes"
    with run_process(private_cp, fenv.namespace) as second:
        wait_ready(second["health"])
        wait_for(lambda: _exactly_once(fenv, 60, 1), timeout=60, message="converged after restart")
        text = http_get(second["metrics"])[1]
    after = {s["metadata"]["name"]: s["metadata"]["uid"] for s in fenv.slices()}
    assert {n: after[n] for n in before} == before  # adopted: same objects, no delete-and-recreate
    assert metric(text, "dra_kwok_resourceslice_writes_total", verb="delete") == 0
    assert metric(text, "dra_kwok_resourceslice_writes_total", verb="create") == 60 - len(before)


def test_config_flapping_never_deletes_while_merely_invalid(fenv, private_cp):
    """Fault: the ConfigMap flaps valid -> invalid -> valid -> deleted -> recreated, quickly."""
    fenv.node("a")
    fenv.config(mapping("gpu", fenv.tag))
    deletes: list[tuple[float, str]] = []
    stop = threading.Event()

    def record() -> None:
        w = watch.Watch()
        for ev in w.stream(client.ResourceV1Api(fenv.api).list_resource_slice, timeout_seconds=60,
                           _request_timeout=70):
            if ev["type"] == "DELETED":
                deletes.append((time.monotonic(), ev["object"].metadata.name))
            if stop.is_set():
                break

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    with run_manager(private_cp, fenv.namespace) as drv:
        wait_for(lambda: fenv.slices("a"), message="converged")
        for text in ("mappings: [unclosed", "driver: Not_Valid\nmappings: []\n", "{}"):
            put_configmap(fenv.api, fenv.namespace, "dra-kwok-configmap", text)
        wait_for(lambda: metric(drv.metrics_text(), "dra_kwok_config_valid") == 0, message="invalid seen")
        wait_for(drv.idle, message="idle while invalid")
        assert deletes == [] and fenv.slices("a")
        second = mapping("gpu", fenv.tag, pool="second")
        fenv.config(second)
        delete_configmap(fenv.api, fenv.namespace, "dra-kwok-configmap")
        final = mapping("gpu", fenv.tag, pool="final")
        fenv.config(final)
        wait_for(lambda: [s["spec"]["pool"]["name"] for s in fenv.slices()] == [f"{fenv.name('a')}/final"],
                 timeout=10, message="the recreated config's slices, and only those")
    stop.set()


def test_leader_failover_under_load_never_has_two_writers(fenv, private_cp):
    """Fault: the leader is frozen (SIGSTOP) past its lease while converging, a standby takes over, then the old
    leader is resumed: it must not write again. Checked on both replicas' write logs."""
    for i in range(150):
        fenv.node(str(i))
    fenv.config(mapping("gpu", fenv.tag))
    args = ("--leader-elect", "--log-format=json", "-v", "3", "--workers=1")
    with run_process(private_cp, fenv.namespace, *args) as a, run_process(private_cp, fenv.namespace, *args) as b:
        wait_ready(a["health"])
        wait_ready(b["health"])
        leaders = lambda: [metric(http_get(r["metrics"])[1], "leader_election_master_status") for r in (a, b)]  # noqa: E731
        wait_for(lambda: sorted(leaders()) == [0.0, 1.0], message="one leader")
        leader, standby = (a, b) if leaders()[0] == 1 else (b, a)
        wait_for(lambda: len(fenv.slices()) >= 5, message="the leader writing")
        leader["proc"].send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: metric(http_get(standby["metrics"])[1], "leader_election_master_status") == 1,
                     timeout=40, message="the standby to take over")
        finally:
            leader["proc"].send_signal(signal.SIGCONT)
        changed = mapping("gpu", fenv.tag)
        changed["resourceSlice"]["devices"][0]["attributes"]["type"] = {"string": "after-failover"}
        fenv.config(changed)

        def converged() -> bool:
            items = fenv.slices()
            return _exactly_once(fenv, 150, 1) and all(
                s["spec"]["devices"][0]["attributes"]["type"]["string"] == "after-failover" for s in items)

        wait_for(converged, timeout=90, message="converged by the new leader")
        wait_for(lambda: leader["proc"].poll() is not None, timeout=30, message="the old leader to exit")

    def writes(info: dict) -> list[int]:
        """The resourceVersions (etcd revisions: one global order) of every write a replica logged."""
        out = []
        for line in _log(info).splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") in ("Created ResourceSlice", "Updated ResourceSlice") and "resourceVersion" in rec:
                out.append(int(rec["resourceVersion"]))
        return out

    old, new = writes(leader), writes(standby)
    assert old and new
    # Never two writers: every write of the old leader precedes, in etcd's order, every write of the new one.
    # (A write already sent when the pause hit is logged after the resume, but its revision tells when it landed.)
    assert max(old) < min(new)


def test_recovery_after_an_apiserver_freeze_takes_seconds(fenv, private_cp):
    """Fault: kube-apiserver SIGSTOPped for 60 s in the middle of converging 200 nodes, then SIGCONTed. Within 5 s of
    the apiserver answering /readyz again every node has its slices, and so has a node created right then: no
    per-key backoff, reconnect backoff or read timeout left over from the outage holds the work back (#18 item 7)."""
    nodes, freeze = 200, 60.0
    for i in range(nodes):
        fenv.node(str(i))
    fenv.config(mapping("gpu", fenv.tag))
    apiserver = private_cp.components["kube-apiserver"]
    with run_process(private_cp, fenv.namespace) as drv:
        wait_ready(drv["health"])
        wait_for(lambda: len(fenv.slices()) >= 1, timeout=30, interval=0.01, message="convergence under way")
        private_cp.signal_apiserver(signal.SIGSTOP)
        try:
            time.sleep(freeze)  # the fault itself
        finally:
            private_cp.signal_apiserver(signal.SIGCONT)
        wait_for(lambda: _get(apiserver.health_url, private_cp.token, timeout=1)[0] == 200, timeout=30, interval=0.02,
                 message="the apiserver's /readyz")
        answering = time.monotonic()
        fenv.node("after")
        wait_for(lambda: _exactly_once(fenv, nodes + 1, 1), timeout=60, interval=0.2, message="every node's slices")
        converged = time.monotonic() - answering
        print(f"\nfreeze {freeze:.0f}s: all {nodes + 1} nodes' slices {converged:.1f}s after the apiserver answered")
        assert converged <= 5.0, f"took {converged:.1f}s after the apiserver answered again\n{_log(drv)[-3000:]}"
        assert drv["proc"].poll() is None
