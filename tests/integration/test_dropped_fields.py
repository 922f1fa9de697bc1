"""The driver on a cluster whose apiserver drops fields: it publishes what is kept, says so once, and stops writing.

A kube-apiserver with a slice feature gate off stores a slice without that gate's fields, silently. The driver
cannot always know it in advance (an apiserver's ``--feature-gates`` cannot be read), and where it does know (the
version's defaults) it only warns: the config stays valid. Here, the driver runs with its default flags:

- Kubernetes 1.37: an apiserver started with ``--feature-gates=DRAConsumableCapacity=false``; the driver assumes
  1.37's defaults. ``allowMultipleAllocations`` and ``requestPolicy`` are dropped, the taints (GA) kept.
- Kubernetes 1.34: the default gates, where taints and consumable capacity are alpha and off; the driver reads
  1.34 from the apiserver, accepts the config with a warning per field, and publishes. All three fields are dropped.

On both: the slices are published without the dropped fields, one Warning Event ``DroppedFields`` on the ConfigMap
names the fields and gates, ``dra_kwok_dropped_fields_total{field}`` counts the writes that lost each field,
``/readyz?verbose`` names them and passes, and over three resyncs nothing is written. A config change rewrites the
slices once (with every field sent again) and is reported once more.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from dra_kwok.slices.features import Version
from dra_kwok.testing.controlplane import ControlPlane, k8s_version
from tests.integration.driver import TestEnv, http_get, mapping, metric, private_env, run_manager
from tests.support.helpers import wait_for

VERSION = Version.parse(k8s_version())
OLD = VERSION.minor < 36  # 1.34/1.35: taints and consumable capacity are alpha, off by default
CAPACITY = {"memory": {"value": "16Gi", "requestPolicy": {"default": "1Gi", "validValues": ["1Gi", "2Gi"]}}}
TAINTS = [{"key": "example.com/unhealthy", "value": "xid-79", "effect": "NoSchedule"}]
CONSUMABLE = ["devices[].allowMultipleAllocations", "devices[].capacity{}.requestPolicy"]
DROPPED = sorted(CONSUMABLE + (["devices[].taints"] if OLD else []))
GATES = {"devices[].taints": "DRADeviceTaints", "devices[].allowMultipleAllocations": "DRAConsumableCapacity",
         "devices[].capacity{}.requestPolicy": "DRAConsumableCapacity"}


def _devices(count: int) -> list[dict]:
    return [{"name": "gpu", "count": count, "attributes": {"type": {"string": "nvidia-t4"}}, "capacity": CAPACITY,
             "taints": TAINTS, "allowMultipleAllocations": True}]


@pytest.fixture(scope="module")
def gated_plane(control_plane):
    """1.36+: a control plane of its own with consumable capacity off; 1.34/1.35: the session's, default gates."""
    if OLD:
        yield control_plane
        return
    cp = ControlPlane(extra_apiserver_args=["--feature-gates=DRAConsumableCapacity=false"]).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def gated_env(gated_plane, unique):
    with private_env(gated_plane, unique) as env:
        yield env


def _dropped_events(env: TestEnv) -> list:
    events = client.CoreV1Api(env.api).list_namespaced_event(env.namespace).items
    return [e for e in events if e.type == "Warning" and e.reason == "DroppedFields"]


def _reported(env: TestEnv) -> int:
    """How many times DroppedFields was recorded (the same message again is one Event whose count grows)."""
    return sum(e.count or 1 for e in _dropped_events(env))


def test_dropped_fields_are_published_without_reported_once_and_never_rewritten(gated_env):
    env = gated_env
    env.node("a")
    env.node("b")
    env.config(mapping("gpu", env.tag, devices=_devices(2)))
    with run_manager(env.cp, env.namespace, resync_period=1.0) as drv:
        assert drv.app.version.minor == VERSION.minor
        wait_for(lambda: len(env.slices()) == 2, message="both nodes' slices")
        wait_for(drv.idle, message="converged")
        stored = [d for s in env.slices() for d in s["spec"]["devices"]]
        assert len(stored) == 4
        assert all("allowMultipleAllocations" not in d and "requestPolicy" not in d["capacity"]["memory"]
                   for d in stored)
        assert all(d["capacity"]["memory"]["value"] == "16Gi" for d in stored)  # the rest is published
        assert all(("taints" in d) != OLD for d in stored)  # 1.37 keeps taints (GA), 1.34 drops them

        # one Warning Event on the ConfigMap, naming every dropped field and its gate
        events = wait_for(lambda: _dropped_events(env), message="the DroppedFields event")
        assert len(events) == 1 and events[0].count in (None, 1)
        assert events[0].involved_object.kind == "ConfigMap"
        assert events[0].involved_object.name == "dra-kwok-configmap"
        for path in DROPPED:
            assert f"{path} (feature gate {GATES[path]})" in events[0].message
        assert ("devices[].taints" in events[0].message) == OLD

        # the metric: one per slice write that lost the field (two creates)
        text = drv.metrics_text()
        assert metric(text, "dra_kwok_resourceslice_writes_total", verb="create", result="success") == 2
        for path in DROPPED:
            assert metric(text, "dra_kwok_dropped_fields_total", field=path) == 2
        assert metric(text, "dra_kwok_dropped_fields_total", field="devices[].taints") == (2 if OLD else 0)

        # /readyz passes and says what is dropped
        code, verbose = http_get(drv.health_url + "/readyz?verbose")
        assert code == 200
        line = next(ln for ln in verbose.splitlines() if "dropped-fields" in ln)
        assert line.startswith("[+]dropped-fields ok: the apiserver drops ")
        for path in DROPPED:
            assert f"{path} (feature gate {GATES[path]})" in line

        # converged as the apiserver keeps it: three resyncs, zero writes
        writes = drv.writes()
        reconciles = metric(text, "controller_runtime_reconcile_total")
        time.sleep(3.5)
        text = drv.metrics_text()
        assert metric(text, "controller_runtime_reconcile_total") >= reconciles + 3  # the resyncs ran
        assert drv.writes() == writes == 2

        # a new config: each slice rewritten once, with every field sent again, and reported once more
        env.config(mapping("gpu", env.tag, devices=_devices(3)))
        wait_for(lambda: sum(len(s["spec"]["devices"]) for s in env.slices()) == 6, message="three devices a node")
        wait_for(drv.idle, message="converged again")
        wait_for(lambda: _reported(env) == 2, message="the new config's DroppedFields event")
        text = drv.metrics_text()
        for path in DROPPED:
            assert metric(text, "dra_kwok_dropped_fields_total", field=path) == 4
        writes = drv.writes()
        assert writes == 4
        time.sleep(2.5)
        assert drv.writes() == writes
        assert _reported(env) == 2
