"""The memory budget holds for the largest config `validate` accepts (#19.1), against the real apiserver.

Fault injected: none; the load is the point. `dra-kwok run` (a real subprocess, default `--workers`) publishes the
largest config validation lets through — node-local mappings at the per-node limits (20,000 devices, 40,000
attributes + capacities) and cluster-wide mappings at the same limits — for 50 KWOK nodes, i.e. about 1,000,000
devices in ~8,000 ResourceSlices. Its RSS (/proc/<pid>/status VmRSS every 100 ms, and VmHWM at the end) must stay
under the Deployment's memory limit (deploy/deployment.yaml, 256Mi) and /healthz must answer within 1 s throughout.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

import yaml

from dra_kwok.accept import validate
from dra_kwok.config import load_config
from dra_kwok.config.validation import MAX_DEVICES_PER_NODE, MAX_ENTRIES_PER_NODE
from tests.integration.driver import http_get, metric, put_configmap, run_process
from tests.support.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from bench_proc import memory as _rss  # noqa: E402  (VmRSS and VmHWM of /proc/<pid>/status, in bytes)

NODES = 50
PER_SLICE = 128


def _deployment_limit() -> int:
    for doc in yaml.safe_load_all((ROOT / "deploy" / "deployment.yaml").read_text()):
        if doc and doc.get("kind") == "Deployment":
            limit = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
            assert limit.endswith("Mi")
            return int(limit[:-2]) * 1024 * 1024
    raise AssertionError("no Deployment in deploy/deployment.yaml")


def _largest_config(driver: str, label: dict[str, str]) -> str:
    per_device = MAX_ENTRIES_PER_NODE // MAX_DEVICES_PER_NODE  # attributes + capacities at both limits at once
    assert per_device >= 2
    attributes = {f"a{i}": {"string": f"value-{i}-{{{{hash}}}}"} for i in range(per_device - 1)}
    terms = [{"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in label.items()]}]

    def mapping(name: str, **where: object) -> dict:
        return {"name": name, "nodeSelectorTerms": terms, "resourceSlice": {
            "pool": {"name": name}, **where,
            "devices": [{"name": "dev", "count": MAX_DEVICES_PER_NODE, "attributes": attributes,
                         "capacity": {"memory": {"value": "80Gi"}}}]}}

    return yaml.safe_dump({"driver": driver, "mappings": [mapping("local"), mapping("cluster", allNodes=True)]})


def test_largest_accepted_config_on_50_nodes_stays_within_the_deployment_limit(env, api, control_plane) -> None:
    limit = _deployment_limit()
    text = _largest_config(env.driver, env.tag)
    config = load_config(text)
    assert [e for e in validate(config) if e.severity == "error"] == []  # the largest config validate accepts
    over = text.replace(f"count: {MAX_DEVICES_PER_NODE}", f"count: {MAX_DEVICES_PER_NODE + 1}", 1)
    assert [e for e in validate(load_config(over)) if e.severity == "error"]  # one more device is refused

    for i in range(NODES):
        env.node(f"m{i:02d}")
    slices_per_pool = math.ceil(MAX_DEVICES_PER_NODE / PER_SLICE)
    expected = (NODES + 1) * slices_per_pool

    with run_process(control_plane, env.namespace) as drv:
        pid = drv["proc"].pid
        # not /readyz: with no ConfigMap yet the instance is (rightly) not ready
        wait_for(lambda: http_get(drv["health"] + "/healthz")[0] == 200, timeout=60, message="the driver up")
        samples: list[int] = []
        probes: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set() and drv["proc"].poll() is None:
                samples.append(_rss(pid)["VmRSS"])
                time.sleep(0.1)

        def probe() -> None:
            while not done.is_set() and drv["proc"].poll() is None:
                t0 = time.monotonic()
                code, _ = http_get(drv["health"] + "/healthz")
                probes.append(time.monotonic() - t0 if code == 200 else math.inf)
                time.sleep(0.5)

        threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=probe, daemon=True)]
        for t in threads:
            t.start()
        put_configmap(api, env.namespace, "dra-kwok-configmap", text)

        def created() -> float:
            return metric(http_get(drv["metrics"])[1], "dra_kwok_resourceslice_writes_total", verb="create",
                          result="success")

        try:
            wait_for(lambda: drv["proc"].poll() is not None or created() >= expected, timeout=1200, interval=1.0,
                     message=f"{expected} slices created")
            assert drv["proc"].poll() is None, f"the driver exited ({drv['proc'].returncode}); see {drv['log']}"
            peak = _rss(pid)["VmHWM"]
        finally:
            done.set()
            for t in threads:
                t.join(5)

    mib = 1024 * 1024
    print(f"\n{expected} slices, {NODES} nodes: peak RSS {peak / mib:.0f} MiB (limit {limit / mib:.0f} MiB), "
          f"{len(samples)} samples, slowest /healthz {max(probes):.3f} s over {len(probes)} probes")
    assert samples and max(samples) <= peak
    assert peak <= limit, f"peak RSS {peak / mib:.0f} MiB over the Deployment's limit {limit / mib:.0f} MiB"
    assert probes and max(probes) < 1.0, f"slowest /healthz {max(probes):.3f} s"
