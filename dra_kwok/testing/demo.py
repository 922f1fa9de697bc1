"""`make demo`: dra-kwok's main job on an embedded local cluster, in about a minute (plus the first build).

Why a script and not a README recipe: a newcomer should see a DRA pod scheduled on a fake GPU without a cloud
account, a kind cluster or reading anything first. It starts the project's control plane (scheduler and
controller-manager included) and the real KWOK controller, creates KWOK nodes of three instance types the way KWOK
documents them (KWOK makes them Ready), applies `examples/demo/config.yaml`, starts `dra-kwok run`, shows the slices
per node, schedules `examples/demo/gpu-pod.yaml` and says where it landed, which device it got, and that KWOK made it
Running. Everything stays up to play with; `make demo-down` stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from dra_kwok.testing.controlplane import (
    REPO_ROOT,
    _pid_alive,
    cluster_dir,
    cluster_down,
    cluster_up,
    find_binary,
)
from dra_kwok.testing.kwok import create_node, kwok_node, wait_schedulable

NODES = {
    "kwok-gpu-0": "g-8x-amd64-linux",
    "kwok-gpu-1": "g-8x-amd64-linux",
    "kwok-fpga-0": "f-2x-amd64-linux",
    "kwok-cpu-0": "c-4x-amd64-linux",
}
EXPECTED_SLICES = 3  # two GPU nodes, one FPGA node; the CPU node gets none
DEMO = REPO_ROOT / "examples" / "demo"


def step(n: int, text: str) -> None:
    print(f"\n[{n}/6] {text}", flush=True)


def wait(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise SystemExit(f"demo: timed out after {timeout:.0f}s waiting for {what}")


def kubectl(kubeconfig: str, *args: str) -> str:
    return subprocess.run([find_binary("kubectl"), f"--kubeconfig={kubeconfig}", *args], check=True,
                          capture_output=True, text=True).stdout


def _driver_pid_file() -> Path:
    return cluster_dir() / "dra-kwok.pid"


def up() -> int:
    t0 = time.monotonic()
    step(1, "Local control plane: etcd, kube-apiserver, kube-scheduler, kube-controller-manager, KWOK")
    state = cluster_up()
    kubeconfig = state["kubeconfig"]
    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)

    step(2, f"{len(NODES)} KWOK nodes, as KWOK documents them (annotation, label and taint kwok.x-k8s.io/node=fake)")
    for name, instance_type in NODES.items():
        try:
            create_node(api, kwok_node(name, instance_type=instance_type))
        except ApiException as err:
            if err.status != 409:
                raise
        print(f"  node/{name}  instance-type={instance_type}")
    try:
        wait_schedulable(api, list(NODES), timeout=60)
    except TimeoutError as err:
        raise SystemExit(f"demo: {err}") from None
    print("  all Ready (KWOK's node-initialize stage; node-lifecycle lifted the not-ready taint)")

    step(3, "The configuration: ConfigMap karpenter/dra-kwok-configmap (GPUs and an FPGA)")
    try:
        core.create_namespace({"metadata": {"name": "karpenter"}})  # type: ignore[arg-type]  # a dict body is sent as it is
    except ApiException as err:
        if err.status != 409:
            raise
    print("  " + kubectl(kubeconfig, "apply", "-f", str(DEMO / "config.yaml")).strip())

    step(4, "dra-kwok run")
    pid_file = _driver_pid_file()
    if pid_file.exists() and _pid_alive(int(pid_file.read_text())):
        print(f"  already running (pid {pid_file.read_text().strip()})")
    else:
        log_path = cluster_dir() / "dra-kwok.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dra_kwok", "run", f"--kubeconfig={kubeconfig}", "--bind-address=127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        pid_file.write_text(str(proc.pid))
        print(f"  pid {proc.pid}, logs in {log_path}, probes on :8081, metrics on :8080")

    step(5, "ResourceSlices appear")
    resource = client.ResourceV1Api(api)

    def our_slices():
        items = json.loads(resource.list_resource_slice(label_selector="app.kubernetes.io/managed-by=dra-kwok",
                                                        _preload_content=False).data)["items"]
        return items if len(items) >= EXPECTED_SLICES else None

    items = wait("the slices", our_slices, timeout=30)
    print(f"  {'NODE':<14} {'INSTANCE TYPE':<18} {'DRIVER':<24} {'POOL':<20} DEVICES")
    for s in sorted(items, key=lambda s: s["spec"].get("nodeName", "")):
        node = s["spec"].get("nodeName", "(all nodes)")
        print(f"  {node:<14} {NODES.get(node, ''):<18} {s['spec']['driver']:<24} {s['spec']['pool']['name']:<20} "
              f"{len(s['spec'].get('devices') or [])}")
    print("  kwok-cpu-0 gets none: no mapping matches its instance type.")

    step(6, "A pod asking for one GPU (DeviceClass + ResourceClaimTemplate + Pod)")
    wait("the default ServiceAccount", lambda: _exists(lambda: core.read_namespaced_service_account("default", "default")))
    print("  " + kubectl(kubeconfig, "apply", "-f", str(DEMO / "gpu-pod.yaml")).strip().replace("\n", "\n  "))
    pod = wait("the pod to be scheduled", lambda: (p := core.read_namespaced_pod("gpu-pod", "default")).spec and p.spec.node_name and p)
    pod = wait("KWOK to make the pod Running",
               lambda: (p := core.read_namespaced_pod("gpu-pod", "default")).status is not None
               and p.status.phase == "Running" and p)
    claim_name = pod.status.resource_claim_statuses[0].resource_claim_name
    claim = json.loads(client.ResourceV1Api(api).read_namespaced_resource_claim(
        claim_name, "default", _preload_content=False).data)  # type: ignore[attr-defined]  # the raw HTTP response
    result = claim["status"]["allocation"]["devices"]["results"][0]
    print(f"  pod/gpu-pod scheduled on {pod.spec.node_name}: claim {claim_name} got device {result['device']} "
          f"of pool {result['pool']} (driver {result['driver']}); {pod.status.phase} (KWOK's pod-ready stage)")

    print(f"\nDone in {time.monotonic() - t0:.0f}s. The cluster stays up; to play with it:\n")
    print(f"  export KUBECONFIG={kubeconfig}")
    print(f"  alias kubectl={find_binary('kubectl')}")
    print("  kubectl get resourceslices -o wide")
    print("  kubectl edit configmap -n karpenter dra-kwok-configmap   # slices follow within a second")
    print("\nStop everything with: make demo-down")
    return 0


def _exists(read) -> bool:
    try:
        read()
        return True
    except ApiException as err:
        if err.status == 404:
            return False
        raise


def down() -> int:
    pid_file = _driver_pid_file()
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            print(f"# dra-kwok (pid {pid}) stopped", file=sys.stderr)
        pid_file.unlink()
    cluster_down()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dra_kwok.testing.demo")
    parser.add_argument("command", choices=["up", "down"])
    return up() if parser.parse_args(argv).command == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
