"""Structural rules a pool's slices must meet, per apiserver minor version (reference §7.3).

Why separate from :mod:`dra_kwok.slices.rules`: that module validates one complete slice object and (for now)
refuses alpha fields outright; profiles *need* those fields, and some rules only make sense across the slices of
a pool (device names unique in the pool, counter references resolving to a set of the pool). This checks the
per-slice ``spec`` parts a profile renders, for the version given, and returns readable problems.
"""

from __future__ import annotations

from typing import Any, Iterable

from dra_kwok.config.formats import dns_label_errors, semver_errors
from dra_kwok.config.quantity import QuantityError, parse_quantity

__all__ = ["check_pool"]

_ATTRIBUTE_TYPES = {"int", "bool", "string", "version"}


def _quantity(problems: list[str], where: str, value: Any) -> Any:
    try:
        return parse_quantity(value).value
    except QuantityError as err:
        problems.append(f"{where}: {err}")
        return None


def _device(problems: list[str], where: str, device: dict[str, Any], k8s_minor: int) -> None:
    problems += [f"{where}.name: {p}" for p in dns_label_errors(str(device.get("name", "")))]
    attributes, capacity = device.get("attributes") or {}, device.get("capacity") or {}
    if len(attributes) + len(capacity) > 32:
        problems.append(f"{where}: {len(attributes) + len(capacity)} attributes and capacities; at most 32")
    for key, value in attributes.items():
        kinds = set(value) & _ATTRIBUTE_TYPES
        if len(value) != 1 or len(kinds) != 1:
            problems.append(f"{where}.attributes[{key}]: exactly one of int, bool, string, version")
        elif "string" in value and len(value["string"].encode()) > 64:
            problems.append(f"{where}.attributes[{key}]: string longer than 64 bytes")
        elif "version" in value:
            problems += [f"{where}.attributes[{key}]: {p}" for p in semver_errors(value["version"])]
    multiple = device.get("allowMultipleAllocations") is True
    for key, entry in capacity.items():
        value = _quantity(problems, f"{where}.capacity[{key}]", entry.get("value"))
        policy = entry.get("requestPolicy")
        if policy is None or value is None:
            continue
        if not multiple:
            problems.append(f"{where}.capacity[{key}].requestPolicy: only with allowMultipleAllocations: true")
        default = _quantity(problems, f"{where}.capacity[{key}].requestPolicy.default", policy.get("default"))
        valid = policy.get("validRange")
        if valid is not None and default is not None:
            low = _quantity(problems, f"{where}.capacity[{key}].validRange.min", valid.get("min"))
            high = _quantity(problems, f"{where}.capacity[{key}].validRange.max", valid.get("max", entry["value"]))
            step = _quantity(problems, f"{where}.capacity[{key}].validRange.step", valid.get("step", "1"))
            if None in (low, high, step):
                continue
            if not (low <= default <= high <= value) or step <= 0 or low + step > value:
                problems.append(f"{where}.capacity[{key}].requestPolicy: needs min <= default <= max <= value, "
                                "step > 0 and min + step <= value")
            elif (default - low) % step or (high - low) % step:
                problems.append(f"{where}.capacity[{key}].requestPolicy: default and max must be min + a "
                                "multiple of step")
    taints = device.get("taints") or []
    if len(taints) > (4 if k8s_minor < 35 else 16):
        problems.append(f"{where}.taints: too many for 1.{k8s_minor}")
    for taint in taints:
        allowed = ("NoSchedule", "NoExecute") if k8s_minor < 35 else ("NoSchedule", "NoExecute", "None")
        if taint.get("effect") not in allowed:
            problems.append(f"{where}.taints: effect {taint.get('effect')!r} is not valid on 1.{k8s_minor} "
                            f"({', '.join(allowed)})")
    entries = device.get("consumesCounters") or []
    if k8s_minor >= 35 and len(entries) > 2:
        problems.append(f"{where}.consumesCounters: at most 2 entries on 1.35+")
    if len({e.get("counterSet") for e in entries}) != len(entries):
        problems.append(f"{where}.consumesCounters: one entry per counter set")


def check_pool(slices: Iterable[dict[str, Any]], k8s_minor: int) -> list[str]:
    """Problems with one pool's slice specs (``{"devices": …}`` / ``{"sharedCounters": …}``) on apiserver 1.<minor>."""
    problems: list[str] = []
    slices = list(slices)
    sets: dict[str, dict[str, Any]] = {}  # counter set name -> counters, over the pool
    set_slice: dict[str, int] = {}
    for i, spec in enumerate(slices):
        counter_sets = spec.get("sharedCounters") or []
        if counter_sets and spec.get("devices") and k8s_minor >= 35:
            problems.append(f"slice {i}: devices and sharedCounters in one slice (1.35+: one or the other)")
        if k8s_minor >= 35 and len(counter_sets) > 8:
            problems.append(f"slice {i}: {len(counter_sets)} counter sets; at most 8 per slice")
        total = 0
        for counter_set in counter_sets:
            name = counter_set.get("name", "")
            problems += [f"slice {i}: sharedCounters[{name}]: {p}" for p in dns_label_errors(name)]
            if name in sets:
                problems.append(f"slice {i}: counter set {name!r} defined twice in the pool")
            counters = counter_set.get("counters") or {}
            total += len(counters)
            if k8s_minor >= 35 and len(counters) > 32:
                problems.append(f"slice {i}: counter set {name!r} has {len(counters)} counters; at most 32")
            for counter, entry in counters.items():
                problems += [f"slice {i}: counter {name}/{counter}: {p}" for p in dns_label_errors(counter)]
                _quantity(problems, f"slice {i}: counter {name}/{counter}", entry.get("value"))
            sets[name], set_slice[name] = counters, i
        if k8s_minor < 35 and total > 32:
            problems.append(f"slice {i}: {total} counters over all sets; at most 32 per slice on 1.{k8s_minor}")
    seen: set[str] = set()
    for i, spec in enumerate(slices):
        devices = spec.get("devices") or []
        advanced = any(d.get("taints") or d.get("consumesCounters") for d in devices)
        limit = 64 if advanced and k8s_minor >= 35 else 128
        if len(devices) > limit:
            problems.append(f"slice {i}: {len(devices)} devices; at most {limit}")
        consumed = 0
        for device in devices:
            name = str(device.get("name", ""))
            where = f"slice {i}: device {name}"
            if name in seen:
                problems.append(f"{where}: duplicate device name in the pool")
            seen.add(name)
            _device(problems, where, device, k8s_minor)
            for entry in device.get("consumesCounters") or []:
                set_name = entry.get("counterSet")
                consumed += len(entry.get("counters") or {})
                if set_name not in sets:
                    problems.append(f"{where}: counter set {set_name!r} is not defined in the pool")
                    continue
                if k8s_minor < 35 and set_slice[set_name] != i:
                    problems.append(f"{where}: counter set {set_name!r} must be in the same slice on 1.{k8s_minor}")
                for counter, used in (entry.get("counters") or {}).items():
                    if counter not in sets[set_name]:
                        problems.append(f"{where}: counter {set_name}/{counter} is not defined")
                        continue
                    need = _quantity(problems, f"{where}: {set_name}/{counter}", used.get("value"))
                    have = parse_quantity(sets[set_name][counter]["value"]).value
                    if need is not None and need > have:
                        problems.append(f"{where}: consumes {used['value']} of {set_name}/{counter}, which has "
                                        f"{sets[set_name][counter]['value']}")
        if k8s_minor < 35 and consumed > 1024:
            problems.append(f"slice {i}: {consumed} counter entries over all devices; at most 1024 on 1.{k8s_minor}")
    return problems
