"""``example-gpu``: kubernetes-sigs/dra-example-driver's gpu profile (``gpu.example.com``), reference §2.

Why include a fake vendor's driver: its slices are what the upstream DRA tutorials and e2e tests select on
(``device.attributes["gpu.example.com"].model == "LATEST-GPU-MODEL"``), so a simulated cluster can run them.

With ``partitions: N`` (the driver's ``--gpu-partitions``) every GPU gets a counter set ``gpu-<i>-counters``
(memory 80Gi, compute 100), N partitions consuming 1/N each and a ``gpu-<i>-full`` device consuming all; the
driver publishes a counters slice then a devices slice (1.35+ layout). On a < 1.35 apiserver, where a device may
only consume counters of its own slice, both go into one slice.

Illustrative: ``uuid`` (the driver seeds it with the node name) is a UUIDv5 of (driver, node, GPU), unique per
node and GPU; partitions and ``-full`` carry their GPU's uuid.
"""

from __future__ import annotations

from typing import Any, Callable

from dra_kwok.config.quantity import canonical_quantity
from dra_kwok.slices.profiles.model import Param, Profile, Slice, device_uuid

__all__ = ["EXAMPLE_GPU"]

_MEMORY = 80 * 2**30
_COMPUTE = 100


def _binary(nbytes: int) -> str:
    """A byte count as Go's ``resource.NewQuantity(n, BinarySI)`` serialises it: ``40Gi``, or plain bytes."""
    return canonical_quantity(f"{nbytes // 1024}Ki" if nbytes % 1024 == 0 else str(nbytes))


def _cross_check(params: dict[str, Any]) -> list[str]:
    n, count = params["partitions"], params["count"]
    problems = []
    if n and count > 8:
        problems.append(f"profile.count: {count} GPUs with partitions need {count} counter sets; one slice holds "
                        "at most 8 (use count <= 8)")
    if n and count * (n + 1) > 64:
        problems.append(f"profile.partitions: {count} GPUs x ({n} partitions + full) = {count * (n + 1)} devices "
                        "consuming counters; a slice holds at most 64 such devices")
    if n and params["allowMultipleAllocations"]:
        problems.append("profile.allowMultipleAllocations: only without partitions (partition sizes are not "
                        "multiples of the 1Gi step)")
    return problems


def _build(params: dict[str, Any], k8s_minor: int) -> Callable[[str, str], list[Slice]]:
    count, n, multiple = params["count"], params["partitions"], params["allowMultipleAllocations"]
    common = {"driverVersion": {"version": "1.0.0"}, "model": {"string": "LATEST-GPU-MODEL"}}
    full_capacity: dict[str, Any] = {"compute": {"value": str(_COMPUTE)}, "memory": {"value": "80Gi"}}
    if multiple:
        full_capacity = {
            "compute": {"value": "100", "requestPolicy": {"default": "100", "validRange": {"min": "1", "step": "1"}}},
            "memory": {"value": "80Gi", "requestPolicy": {
                "default": "80Gi", "validRange": {"min": "1Gi", "max": "80Gi", "step": "1Gi"}}},
        }
    counters: list[dict[str, Any]] = []
    # (gpu index, device body without uuid)
    bodies: list[tuple[int, dict[str, Any]]] = []
    for i in range(count):
        attrs = dict(common, index={"int": i})
        if not n:
            bodies.append((i, {"name": f"gpu-{i}", "allowMultipleAllocations": multiple, "attributes": attrs,
                               "capacity": full_capacity}))
            continue
        set_name = f"gpu-{i}-counters"
        total = {"compute": {"value": str(_COMPUTE)}, "memory": {"value": "80Gi"}}
        counters.append({"name": set_name, "counters": total})
        share = {"compute": {"value": canonical_quantity(str(_COMPUTE // n))},
                 "memory": {"value": _binary(_MEMORY // n)}}
        for j in range(n):
            bodies.append((i, {"name": f"gpu-{i}-partition-{j}", "allowMultipleAllocations": False,
                               "attributes": dict(attrs, partition={"int": j}, partitionable={"bool": True}),
                               "capacity": share,
                               "consumesCounters": [{"counterSet": set_name, "counters": share}]}))
        bodies.append((i, {"name": f"gpu-{i}-full", "allowMultipleAllocations": False,
                           "attributes": dict(attrs, partitionable={"bool": True}, full={"bool": True}),
                           "capacity": full_capacity,
                           "consumesCounters": [{"counterSet": set_name, "counters": total}]}))

    def render(driver: str, node_name: str) -> list[Slice]:
        uuids = [{"string": "gpu-" + device_uuid(driver, node_name, f"gpu-{i}")} for i in range(count)]
        devices = [dict(body, attributes=dict(body["attributes"], uuid=uuids[i])) for i, body in bodies]
        if not n:
            return [{"devices": devices}]
        if k8s_minor >= 35:
            return [{"sharedCounters": counters}, {"devices": devices}]
        return [{"sharedCounters": counters, "devices": devices}]

    return render


EXAMPLE_GPU = Profile(
    name="example-gpu",
    default_driver="gpu.example.com",
    summary="dra-example-driver's fake GPUs (LATEST-GPU-MODEL), optionally partitioned with shared counters",
    params=(
        Param("count", "int", 8, "GPUs per node (the driver's --num-devices)", minimum=1, maximum=128),
        Param("partitions", "int", 0, "the driver's --gpu-partitions: 0 = off, N = N partitions + a -full device "
              "per GPU", minimum=0, maximum=16),
        Param("allowMultipleAllocations", "bool", False, "the driver's --gpu-allow-multiple-allocations "
              "(requestPolicy on memory and compute)"),
    ),
    build=_build,
    cross_check=_cross_check,
    variants=({"partitions": 4},),
)
