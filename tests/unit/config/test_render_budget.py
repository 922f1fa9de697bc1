"""The per-render bound of #19.1: what one render can hold is bounded by validation, by value."""

from __future__ import annotations

from dra_kwok.config.validation import MAX_DEVICES_PER_NODE, MAX_ENTRIES_PER_NODE, validate
from tests.unit.config.builders import attrs, config, device, mapping


def _errors(cfg) -> list[str]:
    return [str(e) for e in validate(cfg) if e.severity == "error"]


def test_node_local_devices_are_bounded_in_the_worst_case_of_all_mappings_matching() -> None:
    half = MAX_DEVICES_PER_NODE // 2
    ok = config(mapping("a", pool="a", devices=[device("d", count=half, attributes=attrs(t="x"))]),
                mapping("b", pool="b", devices=[device("d", count=half, attributes=attrs(t="x"))]))
    assert _errors(ok) == []
    over = config(mapping("a", pool="a", devices=[device("d", count=half, attributes=attrs(t="x"))]),
                  mapping("b", pool="b", devices=[device("d", count=half + 1, attributes=attrs(t="x"))]))
    assert _errors(over) == [f"mappings: the node-local mappings could give one node (if all of them match it) "
                             f"{MAX_DEVICES_PER_NODE + 1} devices; at most {MAX_DEVICES_PER_NODE} per node, so that the "
                             "driver stays within its memory limit (README, \"Memory budget\"): lower the counts or "
                             "split the mappings so fewer of them match one node"]


def test_attributes_and_capacities_are_bounded_too() -> None:
    per_device = 4
    count = MAX_ENTRIES_PER_NODE // per_device + 1
    assert count <= MAX_DEVICES_PER_NODE
    many = attrs(a="x", b="y", c="z", d="w")
    [error] = _errors(config(mapping(devices=[device("d", count=count, attributes=many)])))
    assert f"{count * per_device} attributes and capacities (over {count} devices); at most {MAX_ENTRIES_PER_NODE}" \
        in error


def test_cluster_wide_pools_are_bounded_together_and_apart_from_node_local_ones() -> None:
    half = MAX_DEVICES_PER_NODE // 2 + 1
    cluster = [mapping(f"c{i}", pool=f"c{i}", all_nodes=True, devices=[device("d", count=half, attributes=attrs(t="x"))])
               for i in range(2)]
    [error] = _errors(config(*cluster))
    assert error.startswith(f"mappings: the cluster-wide mappings publish {2 * half} devices; at most "
                            f"{MAX_DEVICES_PER_NODE} in cluster-wide pools")
    local = mapping("l", pool="l", devices=[device("d", count=half, attributes=attrs(t="x"))])
    assert _errors(config(cluster[0], local)) == []  # one render each: both fit
