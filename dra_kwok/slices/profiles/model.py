"""What a device profile is: a name, a default driver, a parameter schema and a pure render function.

Why a schema object instead of free-form dicts: the same schema answers three questions for three callers —
the config loader (is ``profile: {...}`` valid, and if not, which field and which values are allowed), the
``dra-kwok profiles`` command (what can I set) and the renderer (the parameters with defaults filled in).

Rendering contract (:meth:`Profile.render`): the result is the per-slice part of one node's pool, in the order
and grouping the real driver publishes it: each slice is ``{"devices": [...]}``, ``{"sharedCounters": [...]}``
or, where the real driver combines them (NVIDIA DynamicMIG on a < 1.35 apiserver), both. The caller adds
apiVersion, kind, metadata, driver, pool, nodeName and the owner reference. Device bodies are resource.k8s.io/v1
JSON with canonical quantities. Node-independent sub-objects (capacities, counter consumption, most
attribute values) are built once per parameter set and *shared* between nodes, which keeps a 208-device node
well under a millisecond: treat the output as read-only (copy before mutating).
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from dra_kwok.config.formats import driver_name_errors

__all__ = ["Param", "Profile", "ProfileOutput", "device_uuid", "short_digest"]

Slice = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """One parameter of a profile.

    ``kind``: ``string``, ``int``, ``bool``, ``strings`` (a list of strings) or ``shares`` (one of ``choices`` or
    an integer ≥ ``minimum``). ``choices`` lists the allowed values of a string (empty: any); ``minimum`` and
    ``maximum`` bound an int.
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    allowed_text: str = ""  # overrides the generated description of what is allowed

    def allowed(self) -> str:
        """The allowed values, as the docs and error messages show them."""
        if self.allowed_text:
            return self.allowed_text
        if self.kind == "bool":
            return "true, false"
        if self.kind == "shares":
            return ", ".join(self.choices) + f" or an integer >= {self.minimum}"
        if self.kind == "int":
            return f"{self.minimum}..{self.maximum}"
        if self.choices:
            return ", ".join(self.choices)
        return "a list of strings" if self.kind == "strings" else "a string"

    def problems(self, value: Any) -> list[str]:
        where = f"profile.{self.name}"
        if self.kind == "bool":
            return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean; use true or false"]
        if self.kind in ("int", "shares"):
            if isinstance(value, str) and self.kind == "shares" and value in self.choices:
                return []
            if not isinstance(value, int) or isinstance(value, bool):
                return [f"{where}: {value!r} is not allowed; use {self.allowed()}"]
            if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
                return [f"{where}: {value} is out of range; use {self.allowed()}"]
            return []
        if self.kind == "strings":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return [f"{where}: must be a list of strings"]
            bad = [v for v in value if self.choices and v not in self.choices]
            return [f"{where}: {v!r} is not one of {self.allowed()}" for v in bad]
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if self.choices and value not in self.choices:
            return [f"{where}: unknown value {value!r}; known: {self.allowed()}"]
        return []


@dataclass(frozen=True)
class ProfileOutput:
    """One node's pool content: the slices, in publishing order (see the module docstring)."""

    slices: list[Slice]

    @property
    def device_count(self) -> int:
        return sum(len(s.get("devices") or ()) for s in self.slices)

    @property
    def counter_sets(self) -> list[str]:
        return [c["name"] for s in self.slices for c in s.get("sharedCounters") or ()]


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, eq=False)
class Profile:
    """A built-in device profile. ``build(params, k8s_minor)`` returns a per-node function
    ``(driver, node_name) -> list of slices``; it is cached per (parameters, version), so everything it
    computes outside the returned function is computed once."""

    name: str
    default_driver: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[[dict[str, Any], int], Callable[[str, str], list[Slice]]] = field(repr=False)
    cross_check: Callable[[dict[str, Any]], list[str]] = field(default=lambda p: [], repr=False)
    #: parameter sets worth showing beside the defaults in ``dra-kwok profiles``
    variants: tuple[dict[str, Any], ...] = ()

    @property
    def schema(self) -> tuple[Param, ...]:
        """Every parameter, ``driver`` (the common override) first."""
        driver = Param("driver", "string", self.default_driver,
                       "DRA driver name to publish under (override to simulate two vendors in one cluster)",
                       allowed_text="a DRA driver name (lowercase DNS subdomain)")
        return (driver, *self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: list(p.default) if isinstance(p.default, list) else p.default for p in self.schema}

    def resolve(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """``params`` with defaults filled in (``name``, the profile's own name, is dropped)."""
        out = self.defaults()
        out.update({k: v for k, v in (params or {}).items() if k != "name"})
        return out

    def validate_params(self, params: Mapping[str, Any] | None) -> list[str]:
        """Every problem with ``params``, each naming the field and what is allowed."""
        params = dict(params or {})
        if params.get("name", self.name) != self.name:
            return [f"profile.name: {params['name']!r} is not this profile ({self.name!r})"]
        known = {p.name: p for p in self.schema}
        problems = [f"profile.{k}: unknown parameter of profile {self.name}; known: {', '.join(known)}"
                    for k in params if k != "name" and k not in known]
        for key, value in params.items():
            if key in known:
                problems += known[key].problems(value)
        driver = params.get("driver")
        if isinstance(driver, str):
            problems += [f"profile.driver: {p}" for p in driver_name_errors(driver)]
        if not problems:
            problems += self.cross_check(self.resolve(params))
        return problems

    def render(self, params: Mapping[str, Any] | None, node_name: str, node_uid: str = "",
               k8s_minor: int = 35) -> ProfileOutput:
        """One node's slices. Illustrative identifiers depend on (driver, node name, device), not on
        ``node_uid``, so a node recreated under the same name publishes the same devices."""
        resolved = self.resolve(params)
        frozen = tuple(sorted((k, _freeze(v)) for k, v in resolved.items()))
        per_node = _built(self, frozen, k8s_minor)
        return ProfileOutput(per_node(resolved["driver"], node_name))


@functools.lru_cache(maxsize=256)
def _built(profile: Profile, frozen: tuple[tuple[str, Any], ...], k8s_minor: int) -> Callable[[str, str], list[Slice]]:
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in frozen}
    return profile.build(params, k8s_minor)


_NAMESPACE = uuid.NAMESPACE_URL.bytes


def _uuid5_bytes(name: str) -> bytes:
    """The 16 bytes of ``uuid.uuid5(NAMESPACE_URL, name)``, without building UUID objects (3x faster)."""
    raw = bytearray(hashlib.sha1(_NAMESPACE + name.encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    return bytes(raw)


def device_uuid(driver: str, node_name: str, device: str) -> str:
    """A UUID (version 5) unique per driver, node and device: stands in for a serial the real driver reads.
    Equal to ``str(uuid.uuid5(uuid.NAMESPACE_URL, f"dra-kwok-profile://{driver}/{node_name}/{device}"))``."""
    h = _uuid5_bytes(f"dra-kwok-profile://{driver}/{node_name}/{device}").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def short_digest(driver: str, node_name: str, device: str, nbytes: int) -> bytes:
    """``nbytes`` bytes derived from (driver, node, device), for MAC addresses and the like."""
    return _uuid5_bytes(f"dra-kwok-profile://{driver}/{node_name}/{device}")[:nbytes]
