"""``amd-gpu``: ROCm/k8s-gpu-dra-driver (``gpu.amd.com``), reference §5. One slice per node, no counters.

Why: AMD's driver publishes MI300X partitions (CPX/NPS modes) as separate devices; a fake node must show the
same names (``gpu-<cardIndex>-<renderIndex>``) and the parent attributes partitions carry.

MI300X values: product ``AMD_Instinct_MI300X`` (marked illustrative in the reference), device id ``0x74a1``,
192Gi VRAM, 304 compute units, 1216 SIMDs, family ``AI``. Not in the reference, so chosen here: cards are
numbered ``card1…``/``renderD128…`` in order (partitions get the next free numbers, after all physical GPUs),
PCI addresses follow an 8-GPU MI300X platform, driverVersion ``6.10.5`` and srcversion a fixed hash; in a
partitioned mode only the partitions are published, each with an equal share of the GPU's memory, compute
units and SIMDs.
"""

from __future__ import annotations

from typing import Any, Callable

from dra_kwok.config.quantity import canonical_quantity
from dra_kwok.slices.profiles.model import Param, Profile, Slice

__all__ = ["AMD_GPU", "AMD_PARTITIONS"]

#: partitionProfile -> compute partitions per GPU (MI300X: SPX 1, DPX 2, QPX 4, CPX 8)
AMD_PARTITIONS = {"spx_nps1": 1, "dpx_nps1": 2, "qpx_nps1": 4, "cpx_nps1": 8, "cpx_nps4": 8}
_AMD_BUSES = ("05", "26", "46", "65", "85", "a6", "c6", "e5")
_MI300X = {"memory": 192 * 2**30, "computeUnits": 304, "simdUnits": 1216}


def _quantities(divisor: int) -> dict[str, dict[str, str]]:
    """Memory in binary form (the driver's fallbacks are written 80Gi/20Gi), counts as plain numbers."""
    return {k: {"value": canonical_quantity(f"{v // divisor // 1024}Ki" if k == "memory" else str(v // divisor))}
            for k, v in _MI300X.items()}


def _amd_build(params: dict[str, Any], k8s_minor: int) -> Callable[[str, str], list[Slice]]:
    count, profile = params["count"], params["partitionProfile"]
    parts = AMD_PARTITIONS[profile]
    common = {"driverSrcVersion": {"string": "5A5E5D1C0C6D7DB7A4F5B1E"}, "driverVersion": {"version": "6.10.5"},
              "family": {"string": "AI"}, "partitionProfile": {"string": profile},
              "productName": {"string": "AMD_Instinct_MI300X"}}
    devices = []
    extra = count  # partitions beyond the first get card/render numbers after every physical GPU
    for g in range(count):
        address = {"string": f"0000:{_AMD_BUSES[g]}:00.0"}
        root = {"string": f"pci0000:{int(_AMD_BUSES[g], 16) - 1:02x}"}
        if parts == 1:
            devices.append({"name": f"gpu-{g + 1}-{128 + g}", "attributes": dict(
                common, cardIndex={"int": g + 1}, renderIndex={"int": 128 + g}, deviceID={"string": "0x74a1"},
                pciAddr=address, type={"string": "amdgpu"}, **{"resource.kubernetes.io/pcieRoot": root}),
                "capacity": _quantities(1)})
            continue
        share = _quantities(parts)
        for p in range(parts):
            card = g + 1 if p == 0 else (extra := extra + 1)
            devices.append({"name": f"gpu-{card}-{127 + card}", "attributes": dict(
                common, cardIndex={"int": card}, renderIndex={"int": 127 + card}, parentDeviceID={"string": "0x74a1"},
                parentPciAddr=address, type={"string": "amdgpu-partition"},
                **{"resource.kubernetes.io/pcieRoot": root}), "capacity": share})

    def render(driver: str, node_name: str) -> list[Slice]:
        return [{"devices": list(devices)}]

    return render


AMD_GPU = Profile(
    name="amd-gpu",
    default_driver="gpu.amd.com",
    summary="AMD Instinct MI300X as ROCm's k8s-gpu-dra-driver publishes it, whole or partitioned",
    params=(
        Param("count", "int", 8, "GPUs per node", minimum=1, maximum=8),
        Param("partitionProfile", "string", "spx_nps1", "compute_memory partition mode of every GPU "
              "(spx: whole GPU; dpx/qpx/cpx: 2/4/8 partitions)", tuple(AMD_PARTITIONS)),
    ),
    build=_amd_build,
    variants=({"partitionProfile": "cpx_nps4"},),
)
