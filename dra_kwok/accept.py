"""Text in, a validated :class:`~dra_kwok.config.types.Config` (or every problem) out.

Why one module: the controller (a ConfigMap or a file), `dra-kwok validate` / `render` and the benchmark must reach
the same verdict on the same text. The verdict has two layers: the config's own rules (:mod:`dra_kwok.config`,
paths into what the user wrote) and, as a safety net once those pass, every pool the config can produce rendered for
a worst-case node (a 63-character name) and checked with the apiserver's ResourceSlice rules
(:mod:`dra_kwok.slices.rules`).
"""

from __future__ import annotations

import re

from dra_kwok.config import (
    Config,
    ConfigInvalid,
    FieldError,
    ParseError,
    errors_only,
    load_config,
)
from dra_kwok.config import validate as config_rules
from dra_kwok.config.errors import Severity
from dra_kwok.config.formats import ASSUMED_NODE_NAME_LENGTH
from dra_kwok.config.loader import gc_paused
from dra_kwok.slices.nodes import NodeInfo
from dra_kwok.slices.profiles import check_pool
from dra_kwok.slices.profiles.mapping import profile_problems
from dra_kwok.slices.render import Pool, render_all_groups
from dra_kwok.slices.rules import DEFAULT, Version, validate_slice

__all__ = ["Rejected", "accept", "validate"]

_INDEX = re.compile(r"\[\d+\]")
_EXAMPLE_NODE = NodeInfo("n" * ASSUMED_NODE_NAME_LENGTH, "00000000-0000-4000-8000-000000000000", {})


class Rejected(Exception):
    """The config text was refused; ``problems`` are every error found (warnings are not refusals)."""

    def __init__(self, problems: list[FieldError] | list[str]) -> None:
        self.errors = [str(p) for p in problems]
        super().__init__("; ".join(self.errors))


def _rendered_problems(config: Config, version: Version = DEFAULT) -> list[FieldError]:
    out = []
    indexes = {id(m): i for i, m in enumerate(config.mappings)}
    warned: set[tuple[str, str, str]] = set()
    for mapping, pool in render_all_groups(config, _EXAMPLE_NODE, version):
        path = f"mappings[{indexes[id(mapping)]}].resourceSlice"
        profiled = [m for m in config.mappings if m.resource_slice.profile is not None
                    and not m.resource_slice.cluster_wide and config.slice_driver(m) == pool.driver
                    and m.resource_slice.pool.name == mapping.resource_slice.pool.name]
        if profiled:  # a profile's slices: the same problem on 208 devices is said once, with the count
            path = f"mappings[{indexes[id(profiled[0])]}].resourceSlice.profile"
            out += _profile_pool_problems(pool, path, version)
            continue
        for body in pool.slices:
            for problem in validate_slice(body, version):
                if problem.severity == "error":
                    out.append(FieldError(path, f"the rendered ResourceSlice would be rejected by a Kubernetes "
                                          f"{version} apiserver: {problem}"))
                    continue
                # a dropped field: said once per field of a mapping, not once per device and slice
                field = _INDEX.sub("[]", problem.path)
                if (path, field, problem.message) not in warned:
                    warned.add((path, field, problem.message))
                    out.append(FieldError(path, f"the rendered ResourceSlices' {field}: {problem.message}", "warning"))
    return out


def _profile_pool_problems(pool: Pool, path: str, version: Version) -> list[FieldError]:
    """A pool with a profile: the apiserver's rules on each slice (per version and feature gates) and the pool-wide
    rules of :func:`check_pool`, each distinct message once, with its count: errors (the apiserver would refuse the
    slices) and warnings (it would store them without some fields)."""
    seen: dict[tuple[Severity, str], int] = {}
    for body in pool.slices:
        for problem in validate_slice(body, version):
            key = (problem.severity, f"{_INDEX.sub('[]', problem.path)}: {problem.message}")
            seen[key] = seen.get(key, 0) + 1
    specs = [{k: v for k, v in body["spec"].items() if k in ("devices", "sharedCounters")} for body in pool.slices]
    for message in check_pool(specs, version.minor):
        seen["error", message] = seen.get(("error", message), 0) + 1
    return [FieldError(path, ("the profile's ResourceSlices do not pass" if severity == "error" else
                              "the profile's ResourceSlices lose fields on") + f" a Kubernetes {version} apiserver: "
                       f"{message}" + (f" ({count} times)" if count > 1 else ""), severity)
            for (severity, message), count in seen.items()]


def validate(config: Config, version: Version = DEFAULT) -> list[FieldError]:
    """Every error and warning of ``config`` for a kube-apiserver ``version`` (default: the newest supported, with its
    default feature gates); it is valid when no item has ``severity == "error"``."""
    with gc_paused():
        problems = config_rules(config)
        problems += profile_problems(config)
        if not errors_only(problems):
            problems += _binding_simulation_problems(config, version)
        if not errors_only(problems):
            problems += _rendered_problems(config, version)
    return problems


BINDING_GATES = ("DRADeviceBindingConditions", "DRAResourceClaimDeviceStatus")


def _binding_simulation_problems(config: Config, version: Version) -> list[FieldError]:
    """``bindingSimulation`` on an apiserver without the binding-condition gates would simulate nothing (the
    apiserver drops bindingConditions from slices and claims, the scheduler never waits): refused, naming the gate."""
    off = [g for g in BINDING_GATES if not version.on(g)]
    if not off:
        return []
    return [FieldError(f"mappings[{i}].bindingSimulation",
                       f"needs the feature gate{'s' if len(off) > 1 else ''} {' and '.join(off)}, off on a Kubernetes "
                       f"{version} apiserver (on by default since 1.36): the apiserver would drop bindingConditions "
                       "and the scheduler would bind without waiting; remove bindingSimulation (and the binding "
                       "fields) for this cluster, or enable the gates")
            for i, m in enumerate(config.mappings) if m.binding_simulation is not None]


def accept(text: str | bytes, source: str, version: Version = DEFAULT) -> tuple[Config, list[FieldError]]:
    """Text (a raw config or a ConfigMap manifest) -> (a Config valid for a kube-apiserver ``version``, its
    warnings), or :class:`Rejected`."""
    with gc_paused():
        return _accept(text, source, version)


def _accept(text: str | bytes, source: str, version: Version) -> tuple[Config, list[FieldError]]:
    try:
        config = load_config(text, source)
    except ParseError as err:
        raise Rejected([str(err)]) from None
    except ConfigInvalid as err:
        raise Rejected(err.errors) from None
    problems = validate(config, version)
    errors = errors_only(problems)
    if errors:
        raise Rejected(errors)
    return config, [p for p in problems if p.severity != "error"]
