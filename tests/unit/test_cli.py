"""The CLI's contract: exit codes, error locations, JSON output, render output, version and help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dra_kwok import __version__
from dra_kwok.cli import main

ROOT = Path(__file__).resolve().parents[2]
GPU = str(ROOT / "examples" / "gpu.yaml")


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def test_version_and_help():
    assert run("version").output.startswith(f"dra-kwok {__version__} ")
    out = run("--help").output
    for command in ("run", "validate", "render", "version"):
        assert command in out
    assert "DRA_KWOK_RESYNC_PERIOD" in run("run", "--help").output or "--resync-period" in run("run", "--help").output


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "dra_kwok", "version"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("dra-kwok ")


def test_validate_valid_files_exit_0():
    result = run("validate", *map(str, sorted((ROOT / "examples").glob("*.yaml"))))
    assert result.exit_code == 0, result.output
    assert result.output.count(": valid") == 5  # the four examples and karpenter-kwok.yaml (profiles)


@pytest.mark.parametrize("version", ["1.34", "1.35", "1.36", "1.37", "v1.37.2"])
def test_validate_for_each_kubernetes_version(version):
    result = run("validate", "--kubernetes-version", version, "--feature-gates", "DRADeviceTaints=true", GPU)
    assert result.exit_code == 0, result.output


def test_validate_judges_for_the_given_version(tmp_path):
    tainted = tmp_path / "tainted.yaml"
    tainted.write_text(Path(GPU).read_text().replace(
        "            - name: nvidia-t4-0\n",
        "            - name: nvidia-t4-0\n              taints: [{key: example.com/health, effect: NoSchedule}]\n", 1))
    assert "taints" in tainted.read_text()
    assert run("validate", str(tainted)).exit_code == 0
    old = run("validate", "--kubernetes-version", "1.35", str(tainted))  # dropped silently there: a warning
    assert old.exit_code == 0 and "warning: mappings[0].resourceSlice: the rendered ResourceSlices' " \
        "spec.devices[].taints: dropped by an apiserver without the alpha feature gate DRADeviceTaints (Kubernetes " \
        "1.35; on by default since Kubernetes 1.36)" in old.output, old.output
    assert "valid (1 warnings)" in old.output
    assert run("validate", "--kubernetes-version", "1.35", "--feature-gates", "DRADeviceTaints=true",
               str(tainted)).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["--kubernetes-version", "1.33"], "Kubernetes 1.33 is not supported; supported: 1.34, 1.35, 1.36, 1.37"),
    (["--kubernetes-version", "latest"], "'latest' is not a Kubernetes version like 1.37"),
    (["--feature-gates", "DRAListTypeAttributes"], "feature gates are Name=true or Name=false"),
    (["--kubernetes-version", "1.35", "--feature-gates", "DRAListTypeAttributes=true"],
     "unrecognized feature gate 'DRAListTypeAttributes' on Kubernetes 1.35"),
])
def test_validate_refuses_a_bad_version_or_gate_as_usage(args, message):
    result = run("validate", *args, GPU)
    assert result.exit_code == 2 and message in result.output, result.output


def _bad_config(tmp_path: Path, devices_line: str) -> Path:
    """An invalid driver name and mapping name, and the given devices line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "driver: karpenter.sh/dra-kwok-driver\n"
        "mappings:\n"
        "  - name: Bad_Name\n"
        "    nodeSelectorTerms: [{matchExpressions: [{key: type, operator: In, values: [gpu]}]}]\n"
        "    resourceSlice:\n"
        "      pool: {name: gpu}\n"
        f"      {devices_line}\n"
    )
    return bad


def test_validate_invalid_exits_1_with_every_error_and_its_path(tmp_path):
    bad = _bad_config(tmp_path, "devcies: []")
    result = run("validate", str(bad))
    assert result.exit_code == 1
    assert "mappings[0].resourceSlice.devcies" in result.output and "devices" in result.output


def test_validate_reports_all_errors_not_the_first(tmp_path):
    bad = _bad_config(tmp_path, "devices: [{name: GPU_0}]")
    result = run("validate", "--output", "json", str(bad))
    assert result.exit_code == 1
    [entry] = json.loads(result.output)
    paths = {e["path"] for e in entry["errors"]}
    assert {"driver", "mappings[0].name", "mappings[0].resourceSlice.devices[0].name"} <= paths
    assert any("dra-kwok-driver.karpenter.sh" in e["message"] for e in entry["errors"])  # a valid suggestion


def test_validate_unparseable_exits_2_with_line_and_column(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("driver: x\nmappings: [\n  - {\n")
    result = run("validate", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:" in result.output and "Traceback" not in result.output
    [entry] = json.loads(run("validate", "-o", "json", str(bad)).output)
    assert entry["errors"][0]["line"] >= 2 and entry["errors"][0]["column"] >= 1


def test_validate_missing_file_exits_2(tmp_path):
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2 and "cannot read file" in result.output


def test_render_with_labels_prints_apply_ready_slices():
    result = run("render", GPU, "--labels", "node.kubernetes.io/instance-type=c-4x-amd64-linux", "--node-name", "n1")
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.output) if d]
    assert docs and all(d["kind"] == "ResourceSlice" and d["apiVersion"] == "resource.k8s.io/v1" for d in docs)
    assert {d["spec"]["nodeName"] for d in docs} == {"n1"}
    assert all(d["spec"]["pool"]["name"].startswith("n1/") for d in docs)


def test_render_with_a_node_manifest(tmp_path):
    node = tmp_path / "node.yaml"
    node.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "kwok-a", "uid": "11111111-2222-3333-4444-555555555555",
        "labels": {"node.kubernetes.io/instance-type": "c-4x-amd64-linux"}}}))
    result = run("render", GPU, "--node", str(node))
    docs = [d for d in yaml.safe_load_all(result.output) if d]
    assert docs[0]["metadata"]["ownerReferences"][0]["uid"] == "11111111-2222-3333-4444-555555555555"


def test_render_of_a_non_matching_node_says_so():
    result = run("render", GPU, "--labels", "other=x")
    assert result.exit_code == 0 and "no mapping matches" in result.output


def test_render_of_an_invalid_config_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("driver: Not_Valid\nmappings: []\n")
    assert run("render", str(bad)).exit_code == 1


def test_run_flags_take_their_dra_kwok_environment_defaults(mocker):
    """Every `run` flag reads DRA_KWOK_<FLAG>; the App (which would need a cluster) is the seam."""
    manager = mocker.patch("dra_kwok.app.App")
    manager.return_value.run.return_value = 0
    mocker.patch("dra_kwok.runtime.log.setup")
    env = {"DRA_KWOK_NAMESPACE": "ns1", "DRA_KWOK_CONFIGMAP": "cm1", "DRA_KWOK_RESYNC_PERIOD": "7",
           "DRA_KWOK_LEADER_ELECT": "true", "DRA_KWOK_HEALTH_PORT": "0", "DRA_KWOK_METRICS_PORT": "9",
           "DRA_KWOK_WORKERS": "2", "DRA_KWOK_KWOK_ANNOTATION": "example.com/fake", "DRA_KWOK_V": "3"}
    result = CliRunner().invoke(main, ["run"], env=env)
    assert result.exit_code == 0, result.output
    opts = manager.call_args.args[0]
    assert (opts.namespace, opts.configmap, opts.resync_period, opts.leader_elect, opts.health_port,
            opts.metrics_port, opts.workers, opts.kwok_annotation) == ("ns1", "cm1", 7.0, True, 0, 9, 2,
                                                                       "example.com/fake")


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    return fifo


def _run_guarded(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess with a timeout: a regression (blocking in open()) fails instead of hanging."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dra_kwok", *args], capture_output=True, text=True, timeout=30,
                          env=env, stdin=subprocess.DEVNULL)


def test_validate_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = _fifo(tmp_path)
    proc = _run_guarded("validate", str(fifo))
    assert proc.returncode == 2, proc
    assert f"{fifo}: error: cannot read file: a FIFO (named pipe), not a regular file: give a regular file, or - " \
           "for stdin" in proc.stderr + proc.stdout


def test_render_refuses_a_fifo_as_config_and_as_node(tmp_path):
    fifo = _fifo(tmp_path)
    proc = _run_guarded("render", str(fifo))
    assert proc.returncode == 2 and f"error: {fifo}: a FIFO (named pipe), not a regular file" in proc.stderr, proc
    proc = _run_guarded("render", GPU, "--node", str(fifo))
    assert proc.returncode == 2 and f"{fifo}: a FIFO (named pipe), not a regular file" in proc.stderr, proc
    assert "or - for stdin" in proc.stderr


@pytest.mark.parametrize("kind,make", [("a directory", lambda tmp: str(tmp)), ("a character device", lambda _: "/dev/zero")])
def test_validate_and_render_refuse_directories_and_devices(tmp_path, kind, make):
    path = make(tmp_path)
    result = run("validate", path)
    assert result.exit_code == 2 and f"cannot read file: {kind}, not a regular file" in result.output, result.output
    result = run("render", path)
    assert result.exit_code == 2 and f"error: {path}: {kind}, not a regular file" in result.output, result.output


def test_a_symlink_to_a_regular_file_and_stdin_are_read(tmp_path):
    link = tmp_path / "link.yaml"
    link.symlink_to(GPU)
    assert run("validate", str(link)).exit_code == 0
    assert run("validate", "-", input=Path(GPU).read_text()).exit_code == 0


def test_render_lays_out_slices_for_the_kubernetes_version_it_is_given(tmp_path):
    """Counter sets get a slice of their own from 1.35 on, and share the devices' slice on 1.34 (with its gates)."""
    cfg = tmp_path / "counters.yaml"
    cfg.write_text(yaml.safe_dump({"driver": "gpu.example.com", "mappings": [{
        "name": "m", "nodeSelectorTerms": [{"matchExpressions": [{"key": "type", "operator": "In", "values": ["kwok"]}]}],
        "resourceSlice": {"pool": {"name": "gpu"}, "sharedCounters": [{"name": "c", "counters": {"mem": {"value": "8Gi"}}}],
                          "devices": [{"name": "half", "count": 2, "attributes": {"type": {"string": "gpu"}},
                                       "consumesCounters": [{"counterSet": "c", "counters": {"mem": {"value": "4Gi"}}}]}]},
    }]}))

    def slices(*args: str) -> list[dict]:
        result = run("render", str(cfg), "--labels", "type=kwok", *args)
        assert result.exit_code == 0, result.output
        return [d for d in yaml.safe_load_all(result.output) if d]

    assert [sorted(s["spec"]) for s in slices()] == [
        ["driver", "nodeName", "pool", "sharedCounters"], ["devices", "driver", "nodeName", "pool"]]
    gates = "DRAPartitionableDevices=true"
    assert [sorted(s["spec"]) for s in slices("--kubernetes-version", "1.34", "--feature-gates", gates)] == [
        ["devices", "driver", "nodeName", "pool", "sharedCounters"]]
    # without the gate, 1.34 drops the counters: rendered all the same (what the driver sends), with a warning
    dropped = run("render", str(cfg), "--labels", "type=kwok", "--kubernetes-version", "1.34")
    assert dropped.exit_code == 0 and "warning: mappings[0].resourceSlice: the rendered ResourceSlices' " \
        "spec.sharedCounters: dropped by an apiserver without the alpha feature gate DRAPartitionableDevices" \
        in dropped.stderr, dropped.stderr
    assert [sorted(s["spec"]) for s in yaml.safe_load_all(dropped.stdout) if s] == [
        ["devices", "driver", "nodeName", "pool", "sharedCounters"]]
