"""Karpenter's real KWOK provider against the harness's control plane (issue #17).

Why: the README tells users to pair dra-kwok with Karpenter's KWOK provider, and what Karpenter does with a DRA pod
(and with the nodes it launches) is only worth stating if the real Karpenter showed it. `hack/karpenter/build.sh`
builds the provider (`sigs.k8s.io/karpenter/kwok`, pinned in hack/karpenter/go.mod) into
`~/.cache/dra-kwok/karpenter/<version>/karpenter-kwok` with the CRDs it installs beside it (`crds/`); this module
installs those CRDs and runs the binary against a `ControlPlane`'s kubeconfig as one of its components, so
`ControlPlane.stop()` stops it too and its log stays in the control plane's directory.

It runs the way Karpenter's chart runs it, less what a process outside the cluster has no use for: one replica, so
no leader election (`DISABLE_LEADER_ELECTION`), metrics and health on free ports, and the kubeconfig from
`KUBECONFIG` (controller-runtime's `GetConfigOrDie`). Karpenter v1.15 has no webhooks to turn off. The nodes it
launches are KWOK's documented ones (annotation and label `kwok.x-k8s.io/node=fake`, `kwok://` providerID), so the
KWOK controller the harness runs (`ControlPlane.start_kwok`) makes them Ready.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_kwok.testing.controlplane import (
    REPO_ROOT,
    Component,
    ControlPlane,
    ControlPlaneError,
    _executable,
    _pinned_version,
    cache_dir,
    free_port,
)

KARPENTER_GO_MOD = REPO_ROOT / "hack" / "karpenter" / "go.mod"
BUILD_HINT = ("run hack/karpenter/build.sh (or `make karpenter`; it builds Karpenter's KWOK provider from the "
              "sigs.k8s.io/karpenter Go module and needs Go >= 1.26.9, which it fetches as GOTOOLCHAIN=go1.27.3)")


def karpenter_version() -> str:
    """The version of sigs.k8s.io/karpenter pinned in hack/karpenter/go.mod."""
    return _pinned_version(KARPENTER_GO_MOD, "sigs.k8s.io/karpenter", "1.15.0")


def karpenter_dir() -> Path:
    """Where `hack/karpenter/build.sh` puts `karpenter-kwok` and `crds/`."""
    return cache_dir() / "karpenter" / karpenter_version()


def find_karpenter() -> tuple[str, list[Path]]:
    """The binary and its CRD files; a ControlPlaneError that says how to build them if either is missing."""
    binary = karpenter_dir() / "karpenter-kwok"
    crds = sorted((karpenter_dir() / "crds").glob("*.yaml"))
    if not _executable(binary):
        raise ControlPlaneError(f"Karpenter's KWOK provider not found in {binary}: {BUILD_HINT}")
    if not crds:
        raise ControlPlaneError(f"Karpenter's CRDs not found in {karpenter_dir() / 'crds'}: {BUILD_HINT}")
    return str(binary), crds


def install_crds(api: client.ApiClient, files: list[Path], timeout: float = 30.0) -> list[str]:
    """Create the CRDs (kept if they already exist: the control plane may be shared by several tests) and wait
    until the apiserver serves each; returns their names."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            names.append(doc["metadata"]["name"])
            try:
                ext.create_custom_resource_definition(doc)
            except ApiException as err:
                if err.status != 409:
                    raise
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            status = ext.read_custom_resource_definition(name).status
            conds = (status.conditions if status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"CRD {name} not Established after {timeout:.0f}s")
            time.sleep(0.1)
    return names


def start_karpenter(cp: ControlPlane, ignore_dra_requests: bool = True, env: dict[str, str] | None = None,
                    timeout: float = 60.0) -> Component:
    """Install the CRDs and start Karpenter's KWOK provider as the control plane's `karpenter` component; returns
    once its /readyz passes (its caches synced and the CRDs served). `ignore_dra_requests` is its
    `IGNORE_DRA_REQUESTS` (default true, as Karpenter's). A short batch window (0.5 s idle, 2 s max, instead of
    1 s / 10 s) keeps the tests quick; `env` adds or overrides variables. Stop it with
    `cp.stop_component("karpenter")`: v1.15 installs no SIGTERM handler (its root context is
    `context.Background()`), so SIGTERM ends it at once. Its log is `cp.root / "karpenter.log"`."""
    if "karpenter" in cp.components:
        return cp.components["karpenter"]
    binary, crds = find_karpenter()
    api = cp.api_client()
    try:
        install_crds(api, crds)
    finally:
        api.close()
    health, metrics = free_port(), free_port()
    comp = Component("karpenter", [binary], cp.root / "karpenter.log", f"http://127.0.0.1:{health}/readyz")
    comp.env = {
        **os.environ,
        "KUBECONFIG": str(cp.kubeconfig),
        "DISABLE_LEADER_ELECTION": "true",
        "HEALTH_PROBE_PORT": str(health),
        "METRICS_PORT": str(metrics),
        "IGNORE_DRA_REQUESTS": "true" if ignore_dra_requests else "false",
        "BATCH_IDLE_DURATION": "500ms",
        "BATCH_MAX_DURATION": "2s",
        "LOG_LEVEL": "debug",
        **(env or {}),
    }
    cp._launch(comp, timeout=timeout)
    return comp


def log_lines(cp: ControlPlane, contains: str) -> list[str]:
    """The lines of Karpenter's log that contain `contains` (it logs JSON, one object a line)."""
    try:
        text = (cp.root / "karpenter.log").read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if contains in line]
