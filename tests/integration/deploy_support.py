"""What tests/integration/test_deploy.py needs to check the shipped deployment: the rendered kustomize base, a
small Dockerfile and .dockerignore reader, the apiserver audit log, and `dra-kwok run` started the way a pod starts
it (service-account token and CA at the fixed in-cluster paths, KUBERNETES_SERVICE_HOST/PORT, the Deployment's
args and env) as a subprocess in a private mount namespace.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from dra_kwok.testing.controlplane import REPO_ROOT, find_binary, free_port
from tests.support.helpers import wait_for

DEPLOY_DIR = REPO_ROOT / "deploy"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "dra-kwok"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
CONFIGMAP = "dra-kwok-configmap"
LEASE = "dra-kwok-leader"
MANAGED = "app.kubernetes.io/managed-by=dra-kwok"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# deploy/admission-policy.yaml: each policy has a binding of the same name; the second one's params ConfigMap
OWN_SLICES_POLICY = "dra-kwok-own-slices"
DRIVERS_POLICY = "dra-kwok-drivers"
ALLOWED_DRIVERS = "dra-kwok-allowed-drivers"
SLICES = "/apis/resource.k8s.io/v1/resourceslices"

# Records every request of the driver's ServiceAccount (and nothing else) with its verb, resource and decision.
AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["{SA_USER}"]
  - level: None
"""


# ---------------------------------------------------------------------------------------------------- kubectl
def kubectl(*args: str, kubeconfig: Path | str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """The kubectl built with the control plane (kustomize built in), never the one on PATH."""
    proc = subprocess.run([find_binary("kubectl"), f"--kubeconfig={kubeconfig}", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO_ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def render(path: Path = DEPLOY_DIR) -> list[dict]:
    """`kubectl kustomize <path>`: every object the base (or an overlay) installs."""
    out = subprocess.run([find_binary("kubectl"), "kustomize", str(path)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/, found {len(found)}"
    return found[0]


def rules_as_grants(rules: list[dict]) -> dict[tuple[str, str, str], set[str] | None]:
    """(apiGroup, resource, verb) -> resourceNames (None: any name) of a Role's or ClusterRole's rules."""
    grants: dict[tuple[str, str, str], set[str] | None] = {}
    for rule in rules:
        assert not rule.get("nonResourceURLs"), "dra-kwok needs no nonResourceURLs"
        names = set(rule["resourceNames"]) if rule.get("resourceNames") else None
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    assert "*" not in (group, resource, verb), f"wildcard in RBAC rule {rule}"
                    key = (group, resource, verb)
                    assert key not in grants, f"{key} granted twice"
                    grants[key] = names
    return grants


# ---------------------------------------------------------------------------------------------------- admission
def resource_slice(name: str, driver: str, labelled: bool = True, **spec) -> dict:
    """A small valid ResourceSlice (cluster-wide unless `spec` says otherwise), with dra-kwok's label or not."""
    body = {"driver": driver, "pool": {"name": name, "resourceSliceCount": 1}, "devices": [{"name": "dev-0"}],
            **(spec or {"allNodes": True})}
    labels = {"app.kubernetes.io/managed-by": "dra-kwok"} if labelled else {}
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": name, "labels": labels}, "spec": body}


def impersonate_service_account(api):
    """`api` (an admin's ApiClient) sends every request as dra-kwok's ServiceAccount from now on: its RBAC, and
    request.userInfo.username for the admission policy."""
    api.set_default_header("Impersonate-User", SA_USER)
    return api


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """(HTTP status, Status message) of a request expected to fail; (2xx, "") if it did not."""
    from kubernetes.client.exceptions import ApiException

    try:
        call()
    except ApiException as err:
        try:
            return err.status, json.loads(err.body).get("message", "")
        except (TypeError, ValueError):
            return err.status, err.body or ""
    return 200, ""


def wait_for_admission_policy(sa_rest, driver: str = "gpu.dra-kwok.x-k8s.io", timeout: float = 30) -> None:
    """A new ValidatingAdmissionPolicy, binding or params object is enforced a moment after it is created. Poll
    (server-side dry runs as the ServiceAccount, nothing is stored) until both policies refuse (an unlabelled
    slice; a labelled one of a driver no one lists) and, with the params loaded, a labelled slice of `driver` is
    admitted."""
    probe = f"admission-probe-{uuid.uuid4().hex[:6]}"

    def refused_by(policy: str, body: dict) -> bool:
        status, message = refusal(lambda: sa_rest.post(SLICES, body, query={"dryRun": "All"}))
        return status == 403 and f"ValidatingAdmissionPolicy '{policy}'" in message

    def enforced() -> bool:
        return (refused_by(OWN_SLICES_POLICY, resource_slice(probe, driver, labelled=False))
                and refused_by(DRIVERS_POLICY, resource_slice(probe, "unlisted.invalid"))
                and refusal(lambda: sa_rest.post(SLICES, resource_slice(probe, driver), query={"dryRun": "All"}))[0]
                == 200)

    wait_for(enforced, timeout=timeout, interval=0.2, message="the admission policies enforced")


# ---------------------------------------------------------------------------------------------------- Dockerfile
@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.instructions if ins == instruction]

    def last(self, instruction: str) -> str | None:
        found = self.all(instruction)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in re.findall(r'(\w+)=("[^"]*"|\S+)', args):
                out[pair[0]] = pair[1].strip('"')
        return out


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and the stages (FROM with ARG substitution), instructions with line continuations joined."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif instruction == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        else:
            assert stages, f"{instruction} before FROM"
            stages[-1].instructions.append((instruction, rest))
    return args, stages


def exec_form(args: str | None) -> list[str] | None:
    """ENTRYPOINT/CMD must be in exec (JSON) form, else the shell would be PID 1 and swallow SIGTERM."""
    if args is None:
        return None
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return value


def _dockerignore_regex(pattern: str) -> re.Pattern:
    """One .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a context-relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parent directories decides."""
    ignored = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _dockerignore_regex(os.path.normpath(pattern.lstrip("!").strip("/")))
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]


def build_context(dest: Path) -> list[str]:
    """Copy into `dest` exactly what the build stage's COPY lines take from the context (minus .dockerignore'd
    files), i.e. the code the image runs. Returns the copied files, context-relative."""
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    patterns = dockerignore_patterns()
    copied: list[str] = []
    for stage in stages:
        for args in stage.all("COPY"):
            if args.startswith("--from"):
                continue
            *sources, target = args.split()
            for src in sources:
                base = (REPO_ROOT / src)
                files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
                for f in files:
                    rel = f.relative_to(REPO_ROOT).as_posix()
                    if dockerignored(rel, patterns):
                        continue
                    out = dest / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, out)
                    copied.append(rel)
    return copied


def console_scripts() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    lines = cfg.get("options.entry_points", "console_scripts", fallback="").strip().splitlines()
    return {name.strip(): target.strip() for name, _, target in (line.partition("=") for line in lines) if name.strip()}


def entrypoint_argv(script: str) -> list[str]:
    """What the console script `script` runs (`module:function`), as a python command line: the image's entry
    point without an installed package."""
    module, _, function = console_scripts()[script].partition(":")
    return [sys.executable, "-c",
            f"import sys; sys.argv[0] = {script!r}; from {module} import {function} as main; sys.exit(main())"]


# ---------------------------------------------------------------------------------------------------- audit log
@dataclass(frozen=True)
class AuditRecord:
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    decision: str
    code: int
    user_agent: str


def read_audit(path: Path, user: str = SA_USER) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") != user:
            continue
        ref = event.get("objectRef")
        if ref is None:  # a non-resource URL (/version, /api): authorized by the default discovery roles
            continue
        records.append(AuditRecord(
            verb=event["verb"], group=ref.get("apiGroup", ""), resource=ref.get("resource", ""),
            subresource=ref.get("subresource", ""), namespace=ref.get("namespace", ""), name=ref.get("name", ""),
            decision=(event.get("annotations") or {}).get("authorization.k8s.io/decision", ""),
            code=(event.get("responseStatus") or {}).get("code", 0), user_agent=event.get("userAgent", ""),
        ))
    return records


# ------------------------------------------------------------------------------------------ the driver in a "pod"
# A private mount namespace: a tmpfs over /var/run (so the host's filesystem is never touched, and two runs never
# race), the pod's service-account directory bind-mounted read-only at the fixed path, then exec the driver.
_POD_MOUNTS = (
    'set -e; run=$(readlink -f /var/run); '
    'mount -t tmpfs -o mode=0755,size=1m dra-kwok-test-run "$run"; '
    f'mkdir -p {SA_DIR}; mount --bind "$1" {SA_DIR}; mount -o remount,bind,ro {SA_DIR}; '
    'shift; exec "$@"'
)


def unshare_works() -> str | None:
    """None if we can make a private mount namespace with our own /var/run, else why not."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'mount -t tmpfs -o size=1m probe "$(readlink -f /var/run)"'], capture_output=True, text=True)
    return None if proc.returncode == 0 else f"unshare --mount failed: {proc.stderr.strip()}"


class PodProcess:
    """`dra-kwok run` with the Deployment's args and env, configured only by what a pod of it would have."""

    def __init__(self, workdir: Path, code_root: Path, deployment: dict, token: str, ca_file: Path, port: int,
                 pod_name: str, extra_args: list[str]) -> None:
        self.workdir = workdir
        self.secrets = workdir / "serviceaccount"
        self.secrets.mkdir(parents=True)
        (self.secrets / "token").write_text(token)
        shutil.copy(ca_file, self.secrets / "ca.crt")
        (self.secrets / "namespace").write_text(deployment["metadata"]["namespace"])
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        self.pod_name = pod_name
        self.health_port, self.metrics_port = free_port(), free_port()
        overridden = ("--health-port", "--metrics-port", "--bind-address")
        args = [a for a in container.get("args", []) if not a.startswith(overridden)]
        args += [f"--health-port={self.health_port}", f"--metrics-port={self.metrics_port}", "--bind-address=127.0.0.1",
                 *extra_args]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "LANG": "C.UTF-8",
               "NO_PROXY": "127.0.0.1,localhost",
               "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port),
               "KUBERNETES_SERVICE_PORT_HTTPS": str(port)}
        fields = {"metadata.name": pod_name, "metadata.namespace": deployment["metadata"]["namespace"]}
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            else:
                env[var["name"]] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
        self.env = env
        # The ENTRYPOINT is the console script dra-kwok; run its target from a copy of the image's code only.
        self.argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _POD_MOUNTS, "sh",
                     str(self.secrets), *entrypoint_argv("dra-kwok"), *args]
        self.cwd = code_root
        self.log_path = workdir / "dra-kwok.log"
        self.proc: subprocess.Popen | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def start(self) -> "PodProcess":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self

    def log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait(self, condition: Callable[[], object], timeout: float, message: str) -> object:
        """tests.support.helpers.wait_for, failing early if the driver died, and with the driver's log in the failure."""
        def check() -> object:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"dra-kwok exited with {self.proc.returncode} while waiting for {message}:\n"
                                     f"{self.log()}")
            return condition()

        try:
            return wait_for(check, timeout=timeout, interval=0.1, message=message)
        except AssertionError as err:
            if "dra-kwok exited" in str(err):
                raise
            raise AssertionError(f"{err}\n--- dra-kwok log ---\n{self.log()}") from None

    def terminate(self, timeout: float = 5.0) -> tuple[int | None, float]:
        """SIGTERM (what the kubelet sends); returns (exit code or None if it did not exit, seconds)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        return code, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

