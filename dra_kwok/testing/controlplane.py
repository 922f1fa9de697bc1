"""A real, local Kubernetes control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager) and the
real KWOK controller.

Why: everything dra-kwok does is talk to a kube-apiserver, and what its users care about is whether the real
kube-scheduler accepts the result. No registry here ships Kubernetes binaries, so `hack/controlplane/build.sh`
builds them from the `k8s.io/kubernetes` Go module into `~/.cache/dra-kwok/k8s/<version>/` (and `hack/etcd/build.sh`
etcd from the etcd server module into `~/.cache/dra-kwok/etcd/<version>/`, `hack/kwok/build.sh` the KWOK controller
from the sigs.k8s.io/kwok module into `~/.cache/dra-kwok/kwok/<version>/`); this module finds them
(or the envtest-style `KUBEBUILDER_ASSETS` directory), starts them on free loopback ports with temporary data dirs,
a static admin token and RBAC, waits until they are healthy, writes a kubeconfig, and stops exactly its own
processes (by PID) and removes its own temp dir, even when a test fails.

KWOK runs as in a user's cluster (issue #17): it manages the nodes annotated `kwok.x-k8s.io/node=fake` with KWOK's
default stages (the `stage-fast` set its release ships: node-initialize, node-heartbeat-with-lease, pod-ready,
pod-complete, pod-delete), so nodes become Ready and keep heartbeating, and pods bound to them become Running; and
kube-controller-manager runs every controller, node-lifecycle included, which lifts the not-ready taint once KWOK
reports a node Ready. Nothing in the harness writes a node's status by hand.

Used by the pytest fixtures (tests/conftest.py), by `make cluster-up` / `make cluster-down`
(`python -m dra_kwok.testing.controlplane up|down`) and by the demo and benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

TMP_PREFIX = "dra-kwok-cp-"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VERSION_FILE = REPO_ROOT / "hack" / "controlplane" / "K8S_VERSION"
VERSIONS_DIR = REPO_ROOT / "hack" / "controlplane" / "versions"
KWOK_GO_MOD = REPO_ROOT / "hack" / "kwok" / "go.mod"
#: The annotation KWOK manages nodes by (its documented `--manage-nodes-with-annotation-selector`), which Karpenter's
#: KWOK provider also sets.
KWOK_NODE_SELECTOR = "kwok.x-k8s.io/node=fake"
MIN_ETCD = (3, 5)  # Kubernetes 1.34-1.37 support etcd 3.5 and later (tested with 3.6.5 for 1.34, 3.7.0 for 1.37)
ADMIN_TOKEN = "dra-kwok-admin-token"


class ControlPlaneError(RuntimeError):
    """A component could not be found, started, or did not become healthy."""


def k8s_version() -> str:
    version = os.environ.get("K8S_VERSION")
    if not version and DEFAULT_VERSION_FILE.exists():
        version = DEFAULT_VERSION_FILE.read_text().strip()
    return (version or "1.34.4").lstrip("v")


def cache_dir() -> Path:
    root = os.environ.get("DRA_KWOK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dra-kwok"
    )
    return Path(root)


def etcd_version() -> str:
    """The etcd `hack/etcd/build.sh` builds for this Kubernetes version: the one it is tested with, recorded in
    hack/controlplane/versions/<k8s>/ETCD_VERSION (for a version pinned nowhere: the default version's)."""
    for version in (k8s_version(), DEFAULT_VERSION_FILE.read_text().strip()):
        pinned = VERSIONS_DIR / version / "ETCD_VERSION"
        if pinned.is_file():
            return pinned.read_text().strip()
    return "3.6.5"


def _pinned_version(go_mod: Path, module: str, default: str) -> str:
    """The version of `module` that a hack/*/go.mod requires (what its build.sh builds)."""
    try:
        match = re.search(rf"^require {re.escape(module)} v(\S+)$", go_mod.read_text(), re.M)
    except OSError:
        match = None
    return match[1] if match else default


def kwok_version() -> str:
    """The KWOK `hack/kwok/build.sh` builds: the version of sigs.k8s.io/kwok pinned in hack/kwok/go.mod."""
    return _pinned_version(KWOK_GO_MOD, "sigs.k8s.io/kwok", "0.8.0")


def kwok_dir() -> Path:
    """Where `hack/kwok/build.sh` puts `kwok` and `stages.yaml` (KWOK's default stages, taken from the same module)."""
    return cache_dir() / "kwok" / kwok_version()


def parse_etcd_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) from `etcd --version` output (`etcd Version: 3.6.5`), None if there is none."""
    match = re.search(r"etcd Version:\s*(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _etcd_binary_version(path: Path) -> tuple[int, int, int] | None:
    try:
        proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_etcd_version(proc.stdout + proc.stderr)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _find_etcd() -> str:
    """The etcd `make binaries` built; else KUBEBUILDER_ASSETS/etcd, else the one on PATH, if either is >= 3.5."""
    built = cache_dir() / "etcd" / etcd_version() / "etcd"
    if _executable(built):
        return str(built)
    others = []
    if os.environ.get("KUBEBUILDER_ASSETS"):
        others.append(Path(os.environ["KUBEBUILDER_ASSETS"]) / "etcd")
    if shutil.which("etcd"):
        others.append(Path(shutil.which("etcd")))  # type: ignore[arg-type]
    rejected = []
    for candidate in filter(_executable, others):
        version = _etcd_binary_version(candidate)
        if version is not None and version[:2] >= MIN_ETCD:
            return str(candidate)
        rejected.append(f"{candidate} is etcd {'.'.join(map(str, version)) if version else 'of unknown version'}")
    raise ControlPlaneError(
        f"no etcd >= {'.'.join(map(str, MIN_ETCD))} (Kubernetes {k8s_version()} needs 3.5 or 3.6): {built} not built"
        + "".join(f"; {r}" for r in rejected)
        + f". Run `make binaries` (builds etcd {etcd_version()} from source) or set KUBEBUILDER_ASSETS to a directory"
        " holding etcd >= 3.5"
    )


def find_binary(name: str) -> str:
    """etcd: see `_find_etcd`. The Kubernetes binaries: `KUBEBUILDER_ASSETS` if set (the envtest convention), else
    our build cache."""
    if name == "etcd":
        return _find_etcd()
    if name in ("kwok", "stages.yaml"):
        candidate = kwok_dir() / name
        if candidate.is_file() and (name != "kwok" or _executable(candidate)):
            return str(candidate)
        raise ControlPlaneError(
            f"{name} not found in {candidate}: run `make binaries` (builds KWOK {kwok_version()} from its Go module)")
    if os.environ.get("KUBEBUILDER_ASSETS"):
        candidate = Path(os.environ["KUBEBUILDER_ASSETS"]) / name
    else:
        candidate = cache_dir() / "k8s" / k8s_version() / name
    if _executable(candidate):
        return str(candidate)
    raise ControlPlaneError(
        f"{name} not found in {candidate}: run `make binaries` "
        f"(builds Kubernetes {k8s_version()} from source) or set KUBEBUILDER_ASSETS to a directory holding it"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _get(url: str, token: str | None = None, timeout: float = 2.0) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_insecure_context()) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


@dataclass
class Component:
    name: str
    argv: list[str]
    log_path: Path
    health_url: str
    proc: subprocess.Popen | None = None
    pid: int | None = None
    env: dict[str, str] | None = None  # None: the caller's environment

    def start(self, detach: bool = False) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach,
            env=self.env,
        )
        self.pid = self.proc.pid
        log.close()

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is None or not self.alive():
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.05)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.alive():
                time.sleep(0.05)
        if self.proc is not None:
            self.proc.wait(timeout=5)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child we did not reap still answers kill(0)
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class ControlPlane:
    """etcd + kube-apiserver, and on demand kube-scheduler, kube-controller-manager and KWOK, on loopback."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix=TMP_PREFIX)))
    detach: bool = False
    components: dict[str, Component] = field(default_factory=dict)
    apiserver_port: int = 0
    token: str = ADMIN_TOKEN
    extra_apiserver_args: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- paths
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.root / "certs" / "apiserver.crt"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    # ---------------------------------------------------------------- lifecycle
    def start(self, scheduler: bool = False, controller_manager: bool = False, kwok: bool = False) -> "ControlPlane":
        try:
            self._start_etcd()
            self._start_apiserver()
            if scheduler:
                self.start_scheduler()
            if controller_manager:
                self.start_controller_manager()
            if kwok:
                self.start_kwok()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, comp: Component, timeout: float, token: str | None = None) -> None:
        self.components[comp.name] = comp
        comp.start(detach=self.detach)
        self._save_state()
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not comp.alive():
                raise ControlPlaneError(f"{comp.name} exited early:\n{comp.log_tail()}")
            try:
                status, body = _get(comp.health_url, token)
                if status == 200:
                    return
                last = f"{status} {body[:300]}"
            except (OSError, ssl.SSLError) as err:
                last = str(err)
            time.sleep(0.1)
        raise ControlPlaneError(f"{comp.name} not healthy after {timeout}s ({last}):\n{comp.log_tail()}")

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        comp = Component(
            "etcd",
            [
                find_binary("etcd"),
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=8589934592",
            ],
            self.root / "etcd.log",
            f"{self.etcd_url}/health",
        )
        self._launch(comp, timeout=30)

    def _start_apiserver(self) -> None:
        (self.root / "certs").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "genrsa", "-out", str(self.sa_key), "2048"], check=True, capture_output=True
        )
        (self.root / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        self.apiserver_port = free_port()
        comp = Component(
            "kube-apiserver",
            [
                find_binary("kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--etcd-prefix=/registry",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.root / 'certs'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.sa_key}",
                f"--service-account-signing-key-file={self.sa_key}",
                f"--token-auth-file={self.root / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--max-requests-inflight=0",
                "--max-mutating-requests-inflight=0",
                "--enable-priority-and-fairness=false",
            ]
            + self.extra_apiserver_args,
            self.root / "kube-apiserver.log",
            "",
        )
        comp.health_url = f"{self.url}/readyz"
        self._launch(comp, timeout=90, token=self.token)
        self._write_kubeconfig()

    def stop_apiserver(self, kill: bool = False) -> None:
        """Stop kube-apiserver (SIGTERM, or SIGKILL with kill=True); etcd keeps the state (for fault tests)."""
        comp = self.components["kube-apiserver"]
        if kill and comp.alive():
            os.kill(comp.pid, signal.SIGKILL)  # type: ignore[arg-type]
        comp.stop()

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port, flags and etcd after `stop_apiserver`."""
        comp = self.components["kube-apiserver"]
        self._launch(Component(comp.name, comp.argv, comp.log_path, comp.health_url), timeout=90, token=self.token)

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision (through etcd's JSON gateway); returns the revision.
        A watch resuming from an older resourceVersion then gets 410 Gone."""
        def call(path: str, body: dict) -> dict:
            req = urllib.request.Request(f"{self.etcd_url}{path}", json.dumps(body).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())

        revision = int(call("/v3/kv/range", {"key": "AA=="})["header"]["revision"])
        call("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def signal_apiserver(self, sig: int) -> None:
        """Send a signal (SIGSTOP / SIGCONT to simulate a dead connection) to kube-apiserver."""
        os.kill(self.components["kube-apiserver"].pid, sig)  # type: ignore[arg-type]

    def _write_kubeconfig(self) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "dra-kwok", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "dra-kwok", "context": {"cluster": "dra-kwok", "user": "admin"}}],
            "current-context": "dra-kwok",
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2))

    def start_scheduler(self) -> None:
        if "kube-scheduler" in self.components:
            return
        port = free_port()
        self._launch(
            Component(
                "kube-scheduler",
                [
                    find_binary("kube-scheduler"),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--authentication-kubeconfig={self.kubeconfig}",
                    f"--authorization-kubeconfig={self.kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={port}",
                    f"--cert-dir={self.root / 'scheduler-certs'}",
                    "--leader-elect=false",
                ],
                self.root / "kube-scheduler.log",
                f"https://127.0.0.1:{port}/healthz",
            ),
            timeout=60,
        )

    def start_controller_manager(self) -> None:
        if "kube-controller-manager" in self.components:
            return
        port = free_port()
        (self.root / "flexvolume").mkdir(exist_ok=True)
        self._launch(
            Component(
                "kube-controller-manager",
                [
                    find_binary("kube-controller-manager"),
                    f"--kubeconfig={self.kubeconfig}",
                    f"--authentication-kubeconfig={self.kubeconfig}",
                    f"--authorization-kubeconfig={self.kubeconfig}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={port}",
                    f"--cert-dir={self.root / 'kcm-certs'}",
                    "--leader-elect=false",
                    f"--flex-volume-plugin-dir={self.root / 'flexvolume'}",
                    f"--service-account-private-key-file={self.sa_key}",
                    f"--root-ca-file={self.ca_file}",
                    "--use-service-account-credentials=false",
                    "--concurrent-gc-syncs=5",
                ],
                self.root / "kube-controller-manager.log",
                f"https://127.0.0.1:{port}/healthz",
            ),
            timeout=90,
        )

    def start_kwok(self) -> None:
        """The KWOK controller, configured as KWOK's own deployment is (kustomize/kwok/kwok.yaml of its module: nodes
        by annotation `kwok.x-k8s.io/node=fake`, 40 s node leases) but with its default stages given in `--config`
        instead of as Stage objects, so no CRD is installed. Its HOME is ours, so a `~/.kwok/kwok.yaml` of the user's
        is never read."""
        if "kwok" in self.components:
            return
        port = free_port()
        home = self.root / "kwok-home"
        home.mkdir(exist_ok=True)
        options = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            # kustomize/kwok/kwok.yaml's options (KWOK applies no defaults to a --config file), less enableCRDs
            # and nodePort (the server listens on a free loopback port instead)
            "options": {"enableProfilingHandler": False, "enableContentionProfiling": False,
                        "enablePodsOnNodeSyncListPager": False, "enablePodsOnNodeSyncStreamWatch": True,
                        "nodeLeaseParallelism": 4, "podPlayStageParallelism": 4, "nodePlayStageParallelism": 4,
                        "cidr": "10.0.0.0/24", "nodeIP": "127.0.0.1", "manageAllNodes": False,
                        "manageNodesWithAnnotationSelector": KWOK_NODE_SELECTOR, "nodeLeaseDurationSeconds": 40},
        }
        config = self.root / "kwok.yaml"
        config.write_text(json.dumps(options) + "\n---\n" + Path(find_binary("stages.yaml")).read_text())
        comp = Component(
            "kwok",
            [
                find_binary("kwok"),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_SELECTOR}",
                f"--server-address=127.0.0.1:{port}",
            ],
            self.root / "kwok.log",
            f"http://127.0.0.1:{port}/healthz",
        )
        comp.env = {**os.environ, "HOME": str(home)}
        self._launch(comp, timeout=60)

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. kube-controller-manager, to see what happens without its garbage collector);
        `start_scheduler()` / `start_controller_manager()` start it again."""
        comp = self.components.pop(name, None)
        if comp is not None:
            comp.stop()
            self._save_state()

    def stop(self) -> None:
        """Stop our processes (reverse start order, by PID) and remove our temp dir."""
        for comp in reversed(list(self.components.values())):
            try:
                comp.stop()
            except Exception:  # keep stopping the others
                pass
        self.components.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---------------------------------------------------------------- clients
    def api_client(self):
        """A `kubernetes.client.ApiClient` authenticated as cluster admin."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    # ---------------------------------------------------------------- detached mode (make cluster-up)
    def _save_state(self) -> None:
        state = {
            "root": str(self.root),
            "url": self.url,
            "kubeconfig": str(self.kubeconfig),
            "pids": {name: comp.pid for name, comp in self.components.items()},
        }
        (self.root / "state.json").write_text(json.dumps(state, indent=2))


def cluster_dir() -> Path:
    """Where `cluster-up` keeps its detached control plane (DRA_KWOK_CLUSTER_DIR, else under the cache)."""
    return Path(os.environ.get("DRA_KWOK_CLUSTER_DIR") or cache_dir() / "cluster")


def running_cluster() -> dict | None:
    """The state of the detached control plane if all of its processes are alive."""
    link = cluster_dir() / "current"
    try:
        state = json.loads((link / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if all(_pid_alive(pid) for pid in state["pids"].values()) else None


def cluster_up(scheduler: bool = True, controller_manager: bool = True, kwok: bool = True) -> dict:
    """Start (or find) the detached control plane; prints `export KUBECONFIG=...`; returns its state."""
    state = running_cluster()
    if state is not None:
        print(f"# control plane already running at {state['url']}", file=sys.stderr)
    else:
        cluster_down(quiet=True)
        root = cluster_dir()
        root.mkdir(parents=True, exist_ok=True)
        cp = ControlPlane(root=Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root)), detach=True)
        t0 = time.monotonic()
        cp.start(scheduler=scheduler, controller_manager=controller_manager, kwok=kwok)
        (root / "current").symlink_to(cp.root)
        print(f"# control plane up in {time.monotonic() - t0:.1f}s: {', '.join(cp.components)} at {cp.url}",
              file=sys.stderr)
        state = json.loads((cp.root / "state.json").read_text())
    print(f"export KUBECONFIG={cluster_dir() / 'current' / 'kubeconfig'}")  # stable across restarts
    return state


def cluster_down(quiet: bool = False) -> None:
    link = cluster_dir() / "current"
    if not (link.exists() or link.is_symlink()):
        if not quiet:
            print("# no control plane running", file=sys.stderr)
        return
    try:
        state = json.loads((link / "state.json").read_text())
    except (OSError, ValueError):
        state = {"pids": {}, "root": os.path.realpath(link)}
    for name, pid in reversed(list(state["pids"].items())):
        Component(name, [], Path(os.devnull), "", pid=pid).stop()
    shutil.rmtree(state["root"], ignore_errors=True)
    link.unlink()
    if not quiet:
        print("# control plane stopped", file=sys.stderr)


def leaks(tmp_root: str | os.PathLike | None = None, proc_root: str | os.PathLike = "/proc") -> list[str]:
    """The harness's temp dirs under `tmp_root` (default: the temp dir, TMPDIR) and the processes whose command line
    names one of them: what a test run left behind (`cluster-up`'s live elsewhere). `make test` gives each run a
    TMPDIR of its own, so other checkouts' control planes and benchmarks on the same machine never count."""
    root = Path(tmp_root if tmp_root is not None else tempfile.gettempdir())
    prefix = str(root / TMP_PREFIX)
    found = sorted(str(p) for p in root.glob(TMP_PREFIX + "*"))
    for proc in sorted(Path(proc_root).glob("[0-9]*"), key=lambda p: int(p.name)):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if prefix in cmdline and int(proc.name) != os.getpid():
            found.append(f"pid {proc.name}: {cmdline[:120]}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dra_kwok.testing.controlplane", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start etcd, kube-apiserver, kube-scheduler, kube-controller-manager and KWOK"
                                   " (detached)")
    up.add_argument("--no-scheduler", action="store_true")
    up.add_argument("--no-controller-manager", action="store_true")
    up.add_argument("--no-kwok", action="store_true")
    sub.add_parser("down", help="stop what `up` started and remove its temp dir")
    sub.add_parser("binaries", help="print where the binaries are (fails if they are missing)")
    sub.add_parser("leaks", help="fail if a test run left a process or temp dir behind (under TMPDIR)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "up":
            cluster_up(scheduler=not args.no_scheduler, controller_manager=not args.no_controller_manager,
                       kwok=not args.no_kwok)
        elif args.cmd == "down":
            cluster_down()
        elif args.cmd == "leaks":
            left = leaks()
            for item in left:
                print(f"left behind: {item}", file=sys.stderr)
            print(f"controlplane: {len(left)} processes or temp dirs left behind by the test run")
            return 1 if left else 0
        else:
            for name in ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kubectl", "kwok"):
                print(f"{name}: {find_binary(name)}")
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
