"""``intel-gpu``: intel-resource-drivers-for-kubernetes (``gpu.intel.com``), reference §5. One slice per node.

Why: Intel's driver names devices by PCI address and device id and publishes health and SR-IOV state; CEL
written for it selects on ``model``/``family``.

Devices ``<PCI address, : and . -> ->>-<PCI device id>``. The B60 values are the captured ones (driver ``xe``,
24480Mi, bus 0000:04:00.0 behind ``pci0000:00``); further cards get buses 0x0a, 0x10, … behind the same root
(illustrative). Health is ``Healthy``: the profile publishes no unhealthy devices, hence no taints.
"""

from __future__ import annotations

from typing import Any, Callable

from dra_kwok.config.quantity import canonical_quantity
from dra_kwok.slices.profiles.model import Param, Profile, Slice

__all__ = ["INTEL_GPU", "INTEL_MODELS"]

#: model -> (pciId, family, kernel driver, memory); §5 (B60 captured)
INTEL_MODELS = {"B60": ("0xe211", "Arc Pro B-Series", "xe", "24480Mi")}


def _intel_build(params: dict[str, Any], k8s_minor: int) -> Callable[[str, str], list[Slice]]:
    pci_id, family, kernel_driver, memory = INTEL_MODELS[params["model"]]
    devices = []
    for i in range(params["count"]):
        address = f"0000:{0x04 + 6 * i:02x}:00.0"
        devices.append({
            "name": f"{address.replace(':', '-').replace('.', '-')}-{pci_id}",
            "attributes": {
                "driver": {"string": kernel_driver}, "family": {"string": family}, "health": {"string": "Healthy"},
                "model": {"string": params["model"]}, "pciAddress": {"string": address}, "pciId": {"string": pci_id},
                "pciRoot": {"string": "00"}, "resource.kubernetes.io/pciBusID": {"string": address},
                "resource.kubernetes.io/pcieRoot": {"string": "pci0000:00"}, "sriov": {"bool": True},
                "type": {"string": "gpu"},
            },
            "capacity": {"memory": {"value": canonical_quantity(memory)}, "millicores": {"value": "1k"}},
        })

    def render(driver: str, node_name: str) -> list[Slice]:
        return [{"devices": list(devices)}]

    return render


INTEL_GPU = Profile(
    name="intel-gpu",
    default_driver="gpu.intel.com",
    summary="Intel GPUs as intel-resource-drivers-for-kubernetes publishes them",
    params=(
        Param("model", "string", "B60", "GPU model", tuple(INTEL_MODELS)),
        Param("count", "int", 1, "GPUs per node", minimum=1, maximum=16),
    ),
    build=_intel_build,
)
