"""`make demo` and `make demo-down`, exactly as README tells a newcomer to run them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_schedules_a_dra_pod_and_demo_down_stops_everything(tmp_path):
    env = {**os.environ, "DRA_KWOK_CLUSTER_DIR": str(tmp_path / "cluster")}
    try:
        up = subprocess.run(["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        out = up.stdout
        assert "[6/6]" in out and "pod/gpu-pod scheduled on kwok-gpu-" in out
        assert "all Ready (KWOK's node-initialize stage" in out  # the real KWOK made the nodes Ready
        assert "; Running (KWOK's pod-ready stage)" in out  # and the pod Running
        assert "kwok-gpu-0/gpus" in out and "kwok-fpga-0/fpgas" in out
        assert "export KUBECONFIG=" in out + up.stderr
    finally:
        down = subprocess.run(["make", "demo-down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "control plane stopped" in down.stderr
    assert not list((tmp_path / "cluster").glob("dra-kwok-cp-*"))
