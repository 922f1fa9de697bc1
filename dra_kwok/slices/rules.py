"""The apiserver's ResourceSlice validation (resource.k8s.io/v1, as of 1.34-1.37), for rendered bodies.

Why here: these are the API's rules for the objects we publish, not rules of the user's config. They are ported from
``pkg/apis/resource/validation`` and checked case by case against a real apiserver
(tests/integration/test_validation_agrees.py). Paths are the apiserver's (``spec.devices[3].name``).
Beyond the apiserver, :func:`validate_slice` warns about fields that an apiserver without their feature gate would
drop silently (it stores the slice without them; the driver notices that from the write's answer, reports it once and
does not rewrite: :mod:`dra_kwok.slices.dropped`), and refuses unknown fields (a renderer bug, not something to send).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from dra_kwok.config.errors import FieldError, Report
from dra_kwok.config.formats import (
    dns_label_errors,
    dns_subdomain_errors,
    driver_name_errors,
    label_key_errors,
    label_value_errors,
    pool_name_errors,
    qualified_name_errors,
    semver_errors,
)
from dra_kwok.config.quantity import Quantity, QuantityError, parse_quantity
from dra_kwok.config.validation import (
    MAX_ATTRIBUTES_AND_CAPACITIES,
    MAX_DEVICES_PER_SLICE,
    MAX_STRING_LENGTH,
)
from dra_kwok.slices.features import DEFAULT, FEATURES, Version, default_on_since, gate_of

__all__ = ["DEFAULT", "DROPPED", "Version", "dropped_warnings", "refused_on_create", "validate_slice"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SPEC_FIELDS = {"driver", "pool", "nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection", "devices",
                "sharedCounters", "partitionTypeAttribute", "skipNodeOperations"}
_GATED_SPEC_FIELDS = ("sharedCounters", "perDeviceNodeSelection", "partitionTypeAttribute", "skipNodeOperations")
_DEVICE_FIELDS = {"name", "attributes", "capacity", "consumesCounters", "nodeName", "nodeSelector", "allNodes",
                  "taints", "bindsToNode", "bindingConditions", "bindingFailureConditions",
                  "allowMultipleAllocations", "nodeAllocatableResources"}
_SKIP_NODE_OPERATIONS = ("NodePrepareResources", "NodeUnprepareResources", "*")
_MAX_COMPATIBILITY_GROUPS = 2
_SCALARS = frozenset(("bool", "int", "string", "version"))
_BINDING_FIELDS = frozenset(("bindsToNode", "bindingConditions", "bindingFailureConditions"))
_LIST_ATTRIBUTES = {"ints": "int", "bools": "bool", "strings": "string", "versions": "version"}
_MAX_DEVICES_ADVANCED = 64
_MAX_TAINTS = {34: 4}  # else 16
_MAX_BINDING_CONDITIONS = 4
_MAX_COUNTER_SETS = 8  # per slice, 1.35+
_MAX_COUNTERS = 32  # per set (1.35+), per slice over all sets (1.34), per device or entry
_MAX_CONSUMES_ENTRIES = 2  # per device, 1.35+
_MAX_CONSUMED_PER_SLICE_134 = 1024
_MAX_VALID_VALUES = 10
_MAX_ATTRIBUTE_VALUES = 48  # 1.36+, each list item counts


DROPPED = "dropped by an apiserver without"  # how every silently-dropped-field warning starts
_STORED = "that apiserver stores the slice without it, and dra-kwok reports the drop (a DroppedFields Warning Event)"
# What a dropped field changes for the scheduler, where it matters (by field path, as in Feature.fields).
_PARTITIONS = ("the partitions that share counters become independent devices, all allocatable at once "
               "(a whole GPU and its partitions can go to different claims together)")
_CONSEQUENCES = {
    "sharedCounters": _PARTITIONS,
    "devices[].consumesCounters": _PARTITIONS,
    "devices[].taints": "the scheduler does not see the taints: a claim without a toleration can get a tainted device",
    "devices[].allowMultipleAllocations": "the device is not shared: it is allocated to one claim at a time",
    "devices[].bindsToNode": "the scheduler binds the pod without waiting for binding conditions",
    "devices[].bindingConditions": "the scheduler binds the pod without waiting for binding conditions",
    "devices[].bindingFailureConditions": "the scheduler binds the pod without waiting for binding conditions",
}


def refused_on_create(problems: list[FieldError]) -> list[FieldError]:
    """The errors for which the apiserver itself refuses the create (422/400); a dropped field is only a warning (the
    apiserver takes the slice and stores it without the field)."""
    return [p for p in problems if p.severity == "error"]


def dropped_warnings(problems: list[FieldError]) -> list[FieldError]:
    """The warnings about fields the apiserver would drop silently."""
    return [p for p in problems if p.severity == "warning" and p.message.startswith(DROPPED)]


def _dropped(report: Report, path: str, field_path: str, why: str) -> None:
    consequence = _CONSEQUENCES.get(field_path)
    report.warning(path, f"{DROPPED} {why}: {_STORED}" + (f"; {consequence}" if consequence else ""))


def _gated(report: Report, version: Version, path: str, field_path: str, dropped_alone: bool = False) -> bool:
    """True if ``version`` keeps the field (``field_path`` as in :attr:`Feature.fields`); else a problem saying which
    gate it needs, since when it is on by default, and what this apiserver would do: an error where it refuses the
    slice (422), a warning where it drops the field silently. ``dropped_alone``: removing
    the field leaves a valid object (a list attribute next to a scalar value), so the apiserver drops it silently."""
    gate = gate_of(field_path)
    feature = FEATURES[gate]
    missing = [g for g in (gate, *feature.requires) if not version.on(g)]
    if not missing:
        return True
    gate = missing[0]
    since = default_on_since(gate)
    default = f"on by default since Kubernetes 1.{since}" if since else "off by default in every version"
    stage = FEATURES[gate].stages.get(version.minor)
    if stage is None:
        first = min(FEATURES[gate].stages)
        unknown = (f"an unknown field to a Kubernetes 1.{version.minor} apiserver: it needs feature gate {gate} "
                   f"(Kubernetes 1.{first}+, {default})")
        # the decoder drops a field it does not know: silently, unless what is left is invalid (a list attribute)
        silent = dropped_alone or feature.when_off == "drop" and field_path != "perDeviceNodeSelection"
        if silent:
            _dropped(report, path, field_path, f"the feature gate {gate}: {unknown}")
        else:
            report.error(path, unknown[0].upper() + unknown[1:])
    elif dropped_alone or feature.when_off == "drop" and field_path != "perDeviceNodeSelection":
        _dropped(report, path, field_path, f"the {stage[0]} feature gate {gate} (Kubernetes {version}; {default})")
    else:
        report.error(path, f"refused (422) by an apiserver without the {stage[0]} feature gate {gate} (Kubernetes "
                     f"{version}; {default})")
    return False


def _quantity(report: Report, value: Any, path: str) -> Quantity | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        report.error(path, "Required value: a quantity")
        return None
    try:
        return parse_quantity(value)
    except QuantityError as exc:
        report.error(path, f"quantities must match the regular expression "
                     f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({exc})")
        return None


def _counters(report: Report, counters: Any, path: str) -> int:
    """A ``{name: {value}}`` map of counters; returns how many."""
    if not isinstance(counters, dict) or not counters:
        report.error(path, "Required value")
        return 0
    for name, counter in counters.items():
        report.extend(path, dns_label_errors(str(name), "counter name"))
        if not isinstance(counter, dict) or set(counter) - {"value"}:
            report.error(f"{path}[{name}]", "must be an object with only `value`")
            continue
        _quantity(report, counter.get("value"), f"{path}[{name}].value")
    return len(counters)


def _compatibility_groups(report: Report, groups: Any, path: str) -> None:
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        report.error(path, "must be a list of strings")
        return
    if len(groups) > _MAX_COMPATIBILITY_GROUPS:
        report.error(path, f"Too many: {len(groups)}: must have at most {_MAX_COMPATIBILITY_GROUPS} items")
    for j, group in enumerate(groups):
        report.extend(f"{path}[{j}]", dns_label_errors(group, "compatibility group name"))
        if group in groups[:j]:
            report.error(f"{path}[{j}]", f"Duplicate value: {group!r}")


def _named_counters(report: Report, item: Any, path: str, name_key: str, version: Version) -> tuple[str, int] | None:
    """A counter set or a consumesCounters entry: ``{<name_key>: DNS label, counters: {...}}``; (name, counters)."""
    if not isinstance(item, dict):
        report.error(path, "must be an object")
        return None
    for key in set(item) - {name_key, "counters"}:
        if key == "compatibilityGroups" and name_key == "counterSet":
            if _gated(report, version, f"{path}.{key}", "devices[].consumesCounters[].compatibilityGroups"):
                _compatibility_groups(report, item[key], f"{path}.{key}")
            continue
        report.error(f"{path}.{key}", "unknown field")
    name = item.get(name_key)
    if not isinstance(name, str) or not name:
        report.error(f"{path}.{name_key}", "Required value")
        name = ""
    else:
        report.extend(f"{path}.{name_key}", dns_label_errors(name, "counter set name"))
    count = _counters(report, item.get("counters"), f"{path}.counters")
    if version.minor >= 35 and count > _MAX_COUNTERS:
        report.error(f"{path}.counters", f"Too many: {count}: must have at most {_MAX_COUNTERS} items")
    return name, count


def _shared_counters(report: Report, sets: Any, version: Version) -> dict[str, set[str]]:
    """``spec.sharedCounters``; returns the counters of each set (for 1.34's same-slice references)."""
    path = "spec.sharedCounters"
    out: dict[str, set[str]] = {}
    if not isinstance(sets, list):
        report.error(path, "must be a list")
        return out
    if version.minor >= 35 and len(sets) > _MAX_COUNTER_SETS:
        report.error(path, f"Too many: {len(sets)}: must have at most {_MAX_COUNTER_SETS} items")
    total = 0
    for i, counter_set in enumerate(sets):
        checked = _named_counters(report, counter_set, f"{path}[{i}]", "name", version)
        if checked is None:
            continue
        name, count = checked
        if name and name in out:
            report.error(f"{path}[{i}].name", f"Duplicate value: {name!r}")
        total += count
        counters = counter_set.get("counters")
        out[name] = set(counters) if isinstance(counters, dict) else set()
    if version.minor < 35 and total > _MAX_COUNTERS:
        report.error(path, f"Too many: {total}: the total number of counters must not exceed {_MAX_COUNTERS}")
    return out


def _consumes_counters(report: Report, entries: Any, path: str, version: Version,
                       local_sets: dict[str, set[str]]) -> int:
    """``devices[i].consumesCounters``; returns the number of counters consumed."""
    if not isinstance(entries, list):
        report.error(path, "must be a list")
        return 0
    if version.minor >= 35 and len(entries) > _MAX_CONSUMES_ENTRIES:
        report.error(path, f"Too many: {len(entries)}: must have at most {_MAX_CONSUMES_ENTRIES} items")
    seen: set[str] = set()
    total = 0
    for j, entry in enumerate(entries):
        entry_path = f"{path}[{j}]"
        checked = _named_counters(report, entry, entry_path, "counterSet", version)
        if checked is None:
            continue
        set_name, count = checked
        if set_name and version.minor >= 35 and set_name in seen:
            report.error(f"{entry_path}.counterSet", f"Duplicate value: {set_name!r}")
        seen.add(set_name)
        total += count
        if version.minor < 35 and set_name:
            if set_name not in local_sets:
                report.error(f"{entry_path}.counterSet", f"Invalid value: {set_name!r}: must reference a counter set "
                             "defined in the ResourceSlice sharedCounters")
            elif isinstance(counters := entry.get("counters"), dict):
                for counter in counters:
                    if counter not in local_sets[set_name]:
                        report.error(f"{entry_path}.counters", f"Invalid value: {counter!r}: must reference a "
                                     f"counter defined in the ResourceSlice sharedCounters[{set_name}]")
    if version.minor < 35 and total > _MAX_COUNTERS:
        report.error(path, f"Too many: {total}: the total number of counters must not exceed {_MAX_COUNTERS}")
    return total


def _taints(report: Report, taints: Any, path: str, version: Version) -> None:
    if not isinstance(taints, list):
        report.error(path, "must be a list")
        return
    limit = _MAX_TAINTS.get(version.minor, 16)
    if len(taints) > limit:
        report.error(path, f"Too many: {len(taints)}: must have at most {limit} items")
    effects = ("NoSchedule", "NoExecute") if version.minor < 35 else ("None", "NoSchedule", "NoExecute")
    for j, taint in enumerate(taints):
        taint_path = f"{path}[{j}]"
        if not isinstance(taint, dict):
            report.error(taint_path, "must be an object")
            continue
        for key in set(taint) - {"key", "value", "effect", "timeAdded"}:
            report.error(f"{taint_path}.{key}", "unknown field")
        key = taint.get("key")
        if not isinstance(key, str) or not key:
            report.error(f"{taint_path}.key", "Required value")
        else:
            report.extend(f"{taint_path}.key", label_key_errors(key))
        value = taint.get("value")
        if value is not None:
            report.extend(f"{taint_path}.value", label_value_errors(value) if isinstance(value, str)
                          else ["must be a string"])
        effect = taint.get("effect")
        if not effect:
            report.error(f"{taint_path}.effect", "Required value")
        elif effect not in effects:
            report.error(f"{taint_path}.effect", f"Unsupported value: {effect!r}: supported values: "
                         + ", ".join(f'"{e}"' for e in effects))


def _binding(report: Report, device: dict[str, Any], path: str) -> None:
    lists: dict[str, list[str]] = {}
    for key in ("bindingConditions", "bindingFailureConditions"):
        items = device.get(key)
        if items is None:
            lists[key] = []
            continue
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            report.error(f"{path}.{key}", "must be a list of strings")
            lists[key] = []
            continue
        lists[key] = items
        if len(items) > _MAX_BINDING_CONDITIONS:
            report.error(f"{path}.{key}", f"Too many: {len(items)}: must have at most {_MAX_BINDING_CONDITIONS} "
                         "items")
        seen: set[str] = set()
        for j, item in enumerate(items):
            report.extend(f"{path}.{key}[{j}]", qualified_name_errors(item))
            if item in seen:
                report.error(f"{path}.{key}[{j}]", f"Duplicate value: {item!r}")
            seen.add(item)
    conditions, failures = lists["bindingConditions"], lists["bindingFailureConditions"]
    if bool(conditions) != bool(failures):
        report.error(f"{path}.bindingConditions" if failures else f"{path}.bindingFailureConditions",
                     "Required value: bindingConditions and bindingFailureConditions must both be set or both be "
                     "empty")
    for j, item in enumerate(failures):
        if item in conditions:
            report.error(f"{path}.bindingFailureConditions[{j}]", f"Invalid value: {item!r}: must not also be a "
                         "binding condition")
    if "bindsToNode" in device and not isinstance(device["bindsToNode"], bool):
        report.error(f"{path}.bindsToNode", "must be a boolean")


def _is_multiple(value: Fraction, step: Fraction) -> bool:
    return step > 0 and (value / step).denominator == 1


def _request_policy(report: Report, policy: Any, capacity: Quantity | None, path: str, version: Version) -> None:
    if not isinstance(policy, dict):
        report.error(path, "must be an object")
        return
    for key in set(policy) - {"default", "validValues", "validRange"}:
        report.error(f"{path}.{key}", "unknown field")
    fractional = version.on("DRAFractionalCapacityRange")

    def number(q: Quantity) -> Fraction:
        if fractional:
            return q.value
        return Fraction(math.ceil(q.value))  # Quantity.Value(): rounded up to an integer

    default = _quantity(report, policy["default"], f"{path}.default") if "default" in policy else None
    has_values, has_range = policy.get("validValues") is not None, policy.get("validRange") is not None
    if has_values and has_range:
        report.error(path, "Invalid value: exactly one of `validValues` or `validRange` may be set")
    if (has_values or has_range) and "default" not in policy:
        report.error(f"{path}.default", "Required value: must be set when `validValues` or `validRange` is set")
    cap = number(capacity) if capacity is not None else None
    dflt = number(default) if default is not None else None
    if has_values:
        values_path = f"{path}.validValues"
        values = policy["validValues"]
        if not isinstance(values, list):
            report.error(values_path, "must be a list")
            return
        if len(values) > _MAX_VALID_VALUES:
            report.error(values_path, f"Too many: {len(values)}: must have at most {_MAX_VALID_VALUES} items")
        parsed: list[Fraction] = []
        for j, item in enumerate(values):
            quantity = _quantity(report, item, f"{values_path}[{j}]")
            if quantity is None:
                continue
            value = number(quantity)
            if parsed and value <= parsed[-1]:
                report.error(f"{values_path}[{j}]", f"Invalid value: {item!r}: must be sorted in ascending order "
                             "without duplicates")
            if cap is not None and value > cap:
                report.error(f"{values_path}[{j}]", f"Invalid value: {item!r}: must be less than or equal to the "
                             "capacity value")
            parsed.append(value)
        if dflt is not None and dflt not in parsed:
            report.error(f"{path}.default", f"Invalid value: {policy['default']!r}: must be one of validValues")
    if has_range:
        range_path = f"{path}.validRange"
        valid_range = policy["validRange"]
        if not isinstance(valid_range, dict):
            report.error(range_path, "must be an object")
            return
        for key in set(valid_range) - {"min", "max", "step"}:
            report.error(f"{range_path}.{key}", "unknown field")
        bounds: dict[str, Fraction] = {}
        for key in ("min", "max", "step"):
            if valid_range.get(key) is not None:
                quantity = _quantity(report, valid_range[key], f"{range_path}.{key}")
                if quantity is not None:
                    bounds[key] = number(quantity)
        low, high, step = bounds.get("min"), bounds.get("max"), bounds.get("step")
        if valid_range.get("min") is None:
            report.error(f"{range_path}.min", "Required value")
        if low is not None:
            if cap is not None and low > cap:
                report.error(f"{range_path}.min", "Invalid value: must be less than or equal to the capacity value")
            if dflt is not None and dflt < low:
                report.error(f"{path}.default", "Invalid value: must be greater than or equal to validRange.min")
        if high is not None:
            if low is not None and high < low:
                report.error(f"{range_path}.max", "Invalid value: must be greater than or equal to min")
            if cap is not None and high > cap:
                report.error(f"{range_path}.max", "Invalid value: must be less than or equal to the capacity value")
            if dflt is not None and dflt > high:
                report.error(f"{path}.default", "Invalid value: must be less than or equal to validRange.max")
        if step is not None:
            if step <= 0:
                report.error(f"{range_path}.step", "Invalid value: must be greater than zero")
            elif low is not None:
                if cap is not None and low + step > cap:
                    report.error(f"{range_path}.step", "Invalid value: min + step must be less than or equal to the "
                                 "capacity value")
                if dflt is not None and not _is_multiple(dflt - low, step):
                    report.error(f"{path}.default", "Invalid value: default - min must be a multiple of step")
                if high is not None and not _is_multiple(high - low, step):
                    report.error(f"{range_path}.max", "Invalid value: max - min must be a multiple of step")


def _slice_node_selector(report: Report, selector: Any, path: str, one_term: bool = True) -> None:
    if not isinstance(selector, dict):
        report.error(path, "must be an object")
        return
    terms = selector.get("nodeSelectorTerms") or []
    if not isinstance(terms, list):
        report.error(f"{path}.nodeSelectorTerms", "must be a list")
        return
    if not terms:
        report.error(f"{path}.nodeSelectorTerms", "Required value: must have at least one node selector term")
        return
    for i, term in enumerate(terms):
        term_path = f"{path}.nodeSelectorTerms[{i}]"
        if not isinstance(term, dict):
            report.error(term_path, "must be an object")
            continue
        for j, req in enumerate(term.get("matchExpressions") or []):
            req_path = f"{term_path}.matchExpressions[{j}]"
            operator, values = req.get("operator"), req.get("values") or []
            if operator in ("In", "NotIn"):
                if not values:
                    report.error(f"{req_path}.values", "Required value: must be specified when `operator` is 'In' or "
                                 "'NotIn'")
            elif operator in ("Exists", "DoesNotExist"):
                if values:
                    report.error(f"{req_path}.values", "Forbidden: may not be specified when `operator` is 'Exists' "
                                 "or 'DoesNotExist'")
            elif operator in ("Gt", "Lt"):
                if len(values) != 1:
                    report.error(f"{req_path}.values", "Required value: must be specified single value when "
                                 "`operator` is 'Lt' or 'Gt'")
            else:
                report.error(f"{req_path}.operator", f"Invalid value: {operator!r}: not a valid selector operator")
            report.extend(f"{req_path}.key", label_key_errors(str(req.get("key", ""))))
            for k, value in enumerate(values):
                report.extend(f"{req_path}.values[{k}]", label_value_errors(str(value)))
        for j, req in enumerate(term.get("matchFields") or []):
            req_path = f"{term_path}.matchFields[{j}]"
            values = req.get("values") or []
            if req.get("operator") in ("In", "NotIn"):
                if len(values) != 1:
                    report.error(f"{req_path}.values", "Required value: must be only one value when `operator` is "
                                 "'In' or 'NotIn' for node field selector")
            else:
                report.error(f"{req_path}.operator", f"Invalid value: {req.get('operator')!r}: not a valid selector "
                             "operator")
            if req.get("key") != "metadata.name":
                report.error(f"{req_path}.key", f"Invalid value: {req.get('key')!r}: not a valid field selector key")
            else:
                for k, value in enumerate(values):
                    report.extend(f"{req_path}.values[{k}]", dns_subdomain_errors(str(value), "node name"))
    if one_term and len(terms) != 1:
        report.error(f"{path}.nodeSelectorTerms", "Invalid value: must have exactly one node selector term")


def _scalar(report: Report, kind: str, item: Any, path: str) -> None:
    if kind == "bool":
        if not isinstance(item, bool):
            report.error(path, "must be a boolean")
    elif kind == "int":
        if not isinstance(item, int) or isinstance(item, bool) or not _INT64_MIN <= item <= _INT64_MAX:
            report.error(path, "must be a 64-bit integer")
    elif not isinstance(item, str):
        report.error(path, "must be a string")
    elif kind == "string":
        if len(item.encode("utf-8")) > MAX_STRING_LENGTH:
            report.error(path, f"Too long: may not be more than {MAX_STRING_LENGTH} bytes")
    else:
        report.extend(path, semver_errors(item))


def _slice_attribute(report: Report, value: Any, path: str, version: Version) -> int:
    """One attribute; returns how many values it holds (list items count one each), negated for a list."""
    if not isinstance(value, dict):
        report.error(path, "must be an object")
        return 0
    if len(value) == 1:  # the common case, kept fast: one scalar
        ((key, item),) = value.items()
        if key in _SCALARS:
            _scalar(report, key, item, f"{path}.{key}")
            return 1
    count = values = 0
    listed = False
    scalar = "string" in value or "int" in value or "bool" in value or "version" in value
    for key, item in value.items():
        item_path = f"{path}.{key}"
        if key in _SCALARS:
            count += 1
            values += 1
            _scalar(report, key, item, item_path)
        elif key in _LIST_ATTRIBUTES:
            if not _gated(report, version, item_path, f"devices[].attributes{{}}.{key}", dropped_alone=scalar):
                continue
            count += 1
            if not isinstance(item, list) or not item:
                report.error(item_path, "Required value: must be a non-empty list")
                continue
            values += len(item)
            listed = True
            for j, element in enumerate(item):
                _scalar(report, _LIST_ATTRIBUTES[key], element, f"{item_path}[{j}]")
        else:
            report.error(item_path, "unknown field")
    if count != 1:
        report.error(path, "Invalid value: exactly one value must be specified")
    return -values if listed else values


def _device_node_selection(report: Report, device: dict[str, Any], path: str, per_device: bool) -> None:
    selected = []
    if device.get("nodeName") is not None:
        selected.append("nodeName")
        node_name = device["nodeName"]
        if not isinstance(node_name, str) or not node_name:
            report.error(f"{path}.nodeName", "Invalid value: must be either unset or set to a non-empty string")
        else:
            report.extend(f"{path}.nodeName", dns_subdomain_errors(node_name, "node name"))
    if device.get("nodeSelector") is not None:
        selected.append("nodeSelector")
        _slice_node_selector(report, device["nodeSelector"], f"{path}.nodeSelector", one_term=False)
    if device.get("allNodes") is not None:
        if device["allNodes"] is True:
            selected.append("allNodes")
        else:
            report.error(f"{path}.allNodes", "Invalid value: must be either unset or set to true")
    if not per_device:
        for key in selected:
            report.error(f"{path}.{key}", "Forbidden: only allowed when the ResourceSlice has "
                         "`perDeviceNodeSelection: true`")
    elif not selected:
        report.error(path, "Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes` is required when "
                     "`perDeviceNodeSelection` is set")
    elif len(selected) > 1:
        report.error(path, f"Invalid value: {{{', '.join(selected)}}}: exactly one of `nodeName`, `nodeSelector`, "
                     "`allNodes` is required, but multiple fields are set")


def _positive(report: Report, value: Any, path: str, allow_zero: bool = False) -> None:
    quantity = _quantity(report, value, path)
    if quantity is not None and (quantity.unscaled < 0 or quantity.unscaled == 0 and not allow_zero):
        report.error(path, f"Invalid value: {value!r}: must be {'non-negative' if allow_zero else 'positive'}")


def _node_allocatable(report: Report, resources: Any, capacity: Any, path: str) -> None:
    """``devices[].nodeAllocatableResources`` (1.37 shape)."""
    if not isinstance(resources, dict):
        report.error(path, "must be an object")
        return
    capacities = capacity if isinstance(capacity, dict) else {}
    for name, entry in resources.items():
        key_path = f"{path}[{name}]"
        if not (name in ("cpu", "memory") or str(name).startswith("hugepages-")):
            report.error(key_path, f"Invalid value: {name!r}: must be a node allocatable resource name")
        if not isinstance(entry, dict):
            report.error(key_path, "must be an object")
            continue
        for key in set(entry) - {"mapping", "overhead"}:
            report.error(f"{key_path}.{key}", "unknown field")
        mapping, overhead = entry.get("mapping"), entry.get("overhead")
        if mapping is None and overhead is None:
            report.error(key_path, "Required value: at least one of mapping or overhead must be set")
        if isinstance(mapping, dict):
            mapping_path = f"{key_path}.mapping"
            for key in set(mapping) - {"capacityKey", "capacityMultiplier", "deviceMultiplier"}:
                report.error(f"{mapping_path}.{key}", "unknown field")
            capacity_key = mapping.get("capacityKey")
            if (capacity_key is None) == (mapping.get("deviceMultiplier") is None):
                report.error(mapping_path, "Invalid value: must specify exactly one of: `capacityKey`, "
                             "`deviceMultiplier`")
            if capacity_key is not None:
                if capacity_key not in capacities:
                    report.error(f"{mapping_path}.capacityKey", f"Not found: {capacity_key!r}")
                if mapping.get("capacityMultiplier") is None:
                    report.error(f"{mapping_path}.capacityMultiplier", "Required value: capacityMultiplier is "
                                 "required when capacityKey is set")
            elif mapping.get("capacityMultiplier") is not None:
                report.error(f"{mapping_path}.capacityKey", "Required value: capacityKey is required when "
                             "capacityMultiplier is set")
            for key in ("capacityMultiplier", "deviceMultiplier"):
                if mapping.get(key) is not None:
                    _positive(report, mapping[key], f"{mapping_path}.{key}")
        elif mapping is not None:
            report.error(f"{key_path}.mapping", "must be an object")
        if isinstance(overhead, dict):
            overhead_path = f"{key_path}.overhead"
            for key in set(overhead) - {"perPod", "perContainer"}:
                report.error(f"{overhead_path}.{key}", "unknown field")
            if overhead.get("perPod") is None and overhead.get("perContainer") is None:
                report.error(overhead_path, "Invalid value: at least one of perPod or perContainer must be set")
            for key in ("perPod", "perContainer"):
                if overhead.get(key) is not None:
                    _positive(report, overhead[key], f"{overhead_path}.{key}", allow_zero=True)
        elif overhead is not None:
            report.error(f"{key_path}.overhead", "must be an object")


def _skip_node_operations(report: Report, operations: Any) -> None:
    path = "spec.skipNodeOperations"
    if not isinstance(operations, list):
        report.error(path, "must be a list")
        return
    for j, operation in enumerate(operations):
        if operation not in _SKIP_NODE_OPERATIONS:
            report.error(f"{path}[{j}]", f"Unsupported value: {operation!r}: supported values: "
                         + ", ".join(f'"{o}"' for o in _SKIP_NODE_OPERATIONS))
        elif operation in operations[:j]:
            report.error(f"{path}[{j}]", f"Duplicate value: {operation!r}")
    if "NodePrepareResources" in operations and not {"NodeUnprepareResources", "*"} & set(operations):
        report.error(path, "Invalid value: NodePrepareResources cannot be skipped unless NodeUnprepareResources is "
                     "also skipped")


def _partition_type_attribute(report: Report, spec: dict[str, Any]) -> None:
    path = "spec.partitionTypeAttribute"
    name = spec["partitionTypeAttribute"]
    devices = spec.get("devices")
    consumers = [(i, d) for i, d in enumerate(devices if isinstance(devices, list) else [])
                 if isinstance(d, dict) and d.get("consumesCounters")]
    if not consumers:
        report.error(path, f"Invalid value: {name!r}: may only be set on a slice which declares devices that consume "
                     "counters")
        return
    if not isinstance(name, str) or "/" not in name or qualified_name_errors(name):
        report.error(path, f"Invalid value: {name!r}: must be a fully qualified name (<domain>/<name>)")
        return
    driver = spec.get("driver")
    bare = name[len(driver) + 1:] if isinstance(driver, str) and name.startswith(f"{driver}/") else ""
    for i, device in consumers:
        found = device.get("attributes")
        attributes: dict[str, Any] = found if isinstance(found, dict) else {}
        attribute = attributes.get(name, attributes.get(bare) if bare else None)
        attribute_path = f"spec.devices[{i}].attributes[{name}]"
        if attribute is None:
            report.error(attribute_path, "Required value: device consumes counters and `partitionTypeAttribute` "
                         "names this attribute, so it must be set")
        elif not isinstance(attribute, dict) or attribute.get("string") is None:
            report.error(attribute_path, "Invalid value: must be a string value because `partitionTypeAttribute` "
                         "names this attribute")


def _slice_device(report: Report, device: Any, path: str, version: Version, per_device: bool,
                  local_sets: dict[str, set[str]]) -> tuple[bool, int]:
    """One device; returns (uses a feature that lowers the devices-per-slice limit, counters consumed)."""
    if not isinstance(device, dict):
        report.error(path, "must be an object")
        return False, 0
    advanced, consumed = False, 0
    kept: set[str] = set()
    for key in device:
        if key not in _DEVICE_FIELDS:
            report.error(f"{path}.{key}", "unknown field")
        elif key not in ("name", "attributes", "capacity"):
            if _gated(report, version, f"{path}.{key}", f"devices[].{key}"):
                kept.add(key)
    name = device.get("name")
    report.extend(f"{path}.name", dns_label_errors(name if isinstance(name, str) else "", "device name"))
    if "taints" in kept:
        _taints(report, device["taints"], f"{path}.taints", version)
        advanced = advanced or bool(device["taints"])
    if "consumesCounters" in kept:
        consumed = _consumes_counters(report, device["consumesCounters"], f"{path}.consumesCounters", version,
                                      local_sets)
        advanced = advanced or bool(device["consumesCounters"])
    if kept and not kept.isdisjoint(_BINDING_FIELDS):
        _binding(report, device, path)
    if "allowMultipleAllocations" in kept and not isinstance(device["allowMultipleAllocations"], bool):
        report.error(f"{path}.allowMultipleAllocations", "must be a boolean")
    if "nodeAllocatableResources" in kept:
        if version.minor == 36:  # the gate exists, the field does not: 1.36 had nodeAllocatableResourceMappings
            _dropped(report, f"{path}.nodeAllocatableResources", "devices[].nodeAllocatableResources",
                     "this field: a Kubernetes 1.36 apiserver knows only the older shape "
                     "nodeAllocatableResourceMappings (DRANodeAllocatableResources, alpha), which dra-kwok does not "
                     "publish; nodeAllocatableResources needs Kubernetes 1.37+ with that gate")
        else:
            _node_allocatable(report, device["nodeAllocatableResources"], device.get("capacity"),
                              f"{path}.nodeAllocatableResources")
    if (per_device or "nodeName" in device or "nodeSelector" in device or "allNodes" in device) \
            and version.on("DRAPartitionableDevices"):
        _device_node_selection(report, device, path, per_device)
    attributes = device.get("attributes") or {}
    capacity = device.get("capacity") or {}
    if not isinstance(attributes, dict) or not isinstance(capacity, dict):
        report.error(path, "attributes and capacity must be objects")
        return advanced, consumed
    if len(attributes) + len(capacity) > MAX_ATTRIBUTES_AND_CAPACITIES:
        report.error(path, f"Invalid value: {len(attributes) + len(capacity)}: the total number of attributes and "
                     f"capacities must not exceed {MAX_ATTRIBUTES_AND_CAPACITIES}")
    values = 0
    for key, value in attributes.items():
        key_path = f"{path}.attributes[{key}]"
        report.extend(f"{path}.attributes", qualified_name_errors(str(key)))
        held = _slice_attribute(report, value, key_path, version)
        if held < 0:  # a list-type attribute
            held, advanced = -held, advanced or version.minor >= 36
        values += held
    if version.minor >= 36 and values > _MAX_ATTRIBUTE_VALUES:
        report.error(f"{path}.attributes", f"Too many: {values}: the total number of attribute values (each list "
                     f"item counted) must not exceed {_MAX_ATTRIBUTE_VALUES}")
    multiple = device.get("allowMultipleAllocations") is True and "allowMultipleAllocations" in kept
    for key, value in capacity.items():
        key_path = f"{path}.capacity[{key}]"
        report.extend(f"{path}.capacity", qualified_name_errors(str(key)))
        if not isinstance(value, dict):
            report.error(key_path, "must be an object")
            continue
        for field_name in value:
            if field_name not in ("value", "requestPolicy"):
                report.error(f"{key_path}.{field_name}", "unknown field")
        quantity = _quantity(report, value.get("value"), f"{key_path}.value")
        if "requestPolicy" in value and _gated(report, version, f"{key_path}.requestPolicy",
                                               "devices[].capacity{}.requestPolicy"):
            if not multiple:
                report.error(f"{key_path}.requestPolicy", "Forbidden: allowMultipleAllocations must be true")
            else:
                _request_policy(report, value["requestPolicy"], quantity, f"{key_path}.requestPolicy", version)
    return advanced, consumed


def validate_slice(body: dict[str, Any], version: Version = DEFAULT) -> list[FieldError]:
    """The create-time validation of a ResourceSlice body by a kube-apiserver ``version`` (minor and feature gates;
    default: the newest, 1.37 with its default gates), paths as the apiserver reports them.

    Beyond the apiserver it also refuses fields that this apiserver would silently drop for a gate that is off (the
    message names the gate and since when it is on by default), and unknown fields — a renderer bug, not something
    to send.
    """
    report = Report()
    if not isinstance(body, dict):
        return [FieldError("<object>", "expected a ResourceSlice object")]
    if body.get("apiVersion") != "resource.k8s.io/v1":
        report.error("apiVersion", f"expected resource.k8s.io/v1, got {body.get('apiVersion')!r}")
    if body.get("kind") != "ResourceSlice":
        report.error("kind", f"expected ResourceSlice, got {body.get('kind')!r}")

    metadata = body.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        report.error("metadata.name", "Required value: name or generateName is required")
    else:
        report.extend("metadata.name", dns_subdomain_errors(str(name), "name"))
    labels = metadata.get("labels") or {}
    for key, value in labels.items():
        report.extend("metadata.labels", label_key_errors(str(key)))
        report.extend("metadata.labels", label_value_errors(str(value)) if isinstance(value, str)
                      else ["label values must be strings"])
    controllers = 0
    for i, owner in enumerate(metadata.get("ownerReferences") or []):
        owner_path = f"metadata.ownerReferences[{i}]"
        for field_name in ("apiVersion", "kind", "name", "uid"):
            if not owner.get(field_name):
                report.error(f"{owner_path}.{field_name}", "Required value")
        controllers += 1 if owner.get("controller") is True else 0
    if controllers > 1:
        report.error("metadata.ownerReferences", "Invalid value: Only one reference can have Controller set to true")

    spec = body.get("spec")
    if not isinstance(spec, dict):
        report.error("spec", "Required value")
        return report.items
    kept = set()
    for key in spec:
        if key not in _SPEC_FIELDS:
            report.error(f"spec.{key}", "unknown field")
        elif key in _GATED_SPEC_FIELDS:
            # perDeviceNodeSelection dropped next to another node selection leaves a valid slice: a silent drop
            other_selection = any(spec.get(k) is not None for k in ("nodeName", "nodeSelector", "allNodes"))
            if _gated(report, version, f"spec.{key}", key,
                      dropped_alone=key == "perDeviceNodeSelection" and other_selection):
                kept.add(key)
    if "skipNodeOperations" in kept:
        _skip_node_operations(report, spec["skipNodeOperations"])
    if "partitionTypeAttribute" in kept and spec["partitionTypeAttribute"] is not None:
        _partition_type_attribute(report, spec)
    driver = spec.get("driver")
    report.extend("spec.driver", driver_name_errors(driver if isinstance(driver, str) else "", apiserver=True))

    pool = given if isinstance(given := spec.get("pool"), dict) else {}
    pool_name = pool.get("name")
    report.extend("spec.pool.name", pool_name_errors(pool_name if isinstance(pool_name, str) else ""))
    count = pool.get("resourceSliceCount", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        report.error("spec.pool.resourceSliceCount", f"Invalid value: {count!r}: must be greater than zero")
    generation = pool.get("generation", 0)
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        report.error("spec.pool.generation", f"Invalid value: {generation!r}: must be greater than or equal to zero")

    selected = []
    if "nodeName" in spec and spec["nodeName"] is not None:
        node_name = spec["nodeName"]
        if node_name == "" or not isinstance(node_name, str):
            report.error("spec.nodeName", "Invalid value: must be either unset or set to a non-empty string")
        else:
            selected.append("nodeName")
            report.extend("spec.nodeName", dns_subdomain_errors(node_name, "node name"))
    if spec.get("nodeSelector") is not None:
        selected.append("nodeSelector")
        _slice_node_selector(report, spec["nodeSelector"], "spec.nodeSelector")
    if spec.get("allNodes") is not None:
        if spec["allNodes"] is True:
            selected.append("allNodes")
        else:
            report.error("spec.allNodes", "Invalid value: must be either unset or set to true")
    if spec.get("perDeviceNodeSelection") is not None and "perDeviceNodeSelection" in kept:
        if spec["perDeviceNodeSelection"] is True:
            selected.append("perDeviceNodeSelection")
        else:
            report.error("spec.perDeviceNodeSelection", "Invalid value: must be either unset or set to true")
    if not selected:
        report.error("spec", "Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, "
                     "`perDeviceNodeSelection` is required")
    elif len(selected) > 1:
        report.error("spec", f"Invalid value: {{{', '.join(selected)}}}: exactly one of `nodeName`, `nodeSelector`, "
                     "`allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set")
    local_sets: dict[str, set[str]] = {}
    if "sharedCounters" in kept and spec["sharedCounters"] is not None:
        if version.minor >= 35 and spec["sharedCounters"] and spec.get("devices"):
            report.error("spec", "Invalid value: only one of `sharedCounters` or `devices` is allowed")
        local_sets = _shared_counters(report, spec["sharedCounters"], version)

    devices = spec.get("devices") or []
    if not isinstance(devices, list):
        report.error("spec.devices", "must be a list")
        return report.items
    if len(devices) > MAX_DEVICES_PER_SLICE:
        report.error("spec.devices", f"Too many: {len(devices)}: must have at most {MAX_DEVICES_PER_SLICE} items")
        return report.items
    per_device = spec.get("perDeviceNodeSelection") is True and "perDeviceNodeSelection" in kept
    seen: set[str] = set()
    advanced, consumed = False, 0
    for i, device in enumerate(devices):
        device_advanced, device_consumed = _slice_device(report, device, f"spec.devices[{i}]", version, per_device,
                                                         local_sets)
        advanced, consumed = advanced or device_advanced, consumed + device_consumed
        device_name = device.get("name") if isinstance(device, dict) else None
        if isinstance(device_name, str):
            if device_name in seen:
                report.error(f"spec.devices[{i}]", f"Duplicate value: {device_name!r}")
            seen.add(device_name)
    if advanced and version.minor >= 35 and len(devices) > _MAX_DEVICES_ADVANCED:
        report.error("spec.devices", f"Too many: {len(devices)}: must have at most {_MAX_DEVICES_ADVANCED} items when "
                     "devices use taints, consumesCounters" + (" or list-type attributes" if version.minor >= 36 else ""))
    if version.minor < 35 and consumed > _MAX_CONSUMED_PER_SLICE_134:
        report.error("spec.devices", f"Too many: {consumed}: the total number of counters consumed by the devices "
                     f"of a slice must not exceed {_MAX_CONSUMED_PER_SLICE_134}")
    return report.items
