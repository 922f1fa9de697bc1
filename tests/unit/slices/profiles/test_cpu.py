"""cpu (dra.cpu) against real-drivers.md §3, by value."""

from __future__ import annotations

import pytest

from dra_kwok.slices.profiles import PROFILES, check_pool
from tests.unit.slices.profiles.support import NAMES, check_golden, devices

CPU = PROFILES["cpu"]


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("cpu")])
def test_one_node_matches_the_reference(name: str) -> None:
    check_golden(name)


def test_individual_cpus_are_chunked_into_slices_of_128() -> None:
    """§3: devices chunked into slices of 128; 2 x 64 cores with SMT = 256 CPUs -> 2 slices."""
    slices = CPU.render({"mode": "individual", "coresPerSocket": 64}, "n", "u", 35).slices
    assert [len(s["devices"]) for s in slices] == [128, 128]
    assert devices(slices)[-1]["name"] == "cpudev255" and check_pool(slices, 35) == []


def test_numa_nodes_per_socket_split_groups() -> None:
    slices = CPU.render({"numaNodesPerSocket": 2}, "n", "u", 35).slices
    assert [(d["name"], d["capacity"]["dra.cpu/cpu"]["value"], d["attributes"]["dra.cpu/socketID"]["int"])
            for d in devices(slices)] == [("cpudevnuma000", "32", 0), ("cpudevnuma001", "32", 0),
                                          ("cpudevnuma002", "32", 1), ("cpudevnuma003", "32", 1)]


@pytest.mark.parametrize("params, problem", [
    ({"reservedCPUs": "0,x"}, "profile.reservedCPUs: '0,x' is not a CPU list such as 0,64 or 0-3"),
    ({"reservedCPUs": "128"}, "profile.reservedCPUs: CPU ids go from 0 to 127 on this machine"),
    ({"numaNodesPerSocket": 3}, "profile.numaNodesPerSocket: 3 does not divide coresPerSocket 32"),
    ({"groupBy": "core"}, "profile.groupBy: unknown value 'core'; known: numanode, socket, machine"),
])
def test_bad_parameters(params: dict, problem: str) -> None:
    assert problem in CPU.validate_params(params)
