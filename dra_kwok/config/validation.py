"""Rules a loaded :class:`~dra_kwok.config.types.Config` must satisfy, and the apiserver's ResourceSlice rules.

Why validate at all when the apiserver does: the apiserver sees one rendered slice at a time, long after the
config was accepted, and answers with paths into a slice the user never wrote.  :func:`validate` checks the
config *before* anything is rendered, reports **all** problems at once with paths into the config
(``mappings[1].resourceSlice.devices[3].name``) and messages that say what is allowed and how to fix it, and
also checks what the apiserver cannot see: device names unique across the slices of a pool (the apiserver
checks one slice, the scheduler rejects the pool), mappings that share a pool, ``{{placeholders}}``,
``resourceSliceCount`` big enough for the devices, and fields the apiserver would silently drop.

Lengths that depend on the node (``<node>/<pool.name>`` ≤ 253, ``{{node}}`` in a ≤ 64 character string) are
checked for a node name of :data:`~dra_kwok.config.formats.ASSUMED_NODE_NAME_LENGTH` (63) characters — what
kubelet, KWOK and Karpenter produce; checking for Kubernetes' 253 would forbid every node-local pool (253 + '/'
leaves no room).  The renderer shortens longer node names, so rendering stays valid for them too.

Finally, as a safety net, :func:`validate` renders every pool the config can produce (for a 63-character
node) and runs :func:`validate_slice` — the apiserver's ResourceSlice validation, ported from
``pkg/apis/resource/validation`` — over each body.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from dra_kwok.config.errors import FieldError, errors_only
from dra_kwok.config.formats import (
    ASSUMED_NODE_NAME_LENGTH,
    Placeholder,
    TemplateError,
    dns_label_errors,
    dns_subdomain_errors,
    driver_name_errors,
    label_key_errors,
    label_value_errors,
    parse_int64,
    parse_template,
    pool_name_errors,
    qualified_name_errors,
    semver_errors,
    template_max_length,
)
from dra_kwok.config.quantity import QuantityError, parse_quantity, suggest_quantity
from dra_kwok.config.types import (
    AttributeValue,
    Config,
    DeviceTemplate,
    Mapping,
    NodeSelectorRequirement,
    NodeSelectorTerm,
)

__all__ = [
    "FieldError",
    "MAX_ATTRIBUTES_AND_CAPACITIES",
    "MAX_COUNT",
    "MAX_DEVICES_PER_SLICE",
    "MAX_SLICES_PER_POOL",
    "MAX_STRING_LENGTH",
    "validate",
    "validate_slice",
]

MAX_DEVICES_PER_SLICE = 128
MAX_ATTRIBUTES_AND_CAPACITIES = 32
MAX_STRING_LENGTH = 64
MAX_COUNT = 100_000
MAX_SLICES_PER_POOL = 1000
MAX_POOL_NAME_LENGTH = 253
MAX_LOCAL_POOL_NAME_LENGTH = MAX_POOL_NAME_LENGTH - ASSUMED_NODE_NAME_LENGTH - 1  # room for "<node>/"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_EXAMPLE_NODE = "n" * ASSUMED_NODE_NAME_LENGTH
_EXAMPLE_UID = "00000000-0000-4000-8000-000000000000"


class _Report:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.items.append(FieldError(path, message, "error"))

    def warning(self, path: str, message: str) -> None:
        self.items.append(FieldError(path, message, "warning"))

    def extend(self, path: str, messages: Iterable[str]) -> None:
        for message in messages:
            self.error(path, message)


# ------------------------------------------------------------------------------------------------------
# Config rules.


def _check_requirement(report: _Report, requirement: NodeSelectorRequirement, path: str) -> None:
    operator, values = requirement.operator, requirement.values
    report.extend(f"{path}.key", label_key_errors(requirement.key))
    if operator not in _OPERATORS:
        report.error(f"{path}.operator", f"unsupported operator {operator!r}; use one of {', '.join(_OPERATORS)}")
        return
    if operator in ("In", "NotIn"):
        if not values:
            report.error(f"{path}.values", f"operator {operator} needs at least one value")
        for i, value in enumerate(values):
            report.extend(f"{path}.values[{i}]", label_value_errors(value))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            report.error(f"{path}.values", f"operator {operator} takes no values; remove them")
    else:
        if len(values) != 1:
            report.error(f"{path}.values", f"operator {operator} needs exactly one value, an integer")
        elif parse_int64(values[0]) is None:
            report.error(f"{path}.values[0]", f"operator {operator} compares integers; {values[0]!r} is not a "
                         "(64-bit) integer, so this requirement would never match")
        elif label_value_errors(values[0]):
            report.error(f"{path}.values[0]", f"{values[0]!r} is not a valid label value (it must start and end "
                         f"with a letter or digit), so Kubernetes refuses it even for {operator}; negative or "
                         "signed bounds cannot be expressed")


def _check_field_requirement(report: _Report, requirement: NodeSelectorRequirement, path: str) -> None:
    if requirement.key != "metadata.name":
        report.error(f"{path}.key", f"unsupported field {requirement.key!r}: matchFields supports only "
                     "metadata.name (the node name)")
    if requirement.operator not in ("In", "NotIn"):
        report.error(f"{path}.operator", f"unsupported operator {requirement.operator!r}: matchFields supports In "
                     "and NotIn")
    if len(requirement.values) != 1:
        report.error(f"{path}.values", "matchFields needs exactly one value (a node name); to match several "
                     "nodes, use one term per node")
    for i, value in enumerate(requirement.values):
        report.extend(f"{path}.values[{i}]", dns_subdomain_errors(value, "node name"))


def _check_term(report: _Report, term: NodeSelectorTerm, path: str) -> None:
    if not term.match_expressions and not term.match_fields:
        report.error(path, "empty term: it matches no node (Kubernetes semantics); add matchExpressions or "
                     "matchFields, or delete the term")
    for i, requirement in enumerate(term.match_expressions):
        _check_requirement(report, requirement, f"{path}.matchExpressions[{i}]")
    for i, requirement in enumerate(term.match_fields):
        _check_field_requirement(report, requirement, f"{path}.matchFields[{i}]")


def _check_attribute(
    report: _Report, value: AttributeValue, path: str, device: DeviceTemplate, cluster_wide: bool
) -> None:
    items = value.items()
    if not items:
        report.error(path, "no value: set exactly one of string, int, bool, version")
        return
    if len(items) > 1:
        report.error(path, f"{len(items)} values ({', '.join(k for k, _ in items)}): set exactly one of string, "
                     "int, bool, version")
    for key, item in items:
        item_path = f"{path}.{key}"
        if key == "int":
            if not isinstance(item, int) or isinstance(item, bool):
                report.error(item_path, f"expected an integer, got {type(item).__name__}")
            elif not _INT64_MIN <= item <= _INT64_MAX:
                report.error(item_path, f"{item} does not fit in 64 bits")
        elif key == "bool":
            if not isinstance(item, bool):
                report.error(item_path, f"expected true or false, got {type(item).__name__}")
        elif not isinstance(item, str):
            report.error(item_path, f"expected a string, got {type(item).__name__}")
        elif key == "version":
            report.extend(item_path, semver_errors(item))
        else:
            _check_string(report, item, item_path, device, cluster_wide)


def _check_string(report: _Report, text: str, path: str, device: DeviceTemplate, cluster_wide: bool) -> None:
    try:
        parts = parse_template(text)
    except TemplateError as exc:
        report.error(path, str(exc))
        return
    if cluster_wide and any(isinstance(p, Placeholder) and p.name == "node" for p in parts):
        report.error(path, "{{node}} is only available in node-local pools; this pool is cluster-wide")
    count = device.count if isinstance(device.count, int) and device.count > 0 else None
    last = f"{device.name}-{count - 1}" if count else device.name
    longest = template_max_length(parts, len(last), len(str(count - 1)) if count else 1)
    if longest > MAX_STRING_LENGTH:
        if any(isinstance(p, Placeholder) for p in parts):
            report.error(path, f"string attributes are at most {MAX_STRING_LENGTH} bytes; with placeholders "
                         f"expanded this one can reach {longest} (counting {{{{node}}}} as "
                         f"{ASSUMED_NODE_NAME_LENGTH}); shorten it")
        else:
            report.error(path, f"string is {longest} bytes; string attributes are at most {MAX_STRING_LENGTH} "
                         "bytes (UTF-8); shorten it")


def _check_capacity_value(report: _Report, text: Any, path: str) -> None:
    if not isinstance(text, str):
        report.error(path, f"expected a quantity string, got {type(text).__name__}")
        return
    try:
        parse_quantity(text)
    except QuantityError as exc:
        suggestions = suggest_quantity(text)
        hint = ""
        if suggestions:
            hint = "; use " + " or ".join(repr(s) for s in suggestions)
            if text.rstrip().endswith(("B", "b")):
                hint = "; Kubernetes quantities have no 'B' (bytes) unit" + hint
        report.error(path, f"invalid quantity {text!r} ({exc}){hint}")


def _check_device(report: _Report, device: DeviceTemplate, path: str, cluster_wide: bool, driver: str) -> None:
    count = device.count
    if count is not None:
        if not isinstance(count, int) or isinstance(count, bool):
            report.error(f"{path}.count", "expected an integer")
            count = None
        elif not 1 <= count <= MAX_COUNT:
            report.error(f"{path}.count", f"count is {count}; it must be between 1 and {MAX_COUNT} (omit it for "
                         "a single device named exactly as written)")
            count = None
    name_errors = dns_label_errors(device.name, "device name")
    if name_errors:
        report.extend(f"{path}.name", name_errors)
    elif count is not None:
        last = f"{device.name}-{count - 1}"
        if len(last) > 63:
            allowed = 63 - len(str(count - 1)) - 1
            report.error(f"{path}.name", f"with count {count} the last device is named {last!r} ({len(last)} "
                         f"characters) but device names are DNS labels of at most 63; shorten the name to at most "
                         f"{allowed} characters")
    for key, value in device.attributes.items():
        key_path = f"{path}.attributes[{key}]"
        report.extend(key_path, (f"invalid attribute name: {m}" for m in qualified_name_errors(key)))
        _check_attribute(report, value, key_path, device, cluster_wide)
    for key, capacity in device.capacity.items():
        key_path = f"{path}.capacity[{key}]"
        report.extend(key_path, (f"invalid capacity name: {m}" for m in qualified_name_errors(key)))
        _check_capacity_value(report, capacity.value, f"{key_path}.value")
    if driver:
        for kind, names in (("attributes", device.attributes), ("capacity", device.capacity)):
            for key in names:
                if key.startswith(f"{driver}/") and key[len(driver) + 1 :] in names:
                    report.warning(f"{path}.{kind}[{key}]", f"{key!r} and {key[len(driver) + 1:]!r} name the same "
                                   f"entry: names without a domain are in the driver's domain ({driver}); keep one")
    total = len(device.attributes) + len(device.capacity)
    if total > MAX_ATTRIBUTES_AND_CAPACITIES:
        report.error(path, f"{len(device.attributes)} attributes + {len(device.capacity)} capacities = {total}; "
                     f"a device may have at most {MAX_ATTRIBUTES_AND_CAPACITIES} in total")
    if not device.attributes:
        report.warning(f"{path}.attributes", "device has no attributes; DeviceClass selectors usually match on "
                       "attributes, e.g. type: {string: gpu}")


def _device_total(mapping: Mapping) -> int:
    total = 0
    for device in mapping.resource_slice.devices:
        count = device.count if isinstance(device.count, int) and not isinstance(device.count, bool) else 1
        total += max(0, count) if device.count is not None else 1
    return total


def _check_mapping(report: _Report, config: Config, mapping: Mapping, path: str) -> None:
    report.extend(f"{path}.name", dns_label_errors(mapping.name, "mapping name"))
    if not mapping.node_selector_terms:
        report.warning(f"{path}.nodeSelectorTerms", "no terms: this mapping can never match a node; add a term, "
                       "e.g. {matchExpressions: [{key: type, operator: In, values: [kwok]}]}")
    for i, term in enumerate(mapping.node_selector_terms):
        _check_term(report, term, f"{path}.nodeSelectorTerms[{i}]")

    template = mapping.resource_slice
    slice_path = f"{path}.resourceSlice"
    if template.driver == "":
        report.error(f"{slice_path}.driver", "empty; remove it to publish under the top-level driver")
    elif template.driver is not None:
        report.extend(f"{slice_path}.driver", driver_name_errors(template.driver))

    cluster_wide = template.cluster_wide
    pool_path = f"{slice_path}.pool.name"
    pool_problems = pool_name_errors(template.pool.name)
    report.extend(pool_path, pool_problems)
    if not cluster_wide and not pool_problems and len(template.pool.name) > MAX_LOCAL_POOL_NAME_LENGTH:
        report.error(pool_path, f"pool name is {len(template.pool.name)} characters; node-local pools are published "
                     f"as <node>/<name>, which must stay within {MAX_POOL_NAME_LENGTH} characters for a "
                     f"{ASSUMED_NODE_NAME_LENGTH}-character node name, so at most {MAX_LOCAL_POOL_NAME_LENGTH} "
                     "are allowed")
    slice_count = template.pool.resource_slice_count
    if slice_count is not None and (isinstance(slice_count, bool) or not 1 <= slice_count <= MAX_SLICES_PER_POOL):
        report.error(f"{slice_path}.pool.resourceSliceCount", f"resourceSliceCount is {slice_count}; it must be "
                     f"between 1 and {MAX_SLICES_PER_POOL} (omit it to use as few slices as the devices need)")

    if template.all_nodes and template.node_selector is not None:
        report.error(slice_path, "both allNodes and nodeSelector are set; a ResourceSlice has exactly one node "
                     "selection: keep allNodes: true (every node) or nodeSelector (matching nodes), or neither "
                     "(one pool per matching node)")
    if template.node_selector is not None:
        terms = template.node_selector.node_selector_terms
        terms_path = f"{slice_path}.nodeSelector.nodeSelectorTerms"
        if len(terms) != 1:
            report.error(terms_path, f"{len(terms)} terms; a ResourceSlice node selector must have exactly one "
                         "term (put all requirements in it; to OR, use several mappings)")
        for i, term in enumerate(terms):
            _check_term(report, term, f"{terms_path}[{i}]")

    for i, device in enumerate(template.devices):
        _check_device(report, device, f"{slice_path}.devices[{i}]", cluster_wide, config.slice_driver(mapping))


def _check_pools(report: _Report, config: Config) -> None:
    """Rules across mappings: shared pools, unique device names, enough slices."""
    groups: dict[tuple[bool, str, str], list[int]] = {}
    for i, mapping in enumerate(config.mappings):
        key = (mapping.resource_slice.cluster_wide, config.slice_driver(mapping), mapping.resource_slice.pool.name)
        groups.setdefault(key, []).append(i)

    for (cluster_wide, driver, pool), members in groups.items():
        if cluster_wide and len(members) > 1:
            for i in members[1:]:
                report.error(f"mappings[{i}].resourceSlice.pool.name",
                             f"cluster-wide pool {pool!r} of driver {driver!r} is also published by "
                             f"mappings[{members[0]}]; give each cluster-wide pool its own name (or merge the "
                             "mappings)")
            continue
        counts = {
            i: config.mappings[i].resource_slice.pool.resource_slice_count
            for i in members
            if config.mappings[i].resource_slice.pool.resource_slice_count is not None
        }
        if len(set(counts.values())) > 1:
            first = next(iter(counts))
            for i, value in counts.items():
                if value != counts[first]:
                    report.error(f"mappings[{i}].resourceSlice.pool.resourceSliceCount",
                                 f"{value} differs from {counts[first]} in mappings[{first}], which publishes the "
                                 f"same pool {pool!r} (mappings sharing driver and pool name form one pool per "
                                 "node); set it in one of them only")
        total = sum(_device_total(config.mappings[i]) for i in members)
        requested = next(iter(counts.values()), None)
        where = f"mappings[{members[-1]}].resourceSlice" if len(members) > 1 else f"mappings[{members[0]}].resourceSlice"
        shared = f" (together with mappings {', '.join(str(i) for i in members[:-1])})" if len(members) > 1 else ""
        if total > MAX_DEVICES_PER_SLICE * MAX_SLICES_PER_POOL:
            report.error(f"{where}.devices", f"pool {pool!r} has {total} devices{shared}; at most "
                         f"{MAX_DEVICES_PER_SLICE * MAX_SLICES_PER_POOL} ({MAX_SLICES_PER_POOL} slices of "
                         f"{MAX_DEVICES_PER_SLICE}) are supported")
        elif isinstance(requested, int) and 1 <= requested <= MAX_SLICES_PER_POOL:
            needed = max(1, math.ceil(total / MAX_DEVICES_PER_SLICE))
            if needed > requested:
                report.error(f"{where}.pool.resourceSliceCount",
                             f"{requested} slice{'s' if requested != 1 else ''} cannot hold the pool's {total} "
                             f"devices{shared}: a slice holds at most {MAX_DEVICES_PER_SLICE}; set at least "
                             f"{needed}, or omit it")
        if total > MAX_DEVICES_PER_SLICE * MAX_SLICES_PER_POOL:
            continue
        seen: dict[str, str] = {}
        for i in members:
            for d, device in enumerate(config.mappings[i].resource_slice.devices):
                count = device.count
                if count is not None and (not isinstance(count, int) or not 1 <= count <= MAX_COUNT):
                    continue
                names = [device.name] if count is None else [f"{device.name}-{n}" for n in range(count)]
                device_path = f"mappings[{i}].resourceSlice.devices[{d}].name"
                for name in names:
                    if name in seen:
                        report.error(device_path, f"device name {name!r} is used twice in pool {pool!r} (also by "
                                     f"{seen[name]}); device names must be unique within a pool (mappings sharing "
                                     "driver and pool name form one pool per node)")
                        break
                    seen[name] = device_path


def _check_rendered(report: _Report, config: Config) -> None:
    from dra_kwok.slices.render import NodeInfo, render_all_groups  # late: the renderer imports this module

    node = NodeInfo(_EXAMPLE_NODE, _EXAMPLE_UID, {})
    indexes = {id(m): i for i, m in enumerate(config.mappings)}
    for mapping, pool in render_all_groups(config, node):
        path = f"mappings[{indexes[id(mapping)]}].resourceSlice"
        for body in pool.slices:
            for problem in errors_only(validate_slice(body)):
                report.error(path, f"the rendered ResourceSlice would be rejected by the apiserver: {problem}")


def validate(config: Config) -> list[FieldError]:
    """Every error and warning in ``config``; it is valid when no item has ``severity == "error"``."""
    report = _Report()
    report.extend("driver", driver_name_errors(config.driver))
    if not config.mappings:
        report.error("mappings", "at least one mapping is required")
    names: dict[str, int] = {}
    for i, mapping in enumerate(config.mappings):
        path = f"mappings[{i}]"
        _check_mapping(report, config, mapping, path)
        if mapping.name in names:
            report.error(f"{path}.name", f"duplicate mapping name {mapping.name!r} (also mappings[{names[mapping.name]}]); "
                         "mapping names must be unique")
        else:
            names[mapping.name] = i
    _check_pools(report, config)
    total = sum(d.count or 1 for m in config.mappings for d in m.resource_slice.devices
                if isinstance(d.count or 1, int))
    if total > MAX_COUNT and not errors_only(report.items):
        # bounds the work (and memory) that rendering this config costs the driver on every node
        report.error("mappings", f"the mappings publish {total} devices in all; at most {MAX_COUNT} are allowed "
                     "(a node, and the driver, must be able to hold them): lower the counts")
    if not errors_only(report.items):
        _check_rendered(report, config)
    return report.items


# ------------------------------------------------------------------------------------------------------
# The apiserver's ResourceSlice validation (resource.k8s.io/v1, as of 1.34-1.37), for rendered bodies.

_SPEC_FIELDS = {"driver", "pool", "nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection", "devices",
                "sharedCounters"}
_DEVICE_FIELDS = {"name", "attributes", "capacity", "consumesCounters", "nodeName", "nodeSelector", "allNodes",
                  "taints", "bindsToNode", "bindingConditions", "bindingFailureConditions",
                  "allowMultipleAllocations"}
_ALPHA_SPEC = {"sharedCounters", "perDeviceNodeSelection"}
_ALPHA_DEVICE = {"consumesCounters", "nodeName", "nodeSelector", "allNodes", "taints", "bindsToNode",
                 "bindingConditions", "bindingFailureConditions", "allowMultipleAllocations"}


def _slice_node_selector(report: _Report, selector: Any, path: str) -> None:
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
    if len(terms) != 1:
        report.error(f"{path}.nodeSelectorTerms", "Invalid value: must have exactly one node selector term")


def _slice_attribute(report: _Report, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        report.error(path, "must be an object")
        return
    count = 0
    for key, item in value.items():
        item_path = f"{path}.{key}"
        if key == "bool":
            count += 1
            if not isinstance(item, bool):
                report.error(item_path, "must be a boolean")
        elif key == "int":
            count += 1
            if not isinstance(item, int) or isinstance(item, bool) or not _INT64_MIN <= item <= _INT64_MAX:
                report.error(item_path, "must be a 64-bit integer")
        elif key == "string":
            count += 1
            if not isinstance(item, str):
                report.error(item_path, "must be a string")
            elif len(item.encode("utf-8")) > MAX_STRING_LENGTH:
                report.error(item_path, f"Too long: may not be more than {MAX_STRING_LENGTH} bytes")
        elif key == "version":
            count += 1
            if not isinstance(item, str):
                report.error(item_path, "must be a string")
            else:
                report.extend(item_path, semver_errors(item))
        else:
            report.error(item_path, "unknown field (list-valued attributes need an alpha feature gate)")
    if count != 1:
        report.error(path, "Invalid value: exactly one value must be specified")


def _slice_device(report: _Report, device: Any, path: str) -> None:
    if not isinstance(device, dict):
        report.error(path, "must be an object")
        return
    for key in device:
        if key not in _DEVICE_FIELDS:
            report.error(f"{path}.{key}", "unknown field")
        elif key in _ALPHA_DEVICE:
            report.error(f"{path}.{key}", "dropped by an apiserver without the alpha feature gate; the driver would "
                         "update forever")
    name = device.get("name")
    report.extend(f"{path}.name", dns_label_errors(name if isinstance(name, str) else "", "device name"))
    attributes = device.get("attributes") or {}
    capacity = device.get("capacity") or {}
    if not isinstance(attributes, dict) or not isinstance(capacity, dict):
        report.error(path, "attributes and capacity must be objects")
        return
    if len(attributes) + len(capacity) > MAX_ATTRIBUTES_AND_CAPACITIES:
        report.error(path, f"Invalid value: {len(attributes) + len(capacity)}: the total number of attributes and "
                     f"capacities must not exceed {MAX_ATTRIBUTES_AND_CAPACITIES}")
    for key, value in attributes.items():
        key_path = f"{path}.attributes[{key}]"
        report.extend(f"{path}.attributes", qualified_name_errors(str(key)))
        _slice_attribute(report, value, key_path)
    for key, value in capacity.items():
        key_path = f"{path}.capacity[{key}]"
        report.extend(f"{path}.capacity", qualified_name_errors(str(key)))
        if not isinstance(value, dict):
            report.error(key_path, "must be an object")
            continue
        for field_name in value:
            if field_name == "requestPolicy":
                report.error(f"{key_path}.requestPolicy", "Forbidden: allowMultipleAllocations must be true")
            elif field_name != "value":
                report.error(f"{key_path}.{field_name}", "unknown field")
        quantity = value.get("value")
        if isinstance(quantity, int) and not isinstance(quantity, bool):
            quantity = str(quantity)
        if not isinstance(quantity, str):
            report.error(f"{key_path}.value", "Required value: a quantity")
            continue
        try:
            parse_quantity(quantity)
        except QuantityError as exc:
            report.error(f"{key_path}.value", f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' ({exc})")


def validate_slice(body: dict[str, Any]) -> list[FieldError]:
    """The apiserver's create-time validation of a ResourceSlice body (paths as the apiserver reports them).

    Beyond the apiserver it also refuses fields that an apiserver without alpha gates would drop, and
    unknown fields — a renderer bug, not something to send.
    """
    report = _Report()
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
    for key in spec:
        if key not in _SPEC_FIELDS:
            report.error(f"spec.{key}", "unknown field")
        elif key in _ALPHA_SPEC:
            report.error(f"spec.{key}", "dropped by an apiserver without the alpha feature gate; the driver would "
                         "update forever")
    driver = spec.get("driver")
    report.extend("spec.driver", driver_name_errors(driver if isinstance(driver, str) else "", apiserver=True))

    pool = spec.get("pool") if isinstance(spec.get("pool"), dict) else {}
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
    if spec.get("perDeviceNodeSelection") is not None:
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
    if spec.get("sharedCounters") is not None and spec.get("devices") is not None:
        report.error("spec", "Invalid value: only one of `sharedCounters` or `devices` is allowed")

    devices = spec.get("devices") or []
    if not isinstance(devices, list):
        report.error("spec.devices", "must be a list")
        return report.items
    if len(devices) > MAX_DEVICES_PER_SLICE:
        report.error("spec.devices", f"Too many: {len(devices)}: must have at most {MAX_DEVICES_PER_SLICE} items")
        return report.items
    seen: set[str] = set()
    for i, device in enumerate(devices):
        _slice_device(report, device, f"spec.devices[{i}]")
        device_name = device.get("name") if isinstance(device, dict) else None
        if isinstance(device_name, str):
            if device_name in seen:
                report.error(f"spec.devices[{i}]", f"Duplicate value: {device_name!r}")
            seen.add(device_name)
    return report.items
