"""README cannot rot: every shell command it gives is either run here, or named below with the test (or CI step)
that runs it, or with the reason it cannot run on this machine. A new command in README fails this test until it
is classified."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

# command prefix -> where it is exercised (or why it cannot be, here)
EXERCISED = {
    "make demo-down": "tests/e2e/test_demo.py",
    "make demo": "tests/e2e/test_demo.py",
    "make test": ".ci/run (exactly this command)",
    "make cluster-up": "tests/integration/test_readme_cluster.py",
    "make cluster-down": "tests/integration/test_readme_cluster.py",
    "export KUBECONFIG=": "tests/integration/test_readme_cluster.py",
    "dra-kwok run --config-file": "tests/integration/test_readme_cluster.py",
    "dra-kwok validate": "this file (readme-test: run blocks)",
    "dra-kwok render": "this file (readme-test: run blocks)",
    "kubectl apply -k deploy/": "tests/integration/test_deploy.py (for real, and --dry-run=server)",
    "make deploy IMG=": "tests/integration/test_deploy.py::test_make_deploy_sets_the_image",
    "make undeploy": "tests/integration/test_deploy.py::test_make_undeploy_removes_all_but_the_namespace",
    "make image": "not here: no Docker engine on this machine (the Dockerfile is linted by hadolint instead)",
    "docker push": "not here: no Docker engine and no registry",
    "kind create cluster": "not here: kind needs Docker",
    "export KWOK_REPO=": "not here: Karpenter's own repository",
    "make install-kwok": "not here: Karpenter's own repository",
    "make apply-with-kind": "not here: Karpenter's own repository",
    "kind load docker-image": "not here: kind needs Docker",
    "kubectl -n karpenter rollout status": "not here: needs a kubelet to run the pod",
    "kubectl apply -f examples/karpenter/": "tests/e2e/test_karpenter.py applies nodepool.yaml and gpu-capacity.yaml "
    "with the real Karpenter KWOK provider (h100-nodepool.yaml: run by hand, README)",
    "kubectl get nodeclaims": "tests/e2e/test_karpenter.py reads the NodeClaims Karpenter creates",
    "kubectl get resourceslices": "tests/e2e/test_karpenter.py (tests/e2e/support.py lists our slices the same way)",
    "python3 -m pytest tests/e2e/test_karpenter.py": "the test itself (make test runs it)",
    "kubectl apply -f ~/.cache/dra-kwok/karpenter/": "tests/e2e/test_karpenter.py (dra_kwok/testing/karpenter.py "
    "installs these CRDs)",
    "DISABLE_LEADER_ELECTION=true": "tests/e2e/test_karpenter.py (dra_kwok/testing/karpenter.py runs the binary so)",
    "kubectl apply -f examples/scheduling/": "tests/e2e/test_scheduling.py applies these very files",
    "kubectl apply -f examples/karpenter-kwok.yaml": "tests/unit/config/test_validation.py validates it; applying "
    "it needs Karpenter's KWOK provider",
    "sed 's|node.kubernetes.io/instance-type": "run by hand with the real Karpenter KWOK provider (README); "
    "tests/e2e/test_karpenter.py applies gpu-capacity.yaml unchanged",
    "kubectl scale deployment gpu-capacity": "run by hand with the real Karpenter KWOK provider (README)",
    "kubectl get pod one-gpu": "tests/e2e/test_scheduling.py::test_one_gpu_pod_runs_on_the_matching_kwok_node",
}


def shell_blocks() -> list[tuple[str, str]]:
    """(marker, body) of every ```sh block; marker is the readme-test comment right before it, or ''."""
    out = []
    for match in re.finditer(r"(?:<!-- readme-test: ([a-z-]+) -->\n)?```sh\n(.*?)```", README, re.S):
        out.append((match.group(1) or "", match.group(2)))
    return out


def commands(body: str) -> list[str]:
    lines = []
    for line in body.splitlines():
        line = line.split("  #")[0].strip()
        if line and not line.startswith("#"):
            lines.extend(part.strip() for part in line.split("&&"))
    return lines


def test_every_readme_command_is_exercised_or_explained():
    unclassified = [cmd for _, body in shell_blocks() for cmd in commands(body)
                    if not any(cmd.startswith(prefix) for prefix in EXERCISED)]
    assert shell_blocks(), "README has no shell blocks?"
    assert unclassified == [], "classify these README commands in tests/unit/test_readme.py"


def test_readme_run_blocks_succeed():
    ran = 0
    for marker, body in shell_blocks():
        if marker != "run":
            continue
        for cmd in commands(body):
            proc = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
            assert "Traceback" not in proc.stdout + proc.stderr
            ran += 1
    assert ran >= 3


def test_the_quoted_validate_message_is_what_validate_prints():
    quoted = re.search(r"```text\n(examples/original/gpu\.yaml: error: driver: .*?)\n```", README, re.S).group(1)
    proc = subprocess.run(shlex.split("python -m dra_kwok validate examples/original/gpu.yaml"), cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert quoted in proc.stderr


def test_flags_table_is_the_settings():
    """README's flag table is `dra_kwok.settings` row by row (flag, environment variable, default, help), and
    `dra-kwok run --help` offers exactly those flags."""
    from click.testing import CliRunner

    from dra_kwok.cli import main
    from dra_kwok.settings import flags

    expected = [f"| `{f.flag}` | `{f.envvar}` | {f.default_text} | {f.help} |" for f in flags()]
    table = [line for line in README.splitlines() if line.startswith("| `-")]
    assert table == expected
    help_text = CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output
    offered = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", help_text)) - {"--help", "-h", "--no-leader-elect", "--v"}
    assert offered == {f.flag for f in flags()}


def test_deployment_args_are_run_flags():
    from dra_kwok.settings import flags

    deployment = (ROOT / "deploy" / "deployment.yaml").read_text()
    args = re.findall(r"^\s+- (--[a-z-]+)", deployment, flags=re.M)
    assert args and set(args) <= {f.flag for f in flags()}
