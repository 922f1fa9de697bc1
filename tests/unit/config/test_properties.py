"""Properties: a config that validates renders slices the apiserver accepts; rendering is deterministic;
the loader round-trips configs and never fails with anything but ParseError/ConfigInvalid."""

from __future__ import annotations

import json
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dra_kwok.accept import validate
from dra_kwok.config import ConfigInvalid, ParseError, load_config, load_documents
from dra_kwok.config.quantity import QuantityError, canonical_quantity, parse_quantity
from dra_kwok.config.types import (
    AttributeValue,
    CapacityValue,
    Config,
    CounterConsumption,
    CounterSet,
    CounterValue,
    DeviceTemplate,
    Mapping,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PoolTemplate,
    RequestPolicy,
    ResourceSliceTemplate,
    Taint,
    ValidRange,
)
from dra_kwok.slices.render import NodeInfo, Pool, render
from dra_kwok.slices.rules import validate_slice

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label = st.from_regex(r"[a-z]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
bad_label = st.sampled_from(["", "GPU", "a_b", "-a", "a" * 64])
dns_label = st.one_of(label, label, label, bad_label)
subdomain = st.lists(label, min_size=1, max_size=3).map(".".join)
driver = st.one_of(subdomain, st.sampled_from(["karpenter.sh/dra-kwok-driver", "GPU.example.com", "d" * 64]))
pool_name = st.one_of(st.lists(subdomain, min_size=1, max_size=3).map("/".join),
                      st.sampled_from(["", "a//b", "P", "/".join(["p" * 63] * 3)]))
c_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
attr_key = st.one_of(c_ident, st.builds(lambda d, n: f"{d}/{n}", subdomain, c_ident),
                     st.sampled_from(["gpu-type", "a/b/c", "x" * 33]))
template_text = st.lists(
    st.one_of(st.text(string.ascii_letters + string.digits + " -_.:/", max_size=12),
              st.sampled_from(["{{node}}", "{{device}}", "{{index}}", "{{hash}}", "{{hash:4}}", "{{uuid}}",
                               "{{bogus}}", "{{"])),
    max_size=4,
).map("".join)
version = st.one_of(st.sampled_from(["1.2.3", "0.0.1-rc.1+b.2", "1.2", "v1.0.0", "01.0.0"]),
                    st.builds(lambda a, b, c: f"{a}.{b}.{c}", *(st.integers(0, 999),) * 3))
attribute = st.one_of(
    st.builds(AttributeValue, string=template_text),
    st.builds(AttributeValue, int_=st.integers(-(2**64), 2**64)),
    st.builds(AttributeValue, bool_=st.booleans()),
    st.builds(AttributeValue, version=version),
    st.just(AttributeValue()),
    st.builds(AttributeValue, string=st.just("a"), int_=st.just(1)),
)
quantity = st.one_of(
    st.builds(lambda n, s: f"{n}{s}", st.integers(0, 10**6),
              st.sampled_from(["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti", "e3", "E"])),
    st.builds(lambda a, b, s: f"{a}.{b}{s}", st.integers(0, 999), st.integers(0, 999),
              st.sampled_from(["", "n", "u", "Gi", "e-2"])),
    st.sampled_from(["1TB", "", "abc", "1 Gi", "-1", "+1"]),
)
# The 1.36/1.37 beta fields, valid and not.
small = st.sampled_from(["0", "1", "2", "5", "10", "15", "100", "500m", "1k", "-1"])
taint = st.builds(Taint, key=st.sampled_from(["example.com/health", "k", "a/b/c"]),
                  effect=st.sampled_from(["NoSchedule", "NoExecute", "None", "Evict"]),
                  value=st.one_of(st.none(), st.sampled_from(["v", "-x", "{{device}}", "h-{{index}}"])))
request_policy = st.builds(
    RequestPolicy, default=st.one_of(st.none(), small),
    valid_values=st.one_of(st.none(), st.lists(small, max_size=3).map(tuple)),
    valid_range=st.one_of(st.none(), st.builds(ValidRange, small, st.one_of(st.none(), small),
                                               st.one_of(st.none(), small))))
condition = st.sampled_from(["ready", "failed", "example.com/x", "a b"])
conditions = st.one_of(st.none(), st.lists(condition, max_size=3).map(tuple))
counter_names = st.sampled_from(["c0", "c1", "C"])
counters_map = st.dictionaries(counter_names, st.builds(CounterValue, small), max_size=2)
device = st.builds(
    DeviceTemplate,
    name=dns_label,
    count=st.one_of(st.none(), st.integers(-1, 300)),
    attributes=st.dictionaries(attr_key, attribute, max_size=4),
    capacity=st.dictionaries(attr_key, st.one_of(
        st.builds(CapacityValue, quantity),
        st.builds(CapacityValue, small, st.one_of(st.none(), request_policy))), max_size=3),
    taints=st.one_of(st.none(), st.none(), st.lists(taint, max_size=3).map(tuple)),
    allow_multiple_allocations=st.one_of(st.none(), st.none(), st.booleans()),
    binds_to_node=st.one_of(st.none(), st.none(), st.booleans()),
    binding_conditions=conditions,
    binding_failure_conditions=conditions,
    consumes_counters=st.one_of(st.none(), st.none(), st.lists(
        st.builds(CounterConsumption, st.sampled_from(["s0", "s1", "S"]), counters_map), max_size=3).map(tuple)),
)
label_keys = st.sampled_from(["type", "zone", "gpus", "kwok.x-k8s.io/node", "bad key"])
label_values = st.sampled_from(["kwok", "a", "b", "3", "10", "-1", "", "x y"])
requirement = st.builds(NodeSelectorRequirement, key=label_keys,
                        operator=st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Eq"]),
                        values=st.lists(label_values, max_size=3).map(tuple))
field_requirement = st.builds(NodeSelectorRequirement, key=st.sampled_from(["metadata.name", "metadata.uid"]),
                              operator=st.sampled_from(["In", "NotIn", "Exists"]),
                              values=st.lists(st.sampled_from(["node-a", "node-b", "Bad"]), max_size=2).map(tuple))
selector_term = st.builds(NodeSelectorTerm, match_expressions=st.lists(requirement, max_size=2).map(tuple),
                          match_fields=st.lists(field_requirement, max_size=1).map(tuple))
slice_template = st.builds(
    ResourceSliceTemplate,
    pool=st.builds(PoolTemplate, pool_name, st.one_of(st.none(), st.integers(0, 6))),
    devices=st.lists(device, max_size=4).map(tuple),
    driver=st.one_of(st.none(), st.none(), driver),
    all_nodes=st.one_of(st.none(), st.booleans()),
    node_selector=st.one_of(st.none(), st.none(),
                            st.builds(NodeSelector, st.lists(selector_term, max_size=2).map(tuple))),
    shared_counters=st.one_of(st.none(), st.lists(st.builds(CounterSet, st.sampled_from(["s0", "s1", "S"]),
                                                            counters_map), max_size=3).map(tuple)),
)
mapping = st.builds(Mapping, name=dns_label, node_selector_terms=st.lists(selector_term, max_size=2).map(tuple),
                    resource_slice=slice_template)
configs = st.builds(Config, driver=driver, mappings=st.lists(mapping, min_size=0, max_size=4).map(tuple))

node_names = st.one_of(st.sampled_from(["node-a", "node-b", "kwok-1"]),
                       st.builds(lambda n: ".".join(["n" * 63] * n), st.integers(1, 3)))
nodes = st.lists(
    st.builds(NodeInfo, name=node_names, uid=st.just("0f0f0f0f-0000-4000-8000-000000000000"),
              labels=st.dictionaries(label_keys.filter(lambda k: k != "bad key"), label_values, max_size=3)),
    max_size=4, unique_by=lambda n: n.name,
)


# Mostly-valid configs: built from valid parts so that most pass validate() and the property below has teeth.
good_requirement = st.one_of(
    st.builds(NodeSelectorRequirement, key=label_keys.filter(lambda k: k != "bad key"),
              operator=st.sampled_from(["In", "NotIn"]),
              values=st.lists(label_values.filter(lambda v: v not in ("x y", "-1")), min_size=1,
                              max_size=3).map(tuple)),
    st.builds(NodeSelectorRequirement, key=st.sampled_from(["type", "zone"]),
              operator=st.sampled_from(["Exists", "DoesNotExist"])),
    st.builds(NodeSelectorRequirement, key=st.just("gpus"), operator=st.sampled_from(["Gt", "Lt"]),
              values=st.sampled_from(["3", "0", "10"]).map(lambda v: (v,))),
)
good_field = st.builds(NodeSelectorRequirement, key=st.just("metadata.name"),
                       operator=st.sampled_from(["In", "NotIn"]),
                       values=st.sampled_from(["node-a", "node-b"]).map(lambda v: (v,)))
good_term = st.builds(NodeSelectorTerm, match_expressions=st.lists(good_requirement, min_size=1, max_size=2).map(tuple),
                      match_fields=st.one_of(st.just(()), st.just(()), st.tuples(good_field)))
good_text = st.lists(
    st.one_of(st.text(string.ascii_letters + string.digits + " -_.:/", max_size=8),
              st.sampled_from(["{{device}}", "{{index}}", "{{hash}}", "{{hash:4}}"])),
    max_size=3,
).map("".join)
good_attribute = st.one_of(
    st.builds(AttributeValue, string=good_text),
    st.builds(AttributeValue, string=st.sampled_from(["{{node}}", "x{{node}}", "GPU-{{uuid}}", "{{uuid}}{{index}}"])),
    st.builds(AttributeValue, int_=st.integers(-(2**63), 2**63 - 1)),
    st.builds(AttributeValue, bool_=st.booleans()),
    st.builds(AttributeValue, version=st.builds(lambda a, b, c: f"{a}.{b}.{c}", *(st.integers(0, 99),) * 3)),
)
good_quantity = st.builds(lambda n, s: f"{n}{s}", st.integers(0, 10**6),
                          st.sampled_from(["", "m", "k", "M", "Gi", "Ti", "e3"]))
good_key = st.one_of(c_ident, st.builds(lambda d, n: f"{d}/{n}", subdomain, c_ident))
good_device = st.builds(
    DeviceTemplate,
    name=label,
    count=st.one_of(st.none(), st.integers(1, 300)),
    attributes=st.dictionaries(good_key, good_attribute, min_size=1, max_size=4),
    capacity=st.dictionaries(good_key, st.builds(CapacityValue, good_quantity), max_size=3),
)


@st.composite
def good_mapping(draw: st.DrawFn, index: int) -> Mapping:
    selection = draw(st.sampled_from(["local", "local", "all", "selector"]))
    devices = draw(st.lists(good_device, max_size=4))
    # Device names unique across the whole config: "<name>-x<index>y<j>" cannot collide after count expansion.
    devices = [DeviceTemplate(f"{d.name}-x{index}y{j}", d.count, d.attributes, d.capacity)
               for j, d in enumerate(devices)]
    if selection != "local":  # {{node}} only exists in node-local pools
        devices = [DeviceTemplate(d.name, d.count, {k: v for k, v in d.attributes.items()
                                                     if not (v.string and "{{node}}" in v.string)} or
                                  {"type": AttributeValue(string="x")}, d.capacity) for d in devices]
    pool = draw(st.sampled_from(["gpu", "fpga", "shared.example.com/pool"]))
    if selection != "local":
        pool = f"{pool}-{index}"
    return Mapping(
        name=f"{draw(label)}-{index}",
        node_selector_terms=tuple(draw(st.lists(good_term, min_size=1, max_size=2))),
        resource_slice=ResourceSliceTemplate(
            pool=PoolTemplate(pool, draw(st.one_of(st.none(), st.none(), st.integers(10, 20)))),
            devices=tuple(devices),
            driver=draw(st.one_of(st.none(), st.sampled_from(["fpga.example.com"]))),
            all_nodes=True if selection == "all" else draw(st.sampled_from([None, False])),
            node_selector=NodeSelector((draw(good_term),)) if selection == "selector" else None,
        ),
    )


@st.composite
def good_configs(draw: st.DrawFn) -> Config:
    count = draw(st.integers(1, 4))
    return Config(draw(subdomain), tuple(draw(good_mapping(i)) for i in range(count)))


def dump(pools: list[Pool]) -> str:
    return json.dumps([(p.driver, p.name, p.node_name, p.slices) for p in pools], sort_keys=True)


@SETTINGS
@given(st.one_of(good_configs(), configs), nodes)
def test_valid_configs_render_slices_the_apiserver_accepts(config: Config, cluster: list[NodeInfo]) -> None:
    problems = validate(config)  # never raises, whatever the config
    if any(p.severity == "error" for p in problems):
        render(config, cluster, check=False)  # must not crash either
        return
    pools = render(config, cluster)  # check=True: would raise RenderError on any apiserver-invalid slice
    object_names: set[str] = set()
    pool_keys: set[tuple[str, str]] = set()
    for pool in pools:
        assert (pool.driver, pool.name) not in pool_keys
        pool_keys.add((pool.driver, pool.name))
        device_names: list[str] = []
        for body in pool.slices:
            assert validate_slice(body) == []
            assert body["spec"]["pool"]["resourceSliceCount"] == len(pool.slices)
            assert body["metadata"]["name"] not in object_names
            object_names.add(body["metadata"]["name"])
            device_names += [d["name"] for d in body["spec"]["devices"]]
        assert len(device_names) == len(set(device_names))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(good_configs(), configs), nodes)
def test_rendering_is_deterministic(config: Config, cluster: list[NodeInfo]) -> None:
    first = dump(render(config, cluster, check=False))
    assert dump(render(config, cluster, check=False)) == first
    assert dump(render(config, list(reversed(cluster)), check=False)) == first


@settings(max_examples=60, deadline=None)
@given(st.one_of(good_configs(), configs))
def test_configs_round_trip_through_yaml(config: Config) -> None:
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)  # type: ignore[attr-defined]
    assert load_config(text) == config


@settings(max_examples=200, deadline=None)
@given(quantity)
def test_canonical_quantities_are_stable(text: str) -> None:
    try:
        parsed = parse_quantity(text)
    except QuantityError:
        return
    again = parse_quantity(parsed.canonical)
    assert again.value == parsed.value or not parsed.stored_exactly  # 1000E: stored as "1" by the apiserver too
    assert canonical_quantity(parsed.canonical) == parsed.canonical


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.sampled_from(["driver", "mappings", "name", "kind", "data",
                                                                "resourceSlice", "devices", "pool", "x"]),
                                               children, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), yaml_values.map(lambda v: yaml.safe_dump(v))))
def test_loader_fails_only_with_its_own_errors(text: str) -> None:
    try:
        load_documents(text)
    except (ParseError, ConfigInvalid):
        pass
