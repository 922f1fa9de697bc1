"""The pure function from (config, nodes) to the ResourceSlice bodies that should exist.

The controller diffs this desired state against what the apiserver has; everything here is therefore
*deterministic* (same input → equal output, byte for byte when dumped with ``sort_keys``) and shaped like what
the apiserver stores, so that "nothing changed" really compares equal (capacities are rendered in the
apiserver's canonical quantity form, ``1.5Gi`` → ``1536Mi``).

Pools
-----
* **Node-local** mappings (neither ``allNodes`` nor ``nodeSelector``) give every matching node its own pool,
  published as ``<node>/<pool.name>``.  The scheduler tracks allocated devices by (driver, pool, device) with
  no node in the key, so a pool name shared by several nodes would make one node's allocation block the
  same-named device everywhere.  If ``<node>/<pool.name>`` would exceed 253 characters the node part is
  shortened (:func:`~dra_kwok.config.formats.short_node_name`).  Slices get ``spec.nodeName`` and an owner
  reference to the Node (``controller: true``, no ``blockOwnerDeletion``) so garbage collection removes them
  with the node.  Node-local mappings with the same (driver, pool.name) that match the same node form one
  pool; their devices are concatenated in mapping order.
* **Cluster-wide** mappings (``allNodes: true`` or a one-term ``nodeSelector``) give one pool named
  ``pool.name`` as written, which exists while at least one given node matches the mapping's
  ``nodeSelectorTerms``.  No nodeName, no owner reference.

Slices
------
Devices are split over ``max(1, ceil(n / 128))`` slices, or over exactly ``pool.resourceSliceCount`` slices
when set; either way in contiguous runs whose sizes differ by at most one (so slices may be empty).
``spec.pool.resourceSliceCount`` is the number of slices rendered and ``spec.pool.generation`` is 0 (the
controller owns generations).  An empty pool is one slice with ``devices: []`` (the apiserver omits the empty
list when it returns the object).  On Kubernetes 1.35+ (``version``, default the newest) a slice whose devices use
taints or consumesCounters holds at most 64 devices, and the pool's ``sharedCounters`` get slices of their own,
first, at most 8 sets each (a slice holds devices or counters, never both); on 1.34 they go into the first device
slice.  A mapping's ``profile`` (node-local only) contributes the slices the real driver would publish for the
version (:mod:`dra_kwok.slices.profiles`), first in the pool; hand-written devices of the same pool follow in their
own slices, and ``resourceSliceCount`` counts them all.

Names and labels
----------------
Object name: ``<node>-<pool.name>-<h8>-<i>`` (node-local) or ``<pool.name>-<h8>-<i>`` (cluster-wide), where
every character outside ``[a-z0-9]`` becomes ``-``, ``h8`` is 8 hex digits of SHA-256 over
``<driver>\\0<published pool name>`` (so drivers and pools never collide), ``i`` is the slice index; the prefix is
truncated so the whole name stays within 253 characters.  Labels: :data:`MANAGED_BY_LABEL` =
:data:`MANAGED_BY_VALUE`, :data:`INSTANCE_LABEL` = the publishing driver instance when the caller names one
(``instance=``; the controller's informers select on both, so that two instances never touch each other's
slices), :data:`MAPPING_LABEL` = the name of the (first) mapping that produced the pool, and for node-local slices
:data:`NODE_LABEL` = :func:`node_label_value` of the node.  Label values that would be invalid are replaced by
``sha256-<16 hex>``.

Devices
-------
``count: N`` expands a device into ``<name>-0`` … ``<name>-(N-1)``.  Attributes are rendered in Kubernetes
casing (``{"string": ...}``, ``{"int": ...}``, ``{"bool": ...}``, ``{"version": ...}``), capacities as
``{"value": "<canonical quantity>"}`` (with ``requestPolicy`` quantities canonical too); empty
``attributes``/``capacity`` maps are left out, as the apiserver does.  ``taints``, ``consumesCounters``,
``allowMultipleAllocations``, ``bindsToNode``, ``bindingConditions``, ``bindingFailureConditions`` and
``nodeAllocatableResources`` are copied in the v1 shape; taint values may hold the same placeholders as string
attributes.

Per-device node selection: ``perDeviceNodeSelection: true`` makes the pool cluster-wide (published once, no
nodeName, like ``allNodes``); each device carries its own ``nodeName``, ``nodeSelector`` or ``allNodes: true``, and
the device ``nodeName`` and node selector values may hold placeholders (``nodeName: "kwok-node-{{index}}"``).
The 1.37 alphas ``skipNodeOperations`` and ``partitionTypeAttribute`` go on the slices holding devices only, the
latter only where a device consumes counters (the apiserver refuses it on any other slice).

*String* attribute values may contain placeholders (full rules in :mod:`dra_kwok.config.formats`):
``{{node}}`` (node name; node-local pools only), ``{{device}}`` (expanded device name), ``{{index}}`` (index in
the ``count`` expansion, 0 without count), ``{{hash}}``/``{{hash:N}}`` (8/N hex digits, stable per driver, pool
and device — so per node too) and ``{{uuid}}`` (a UUIDv5 of the same), e.g. ``serial: {string: "SN-{{hash}}"}``
or ``uuid: {string: "GPU-{{uuid}}"}``.  ``{{`` never occurs in ordinary values, so nothing else is touched;
validation rejects unknown placeholders and strings that could expand beyond 64 bytes.

``check``
---------
Every public render function takes ``check: bool = True``.  With ``check=True`` each rendered body goes through
:func:`~dra_kwok.slices.rules.validate_slice` (the apiserver's rules) and a pool's device names must be
unique; any problem raises :class:`RenderError`.  ``check=False`` renders invalid configs *as written* (129
devices in one slice, a bad attribute key, ``resourceSliceCount: 0``) so that a test can send them to a real
apiserver and compare its verdict with ours.  The controller also renders with ``check=False``: it only ever
holds configs that passed ``validate()``, which already checked every pool for a worst-case node, and a valid
config renders valid slices for every node (a property test proves it).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dra_kwok.config.errors import ConfigInvalid, FieldError
from dra_kwok.config.formats import (
    TemplateError,
    expand_template,
    is_label_value,
    parse_template,
    short_hash,
    short_node_name,
)
from dra_kwok.config.quantity import QuantityError, canonical_quantity
from dra_kwok.config.types import (
    AttributeValue,
    CapacityValue,
    Config,
    CounterValue,
    DeviceTemplate,
    Mapping,
    NodeAllocatableResource,
    NodeSelectorRequirement,
    NodeSelectorTerm,
)
from dra_kwok.slices.nodes import FrozenLabels, NodeInfo, node_matches, terms_match
from dra_kwok.slices.profiles.mapping import render_profile
from dra_kwok.slices.rules import DEFAULT, Version, validate_slice

__all__ = [
    "API_VERSION",
    "KIND",
    "SLICES_PATH",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "INSTANCE_LABEL",
    "MAPPING_LABEL",
    "MAX_DEVICES_PER_SLICE",
    "NODE_LABEL",
    "FrozenLabels",
    "NodeInfo",
    "Pool",
    "RenderError",
    "node_label_value",
    "node_matches",
    "published_pool_name",
    "render",
    "render_all_groups",
    "render_cluster",
    "render_node",
    "slice_object_name",
    "terms_match",
]

API_VERSION = "resource.k8s.io/v1"
KIND = "ResourceSlice"
SLICES_PATH = "/apis/resource.k8s.io/v1/resourceslices"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "dra-kwok"
MAPPING_LABEL = "dra-kwok.x-k8s.io/mapping"
NODE_LABEL = "dra-kwok.x-k8s.io/node"
INSTANCE_LABEL = "dra-kwok.x-k8s.io/instance"
MAX_DEVICES_PER_SLICE = 128
MAX_DEVICES_PER_SLICE_ADVANCED = 64  # 1.35+: when a device of the slice has taints or consumesCounters
MAX_COUNTER_SETS_PER_SLICE = 8  # 1.35+
MAX_NAME_LENGTH = 253

# Hard limits that hold even with check=False, so a hostile config cannot make the renderer allocate
# without bound.  Validation's own limits are far lower.
_HARD_MAX_DEVICES_PER_POOL = 1_000_000
_HARD_MAX_SLICES_PER_POOL = 10_000


class RenderError(ConfigInvalid):
    """Rendering produced (or would produce) objects the apiserver must reject; ``errors`` says which."""


@dataclass(frozen=True)
class Pool:
    """One pool's desired slices.

    ``name`` is the pool name as published (``<node>/<pool.name>`` for node-local pools); ``node_name`` is None
    for cluster-wide pools; ``slices`` are complete ResourceSlice bodies (JSON-ready dicts, camelCase).
    """

    driver: str
    name: str
    node_name: str | None
    slices: tuple[dict[str, Any], ...]


# ------------------------------------------------------------------------------------------------------
# Names.


def _label_value(value: str) -> str:
    return value if is_label_value(value) else f"sha256-{short_hash(value, 16)}"


def node_label_value(node_name: str) -> str:
    """The value of :data:`NODE_LABEL` for a node: its name, shortened if longer than 63 characters."""
    return _label_value(short_node_name(node_name))


def published_pool_name(pool_name: str, node_name: str | None) -> str:
    """The pool name as published: ``<node>/<pool>`` for node-local pools (node part shortened if needed)."""
    if node_name is None:
        return pool_name
    full = f"{node_name}/{pool_name}"
    if len(full) <= MAX_NAME_LENGTH:
        return full
    return f"{short_node_name(node_name)}/{pool_name}"


def _sanitize(text: str) -> str:
    out = []
    dash = False
    for ch in text.lower():
        if ("a" <= ch <= "z") or ("0" <= ch <= "9"):
            out.append(ch)
            dash = False
        elif not dash:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


def slice_object_name(driver: str, pool: str, template_pool_name: str, node_name: str | None, index: int) -> str:
    """The deterministic ``metadata.name`` of slice ``index`` of a pool (see the module docstring)."""
    digest, sanitized = _name_parts(driver, pool, template_pool_name, node_name)
    suffix = f"-{digest}-{index}"
    base = sanitized[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") or "slice"
    return base + suffix


@functools.lru_cache(maxsize=1024)
def _name_parts(driver: str, pool: str, template_pool_name: str, node_name: str | None) -> tuple[str, str]:
    """(digest, sanitized base) of a pool's slice names: computed once for the pool's slices (a DynamicMIG node
    has 9), not once per slice."""
    base = _sanitize(template_pool_name if node_name is None else f"{node_name}-{template_pool_name}") or "slice"
    return short_hash(f"{driver}\0{pool}"), base


# ------------------------------------------------------------------------------------------------------
# Rendering.


def _requirement_body(requirement: NodeSelectorRequirement) -> dict[str, Any]:
    body: dict[str, Any] = {"key": requirement.key, "operator": requirement.operator}
    if requirement.values:
        body["values"] = list(requirement.values)
    return body


def _term_body(term: NodeSelectorTerm) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if term.match_expressions:
        body["matchExpressions"] = [_requirement_body(r) for r in term.match_expressions]
    if term.match_fields:
        body["matchFields"] = [_requirement_body(r) for r in term.match_fields]
    return body


def _expand_string(item: Any, context: dict[str, Any]) -> Any:
    if isinstance(item, str) and "{{" in item:
        try:
            return expand_template(parse_template(item), **context)
        except TemplateError:
            pass  # rendered as written; validation reports it
    return item


def _copy_attribute(body: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if type(v) is list else v for k, v in body.items()}


def _attribute_body(value: AttributeValue, context: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, item in value.items():
        if key == "string":
            if "{{" in item:
                item = _expand_string(item, context)
        elif key == "strings" and isinstance(item, tuple):
            item = [_expand_string(i, context) for i in item]
        elif isinstance(item, tuple):
            item = list(item)
        body[key] = item
    return body


def _capacity_value(text: str) -> str:
    try:
        return canonical_quantity(text)
    except QuantityError:
        return text  # rendered as written; validation reports it


def _capacity_body(capacity: CapacityValue) -> dict[str, Any]:
    body: dict[str, Any] = {"value": _capacity_value(capacity.value)}
    policy = capacity.request_policy
    if policy is not None:
        rendered: dict[str, Any] = {}
        if policy.default is not None:
            rendered["default"] = _capacity_value(policy.default)
        if policy.valid_values is not None:
            rendered["validValues"] = [_capacity_value(v) for v in policy.valid_values]
        if policy.valid_range is not None:
            bounds = (("min", policy.valid_range.min), ("max", policy.valid_range.max),
                      ("step", policy.valid_range.step))
            rendered["validRange"] = {k: _capacity_value(v) for k, v in bounds if v is not None}
        body["requestPolicy"] = rendered
    return body


def _counters_body(counters: dict[str, CounterValue]) -> dict[str, Any]:
    return {name: {"value": _capacity_value(c.value)} for name, c in sorted(counters.items())}


def _extras(template: DeviceTemplate) -> dict[str, Any]:
    """The device fields beyond name, attributes and capacity (taint values are filled in per device)."""
    out: dict[str, Any] = {}
    if template.taints:
        out["taints"] = [{"key": t.key, **({"value": t.value} if t.value is not None else {}), "effect": t.effect}
                         for t in template.taints]
    if template.consumes_counters:
        out["consumesCounters"] = [{"counterSet": c.counter_set, "counters": _counters_body(c.counters),
                                    **({"compatibilityGroups": list(c.compatibility_groups)}
                                       if c.compatibility_groups else {})}
                                   for c in template.consumes_counters]
    if template.allow_multiple_allocations is not None:
        out["allowMultipleAllocations"] = template.allow_multiple_allocations
    if template.binds_to_node is not None:
        out["bindsToNode"] = template.binds_to_node
    if template.binding_conditions:
        out["bindingConditions"] = list(template.binding_conditions)
    if template.binding_failure_conditions:
        out["bindingFailureConditions"] = list(template.binding_failure_conditions)
    if template.all_nodes is not None:
        out["allNodes"] = template.all_nodes
    if template.node_allocatable_resources:
        out["nodeAllocatableResources"] = {name: _node_allocatable_body(entry) for name, entry
                                           in sorted(template.node_allocatable_resources.items())}
    return out


def _node_allocatable_body(entry: NodeAllocatableResource) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if entry.mapping is not None:
        m = entry.mapping
        body["mapping"] = {k: v if k == "capacityKey" else _capacity_value(v) for k, v in (
            ("capacityKey", m.capacity_key), ("capacityMultiplier", m.capacity_multiplier),
            ("deviceMultiplier", m.device_multiplier)) if v is not None}
    if entry.overhead is not None:
        o = entry.overhead
        body["overhead"] = {k: _capacity_value(v) for k, v in (("perPod", o.per_pod),
                                                               ("perContainer", o.per_container)) if v is not None}
    return body


def _device_nodes(template: DeviceTemplate, context: dict[str, Any]) -> dict[str, Any]:
    """A device's own nodeName / nodeSelector (per-device node selection), placeholders filled in."""
    out: dict[str, Any] = {}
    if template.node_name is not None:
        out["nodeName"] = _expand_string(template.node_name, context)
    if template.node_selector is not None:
        terms = [_term_body(t) for t in template.node_selector.node_selector_terms]
        for term in terms:
            for requirements in term.values():
                for requirement in requirements:
                    if "values" in requirement:
                        requirement["values"] = [_expand_string(v, context) for v in requirement["values"]]
        out["nodeSelector"] = {"nodeSelectorTerms": terms}
    return out


def _taints_body(taints: list[dict[str, Any]], context: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for taint in taints:
        if "value" in taint:
            taint = {**taint, "value": _expand_string(taint["value"], context)}
        out.append(taint)
    return out


def _expand(template: DeviceTemplate) -> list[tuple[str, int]]:
    if template.count is None:
        return [(template.name, 0)]
    return [(f"{template.name}-{i}", i) for i in range(max(0, template.count))]


def _devices(
    members: list[Mapping], driver: str, pool: str, node_name: str | None
) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = []
    total = 0
    for mapping in members:
        for template in mapping.resource_slice.devices:
            total += max(0, template.count if template.count is not None else 1)
            if total > _HARD_MAX_DEVICES_PER_POOL:
                raise RenderError(
                    [FieldError(f"mapping {mapping.name}", f"more than {_HARD_MAX_DEVICES_PER_POOL} devices in "
                                f"pool {pool!r}; refusing to render")]
                )
            # Bodies that do not depend on the device are built once per template and copied per device.
            attributes = sorted(template.attributes.items())
            dynamic = {k for k, v in attributes
                       if "{{" in (v.string or "") or any("{{" in i for i in v.strings or ())}
            static = {k: _attribute_body(v, {}) for k, v in attributes if k not in dynamic}
            listed = {k for k, body in static.items() if any(type(v) is list for v in body.values())}
            capacity = {k: _capacity_body(v) for k, v in sorted(template.capacity.items())}
            plain_capacity = all(len(v) == 1 for v in capacity.values())
            extras = _extras(template)
            dynamic_taints = any("{{" in (t.value or "") for t in template.taints or ())
            own_nodes = template.node_name is not None or template.node_selector is not None
            for name, index in _expand(template):
                device: dict[str, Any] = {"name": name}
                context = {"node_name": node_name, "device": name, "index": index, "driver": driver, "pool": pool}
                if attributes:
                    device["attributes"] = {
                        k: _attribute_body(v, context) if k in dynamic
                        else _copy_attribute(static[k]) if k in listed else dict(static[k])
                        for k, v in attributes
                    }
                if capacity:  # new containers per device; a request policy (rare) is copied whole
                    device["capacity"] = ({k: {"value": v["value"]} for k, v in capacity.items()} if plain_capacity
                                          else copy.deepcopy(capacity))
                if extras:
                    device.update(copy.deepcopy(extras))
                    if dynamic_taints:
                        device["taints"] = _taints_body(device["taints"], context)
                if own_nodes:
                    device.update(_device_nodes(template, context))
                devices.append(device)
    return devices


def _split(devices: list[dict[str, Any]], requested: int | None,
           per_slice: int = MAX_DEVICES_PER_SLICE) -> tuple[list[list[dict[str, Any]]], int]:
    """Contiguous, balanced runs of at most ``per_slice`` devices; returns (runs, their count)."""
    if requested is not None and requested > _HARD_MAX_SLICES_PER_POOL:
        raise RenderError([FieldError("pool.resourceSliceCount", f"{requested} slices; refusing to render more "
                                      f"than {_HARD_MAX_SLICES_PER_POOL}")])
    if requested is None:
        count = max(1, math.ceil(len(devices) / per_slice))
    elif requested < 1:
        return [devices], requested  # invalid, rendered as written (check=False)
    else:
        count = requested
    size, extra = divmod(len(devices), count)
    runs, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        runs.append(devices[start:end])
        start = end
    return runs, count


def _render_pool(config: Config, members: list[Mapping], node: NodeInfo | None, instance: str | None = None,
                 version: Version = DEFAULT) -> Pool:
    first = members[0]
    template = first.resource_slice
    driver = config.slice_driver(first)
    node_name = node.name if node is not None else None
    pool = published_pool_name(template.pool.name, node_name)
    requested = next(
        (m.resource_slice.pool.resource_slice_count for m in members
         if m.resource_slice.pool.resource_slice_count is not None),
        None,
    )
    devices = _devices(members, driver, pool, node_name)
    advanced = version.minor >= 35 and any("taints" in d or "consumesCounters" in d for d in devices)
    runs, device_slices = _split(devices, requested, MAX_DEVICES_PER_SLICE_ADVANCED if advanced
                                 else MAX_DEVICES_PER_SLICE)
    counter_sets = [{"name": s.name, "counters": _counters_body(s.counters)}
                    for m in members for s in m.resource_slice.shared_counters or ()]
    # 1.35+: counters and devices never share a slice; the counter slices come first, at most 8 sets each.
    # 1.34: the counter sets go with the devices into the first slice (consumesCounters must resolve in it).
    contents: list[dict[str, Any]] = []
    if counter_sets and version.minor >= 35:
        step = MAX_COUNTER_SETS_PER_SLICE
        contents = [{"sharedCounters": counter_sets[i:i + step]} for i in range(0, len(counter_sets), step)]
    contents += [{"devices": run} for run in runs]
    if counter_sets and version.minor < 35:
        contents[0] = {"sharedCounters": counter_sets, **contents[0]}
    # Profiles: their slices first, laid out as the real driver does for this version; the hand-written part
    # (if any) follows, and no empty slice is added when a profile publishes the pool alone.
    profiled = [render_profile(config, m, node_name, version.minor) for m in members
                if m.resource_slice.profile is not None] if node_name is not None else []
    if profiled:
        if not devices and not counter_sets:
            contents = []
        contents = [content for slices in profiled for content in slices] + contents
    published_count = len(contents) if profiled else device_slices + len(contents) - len(runs)

    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, MAPPING_LABEL: _label_value(first.name)}
    if node is not None:
        labels[NODE_LABEL] = node_label_value(node.name)
    if instance is not None:
        labels[INSTANCE_LABEL] = instance
    labels = dict(sorted(labels.items()))

    slices = []
    for index, content in enumerate(contents):
        metadata: dict[str, Any] = {
            "name": slice_object_name(driver, pool, template.pool.name, node_name, index),
            "labels": dict(labels),
        }
        spec: dict[str, Any] = {
            "driver": driver,
            "pool": {"name": pool, "generation": 0, "resourceSliceCount": published_count},
        }
        if node is not None:
            metadata["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid, "controller": True}
            ]
            spec["nodeName"] = node.name
        else:
            if template.all_nodes:
                spec["allNodes"] = True
            if template.node_selector is not None:
                spec["nodeSelector"] = {
                    "nodeSelectorTerms": [_term_body(t) for t in template.node_selector.node_selector_terms]
                }
            if template.per_device_node_selection is not None:
                spec["perDeviceNodeSelection"] = template.per_device_node_selection
        spec.update(content)
        if "devices" in content:  # the 1.37 alphas describe devices: never on a counters-only slice
            if template.skip_node_operations:
                spec["skipNodeOperations"] = list(template.skip_node_operations)
            if template.partition_type_attribute is not None and any("consumesCounters" in d
                                                                     for d in content["devices"]):
                spec["partitionTypeAttribute"] = template.partition_type_attribute
        slices.append({"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec})
    return Pool(driver=driver, name=pool, node_name=node_name, slices=tuple(slices))


def _groups(config: Config, mappings: Iterable[Mapping]) -> list[list[Mapping]]:
    """Mappings grouped by (driver, pool.name), groups and members in config order."""
    groups: dict[tuple[str, str], list[Mapping]] = {}
    for mapping in mappings:
        groups.setdefault((config.slice_driver(mapping), mapping.resource_slice.pool.name), []).append(mapping)
    return list(groups.values())


def _check(pools: list[Pool], version: Version) -> list[Pool]:
    problems: list[FieldError] = []
    for pool in pools:
        seen: dict[str, str] = {}
        for body in pool.slices:
            name = body["metadata"]["name"]
            for problem in validate_slice(body, version):
                if problem.severity == "error":
                    problems.append(FieldError(f"ResourceSlice {name}: {problem.path}", problem.message))
            for device in body["spec"].get("devices") or ():
                device_name = device.get("name")
                if device_name in seen:
                    problems.append(FieldError(
                        f"ResourceSlice {name}: spec.devices[name={device_name}]",
                        f"duplicate device name in pool {pool.name!r} (also in {seen[device_name]}); the scheduler "
                        "treats such a pool as invalid",
                    ))
                else:
                    seen[str(device_name)] = name
    if problems:
        raise RenderError(problems, "render")
    return pools


def _sort_key(pool: Pool) -> tuple[str, str, str]:
    return (pool.node_name or "", pool.driver, pool.name)


def render_node(config: Config, node: NodeInfo, *, check: bool = True, instance: str | None = None,
                version: Version = DEFAULT) -> list[Pool]:
    """The node-local pools of ``node``: every matching node-local mapping applied, sorted by (driver, name)."""
    matching = [m for m in config.mappings if not m.resource_slice.cluster_wide and node_matches(m, node)]
    pools = sorted((_render_pool(config, group, node, instance, version) for group in _groups(config, matching)),
                   key=_sort_key)
    return _check(pools, version) if check else pools


def render_cluster(config: Config, nodes: Iterable[NodeInfo], *, check: bool = True,
                   instance: str | None = None, version: Version = DEFAULT) -> list[Pool]:
    """The cluster-wide pools whose mapping matches at least one of ``nodes``, sorted by (driver, name)."""
    nodes = list(nodes)
    active = [
        m for m in config.mappings
        if m.resource_slice.cluster_wide and any(node_matches(m, n) for n in nodes)
    ]
    pools = sorted((_render_pool(config, group, None, instance, version) for group in _groups(config, active)),
                   key=_sort_key)
    return _check(pools, version) if check else pools


def render(config: Config, nodes: Iterable[NodeInfo], *, check: bool = True,
           version: Version = DEFAULT) -> list[Pool]:
    """All desired pools: cluster-wide ones first, then each node's, sorted by (node, driver, name).

    ``nodes`` must be the KWOK nodes only; the renderer does not filter.
    """
    nodes = list(nodes)
    pools = render_cluster(config, nodes, check=check, version=version)
    for node in nodes:
        pools.extend(render_node(config, node, check=check, version=version))
    return sorted(pools, key=_sort_key)


def render_all_groups(config: Config, node: NodeInfo, version: Version = DEFAULT) -> list[tuple[Mapping, Pool]]:
    """Every pool the config can produce, ignoring node selection, with the first mapping of each.

    Node-local pools are rendered for ``node``.  Used by validation to check rendered output against the
    apiserver's rules without needing a node that matches each mapping.
    """
    local = [m for m in config.mappings if not m.resource_slice.cluster_wide]
    cluster = [m for m in config.mappings if m.resource_slice.cluster_wide]
    out = [(group[0], _render_pool(config, group, node, version=version)) for group in _groups(config, local)]
    out += [(group[0], _render_pool(config, group, None, version=version)) for group in _groups(config, cluster)]
    return out

