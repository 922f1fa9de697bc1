"""``profile:`` in a mapping: which profile and parameters a mapping asks for, what is wrong with them, and the
per-slice content it renders for one node.

Why here and not in :mod:`dra_kwok.config`: the config layer knows nothing of the profiles (it is the lowest
layer); it only checks that ``profile`` is a mapping with a ``name`` and plain values, and where a profile may go.
The profile's own schema (known models, modes, ranges) lives with the profile, so its parameters are checked
here, for :func:`dra_kwok.accept.validate`, with paths into the config
(``mappings[0].resourceSlice.profile.model``).

The driver a profile publishes under is the mapping's (:meth:`~dra_kwok.config.types.Config.slice_driver`:
``resourceSlice.driver``, else the profile's ``driver`` parameter, else the real driver's name), so one config can
run two fake vendors, or a profile under a test's own driver name.
"""

from __future__ import annotations

from typing import Any

from dra_kwok.config.errors import FieldError
from dra_kwok.config.types import Config, Mapping
from dra_kwok.slices.profiles import get_profile
from dra_kwok.slices.profiles.model import Profile, Slice

__all__ = ["profile_problems", "render_profile", "resolved_profile"]


def resolved_profile(config: Config, mapping: Mapping) -> tuple[Profile, dict[str, Any]] | None:
    """The profile of ``mapping`` and its parameters with the mapping's driver filled in (None: no or unknown profile)."""
    spec = mapping.resource_slice.profile
    if spec is None:
        return None
    profile, _ = get_profile(spec.get("name"))
    if profile is None:
        return None
    params = {k: v for k, v in spec.items() if k != "name"}
    params["driver"] = config.slice_driver(mapping)
    return profile, params


def profile_problems(config: Config) -> list[FieldError]:
    """Every problem with the profiles' parameters, each with its path in the config and the allowed values."""
    out: list[FieldError] = []
    for i, mapping in enumerate(config.mappings):
        spec = mapping.resource_slice.profile
        if spec is None:
            continue
        base = f"mappings[{i}].resourceSlice"
        profile, problems = get_profile(spec.get("name"))
        if profile is not None:
            problems = profile.validate_params(spec)
        for problem in problems:
            field, _, message = problem.partition(": ")  # the profile names its field: "profile.model: ..."
            out.append(FieldError(f"{base}.{field}", message))
    return out


def render_profile(config: Config, mapping: Mapping, node_name: str, k8s_minor: int) -> list[Slice]:
    """The per-slice specs (``devices`` / ``sharedCounters``) the mapping's profile publishes for one node, laid out
    as the real driver does on an apiserver 1.<k8s_minor>. Shared, read-only bodies (see
    :mod:`dra_kwok.slices.profiles.model`). Only for a mapping whose profile passed :func:`profile_problems`."""
    resolved = resolved_profile(config, mapping)
    if resolved is None:
        return []
    profile, params = resolved
    return profile.render(params, node_name, "", k8s_minor).slices
