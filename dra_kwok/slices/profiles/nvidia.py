"""``nvidia-gpu``: what kubernetes-sigs/dra-driver-nvidia-gpu (``gpu.nvidia.com``) publishes for a node.

Why this much detail: the point of a profile is that DeviceClasses, CEL selectors and MIG-aware schedulers
written for the real driver work unchanged against the fake one. Everything below follows
shared/reference/real-drivers.md §1 (device names §1.2, attributes §1.3, capacities §1.4, DynamicMIG counters
§1.5, slice layout §1.6, taints and consumable shares §1.7, worked example §1.8).

Modes: ``full`` (whole GPUs, one slice), ``static-mig`` (a given MIG layout on every GPU; as in the driver, a GPU
in MIG mode publishes its MIG devices and not itself), ``dynamic-mig`` (the DynamicMIG gate: every placement of
every MIG profile, with one counter set per GPU; split into a counters-only slice plus one slice per GPU on
apiservers >= 1.35, combined counter set + devices per GPU before). Ampere (A100) in DynamicMIG does not publish
the full GPU, only its counter set, as the real driver does when MIG mode was on at start.

Illustrative values (the real driver reads them from the machine): GPU/MIG UUIDs are UUIDv5 of (driver, node,
device), unique per node and device; PCI bus ids, PCIe roots and NUMA nodes follow a fixed 8-GPU HGX layout,
the same on every node, as on identical real servers. Static MIG placements are the first that fit (ascending
starts, largest profile first) (NVML's own choice is not specified by the reference).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from dra_kwok.config.quantity import canonical_quantity
from dra_kwok.slices.profiles.model import Param, Profile, Slice, device_uuid

__all__ = ["NVIDIA_GPU", "MODELS", "NON_FATAL_XIDS"]

#: XIDs the driver's health check treats as application errors (effect None instead of NoSchedule).
#: The reference (§1.7) names the rule but not the list; this is the NVIDIA device plugin's default skip list.
NON_FATAL_XIDS = frozenset({13, 31, 43, 45, 68, 109})

_ENGINES = ("multiprocessors", "copyEngines", "decoders", "encoders", "jpegEngines", "ofaEngines")
_COUNTER_NAME = {"multiprocessors": "multiprocessors", "copyEngines": "copy-engines", "decoders": "decoders",
                 "encoders": "encoders", "jpegEngines": "jpeg-engines", "ofaEngines": "ofa-engines",
                 "memory": "memory"}


@dataclass(frozen=True)
class MigProfile:
    """One GI profile of a GPU model, from §1.5's tables (memory in MiB)."""

    name: str  # nvidia-smi's, e.g. 1g.10gb+me
    gi_id: int
    starts: tuple[int, ...]
    size: int
    multiprocessors: int
    copyEngines: int
    decoders: int
    encoders: int
    jpegEngines: int
    ofaEngines: int
    memory_mib: int

    @property
    def canonical(self) -> str:
        """§1.2: dots removed, anything outside [a-z0-9-] turned into '-'."""
        return re.sub(r"[^a-z0-9-]", "-", self.name.replace(".", ""))

    def capacities(self) -> dict[str, str]:
        out = {k: str(getattr(self, k)) for k in _ENGINES}
        out["memory"] = f"{self.memory_mib}Mi"
        return out


@dataclass(frozen=True)
class GpuModel:
    product: str
    architecture: str
    compute_capability: str
    memory: str  # full GPU without DynamicMIG (NVML total)
    full_in_dynamic_mig: bool  # Hopper+: yes; Ampere: no (§1.5)
    bus_ids: tuple[str, ...]  # 8 GPUs, ordered; illustrative
    migs: tuple[MigProfile, ...]
    balanced: tuple[str, ...]  # mig-parted's all-balanced layout


def _p(name: str, gi: int, starts: tuple[int, ...], size: int, *values: int) -> MigProfile:
    return MigProfile(name, gi, starts, size, *values)


_SEVEN = tuple(range(7))
MODELS: dict[str, GpuModel] = {
    "H100-80GB": GpuModel(
        "NVIDIA H100 80GB HBM3", "Hopper", "9.0.0", "81559Mi", True,
        ("1b", "43", "52", "61", "9d", "c3", "d1", "df"),
        (
            _p("1g.10gb", 19, _SEVEN, 1, 16, 1, 1, 0, 1, 0, 9984),
            _p("1g.10gb+me", 20, _SEVEN, 1, 16, 1, 1, 0, 1, 1, 9984),
            _p("1g.20gb", 15, (0, 2, 4, 6), 2, 26, 1, 1, 0, 1, 0, 20096),
            _p("2g.20gb", 14, (0, 2, 4), 2, 32, 2, 2, 0, 2, 0, 20096),
            _p("3g.40gb", 9, (0, 4), 4, 60, 3, 3, 0, 3, 0, 40448),
            _p("4g.40gb", 5, (0,), 4, 64, 4, 4, 0, 4, 0, 40448),
            _p("7g.80gb", 0, (0,), 8, 132, 8, 7, 0, 7, 1, 81152),
        ),
        ("1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"),
    ),
    "A100-SXM4-40GB": GpuModel(
        "NVIDIA A100-SXM4-40GB", "Ampere", "8.0.0", "40Gi", False,
        ("07", "0f", "47", "4e", "87", "90", "b7", "bd"),
        (
            _p("1g.5gb", 19, _SEVEN, 1, 14, 1, 0, 0, 0, 0, 4864),
            _p("1g.5gb+me", 20, _SEVEN, 1, 14, 1, 1, 0, 1, 1, 4864),
            _p("1g.10gb", 15, (0, 2, 4, 6), 2, 14, 1, 1, 0, 0, 0, 9856),
            _p("2g.10gb", 14, (0, 2, 4), 2, 28, 2, 1, 0, 0, 0, 9856),
            _p("3g.20gb", 9, (0, 4), 4, 42, 3, 2, 0, 0, 0, 19968),
            _p("4g.20gb", 5, (0,), 4, 56, 4, 2, 0, 0, 0, 19968),
            _p("7g.40gb", 0, (0,), 8, 98, 7, 5, 0, 1, 1, 40192),
        ),
        ("1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"),
    ),
}

MEMORY_SLICES = 8  # largest placement size on A100/H100
MODES = ("full", "static-mig", "dynamic-mig")
SHARES = ("disabled", "unlimited", "memory")
_TAINT = re.compile(r"(?P<device>[a-z0-9-]+)=(?:xid:(?P<xid>[0-9]{1,5})|(?P<kind>gpu-lost|unmonitored))")


def _q(text: str) -> dict[str, str]:
    return {"value": canonical_quantity(text)}


def _gpu_attributes(model: GpuModel, index: int) -> dict[str, Any]:
    bus = model.bus_ids[index]
    root = f"{int(bus, 16) - 1:02x}"
    return {
        "addressingMode": {"string": "HMM"},
        "architecture": {"string": model.architecture},
        "brand": {"string": "Nvidia"},
        "cudaComputeCapability": {"version": model.compute_capability},
        "cudaDriverVersion": {"version": "13.0.0"},
        "driverVersion": {"version": "580.126.20"},
        "productName": {"string": model.product},
        "resource.kubernetes.io/numaNode": {"int": 0 if index < 4 else 1},
        "resource.kubernetes.io/pciBusID": {"string": f"0000:{bus}:00.0"},
        "resource.kubernetes.io/pcieRoot": {"string": f"pci0000:{root}"},
        "type": {"string": "gpu"},
    }


def _layout(model: GpuModel, spec: str) -> tuple[list[tuple[MigProfile, int]], list[str]]:
    """A static MIG layout: ``all-1g``, ``all-balanced``, ``all-7g`` or ``profile[@start],...``; placed by
    a first-fit search, largest first. Returns (placements sorted by start, problems)."""
    by_name = {m.name: m for m in model.migs}
    wanted: list[tuple[str, int | None]]
    if spec == "all-1g":
        wanted = [(model.migs[0].name, None)] * 7
    elif spec == "all-balanced":
        wanted = [(n, None) for n in model.balanced]
    elif spec == "all-7g":
        wanted = [(model.migs[-1].name, None)]
    else:
        wanted = []
        for item in (part.strip() for part in spec.split(",")):
            name, _, start = item.partition("@")
            if not start.isdigit() and start:
                return [], [f"profile.migLayout: {item!r}: the placement after @ must be a number"]
            wanted.append((name, int(start) if start else None))
    unknown = [n for n, _ in wanted if n not in by_name]
    if unknown:
        return [], [f"profile.migLayout: unknown MIG profile {unknown[0]!r} for this model; known: "
                    f"{', '.join(by_name)} (or all-1g, all-balanced, all-7g)"]
    order = sorted(wanted, key=lambda w: (w[1] is None, -by_name[w[0]].size))
    for name, at in order:
        if at is not None and at not in by_name[name].starts:
            return [], [f"profile.migLayout: {name}@{at}: valid placements are {list(by_name[name].starts)}"]

    def place(i: int, used: frozenset[int]) -> list[tuple[MigProfile, int]] | None:
        """Backtracking: the first assignment trying starts in ascending order, largest profiles first."""
        if i == len(order):
            return []
        mig = by_name[order[i][0]]
        wanted_start = order[i][1]
        for s in (mig.starts if wanted_start is None else (wanted_start,)):
            cells = frozenset(range(s, s + mig.size))
            if not used & cells:
                rest = place(i + 1, used | cells)
                if rest is not None:
                    return [(mig, s), *rest]
        return None

    placed = place(0, frozenset()) if len(order) <= 7 else None
    if placed is None:
        return [], [f"profile.migLayout: {spec!r} does not fit on one GPU (at most 7 instances over 8 memory "
                    "slices)"]
    return sorted(placed, key=lambda p: p[1]), []


def _mig_name(minor: int, mig: MigProfile, start: int) -> str:
    return f"gpu-{minor}-mig-{mig.canonical}-{mig.gi_id}-{start}"


def _device_names(params: dict[str, Any]) -> list[str]:
    model = MODELS[params["model"]]
    names = []
    for minor in range(params["count"]):
        if params["mode"] == "full":
            names.append(f"gpu-{minor}")
        elif params["mode"] == "static-mig":
            names += [_mig_name(minor, m, s) for m, s in _layout(model, params["migLayout"])[0]]
        else:
            names += [f"gpu-{minor}"] if model.full_in_dynamic_mig else []
            names += [_mig_name(minor, m, s) for m in model.migs for s in m.starts]
    return names


def _cross_check(params: dict[str, Any]) -> list[str]:
    model = MODELS[params["model"]]
    problems = []
    if params["mode"] == "static-mig":
        problems += _layout(model, params["migLayout"])[1]
    elif params["migLayout"] != "all-1g":
        problems.append("profile.migLayout: only used with mode: static-mig")
    taints = params["healthTaints"]
    if taints and params["mode"] == "dynamic-mig":
        problems.append("profile.healthTaints: the driver's health check (NVMLDeviceHealthCheck) is mutually "
                        "exclusive with DynamicMIG; use mode full or static-mig")
    if problems:
        return problems
    names = set(_device_names(params))
    for spec in taints:
        match = _TAINT.fullmatch(spec)
        if not match:
            problems.append(f"profile.healthTaints: {spec!r} is not <device>=xid:<N>, <device>=gpu-lost or "
                            "<device>=unmonitored")
        elif match["device"] not in names:
            problems.append(f"profile.healthTaints: {spec!r}: no device {match['device']!r} on a node "
                            f"(devices: {', '.join(sorted(names)[:4])}, ...)")
    return problems


def _taints(specs: list[str]) -> dict[str, list[dict[str, str]]]:
    """§1.7: device name -> its taints (timeAdded left empty, as the driver does)."""
    out: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        m = _TAINT.fullmatch(spec)
        assert m is not None  # validated
        if m["xid"]:
            xid = int(m["xid"])
            taint = {"key": "gpu.nvidia.com/xid", "value": str(xid),
                     "effect": "None" if xid in NON_FATAL_XIDS else "NoSchedule"}
        elif m["kind"] == "gpu-lost":
            taint = {"key": "gpu.nvidia.com/gpu-lost", "effect": "NoSchedule"}
        else:
            taint = {"key": "gpu.nvidia.com/unmonitored", "effect": "None"}
        out.setdefault(m["device"], []).append(taint)
    return out


def _shared_capacity(capacity: dict[str, Any], shares: Any) -> dict[str, Any]:
    """§1.7 ConsumableShares: requestPolicy on memory (rounded down to 1Mi), plus ``shares`` for a number."""
    if shares == "disabled":
        return capacity
    from dra_kwok.config.quantity import parse_quantity

    mib = int(parse_quantity(capacity["memory"]["value"]).value) // 2**20
    memory = canonical_quantity(f"{mib}Mi")
    if shares == "memory":
        policy = {"default": memory, "validRange": {"min": "1Mi", "max": memory, "step": "1Mi"}}
    else:
        policy = {"default": "0", "validRange": {"min": "0", "max": memory, "step": "1Mi"}}
    out = dict(capacity)
    out["memory"] = {"value": memory, "requestPolicy": policy}
    if isinstance(shares, int):
        out["shares"] = {"value": str(shares),
                         "requestPolicy": {"default": "1", "validRange": {"min": "1", "max": str(shares), "step": "1"}}}
    return out


def _build(params: dict[str, Any], k8s_minor: int) -> Callable[[str, str], list[Slice]]:
    """Everything node-independent, once; the returned function fills in UUIDs per node."""
    model = MODELS[params["model"]]
    count, mode, shares = params["count"], params["mode"], params["consumableShares"]
    taints = _taints(params["healthTaints"])
    multiple = shares != "disabled"

    def finish(device: dict[str, Any]) -> dict[str, Any]:
        if multiple:
            device["allowMultipleAllocations"] = True
            device["capacity"] = _shared_capacity(device["capacity"], shares)
        if device["name"] in taints:
            device["taints"] = taints[device["name"]]
        return device

    # (minor, static device body without uuids, kind) for every device; kind: gpu | mig | static-mig
    gpus: list[tuple[list[tuple[dict[str, Any], str, int]], list[dict[str, Any]]]] = []
    counter_sets: list[dict[str, Any]] = []
    largest = model.migs[-1].capacities()
    for minor in range(count):
        base = _gpu_attributes(model, minor)
        mig_base = {k: v for k, v in base.items() if k != "type"}
        mig_base["type"] = {"string": "mig"}
        devices: list[tuple[dict[str, Any], str]] = []
        set_name = f"gpu-{minor}-counter-set"
        if mode == "full":
            devices.append((finish({"name": f"gpu-{minor}", "attributes": base,
                                    "capacity": {"memory": _q(model.memory)}}), "gpu"))
        elif mode == "static-mig":
            for mig, start in _layout(model, params["migLayout"])[0]:
                capacity = {k: _q(v) for k, v in mig.capacities().items()}
                capacity.update({f"memorySlice{i}": _q("1") for i in range(start, start + mig.size)})
                attributes = dict(mig_base, profile={"string": mig.name})
                devices.append((finish({"name": _mig_name(minor, mig, start), "attributes": attributes,
                                        "capacity": capacity}), "static-mig"))
        else:
            counters = {_COUNTER_NAME[k]: _q(v) for k, v in largest.items()}
            counters.update({f"memory-slice-{i}": _q("1") for i in range(MEMORY_SLICES)})
            counter_sets.append({"name": set_name, "counters": counters})
            if model.full_in_dynamic_mig:
                devices.append((finish({
                    "name": f"gpu-{minor}", "attributes": base,
                    "capacity": {k: _q(v) for k, v in largest.items()},
                    "consumesCounters": [{"counterSet": set_name, "counters": counters}],
                }), "gpu"))
            for mig in model.migs:
                capacity = {k: _q(v) for k, v in mig.capacities().items()}
                attributes = dict(mig_base, profile={"string": mig.name})
                for start in mig.starts:
                    used = {_COUNTER_NAME[k]: v for k, v in capacity.items()}
                    used.update({f"memory-slice-{i}": _q("1") for i in range(start, start + mig.size)})
                    devices.append((finish({
                        "name": _mig_name(minor, mig, start), "attributes": attributes, "capacity": capacity,
                        "consumesCounters": [{"counterSet": set_name, "counters": used}],
                    }), "mig"))
        devices.sort(key=lambda d: d[0]["name"])
        # per device: (body, kind, index of its attribute group); MIG placements of one profile share a group
        groups: list[dict[str, Any]] = []
        entries = []
        for body, kind in devices:
            if not groups or groups[-1] is not body["attributes"]:
                groups.append(body["attributes"])
            entries.append((body, kind, len(groups) - 1))
        gpus.append((entries, groups))

    def node_devices(driver: str, node_name: str, minor: int) -> list[dict[str, Any]]:
        gpu_uuid = {"string": "GPU-" + device_uuid(driver, node_name, f"gpu-{minor}")}
        entries, groups = gpus[minor]
        per_node = [dict(g, parentUUID=gpu_uuid) for g in groups]
        out = []
        for body, kind, group in entries:
            device = body.copy()
            if kind == "mig":
                device["attributes"] = per_node[group]
            elif kind == "gpu":
                device["attributes"] = dict(body["attributes"], uuid=gpu_uuid)
            else:
                device["attributes"] = dict(per_node[group], uuid={
                    "string": "MIG-" + device_uuid(driver, node_name, body["name"])})
            out.append(device)
        return out

    def render(driver: str, node_name: str) -> list[Slice]:
        if mode != "dynamic-mig":
            return [{"devices": [d for minor in range(count) for d in node_devices(driver, node_name, minor)]}]
        if k8s_minor >= 35:
            return [{"sharedCounters": counter_sets}] + [
                {"devices": node_devices(driver, node_name, minor)} for minor in range(count)]
        return [{"sharedCounters": [counter_sets[minor]], "devices": node_devices(driver, node_name, minor)}
                for minor in range(count)]

    return render


NVIDIA_GPU = Profile(
    name="nvidia-gpu",
    default_driver="gpu.nvidia.com",
    summary="NVIDIA GPUs as dra-driver-nvidia-gpu publishes them (full, static MIG, DynamicMIG)",
    params=(
        Param("model", "string", "H100-80GB", "GPU model", tuple(MODELS)),
        Param("count", "int", 8, "GPUs per node (HGX boards have 8; split DynamicMIG holds at most 8 counter "
              "sets in its one counters slice)", minimum=1, maximum=8),
        Param("mode", "string", "full", "full: whole GPUs; static-mig: migLayout on every GPU; dynamic-mig: "
              "every MIG placement with shared counters", MODES),
        Param("migLayout", "string", "all-1g", "static-mig only: all-1g, all-balanced, all-7g or a comma list "
              "of MIG profiles, each optionally @placement (e.g. 3g.40gb@4,1g.10gb)",
              allowed_text="all-1g, all-balanced, all-7g or <profile>[@<start>],..."),
        Param("consumableShares", "shares", "disabled", "the driver's --consumable-shares: requestPolicy on "
              "memory (and a shares capacity for a number)", SHARES, minimum=2),
        Param("healthTaints", "strings", [], "full/static-mig: taints as the health check sets them, e.g. "
              "gpu-3=xid:79, gpu-5=gpu-lost, gpu-0=unmonitored",
              allowed_text="a list of <device>=xid:<N>, <device>=gpu-lost, <device>=unmonitored"),
    ),
    build=_build,
    cross_check=_cross_check,
    variants=({"mode": "static-mig"}, {"mode": "dynamic-mig"}),
)
