"""How long a verdict on a config takes, phase by phase (`make bench-validate`).

Why: the driver judges every ConfigMap change before it does anything else, and an invalid config must be reported
(log line, Warning Event) promptly; #19 asks for a 1 MiB config (2,300 mappings) judged in at most 2 s of CPU and a
10 MiB file in at most 5 s, and #14 for the alias-amplification corpus case (30,000 device templates) in at most 1 s.
This script generates those inputs, runs the same code the driver runs (:func:`dra_kwok.accept.accept` on the
JSON manifest the ConfigMap controller builds, or on the file as `dra-kwok validate` reads it) and prints a
markdown table of CPU seconds (``time.process_time``) and wall seconds per phase:

* parse: reading YAML (every document, and the config inside a ConfigMap), with the hostile-input bounds;
* load: the structure check and building the ``Config``;
* rules: the config's own rules (:func:`dra_kwok.config.validate`);
* rendered: every pool rendered for a worst-case node and checked with the apiserver's rules (only when the rules
  pass; ``-`` otherwise);
* verdict: the sum, and what the driver's log line / Warning Event would carry (errors shown of all).

Usage: ``python3 bench/validate_bench.py [--repeat N] [--only NAME]``; the median of N runs is shown.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "corpus" / "hostile"))

from cases import _amplified  # noqa: E402

from dra_kwok import accept as accept_module  # noqa: E402
from dra_kwok.accept import Rejected  # noqa: E402
from dra_kwok.config import ConfigInvalid, ParseError, errors_only, load_config  # noqa: E402
from dra_kwok.config import loader as loader_module  # noqa: E402
from dra_kwok.config import validate as config_rules  # noqa: E402

MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------- inputs
def _mapping(i: int, invalid: bool) -> str:
    """One ~450-byte mapping of 41 YAML nodes (2,300 of them stay under the 100,000-node limit)."""
    memory = "80GB" if invalid else "80Gi"  # invalid: a quantity with a 'B' unit, one error per mapping
    return (
        f"  - name: accelerator-group-{i:05d}\n"
        "    nodeSelectorTerms:\n"
        "      - matchExpressions:\n"
        f"          - {{key: example.com/accelerator-group, operator: In, values: [group-{i:05d}-of-the-accelerator-fleet]}}\n"
        "    resourceSlice:\n"
        f"      pool: {{name: accelerators-{i:05d}}}\n"
        "      devices:\n"
        "        - name: gpu\n"
        "          count: 8\n"
        "          attributes:\n"
        "            model: {string: \"NVIDIA-A100-SXM4-80GB-HBM2e-{{index}}-{{hash}}\"}\n"
        f"          capacity: {{memory: {{value: {memory}}}}}\n"
    )


def config_text(mappings: int, invalid: bool = False) -> str:
    return "driver: gpu.dra-kwok.x-k8s.io\nmappings:\n" + "".join(_mapping(i, invalid) for i in range(mappings))


def configmap_manifest(text: str) -> bytes:
    """What ConfigMapController.apply hands to accept(): the ConfigMap as one line of JSON."""
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": {"config.yaml": text}}).encode()


def one_line_10_mib() -> bytes:
    """A 10 MiB file on one line: a JSON config whose driver name is one 10 MiB string (refused by the rules)."""
    head, tail = b'{"driver": "', b'", "mappings": []}'
    return head + b"a" * (10 * MIB - len(head) - len(tail) - 1) + tail + b"\n"


@dataclass(frozen=True)
class Input:
    name: str
    make: Callable[[], bytes]
    source: str


INPUTS = [
    Input("configmap-1mib-2300-valid", lambda: configmap_manifest(config_text(2_300)), "configmap"),
    Input("configmap-1mib-2300-invalid", lambda: configmap_manifest(config_text(2_300, invalid=True)), "configmap"),
    Input("file-1mib-2300-valid", lambda: config_text(2_300).encode(), "file"),
    Input("file-10mib-one-line", one_line_10_mib, "file"),
    Input("alias-amplification-under-limit", lambda: _amplified(300), "file"),
]


# ---------------------------------------------------------------------------------------------- timing
class _Clock:
    """Time spent in a function, counting only the outermost of nested (recursive) calls."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self.depth = 0

    def wrap(self, fn: Callable) -> Callable:  # type: ignore[type-arg]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            if self.depth:
                return fn(*args, **kwargs)
            cpu, wall = time.process_time(), time.perf_counter()
            self.depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                self.cpu += time.process_time() - cpu
                self.wall += time.perf_counter() - wall
        return timed


def measure(text: bytes, source: str) -> dict[str, object]:
    """One verdict on ``text``, timed per phase (parse is timed inside load by wrapping the YAML reader), with
    cyclic garbage collection paused for the whole verdict as :func:`dra_kwok.accept.accept` does."""
    gc_paused = getattr(loader_module, "gc_paused", contextlib.nullcontext)  # nullcontext: before it existed
    with gc_paused():
        return _measure(text, source)


def _measure(text: bytes, source: str) -> dict[str, object]:
    parse = _Clock()
    original = loader_module._read_documents
    loader_module._read_documents = parse.wrap(original)  # the reader is also called for a ConfigMap's config
    out: dict[str, object] = {}
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            config = load_config(text, source)
        except (ParseError, ConfigInvalid) as err:
            config, refused = None, err
        load_cpu, load_wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        loader_module._read_documents = original
    out["parse"] = (parse.cpu, parse.wall)
    out["load"] = (load_cpu - parse.cpu, load_wall - parse.wall)
    errors: list[str] = []
    if config is None:
        errors = [str(e) for e in refused.errors] if isinstance(refused, ConfigInvalid) else [str(refused)]
        out["rules"] = out["rendered"] = None
    else:
        cpu, wall = time.process_time(), time.perf_counter()
        problems = config_rules(config)
        out["rules"] = (time.process_time() - cpu, time.perf_counter() - wall)
        errors = [str(p) for p in errors_only(problems)]
        if errors:
            out["rendered"] = None
        else:
            cpu, wall = time.process_time(), time.perf_counter()
            errors = [str(p) for p in errors_only(accept_module._rendered_problems(config))]
            out["rendered"] = (time.process_time() - cpu, time.perf_counter() - wall)
    out["verdict"] = tuple(sum(v[k] for v in out.values() if isinstance(v, tuple)) for k in (0, 1))
    out["errors"] = len(errors)
    out["message"] = _reported_length(errors)
    return out


def _reported_length(errors: list[str]) -> int:
    """Bytes of the error list in the driver's log line (the Event is capped further, at 1,024 characters)."""
    if not errors:
        return 0
    try:
        from dra_kwok.controllers.source import cap_errors
    except ImportError:  # before errors were capped: all of them
        return len("; ".join(errors).encode())
    return len("; ".join(cap_errors(errors)).encode())


def _cell(value: object) -> str:
    if value is None:
        return "-"
    cpu, wall = value  # type: ignore[misc]
    return f"{cpu:.2f} / {wall:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per input; the median is shown")
    parser.add_argument("--only", help="run only inputs whose name contains this")
    args = parser.parse_args()
    print("CPU / wall seconds per phase; verdict = all phases; message = bytes of the errors in the driver's log line\n")
    print("| input | bytes | parse | load | rules | rendered | verdict | errors | message |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for item in INPUTS:
        if args.only and args.only not in item.name:
            continue
        text = item.make()
        runs = [measure(text, item.source) for _ in range(args.repeat)]
        run = min(runs, key=lambda r: r["verdict"][0])  # type: ignore[index]
        if args.repeat > 2:
            median = statistics.median(r["verdict"][0] for r in runs)  # type: ignore[index]
            run = min(runs, key=lambda r: abs(r["verdict"][0] - median))  # type: ignore[index]
        cells = [_cell(run[k]) for k in ("parse", "load", "rules", "rendered", "verdict")]
        print(f"| {item.name} | {len(text):,} | " + " | ".join(cells) + f" | {run['errors']:,} | {run['message']:,} |")
        sys.stdout.flush()
    try:
        import yaml

        libyaml = yaml.__with_libyaml__
    except ImportError:  # pragma: no cover
        libyaml = False
    print(f"\nlibyaml available: {libyaml}; Rejected = {Rejected.__name__} (accept() raises it with every error)")


if __name__ == "__main__":
    main()
