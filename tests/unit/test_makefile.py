"""The Makefile never lets a variable's value reach a shell as code (issue #19): IMG, KUBECTL, CONTAINER_TOOL,
PYTHON, DEPLOY_ARGS, PYTEST_ARGS ... go through the environment. Run against a copy of the Makefile and deploy/ in a
temp dir, with a recording stub for kubectl / docker / python, so a value that did execute would leave PWNED there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

HOSTILE_IMG = [
    "x'; touch PWNED; echo '",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a;touch PWNED",
    '"; touch PWNED; "',
    "$(shell touch PWNED)",  # make syntax: make takes a value from the command line literally too
    "x$$(touch PWNED)",
    "x\ntouch PWNED",
    "reg/img:v1 && touch PWNED",
]

STUB = f"""#!{sys.executable}
import json, os, sys
record = {{"argv": sys.argv[1:], "cwd": os.getcwd()}}
if "-k" in sys.argv[1:]:
    overlay = os.path.join(os.getcwd(), sys.argv[sys.argv.index("-k") + 1], "kustomization.yaml")
    if os.path.exists(overlay):
        record["kustomization"] = open(overlay).read()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
"""


class Make:
    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.repo = tmp_path / "repo"
        (self.repo / "hack" / "controlplane").mkdir(parents=True)
        shutil.copy(ROOT / "Makefile", self.repo)
        shutil.copy(ROOT / "hack" / "controlplane" / "K8S_VERSION", self.repo / "hack" / "controlplane")
        shutil.copytree(ROOT / "deploy", self.repo / "deploy")
        self.stub = tmp_path / "stub"
        self.stub.write_text(STUB)
        self.stub.chmod(0o755)
        self.log = tmp_path / "calls.jsonl"

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "STUB_LOG": str(self.log), **(env or {})}
        full_env.pop("MAKEFLAGS", None)
        return subprocess.run(["make", "--no-print-directory", *args], cwd=self.repo, env=full_env,
                              capture_output=True, text=True, timeout=60)

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def pwned(self) -> list[Path]:
        return [*self.tmp.rglob("PWNED"), *Path.cwd().glob("PWNED"), *ROOT.glob("PWNED")]


@pytest.fixture
def make(tmp_path: Path) -> Make:
    return Make(tmp_path)


@pytest.mark.parametrize("via", ["command line", "environment"])
@pytest.mark.parametrize("target", ["deploy", "image"])
@pytest.mark.parametrize("img", HOSTILE_IMG)
def test_a_hostile_image_name_is_refused_and_runs_nothing(make: Make, img: str, target: str, via: str):
    tools = [f"KUBECTL={make.stub}", f"CONTAINER_TOOL={make.stub}"]
    if via == "command line":
        proc = make(target, f"IMG={img}", *tools)
    else:
        proc = make(target, *tools, env={"IMG": img})
    assert make.pwned() == []
    assert proc.returncode != 0, proc.stdout
    assert "IMG must be an image reference" in proc.stderr
    assert make.calls() == []
    assert not list(make.repo.glob(".deploy-overlay.*"))


def kustomization(make: Make) -> dict:
    (call,) = make.calls()
    return yaml.safe_load(call["kustomization"])


def test_deploy_sets_name_and_tag(make: Make):
    proc = make("deploy", "IMG=registry:5000/team/dra-kwok:v1.2", f"KUBECTL={make.stub}")
    assert proc.returncode == 0, proc.stderr
    (call,) = make.calls()
    assert call["argv"][:2] == ["apply", "-k"] and call["argv"][2].startswith(".deploy-overlay.")
    assert yaml.safe_load(call["kustomization"]) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["../deploy"],
        "images": [{"name": "dra-kwok", "newName": "registry:5000/team/dra-kwok", "newTag": "v1.2"}],
    }
    assert not list(make.repo.glob(".deploy-overlay.*")), "the temporary overlay is removed"


@pytest.mark.parametrize("img, expected", [
    ("dra-kwok", {"newName": "dra-kwok", "newTag": "latest"}),
    ("registry:5000/dra-kwok", {"newName": "registry:5000/dra-kwok", "newTag": "latest"}),
    ("r.io/a/b:1.0@sha256:" + "0" * 64, {"newName": "r.io/a/b", "digest": "sha256:" + "0" * 64}),
])
def test_deploy_without_tag_or_with_digest(make: Make, img: str, expected: dict):
    assert make("deploy", f"IMG={img}", f"KUBECTL={make.stub}").returncode == 0
    assert kustomization(make)["images"] == [{"name": "dra-kwok", **expected}]


def test_word_lists_are_split_on_whitespace_and_never_evaluated(make: Make):
    hostile = "--dry-run=server ;touch PWNED $(touch PWNED) `touch PWNED` '*' \"a b\""
    kubectl = f"{make.stub} --kubeconfig=/k/config"
    proc = make("deploy", "IMG=dra-kwok:v1", f"KUBECTL={kubectl}", f"DEPLOY_ARGS={hostile}")
    assert proc.returncode == 0, proc.stderr
    (call,) = make.calls()
    assert call["argv"][:3] == ["--kubeconfig=/k/config", "apply", "-k"]
    assert call["argv"][4:] == ["--dry-run=server", ";touch", "PWNED", "$(touch", "PWNED)", "`touch", "PWNED`",
                                "'*'", '"a', 'b"']
    proc = make("test-unit", f"PYTHON={make.stub}", f"PYTEST_ARGS={hostile}")
    assert proc.returncode == 0, proc.stderr
    assert make.calls()[-1]["argv"][:3] == ["-m", "pytest", "tests/unit"]
    assert make.calls()[-1]["argv"][3:] == call["argv"][4:]
    assert make.pwned() == []


def test_a_hostile_command_variable_runs_nothing(make: Make):
    for args in (["undeploy", f"KUBECTL={make.stub};touch PWNED"], ["image", "CONTAINER_TOOL=$(touch PWNED)"],
                 ["cluster-down", "PYTHON=python3;touch PWNED"]):
        proc = make(*args)
        assert proc.returncode != 0
    assert make.calls() == []
    assert make.pwned() == []


def test_image_passes_the_name_as_one_argument(make: Make):
    proc = make("image", "IMG=registry:5000/team/dra-kwok:v1.2", f"CONTAINER_TOOL={make.stub}")
    assert proc.returncode == 0, proc.stderr
    assert make.calls()[0]["argv"] == ["build", "-t", "registry:5000/team/dra-kwok:v1.2", "."]
