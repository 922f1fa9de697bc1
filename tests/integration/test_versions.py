"""The driver publishes what the cluster's apiserver keeps, on each supported version.

The same test runs on every control plane `make test` starts (Kubernetes 1.37 and 1.34): the driver reads the
apiserver's /version and validates and renders for it. A device taint is kept by 1.36+ (DRADeviceTaints on by
default) and silently dropped by 1.34; there the config is refused with the gate's name instead of being published
and rewritten forever (write counts prove it, on both versions).
"""

from __future__ import annotations

import time

from kubernetes import client

from dra_kwok.slices.features import Version
from dra_kwok.testing.controlplane import k8s_version
from tests.integration.driver import mapping, metric, run_manager
from tests.support.helpers import wait_for

TAINTED = [{"name": "gpu", "count": 2, "attributes": {"type": {"string": "nvidia-t4"}},
            "taints": [{"key": "example.com/unhealthy", "value": "xid-79", "effect": "NoSchedule"}]}]


def test_the_driver_publishes_for_the_clusters_version(api, env) -> None:
    env.node("a")
    cluster = Version.parse(k8s_version())
    env.config(mapping("gpu", env.tag, devices=TAINTED))
    with run_manager(env.cp, env.namespace, resync_period=1) as drv:
        assert drv.app.version.minor == cluster.minor  # read from /version
        if cluster.on("DRADeviceTaints"):
            published = wait_for(lambda: env.slices("a"), message="tainted slices")
            assert [d["taints"][0]["effect"] for s in published for d in s["spec"]["devices"]] == ["NoSchedule"] * 2
            wait_for(drv.idle, message="converged")
            writes = metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total")
            time.sleep(3)  # three resyncs: what the apiserver stored is what we meant, so nothing is rewritten
            assert metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total") == writes == 1
        else:
            def refusal() -> list:
                events = client.CoreV1Api(api).list_namespaced_event(env.namespace).items
                return [e for e in events if e.type == "Warning" and e.reason == "InvalidConfig"]

            events = wait_for(refusal, message="the config refused for this cluster")
            assert "DRADeviceTaints" in events[0].message
            assert metric(drv.metrics_text(), "dra_kwok_config_valid") == 0
            time.sleep(2)
            assert env.slices("a") == []
            assert metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total") == 0
