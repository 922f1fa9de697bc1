"""Running the driver in tests exactly as production does: the real Manager in-process, or `dra-kwok run` as a
subprocess, against the real control plane; plus the objects the tests create (ConfigMaps, KWOK nodes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_kwok.app import App
from dra_kwok.settings import Settings
from dra_kwok.slices.render import INSTANCE_LABEL
from dra_kwok.testing.controlplane import free_port
from tests.support.helpers import create_node, kwok_node, wait_for

MANAGED = "app.kubernetes.io/managed-by=dra-kwok"


def config_text(driver: str, mappings: list[dict]) -> str:
    return yaml.safe_dump({"driver": driver, "mappings": mappings}, sort_keys=False)


def mapping(name: str, match: dict[str, str] | list[dict[str, str]], pool: str = "gpu", devices: list[dict] | None = None,
            **slice_fields) -> dict:
    """A mapping whose nodeSelectorTerms AND the labels of each dict and OR the dicts."""
    terms = [match] if isinstance(match, dict) else match
    return {
        "name": name,
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": k, "operator": "In", "values": [v]} for k, v in term.items()]}
            for term in terms
        ],
        "resourceSlice": {
            "pool": {"name": pool},
            "devices": devices if devices is not None else [
                {"name": "gpu", "count": 2, "attributes": {"type": {"string": "nvidia-t4"}},
                 "capacity": {"memory": {"value": "16Gi"}}}
            ],
            **slice_fields,
        },
    }


def ensure_namespace(api: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except ApiException as err:
        if err.status != 409:
            raise


def put_configmap(api: client.ApiClient, namespace: str, name: str, text: str | None = None,
                  data: dict[str, str] | None = None, binary: dict[str, str] | None = None) -> None:
    """Create or replace a ConfigMap: `text` as its config.yaml, or any `data` (and `binaryData`)."""
    core = client.CoreV1Api(api)
    body: dict = {"metadata": {"name": name, "namespace": namespace},
                  "data": data if data is not None else {"config.yaml": text}}
    if binary:
        body["binaryData"] = binary
    try:
        core.replace_namespaced_config_map(name, namespace, body)
    except ApiException as err:
        if err.status != 404:
            raise
        core.create_namespaced_config_map(namespace, body)


def delete_configmap(api: client.ApiClient, namespace: str, name: str) -> None:
    client.CoreV1Api(api).delete_namespaced_config_map(name, namespace)


def slices(api: client.ApiClient, node: str | None = None, driver: str | None = None,
           instance: str | None = None) -> list[dict]:
    """dra-kwok's slices (by label), raw JSON, optionally one node's, one driver's and one instance's, sorted by
    name."""
    selector = MANAGED + (f",{INSTANCE_LABEL}={instance}" if instance else "")
    kw = {"label_selector": selector, "_preload_content": False}
    if node:
        kw["field_selector"] = f"spec.nodeName={node}"
    resp = client.ResourceV1Api(api).list_resource_slice(**kw)
    items = json.loads(resp.data)["items"]
    if driver:
        items = [s for s in items if s["spec"]["driver"] == driver]
    return sorted(items, key=lambda s: s["metadata"]["name"])


def all_slices(api: client.ApiClient) -> list[dict]:
    resp = client.ResourceV1Api(api).list_resource_slice(_preload_content=False)
    return json.loads(resp.data)["items"]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:  # not listening (yet, or any more)
        return 0, str(err)


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (Prometheus text format)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        base, _, rest = series.partition("{")
        if base != name:
            continue
        got = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
        if all(got.get(k, "").strip('"') == v for k, v in labels.items()):
            total += float(value)
    return total


class RunningManager:
    def __init__(self, app: App, thread: threading.Thread) -> None:
        self.app = app
        self.thread = thread

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.app.settings.health_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.app.settings.metrics_port}/metrics"

    def metrics_text(self) -> str:
        return http_get(self.metrics_url)[1]

    def writes(self) -> float:
        return metric(self.metrics_text(), "dra_kwok_resourceslice_writes_total")

    def idle(self) -> bool:
        return self.app.slices.queue.idle()


@contextmanager
def run_manager(control_plane, namespace: str, configmap: str = "dra-kwok-configmap", **opts) -> Iterator[RunningManager]:
    """The real Manager in a thread, with probes and metrics on free ports; stopped (and checked) on exit."""
    settings = Settings(
        kubeconfig=str(control_plane.kubeconfig), namespace=namespace, configmap=configmap,
        health_port=free_port(), metrics_port=free_port(), bind_address="127.0.0.1", **opts,
    )
    app = App(settings)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(app.run(install_signals=False)), daemon=True)
    thread.start()
    running = RunningManager(app, thread)
    try:
        wait_for(lambda: http_get(running.health_url + "/readyz")[0] == 200, timeout=15, message="driver ready")
        yield running
    finally:
        app.manager.stopping.set()
        thread.join(10)
        assert not thread.is_alive(), "manager did not stop within 10 s"
        assert codes == [0]


@contextmanager
def run_process(control_plane, namespace: str, *args: str, env: dict | None = None) -> Iterator[dict]:
    """`dra-kwok run` as a real subprocess; yields {proc, health, metrics, log}."""
    health, metrics = free_port(), free_port()
    log_path = Path(control_plane.root) / f"dra-kwok-{health}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dra_kwok", "run", f"--kubeconfig={control_plane.kubeconfig}",
         f"--namespace={namespace}", f"--health-port={health}", f"--metrics-port={metrics}",
         "--bind-address=127.0.0.1", *args],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )
    info = {"proc": proc, "health": f"http://127.0.0.1:{health}", "metrics": f"http://127.0.0.1:{metrics}/metrics",
            "log": log_path}
    try:
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
        log.close()


def wait_ready(url: str, timeout: float = 20) -> None:
    wait_for(lambda: http_get(url + "/readyz")[0] == 200, timeout=timeout, message=f"{url}/readyz")


def sigterm_and_wait(proc: subprocess.Popen, limit: float = 5.0) -> tuple[int, float]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(limit + 5)
    return code, time.monotonic() - t0


@contextmanager
def private_env(control_plane, unique: str, clean: Callable[[], bool] = lambda: True) -> Iterator["TestEnv"]:
    """A TestEnv on a control plane of the test module's own (its own API client, closed after); cleaned up after
    the test when ``clean()`` says so (not when the test left the apiserver dead)."""
    api = control_plane.api_client()
    env = TestEnv(api, control_plane, unique)
    yield env
    if clean():
        env.cleanup()
    api.close()


class TestEnv:
    """A namespace, a driver name and a label value private to one test, on a given control plane."""

    __test__ = False  # not a pytest test class

    def __init__(self, api: client.ApiClient, control_plane, unique: str) -> None:
        self.api, self.cp, self.unique = api, control_plane, unique
        self.namespace = f"drv-{unique}"
        self.driver = f"gpu-{unique}.example.com"
        self.tag = {"dra-kwok-test": unique}
        self.created: list[str] = []
        ensure_namespace(api, self.namespace)

    def name(self, suffix: str) -> str:
        return f"n-{self.unique}-{suffix}"

    def node(self, suffix: str, labels: dict | None = None, kwok: bool = True) -> dict:
        self.created.append(self.name(suffix))
        return create_node(self.api, kwok_node(self.name(suffix), {**self.tag, **(labels or {})}, kwok=kwok))

    def config(self, *mappings: dict) -> None:
        put_configmap(self.api, self.namespace, "dra-kwok-configmap", config_text(self.driver, list(mappings)))

    def slices(self, suffix: str | None = None) -> list[dict]:
        return slices(self.api, node=self.name(suffix) if suffix else None, driver=self.driver)

    def cleanup(self) -> None:
        """Delete this test's nodes and its driver's slices (no garbage collector runs in most tests)."""
        core = client.CoreV1Api(self.api)
        for name in self.created:
            try:
                core.delete_node(name)
            except ApiException:
                pass
        # The answer lists every deleted slice (18 MB after the memory-budget test) and a loaded apiserver may cut
        # so long a request (its 60 s request timeout): read it raw and repeat until none is left.
        resource, selector = client.ResourceV1Api(self.api), f"spec.driver={self.driver}"
        deadline = time.monotonic() + 300
        while True:
            try:
                resp = resource.delete_collection_resource_slice(
                    field_selector=selector, _preload_content=False, _request_timeout=(5, 300))
                resp.read()
                resp.release_conn()
            except Exception:
                if time.monotonic() > deadline:
                    raise
            left = resource.list_resource_slice(field_selector=selector, limit=1, _preload_content=False)
            if not json.loads(left.data)["items"]:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"slices of {self.driver} still there after 300 s of cleanup")
