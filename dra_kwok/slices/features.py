"""Which ResourceSlice fields a kube-apiserver of a given version keeps: the DRA feature gates, as data.

Why a table: a field whose gate is off is not refused by the apiserver, it is silently dropped before validation
(``dropDisabledFields``): validation warns about it and the driver, which sees the drop in the write's answer,
reports it instead of rewriting forever; a few are dropped into an invalid object (422), an error. What is on
depends on the minor version (stage and default) and on ``--feature-gates``.
Source: kube_features.go of v1.37.2 (history 1.34..1.37), see /work/shared/reference/real-drivers.md §7.1-7.2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DEFAULT",
    "FEATURES",
    "MINORS",
    "Feature",
    "Stage",
    "Version",
    "default_on_since",
    "enabled",
    "gate_of",
]

Stage = Literal["alpha", "beta", "GA", "GA-locked"]
WhenOff = Literal["drop", "reject"]
MINORS = (34, 35, 36, 37)


@dataclass(frozen=True)
class Feature:
    """One feature gate: the slice fields it governs and, per minor version, (stage, on by default)."""

    gate: str
    fields: tuple[str, ...]  # spec paths with [] for list items, e.g. "devices[].taints"
    stages: Mapping[int, tuple[Stage, bool]]  # minor -> (stage, default); a missing minor: the gate does not exist
    when_off: WhenOff  # what an apiserver without the gate does with a slice using these fields
    requires: tuple[str, ...] = ()  # further gates the fields need


def _s(**by_minor: tuple[Stage, bool]) -> Mapping[int, tuple[Stage, bool]]:
    return MappingProxyType({int(k[1:]): v for k, v in by_minor.items()})


_A: tuple[Stage, bool] = ("alpha", False)
_B_OFF: tuple[Stage, bool] = ("beta", False)
_B: tuple[Stage, bool] = ("beta", True)
_GA: tuple[Stage, bool] = ("GA", True)
_LOCKED: tuple[Stage, bool] = ("GA-locked", True)
_PARTITION_FIELDS = ("sharedCounters", "devices[].consumesCounters", "perDeviceNodeSelection", "devices[].nodeName",
                     "devices[].nodeSelector", "devices[].allNodes")
_BINDING_FIELDS = ("devices[].bindsToNode", "devices[].bindingConditions", "devices[].bindingFailureConditions")

FEATURES: Mapping[str, Feature] = MappingProxyType({f.gate: f for f in (
    Feature("DRADeviceTaints", ("devices[].taints",), _s(v34=_A, v35=_A, v36=_B, v37=_GA), "drop"),
    Feature("DRADeviceTaintRules", (), _s(v35=_A, v36=_B_OFF, v37=_GA), "drop"),
    # perDeviceNodeSelection dropped leaves a slice without node selection: 422; counters are dropped silently.
    Feature("DRAPartitionableDevices", _PARTITION_FIELDS, _s(v34=_A, v35=_A, v36=_B, v37=_B), "drop"),
    Feature("DRAConsumableCapacity", ("devices[].allowMultipleAllocations", "devices[].capacity{}.requestPolicy"),
            _s(v34=_A, v35=_A, v36=_B, v37=_B), "drop"),
    Feature("DRAFractionalCapacityRange", ("devices[].capacity{}.requestPolicy.validRange",), _s(v37=_B), "drop",
            requires=("DRAConsumableCapacity",)),
    Feature("DRADeviceBindingConditions", _BINDING_FIELDS, _s(v34=_A, v35=_A, v36=_B, v37=_B), "drop",
            requires=("DRAResourceClaimDeviceStatus",)),
    Feature("DRAResourceClaimDeviceStatus", _BINDING_FIELDS, _s(v34=_B, v35=_B, v36=_B, v37=_LOCKED), "drop"),
    Feature("DRAListTypeAttributes", ("devices[].attributes{}.ints", "devices[].attributes{}.bools",
                                      "devices[].attributes{}.strings", "devices[].attributes{}.versions"),
            _s(v36=_A, v37=_A), "reject"),
    Feature("DRANodeAllocatableResources", ("devices[].nodeAllocatableResources",), _s(v36=_A, v37=_A), "drop"),
    # the apiserver refuses to start with DRAPartitionableDevicesType on and DRAResourcePoolStatus off
    Feature("DRAPartitionableDevicesType", ("partitionTypeAttribute",), _s(v37=_A), "drop",
            requires=("DRAPartitionableDevices", "DRAResourcePoolStatus")),
    Feature("DRADeviceCompatibilityGroups", ("devices[].consumesCounters[].compatibilityGroups",), _s(v37=_A), "drop",
            requires=("DRAPartitionableDevices",)),
    Feature("DRAOptionalNodeOperations", ("skipNodeOperations",), _s(v37=_A), "drop"),
    Feature("DRAResourcePoolStatus", (), _s(v36=_A, v37=_A), "drop"),
    Feature("DynamicResourceAllocation", (), _s(v34=_GA, v35=_LOCKED, v36=_LOCKED, v37=_LOCKED), "reject"),
)})


def enabled(minor: int, gates_override: Mapping[str, bool] | None = None) -> frozenset[str]:
    """The gates on in an apiserver 1.<minor> started with ``--feature-gates`` = ``gates_override``.

    Like the apiserver, refuses (ValueError) a gate that version does not know and a locked GA gate set to false.
    Only the table's own gates count: a gate whose ``requires`` is off is reported off.
    """
    if minor not in MINORS:
        raise ValueError(f"Kubernetes 1.{minor} is not supported; supported: {', '.join(f'1.{m}' for m in MINORS)}")
    overrides = dict(gates_override or {})
    for gate in overrides:
        if gate not in FEATURES:
            raise ValueError(f"unrecognized feature gate {gate!r}: the DRA gates are {', '.join(sorted(FEATURES))}")
    on = set()
    for gate, feature in FEATURES.items():
        stage = feature.stages.get(minor)
        if gate in overrides:
            if stage is None:
                raise ValueError(f"unrecognized feature gate {gate!r} on Kubernetes 1.{minor}")
            if stage[0] == "GA-locked" and overrides[gate] is not True:
                raise ValueError(f"cannot set feature gate {gate} to false on Kubernetes 1.{minor}: it is locked to "
                                 "true")
        if stage is not None and overrides.get(gate, stage[1]):
            on.add(gate)
    return frozenset(g for g in on if all(r in on for r in FEATURES[g].requires))


def default_on_since(gate: str) -> int | None:
    """The first minor version (of 34..37) with ``gate`` on by default, None if none."""
    return next((m for m in MINORS if FEATURES[gate].stages.get(m, ("alpha", False))[1]), None)


def gate_of(field_path: str) -> str:
    """The gate governing a field (a :attr:`Feature.fields` entry); the first such gate of the table."""
    return next(g for g, f in FEATURES.items() if field_path in f.fields)


@dataclass(frozen=True)
class Version:
    """An apiserver to validate for: its minor version and its ``--feature-gates`` overrides."""

    minor: int = 37
    feature_gates: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    _features: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_gates", MappingProxyType(dict(self.feature_gates)))
        # refuses an unknown version or gate now; computed once (the rules ask for every device)
        object.__setattr__(self, "_features", enabled(self.minor, self.feature_gates))

    def __hash__(self) -> int:
        return hash((self.minor, tuple(sorted(self.feature_gates.items()))))

    @property
    def features(self) -> frozenset[str]:
        return self._features

    def on(self, gate: str) -> bool:
        return gate in self.features

    def __str__(self) -> str:
        gates = ",".join(f"{k}={str(v).lower()}" for k, v in sorted(self.feature_gates.items()))
        return f"1.{self.minor}" + (f" (--feature-gates={gates})" if gates else "")

    @classmethod
    def parse(cls, version: str, feature_gates: str = "") -> Version:
        """``"1.37"`` (or ``v1.37.2``) and ``"A=true,B=false"`` -> a Version; ValueError with the reason."""
        text = version.strip().lstrip("v")
        parts = text.split(".")
        if len(parts) not in (2, 3) or parts[0] != "1" or not all(p.isdigit() for p in parts):
            raise ValueError(f"{version!r} is not a Kubernetes version like 1.37")
        gates: dict[str, bool] = {}
        for item in filter(None, (i.strip() for i in feature_gates.split(","))):
            name, sep, value = item.partition("=")
            if not sep or value.lower() not in ("true", "false"):
                raise ValueError(f"{item!r}: feature gates are Name=true or Name=false")
            gates[name.strip()] = value.lower() == "true"
        return cls(int(parts[1]), gates)


DEFAULT = Version()
