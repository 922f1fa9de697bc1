"""README's "Run it" block, as a person types it: make cluster-up, export KUBECONFIG, dra-kwok run with a config
file, a KWOK node gets its slices, Ctrl-C stops the driver cleanly, make cluster-down leaves nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

from kubernetes import client, config

from dra_kwok.testing.kwok import create_node, kwok_node
from tests.support.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_readme_run_it_block(tmp_path):
    env = {**os.environ, "DRA_KWOK_CLUSTER_DIR": str(tmp_path / "cluster")}
    up = subprocess.run(["make", "cluster-up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    driver = None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        kubeconfig = re.search(r"^export KUBECONFIG=(\S+)$", up.stdout, re.M).group(1)
        assert kubeconfig == str(tmp_path / "cluster" / "current" / "kubeconfig")
        driver = subprocess.Popen(
            ["dra-kwok", "run", "--config-file", "examples/gpu.yaml", "--health-port", "0", "--metrics-port", "0"],
            cwd=ROOT, env={**env, "KUBECONFIG": kubeconfig}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        api = config.new_client_from_config(config_file=kubeconfig)
        create_node(api, kwok_node("readme-node", instance_type="c-4x-amd64-linux"))

        def slices():
            data = client.ResourceV1Api(api).list_resource_slice(_preload_content=False).data
            return json.loads(data)["items"]

        items = wait_for(slices, timeout=20, message="the node's slices")
        assert items[0]["spec"]["nodeName"] == "readme-node"
        driver.send_signal(signal.SIGINT)  # Ctrl-C
        assert driver.wait(10) == 0
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        down = subprocess.run(["make", "cluster-down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0 and "control plane stopped" in down.stderr
    assert not list((tmp_path / "cluster").glob("dra-kwok-cp-*"))
