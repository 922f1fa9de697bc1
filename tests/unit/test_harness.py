"""The control-plane harness's pure parts (dra_kwok/testing/controlplane.py): which etcd it runs, no cluster."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from dra_kwok.testing import controlplane as cp


def fake_etcd(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "etcd"
    path.write_text(f"#!/bin/sh\necho 'etcd Version: {version}'\necho 'Git SHA: GitNotFound'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRA_KWOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    return tmp_path


def test_etcd_version_is_the_one_the_kubernetes_version_is_tested_with(monkeypatch: pytest.MonkeyPatch):
    """hack/controlplane/versions/<k8s>/ETCD_VERSION; a version pinned nowhere gets the default version's."""
    for k8s, etcd in (("1.37.2", "3.7.0"), ("1.34.4", "3.6.5")):
        monkeypatch.setenv("K8S_VERSION", k8s)
        assert cp.etcd_version() == etcd
    monkeypatch.setenv("K8S_VERSION", "1.36.3")
    default = cp.DEFAULT_VERSION_FILE.read_text().strip()
    assert cp.etcd_version() == (cp.VERSIONS_DIR / default / "ETCD_VERSION").read_text().strip()
    assert cp.parse_etcd_version("etcd Version: 3.6.5\nGit SHA: GitNotFound\nGo Version: go1.26.8\n") == (3, 6, 5)
    assert cp.parse_etcd_version("etcd Version: 3.4.23\n") == (3, 4, 23)
    assert cp.parse_etcd_version("usage: etcd [flags]") is None


def test_the_built_etcd_comes_first(env: Path, monkeypatch: pytest.MonkeyPatch):
    built = fake_etcd(env / "cache" / "etcd" / cp.etcd_version(), "3.6.5")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(fake_etcd(env / "assets", "3.5.21").parent))
    fake_etcd(env / "path", "3.6.16")
    assert cp.find_binary("etcd") == str(built)


def test_then_kubebuilder_assets_then_path(env: Path, monkeypatch: pytest.MonkeyPatch):
    on_path = fake_etcd(env / "path", "3.5.0")
    assert cp.find_binary("etcd") == str(on_path)
    assets = fake_etcd(env / "assets", "3.5.21")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets.parent))
    assert cp.find_binary("etcd") == str(assets)


def test_an_etcd_older_than_3_5_is_refused_by_name(env: Path, monkeypatch: pytest.MonkeyPatch):
    debian = fake_etcd(env / "path", "3.4.23")  # Debian bookworm's etcd-server
    with pytest.raises(cp.ControlPlaneError) as err:
        cp.find_binary("etcd")
    message = str(err.value)
    assert f"{debian} is etcd 3.4.23" in message
    assert "make binaries" in message and ">= 3.5" in message
    assets = fake_etcd(env / "assets", "3.4.18")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets.parent))
    with pytest.raises(cp.ControlPlaneError, match=f"{assets} is etcd 3.4.18"):
        cp.find_binary("etcd")


def test_no_etcd_at_all_says_how_to_build_it(env: Path):
    with pytest.raises(cp.ControlPlaneError, match=rf"etcd/{re.escape(cp.etcd_version())}/etcd not built.*`make binaries`"):
        cp.find_binary("etcd")


def test_leaks_counts_only_what_this_runs_tmpdir_holds(tmp_path: Path):
    """`make test` gives the run its own TMPDIR: another checkout's control plane (a dir and an etcd under plain /tmp)
    and a process that merely mentions the prefix elsewhere are not this run's leaks."""
    run_tmp, proc = tmp_path / "dra-kwok-test.abc123", tmp_path / "proc"
    (run_tmp / "dra-kwok-cp-mine").mkdir(parents=True)
    (run_tmp / "pytest-of-root").mkdir()
    (tmp_path / "dra-kwok-cp-theirs").mkdir()
    cmdlines = {
        "41": ["etcd", f"--data-dir={run_tmp}/dra-kwok-cp-mine/etcd"],
        "7": ["kube-apiserver", f"--client-ca-file={run_tmp}/dra-kwok-cp-mine/certs/ca.crt"],
        "300": ["etcd", f"--data-dir={tmp_path}/dra-kwok-cp-theirs/etcd"],
        "301": ["grep", "dra-kwok-cp-"],
        "self": ["not", "a", "pid"],
    }
    for pid, argv in cmdlines.items():
        (proc / pid).mkdir(parents=True)
        (proc / pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / "999").mkdir()  # a process that exited while we looked: no cmdline

    def pid(n: str) -> str:  # as leaks() reports a process: its pid and command line (first 120 characters)
        return f"pid {n}: {''.join(a + ' ' for a in cmdlines[n])[:120]}"

    assert cp.leaks(run_tmp, proc) == [f"{run_tmp}/dra-kwok-cp-mine", pid("7"), pid("41")]
    assert cp.leaks(tmp_path / "empty-run", proc) == []
    assert cp.leaks(tmp_path, proc) == [f"{tmp_path}/dra-kwok-cp-theirs", pid("300")]


def test_leaks_cli_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cp.main(["leaks"]) == 0
    (tmp_path / "dra-kwok-cp-left").mkdir()
    assert cp.main(["leaks"]) == 1
    assert f"left behind: {tmp_path}/dra-kwok-cp-left" in capsys.readouterr().err
