"""Rules a loaded :class:`~dra_kwok.config.types.Config` must satisfy (the config's own rules).

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

The apiserver's own ResourceSlice rules live with the slices (:mod:`dra_kwok.slices.rules`), and the full verdict
on a config (these rules, then every pool rendered for a worst-case node and checked with the apiserver's rules)
is :func:`dra_kwok.accept.validate`.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from dra_kwok.config.errors import FieldError, Report, errors_only
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
    NodeAllocatableResource,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    ResourceSliceTemplate,
)
from dra_kwok.runtime.duration import parse_duration

__all__ = [
    "FieldError",
    "MAX_ATTRIBUTES_AND_CAPACITIES",
    "MAX_COUNT",
    "MAX_DEVICES_PER_NODE",
    "MAX_ENTRIES_PER_NODE",
    "MAX_DEVICES_PER_SLICE",
    "MAX_SLICES_PER_POOL",
    "MAX_STRING_LENGTH",
    "validate",
]

MAX_DEVICES_PER_SLICE = 128
MAX_ATTRIBUTES_AND_CAPACITIES = 32
MAX_STRING_LENGTH = 64
MAX_COUNT = 100_000
MAX_QUANTITY_EXPONENT = 10_000
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)$")
# What one render may hold (#19.1): the node-local mappings that could all match one node, and the cluster-wide
# mappings together, each at most this many devices and attributes + capacities.  Measured (tracemalloc over
# render_node + plan): ~0.6 KB per device + ~0.25 KB per attribute or capacity, so one render at the limits holds
# ~22 MiB; with `--workers` (4) such renders at once the driver peaked at 201 MiB RSS on 50 nodes, under the
# Deployment's 256Mi (README, "Memory budget"; tests/integration/test_memory_budget.py runs it).
MAX_DEVICES_PER_NODE = 20_000
MAX_ENTRIES_PER_NODE = 40_000
MAX_SLICES_PER_POOL = 1000
MAX_POOL_NAME_LENGTH = 253
MAX_LOCAL_POOL_NAME_LENGTH = MAX_POOL_NAME_LENGTH - ASSUMED_NODE_NAME_LENGTH - 1  # room for "<node>/"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


# ------------------------------------------------------------------------------------------------------
# Config rules.


def _check_requirement(report: Report, requirement: NodeSelectorRequirement, path: str) -> None:
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


def _check_field_requirement(report: Report, requirement: NodeSelectorRequirement, path: str) -> None:
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


def _check_term(report: Report, term: NodeSelectorTerm, path: str) -> None:
    if not term.match_expressions and not term.match_fields:
        report.error(path, "empty term: it matches no node (Kubernetes semantics); add matchExpressions or "
                     "matchFields, or delete the term")
    for i, requirement in enumerate(term.match_expressions):
        _check_requirement(report, requirement, f"{path}.matchExpressions[{i}]")
    for i, requirement in enumerate(term.match_fields):
        _check_field_requirement(report, requirement, f"{path}.matchFields[{i}]")


def _check_attribute(
    report: Report, value: AttributeValue, path: str, device: DeviceTemplate, cluster_wide: bool
) -> None:
    items = value.items()
    if not items:
        report.error(path, "no value: set exactly one of string, int, bool, version (or a list: strings, ints, "
                     "bools, versions)")
        return
    if len(items) > 1:
        report.error(path, f"{len(items)} values ({', '.join(k for k, _ in items)}): set exactly one of string, "
                     "int, bool, version (or a list: strings, ints, bools, versions)")
    for key, item in items:
        item_path = f"{path}.{key}"
        if key.endswith("s"):  # a list attribute (Kubernetes 1.36+ with DRAListTypeAttributes)
            if not isinstance(item, tuple) or not item:
                report.error(item_path, "a list attribute needs at least one value")
                continue
            for j, element in enumerate(item):
                _check_scalar(report, key[:-1], element, f"{item_path}[{j}]", device, cluster_wide)
        else:
            _check_scalar(report, key, item, item_path, device, cluster_wide)


def _check_scalar(report: Report, key: str, item: Any, item_path: str, device: DeviceTemplate,
                  cluster_wide: bool) -> None:
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


def _expanded_length(report: Report, parts: tuple[Any, ...], path: str, device: DeviceTemplate,
                     cluster_wide: bool) -> int:
    """The longest a template can expand to for ``device``; refuses {{node}} in a cluster-wide pool."""
    if cluster_wide and any(isinstance(p, Placeholder) and p.name == "node" for p in parts):
        report.error(path, "{{node}} is only available in node-local pools; this pool is cluster-wide")
    count = device.count if isinstance(device.count, int) and device.count > 0 else None
    last = f"{device.name}-{count - 1}" if count else device.name
    return template_max_length(parts, len(last), len(str(count - 1)) if count else 1)


def _check_string(report: Report, text: str, path: str, device: DeviceTemplate, cluster_wide: bool) -> None:
    try:
        parts = parse_template(text)
    except TemplateError as exc:
        report.error(path, str(exc))
        return
    longest = _expanded_length(report, parts, path, device, cluster_wide)
    if longest > MAX_STRING_LENGTH:
        if any(isinstance(p, Placeholder) for p in parts):
            report.error(path, f"string attributes are at most {MAX_STRING_LENGTH} bytes; with placeholders "
                         f"expanded this one can reach {longest} (counting {{{{node}}}} as "
                         f"{ASSUMED_NODE_NAME_LENGTH}); shorten it")
        else:
            report.error(path, f"string is {longest} bytes; string attributes are at most {MAX_STRING_LENGTH} "
                         "bytes (UTF-8); shorten it")


def _check_capacity_value(report: Report, text: Any, path: str) -> None:
    if not isinstance(text, str):
        report.error(path, f"expected a quantity string, got {type(text).__name__}")
        return
    try:
        quantity = parse_quantity(text)
    except QuantityError as exc:
        suggestions = suggest_quantity(text)
        hint = ""
        if suggestions:
            hint = "; use " + " or ".join(repr(s) for s in suggestions)
            if text.rstrip().endswith(("B", "b")):
                hint = "; Kubernetes quantities have no 'B' (bytes) unit" + hint
        report.error(path, f"invalid quantity {text!r} ({exc}){hint}")
        return
    written = _EXPONENT.search(text.strip())
    if abs(quantity.exponent) > MAX_QUANTITY_EXPONENT or (written and abs(int(written[1])) > MAX_QUANTITY_EXPONENT):
        # the apiserver computes such a value in full (10^999999999 is a number of a billion digits): a write of
        # it was not answered within 30 s, and stalls the driver and loads the apiserver
        report.error(path, f"quantity {text!r}: an exponent beyond ±{MAX_QUANTITY_EXPONENT}; at most "
                     f"10^{MAX_QUANTITY_EXPONENT} is allowed (the apiserver computes the value in full)")
    elif not quantity.stored_exactly:
        report.warning(path, f"the apiserver stores {text!r} as {quantity.canonical!r} (its canonical form has no "
                       f"suffix for this power of ten), a different value; write it as "
                       f"{format(quantity.unscaled)}e{quantity.exponent} to keep it")


def _check_device(report: Report, device: DeviceTemplate, path: str, cluster_wide: bool, driver: str) -> None:
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
    _check_advanced(report, device, path, cluster_wide)
    if not device.attributes:
        report.warning(f"{path}.attributes", "device has no attributes; DeviceClass selectors usually match on "
                       "attributes, e.g. type: {string: gpu}")


_TAINT_EFFECTS = ("NoSchedule", "NoExecute", "None")
MAX_TAINTS = 16


def _check_quantities(report: Report, values: Any, path: str) -> None:
    for key, value in values:
        _check_capacity_value(report, value, f"{path}{key}")


def _check_advanced(report: Report, device: DeviceTemplate, path: str, cluster_wide: bool) -> None:
    """Taints, request policies and counter quantities (the version-dependent rules are the rendered check's)."""
    taints = device.taints or ()
    if len(taints) > MAX_TAINTS:
        report.error(f"{path}.taints", f"{len(taints)} taints; a device may have at most {MAX_TAINTS} (4 on "
                     "Kubernetes 1.34)")
    for j, taint in enumerate(taints):
        taint_path = f"{path}.taints[{j}]"
        report.extend(f"{taint_path}.key", label_key_errors(taint.key))
        if taint.effect not in _TAINT_EFFECTS:
            report.error(f"{taint_path}.effect", f"unsupported effect {taint.effect!r}; use NoSchedule, NoExecute "
                         "or None (None: Kubernetes 1.35+)")
        if taint.value is not None:
            _check_taint_value(report, taint.value, f"{taint_path}.value", device, cluster_wide)
    for key, capacity in device.capacity.items():
        policy = capacity.request_policy
        if policy is None:
            continue
        policy_path = f"{path}.capacity[{key}].requestPolicy"
        if device.allow_multiple_allocations is not True:
            report.error(policy_path, "a request policy needs allowMultipleAllocations: true on the device (the "
                         "apiserver refuses it otherwise)")
        values = [("default", policy.default)] if policy.default is not None else []
        values += [(f"validValues[{i}]", v) for i, v in enumerate(policy.valid_values or ())]
        if policy.valid_range is not None:
            values += [(f"validRange.{k}", v) for k, v in (("min", policy.valid_range.min),
                                                           ("max", policy.valid_range.max),
                                                           ("step", policy.valid_range.step)) if v is not None]
        _check_quantities(report, [(f".{k}", v) for k, v in values], policy_path)
    for j, consumption in enumerate(device.consumes_counters or ()):
        _check_quantities(report, [(f"[{k}].value", c.value) for k, c in consumption.counters.items()],
                          f"{path}.consumesCounters[{j}].counters")
        _check_compatibility_groups(report, consumption.compatibility_groups,
                                    f"{path}.consumesCounters[{j}].compatibilityGroups")
    for name, entry in (device.node_allocatable_resources or {}).items():
        _check_node_allocatable(report, device, name, entry, f"{path}.nodeAllocatableResources[{name}]")
    if device.node_allocatable_resources:
        report.warning(f"{path}.nodeAllocatableResources", "with the gate on, Kubernetes 1.37 refuses (403, "
                       "NodeDeclaredFeatures admission) a slice whose devices are available on a node that does not "
                       "declare DRANodeAllocatableResources in status.declaredFeatures; KWOK nodes declare nothing "
                       "unless their status says so")


MAX_COMPATIBILITY_GROUPS = 2


def _check_compatibility_groups(report: Report, groups: tuple[str, ...] | None, path: str) -> None:
    """``consumesCounters[].compatibilityGroups`` (1.37 alpha DRADeviceCompatibilityGroups)."""
    groups = groups or ()
    if len(groups) > MAX_COMPATIBILITY_GROUPS:
        report.error(path, f"{len(groups)} groups; a counter consumption may name at most "
                     f"{MAX_COMPATIBILITY_GROUPS}")
    for i, group in enumerate(groups):
        report.extend(f"{path}[{i}]", dns_label_errors(group, "compatibility group name"))
        if group in groups[:i]:
            report.error(f"{path}[{i}]", f"{group!r} is listed twice; group names must be unique")


def _is_node_allocatable(name: str) -> bool:
    return name in ("cpu", "memory") or name.startswith("hugepages-")


def _positive_quantity(report: Report, text: str, path: str, allow_zero: bool = False) -> None:
    before = len(report.items)
    _check_capacity_value(report, text, path)
    if len(report.items) == before and isinstance(text, str):
        sign = parse_quantity(text).unscaled
        if sign < 0 or (sign == 0 and not allow_zero):
            report.error(path, f"{text!r}: must be {'zero or more' if allow_zero else 'greater than zero'}")


def _check_node_allocatable(report: Report, device: DeviceTemplate, name: str, entry: NodeAllocatableResource,
                            path: str) -> None:
    """One ``nodeAllocatableResources`` entry (1.37 shape, alpha DRANodeAllocatableResources)."""
    if not _is_node_allocatable(name):
        report.error(path, f"{name!r} is not a node-allocatable resource name: use cpu, memory or hugepages-<size> "
                     "(extended resources and ephemeral-storage are not allowed)")
    if entry.mapping is None and entry.overhead is None:
        report.error(path, "set mapping ({capacityKey, capacityMultiplier} or {deviceMultiplier}) and/or overhead "
                     "({perPod, perContainer})")
    mapping = entry.mapping
    if mapping is not None:
        mapping_path = f"{path}.mapping"
        if (mapping.capacity_key is None) == (mapping.device_multiplier is None):
            report.error(mapping_path, "set exactly one of capacityKey (with capacityMultiplier) or deviceMultiplier")
        if mapping.capacity_key is not None:
            if mapping.capacity_key not in device.capacity:
                known = ", ".join(sorted(device.capacity)) or "none"
                report.error(f"{mapping_path}.capacityKey", f"{mapping.capacity_key!r} is not a capacity of this "
                             f"device (capacities: {known}); name one exactly as written under capacity")
            if mapping.capacity_multiplier is None:
                report.error(f"{mapping_path}.capacityMultiplier", "required with capacityKey (e.g. \"1\")")
        elif mapping.capacity_multiplier is not None:
            report.error(f"{mapping_path}.capacityKey", "required with capacityMultiplier: name the capacity it "
                         "multiplies")
        for key, value in (("capacityMultiplier", mapping.capacity_multiplier),
                           ("deviceMultiplier", mapping.device_multiplier)):
            if value is not None:
                _positive_quantity(report, value, f"{mapping_path}.{key}")
    overhead = entry.overhead
    if overhead is not None:
        if overhead.per_pod is None and overhead.per_container is None:
            report.error(f"{path}.overhead", "set perPod and/or perContainer")
        for key, value in (("perPod", overhead.per_pod), ("perContainer", overhead.per_container)):
            if value is not None:
                _positive_quantity(report, value, f"{path}.overhead.{key}", allow_zero=True)


_SKIP_NODE_OPERATIONS = ("NodePrepareResources", "NodeUnprepareResources", "*")


def _check_slice_alphas(report: Report, template: ResourceSliceTemplate, path: str, driver: str) -> None:
    """``partitionTypeAttribute`` and ``skipNodeOperations`` (1.37 alphas; their gates are the rendered check's)."""
    operations = template.skip_node_operations or ()
    for i, operation in enumerate(operations):
        if operation not in _SKIP_NODE_OPERATIONS:
            report.error(f"{path}.skipNodeOperations[{i}]", f"unsupported value {operation!r}; use "
                         "NodePrepareResources, NodeUnprepareResources or *")
        elif operation in operations[:i]:
            report.error(f"{path}.skipNodeOperations[{i}]", f"{operation!r} is listed twice")
    if "NodePrepareResources" in operations and not {"NodeUnprepareResources", "*"} & set(operations):
        report.error(f"{path}.skipNodeOperations", "NodePrepareResources cannot be skipped unless "
                     "NodeUnprepareResources is skipped too (or use *)")
    name = template.partition_type_attribute
    if name is None:
        return
    name_path = f"{path}.partitionTypeAttribute"
    problems = qualified_name_errors(name) or ([] if "/" in name else [
        f"{name!r} has no domain: write it fully qualified, e.g. {driver}/{name}"])
    if problems:
        report.extend(name_path, problems)
        return
    consumers = [(i, d) for i, d in enumerate(template.devices) if d.consumes_counters]
    if not consumers:
        report.warning(name_path, "no device of this mapping consumes counters, so no slice carries it (the "
                       "apiserver allows it only on slices whose devices consume counters); remove it")
    bare = name[len(driver) + 1:] if name.startswith(f"{driver}/") else None
    for i, device in consumers:
        value = device.attributes.get(name) or (device.attributes.get(bare) if bare else None)
        where = f"{path}.devices[{i}].attributes"
        if value is None:
            report.error(where, f"the device consumes counters, so it must carry the partition type attribute "
                         f"{name!r} (partitionTypeAttribute) as a string, e.g. {name}: {{string: 1g.10gb}}")
        elif value.string is None:
            report.error(f"{where}[{name if name in device.attributes else bare}]", "must be a string: "
                         "partitionTypeAttribute names this attribute")


def _check_node_template(report: Report, text: str, path: str, device: DeviceTemplate, what: str) -> None:
    """A device's ``nodeName`` or node selector value, which may hold placeholders (not {{node}}: the pool is
    cluster-wide)."""
    try:
        parts = parse_template(text)
    except TemplateError as exc:
        report.error(path, str(exc))
        return
    if not any(isinstance(p, Placeholder) for p in parts):
        report.extend(path, dns_subdomain_errors(text, "node name") if what == "node name"
                      else label_value_errors(text))
        return
    limit = 253 if what == "node name" else 63
    longest = _expanded_length(report, parts, path, device, cluster_wide=True)
    # every placeholder expands to [a-z0-9-] text starting and ending with a letter or digit: "a" stands for it
    shape = "".join(p if isinstance(p, str) else "a" for p in parts)
    problems = dns_subdomain_errors(shape, "node name") if what == "node name" else label_value_errors(shape)
    if problems:
        report.error(path, f"with placeholders expanded this is not a valid {what}: {problems[0]}")
    elif longest > limit:
        report.error(path, f"a {what} is at most {limit} characters; with placeholders expanded this one can reach "
                     f"{longest}; shorten it")


def _check_device_nodes(report: Report, device: DeviceTemplate, path: str, per_device: bool) -> None:
    """A device's own node selection: exactly one of nodeName, nodeSelector, allNodes: true with the slice's
    ``perDeviceNodeSelection: true``, none without."""
    given = [k for k, v in (("nodeName", device.node_name), ("nodeSelector", device.node_selector),
                            ("allNodes", device.all_nodes)) if v is not None]
    if not per_device:
        for key in given:
            report.error(f"{path}.{key}", "only allowed with perDeviceNodeSelection: true on the resourceSlice "
                         "(the pool is then published once, cluster-wide, each device available where its own "
                         "nodeName / nodeSelector / allNodes says); add it or remove this")
        return
    if not given:
        report.error(path, "perDeviceNodeSelection is set: give this device exactly one of nodeName, nodeSelector "
                     "or allNodes: true")
    elif len(given) > 1:
        report.error(path, f"{' and '.join(given)} are set; a device has exactly one of nodeName, nodeSelector, "
                     "allNodes: true")
    if device.all_nodes is False:
        report.error(f"{path}.allNodes", "false is refused by the apiserver; write allNodes: true or remove it")
    if device.node_name is not None:
        _check_node_template(report, device.node_name, f"{path}.nodeName", device, "node name")
    if device.node_selector is not None:
        terms = device.node_selector.node_selector_terms
        terms_path = f"{path}.nodeSelector.nodeSelectorTerms"
        if len(terms) != 1:
            report.error(terms_path, f"{len(terms)} terms; a device node selector must have exactly one term (the "
                         "API documents it; put all requirements in it)")
        for i, term in enumerate(terms):
            term_path = f"{terms_path}[{i}]"
            for kind, requirements in (("matchExpressions", term.match_expressions),
                                       ("matchFields", term.match_fields)):
                for j, requirement in enumerate(requirements):
                    for k, value in enumerate(requirement.values):
                        if "{{" in value:
                            _check_node_template(report, value, f"{term_path}.{kind}[{j}].values[{k}]", device,
                                                 "node name" if kind == "matchFields" else "label value")
            _check_term(report, _placeholders_checked(term), term_path)


def _placeholders_checked(term: NodeSelectorTerm) -> NodeSelectorTerm:
    """``term`` with each value holding a placeholder (checked on its own) replaced by a valid plain one, so that the
    rest of every requirement is checked as if it were plain."""
    def plain(requirements: tuple[NodeSelectorRequirement, ...]) -> tuple[NodeSelectorRequirement, ...]:
        return tuple(replace(r, values=tuple("a" if "{{" in v else v for v in r.values)) for r in requirements)

    return replace(term, match_expressions=plain(term.match_expressions), match_fields=plain(term.match_fields))


def _check_taint_value(report: Report, text: str, path: str, device: DeviceTemplate, cluster_wide: bool) -> None:
    try:
        parts = parse_template(text)
    except TemplateError as exc:
        report.error(path, str(exc))
        return
    if not any(isinstance(p, Placeholder) for p in parts):
        report.extend(path, label_value_errors(text))
        return
    longest = _expanded_length(report, parts, path, device, cluster_wide)
    if longest > 63:
        report.error(path, f"taint values are label values of at most 63 characters; with placeholders expanded "
                     f"this one can reach {longest} (counting {{{{node}}}} as {ASSUMED_NODE_NAME_LENGTH}); shorten it")


def _check_counters(report: Report, config: Config, members: list[int]) -> None:
    """Counter sets: unique names in the pool; each consumesCounters entry names a set (and counters) of its own
    mapping's sharedCounters, so it resolves on every node whatever other mappings match."""
    defined: dict[str, str] = {}
    for i in members:
        template = config.mappings[i].resource_slice
        own: dict[str, set[str]] = {}
        for k, counter_set in enumerate(template.shared_counters or ()):
            set_path = f"mappings[{i}].resourceSlice.sharedCounters[{k}]"
            report.extend(f"{set_path}.name", dns_label_errors(counter_set.name, "counter set name"))
            if counter_set.name in defined:
                report.error(f"{set_path}.name", f"counter set {counter_set.name!r} is also defined by "
                             f"{defined[counter_set.name]}; counter set names must be unique within a pool")
            else:
                defined[counter_set.name] = set_path
            own[counter_set.name] = set(counter_set.counters)
            if not counter_set.counters:
                report.error(f"{set_path}.counters", "a counter set needs at least one counter")
            for name, counter in counter_set.counters.items():
                report.extend(f"{set_path}.counters[{name}]", dns_label_errors(name, "counter name"))
                _check_capacity_value(report, counter.value, f"{set_path}.counters[{name}].value")
        for d, device in enumerate(template.devices):
            for j, consumption in enumerate(device.consumes_counters or ()):
                entry_path = f"mappings[{i}].resourceSlice.devices[{d}].consumesCounters[{j}]"
                if consumption.counter_set not in own:
                    report.error(f"{entry_path}.counterSet", f"counter set {consumption.counter_set!r} is not in "
                                 "this mapping's resourceSlice.sharedCounters"
                                 + (f" (defined: {', '.join(sorted(own))})" if own else "; define it there"))
                    continue
                for name in consumption.counters:
                    if name not in own[consumption.counter_set]:
                        report.error(f"{entry_path}.counters[{name}]", f"counter {name!r} is not defined in counter "
                                     f"set {consumption.counter_set!r} (defined: "
                                     f"{', '.join(sorted(own[consumption.counter_set]))})")


def _device_total(mapping: Mapping) -> int:
    total = 0
    for device in mapping.resource_slice.devices:
        count = device.count if isinstance(device.count, int) and not isinstance(device.count, bool) else 1
        total += max(0, count) if device.count is not None else 1
    return total


def _check_mapping(report: Report, config: Config, mapping: Mapping, path: str) -> None:
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

    per_device = template.per_device_node_selection
    if per_device is False:
        report.error(f"{slice_path}.perDeviceNodeSelection", "false is refused by the apiserver; write true (each "
                     "device says where it is available) or remove it")
    elif per_device and (template.all_nodes or template.node_selector is not None):
        report.error(slice_path, "perDeviceNodeSelection and allNodes/nodeSelector are both set; a ResourceSlice "
                     "has exactly one node selection: keep perDeviceNodeSelection: true and give each device its "
                     "own nodeName, nodeSelector or allNodes: true, or remove it")
    _check_slice_alphas(report, template, slice_path, config.slice_driver(mapping))
    for i, device in enumerate(template.devices):
        _check_device(report, device, f"{slice_path}.devices[{i}]", cluster_wide, config.slice_driver(mapping))
        _check_device_nodes(report, device, f"{slice_path}.devices[{i}]", bool(per_device))
    if template.profile is not None:
        _check_profile_placement(report, mapping, slice_path)

    if mapping.binding_simulation is not None:
        _check_binding_simulation(report, mapping, path)


BINDING_OUTCOMES = ("ready", "fail")
# The scheduler's default DynamicResources bindingTimeout (pkg/scheduler/apis/config, 1.34-1.37): a pod waits this
# long in PreBind for its binding conditions; a longer delay is a timeout, not the configured outcome.
SCHEDULER_BINDING_TIMEOUT = 600.0


def binding_delay_seconds(text: str | None) -> float:
    """``bindingSimulation.delay`` in seconds (absent: 0); ValueError when it is no Go duration (``3s``, ``1m30s``,
    ``500ms``) or plain number of seconds."""
    return 0.0 if text is None else parse_duration(text)


def _check_binding_simulation(report: Report, mapping: Mapping, path: str) -> None:
    """``bindingSimulation`` acts on the mapping's devices with bindingConditions: it needs some, and ``fail``
    needs their bindingFailureConditions."""
    sim = mapping.binding_simulation
    assert sim is not None
    sim_path = f"{path}.bindingSimulation"
    try:
        delay = binding_delay_seconds(sim.delay)
    except ValueError:
        report.error(f"{sim_path}.delay", f"{sim.delay!r} is not a duration; use a Go duration such as 3s, 1m30s or "
                     "500ms")
    else:
        if delay > SCHEDULER_BINDING_TIMEOUT:
            report.warning(f"{sim_path}.delay", f"{sim.delay} is longer than the scheduler's default binding timeout "
                           "(600s): the pod's binding times out before dra-kwok sets the condition; use a shorter "
                           "delay (or raise the DynamicResources plugin's bindingTimeout)")
    outcome = sim.outcome if sim.outcome is not None else "ready"
    if outcome not in BINDING_OUTCOMES:
        report.error(f"{sim_path}.outcome", f"{outcome!r} is not an outcome; use ready (set the bindingConditions "
                     "True) or fail (set the first bindingFailureCondition True)")
    devices = mapping.resource_slice.devices
    bound = [i for i, d in enumerate(devices) if d.binding_conditions]
    if not bound:
        report.error(sim_path, "no device of this mapping has bindingConditions, so no claim would ever wait for "
                     "dra-kwok: add bindingConditions (and bindingFailureConditions) to a device, e.g. "
                     "bindingConditions: [dra-kwok.x-k8s.io/attached], bindingFailureConditions: "
                     "[dra-kwok.x-k8s.io/failed], or remove bindingSimulation")
    elif outcome == "fail":
        for i in bound:
            if not devices[i].binding_failure_conditions:
                report.error(f"{path}.resourceSlice.devices[{i}].bindingFailureConditions",
                             "required by bindingSimulation.outcome: fail (dra-kwok sets the first of them True); "
                             "add one, e.g. [dra-kwok.x-k8s.io/failed]")


def _check_profile_placement(report: Report, mapping: Mapping, slice_path: str) -> None:
    """Where a profile may go (its parameters are checked against the profile by :func:`dra_kwok.accept.validate`):
    a node-local pool, laid out by the profile, under one driver name."""
    template = mapping.resource_slice
    profile = template.profile or {}
    if template.cluster_wide:
        report.error(f"{slice_path}.profile", "a profile publishes one node's devices, as the real driver does (a "
                     "pool per node); remove allNodes/nodeSelector, or write the devices by hand")
    if template.pool.resource_slice_count is not None:
        report.error(f"{slice_path}.pool.resourceSliceCount", "the profile lays out its slices as the real driver "
                     "does; remove resourceSliceCount")
    own = profile.get("driver")
    if template.driver is not None and own is not None and own != template.driver:
        report.error(f"{slice_path}.profile.driver", f"{own!r} differs from resourceSlice.driver "
                     f"{template.driver!r}; set the driver name in one place")


def _check_pools(report: Report, config: Config) -> None:
    """Rules across mappings: shared pools, unique device names, enough slices."""
    groups: dict[tuple[bool, str, str], list[int]] = {}
    for i, mapping in enumerate(config.mappings):
        key = (mapping.resource_slice.cluster_wide, config.slice_driver(mapping), mapping.resource_slice.pool.name)
        groups.setdefault(key, []).append(i)

    for (cluster_wide, driver, pool), members in groups.items():
        _check_counters(report, config, members)
        if cluster_wide and len(members) > 1:
            for i in members[1:]:
                report.error(f"mappings[{i}].resourceSlice.pool.name",
                             f"cluster-wide pool {pool!r} of driver {driver!r} is also published by "
                             f"mappings[{members[0]}]; give each cluster-wide pool its own name (or merge the "
                             "mappings)")
            continue
        for attr, field_name in (("partition_type_attribute", "partitionTypeAttribute"),
                                 ("skip_node_operations", "skipNodeOperations")):
            first = getattr(config.mappings[members[0]].resource_slice, attr)
            for i in members[1:]:
                if getattr(config.mappings[i].resource_slice, attr) != first:
                    report.error(f"mappings[{i}].resourceSlice.{field_name}", f"differs from mappings[{members[0]}], "
                                 f"which publishes the same pool {pool!r} (its slices carry one value); set the "
                                 "same in every mapping of the pool")
        profiled = [i for i in members if config.mappings[i].resource_slice.profile is not None]
        for i in profiled[1:]:
            report.error(f"mappings[{i}].resourceSlice.pool.name", f"mappings[{profiled[0]}] also publishes a profile "
                         f"into pool {pool!r} of driver {driver!r}; a node matching both would get each device twice "
                         "(mappings sharing driver and pool name form one pool per node): give each its own pool name")
        if profiled:
            for i in members:
                if i not in profiled and config.mappings[i].resource_slice.pool.resource_slice_count is not None:
                    report.error(f"mappings[{i}].resourceSlice.pool.resourceSliceCount", f"pool {pool!r} is laid "
                                 f"out by the profile of mappings[{profiled[0]}]; remove resourceSliceCount")
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


def validate(config: Config) -> list[FieldError]:
    """Every error and warning in ``config``; it is valid when no item has ``severity == "error"``."""
    report = Report()
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
        _check_render_size(report, config)
    return report.items


def _check_render_size(report: Report, config: Config) -> None:
    """The most one render can hold: every node-local mapping matching one node (the worst case), and all the
    cluster-wide mappings (rendered together)."""
    for cluster_wide, what in ((False, "node-local mappings could give one node (if all of them match it)"),
                               (True, "cluster-wide mappings publish")):
        devices = entries = 0
        for mapping in config.mappings:
            if mapping.resource_slice.cluster_wide != cluster_wide:
                continue
            for device in mapping.resource_slice.devices:
                count = device.count if isinstance(device.count, int) and device.count > 0 else 1
                devices += count
                entries += count * (len(device.attributes) + len(device.capacity))
        where = "per node" if not cluster_wide else "in cluster-wide pools"
        fix = ("so that the driver stays within its memory limit (README, \"Memory budget\"): lower the counts or "
               "split the mappings so fewer of them match one node" if not cluster_wide else
               "so that the driver stays within its memory limit (README, \"Memory budget\"): lower the counts")
        if devices > MAX_DEVICES_PER_NODE:
            report.error("mappings", f"the {what} {devices} devices; at most {MAX_DEVICES_PER_NODE} {where}, {fix}")
        elif entries > MAX_ENTRIES_PER_NODE:
            report.error("mappings", f"the {what} {entries} attributes and capacities (over {devices} devices); at "
                         f"most {MAX_ENTRIES_PER_NODE} {where}, {fix}")


