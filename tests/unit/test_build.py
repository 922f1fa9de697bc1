"""hack/controlplane/build.sh, hack/etcd/build.sh and hack/kwok/build.sh (failure discipline in hack/lib/gobuild.sh,
issue #13), run against a stub `go` first on PATH: no real Go, no network, a fraction of a second each.

The stub logs every call, answers `go env GOVERSION` / `go env GOPROXY`, treats `go get` as a no-op, answers
`go list -m -f {{.Dir}}` with a fake module directory (STUB_GO_MODDIR: KWOK's stage files), and "builds" by
writing a small executable to the `-o` path (after STUB_GO_SLEEP seconds); a build whose arguments contain
STUB_GO_FAIL writes half a file and fails, as a killed linker would.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

STUB_GO = r"""#!/usr/bin/env bash
echo "$*" >> "$STUB_GO_LOG"
case "$1" in
  env) case "$2" in GOVERSION) echo go1.26.8 ;; GOPROXY) echo https://proxy.invalid ;; esac; exit 0 ;;
  get) exit 0 ;;
  list) echo "$STUB_GO_MODDIR"; exit 0 ;;
  build) ;;
  *) echo "stub go: unexpected: $*" >&2; exit 2 ;;
esac
out="" prev=""
for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done
sleep "${STUB_GO_SLEEP:-0}"
if [ -n "${STUB_GO_FAIL:-}" ] && [[ " $* " == *"$STUB_GO_FAIL "* ]]; then
  printf 'half' > "$out"
  echo "stub go: build failed" >&2
  exit 1
fi
printf '#!/bin/sh\necho built by the stub\n' > "$out"
chmod +x "$out"
"""


@dataclass(frozen=True)
class Script:
    path: str
    label: str  # the prefix of every line the script prints
    out: str  # the cache directory the binaries land in, under DRA_KWOK_CACHE
    binaries: tuple[str, ...]
    fail: tuple[str, str]  # (binary, a STUB_GO_FAIL token that makes its build fail)
    ready: str  # the last line of a successful cold run


KUBE = Script(
    "hack/controlplane/build.sh", "controlplane", "k8s/" + (ROOT / "hack/controlplane/K8S_VERSION").read_text().strip(),
    ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubectl"),
    ("kube-controller-manager", "cmd/kube-controller-manager"), "binaries ready in",
)
ETCD = Script(
    "hack/etcd/build.sh", "etcd",
    "etcd/" + (ROOT / "hack/controlplane/versions" / (ROOT / "hack/controlplane/K8S_VERSION").read_text().strip()
               / "ETCD_VERSION").read_text().strip(),
    ("etcd",), ("etcd", "go.etcd.io/etcd/server/v3"), "ready in",
)
KWOK = Script(
    "hack/kwok/build.sh", "kwok",
    "kwok/" + re.search(r"^require sigs\.k8s\.io/kwok v(\S+)$", (ROOT / "hack/kwok/go.mod").read_text(), re.M)[1],
    ("kwok",), ("kwok", "sigs.k8s.io/kwok/cmd/kwok"), "ready in",
)
KARPENTER = Script(
    "hack/karpenter/build.sh", "karpenter",
    "karpenter/" + re.search(r"^require sigs\.k8s\.io/karpenter v(\S+)$",
                             (ROOT / "hack/karpenter/go.mod").read_text(), re.M)[1],
    ("karpenter-kwok",), ("karpenter-kwok", "sigs.k8s.io/karpenter/kwok"), "ready in",
)
SCRIPTS = pytest.mark.parametrize("script", [KUBE, ETCD, KWOK, KARPENTER], ids=["kube", "etcd", "kwok", "karpenter"])
#: KWOK's default stages (its release's stage-fast set), in the module's layout: what hack/kwok/build.sh copies.
KWOK_STAGES = {
    "kustomize/stage/node/fast/node-initialize.yaml": "node-initialize",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml": "node-heartbeat-with-lease",
    "kustomize/stage/pod/fast/pod-ready.yaml": "pod-ready",
    "kustomize/stage/pod/fast/pod-complete.yaml": "pod-complete",
    "kustomize/stage/pod/fast/pod-delete.yaml": "pod-delete",
}
#: The CRDs of Karpenter's KWOK provider, in the sigs.k8s.io/karpenter module's layout: what hack/karpenter/build.sh
#: copies (the stub's module directory holds both modules' files).
KARPENTER_CRDS = {
    "kwok/charts/crds/karpenter.sh_nodepools.yaml": "nodepools.karpenter.sh",
    "kwok/charts/crds/karpenter.sh_nodeclaims.yaml": "nodeclaims.karpenter.sh",
    "kwok/charts/crds/karpenter.sh_nodeoverlays.yaml": "nodeoverlays.karpenter.sh",
    "kwok/charts/crds/autoscaling.x-k8s.io_capacitybuffers.yaml": "capacitybuffers.autoscaling.x-k8s.io",
    "kwok/apis/crds/karpenter.kwok.sh_kwoknodeclasses.yaml": "kwoknodeclasses.karpenter.kwok.sh",
}


class Run:
    def __init__(self, tmp_path: Path):
        self.stub_dir = tmp_path / "stub"
        self.stub_dir.mkdir()
        (self.stub_dir / "go").write_text(STUB_GO)
        (self.stub_dir / "go").chmod(0o755)
        self.log = tmp_path / "go-calls.log"
        self.cache = tmp_path / "cache"
        self.moddir = tmp_path / "mod" / "sigs.k8s.io" / "kwok@v0"
        for rel, name in KWOK_STAGES.items():
            (self.moddir / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.moddir / rel).write_text(f"apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata:\n  name: {name}\n")
        for rel, name in KARPENTER_CRDS.items():
            (self.moddir / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.moddir / rel).write_text(f"kind: CustomResourceDefinition\nmetadata:\n  name: {name}\n")
        self.env = {
            "PATH": f"{self.stub_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path / "home"),
            "DRA_KWOK_CACHE": str(self.cache),
            "STUB_GO_LOG": str(self.log),
            "STUB_GO_MODDIR": str(self.moddir),
        }

    def __call__(self, script: Script, **env: str) -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        proc = subprocess.run(
            ["bash", str(ROOT / script.path)], env={**self.env, **env}, capture_output=True, text=True, timeout=60,
            cwd=ROOT,
        )
        proc.seconds = time.monotonic() - t0  # type: ignore[attr-defined]
        return proc

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def leftovers(self) -> list[str]:
        return [str(p) for p in self.cache.rglob("*") if ".tmp" in p.name]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def executable(path: Path) -> bool:
    return path.is_file() and bool(path.stat().st_mode & stat.S_IXUSR)


@SCRIPTS
def test_cold_build_then_warm_cache(run: Run, script: Script):
    cold = run(script)
    assert cold.returncode == 0, cold.stderr
    assert f"{script.label}: building " in cold.stdout
    for name in script.binaries:
        assert f"{script.label}: built {name} in " in cold.stdout
        assert executable(run.cache / script.out / name)
    assert script.ready in cold.stdout.splitlines()[-1]
    assert "FAILED" not in cold.stderr
    assert run.leftovers() == []
    assert sum(call.startswith("build ") for call in run.calls()) == len(script.binaries)
    # The ticker's sleep (30 s by default) is killed with it: no orphan keeps the output pipe open after the exit.
    assert cold.seconds < 10

    calls = run.calls()
    warm = run(script)
    assert warm.returncode == 0, warm.stderr
    assert f"{script.label}: " in warm.stdout and " cached in " in warm.stdout
    assert run.calls() == calls  # go was not invoked at all


@SCRIPTS
def test_failed_build_leaves_nothing_half_written(run: Run, script: Script):
    name, token = script.fail
    failed = run(script, STUB_GO_FAIL=token)
    assert failed.returncode != 0
    assert f"{script.label}: FAILED: go build {name} (exit 1)" in failed.stderr
    assert not (run.cache / script.out / name).exists()
    assert run.leftovers() == []
    built_before = script.binaries[: script.binaries.index(name)]
    assert all(executable(run.cache / script.out / b) for b in built_before)

    # The next run builds exactly what is missing.
    again = run(script)
    assert again.returncode == 0, again.stderr
    assert all(executable(run.cache / script.out / b) for b in script.binaries)
    assert not any(f"built {b} in" in again.stdout for b in built_before)


@SCRIPTS
def test_ticker_does_not_change_the_exit_status(run: Run, script: Script):
    ok = run(script, DRA_KWOK_BUILD_TICK="0.1", STUB_GO_SLEEP="0.5")
    assert ok.returncode == 0, ok.stderr
    assert f"{script.label}:   ... still building {script.binaries[0]}: " in ok.stdout
    assert "FAILED" not in ok.stderr

    name, token = script.fail
    for b in script.binaries:
        (run.cache / script.out / b).unlink()
    failed = run(script, DRA_KWOK_BUILD_TICK="0.1", STUB_GO_SLEEP="0.5", STUB_GO_FAIL=token)
    assert failed.returncode == 1
    assert f"FAILED: go build {name}" in failed.stderr
    assert run.leftovers() == []


def test_kube_build_refuses_a_go_that_breaks_the_apiserver(run: Run, tmp_path: Path):
    go = run.stub_dir / "go"
    go.write_text(go.read_text().replace("echo go1.26.8", "echo go1.27.1"))
    proc = run(KUBE)
    assert proc.returncode == 1
    assert "controlplane: FAILED: checking the Go toolchain" in proc.stderr
    assert not (run.cache / KUBE.out).exists() or not any((run.cache / KUBE.out).iterdir())


@pytest.mark.parametrize("version", ["1.34.4; touch PWNED", "$(touch PWNED)", "1.34.4/../../x", "v1.34"])
def test_kube_build_refuses_a_k8s_version_that_is_not_one(run: Run, tmp_path: Path, version: str):
    proc = run(KUBE, K8S_VERSION=version)
    assert proc.returncode == 2
    assert "controlplane: FAILED: K8S_VERSION must be a Kubernetes version like 1.34.4" in proc.stderr
    assert run.calls() == [] and not run.cache.exists()
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()


def test_relative_cache_dir_is_taken_from_the_callers_directory(run: Run, tmp_path: Path):
    rel = os.path.relpath(run.cache, ROOT)
    proc = run(ETCD, DRA_KWOK_CACHE=rel)
    assert proc.returncode == 0, proc.stderr
    assert executable(run.cache / ETCD.out / "etcd")


def test_kwok_build_copies_the_default_stages_of_the_same_module(run: Run):
    proc = run(KWOK)
    assert proc.returncode == 0, proc.stderr
    stages = (run.cache / KWOK.out / "stages.yaml").read_text()
    docs = [d for d in stages.split("---\n") if d.strip()]
    assert [re.search(r"name: (\S+)", d)[1] for d in docs] == list(KWOK_STAGES.values())
    assert "list -m -f {{.Dir}} sigs.k8s.io/kwok" in run.calls()


def test_kwok_build_without_a_stage_file_fails_and_leaves_no_stages(run: Run):
    (run.moddir / "kustomize/stage/pod/fast/pod-ready.yaml").unlink()
    proc = run(KWOK)
    assert proc.returncode != 0
    assert "kwok: FAILED: copying KWOK's default stages" in proc.stderr
    assert not (run.cache / KWOK.out / "stages.yaml").exists()
    assert run.leftovers() == []

    # The binary was built and stays; the next run only copies the stages.
    (run.moddir / "kustomize/stage/pod/fast/pod-ready.yaml").write_text("metadata:\n  name: pod-ready\n")
    builds = sum(call.startswith("build ") for call in run.calls())
    again = run(KWOK)
    assert again.returncode == 0, again.stderr
    assert sum(call.startswith("build ") for call in run.calls()) == builds
    assert (run.cache / KWOK.out / "stages.yaml").is_file()


def test_karpenter_build_copies_the_crds_of_the_same_module(run: Run):
    proc = run(KARPENTER)
    assert proc.returncode == 0, proc.stderr
    crds = run.cache / KARPENTER.out / "crds"
    assert sorted(p.name for p in crds.iterdir()) == sorted(Path(rel).name for rel in KARPENTER_CRDS)
    for rel, name in KARPENTER_CRDS.items():
        assert f"name: {name}" in (crds / Path(rel).name).read_text()
    assert "list -m -f {{.Dir}} sigs.k8s.io/karpenter" in run.calls()

    # A missing CRD file makes the next run copy it again, without rebuilding the binary.
    (crds / "karpenter.sh_nodeclaims.yaml").unlink()
    builds = sum(call.startswith("build ") for call in run.calls())
    again = run(KARPENTER)
    assert again.returncode == 0, again.stderr
    assert (crds / "karpenter.sh_nodeclaims.yaml").is_file()
    assert sum(call.startswith("build ") for call in run.calls()) == builds
