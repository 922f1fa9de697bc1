"""The `dra-kwok` command line: parses flags (each with a DRA_KWOK_* environment default) and calls in.

Why so thin: everything a command does is a function of the pure core (config, validation, render) or of the
manager; the CLI only reads files, formats output and maps outcomes to exit codes:
0 valid / ran, 1 invalid config (or a fatal runtime error), 2 input unreadable or unparseable.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
import yaml

from dra_kwok import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110, "show_default": True}


def flag(*decls: str, **kwargs: Any):
    """A click option whose environment default is DRA_KWOK_<LONG NAME> (e.g. --resync-period:
    DRA_KWOK_RESYNC_PERIOD), shown in --help."""
    long_name = next(d for d in decls if d.startswith("--")).split("/")[0]
    envvar = "DRA_KWOK_" + long_name.lstrip("-").replace("-", "_").upper()
    return click.option(*decls, envvar=envvar, show_envvar=True, **kwargs)


@click.group(context_settings=CONTEXT)
def main() -> None:
    """dra-kwok publishes fake DRA devices (resource.k8s.io/v1 ResourceSlices) for KWOK nodes, from a ConfigMap."""


@main.command()
def version() -> None:
    """Print the version."""
    import kubernetes

    click.echo(f"dra-kwok {__version__} (kubernetes client {kubernetes.__version__}, python {sys.version.split()[0]})")


def _read(path: str) -> bytes:
    """The bytes of ``path`` (``-``: stdin), reading at most one byte more than the loader accepts, so that a
    huge file, /dev/zero or an endless pipe is refused without filling memory."""
    from dra_kwok.config import ParseError
    from dra_kwok.config.loader import MAX_INPUT_BYTES

    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    else:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise ParseError(path, 1, 1, f"input is larger than the limit of {MAX_INPUT_BYTES} bytes (10 MiB)")
    return data


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: machine-readable errors.")
def validate(files: tuple[str, ...], output: str) -> None:
    """Check configs offline, with the apiserver's rules. FILE is a raw config, a ConfigMap manifest or a
    multi-document YAML. Exit 0 valid, 1 invalid, 2 unreadable."""
    from dra_kwok.accept import validate as check
    from dra_kwok.config import ConfigInvalid, ParseError, load_documents

    results: list[dict[str, Any]] = []
    worst = 0
    for path in files:
        entry: dict[str, Any] = {"file": path, "valid": False, "errors": [], "warnings": []}
        try:
            configs = load_documents(_read(path), source=path)
            problems = [p for c in configs for p in check(c)]
        except OSError as err:
            entry["errors"].append({"path": "", "message": f"cannot read file: {err.strerror or err}"})
            worst = 2
        except ParseError as err:
            # err.source names the text that line and column count in: the file, or a ConfigMap's data[key]
            # when that is not a '|' block of the file (then its lines are the value's own)
            inner = err.source[len(path) + 1 :] if err.source.startswith(f"{path}:") else ""
            entry["errors"].append({"path": inner, "line": err.line, "column": err.column, "message": err.message})
            worst = 2
        except ConfigInvalid as err:
            problems = list(err.errors)
            entry["errors"] = [_problem(p) for p in problems if p.severity == "error"]
            entry["warnings"] = [_problem(p) for p in problems if p.severity != "error"]
            worst = max(worst, 1 if entry["errors"] else 0)
        else:
            entry["errors"] = [_problem(p) for p in problems if p.severity == "error"]
            entry["warnings"] = [_problem(p) for p in problems if p.severity != "error"]
            worst = max(worst, 1 if entry["errors"] else 0)
        entry["valid"] = not entry["errors"]
        results.append(entry)
    if output == "json":
        click.echo(json.dumps(results, indent=2))
    else:
        for entry in results:
            for kind in ("errors", "warnings"):
                for p in entry[kind]:
                    where = f"{entry['file']}:{p['line']}:{p['column']}" if p.get("line") else entry["file"]
                    field = f" {p['path']}:" if p.get("path") else ""
                    click.echo(f"{where}: {kind[:-1]}:{field} {p['message']}", err=kind == "errors")
            if entry["valid"]:
                click.echo(f"{entry['file']}: valid" + (f" ({len(entry['warnings'])} warnings)" if entry["warnings"] else ""))
    sys.exit(worst)


def _problem(p: Any) -> dict[str, Any]:
    out = {"path": p.path, "message": p.message}
    if getattr(p, "line", None):
        out.update(line=p.line, column=p.column)
    return out


@main.command()
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--node", "node_file", type=click.Path(exists=True, dir_okay=False),
              help="A Node manifest (YAML/JSON, e.g. `kubectl get node NAME -o yaml`).")
@click.option("--labels", default="", help="Quick try without a Node: k=v,k2=v2 labels of a fake node.")
@click.option("--node-name", default="kwok-node-0", show_default=True, help="Name of the fake node (with --labels).")
def render(file: str, node_file: str | None, labels: str, node_name: str) -> None:
    """Print, as YAML, the ResourceSlices a node would get from a config (node-local and cluster-wide pools),
    ready for `kubectl apply --dry-run=server -f -`."""
    from dra_kwok.accept import validate as check
    from dra_kwok.config import ConfigInvalid, ParseError, load_config
    from dra_kwok.slices.nodes import NodeInfo
    from dra_kwok.slices.render import render as render_pools

    try:
        config = load_config(_read(file), source=file)
    except (OSError, ParseError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except ConfigInvalid as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    errors = [p for p in check(config) if p.severity == "error"]
    if errors:
        for p in errors:
            click.echo(f"{file}: error: {p}", err=True)
        sys.exit(1)
    if node_file:
        try:
            node = yaml.safe_load(_read(node_file)) or {}
            meta = node.get("metadata") or {}
            labels = meta.get("labels") or {}
            name, uid = meta.get("name", node_name), meta.get("uid") or "00000000-0000-0000-0000-000000000000"
            strings = [name, uid, *labels, *labels.values()] if isinstance(labels, dict) else [None]
            if not all(isinstance(v, str) for v in strings):
                raise ValueError("metadata.name, metadata.uid and the labels must be strings")
        except (OSError, ParseError, yaml.YAMLError, RecursionError, AttributeError, ValueError) as err:
            click.echo(f"error: {node_file}: not a Node manifest: {err}", err=True)
            sys.exit(2)
        info = NodeInfo(name=name, uid=uid, labels=labels)
    else:
        try:
            pairs = dict(item.split("=", 1) for item in labels.split(",") if item)
        except ValueError:
            raise click.BadParameter("expected k=v,k2=v2", param_hint="--labels") from None
        info = NodeInfo(name=node_name, uid="00000000-0000-0000-0000-000000000000", labels=pairs)
    slices = [s for pool in render_pools(config, [info]) for s in pool.slices]
    if not slices:
        click.echo(f"# no mapping matches node {info.name}", err=True)
    click.echo(yaml.safe_dump_all(slices, sort_keys=False), nl=False)


@main.command()
@flag("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="Path to a kubeconfig. Default: in-cluster service account, else $KUBECONFIG / ~/.kube/config.")
@flag("--namespace", default="karpenter", show_default=True, help="Namespace of the ConfigMap (and Lease).")
@flag("--configmap", default="dra-kwok-configmap", show_default=True, help="Name of the ConfigMap to watch.")
@flag("--config-file", type=click.Path(dir_okay=False), default=None,
              help="Local mode: read the config from this file (reloaded on change) instead of a ConfigMap.")
@flag("--resync-period", type=float, default=30.0, show_default=True,
              help="Seconds between full resyncs from the caches (no LIST; a safety net, events drive the work).")
@flag("--leader-elect/--no-leader-elect", default=False, show_default=True,
              help="Elect a leader on a Lease so that only one replica writes.")
@flag("--leader-election-namespace", default=None, help="Namespace of the Lease. Default: --namespace.")
@flag("--health-port", type=int, default=8081, show_default=True, help="Port of /healthz and /readyz (0: off).")
@flag("--metrics-port", type=int, default=8080, show_default=True, help="Port of /metrics (0: off).")
@flag("--bind-address", default="0.0.0.0", show_default=True, help="Address the probe and metrics ports bind.")
@flag("--workers", type=int, default=4, show_default=True, help="Concurrent reconciles (MaxConcurrentReconciles).")
@flag("--kwok-annotation", default="kwok.x-k8s.io/node", show_default=True,
              help="Nodes carrying this annotation (any value) are KWOK nodes.")
@flag("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@flag("-v", "--v", "verbosity", type=int, default=0, show_default=True, help="Log verbosity (klog -v levels).")
def run(kubeconfig, namespace, configmap, config_file, resync_period, leader_elect, leader_election_namespace,
        health_port, metrics_port, bind_address, workers, kwok_annotation, log_format, verbosity) -> None:
    """Run the driver: watch the config and KWOK nodes, and keep their ResourceSlices right."""
    from dra_kwok.runtime import log
    from dra_kwok.runtime.manager import Manager, Options

    log.setup(log_format, verbosity)
    opts = Options(
        kubeconfig=kubeconfig, namespace=namespace, configmap=configmap, config_file=config_file,
        resync_period=resync_period, leader_elect=leader_elect, leader_election_namespace=leader_election_namespace,
        health_port=health_port, metrics_port=metrics_port, bind_address=bind_address, workers=workers,
        kwok_annotation=kwok_annotation, identity=os.environ.get("POD_NAME"),
    )
    try:
        manager = Manager(opts)
    except Exception as err:  # bad kubeconfig, no cluster config at all
        log.get_logger("cli").error("Failed to create client", err=err)
        sys.exit(1)
    sys.exit(manager.run())


if __name__ == "__main__":
    main()
