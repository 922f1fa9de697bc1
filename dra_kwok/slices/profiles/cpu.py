"""``cpu``: kubernetes-sigs/dra-driver-cpu (``dra.cpu``), reference §3.

Why: CPU pinning through DRA is selected by NUMA node and socket; a fake node must publish the same groups and
counts a real machine of that shape would, with the driver's reserved CPUs taken out.

The machine: ``sockets`` × ``coresPerSocket`` cores, SMT siblings numbered as Linux does on x86 (cpu c and
c + cores are siblings, socket s holds cores s*coresPerSocket…), each socket split evenly into
``numaNodesPerSocket`` NUMA nodes. Grouped mode (the driver's default) publishes one consumable device per
NUMA node, socket or machine with ``dra.cpu/cpu`` = its CPU count; individual mode one device per CPU,
numbered over core pairs in CPU-id order, 128 per slice.

Not in the reference, so chosen here: ``coreID`` is the physical core number across the machine (cpu id modulo
the core count) and ``cacheL3ID`` the socket (one L3 per socket); every core is ``standard``. The optional
pcieRoot list attribute and nodeAllocatableResources (alpha, opt-in in the driver) are not published.
"""

from __future__ import annotations

from typing import Any, Callable

from dra_kwok.slices.profiles.model import Param, Profile, Slice

__all__ = ["CPU"]

PER_SLICE = 128


def parse_cpuset(text: str) -> set[int]:
    """``0,64`` / ``0-3,8`` (Linux cpuset list) -> ids; raises ValueError."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if first > last or first < 0:
            raise ValueError(part)
        out |= set(range(first, last + 1))
    return out


def _cross_check(params: dict[str, Any]) -> list[str]:
    problems = []
    if params["coresPerSocket"] % params["numaNodesPerSocket"]:
        problems.append(f"profile.numaNodesPerSocket: {params['numaNodesPerSocket']} does not divide "
                        f"coresPerSocket {params['coresPerSocket']}")
    if params["groupBy"] != "numanode" and params["mode"] == "individual":
        problems.append("profile.groupBy: only used with mode: grouped")
    try:
        reserved = parse_cpuset(params["reservedCPUs"])
    except ValueError:
        return problems + [f"profile.reservedCPUs: {params['reservedCPUs']!r} is not a CPU list such as 0,64 or 0-3"]
    total = params["sockets"] * params["coresPerSocket"] * (2 if params["smt"] else 1)
    if any(c >= total for c in reserved):
        problems.append(f"profile.reservedCPUs: CPU ids go from 0 to {total - 1} on this machine")
    elif len(reserved) == total:
        problems.append("profile.reservedCPUs: reserves every CPU; nothing would be published")
    return problems


def _machine(cpu: int) -> int:
    return 0


def _build(params: dict[str, Any], k8s_minor: int) -> Callable[[str, str], list[Slice]]:
    sockets: int = params["sockets"]
    cores: int = params["coresPerSocket"]
    smt: bool = params["smt"]
    per_numa: int = cores // params["numaNodesPerSocket"]
    total_cores = sockets * cores
    reserved = parse_cpuset(params["reservedCPUs"])
    # every CPU in the driver's order: core by core, the CPU then its sibling
    cpus = [c for core in range(total_cores) for c in ((core, core + total_cores) if smt else (core,))]

    def socket_of(cpu: int) -> int:
        return (cpu % total_cores) // cores

    def numa_of(cpu: int) -> int:
        return (cpu % total_cores) // per_numa

    available = [c for c in cpus if c not in reserved]
    devices: list[dict[str, Any]] = []
    smt_attr = {"bool": smt}
    if params["mode"] == "individual":
        for i, cpu in enumerate(available):
            numa = {"int": numa_of(cpu)}
            devices.append({"name": f"cpudev{i:03d}", "attributes": {
                "dra.cpu/cacheL3ID": {"int": socket_of(cpu)}, "dra.cpu/coreID": {"int": cpu % total_cores},
                "dra.cpu/coreType": {"string": "standard"}, "dra.cpu/cpuID": {"int": cpu},
                "dra.cpu/numaNodeID": numa, "dra.cpu/smtEnabled": smt_attr, "dra.cpu/socketID": {"int": socket_of(cpu)},
                "dra.net/numaNode": numa, "resource.kubernetes.io/numaNode": numa}})
    else:
        group_by = params["groupBy"]
        key: Callable[[int], int] = {"numanode": numa_of, "socket": socket_of, "machine": _machine}[group_by]
        groups: dict[int, list[int]] = {}
        for cpu in available:
            groups.setdefault(key(cpu), []).append(cpu)
        for gid, members in sorted(groups.items()):
            n = {"int": len(members)}
            if group_by == "numanode":
                numa = {"int": gid}
                name = f"cpudevnuma{gid:03d}"
                attrs = {"dra.cpu/numCPUs": n, "dra.cpu/numaNodeID": numa, "dra.cpu/smtEnabled": smt_attr,
                         "dra.cpu/socketID": {"int": socket_of(members[0])}, "dra.net/numaNode": numa,
                         "resource.kubernetes.io/numaNode": numa}
            elif group_by == "socket":
                name = f"cpudevsocket{gid:03d}"
                attrs = {"dra.cpu/numCPUs": n, "dra.cpu/smtEnabled": smt_attr, "dra.cpu/socketID": {"int": gid}}
            else:
                name = "cpudevmachine"
                attrs = {"dra.cpu/numCPUs": n, "dra.cpu/smtEnabled": smt_attr}
            devices.append({"name": name, "allowMultipleAllocations": True, "attributes": attrs,
                            "capacity": {"dra.cpu/cpu": {"value": str(len(members))}}})
    chunks = [devices[i:i + PER_SLICE] for i in range(0, len(devices), PER_SLICE)] or [[]]

    def render(driver: str, node_name: str) -> list[Slice]:
        return [{"devices": list(chunk)} for chunk in chunks]

    return render


CPU = Profile(
    name="cpu",
    default_driver="dra.cpu",
    summary="dra-driver-cpu: CPUs grouped per NUMA node/socket/machine (consumable dra.cpu/cpu), or one per CPU",
    params=(
        Param("mode", "string", "grouped", "grouped: consumable groups (the driver's default); individual: one "
              "device per CPU", ("grouped", "individual")),
        Param("groupBy", "string", "numanode", "grouped mode: what a device is", ("numanode", "socket", "machine")),
        Param("sockets", "int", 2, "CPU sockets", minimum=1, maximum=8),
        Param("coresPerSocket", "int", 32, "physical cores per socket", minimum=1, maximum=256),
        Param("numaNodesPerSocket", "int", 1, "NUMA nodes per socket (sub-NUMA clustering / NPS)", minimum=1,
              maximum=8),
        Param("smt", "bool", True, "two hardware threads per core"),
        Param("reservedCPUs", "string", "", "CPUs the driver keeps out (its reservedCPUs), e.g. 0,64",
              allowed_text="a Linux CPU list such as 0,64 or 0-3,8 (empty: none)"),
    ),
    build=_build,
    cross_check=_cross_check,
    variants=({"mode": "individual"},),
)
