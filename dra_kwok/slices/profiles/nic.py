"""``nic``: kubernetes-sigs/dranet (``dra.net``) publishing RDMA NICs, reference §4.

Why: multi-NIC GPU nodes select NICs by NUMA node / PCIe root next to the GPUs; the fake node must publish the
attribute set dranet publishes (legacy ``dra.net/numaNode`` beside the standard ``resource.kubernetes.io/…``).

One slice, devices sorted by name (``pci-<address with : and . -> ->``), no capacity, counters or taints. Only
the NICs are published: the real driver also publishes virtual interfaces but never the default-route one.

Illustrative (the reference marks them so): PCI addresses follow the example node (NUMA 0 NICs first:
``1a, 3c, 4d, 5e``; NUMA 1: ``9a, bc, cd, de``; the root is the bus minus 5), interface names ``ens<n>f0np0``
and RDMA devices ``mlx5_<n>`` in name order; MAC (Mellanox OUI ``b8:3f:d2``) and IPv4 (``10.<10+n>.x.y/16``,
one subnet per rail) are derived from (driver, node, device), so they differ per node and device.
"""

from __future__ import annotations

from typing import Any, Callable

from dra_kwok.slices.profiles.model import Param, Profile, Slice, short_digest

__all__ = ["NIC", "MODELS"]

#: model -> (pciDevice, pciSubsystem) as in pci.ids (§4)
MODELS = {
    "ConnectX-7": ("MT2910 Family [ConnectX-7]", "0025"),
    "ConnectX-8": ("CX8 Family [ConnectX-8]", "0101"),
}
_NUMA0 = ("1a", "3c", "4d", "5e")
_NUMA1 = ("9a", "bc", "cd", "de")


def _buses(count: int) -> list[tuple[str, int]]:
    first = (count + 1) // 2
    return [(b, 0) for b in _NUMA0[:first]] + [(b, 1) for b in _NUMA1[: count - first]]


def _build(params: dict[str, Any], k8s_minor: int) -> Callable[[str, str], list[Slice]]:
    pci_device, subsystem = MODELS[params["model"]]
    bodies: list[dict[str, Any]] = []
    for n, (bus, numa) in enumerate(sorted(_buses(params["count"]))):
        address = f"0000:{bus}:00.0"
        bodies.append({"name": f"pci-0000-{bus}-00-0", "attributes": {
            "dra.net/alias": {"string": ""},
            "dra.net/ebpf": {"bool": False},
            "dra.net/encapsulation": {"string": "ether"},
            "dra.net/ifName": {"string": f"ens{n + 1}f0np0"},
            "dra.net/mtu": {"int": params["mtu"]},
            "dra.net/numaNode": {"int": numa},
            "dra.net/pciAddress": {"string": address},
            "dra.net/pciDevice": {"string": pci_device},
            "dra.net/pciSubsystem": {"string": subsystem},
            "dra.net/pciVendor": {"string": "Mellanox Technologies"},
            "dra.net/rdma": {"bool": True},
            "dra.net/rdmaDevice": {"string": f"mlx5_{n}"},
            "dra.net/sriov": {"bool": True},
            "dra.net/sriovVfs": {"int": 0},
            "dra.net/state": {"string": "up"},
            "dra.net/type": {"string": "device"},
            "dra.net/virtual": {"bool": False},
            "resource.kubernetes.io/numaNode": {"int": numa},
            "resource.kubernetes.io/pcieRoot": {"string": f"pci0000:{int(bus, 16) - 5:02x}"},
        }})

    def render(driver: str, node_name: str) -> list[Slice]:
        devices = []
        for n, body in enumerate(bodies):
            mac = short_digest(driver, node_name, body["name"], 3)
            host = short_digest(driver, node_name, "ipv4", 2)
            attributes = dict(body["attributes"])
            attributes["dra.net/mac"] = {"string": "b8:3f:d2:" + ":".join(f"{b:02x}" for b in mac)}
            attributes["dra.net/ipv4"] = {"string": f"10.{10 + n}.{host[0]}.{host[1] % 254 + 1}/16"}
            devices.append({"name": body["name"], "attributes": attributes})
        return [{"devices": devices}]

    return render


NIC = Profile(
    name="nic",
    default_driver="dra.net",
    summary="dranet: RDMA NICs (Mellanox ConnectX) with dranet's netdev, PCI and RDMA attributes",
    params=(
        Param("model", "string", "ConnectX-7", "NIC model (its pci.ids names)", tuple(MODELS)),
        Param("count", "int", 4, "NICs per node, half on each NUMA node", minimum=1, maximum=8),
        Param("mtu", "int", 9000, "interface MTU", minimum=68, maximum=65535),
    ),
    build=_build,
)
