"""Every setting of `dra-kwok run`, defined once: its default, its flag, its environment variable and its help.

Why one place: the CLI's flags, `--help`, the README flag table, the Deployment's args and the code's defaults used
to be written separately and drift. Here each is a dataclass field whose metadata carries the help text; the CLI
builds its options from :func:`flags`, and a test checks the README table against it. Environment variables are
``DRA_KWOK_<FLAG>`` (``--resync-period`` → ``DRA_KWOK_RESYNC_PERIOD``). Durations are Go duration strings
(``30s``, ``1m30s``, ``500ms``) or plain seconds, held here as float seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from dra_kwok.runtime.duration import format_duration

__all__ = ["DEFAULT_CONFIGMAP", "DEFAULT_KWOK_ANNOTATION", "DEFAULT_NAMESPACE", "LEASE_NAME", "Flag", "Settings",
           "flags"]

DEFAULT_NAMESPACE = "karpenter"
DEFAULT_CONFIGMAP = "dra-kwok-configmap"
DEFAULT_KWOK_ANNOTATION = "kwok.x-k8s.io/node"
LEASE_NAME = "dra-kwok-leader"
ENV_PREFIX = "DRA_KWOK_"

Kind = Literal["str", "path", "int", "bool", "duration", "choice"]


def setting(default: Any, help: str, kind: Kind = "str", *, flag: str | None = None, choices: tuple[str, ...] = (),
            default_text: str | None = None) -> Any:
    """A field with the metadata the CLI and the docs need. ``flag=""``: a setting with no flag of its own."""
    return field(default=default, metadata={"help": help, "kind": kind, "flag": flag, "choices": choices,
                                            "default_text": default_text})


@dataclass
class Settings:
    """The run settings (`dra-kwok run --help`)."""

    kubeconfig: str | None = setting(
        None, "Path to a kubeconfig. Default: in-cluster service account, else $KUBECONFIG / ~/.kube/config.", "path",
        default_text="in-cluster, else $KUBECONFIG / ~/.kube/config")
    namespace: str = setting(DEFAULT_NAMESPACE, "Namespace of the ConfigMap (and of the Lease).")
    configmap: str = setting(DEFAULT_CONFIGMAP, "Name of the ConfigMap to watch (key config.yaml).")
    config_file: str | None = setting(
        None, "Local mode: read the config from this file (reloaded when it changes) instead of a ConfigMap.", "path",
        default_text="none")
    instance: str | None = setting(
        None, "Name of this driver instance, the value of label dra-kwok.x-k8s.io/instance on every slice it "
        "publishes; it lists, updates and deletes only slices carrying it. Replicas of one Deployment share it.",
        default_text="NAMESPACE.CONFIGMAP, or file-HASH_OF_PATH with --config-file")
    resync_period: float = setting(
        30.0, "Time between full resyncs from the caches (no LIST; a safety net, events drive the work).",
        "duration")
    leader_elect: bool = setting(False, f"Elect a leader on Lease {LEASE_NAME} so that only one replica writes.",
                                 "bool")
    leader_election_namespace: str | None = setting(None, "Namespace of the Lease.", default_text="--namespace")
    lease_duration: float = setting(15.0, "How long a standby waits before taking over a Lease not renewed.",
                                    "duration")
    renew_deadline: float = setting(10.0, "How long the leader keeps trying to renew before it gives up (and exits).",
                                    "duration")
    retry_period: float = setting(2.0, "Time between leader-election attempts.", "duration")
    health_port: int = setting(8081, "Port of /healthz, /readyz and /livez (0: off).", "int")
    metrics_port: int = setting(8080, "Port of /metrics (0: off).", "int")
    bind_address: str = setting("0.0.0.0", "Address the probe and metrics ports bind.")
    workers: int = setting(64, "Concurrent reconciles (controller-runtime's MaxConcurrentReconciles); what they hold "
                           "rendered at once is bounded apart from it (README, \"Memory budget\").", "int")
    kwok_annotation: str = setting(DEFAULT_KWOK_ANNOTATION, "Nodes carrying this annotation (any value) are KWOK "
                                   "nodes.")
    request_timeout: float = setting(15.0, "Read timeout of every request to the apiserver.", "duration")
    watch_timeout: float = setting(60.0, "Server-side timeout of each watch; it is then resumed from its "
                                   "resourceVersion.", "duration")
    kubernetes_version: str | None = setting(
        None, "The cluster's Kubernetes version (1.34-1.37): what its apiserver keeps decides the fields and slice "
        "layout dra-kwok publishes, and which configs it accepts.", default_text="discovered from /version")
    feature_gates: str = setting(
        "", "The cluster's kube-apiserver feature gates that differ from its version's defaults "
        "(DRADeviceTaints=true,...).", default_text="none")
    log_format: str = setting("text", "Log format: text (klog) or json.", "choice", choices=("text", "json"))
    verbosity: int = setting(0, "Log verbosity (klog -v levels: 2 reconciles, 3 every write, 4 resyncs).", "int",
                             flag="-v")
    identity: str | None = setting(None, "Leader-election identity. Default: $POD_NAME, else <hostname>_<uuid>.",
                                   flag="", default_text="$POD_NAME")


@dataclass(frozen=True)
class Flag:
    """One flag of `dra-kwok run`, as the CLI declares it and the README documents it."""

    name: str  # the Settings field
    flag: str  # --resync-period, -v
    envvar: str
    kind: Kind
    help: str
    default: Any
    default_text: str
    choices: tuple[str, ...]


def flags() -> list[Flag]:
    """The flags, in declaration order (settings with ``flag=""`` have none)."""
    out = []
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        if meta["flag"] == "":
            continue
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        envvar = ENV_PREFIX + (flag.lstrip("-").replace("-", "_").upper())
        out.append(Flag(f.name, flag, envvar, meta["kind"], meta["help"], f.default,
                        meta["default_text"] or _show(f.default, meta["kind"]), meta["choices"]))
    return out


def _show(default: Any, kind: Kind) -> str:
    if kind == "duration":
        return format_duration(default)
    if kind == "bool":
        return "on" if default else "off"
    return str(default)
