"""Which fields of a ResourceSlice the apiserver dropped: the spec we sent vs the spec it returned (pure).

Why: an apiserver whose feature gate for a field is off does not refuse the field, it removes it before validation
and stores the rest (``dropDisabledFields``; /work/shared/reference/real-drivers.md §7.2). A driver that compares its
desired slice with the stored one would then find them different forever and rewrite the slice on every resync. The
upstream publisher notices this as a ``DroppedFieldsError``; dra-kwok does the same with :func:`dropped_fields`, and
then compares its desired slices with those fields removed (:func:`strip`), so that what the server keeps counts as
converged and nothing is rewritten.

Paths are spec paths in the feature table's form (:attr:`dra_kwok.slices.features.Feature.fields`): ``[]`` for the
items of a list, ``{}`` for the values of a map (``devices[].capacity{}.requestPolicy``), so that the same field of
a thousand devices is one path, and its gate is found in the table. Only fields that vanished count: the server also
fills in fields (a taint's ``timeAdded``) and canonicalises quantities, which is no loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dra_kwok.slices.features import FEATURES

__all__ = ["Dropped", "dropped_fields", "gate_for", "strip", "strip_spec"]

# The spec's maps whose keys are names (attributes, capacities, counters), not field names.
_MAPS = frozenset(("attributes", "capacity", "counters", "nodeAllocatableResources"))


@dataclass(frozen=True, order=True)
class Dropped:
    """A field the apiserver dropped, and the feature gate that governs it (None: not in the gate table)."""

    path: str
    gate: str | None

    def __str__(self) -> str:
        return f"{self.path} (feature gate {self.gate})" if self.gate else f"{self.path} (unknown to this apiserver)"


def _empty(value: Any) -> bool:
    return value is None or (type(value) in (dict, list) and not value)


def _walk(sent: Any, got: Any, path: str, is_map: bool, out: set[str]) -> None:
    if type(sent) is dict:
        if type(got) is not dict:
            return  # a different kind of value is a change, not a drop
        for key, value in sent.items():
            if _empty(value):
                continue  # the server omits empty fields; not sending one is the same as sending it
            sub = f"{path}{{}}" if is_map else (f"{path}.{key}" if path else key)
            kept = got.get(key)
            if _empty(kept):
                out.add(sub)
            else:
                _walk(value, kept, sub, not is_map and key in _MAPS, out)
    elif type(sent) is list and type(got) is list:
        for item, kept in zip(sent, got, strict=False):  # the server may return fewer
            _walk(item, kept, f"{path}[]", False, out)


def gate_for(path: str) -> str | None:
    """The feature gate governing a dropped field path: the table's entry for it, or for its closest parent."""
    probe = path
    while probe:
        for gate, feature in FEATURES.items():
            if probe in feature.fields:
                return gate
        probe = probe.rpartition(".")[0]
    return None


def dropped_fields(sent: dict[str, Any], returned: dict[str, Any]) -> list[Dropped]:
    """The spec fields set in ``sent`` (a ResourceSlice spec) that ``returned`` (the spec the apiserver answered
    with) no longer has, one entry per path, sorted; outermost only (a dropped map is not also reported per key)."""
    out: set[str] = set()
    _walk(sent or {}, returned or {}, "", False, out)
    return [Dropped(path, gate_for(path)) for path in sorted(out)]


def _segments(path: str) -> tuple[tuple[str, str], ...]:
    return tuple((s[:-2], s[-2:]) if s.endswith(("[]", "{}")) else (s, "") for s in path.split("."))


def _strip(value: Any, segments: tuple[tuple[str, str], ...]) -> Any:
    """``value`` without the field at ``segments``; the same object when it has no such field (nothing copied)."""
    if type(value) is not dict:
        return value
    (name, kind), rest = segments[0], segments[1:]
    if name not in value:
        return value
    if not rest:
        return {k: v for k, v in value.items() if k != name}
    child = value[name]
    if kind == "[]" and type(child) is list:
        items = [_strip(item, rest) for item in child]
        new: Any = child if all(a is b for a, b in zip(items, child, strict=True)) else items
    elif kind == "{}" and type(child) is dict:
        entries = {k: _strip(v, rest) for k, v in child.items()}
        new = child if all(entries[k] is v for k, v in child.items()) else entries
    else:
        new = _strip(child, rest)
    return value if new is child else {**value, name: new}


def strip(spec: dict[str, Any], paths: list[str] | tuple[str, ...] | frozenset[str]) -> dict[str, Any]:
    """``spec`` without the fields at ``paths`` (as :func:`dropped_fields` names them): what an apiserver that drops
    them keeps of it. New containers only where something is removed; ``spec`` itself when nothing is."""
    for path in sorted(paths):
        spec = _strip(spec, _segments(path))
    return spec


def strip_spec(body: dict[str, Any], paths: list[str] | tuple[str, ...] | frozenset[str]) -> dict[str, Any]:
    """A ResourceSlice body whose spec is :func:`strip`-ped; ``body`` itself when nothing is removed."""
    spec = body.get("spec") or {}
    stripped = strip(spec, paths)
    return body if stripped is spec else {**body, "spec": stripped}
