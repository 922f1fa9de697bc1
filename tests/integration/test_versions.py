"""The driver publishes what the cluster's apiserver keeps, on each supported version.

The same test runs on every control plane `make test` starts (Kubernetes 1.37 and 1.34): the driver reads the
apiserver's /version and validates and renders for it. A device taint is kept by 1.36+ (DRADeviceTaints on by
default) and silently dropped by 1.34; there the config is still valid (validation warns), the slices are published
without the taints, the drop is reported once as a DroppedFields Warning Event naming the gate, and nothing is
rewritten (write counts prove it, on both versions).
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
        published = wait_for(lambda: env.slices("a"), message="the node's slices")
        devices = [d for s in published for d in s["spec"]["devices"]]
        assert len(devices) == 2
        assert metric(drv.metrics_text(), "dra_kwok_config_valid") == 1
        if cluster.on("DRADeviceTaints"):
            assert [d["taints"][0]["effect"] for d in devices] == ["NoSchedule"] * 2
        else:  # stored without the taints; said once, with the field and its gate
            assert [d.get("taints") for d in devices] == [None, None]

            def dropped() -> list:
                events = client.CoreV1Api(api).list_namespaced_event(env.namespace).items
                return [e for e in events if e.type == "Warning" and e.reason == "DroppedFields"]

            events = wait_for(dropped, message="the DroppedFields event")
            assert len(events) == 1 and "devices[].taints (feature gate DRADeviceTaints)" in events[0].message
        wait_for(drv.idle, message="converged")
        writes = metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total")
        time.sleep(3)  # three resyncs: what the apiserver stored is what counts, so nothing is rewritten
        assert metric(drv.metrics_text(), "dra_kwok_resourceslice_writes_total") == writes == 1
