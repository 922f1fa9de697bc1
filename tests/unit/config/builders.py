"""Small builders for Config values in tests (so each test shows only what it changes)."""

from __future__ import annotations

from typing import Any

from dra_kwok.config.types import (
    AttributeValue,
    CapacityValue,
    Config,
    DeviceTemplate,
    Mapping,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PoolTemplate,
    ResourceSliceTemplate,
)

DRIVER = "gpu.example.com"


def req(key: str = "type", operator: str = "In", *values: str) -> NodeSelectorRequirement:
    return NodeSelectorRequirement(key, operator, tuple(values))


def term(*expressions: NodeSelectorRequirement, fields: tuple[NodeSelectorRequirement, ...] = ()) -> NodeSelectorTerm:
    return NodeSelectorTerm(tuple(expressions), tuple(fields))


KWOK = term(req("type", "In", "kwok"))


def attrs(**values: Any) -> dict[str, AttributeValue]:
    out = {}
    for key, value in values.items():
        if isinstance(value, AttributeValue):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = AttributeValue(bool_=value)
        elif isinstance(value, int):
            out[key] = AttributeValue(int_=value)
        else:
            out[key] = AttributeValue(string=value)
    return out


def device(
    name: str = "gpu-0",
    count: int | None = None,
    attributes: dict[str, AttributeValue] | None = None,
    capacity: dict[str, str] | None = None,
) -> DeviceTemplate:
    return DeviceTemplate(
        name,
        count,
        attributes if attributes is not None else attrs(type="gpu"),
        {k: CapacityValue(v) for k, v in (capacity or {}).items()},
    )


def mapping(
    name: str = "gpu",
    devices: tuple[DeviceTemplate, ...] | list[DeviceTemplate] = (),
    pool: str = "gpu-pool",
    terms: tuple[NodeSelectorTerm, ...] = (KWOK,),
    slices: int | None = None,
    driver: str | None = None,
    all_nodes: bool | None = None,
    node_selector: tuple[NodeSelectorTerm, ...] | None = None,
) -> Mapping:
    return Mapping(
        name,
        tuple(terms),
        ResourceSliceTemplate(
            pool=PoolTemplate(pool, slices),
            devices=tuple(devices) if devices else (device(),),
            driver=driver,
            all_nodes=all_nodes,
            node_selector=NodeSelector(tuple(node_selector)) if node_selector is not None else None,
        ),
    )


def config(*mappings: Mapping, driver: str = DRIVER) -> Config:
    return Config(driver, tuple(mappings) if mappings else (mapping(),))
