"""What the e2e scheduling tests share: loading the documented examples under examples/scheduling/ with this test's
names substituted, creating them through the API as a user would, waiting on the scheduler's verdicts, and
explaining a failure (pods, the scheduler's events, claims, slices, the driver's log).

Isolation on the one apiserver every test of the run shares: every test gets its own namespace, driver names
(`e2e-<unique>.<example driver>`), DeviceClass names (`<example class>-<unique>`) and node label
`dra-kwok-e2e=<unique>`; every mapping of the example config also requires that label and every pod a
nodeSelector on it, so neither our driver nor our pods ever touch another test's nodes.

Device profiles publish under the real drivers' names (`gpu.nvidia.com`, `dra.cpu`, ...), which the examples' claims
and DeviceClasses name as the drivers' docs do, so those are kept; other tests may publish under the same names
at the same time, so a test only ever reads or deletes the slices of a real driver's name on its own nodes
(profiles are node-local: every such slice has a nodeName).
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_kwok.config import load_config
from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.features import Version
from dra_kwok.slices.render import SLICES_PATH
from dra_kwok.testing.controlplane import k8s_version
from dra_kwok.testing.kwok import KWOK_TOLERATION, schedulable
from tests.integration.driver import put_configmap
from tests.support.helpers import create_node, kwok_node, wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "scheduling"
#: The driver names the examples use; longest first, so that a name containing another is replaced whole.
EXAMPLE_DRIVERS = ("fpga.dra-kwok-driver.karpenter.sh", "dra-kwok-driver.karpenter.sh")
TEST_LABEL = "dra-kwok-e2e"
FIELD_MANAGER = "dra-kwok-e2e"
UNSCHEDULABLE = "cannot allocate all claims"  # the DRA scheduler plugin's reason

SCHEDULE_TIMEOUT = 30.0
RUNNING_TIMEOUT = 30.0
NODE_READY_TIMEOUT = 30.0
SLICE_TIMEOUT = 10.0

_PATHS = {  # kind -> (API path prefix, namespaced, plural)
    "ConfigMap": ("/api/v1", True, "configmaps"),
    "Pod": ("/api/v1", True, "pods"),
    "DeviceClass": ("/apis/resource.k8s.io/v1", False, "deviceclasses"),
    "ResourceClaim": ("/apis/resource.k8s.io/v1", True, "resourceclaims"),
    "ResourceClaimTemplate": ("/apis/resource.k8s.io/v1", True, "resourceclaimtemplates"),
    "Deployment": ("/apis/apps/v1", True, "deployments"),
}


def object_path(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    prefix, namespaced, plural = _PATHS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespaced else f"{prefix}/{plural}"
    return f"{path}/{name}" if name else path


class Example:
    """One scenario directory of examples/scheduling/: config.yaml (the ConfigMap) and workload.yaml."""

    def __init__(self, name: str, unique: str, namespace: str) -> None:
        self.name = name
        self.unique = unique
        self.namespace = namespace
        self.dir = EXAMPLES / name
        self.config_map = self._load(self.dir / "config.yaml")[0]
        assert self.config_map["kind"] == "ConfigMap", f"{self.dir}/config.yaml must hold the ConfigMap"
        workload = self.dir / "workload.yaml"
        self.objects = self._load(workload) if workload.exists() else []

    # ------------------------------------------------------------------ substitution
    def driver(self, example_driver: str = EXAMPLE_DRIVERS[-1]) -> str:
        return f"e2e-{self.unique}.{example_driver}"

    def class_name(self, example_name: str) -> str:
        return f"{example_name}-{self.unique}"

    def _load(self, path: Path) -> list[dict]:
        text = path.read_text()
        pattern = re.compile("|".join(re.escape(d) for d in EXAMPLE_DRIVERS))
        text = pattern.sub(lambda m: self.driver(m.group(0)), text)
        docs = [d for d in yaml.safe_load_all(text) if d]
        return [self._localize(d) for d in docs]

    def _localize(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        kind = obj["kind"]
        if kind == "DeviceClass":
            meta["name"] = self.class_name(meta["name"])
        elif _PATHS.get(kind, ("", False))[1]:
            meta["namespace"] = self.namespace
        _rename_device_classes(obj, self.class_name)
        for pod_spec in _pod_specs(obj):
            pod_spec.setdefault("nodeSelector", {})[TEST_LABEL] = self.unique
        if kind == "ConfigMap":
            config = yaml.safe_load(obj["data"]["config.yaml"])
            for mapping in config["mappings"]:
                for term in mapping["nodeSelectorTerms"]:
                    term.setdefault("matchExpressions", []).append(
                        {"key": TEST_LABEL, "operator": "In", "values": [self.unique]})
            obj["data"]["config.yaml"] = yaml.safe_dump(config, sort_keys=False)
        return obj

    # ------------------------------------------------------------------ lookup
    def get(self, kind: str, name: str | None = None) -> dict:
        found = self.all(kind, name)
        assert len(found) == 1, f"{self.name}: expected one {kind} {name or ''}, found {len(found)}"
        return copy.deepcopy(found[0])

    def all(self, kind: str, name: str | None = None) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]

    @property
    def config_text(self) -> str:
        return self.config_map["data"]["config.yaml"]

    def variant(self, filename: str) -> str:
        """The config of another ConfigMap file of the example directory (a second step, such as
        10-device-taints/config-noexecute.yaml), with this test's names substituted like config.yaml."""
        config_map = self._load(self.dir / filename)[0]
        assert config_map["kind"] == "ConfigMap", f"{self.dir}/{filename} must hold the ConfigMap"
        return config_map["data"]["config.yaml"]


def _rename_device_classes(obj: Any, rename: Callable[[str], str]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "deviceClassName" and isinstance(value, str):
                obj[key] = rename(value)
            else:
                _rename_device_classes(value, rename)
    elif isinstance(obj, list):
        for item in obj:
            _rename_device_classes(item, rename)


def _pod_specs(obj: dict) -> Iterable[dict]:
    if obj["kind"] == "Pod":
        yield obj["spec"]
    elif obj["kind"] == "Deployment":
        yield obj["spec"]["template"]["spec"]


def until(read: Callable[[], Any], done: Callable[[Any], object], timeout: float, message: str) -> Any:
    """Poll `read()` until `done(value)` holds; return that value (wait_for with a readable failure message)."""
    box: list = [None]

    def check() -> bool:
        box[0] = read()
        return bool(done(box[0]))

    wait_for(check, timeout=timeout, message=message)
    return box[0]


# ---------------------------------------------------------------------------------------------- pods and claims
def pod_scheduled_condition(pod: dict) -> dict:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled":
            return cond
    return {}


def is_running(pod: dict) -> bool:
    status = pod.get("status") or {}
    return (bool(pod["spec"].get("nodeName")) and status.get("phase") == "Running"
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []))


def is_unschedulable(pod: dict, reason: str = UNSCHEDULABLE) -> bool:
    cond = pod_scheduled_condition(pod)
    return (not pod["spec"].get("nodeName") and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable" and reason in (cond.get("message") or ""))


def pod_claim_names(pod: dict) -> list[str]:
    """The ResourceClaims a pod uses: named directly, or created from a template (pod.status.resourceClaimStatuses)."""
    generated = {s["name"]: s.get("resourceClaimName")
                 for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []}
    names = []
    for ref in pod["spec"].get("resourceClaims") or []:
        names.append(ref.get("resourceClaimName") or generated.get(ref["name"]))
    return names


def results(claim: dict) -> list[dict]:
    return (((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results") or []


def device_key(result: dict) -> tuple[str, str, str]:
    return result["driver"], result["pool"], result["device"]


def published_devices(slices: list[dict]) -> dict[tuple[str, str, str], tuple[dict, dict]]:
    """(driver, pool, device) -> (the device, its slice) for the given slices."""
    out = {}
    for s in slices:
        spec = s["spec"]
        for dev in spec.get("devices") or []:
            out[(spec["driver"], spec["pool"]["name"], dev["name"])] = (dev, s)
    return out


# ---------------------------------------------------------------------------------------------- the test's world
class Scenario:
    """Everything one e2e test creates, in its own namespace, and the means to explain a failure."""

    def __init__(self, api: client.ApiClient, control_plane, unique: str) -> None:
        self.api = api
        self.cp = control_plane
        self.unique = unique
        self.namespace = f"e2e-{unique}"
        self.rest = Rest(api, timeout=(5.0, 30.0))
        self.core = client.CoreV1Api(api)
        self.nodes: list[str] = []
        self.cluster_objects: list[tuple[str, str]] = []  # (kind, name) of DeviceClasses
        self.drivers: set[str] = set()
        self.driver_procs: list[dict] = []

    # ------------------------------------------------------------------ setup
    def setup(self) -> "Scenario":
        self.core.create_namespace({"metadata": {"name": self.namespace, "labels": {TEST_LABEL: self.unique}}})
        # pods need the namespace's default ServiceAccount, which kube-controller-manager creates
        wait_for(lambda: self._exists(f"/api/v1/namespaces/{self.namespace}/serviceaccounts/default"), timeout=30,
                 message=f"ServiceAccount {self.namespace}/default (kube-controller-manager)")
        return self

    def _exists(self, path: str) -> bool:
        try:
            self.rest.get(path)
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    def load(self, name: str) -> Example:
        example = Example(name, self.unique, self.namespace)
        self.drivers.update(example.driver(d) for d in EXAMPLE_DRIVERS)
        config = load_config(example.config_text)  # profiles: the real drivers' names (read on our nodes only)
        self.drivers.update(config.slice_driver(m) for m in config.mappings)
        return example

    def node(self, suffix: str, instance_type: str = "c-4x-amd64-linux", labels: dict[str, str] | None = None) -> str:
        """A KWOK node as KWOK documents it (plus Karpenter's instance type), made Ready by the real KWOK controller
        and untainted by node-lifecycle; nothing here writes its status."""
        name = f"e2e-{self.unique}-{suffix}"
        self.nodes.append(name)
        create_node(self.api, kwok_node(name, {TEST_LABEL: self.unique, **(labels or {})},
                                        instance_type=instance_type))
        node = until(lambda: self.rest.get(f"/api/v1/nodes/{name}"), schedulable, NODE_READY_TIMEOUT,
                     f"node {name} Ready (KWOK) without the not-ready taint (node-lifecycle)")
        assert node["status"]["allocatable"].get("pods"), f"node {name} has no allocatable pods"
        assert [t["key"] for t in node["spec"]["taints"]] == [KWOK_TOLERATION["key"]], node["spec"]["taints"]
        return name

    # ------------------------------------------------------------------ the driver
    def apply_config(self, example: Example) -> None:
        put_configmap(self.api, self.namespace, example.config_map["metadata"]["name"], example.config_text)

    def apply_config_text(self, text: str, configmap: str = "dra-kwok-configmap") -> None:
        put_configmap(self.api, self.namespace, configmap, text)

    def start_driver(self, configmap: str = "dra-kwok-configmap", ready: bool = True) -> dict:
        """`dra-kwok run` as a subprocess watching this test's ConfigMap; stopped by `stop_driver` / teardown.
        ``ready=False``: do not wait for /readyz (a config refused for this cluster keeps it unready)."""
        from tests.integration.driver import http_get, run_process

        ctx = run_process(self.cp, self.namespace, f"--configmap={configmap}", "--v=3")
        info = ctx.__enter__()
        info["ctx"] = ctx
        self.driver_procs.append(info)

        def is_ready() -> bool:
            assert info["proc"].poll() is None, f"dra-kwok exited {info['proc'].returncode}"
            return http_get(info["health"] + "/readyz")[0] == 200

        if ready:
            wait_for(is_ready, timeout=20, message="dra-kwok /readyz")
        return info

    def stop_driver(self) -> None:
        """SIGTERM, as Kubernetes stops a pod; the driver must exit 0 within a few seconds."""
        for info in self.driver_procs:
            proc: subprocess.Popen = info["proc"]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(15) == 0, f"dra-kwok exited {proc.returncode}"

    def slices(self, driver: str | None = None, node: str | None = None) -> list[dict]:
        """Every slice of this test's drivers (ours only), raw JSON, sorted by name."""
        query = {"labelSelector": "app.kubernetes.io/managed-by=dra-kwok"}
        if node:
            query["fieldSelector"] = f"spec.nodeName={node}"
        items = self.rest.get(SLICES_PATH, query=query)["items"]
        wanted = {driver} if driver else self.drivers
        mine = f"e2e-{self.unique}."  # our own driver names; a shared (real) name counts on our nodes only
        return sorted((s for s in items if s["spec"]["driver"] in wanted
                       and (s["spec"]["driver"].startswith(mine) or s["spec"].get("nodeName") in self.nodes)),
                      key=lambda s: s["metadata"]["name"])

    def wait_slices(self, count: int, driver: str | None = None, node: str | None = None,
                    timeout: float = SLICE_TIMEOUT) -> list[dict]:
        return until(lambda: self.slices(driver, node), lambda got: len(got) == count, timeout,
                     f"{count} slices (driver={driver}, node={node})")

    # ------------------------------------------------------------------ objects
    def create(self, obj: dict) -> dict:
        meta = obj["metadata"]
        created = self.rest.post(object_path(obj["kind"], meta.get("namespace")), obj,
                                 query={"fieldManager": FIELD_MANAGER})
        if obj["kind"] == "DeviceClass":
            self.cluster_objects.append(("DeviceClass", meta["name"]))
        return created

    def create_all(self, example: Example, *kinds: str) -> None:
        for obj in example.objects:
            if not kinds or obj["kind"] in kinds:
                self.create(obj)

    def get(self, kind: str, name: str) -> dict:
        return self.rest.get(object_path(kind, self.namespace, name))

    def pods(self, selector: str | None = None) -> list[dict]:
        query = {"labelSelector": selector} if selector else None
        items = self.rest.get(object_path("Pod", self.namespace), query=query)["items"]
        return sorted(items, key=lambda p: p["metadata"]["name"])

    def claims(self) -> list[dict]:
        return self.rest.get(object_path("ResourceClaim", self.namespace))["items"]

    def scale(self, deployment: str, replicas: int) -> None:
        self.rest.patch(object_path("Deployment", self.namespace, deployment), {"spec": {"replicas": replicas}},
                        query={"fieldManager": FIELD_MANAGER})

    # ------------------------------------------------------------------ waiting on the scheduler
    def wait_bound(self, name: str, timeout: float = SCHEDULE_TIMEOUT) -> dict:
        return until(lambda: self.get("Pod", name), lambda p: p["spec"].get("nodeName"), timeout,
                     f"pod {name} bound to a node")

    def wait_all_bound(self, selector: str, count: int, timeout: float = SCHEDULE_TIMEOUT) -> list[dict]:
        return until(lambda: self.pods(selector),
                     lambda pods: len(pods) == count and all(p["spec"].get("nodeName") for p in pods), timeout,
                     f"{count} pods {selector} bound")

    def wait_running(self, name: str, timeout: float = RUNNING_TIMEOUT) -> dict:
        """Bound and Running with every container ready: KWOK's pod-ready stage, as a kubelet would report it."""
        return until(lambda: self.get("Pod", name), is_running, timeout, f"pod {name} Running (KWOK's pod-ready)")

    def wait_all_running(self, selector: str, count: int, timeout: float = RUNNING_TIMEOUT) -> list[dict]:
        return until(lambda: self.pods(selector), lambda pods: len(pods) == count and all(map(is_running, pods)),
                     timeout, f"{count} pods {selector} Running")

    def wait_unschedulable(self, name: str, reason: str = UNSCHEDULABLE, timeout: float = SCHEDULE_TIMEOUT) -> dict:
        return until(lambda: self.get("Pod", name), lambda p: is_unschedulable(p, reason), timeout,
                     f"pod {name} Unschedulable with {reason!r}")

    def allocated(self, pod: dict, timeout: float = 10.0) -> list[dict]:
        """The allocated claims of a bound pod (the scheduler writes the allocation before it binds)."""
        def claims() -> list[dict]:
            names = pod_claim_names(self.get("Pod", pod["metadata"]["name"]))
            return [self.get("ResourceClaim", n) for n in names] if names and all(names) else []

        return until(claims, lambda got: got and all(results(c) for c in got), timeout,
                     f"allocated claims of pod {pod['metadata']['name']}")

    # ------------------------------------------------------------------ failure report
    def describe(self) -> str:
        """Pods with their scheduling condition, the namespace's events (the scheduler's FailedScheduling first of
        all), claims, our slices, and the tails of the driver's and the scheduler's logs."""
        out: list[str] = [f"=== namespace {self.namespace}, drivers {sorted(self.drivers)}, nodes {self.nodes}"]
        try:
            out.append("--- pods")
            pods = self.pods()
            if len(pods) > 60:
                out.append(f"(first 60 of {len(pods)})")
            for p in pods[:60]:
                cond = pod_scheduled_condition(p)
                out.append(f"{p['metadata']['name']}: node={p['spec'].get('nodeName')!r} "
                           f"phase={(p.get('status') or {}).get('phase')} "
                           f"PodScheduled={cond.get('status')} {cond.get('reason', '')}: {cond.get('message', '')}")
            out.append("--- events (kubectl get events)")
            events = self.rest.get(f"/api/v1/namespaces/{self.namespace}/events")["items"]
            events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime")
                        or e["metadata"]["creationTimestamp"])
            if len(events) > 80:
                out.append(f"(last 80 of {len(events)})")
            for e in events[-80:]:
                obj = e.get("involvedObject") or {}
                src = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
                out.append(f"{e.get('type')} {e.get('reason')} {obj.get('kind')}/{obj.get('name')} [{src}] "
                           f"x{e.get('count') or 1}: {e.get('message')}")
            out.append("--- claims")
            for c in self.claims():
                alloc = [f"{r['driver']}/{r['pool']}/{r['device']}" for r in results(c)]
                reserved = [r.get("name") for r in (c.get("status") or {}).get("reservedFor") or []]
                out.append(f"{c['metadata']['name']}: allocated={alloc} reservedFor={reserved}")
            out.append("--- our slices")
            for s in self.slices():
                spec = s["spec"]
                where = spec.get("nodeName") or (
                    "allNodes" if spec.get("allNodes") else json.dumps(spec.get("nodeSelector")))
                out.append(f"{s['metadata']['name']}: {spec['driver']} pool={spec['pool']} on {where} "
                           f"devices={len(spec.get('devices') or [])}")
        except Exception as err:  # the report must never hide the real failure
            out.append(f"(could not read the cluster: {err})")
        for info in self.driver_procs:
            out.append(f"--- dra-kwok log {info['log']} (last 40 lines)")
            out.append(_tail(Path(info["log"]), 40))
        sched = self.cp.components.get("kube-scheduler")
        if sched is not None:  # what it logged about this test's objects
            mine = [line for line in _tail(sched.log_path, 5000).splitlines()
                    if self.namespace in line or any(n in line for n in self.nodes)]
            out.append(f"--- kube-scheduler log {sched.log_path}: lines naming this test's pods or nodes (last 20)")
            out.append("\n".join(mine[-20:]))
        return "\n".join(out)

    # ------------------------------------------------------------------ teardown
    def remove_pods(self, timeout: float = 30.0) -> None:
        """Delete this namespace's Deployments, then their ReplicaSets, then the pods (grace 0: no kubelet will ever
        confirm), each by the test itself: left to the garbage collector, the ReplicaSets took over 15 s in CI
        under load, recreating pods meanwhile."""
        apps = f"/apis/apps/v1/namespaces/{self.namespace}"

        def delete(path: str, body: dict) -> None:
            try:
                self.rest.delete(path, body)
            except ApiException as err:
                if err.status != 404:  # already gone (the garbage collector may still get there first)
                    raise

        for kind in ("deployments", "replicasets"):
            for obj in self.rest.get(f"{apps}/{kind}")["items"]:
                delete(f"{apps}/{kind}/{obj['metadata']['name']}", {"propagationPolicy": "Background"})

        def no_pods() -> bool:
            pods = self.pods()
            for p in pods:
                delete(object_path("Pod", self.namespace, p["metadata"]["name"]), {"gracePeriodSeconds": 0})
            return not pods

        wait_for(no_pods, timeout=timeout, interval=0.2, message="pods gone")

    def teardown(self) -> None:
        """Stop the driver, remove pods (forcefully: no kubelet will ever confirm), nodes, our slices, classes and
        the namespace. Best effort: a failing cleanup must not hide the test's own result."""
        for info in self.driver_procs:
            try:
                info["ctx"].__exit__(None, None, None)
            except Exception:
                pass
        ns = self.namespace
        try:
            self.remove_pods()
        except Exception as err:
            print(f"e2e teardown: pods of {ns}: {err}")
        for name in self.nodes:
            _ignore_404(lambda: self.core.delete_node(name))
        for s in self.slices():  # cluster-wide slices have no owner to be collected with
            _ignore_404(lambda: self.rest.delete(f"{SLICES_PATH}/{s['metadata']['name']}"))
        for kind, name in self.cluster_objects:
            _ignore_404(lambda: self.rest.delete(object_path(kind, None, name)))
        _ignore_404(lambda: self.core.delete_namespace(ns))


def _ignore_404(call: Callable[[], object]) -> None:
    try:
        call()
    except ApiException as err:
        if err.status != 404:
            print(f"e2e teardown: {err.status} {err.reason}")


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"({err})"


# ---------------------------------------------------------------------------------------------- versions
def validate(ex: Example, version: str) -> tuple[int, str]:
    """`dra-kwok validate --kubernetes-version <version>` on the example's config.yaml, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "dra_kwok", "validate", "--kubernetes-version", version, str(ex.dir / "config.yaml")],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def assert_dropped_on_this_cluster(scenario: Scenario, ex: Example, gate: str, fields: list[str]) -> list[dict]:
    """On a cluster with `gate` off: validate passes and warns about each of `fields` naming the gate; the running
    driver publishes, the apiserver stores the slices without `fields`, and one DroppedFields Warning Event on the
    ConfigMap names each field with its gate. Returns the stored slices."""
    cluster_minor = f"1.{Version.parse(k8s_version()).minor}"
    code, out = validate(ex, cluster_minor)
    assert code == 0 and "valid (" in out, out
    for field in fields:
        assert (f"spec.{field}: dropped by an apiserver without the alpha feature gate {gate} (Kubernetes "
                f"{cluster_minor}; on by default since Kubernetes 1.36)") in out, out

    def dropped() -> list:
        events = client.CoreV1Api(scenario.api).list_namespaced_event(scenario.namespace).items
        return [e for e in events if e.type == "Warning" and e.reason == "DroppedFields"]

    [event] = wait_for(dropped, timeout=20, message="the DroppedFields event")
    assert event.involved_object.kind == "ConfigMap", event.message
    for field in fields:
        assert f"{field} (feature gate {gate})" in event.message, event.message
    stored = until(scenario.slices, bool, 20, "the slices published")
    for field in fields:  # e.g. devices[].taints: on no device of any slice
        top, _, leaf = field.partition("[].")
        assert all(leaf not in d for s in stored for d in s["spec"].get(top) or ()) if leaf else \
            all(top not in s["spec"] for s in stored), (field, stored)
    return stored
