"""The dra-kwok config model: what a user writes in the ConfigMap, as typed, immutable Python values.

Why these shapes:

* Field names follow Kubernetes casing in YAML (``nodeSelectorTerms``, ``resourceSliceCount``) through
  dataclasses-json's ``LetterCase.CAMEL``, so a config reads like the ResourceSlice it produces.
* The model is deliberately *smaller* than ``resource.k8s.io/v1``: only what a fake device needs, plus
  ``count`` (expand one template into N devices).  Fields the driver owns (``nodeName``, ``generation``) are not
  representable.  The beta fields of 1.36/1.37 (taints, counters, consumable capacity, binding conditions) are;
  whether a given apiserver keeps them is decided per Kubernetes version by :mod:`dra_kwok.slices.rules`.
* Everything is frozen and sequences are tuples, so one loaded ``Config`` can be shared between threads
  (the ConfigMap watcher and the slice controller) without copying, compared with ``==`` and hashed (e.g. to
  cache rendering per config).  Maps (``attributes``, ``capacity``) are dicts; do not mutate them.

Nothing here validates: :func:`dra_kwok.config.loader.load_config` checks *structure* (field names and
types) and :func:`dra_kwok.config.validation.validate` checks *rules* (name formats, limits).

dataclasses-json stays the model's (de)serialisation API (``Config.from_dict`` / ``to_dict``), but its
``from_dict`` re-derives every class's type hints for every object it decodes (``get_type_hints`` compiles the
annotations again each time): 30,000 devices cost about 9 s.  The loader has already checked every field's
name and type, so it decodes with :func:`decode`, which reads the same dataclasses-json metadata (letter case,
``field_name`` overrides) once per class and then only calls constructors: linear, about 100 times faster,
and equal by value to ``from_dict`` (a unit test compares both on the examples and the corpus).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional, cast

from dataclasses_json import LetterCase, config, dataclass_json

__all__ = [
    "AttributeValue",
    "BindingSimulation",
    "CapacityValue",
    "Config",
    "CounterConsumption",
    "CounterSet",
    "CounterValue",
    "DeviceTemplate",
    "Mapping",
    "NodeSelector",
    "NodeSelectorRequirement",
    "NodeAllocatableMapping",
    "NodeAllocatableOverhead",
    "NodeAllocatableResource",
    "NodeSelectorTerm",
    "PROFILE_DRIVERS",
    "PoolTemplate",
    "RequestPolicy",
    "ResourceSliceTemplate",
    "Taint",
    "ValidRange",
    "decode",
]


# dataclasses-json's LetterCase is an Enum whose values are functions, which type checkers read as methods, not
# members: the cast says what it is at run time.
_CAMEL = cast(LetterCase, LetterCase.CAMEL)


def _is_none(value: Any) -> bool:
    return value is None


def _optional(**kwargs: Any) -> Any:
    """An optional field: ``None`` when absent, and left out of ``to_dict()`` output."""
    return field(default=None, metadata=config(exclude=_is_none, **kwargs))


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class NodeSelectorRequirement:
    """``{key, operator, values}`` with upstream ``NodeSelectorRequirement`` semantics."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class NodeSelectorTerm:
    """Requirements ANDed together; a term with none matches no node (as upstream)."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = ()
    match_fields: tuple[NodeSelectorRequirement, ...] = ()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class NodeSelector:
    """A ResourceSlice's ``spec.nodeSelector`` (the apiserver wants exactly one term)."""

    node_selector_terms: tuple[NodeSelectorTerm, ...] = ()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class AttributeValue:
    """A device attribute; exactly one of the eight should be set.

    The YAML keys are ``string``/``int``/``bool``/``version`` (the loader also accepts the original Go
    driver's ``String``/``Int``/``Bool``/``Version``) and the list-type ``strings``/``ints``/``bools``/``versions``
    (Kubernetes 1.36+ with the alpha feature gate DRAListTypeAttributes).  ``string`` values and ``strings`` items
    may contain placeholders, see :mod:`dra_kwok.slices.render`.
    """

    string: Optional[str] = _optional()
    int_: Optional[int] = _optional(field_name="int")
    bool_: Optional[bool] = _optional(field_name="bool")
    version: Optional[str] = _optional()
    strings: Optional[tuple[str, ...]] = _optional()
    ints: Optional[tuple[int, ...]] = _optional()
    bools: Optional[tuple[bool, ...]] = _optional()
    versions: Optional[tuple[str, ...]] = _optional()

    def items(self) -> list[tuple[str, Any]]:
        """The set values as ``(kubernetes key, value)`` pairs, in a fixed order."""
        pairs: list[tuple[str, Any]] = [("bool", self.bool_), ("int", self.int_), ("string", self.string),
                                        ("version", self.version)]
        if self.bools is not None or self.ints is not None or self.strings is not None or self.versions is not None:
            pairs += [("bools", self.bools), ("ints", self.ints), ("strings", self.strings),
                      ("versions", self.versions)]
        return [(k, v) for k, v in pairs if v is not None]


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class ValidRange:
    """``requestPolicy.validRange``: requests from ``min`` (to ``max``) in steps of ``step``."""

    min: str
    max: Optional[str] = _optional()
    step: Optional[str] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class RequestPolicy:
    """How much of a consumable capacity one allocation may take (needs ``allowMultipleAllocations: true``)."""

    default: Optional[str] = _optional()
    valid_values: Optional[tuple[str, ...]] = _optional()
    valid_range: Optional[ValidRange] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class CapacityValue:
    """A device capacity: ``{value: <Kubernetes quantity>}``, e.g. ``{value: 16Gi}``, optionally a request policy."""

    value: str
    request_policy: Optional[RequestPolicy] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class CounterValue:
    """A counter's amount: ``{value: <Kubernetes quantity>}``."""

    value: str


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class CounterSet:
    """A pool-level ``sharedCounters`` entry: named counters that devices of the pool consume."""

    name: str
    counters: dict[str, CounterValue] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.counters.items()))))


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class CounterConsumption:
    """A device's ``consumesCounters`` entry: what it takes from one counter set of its pool."""

    counter_set: str
    counters: dict[str, CounterValue] = field(default_factory=dict)
    compatibility_groups: Optional[tuple[str, ...]] = _optional()  # 1.37 alpha DRADeviceCompatibilityGroups

    def __hash__(self) -> int:
        return hash((self.counter_set, tuple(sorted(self.counters.items())), self.compatibility_groups))


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class Taint:
    """A device taint ``{key, value, effect}``; ``value`` may contain placeholders."""

    key: str
    effect: str
    value: Optional[str] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class NodeAllocatableMapping:
    """How an allocation maps to a node-allocatable quantity: ``capacityKey`` × ``capacityMultiplier`` (of the
    consumed capacity), or ``deviceMultiplier`` × allocated devices."""

    capacity_key: Optional[str] = _optional()
    capacity_multiplier: Optional[str] = _optional()
    device_multiplier: Optional[str] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class NodeAllocatableOverhead:
    """A node-allocatable overhead per pod and/or per container referencing the claim."""

    per_pod: Optional[str] = _optional()
    per_container: Optional[str] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class NodeAllocatableResource:
    """One ``nodeAllocatableResources`` entry (1.37 shape, alpha DRANodeAllocatableResources)."""

    mapping: Optional[NodeAllocatableMapping] = _optional()
    overhead: Optional[NodeAllocatableOverhead] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class DeviceTemplate:
    """One device, or with ``count: N`` the N devices ``<name>-0`` … ``<name>-(N-1)``."""

    name: str
    count: Optional[int] = _optional()
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    capacity: dict[str, CapacityValue] = field(default_factory=dict)
    taints: Optional[tuple[Taint, ...]] = _optional()
    allow_multiple_allocations: Optional[bool] = _optional()
    binds_to_node: Optional[bool] = _optional()
    binding_conditions: Optional[tuple[str, ...]] = _optional()
    binding_failure_conditions: Optional[tuple[str, ...]] = _optional()
    consumes_counters: Optional[tuple[CounterConsumption, ...]] = _optional()
    # per-device node selection (only with the slice's perDeviceNodeSelection: true); strings may hold placeholders
    node_name: Optional[str] = _optional()
    node_selector: Optional[NodeSelector] = _optional()
    all_nodes: Optional[bool] = _optional()
    node_allocatable_resources: Optional[dict[str, NodeAllocatableResource]] = _optional()

    def __hash__(self) -> int:  # the maps are dicts; hash their sorted items so Config stays hashable
        return hash((self.name, self.count, tuple(sorted(self.attributes.items())),
                     tuple(sorted(self.capacity.items())), self.taints, self.allow_multiple_allocations,
                     self.binds_to_node, self.binding_conditions, self.binding_failure_conditions,
                     self.consumes_counters, self.node_name, self.node_selector, self.all_nodes,
                     tuple(sorted((self.node_allocatable_resources or {}).items()))))


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class PoolTemplate:
    """The pool as written: node-local pools are published as ``<node>/<name>``."""

    name: str
    resource_slice_count: Optional[int] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class ResourceSliceTemplate:
    """What to publish for a mapping.

    Node selection: neither ``all_nodes`` nor ``node_selector`` means one node-local pool per matching node
    (the driver sets ``nodeName``); ``all_nodes: true``, a one-term ``node_selector`` or
    ``per_device_node_selection: true`` (each device says where it is available) means one cluster-wide
    pool.  ``driver`` defaults to the config's top-level driver.
    """

    pool: PoolTemplate
    devices: tuple[DeviceTemplate, ...] = ()
    driver: Optional[str] = _optional()
    all_nodes: Optional[bool] = _optional()
    node_selector: Optional[NodeSelector] = _optional()
    shared_counters: Optional[tuple[CounterSet, ...]] = _optional()
    per_device_node_selection: Optional[bool] = _optional()
    partition_type_attribute: Optional[str] = _optional()  # 1.37 alpha DRAPartitionableDevicesType
    skip_node_operations: Optional[tuple[str, ...]] = _optional()  # 1.37 alpha DRAOptionalNodeOperations
    #: a built-in device profile (``{name: nvidia-gpu, model: ..., count: ...}``) published beside ``devices``;
    #: its parameters are free-form here (each profile has its own) and checked by :mod:`dra_kwok.accept`
    profile: Optional[dict[str, Any]] = _optional()

    def __hash__(self) -> int:  # ``profile`` is a dict (values may be lists): hash a frozen copy of it
        frozen = None if self.profile is None else tuple(sorted(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in self.profile.items()))
        return hash(tuple(frozen if f.name == "profile" else getattr(self, f.name) for f in fields(self)))

    @property
    def cluster_wide(self) -> bool:
        return bool(self.all_nodes) or self.node_selector is not None or bool(self.per_device_node_selection)

    @property
    def profile_name(self) -> Optional[str]:
        name = (self.profile or {}).get("name")
        return name if isinstance(name, str) else None


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class BindingSimulation:
    """dra-kwok playing the driver of devices with ``bindingConditions``: ``delay`` (a Go duration, from the claim's
    allocation) after a ResourceClaim is allocated one of the mapping's devices, set the device's binding conditions
    (``outcome: ready``) or its first binding failure condition (``outcome: fail``) to True in the claim's
    ``status.devices``.  Not part of the ResourceSlice: the driver's behaviour, so it sits on the mapping."""

    delay: Optional[str] = _optional()
    outcome: Optional[str] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class Mapping:
    """Nodes matching ``node_selector_terms`` (ORed) get ``resource_slice``."""

    name: str
    node_selector_terms: tuple[NodeSelectorTerm, ...]
    resource_slice: ResourceSliceTemplate
    binding_simulation: Optional[BindingSimulation] = _optional()


@dataclass_json(letter_case=_CAMEL)
@dataclass(frozen=True)
class Config:
    """The whole config: a default DRA driver name and the mappings, applied in order."""

    driver: str
    mappings: tuple[Mapping, ...] = ()

    def slice_driver(self, mapping: Mapping) -> str:
        """The driver a mapping publishes under: its own if set; for a profile, else the profile's ``driver``
        parameter, else the real driver's name (:data:`PROFILE_DRIVERS`); else the config's."""
        template = mapping.resource_slice
        if template.driver is not None:
            return template.driver
        if template.profile is not None:
            own = template.profile.get("driver")
            if isinstance(own, str):
                return own
            default = PROFILE_DRIVERS.get(template.profile_name or "")
            if default is not None:
                return default
        return self.driver


#: The DRA driver name each built-in profile publishes under by default (the real driver's). The profiles live in
#: :mod:`dra_kwok.slices.profiles`, a higher layer; a unit test keeps this table equal to theirs.
PROFILE_DRIVERS = {
    "nvidia-gpu": "gpu.nvidia.com",
    "example-gpu": "gpu.example.com",
    "cpu": "dra.cpu",
    "nic": "dra.net",
    "intel-gpu": "gpu.intel.com",
    "amd-gpu": "gpu.amd.com",
}


# ------------------------------------------------------------------------------------------------------
# The loader's fast path: checked plain data -> dataclasses, with a decoder per type built once.

_Decoder = Callable[[Any], Any]
_DECODERS: dict[Any, _Decoder] = {}


def _identity(value: Any) -> Any:
    return value


def _decoder(tp: Any) -> _Decoder:
    """The decoder of type ``tp`` (a model dataclass, ``tuple[X, ...]``, ``dict[str, X]``, ``Optional[X]`` or a
    scalar), built once and cached."""
    found = _DECODERS.get(tp)
    if found is not None:
        return found
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        decoder = _dataclass_decoder(tp)
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])
        decoder = (lambda v: tuple(v)) if item is _identity else (lambda v: tuple(item(x) for x in v))
    elif origin is dict:
        value = _decoder(args[1])
        decoder = (lambda v: dict(v)) if value is _identity else (lambda v: {k: value(x) for k, x in v.items()})
    elif origin is typing.Union and type(None) in args and len(args) == 2:
        inner = _decoder(next(a for a in args if a is not type(None)))
        decoder = inner if inner is _identity else (lambda v: None if v is None else inner(v))
    elif tp in (str, int, bool, Any):
        decoder = _identity
    else:  # pragma: no cover - a new field type must be taught here (the equality test would fail first)
        raise TypeError(f"no fast decoder for {tp!r}")
    _DECODERS[tp] = decoder
    return decoder


def _dataclass_decoder(cls: type) -> _Decoder:
    """Field map of ``cls``: (key as written, Python name, decoder), keys as dataclasses-json names them."""
    hints = typing.get_type_hints(cls)
    case = getattr(cls, "dataclass_json_config", None) or {}
    default_case = case.get("letter_case") or _identity
    plan = []
    for f in dataclasses.fields(cls):
        override = f.metadata.get("dataclasses_json", {}).get("letter_case")
        key = override(f.name) if override is not None else default_case(f.name)
        plan.append((key, f.name, _decoder(hints[f.name])))

    def decode_one(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        kwargs = {}
        for key, name, decode_field in plan:
            if key in value:
                item = value[key]
                kwargs[name] = None if item is None else decode_field(item)
        return cls(**kwargs)

    return decode_one


def decode(cls: type[Any], data: dict[str, Any]) -> Any:
    """``cls.from_dict(data)`` for plain data the loader has already checked (known keys, right types), without
    dataclasses-json's per-object type-hint evaluation.  Missing fields take their defaults; unknown keys are
    ignored, as ``from_dict`` does."""
    return _decoder(cls)(data)
