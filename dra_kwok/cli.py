"""The `dra-kwok` command line: parses flags (each with a DRA_KWOK_* environment default) and calls in.

Why so thin: everything a command does is a function of the pure core (accept, slices) or of the app; the run
flags come from :mod:`dra_kwok.settings`; the CLI only reads files, formats output and maps outcomes to exit codes:
0 valid / ran, 1 invalid config (or a fatal runtime error), 2 input unreadable or unparseable.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from typing import Any, Callable

import click
import yaml

from dra_kwok import __version__
from dra_kwok.settings import Settings, flags

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110, "show_default": True}


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
        _refuse_non_regular(path, os.stat(path).st_mode)  # follows symlinks: a link to a regular file is fine
        # O_NONBLOCK: should the path be swapped for a FIFO after the stat, open() still returns at once
        # (and fstat refuses it) instead of waiting for ever for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            _refuse_non_regular(path, os.fstat(fd).st_mode)
            os.set_blocking(fd, True)
            data = f.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise ParseError(path, 1, 1, f"input is larger than the limit of {MAX_INPUT_BYTES} bytes (10 MiB)")
    return data


class NotARegularFile(OSError):
    """A path that names a FIFO, directory, device or socket: reading it could block for ever or never end."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file: give a regular file, or - for stdin", path)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _refuse_non_regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotARegularFile(path, next((kind for test, kind in _KINDS if test(mode)), "not a file"))


def _version_options(command: Callable[..., None]) -> Callable[..., None]:
    """--kubernetes-version and --feature-gates: the kube-apiserver whose rules apply (validate, render)."""
    command = click.option("--feature-gates", default="", metavar="Name=true,...",
                           help="DRA feature gates that apiserver was started with (--feature-gates), over its "
                           "defaults.")(command)
    return click.option("--kubernetes-version", default="1.37", show_default=True, metavar="1.34|1.35|1.36|1.37",
                        help="The kube-apiserver whose ResourceSlice rules and default feature gates apply.")(command)


def _version(kubernetes_version: str, feature_gates: str) -> Any:
    from dra_kwok.slices.features import Version

    try:
        return Version.parse(kubernetes_version, feature_gates)
    except ValueError as err:
        raise click.UsageError(f"--kubernetes-version/--feature-gates: {err}") from None


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: machine-readable errors.")
@_version_options
def validate(files: tuple[str, ...], output: str, kubernetes_version: str, feature_gates: str) -> None:
    """Check configs offline, with the apiserver's rules. FILE is a raw config, a ConfigMap manifest or a
    multi-document YAML. Exit 0 valid, 1 invalid, 2 unreadable."""
    from dra_kwok.accept import validate as check_for
    from dra_kwok.config import ConfigInvalid, ParseError, load_documents

    version = _version(kubernetes_version, feature_gates)

    def check(config: Any) -> list[Any]:
        return check_for(config, version)

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
@_version_options
def render(file: str, node_file: str | None, labels: str, node_name: str, kubernetes_version: str,
           feature_gates: str) -> None:
    """Print, as YAML, the ResourceSlices a node would get from a config (node-local and cluster-wide pools),
    ready for `kubectl apply --dry-run=server -f -`."""
    from dra_kwok.accept import validate as check
    from dra_kwok.config import ConfigInvalid, ParseError, load_config
    from dra_kwok.slices.nodes import NodeInfo
    from dra_kwok.slices.render import render as render_pools

    version = _version(kubernetes_version, feature_gates)
    try:
        config = load_config(_read(file), source=file)
    except (OSError, ParseError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except ConfigInvalid as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    problems = check(config, version)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        for p in errors:
            click.echo(f"{file}: error: {p}", err=True)
        sys.exit(1)
    for p in problems:  # e.g. a field this version's apiserver drops: rendered all the same, as the driver sends it
        click.echo(f"{file}: warning: {p}", err=True)
    if node_file:
        try:
            node = yaml.safe_load(_read(node_file)) or {}
            meta = node.get("metadata") or {}
            node_labels = meta.get("labels") or {}
            name, uid = meta.get("name", node_name), meta.get("uid") or "00000000-0000-0000-0000-000000000000"
            strings = [name, uid, *node_labels, *node_labels.values()] if isinstance(node_labels, dict) else [None]
            if not all(isinstance(v, str) for v in strings):
                raise ValueError("metadata.name, metadata.uid and the labels must be strings")
        except (OSError, ParseError, yaml.YAMLError, RecursionError, AttributeError, ValueError) as err:
            click.echo(f"error: {node_file}: not a Node manifest: {err}", err=True)
            sys.exit(2)
        info = NodeInfo(name=name, uid=uid, labels=node_labels)
    else:
        try:
            pairs = dict(item.split("=", 1) for item in labels.split(",") if item)
        except ValueError:
            raise click.BadParameter("expected k=v,k2=v2", param_hint="--labels") from None
        info = NodeInfo(name=node_name, uid="00000000-0000-0000-0000-000000000000", labels=pairs)
    slices = [s for pool in render_pools(config, [info], version=version) for s in pool.slices]
    if not slices:
        click.echo(f"# no mapping matches node {info.name}", err=True)
    click.echo(yaml.safe_dump_all(slices, sort_keys=False), nl=False)


@main.command()
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: machine-readable.")
@click.option("--k8s-minor", type=click.IntRange(34, 99), default=35, show_default=True,
              help="Kubernetes minor version the slices are laid out for (NVIDIA DynamicMIG splits from 35).")
def profiles(output: str, k8s_minor: int) -> None:
    """List the built-in device profiles (`profile:` in a mapping): their parameters, and what one node gets with
    the defaults (and a notable variant or two)."""
    from dra_kwok.slices.profiles import PROFILES

    entries: list[dict[str, Any]] = []
    for profile in PROFILES.values():
        shapes: list[dict[str, Any]] = []
        for params in ({}, *profile.variants):
            out = profile.render(params, "node-1", "", k8s_minor)
            shapes.append({"params": params, "devices": out.device_count, "slices": len(out.slices),
                           "counterSets": len(out.counter_sets)})
        entries.append({
            "name": profile.name, "driver": profile.default_driver, "summary": profile.summary,
            "parameters": [{"name": p.name, "type": p.kind, "allowed": p.allowed(), "default": p.default,
                            "help": p.help} for p in profile.schema],
            "perNode": shapes,
        })
    if output == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    for entry in entries:
        click.echo(f"{entry['name']} ({entry['driver']}): {entry['summary']}")
        for shape in entry["perNode"]:
            with_ = ", ".join(f"{k}: {v}" for k, v in shape["params"].items()) or "defaults"
            click.echo(f"  one node on 1.{k8s_minor} ({with_}): {shape['devices']} devices in {shape['slices']} "
                       f"slice(s), {shape['counterSets']} counter set(s)")
        for p in entry["parameters"]:
            click.echo(f"  {p['name']:<26} default {json.dumps(p['default']):<18} allowed: {p['allowed']}")
        click.echo("")


class Duration(click.ParamType):
    """A Go duration (30s, 1m30s, 500ms) or plain seconds, as a float of seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from dra_kwok.runtime.duration import DurationError, parse_duration

        try:
            return parse_duration(value)
        except DurationError as err:
            self.fail(str(err), param, ctx)


def _settings_options(command: Callable[..., None]) -> Callable[..., None]:
    """One click option per run setting (dra_kwok.settings), each with its DRA_KWOK_* environment default."""
    for f in reversed(flags()):
        kw: dict[str, Any] = {"envvar": f.envvar, "show_envvar": True, "help": f.help, "default": f.default}
        decls = [f.flag]
        if f.kind == "bool":
            decls = [f"{f.flag}/--no-{f.flag[2:]}"]
        elif f.kind == "int":
            kw["type"] = int
        elif f.kind == "duration":
            kw["type"] = Duration()
            kw["default"] = f.default_text  # shown as written (30s), converted to seconds by the type
        elif f.kind == "choice":
            kw["type"] = click.Choice(list(f.choices))
        elif f.kind == "path":
            kw["type"] = click.Path(dir_okay=False)
        if f.default is None:
            kw["show_default"] = f.default_text
        if f.flag == "-v":
            decls = ["-v", "--v"]
        command = click.option(*decls, f.name, **kw)(command)
    return command


@main.command()
@_settings_options
def run(**values: Any) -> None:
    """Run the driver: watch the config and KWOK nodes, and keep their ResourceSlices right."""
    from dra_kwok.app import App
    from dra_kwok.controllers.instance import InvalidInstance
    from dra_kwok.runtime import log

    settings = Settings(**values)
    log.setup(settings.log_format, settings.verbosity)
    try:
        app = App(settings)
    except InvalidInstance as err:  # before any request: a usage error
        raise click.BadParameter(str(err), param_hint="--instance") from None
    except Exception as err:  # bad kubeconfig, no cluster config at all, no /version, a bad --feature-gates
        log.get_logger("cli").error("Failed to start", err=err)
        sys.exit(1)
    sys.exit(app.run())


if __name__ == "__main__":
    main()
