#!/usr/bin/env python3
"""dra-kwok's benchmark (`make bench`): the real `dra-kwok run` against its own private control plane, beside a
minimal raw-JSON client doing the same writes, in the same run. See bench/README.md.

Phases, in the order they run (1-3 are a *round*; --repeat N runs N rounds, each from empty, and reports the median
of the per-round ratios, so that load drifting on a shared machine hits both sides of each ratio alike):
  1. baseline   POST every expected slice (the same bodies dra-kwok renders) with --workers threads; then PUT them
                all with one attribute changed (resourceVersions from a LIST made before the clock starts); then
                deletecollection. This is the apiserver's write limit on this machine.
  2. converge   a fresh dra-kwok started with no ConfigMap; once /readyz, the ConfigMap is created and the clock
                runs until a watch on the slices has seen every expected slice.
  3. change     the ConfigMap's attribute is changed in every mapping; clock until every slice carries it.
  4. node-add   --add-nodes nodes created one at a time at --add-rate per second; per node, time from the Node
                create returning to all of its slices seen through the watch.
  4b. burst     (--burst N[,M...], default 500,5000) N nodes created at once (--burst-threads concurrent creates),
                KWOK making each Ready as it would in a user's cluster, then M more, and so on (the nodes stay: each
                burst runs with the earlier ones heartbeating); per node, time from its create returning to all of its
                slices seen through the watch; p50/p99/max, p99 per tenth of the burst, and the time until every node
                had its slices.
  5. idle       the driver is restarted with --resync-period R and, after its first full pass, left alone for 5 R: API requests by
                verb and resource (apiserver and driver metrics), writes, LISTs, CPU per resync.
  6. profile    (--profile) slices and ConfigMap removed, the driver started under cProfile in every thread
                (bench/profiled_driver.py), and phases 2 and 3 repeated; own time by area, key functions, and the
                top 25 functions by cumulative and by own time, per phase.
Driver CPU and peak RSS come from /proc/<pid>. The table and a JSON file go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import yaml  # noqa: E402
from bench_proc import (  # noqa: E402
    CpuMeter,
    apiserver_latency,
    apiserver_requests,
    by_labels,
    counter_delta,
    http_get,
    latency_delta,
    machine,
    memory,
    metric_sum,
    now_utc,
    parse_prometheus,
    sources_digest,
    summarize_verbs,
    versions,
)
from bench_watch import SliceWatcher, Tracker  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from dra_kwok.controllers.source import parse_and_validate  # noqa: E402
from dra_kwok.runtime.rest import Rest, new_api_client  # noqa: E402
from dra_kwok.settings import Settings  # noqa: E402
from dra_kwok.slices.render import (  # noqa: E402
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SLICES_PATH,  # noqa: E402
    NodeInfo,
    render,
)
from dra_kwok.testing.controlplane import ControlPlane, find_binary, free_port  # noqa: E402
from dra_kwok.testing.kwok import kwok_node  # noqa: E402

MANAGED = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
DRIVER = "gpu.bench.dra-kwok.example.com"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
INSTANCE_TYPE = "bench-gpu.2xlarge"
CONFIGMAP_KEY = "config.yaml"
MiB = 2**20

# The goals of issue 7, stated beside the measurements.
GOAL_RATIO = 1.3
GOAL_NODE_ADD_P99 = 1.0
#: issue #17: nodes created at once, with default flags: 500 -> per-node p99 <= 1 s, 5,000 -> p99 <= 5 s
GOAL_BURST_P99 = ((500, 1.0), (5000, 5.0))
GOAL_RSS_MIB = 150


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ inputs
def _bench_config(mappings: int, resource_slice) -> str:
    """`mappings` node-local mappings, all matching every bench node by instance type; mapping i publishes pool
    `dev<i>` with `resource_slice(i)` (devices, counters)."""
    return yaml.safe_dump({
        "driver": DRIVER,
        "mappings": [
            {
                "name": f"bench-{i}",
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [INSTANCE_TYPE]}]}],
                "resourceSlice": {"pool": {"name": f"dev{i}"}, **resource_slice(i)},
            }
            for i in range(mappings)
        ],
    }, sort_keys=False)


def config_text(mappings: int, devices: int, model: str) -> str:
    """`devices` plain devices per mapping (--shape plain, the default)."""
    return _bench_config(mappings, lambda i: {"devices": [{
        "name": f"dev{i}",
        "count": devices,
        "attributes": {"model": {"string": model}, "mapping": {"int": i}, "driverVersion": {"version": "1.0.0"}},
        "capacity": {"memory": {"value": "16Gi"}},
    }]})


#: --shape partitioned: per GPU, a counter set like NVIDIA DynamicMIG's (real-drivers §1.5/§1.8, smaller: an
#: A100-40GB with 3 profiles instead of 7) and 10 devices consuming it: the whole GPU, 3g.20gb at memory slices 0 and
#: 4, 1g.5gb at slices 0..6. (profile, multiprocessors, memory, first memory slice, memory slices)
PARTITIONS = [("7g.40gb", 98, "40192Mi", 0, 8), ("3g.20gb", 42, "19968Mi", 0, 4), ("3g.20gb", 42, "19968Mi", 4, 4)] + [
    ("1g.5gb", 14, "4864Mi", i, 1) for i in range(7)]


def partitioned_config_text(mappings: int, gpus: int, model: str) -> str:
    """`mappings` node-local mappings matching every bench node, each a pool of `gpus` partitionable GPUs: `gpus`
    counter sets (multiprocessors, memory, memory-slice-0..7, and a counter named after `model` with value 0, so
    that a config change also changes the counters-only slice, which carries no attribute) and 10 devices per GPU
    consuming them. On 1.35+ the renderer publishes per pool one counters slice (<= 8 sets) and the devices in
    slices of <= 64."""
    def counters(mp: int, memory: str, first: int, size: int) -> dict:
        return {"multiprocessors": {"value": str(mp)}, "memory": {"value": memory},
                **{f"memory-slice-{j}": {"value": "1"} for j in range(first, first + size)}}

    def gpu_devices(g: int) -> list[dict]:
        return [{
            "name": f"gpu-{g}" if size == 8 else f"gpu-{g}-{profile.split('.')[0]}-{first}",
            "attributes": {"model": {"string": model}, "profile": {"string": profile}, "gpu": {"int": g}},
            "capacity": {"memory": {"value": memory}},
            "consumesCounters": [{"counterSet": f"gpu-{g}-counters", "counters": counters(mp, memory, first, size)}],
        } for profile, mp, memory, first, size in PARTITIONS]

    return _bench_config(mappings, lambda i: {
        "sharedCounters": [{"name": f"gpu-{g}-counters", "counters": {**counters(98, "40192Mi", 0, 8),
                                                                     model: {"value": "0"}}} for g in range(gpus)],
        "devices": [d for g in range(gpus) for d in gpu_devices(g)],
    })


#: --shape h100-dynamic-mig: each mapping publishes the nvidia-gpu profile, 8 x H100 in DynamicMIG (per node and
#: mapping on 1.35+: 9 slices, 208 devices, 8 counter sets). The config change switches the driver's consumable
#: shares on (allowMultipleAllocations + a request policy on every device): the 8 device slices change, and the
#: counters slice is rewritten only for the pool's new generation (the DRA contract: every slice of a pool carries
#: it), so the baseline's PUTs bump spec.pool.generation too, and every slice is written on both sides.
PROFILE_SHAPES = {"h100-dynamic-mig": {"name": "nvidia-gpu", "model": "H100-80GB", "count": 8, "mode": "dynamic-mig"}}
PROFILE_CHANGE = {"bench-v1": "disabled", "bench-v2": "unlimited"}


def profile_config_text(mappings: int, devices: int, model: str, shape: str = "h100-dynamic-mig") -> str:
    """A built-in profile per mapping, under the bench's driver name (`devices` unused: the profile lays them out)."""
    return _bench_config(mappings, lambda i: {
        "driver": DRIVER, "profile": {**PROFILE_SHAPES[shape], "consumableShares": PROFILE_CHANGE[model]}})


SHAPES = {"plain": config_text, "partitioned": partitioned_config_text, "h100-dynamic-mig": profile_config_text}


def node_body(name: str) -> dict:
    """A KWOK node as KWOK documents it (annotation, label and taint kwok.x-k8s.io/node=fake, label type=kwok) with
    Karpenter's instance type; the KWOK controller the run starts makes it Ready and heartbeats it."""
    return kwok_node(name, {"dra-kwok-bench": "true"}, instance_type=INSTANCE_TYPE)


def node_info(node: dict) -> NodeInfo:
    meta = node["metadata"]
    return NodeInfo(name=meta["name"], uid=meta.get("uid") or "pending", labels=meta.get("labels") or {})


def slice_bodies(config, nodes: list[NodeInfo]) -> list[dict]:
    return [s for pool in render(config, nodes) for s in pool.slices]


# ------------------------------------------------------------------------------------------------ helpers
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def blast(rest: Rest, method: str, items: list[tuple[str, dict]], workers: int) -> dict:
    """Send every (path, body) with `workers` threads; nothing else. Returns wall time and per-request latency."""
    it = iter(items)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def work() -> None:
        while True:
            with lock:
                try:
                    path, body = next(it)
                except StopIteration:
                    return
            t = time.perf_counter()
            try:
                rest.request(method, path, body)
            except Exception as err:  # counted, reported; the run fails below
                with lock:
                    errors.append(f"{method} {path}: {err}"[:300])
                continue
            latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=work, name=f"baseline-{i}") for i in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"baseline {method}: {len(errors)} errors, first: {errors[0]}")
    return {"seconds": round(wall, 3), "requests": len(latencies), "per_second": round(len(latencies) / wall, 1),
            "latency_p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "latency_p99_ms": round(percentile(latencies, 99) * 1000, 2)}


def create_nodes(rest: Rest, names: list[str], threads: int = 8) -> list[dict]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda n: rest.post("/api/v1/nodes", node_body(n)), names))


def put_configmap(rest: Rest, namespace: str, name: str, text: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {CONFIGMAP_KEY: text}}
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    try:
        rest.put(f"{path}/{name}", body)
    except ApiException as err:
        if err.status != 404:
            raise
        rest.post(path, body)


def delete_all_slices(rest: Rest, timeout: float = 300) -> float:
    t0 = time.monotonic()
    rest.request("DELETE", SLICES_PATH, query={"labelSelector": MANAGED}, timeout=(5, timeout))
    while time.monotonic() - t0 < timeout:
        if not rest.get(SLICES_PATH, query={"labelSelector": MANAGED, "limit": "1"}).get("items"):
            return time.monotonic() - t0
        time.sleep(0.2)
    raise RuntimeError("slices still present after deletecollection")


def list_slices(rest: Rest) -> list[dict]:
    return rest.get(SLICES_PATH, query={"labelSelector": MANAGED}, timeout=(5, 300)).get("items") or []


# ------------------------------------------------------------------------------------------------ the driver
class Driver:
    """`dra-kwok run` as a subprocess (optionally under bench/profiled_driver.py), with its probes and metrics."""

    def __init__(self, cp: ControlPlane, namespace: str, configmap: str, workers: int, resync: float, logdir: Path,
                 profile_out: Path | None = None, extra: list[str] | None = None) -> None:
        self.health, self.metrics_port = free_port(), free_port()
        flags = [f"--kubeconfig={cp.kubeconfig}", f"--namespace={namespace}", f"--configmap={configmap}",
                 f"--health-port={self.health}", f"--metrics-port={self.metrics_port}", "--bind-address=127.0.0.1",
                 f"--workers={workers}", f"--resync-period={resync}", *(extra or [])]
        if profile_out is None:
            argv = [sys.executable, "-m", "dra_kwok", "run", *flags]
        else:
            argv = [sys.executable, str(HERE / "profiled_driver.py"), str(profile_out), "run", *flags]
        self.argv = argv
        self.log_path = logdir / f"dra-kwok-{self.health}.log"
        self._log = open(self.log_path, "wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.sources = sources_digest(str(REPO))  # the code this process imports (the tree may change during a run)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=str(REPO))
        self.pid = self.proc.pid

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def wait_ready(self, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dra-kwok exited {self.proc.returncode} before ready:\n{self.log_tail()}")
            code, text = http_get(f"http://127.0.0.1:{self.health}/readyz?verbose", timeout=2)
            failing = [line for line in text.splitlines() if line.startswith("[-]")]
            # ready, or ready but for a ConfigMap not created yet (the rounds start the driver first): caches synced
            if code == 200 or (code and all(line.startswith("[-]config ") and "not found" in line for line in failing)):
                return time.monotonic() - self.started
            time.sleep(0.05)
        raise RuntimeError(f"dra-kwok not ready after {timeout}s:\n{self.log_tail()}")

    def samples(self):
        code, text = http_get(self.metrics_url, timeout=10)
        if code != 200:
            raise RuntimeError(f"driver /metrics: {code} {text[:200]}")
        return parse_prometheus(text)

    def wait_quiet(self, timeout: float = 300, settle: float = 1.0) -> float:
        """Until the work queue is empty, no reconcile runs and no write happened for `settle` seconds."""
        t0 = time.monotonic()
        last, since = None, time.monotonic()
        while time.monotonic() - t0 < timeout:
            s = self.samples()
            busy = metric_sum(s, "workqueue_depth") + metric_sum(s, "controller_runtime_active_workers")
            writes = metric_sum(s, "dra_kwok_resourceslice_writes_total")
            if busy or writes != last:
                last, since = writes, time.monotonic()
            elif time.monotonic() - since >= settle:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise RuntimeError(f"driver not quiet after {timeout}s")

    def memory(self) -> dict[str, int]:
        return memory(self.pid)

    def stop(self, timeout: float = 30) -> dict:
        """SIGTERM; returns the exit code and how long the driver took to stop."""
        if self.proc.poll() is not None:
            return {"exit_code": self.proc.returncode, "stop_seconds": 0.0}
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._log.close()
        return {"exit_code": code, "stop_seconds": round(time.monotonic() - t0, 3)}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# ------------------------------------------------------------------------------------------------ the run
def driver_delta(s0, s1) -> dict:
    """What the driver did between two scrapes of its /metrics."""
    n = metric_sum(s1, "controller_runtime_reconcile_total") - metric_sum(s0, "controller_runtime_reconcile_total")
    t = (metric_sum(s1, "controller_runtime_reconcile_time_seconds_sum")
         - metric_sum(s0, "controller_runtime_reconcile_time_seconds_sum"))
    return {
        "writes": counter_delta(by_labels(s0, "dra_kwok_resourceslice_writes_total", "verb", "result"),
                                by_labels(s1, "dra_kwok_resourceslice_writes_total", "verb", "result")),
        "requests": counter_delta(by_labels(s0, "rest_client_requests_total", "method", "resource"),
                                  by_labels(s1, "rest_client_requests_total", "method", "resource")),
        "reconciles": int(n),
        "reconcile_mean_ms": round(t / n * 1000, 2) if n else None,
        "reconcile_errors": int(metric_sum(s1, "controller_runtime_reconcile_errors_total")
                                - metric_sum(s0, "controller_runtime_reconcile_errors_total")),
    }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.result: dict = {"parameters": {}, "phases": {}}
        self.drivers: list[Driver] = []
        self.watcher: SliceWatcher | None = None
        self.logdir = Path(tempfile.mkdtemp(prefix="dra-kwok-bench-"))

    # ---------------------------------------------------------------- setup
    def setup(self, cp: ControlPlane) -> None:
        a = self.args
        self.cp = cp
        # The same client construction as the driver's (same connection pool, same raw-JSON path).
        self.api = new_api_client(str(cp.kubeconfig), connections=max(a.workers, a.burst_threads) + 4)
        self.rest = Rest(self.api)
        self.pids = {"kube-apiserver": cp.components["kube-apiserver"].pid, "etcd": cp.components["etcd"].pid,
                     "kwok": cp.components["kwok"].pid}
        self.result["versions"] = versions(str(REPO), self.rest.get("/version").get("gitVersion"),
                                           find_binary("etcd"))
        try:
            self.rest.post("/api/v1/namespaces", {"metadata": {"name": a.namespace}})
        except ApiException as err:
            if err.status != 409:
                raise
        shape = SHAPES[a.shape]
        self.config_v1_text = shape(a.mappings, a.devices, "bench-v1")
        self.config_v2_text = shape(a.mappings, a.devices, "bench-v2")
        # the change phase waits for every slice rewritten: a profile's counters slice is (only its generation)
        self.is_v2 = ((lambda s: s["devices"] == 0 or bool(s.get("multi"))) if a.shape in PROFILE_SHAPES
                      else (lambda s: _model(s) == "bench-v2"))
        self.config_v1 = parse_and_validate(self.config_v1_text, "bench v1")
        self.config_v2 = parse_and_validate(self.config_v2_text, "bench v2")

        t0 = time.monotonic()
        names = [f"bench-node-{i:05d}" for i in range(a.nodes)]
        self.nodes = [node_info(n) for n in create_nodes(self.rest, names)]
        log(f"created {a.nodes} nodes in {time.monotonic() - t0:.1f}s")
        self.bodies_v1 = slice_bodies(self.config_v1, self.nodes)
        self.expected = {b["metadata"]["name"] for b in self.bodies_v1}
        self.slices_per_node = len(self.bodies_v1) // max(1, a.nodes)
        devices_per_slice = [len(b["spec"].get("devices") or ()) for b in self.bodies_v1]
        self.result["parameters"].update(
            nodes=a.nodes, shape=a.shape, mappings=a.mappings, devices_per_node_per_mapping=a.devices,
            workers=a.workers,
            resync_period_idle=a.resync_period, resync_period_other_phases=a.run_resync_period,
            add_nodes=a.add_nodes, add_rate=a.add_rate, bursts=a.burst, burst_threads=a.burst_threads,
            repeat=a.repeat, profile=a.profile,
            slices=len(self.bodies_v1), slices_per_node=self.slices_per_node,
            devices_per_slice=max(devices_per_slice) if devices_per_slice else 0,
            slice_body_bytes=len(json.dumps(self.bodies_v1[0])) if self.bodies_v1 else 0,
            namespace=a.namespace, configmap=a.configmap, driver=DRIVER,
        )
        # One watch for the whole run (also during the baseline, so both sides pay for the same observer).
        self.watcher = SliceWatcher(new_api_client(str(cp.kubeconfig))).start()

    def _meter(self, driver: Driver | None = None) -> CpuMeter:
        pids = dict(self.pids)
        if driver is not None:
            pids["dra-kwok"] = driver.pid
        return CpuMeter(pids)

    def _start_driver(self, resync: float, profile_out: Path | None = None) -> Driver:
        d = Driver(self.cp, self.args.namespace, self.args.configmap, self.args.workers, resync, self.logdir,
                   profile_out=profile_out)
        self.drivers.append(d)
        return d

    def _latency(self) -> dict:
        return apiserver_latency(self.cp.url, self.cp.token)

    def _timeout(self) -> float:
        return max(120.0, len(self.expected) * 0.1)

    # ---------------------------------------------------------------- baseline
    def baseline(self) -> dict:
        """POST every expected slice, then PUT them all with the attribute changed, then deletecollection."""
        a = self.args
        tracker = self.watcher.track(Tracker(self.expected))
        lat0 = self._latency()
        meter = self._meter()
        t0 = time.monotonic()
        create = blast(self.rest, "POST", [(SLICES_PATH, b) for b in self.bodies_v1], a.workers)
        create["cpu_seconds"] = meter.delta()
        create["apiserver_latency"] = latency_delta(lat0, self._latency(), "POST resourceslices")
        tracker.wait(30)
        create["visible_seconds"] = round(tracker.last() - t0, 3) if tracker.done.is_set() else None
        self.watcher.untrack(tracker)
        # untimed: the current resourceVersions, and the changed bodies
        rvs = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in list_slices(self.rest)}
        if set(rvs) != self.expected:
            raise RuntimeError(f"baseline: {len(rvs)} slices stored, {len(self.expected)} expected")
        updates = []
        for body in slice_bodies(self.config_v2, self.nodes):
            if self.args.shape in PROFILE_SHAPES:  # as the driver does: the pool's new generation on every slice
                body["spec"]["pool"]["generation"] = 1
            body["metadata"]["resourceVersion"] = rvs[body["metadata"]["name"]]
            updates.append((f"{SLICES_PATH}/{body['metadata']['name']}", body))
        tracker = self.watcher.track(Tracker(self.expected, self.is_v2))
        lat0 = self._latency()
        meter = self._meter()
        t0 = time.monotonic()
        update = blast(self.rest, "PUT", updates, a.workers)
        update["cpu_seconds"] = meter.delta()
        update["apiserver_latency"] = latency_delta(lat0, self._latency(), "PUT resourceslices")
        tracker.wait(30)
        update["visible_seconds"] = round(tracker.last() - t0, 3) if tracker.done.is_set() else None
        self.watcher.untrack(tracker)
        took = delete_all_slices(self.rest)
        log(f"baseline: create {create['seconds']}s ({create['per_second']}/s), update {update['seconds']}s "
            f"({update['per_second']}/s), deletecollection {took:.1f}s")
        return {"create": create, "update": update, "deletecollection_seconds": round(took, 3)}

    # ---------------------------------------------------------------- converge and config change
    def _apply_config(self, d: Driver, text: str, tracker: Tracker, verb: str, phase: str) -> dict:
        """Put the ConfigMap and time until the watch has seen every expected slice as `tracker` wants it."""
        s0 = d.samples()
        lat0 = self._latency()
        meter = self._meter(d)
        t0 = time.monotonic()
        put_configmap(self.rest, self.args.namespace, self.args.configmap, text)
        if not tracker.wait(self._timeout()):
            raise RuntimeError(f"{phase}: {len(tracker.pending)} slices not as expected after {self._timeout():.0f}s\n"
                               f"{d.log_tail()}")
        seconds = tracker.last() - t0
        cpu = meter.delta()
        latency = latency_delta(lat0, self._latency(), f"{verb} resourceslices")
        self.watcher.untrack(tracker)
        d.wait_quiet()
        hits = sorted(tracker.hits.values())
        return {"seconds": round(seconds, 3), "first_slice_seconds": round(hits[0] - t0, 3),
                "half_seconds": round(hits[len(hits) // 2] - t0, 3), "cpu_seconds": cpu, "apiserver_latency": latency,
                **driver_delta(s0, d.samples())}

    def converge(self, d: Driver) -> dict:
        """The driver is ready with no ConfigMap; create it and time until every expected slice is seen."""
        out = self._apply_config(d, self.config_v1_text, self.watcher.track(Tracker(self.expected)), "POST", "converge")
        stored = out["stored_slices"] = len(list_slices(self.rest))
        mem = d.memory()
        out.update(driver_rss_bytes=mem.get("VmRSS"), driver_peak_rss_bytes=mem.get("VmHWM"))
        log(f"converge: {out['seconds']:.2f}s (first slice {out['first_slice_seconds']}s, half {out['half_seconds']}s), "
            f"writes {out['writes']}, reconciles {out['reconciles']} ({out['reconcile_mean_ms']} ms), stored {stored}")
        if stored != len(self.expected):
            raise RuntimeError(f"converge: {stored} slices stored, {len(self.expected)} expected")
        return out

    def change(self, d: Driver) -> dict:
        """Edit one attribute in every mapping and time until every slice is seen carrying it."""
        tracker = self.watcher.track(Tracker(self.expected, self.is_v2))
        out = self._apply_config(d, self.config_v2_text, tracker, "PUT", "change")
        out["generations_after"] = gens = sorted({s["generation"] for s in list(self.watcher.objects.values())})
        log(f"change: {out['seconds']:.2f}s (first {out['first_slice_seconds']}s, half {out['half_seconds']}s), "
            f"writes {out['writes']}, reconciles {out['reconciles']} ({out['reconcile_mean_ms']} ms), generations {gens}")
        return out

    def reset(self, d: Driver) -> None:
        """Stop the driver, then remove the ConfigMap and every slice: the next round starts from empty."""
        stopped = d.stop()
        if stopped["exit_code"] != 0:
            raise RuntimeError(f"dra-kwok exited {stopped['exit_code']} on SIGTERM:\n{d.log_tail()}")
        self._clear()

    def _clear(self) -> None:
        """No ConfigMap and no slice left: the state every timed phase starts from."""
        try:
            self.rest.delete(f"/api/v1/namespaces/{self.args.namespace}/configmaps/{self.args.configmap}")
        except ApiException as err:
            if err.status != 404:
                raise
        delete_all_slices(self.rest)

    # ---------------------------------------------------------------- node add
    def node_add(self, d: Driver) -> dict:
        a = self.args
        s0 = d.samples()
        meter = self._meter(d)
        interval = 1.0 / a.add_rate
        records = []
        log(f"node-add: {a.add_nodes} nodes at {a.add_rate}/s")
        start = time.monotonic()
        for i in range(a.add_nodes):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            name = f"bench-add-{i:05d}"
            names = {b["metadata"]["name"] for b in slice_bodies(self.config_v2, [node_info(node_body(name))])}
            tracker = self.watcher.track(Tracker(names))
            t_call = time.monotonic()
            node = self.rest.post("/api/v1/nodes", node_body(name))
            t_ret = time.monotonic()
            records.append((t_call, t_ret, tracker))
            self.nodes.append(node_info(node))
        sent = time.monotonic() - start
        deadline = time.monotonic() + 120
        for _, _, tracker in records:
            tracker.wait(max(0.0, deadline - time.monotonic()))
        cpu = meter.delta()
        lat = [tr.last() - t_ret for _, t_ret, tr in records if tr.done.is_set()]
        missing = sum(1 for r in records if not r[2].done.is_set())
        create_ms = [(t_ret - t_call) * 1000 for t_call, t_ret, _ in records]
        for _, _, tr in records:
            self.watcher.untrack(tr)
            self.expected |= set(tr.hits) | tr.pending
        d.wait_quiet()
        out = {"nodes": a.add_nodes, "rate_requested": a.add_rate, "rate_achieved": round(a.add_nodes / sent, 1),
               "missing": missing, "cpu_seconds": cpu, "node_create_p50_ms": round(percentile(create_ms, 50), 2),
               **driver_delta(s0, d.samples())}
        for q in (50, 90, 99):
            out[f"p{q}_seconds"] = round(percentile(lat, q), 4)
        out["max_seconds"] = round(max(lat), 4) if lat else None
        out["min_seconds"] = round(min(lat), 4) if lat else None
        out["driver_peak_rss_bytes"] = d.memory().get("VmHWM")
        log(f"node-add: p50 {out['p50_seconds']}s p90 {out['p90_seconds']}s p99 {out['p99_seconds']}s "
            f"max {out['max_seconds']}s, missing {missing}, writes {out['writes']}")
        return out

    # ---------------------------------------------------------------- burst
    def burst(self, d: Driver, size: int) -> dict:
        """--burst nodes created at once (as Karpenter scaling a NodePool does); per-node latency to its slices.
        One tracker for all the slices (per-event cost independent of N), per node the last of its slices' hits."""
        a = self.args
        s0 = d.samples()
        meter = self._meter(d)
        first = sum(1 for n in self.nodes if n.name.startswith("bench-burst-"))
        names = [f"bench-burst-{i:05d}" for i in range(first, first + size)]
        by_node = {n: {b["metadata"]["name"] for b in slice_bodies(self.config_v2, [node_info(node_body(n))])}
                   for n in names}
        tracker = self.watcher.track(Tracker(set().union(*by_node.values())))
        returned: dict[str, float] = {}

        def create(name: str) -> dict:
            node = self.rest.post("/api/v1/nodes", node_body(name))
            returned[name] = time.monotonic()
            return node

        log(f"burst: {size} nodes at once ({a.burst_threads} concurrent creates)")
        start = time.monotonic()
        with ThreadPoolExecutor(a.burst_threads) as pool:
            created = list(pool.map(create, names))
        sent = time.monotonic() - start
        tracker.wait(max(120.0, size * 0.1))
        cpu = meter.delta()
        self.watcher.untrack(tracker)
        lat, missing = [], 0
        timeline: list[tuple[float, float]] = []  # (create returned, latency) per node, for the by-tenth view
        for name, slices in by_node.items():
            hits = [tracker.hits.get(s) for s in slices]
            if all(h is not None for h in hits):
                lat.append(max(hits) - returned[name])  # type: ignore[type-var]
                timeline.append((returned[name], lat[-1]))
            else:
                missing += 1
        self.nodes += [node_info(n) for n in created]
        self.expected |= set(tracker.hits) | tracker.pending
        all_done = (tracker.last() - start) if tracker.done.is_set() else None
        d.wait_quiet()
        out = {"nodes": size, "create_threads": a.burst_threads, "create_seconds": round(sent, 3),
               "all_slices_seconds": round(all_done, 3) if all_done is not None else None, "missing": missing,
               "cpu_seconds": cpu, **driver_delta(s0, d.samples())}
        for q in (50, 90, 99):
            out[f"p{q}_seconds"] = round(percentile(lat, q), 4)
        out["max_seconds"] = round(max(lat), 4) if lat else None
        # where in the burst the slow nodes were: p99 of each tenth of the nodes, in the order their creates returned
        timeline.sort()
        tenth = max(1, len(timeline) // 10)
        out["p99_by_tenth_seconds"] = [round(percentile([x for _, x in timeline[i:i + tenth]], 99), 3)
                                       for i in range(0, len(timeline), tenth)][:10]
        log(f"burst: creates took {sent:.2f}s; every node had its slices after {out['all_slices_seconds']}s; "
            f"per node p50 {out['p50_seconds']}s p99 {out['p99_seconds']}s max {out['max_seconds']}s, "
            f"missing {missing}, writes {out['writes']}; p99 by tenth of the burst {out['p99_by_tenth_seconds']}")
        return out

    # ---------------------------------------------------------------- idle
    def idle(self) -> dict:
        """A fresh driver with --resync-period R, once its first full pass is done, left alone for 5 R."""
        period = self.args.resync_period
        keys = len(self.nodes) + 1  # every KWOK node, and the cluster-wide key
        api0 = apiserver_requests(self.cp.url, self.cp.token)
        d = self._start_driver(period)
        ready = d.wait_ready()
        # the first pass (every key reconciled once) and no write for a while: the startup is over
        deadline = time.monotonic() + self._timeout()
        while metric_sum(d.samples(), "controller_runtime_reconcile_total") < keys:
            if time.monotonic() > deadline:
                raise RuntimeError(f"idle: first pass not done\n{d.log_tail()}")
            time.sleep(0.2)
        startup = {"ready_seconds": round(ready, 3), "seconds_to_first_pass": round(time.monotonic() - d.started, 3),
                   "apiserver_requests": counter_delta(api0, apiserver_requests(self.cp.url, self.cp.token)),
                   **driver_delta([], d.samples())}
        # the window: 5 resync periods with nothing changing
        s0 = d.samples()
        api_before = apiserver_requests(self.cp.url, self.cp.token)
        meter = self._meter(d)
        log(f"idle: driver ready in {ready:.2f}s, first pass done; watching {5 * period:g}s (5 resyncs of {period:g}s)")
        t0 = time.monotonic()
        time.sleep(5 * period)
        cpu = meter.delta()
        window = time.monotonic() - t0
        api_after = apiserver_requests(self.cp.url, self.cp.token)
        s1 = d.samples()
        api = counter_delta(api_before, api_after)
        dd = driver_delta(s0, s1)
        passes = dd["reconciles"] / keys
        mem = d.memory()
        # what the driver may send (KWOK's node status patches and lease renewals are its own, not the driver's)
        driver_api = {k: v for k, v in api.items()
                      if k.split(" ", 1)[1] in ("resourceslices", "nodes", "configmaps", "events")}
        out = {
            "resync_period": period, "window_seconds": round(window, 2), "keys_per_resync": keys,
            "full_passes": round(passes, 2), **dd,
            "apiserver_requests": api, "apiserver_requests_driver_resources": driver_api,
            "summary_apiserver_driver_resources": summarize_verbs(driver_api),
            "summary_driver_client": summarize_verbs(dd["requests"]),
            "cpu_seconds": cpu,
            "driver_cpu_seconds_per_resync": round(cpu.get("dra-kwok", 0) / passes, 3) if passes else None,
            "driver_cpu_share_of_one_core": round(cpu.get("dra-kwok", 0) / window, 3),
            "driver_rss_bytes": mem.get("VmRSS"), "driver_peak_rss_bytes": mem.get("VmHWM"), "startup": startup,
        }
        log(f"idle: {passes:.2f} full passes of {keys} keys ({dd['reconcile_mean_ms']} ms each), apiserver {api}, "
            f"driver {dd['requests']}, writes {dd['writes']}, cpu {cpu}")
        out.update(d.stop(), driver_sources=d.sources)
        return out

    # ---------------------------------------------------------------- profile
    def profile(self, results_dir: Path, stamp: str) -> dict:
        """Convergence and config change again, with the driver under cProfile in every thread (segments)."""
        prof = results_dir / f"{stamp}.prof"
        self._clear()
        # No resync during the profile: under cProfile a full pass at 5,000 nodes takes longer than 30 s, and the
        # resyncs would then keep the queue from ever draining (and blur what convergence itself costs).
        d = self._start_driver(3600, profile_out=prof)
        d.wait_ready(timeout=180)
        d.wait_quiet(settle=0.5)

        def segment(n: int) -> Path:
            d.proc.send_signal(signal.SIGUSR1)
            path = Path(f"{prof}.{n}")
            deadline = time.monotonic() + 120
            while not path.exists() or time.time() - path.stat().st_mtime < 0.5:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"profile segment {path} not written\n{d.log_tail()}")
                time.sleep(0.2)
            return path

        segment(1)  # startup: discarded
        log(f"profile: driver under cProfile (every thread); converging {len(self.expected)} slices")
        conv = self.converge(d)
        conv_path = segment(2)
        log("profile: config change")
        chg = self.change(d)
        chg_path = segment(3)
        stopped = d.stop(timeout=120)
        out = {"converge": {"seconds_under_profiler": conv["seconds"], "cpu_seconds": conv["cpu_seconds"]},
               "change": {"seconds_under_profiler": chg["seconds"], "cpu_seconds": chg["cpu_seconds"]},
               "driver_sources": d.sources, **stopped}
        texts = []
        for name, path in (("converge", conv_path), ("change", chg_path)):
            final = results_dir / f"{stamp}-{name}.prof"
            path.rename(final)
            out[name].update(file=final.name, areas=areas(final), key_functions=key_functions(final),
                             top_cumulative=top_functions(final, "cumulative", 25),
                             top_tottime=top_functions(final, "tottime", 25))
            texts.append(profile_text(name, out[name], len(self.expected)))
        for path in results_dir.glob(f"{prof.name}*"):
            path.unlink()  # startup segment and the whole-run file
        text = "\n".join(texts)
        (results_dir / f"{stamp}-profile.md").write_text(text)
        print(text)
        return out

    # ---------------------------------------------------------------- run
    def run(self, results_dir: Path, stamp: str) -> None:
        a = self.args
        self.result["date"] = now_utc()
        self.result["machine"] = machine()
        cp = ControlPlane()
        try:
            t0 = time.monotonic()
            cp.start(kwok=True)  # KWOK manages every node the run creates: its heartbeats are part of the load
            log(f"control plane and KWOK up in {time.monotonic() - t0:.1f}s at {cp.url}")
            self.setup(cp)
            rounds = self.result["phases"]["rounds"] = []
            d = None
            for r in range(a.repeat):
                log(f"round {r + 1}/{a.repeat}: baseline, then dra-kwok")
                base = self.baseline()
                d = self._start_driver(a.run_resync_period)
                ready = d.wait_ready()
                d.wait_quiet(settle=0.5)
                rounds.append({"baseline": base, "driver_ready_seconds": round(ready, 3), "driver_sources": d.sources,
                               "converge": self.converge(d), "change": self.change(d)})
                if r < a.repeat - 1:
                    self.reset(d)
            if a.add_nodes > 0:
                self.result["phases"]["node_add"] = self.node_add(d)
            bursts = self.result["phases"]["bursts"] = []
            for size in a.burst:
                bursts.append(self.burst(d, size))
            mem = d.memory()
            stopped = d.stop()
            self.result["phases"]["main_driver"] = {"peak_rss_bytes": mem.get("VmHWM"), "rss_bytes": mem.get("VmRSS"),
                                                    **stopped}
            log(f"driver stopped: {stopped}, peak RSS {mem.get('VmHWM', 0) / MiB:.0f} MiB")
            if stopped["exit_code"] != 0:
                raise RuntimeError(f"dra-kwok exited {stopped['exit_code']} on SIGTERM:\n{d.log_tail()}")
            self.result["phases"]["idle"] = self.idle()
            if a.profile:
                self.result["phases"]["profile"] = self.profile(results_dir, stamp)
            self.result["apiserver"] = {"rss_bytes": memory(self.pids["kube-apiserver"]).get("VmRSS"),
                                        "peak_rss_bytes": memory(self.pids["kube-apiserver"]).get("VmHWM"),
                                        "etcd_peak_rss_bytes": memory(self.pids["etcd"]).get("VmHWM")}
            self.result["watcher"] = {"events": self.watcher.events, "restarts": self.watcher.restarts}
        finally:
            self.result["driver_sources_sha256"] = sorted({drv.sources for drv in self.drivers})
            for drv in self.drivers:
                try:
                    drv.kill()
                except Exception:
                    pass
            if self.watcher is not None:
                self.watcher.stop()
            cp.stop()
            self.result["machine"]["loadavg_at_end"] = os.getloadavg()


def _model(s: dict) -> str | None:
    """The config's model in a slice's summary: its first device's attribute, or for a counters-only slice
    (--shape partitioned) the marker counter named after it."""
    model = ((s.get("attrs") or {}).get("model") or {}).get("string")
    if model is None and s.get("counters"):
        model = next((c for c in s["counters"] if c.startswith("bench-v")), None)
    return model


# ------------------------------------------------------------------------------------------------ profile output
def _fn(func: tuple) -> str:
    filename, line, name = func
    for root in (str(REPO) + "/", os.path.dirname(os.__file__) + "/"):
        if filename.startswith(root):
            filename = filename[len(root):]
    if "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    return f"{filename}:{line}({name})" if line else name


def top_functions(path: Path, sort: str, n: int) -> list[dict]:
    st = pstats.Stats(str(path))
    st.sort_stats(sort)
    out = []
    for func in st.fcn_list[:n]:  # type: ignore[attr-defined]
        cc, nc, tt, ct, _callers = st.stats[func]  # type: ignore[attr-defined]
        out.append({"function": _fn(func), "calls": nc, "tottime": round(tt, 3), "cumtime": round(ct, 3)})
    return out


# Own time (tottime) summed by area; the first matching rule wins. The "waiting" areas are time threads spent
# blocked (idle workers on the queue, watches on their sockets), not CPU.
AREAS = [
    ("waiting: socket reads and polls (responses, watches; includes re-taking the GIL)",
     ("'read' of '_ssl._SSLSocket'", "'poll' of 'select.poll'", "recv_into", "'select' of")),
    ("waiting: locks, conditions, events (idle threads; not the GIL)", ("'acquire' of '_thread", "_thread.RLock")),
    ("TLS writes and handshakes", ("'write' of '_ssl._SSLSocket'", "do_handshake", "'sendall'")),
    ("JSON encode/decode", ("json/", "_json", "orjson")),
    ("kubernetes client (param_serialize, sanitize_for_serialization, RESTClient)", ("kubernetes/client/",)),
    ("HTTP stack in Python (urllib3, http.client, ssl.py, socket.py, header parsing)",
     ("urllib3/", "http/client.py", "ssl.py", "socket.py", "email/", "selectors.py", "urllib/parse.py")),
    ("dra-kwok render + validation", ("dra_kwok/slices/render.py", "dra_kwok/config/")),
    ("dra-kwok diff (incl. copy.deepcopy, quantity parsing)",
     ("dra_kwok/slices/plan.py", "copy.py", "kubernetes/utils/quantity.py", "decimal")),
    ("dra-kwok informer, work queue, controllers, store",
     ("dra_kwok/runtime/informer.py", "dra_kwok/runtime/workqueue.py", "dra_kwok/controllers/", "dra_kwok/controllers/store.py",
      "dra_kwok/runtime/rest.py", "dra_kwok/runtime/manager.py")),
    ("Prometheus metrics", ("prometheus_client/",)),
    ("logging", ("dra_kwok/runtime/log.py", "logging/")),
    ("threading.py (Python side of waits and thread starts)", ("threading.py",)),
]


def areas(path: Path) -> list[dict]:
    st = pstats.Stats(str(path))
    sums: dict[str, float] = {}
    for func, (cc, nc, tt, ct, callers) in st.stats.items():  # type: ignore[attr-defined]
        label = _fn(func)
        area = next((name for name, pats in AREAS if any(p in label for p in pats)), "other (builtins, stdlib)")
        sums[area] = sums.get(area, 0.0) + tt
    return [{"area": k, "seconds": round(v, 3)} for k, v in sorted(sums.items(), key=lambda kv: -kv[1])]


KEY_FUNCTIONS = [
    ("dra_kwok/controllers/resourceslice.py", "reconcile"),
    ("dra_kwok/controllers/resourceslice.py", "desired_and_actual"),
    ("dra_kwok/slices/render.py", "render_node"),
    ("dra_kwok/slices/render.py", "_check"),
    ("dra_kwok/slices/plan.py", "plan"),
    ("dra_kwok/slices/plan.py", "equivalent"),
    ("copy.py", "deepcopy"),
    ("dra_kwok/controllers/resourceslice.py", "_apply"),
    ("dra_kwok/runtime/rest.py", "request"),
    ("kubernetes/client/api_client.py", "param_serialize"),
    ("kubernetes/client/api_client.py", "call_api"),
    ("json/__init__.py", "dumps"),
    ("json/__init__.py", "loads"),
    ("dra_kwok/runtime/informer.py", "mutate"),
    ("dra_kwok/runtime/informer.py", "_dispatch"),
    ("dra_kwok/controllers/resourceslice.py", "slice_transform"),
    ("dra_kwok/runtime/workqueue.py", "get"),
    ("dra_kwok/controllers/source.py", "parse_and_validate"),
    ("dra_kwok/controllers/resourceslice.py", "_config_changed"),
]


def key_functions(path: Path) -> list[dict]:
    st = pstats.Stats(str(path))
    out = []
    for suffix, name in KEY_FUNCTIONS:
        calls = tt = ct = 0.0
        for func, (cc, nc, t, c, callers) in st.stats.items():  # type: ignore[attr-defined]
            if func[2] == name and func[0].endswith(suffix):
                calls, tt, ct = calls + nc, tt + t, ct + c
        if calls:
            out.append({"function": f"{suffix}:{name}", "calls": int(calls), "tottime": round(tt, 3),
                        "cumtime": round(ct, 3)})
    return out


def profile_text(name: str, data: dict, slices: int) -> str:
    lines = [f"## dra-kwok under cProfile: {name} ({slices} slices; {data['seconds_under_profiler']:.2f} s wall under "
             f"the profiler, driver CPU {data['cpu_seconds'].get('dra-kwok', 0):.2f} s) — {data['file']}", "",
             "All threads merged: times add up across threads, so they exceed the wall time.", "",
             "### Own time by area", "", "| area | seconds |", "|---|---:|"]
    lines += [f"| {a['area']} | {a['seconds']:.3f} |" for a in data["areas"]]
    lines += ["", "### Key functions (cumulative, all threads)", "", "| calls | tottime s | cumtime s | function |",
              "|---:|---:|---:|---|"]
    lines += [f"| {r['calls']} | {r['tottime']:.3f} | {r['cumtime']:.3f} | `{r['function']}` |" for r in data["key_functions"]]
    for key, title in (("top_cumulative", "by cumulative time"), ("top_tottime", "by own time (tottime)")):
        lines += ["", f"### Top {len(data[key])} {title}", "", "| calls | tottime s | cumtime s | function |",
                  "|---:|---:|---:|---|"]
        lines += [f"| {r['calls']} | {r['tottime']:.3f} | {r['cumtime']:.3f} | `{r['function']}` |" for r in data[key]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ the table
def _ok(flag: bool | None) -> str:
    return "—" if flag is None else ("✅" if flag else "❌")


def _mib(n: int | None) -> str:
    return "—" if n is None else f"{n / MiB:.0f} MiB"


def _ratios(rounds: list[dict], phase: str, base_key: str) -> list[float]:
    return [r[phase]["seconds"] / r["baseline"][base_key]["seconds"] for r in rounds]


def summary(r: dict) -> dict:
    """The medians over rounds (a round = baseline then driver, back to back, so drifting load hits both)."""
    rounds = r["phases"].get("rounds") or []
    out: dict = {}
    for phase, base_key in (("converge", "create"), ("change", "update")):
        done = [x for x in rounds if phase in x]
        if not done:
            continue
        ratios = _ratios(done, phase, base_key)
        out[phase] = {"ratio_median": round(statistics.median(ratios), 3), "ratios": [round(x, 3) for x in ratios],
                      "driver_seconds_median": round(statistics.median(x[phase]["seconds"] for x in done), 3),
                      "baseline_seconds_median": round(statistics.median(x["baseline"][base_key]["seconds"]
                                                                         for x in done), 3)}
    return out


def table(r: dict) -> str:
    p, ph = r["parameters"], r["phases"]
    rounds = ph.get("rounds") or []
    last = rounds[-1] if rounds else {}
    s = r.get("summary") or {}
    add, idle, main = ph.get("node_add", {}), ph.get("idle", {}), ph.get("main_driver", {})
    rows = []
    for key, label, what in (("converge", f"Convergence from empty ({p['nodes']} nodes, {p['slices']} slices)", "create"),
                             ("change", f"Config change: one attribute on every slice ({p['slices']} updates)", "update")):
        if key not in s:
            continue
        x = s[key]
        pairs = [(rnd[key]["seconds"], rnd["baseline"][what]["seconds"]) for rnd in rounds if key in rnd]
        if len(pairs) == 1:
            text = f"dra-kwok {pairs[0][0]:.2f} s / baseline {pairs[0][1]:.2f} s = **{x['ratio_median']:.2f}×**"
        else:
            text = (f"**{x['ratio_median']:.2f}×** (median of {len(pairs)} rounds: "
                    + ", ".join(f"{d:.2f} s / {b:.2f} s = {d / b:.2f}×" for d, b in pairs) + ")")
        rows.append((label, text, f"≤ {GOAL_RATIO}× baseline", _ok(x["ratio_median"] <= GOAL_RATIO)))
    if add:
        rows.insert(1, (f"Node-add latency ({add['nodes']} nodes at {add['rate_achieved']}/s)",
                        f"p50 {add['p50_seconds']:.3f} s, p90 {add['p90_seconds']:.3f} s, **p99 {add['p99_seconds']:.3f} s**, "
                        f"max {add['max_seconds']:.3f} s" + (f", {add['missing']} missing" if add["missing"] else ""),
                        f"p99 ≤ {GOAL_NODE_ADD_P99:g} s", _ok(add["p99_seconds"] <= GOAL_NODE_ADD_P99 and not add["missing"])))
    for i, burst in enumerate(ph.get("bursts") or ([ph["burst"]] if ph.get("burst") else [])):
        goal = next((g for n, g in GOAL_BURST_P99 if burst["nodes"] <= n), None)
        rows.insert(2 + i, (f"Burst: {burst['nodes']} nodes at once (KWOK running; driver --workers {p['workers']})",
                        f"p50 {burst['p50_seconds']:.3f} s, **p99 {burst['p99_seconds']:.3f} s**, max "
                        f"{burst['max_seconds']:.3f} s; creates {burst['create_seconds']:.2f} s, every node's slices "
                        f"after {burst['all_slices_seconds']} s" + (f", {burst['missing']} missing" if burst["missing"] else "")
                        + (f"; p99 per tenth of the burst {', '.join(map(str, burst['p99_by_tenth_seconds']))} s"
                           if burst.get("p99_by_tenth_seconds") else ""),
                        f"p99 ≤ {goal:g} s" if goal else "—",
                        _ok(burst["p99_seconds"] <= goal and not burst["missing"]) if goal else "—"))
    if idle:
        s_api, s_cli = idle["summary_apiserver_driver_resources"], idle["summary_driver_client"]
        writes = s_api["writes"] + sum(idle["writes"].values())
        lists = max(s_api["lists"], s_cli["lists"])
        others = {k: v for k, v in idle["apiserver_requests"].items() if k not in idle["apiserver_requests_driver_resources"]}
        rows.append((f"Idle: {idle['window_seconds']:.0f} s = 5 resync periods of {idle['resync_period']:g} s "
                     f"({idle['full_passes']:.1f} full passes over {idle['keys_per_resync']} keys)",
                     f"**{writes} writes, {lists} LISTs**. apiserver_request_total on resourceslices, nodes, configmaps, "
                     f"events: writes {s_api['writes']}, LISTs {s_api['lists']}, GETs {s_api['gets']}, watches ended "
                     f"{s_api['watches']}; driver's rest_client_requests_total: {_fmt_requests(idle['requests'])}. "
                     f"(Not ours: {_fmt_requests(others)}: KWOK's node leases and status, and the apiserver's own loopback clients.)",
                     "0 writes, 0 LISTs", _ok(writes == 0 and lists == 0)))
        rows.append(("Idle: driver CPU per resync (full pass)",
                     f"{idle['driver_cpu_seconds_per_resync']:.2f} s ({idle['reconcile_mean_ms']} ms per key; "
                     f"{idle['driver_cpu_share_of_one_core'] * 100:.0f}% of a core at this period)", "—", "—"))
    peak = max(filter(None, [main.get("peak_rss_bytes"), idle.get("driver_peak_rss_bytes")]), default=None)
    if peak:
        goal_applies = p["nodes"] >= 5000
        total_nodes = p["nodes"] + (add.get("nodes") or 0) + sum(b["nodes"] for b in ph.get("bursts") or [])
        rows.append((f"Driver peak RSS ({total_nodes} nodes, {total_nodes * p['slices_per_node']} slices)", _mib(peak),
                     f"≤ {GOAL_RSS_MIB} MiB at 5,000 nodes / 10,000 slices",
                     _ok(peak <= GOAL_RSS_MIB * MiB) if goal_applies else f"({_ok(peak <= GOAL_RSS_MIB * MiB)} at this size)"))
    if last.get("converge"):
        conv = last["converge"]
        c = conv["cpu_seconds"]
        rows.append(("Driver CPU converging (last round)",
                     f"{c.get('dra-kwok', 0):.2f} s in {conv['seconds']:.2f} s wall (kube-apiserver {c.get('kube-apiserver', 0):.2f} s, "
                     f"etcd {c.get('etcd', 0):.2f} s)", "—", "—"))
    out = ["| Measurement | Result | Goal | Met |", "|---|---|---|:---:|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    m, v = r["machine"], r["versions"]
    out += ["", f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, load average "
            f"{m['loadavg_at_start'][0]:.2f} at start and {m.get('loadavg_at_end', [float('nan')])[0]:.2f} at end. "
            f"Versions: dra-kwok {v['dra_kwok']} ({v.get('git', '?')}), kube-apiserver "
            f"{v['kube_apiserver']}, etcd {v.get('etcd', '?')}, kubernetes client {v['kubernetes_client']}, "
            f"Python {v['python']}. {r['date']}. {p['workers']} workers / baseline threads; {p['devices_per_slice']} devices "
            f"per slice; driver resync {p['resync_period_other_phases']:g} s outside the idle phase."
            + (f" Shape {p['shape']}: {p['slices_per_node']} slices per node; the config change turns consumable "
               "shares on (every slice rewritten: the devices, and the counters slice for the pool's generation)."
               if p.get("shape") in PROFILE_SHAPES else "")]
    if len(r.get("driver_sources_sha256") or []) > 1:
        out.append(f"**Warning: dra_kwok's sources changed during this run** (digests "
                   f"{', '.join(r['driver_sources_sha256'])}): the rounds did not all run the same driver.")
    if rounds:
        b = last["baseline"]
        out.append(f"Baseline (raw POST/PUT, {p['workers']} threads, last round): create {b['create']['per_second']}/s "
                   f"(p50 {b['create']['latency_p50_ms']} ms, p99 {b['create']['latency_p99_ms']} ms), "
                   f"update {b['update']['per_second']}/s (p50 {b['update']['latency_p50_ms']} ms, "
                   f"p99 {b['update']['latency_p99_ms']} ms).")
        out += ["", "Per round: seconds and CPU seconds by process (2 cores = 2 CPU-seconds per second). \"ms per write\": "
                "workers × seconds / writes, the time a worker (or baseline thread) spends per write, all included; "
                "\"apiserver ms\": the apiserver's own mean `apiserver_request_duration_seconds` for those writes.", "",
                "| round | phase | seconds | ms per write | apiserver ms | dra-kwok CPU | kube-apiserver CPU | etcd CPU | "
                "bench CPU | reconciles (mean) |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for i, rnd in enumerate(rounds, 1):
            for label, x in (("baseline create", rnd["baseline"]["create"]), ("dra-kwok converge", rnd.get("converge")),
                             ("baseline update", rnd["baseline"]["update"]), ("dra-kwok change", rnd.get("change"))):
                if x:
                    c = x["cpu_seconds"]
                    rec = f"{x['reconciles']} ({x['reconcile_mean_ms']} ms)" if "reconciles" in x else "—"
                    per = p["workers"] * x["seconds"] / p["slices"] * 1000
                    api_ms = (x.get("apiserver_latency") or {}).get("mean_ms", "—")
                    out.append(f"| {i} | {label} | {x['seconds']:.2f} | {per:.1f} | {api_ms} | {c.get('dra-kwok', '—')} | "
                               f"{c.get('kube-apiserver')} | {c.get('etcd')} | {c.get('bench')} | {rec} |")
        if add:
            c = add["cpu_seconds"]
            out.append(f"| — | dra-kwok node-add | {add['nodes'] / add['rate_achieved']:.2f} | — | — | {c.get('dra-kwok')} | "
                       f"{c.get('kube-apiserver')} | {c.get('etcd')} | {c.get('bench')} | {add['reconciles']} "
                       f"({add['reconcile_mean_ms']} ms) |")
        if idle:
            c = idle["cpu_seconds"]
            out.append(f"| — | dra-kwok idle | {idle['window_seconds']:.2f} | — | — | {c.get('dra-kwok')} | {c.get('kube-apiserver')} | "
                       f"{c.get('etcd')} | {c.get('bench')} | {idle['reconciles']} ({idle['reconcile_mean_ms']} ms) |")
    return "\n".join(out)


def _fmt_requests(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"


# ------------------------------------------------------------------------------------------------ main
def _sizes(text: str) -> list[int]:
    """`--burst 500,5000` -> [500, 5000]; 0 (or an empty list) runs no burst."""
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected node counts separated by commas, e.g. 500,5000") from None
    if any(n < 0 for n in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: node counts cannot be negative")
    return [n for n in sizes if n > 0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/bench.py", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000, help="KWOK nodes present before the config is applied")
    ap.add_argument("--mappings", type=int, default=2, help="mappings, each matching every node (one pool each)")
    ap.add_argument("--devices", type=int, default=8, help="devices per node per mapping")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="plain",
                    help="plain: --devices plain devices per mapping; partitioned: --devices partitionable GPUs per "
                         "mapping, each a counter set and 10 devices consuming it (whole, 2×3g, 7×1g; needs 1.36+); "
                         "h100-dynamic-mig: the nvidia-gpu profile per mapping, 8 x H100 DynamicMIG (9 slices, 208 "
                         "devices per node and mapping)")
    ap.add_argument("--workers", type=int, default=Settings.workers,
                    help="driver --workers (default: the driver's), and the baseline's concurrency")
    ap.add_argument("--resync-period", type=float, default=2.0, help="driver --resync-period in the idle phase")
    ap.add_argument("--run-resync-period", type=float, default=30.0,
                    help="driver --resync-period in the other phases (the driver's default)")
    ap.add_argument("--add-nodes", type=int, default=100, help="nodes added one at a time in the node-add phase")
    ap.add_argument("--add-rate", type=float, default=20.0, help="node creates per second in the node-add phase")
    ap.add_argument("--burst", type=_sizes, default=[500, 5000],
                    help="nodes created at once in the burst phase, comma-separated for several bursts in turn "
                         "(0: skip it)")
    ap.add_argument("--burst-threads", type=int, default=16, help="concurrent node creates in the burst phase")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of (baseline, converge, change); ratios are the median of the per-round ratios")
    ap.add_argument("--profile", action="store_true",
                    help="at the end, converge and change again with the driver under cProfile; print top 25")
    ap.add_argument("--namespace", default="karpenter")
    ap.add_argument("--configmap", default="dra-kwok-configmap")
    ap.add_argument("--results", default=str(HERE / "results"), help="directory for the JSON (and profile) output")
    ap.add_argument("--table", metavar="JSON", help="only print the table of an earlier result (and rewrite its .md)")
    args = ap.parse_args(argv)
    if args.table:
        result = json.loads(Path(args.table).read_text())
        result["summary"] = summary(result)
        md = table(result)
        Path(args.table).with_suffix(".md").write_text(f"`{result['command']}`\n\n{md}\n")
        print(md)
        return 0

    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{args.nodes}n"
    bench = Bench(args)
    bench.result["command"] = "python3 bench/bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    failed = None
    try:
        bench.run(results_dir, stamp)
    except BaseException as err:  # still write what was measured
        failed = err
        bench.result["error"] = "".join(traceback.format_exception_only(type(err), err)).strip()
        traceback.print_exc()
    md = ""
    if "versions" in bench.result and bench.result["phases"].get("rounds"):
        try:
            bench.result["summary"] = summary(bench.result)
            md = table(bench.result)
        except Exception:  # a partial result: the JSON still has everything measured
            traceback.print_exc()
    bench.result["table_markdown"] = md
    out = results_dir / f"{stamp}.json"
    out.write_text(json.dumps(bench.result, indent=2, default=str) + "\n")
    if md:
        (results_dir / f"{stamp}.md").write_text(f"`{bench.result['command']}`\n\n{md}\n")
        print(md)
    log(f"wrote {out}")
    if failed is None:
        import shutil

        shutil.rmtree(bench.logdir, ignore_errors=True)
    else:
        log(f"driver logs kept in {bench.logdir}")
    return 0 if failed is None else 1


if __name__ == "__main__":
    sys.exit(main())
