"""Loading YAML into a Config: what is accepted, and every way of being refused (by value, no cluster)."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from dra_kwok.accept import validate
from dra_kwok.config import (
    Config,
    ConfigInvalid,
    ParseError,
    load_config,
    load_documents,
)
from dra_kwok.config.loader import MAX_INPUT_BYTES
from dra_kwok.config.types import (
    AttributeValue,
    CapacityValue,
    CounterConsumption,
    CounterSet,
    CounterValue,
    NodeAllocatableMapping,
    NodeAllocatableOverhead,
    NodeAllocatableResource,
    RequestPolicy,
    Taint,
    ValidRange,
)

RAW = textwrap.dedent(
    """\
    driver: gpu.dra-kwok.x-k8s.io
    mappings:
      - name: gpu
        nodeSelectorTerms:
          - matchExpressions:
              - key: node.kubernetes.io/instance-type
                operator: In
                values: ["c-4x-amd64-linux"]
        resourceSlice:
          pool:
            name: gpu-pool
            resourceSliceCount: 1
          devices:
            - name: gpu
              count: 2
              attributes:
                type: {string: t4}
                cores: {int: 2560}
                fast: {bool: true}
                driverVersion: {version: 1.2.3}
              capacity:
                memory: {value: 16Gi}
    """
)


def configmap(body: str, key: str = "config.yaml", extra: str = "") -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dra-kwok-configmap\n  namespace: karpenter\n"
        f"data:\n{extra}  {key}: |\n" + textwrap.indent(body, "    ")
    )


def invalid(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        load_config(text, "test.yaml")
    return [str(e) for e in info.value.errors]


def parse_error(text: str | bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        load_config(text, "test.yaml")
    return info.value


# -- what loads ------------------------------------------------------------------------------------------


def test_parses_valid_yaml() -> None:
    config = load_config(RAW)
    assert config.driver == "gpu.dra-kwok.x-k8s.io"
    (mapping,) = config.mappings
    assert mapping.name == "gpu"
    (term,) = mapping.node_selector_terms
    assert term.match_expressions[0].key == "node.kubernetes.io/instance-type"
    assert term.match_expressions[0].values == ("c-4x-amd64-linux",)
    assert term.match_fields == ()
    template = mapping.resource_slice
    assert template.pool.name == "gpu-pool" and template.pool.resource_slice_count == 1
    assert template.driver is None and template.all_nodes is None and template.node_selector is None
    (device,) = template.devices
    assert device.name == "gpu" and device.count == 2
    assert device.attributes == {
        "type": AttributeValue(string="t4"),
        "cores": AttributeValue(int_=2560),
        "fast": AttributeValue(bool_=True),
        "driverVersion": AttributeValue(version="1.2.3"),
    }
    assert device.capacity == {"memory": CapacityValue("16Gi")}
    assert validate(config) == []


def test_parses_configmap_with_config_yaml_key() -> None:
    assert load_config(configmap(RAW)) == load_config(RAW)


@pytest.mark.parametrize("key", ["config.yml", "settings.yaml", "dra.yml"])
def test_handles_different_config_key_names(key: str) -> None:
    assert load_config(configmap(RAW, key)) == load_config(RAW)


def test_config_yaml_key_wins_over_other_yaml_keys() -> None:
    text = configmap(RAW, extra="  other.yaml: 'not: used'\n")
    assert load_config(text) == load_config(RAW)


def test_missing_config_key_names_the_keys_found() -> None:
    errors = invalid(configmap(RAW, "settings.txt", extra="  notes: hello\n"))
    assert len(errors) == 1
    assert errors[0].startswith("data: no config key: expected 'config.yaml'")
    assert "'notes', 'settings.txt'" in errors[0]


def test_two_candidate_keys_without_config_yaml_is_an_error() -> None:
    errors = invalid(configmap(RAW, "a.yaml", extra="  b.yml: 'x: 1'\n"))
    assert "more than one config key" in errors[0] and "'b.yml'" in errors[0] and "'a.yaml'" in errors[0]


def test_configmap_without_data() -> None:
    errors = invalid("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert errors == ["data: the ConfigMap has no data; put the config under data.config.yaml"]


def test_configmap_data_value_must_be_text() -> None:
    errors = invalid("kind: ConfigMap\ndata:\n  config.yaml: {driver: x}\n")
    assert errors[0].startswith("data[config.yaml]: expected the config as text")


def test_capitalised_attribute_keys_of_the_original_driver() -> None:
    text = RAW.replace("{string: t4}", "{String: t4}").replace("{int: 2560}", "{Int: 2560}")
    text = text.replace("{bool: true}", "{Bool: true}").replace("{version: 1.2.3}", "{Version: 1.2.3}")
    assert load_config(text) == load_config(RAW)


def test_both_spellings_of_one_attribute_key_is_an_error() -> None:
    errors = invalid(RAW.replace("{string: t4}", "{string: t4, String: t4}"))
    assert errors == [
        "mappings[0].resourceSlice.devices[0].attributes[type].String: both 'string' and 'String' given; keep one"
    ]


def test_integer_capacity_becomes_a_string() -> None:
    config = load_config(RAW.replace("{value: 16Gi}", "{value: 16}"))
    assert config.mappings[0].resource_slice.devices[0].capacity["memory"] == CapacityValue("16")


def test_null_optional_fields_mean_absent() -> None:
    config = load_config(RAW.replace("count: 2", "count: null").replace("resourceSliceCount: 1", "resourceSliceCount:"))
    assert config.mappings[0].resource_slice.devices[0].count is None
    assert config.mappings[0].resource_slice.pool.resource_slice_count is None


def test_bytes_input_and_bom() -> None:
    assert load_config(RAW.encode()) == load_config(RAW)
    assert load_config(b"\xef\xbb\xbf" + RAW.encode()) == load_config(RAW)
    assert load_config("\ufeff" + RAW) == load_config(RAW)


def test_anchors_and_aliases_are_allowed_in_moderation() -> None:
    text = textwrap.dedent(
        """\
        driver: gpu.example.com
        mappings:
          - name: a
            nodeSelectorTerms: &terms
              - matchExpressions: [{key: type, operator: In, values: [kwok]}]
            resourceSlice:
              pool: {name: a}
              devices: &devices
                - name: gpu
                  attributes: {type: {string: gpu}}
          - name: b
            nodeSelectorTerms: *terms
            resourceSlice:
              pool: {name: b}
              devices: *devices
        """
    )
    config = load_config(text)
    assert config.mappings[0].resource_slice.devices == config.mappings[1].resource_slice.devices
    assert validate(config) == []


def test_merge_keys_override_without_being_duplicates() -> None:
    text = "base: &b {name: x, count: 2}\ndriver: d\nmappings: []\n"
    with pytest.raises(ConfigInvalid) as info:  # 'base' is unknown, but the merge itself is fine
        load_config(text)
    assert [e.path for e in info.value.errors] == ["base"]
    device = "driver: d\nmappings: []\nx: {<<: {a: 1}, a: 2}\n"
    with pytest.raises(ConfigInvalid):
        load_config(device)


def test_config_round_trips_through_to_dict_in_kubernetes_casing() -> None:
    config = load_config(RAW)
    data = config.to_dict()  # type: ignore[attr-defined]
    slice_template = data["mappings"][0]["resourceSlice"]
    assert "resourceSliceCount" in slice_template["pool"] and "nodeSelectorTerms" in data["mappings"][0]
    assert "allNodes" not in slice_template  # None fields are left out
    assert slice_template["devices"][0]["attributes"]["cores"] == {"int": 2560}
    assert load_config(yaml.safe_dump(data)) == config


# -- multi-document input --------------------------------------------------------------------------------


def test_multi_document_input() -> None:
    second = RAW.replace("gpu.dra-kwok.x-k8s.io", "fpga.example.com")
    configs = load_documents("---\n" + RAW + "---\n" + configmap(second) + "---\n")
    assert [c.driver for c in configs] == ["gpu.dra-kwok.x-k8s.io", "fpga.example.com"]


def test_load_config_wants_exactly_one_document() -> None:
    error = parse_error(RAW + "---\n" + RAW)
    assert "expected exactly one config, found 2" in error.message
    assert error.line == RAW.count("\n") + 2


def test_errors_in_several_documents_are_all_reported_with_document_paths() -> None:
    with pytest.raises(ConfigInvalid) as info:
        load_documents(RAW.replace("devices:", "devcies:") + "---\n" + RAW.replace("driver:", "drivr:"))
    assert [e.path for e in info.value.errors] == [
        "documents[0].mappings[0].resourceSlice.devcies",
        "documents[1].drivr",
    ]


def test_empty_input() -> None:
    for text in ("", "---\n", "# just a comment\n", "---\n---\n"):
        assert "no YAML document found" in parse_error(text).message


# -- ParseError ------------------------------------------------------------------------------------------


def test_invalid_yaml() -> None:
    error = parse_error("driver: x\nmappings: [\n")
    assert (error.source, error.line) == ("test.yaml", 3)
    assert str(error).startswith("test.yaml:3:1: ")


def test_invalid_yaml_inside_a_configmap_reports_outer_lines() -> None:
    text = configmap(RAW.replace('values: ["c-4x-amd64-linux"]', 'values: ["c-4x-amd64-linux"'))
    error = parse_error(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if 'values: ["c-4x-amd64-linux"' in ln)
    assert error.source == "test.yaml"
    assert line <= error.line <= line + 1


def test_duplicate_keys_are_refused() -> None:
    error = parse_error("driver: a.example.com\ndriver: b.example.com\nmappings: []\n")
    assert (error.line, error.column) == (2, 1)
    assert "duplicate key 'driver' (first on line 1)" in error.message


def test_duplicate_keys_deep_inside_are_refused() -> None:
    error = parse_error(RAW.replace("cores: {int: 2560}", "type: {int: 2560}"))
    assert "duplicate key 'type'" in error.message


def test_python_tags_are_refused() -> None:
    error = parse_error("driver: !!python/object/apply:os.system [echo hi]\nmappings: []\n")
    assert "could not determine a constructor" in error.message
    error = parse_error("!!python/name:os.system\n")
    assert error.line == 1


def test_non_utf8_bytes() -> None:
    error = parse_error(b"driver: x\nmappings: [\xff]\n")
    assert (error.line, error.column) == (2, 12)
    assert "not UTF-8" in error.message


def test_oversized_input_is_refused_before_parsing() -> None:
    big = "# " + "x" * MAX_INPUT_BYTES + "\n"
    assert "10 MiB" in parse_error(big).message
    assert "10 MiB" in parse_error(big.encode()).message


def test_deep_nesting_is_refused() -> None:
    error = parse_error("a: " + "[" * 65 + "]" * 65)
    assert "nested deeper than 64" in error.message
    with pytest.raises(ConfigInvalid):  # 60 levels are read; the structure is wrong, which is another matter
        load_config("a: " + "[" * 60 + "]" * 60)


def test_deep_nesting_through_aliases_is_refused() -> None:
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    assert "once aliases are expanded" in parse_error(text).message


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    error = parse_error("\n".join(lines) + "\n")
    assert "alias" in error.message and "refusing" in error.message


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    assert "more than 100 aliases" in parse_error(text).message


def test_recursive_alias_is_refused() -> None:
    assert "recursive alias" in parse_error("a: &a [*a]\n").message


@pytest.mark.parametrize("text,kind", [("- a\n- b\n", "a list"), ("hello\n", "string 'hello'"), ("42\n", "integer 42")])
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    error = parse_error(text)
    assert error.message.endswith(f"got {kind}")


def test_configmap_holding_two_documents() -> None:
    assert "exactly one YAML document" in parse_error(configmap(RAW + "---\n" + RAW)).message


# -- ConfigInvalid: structure ----------------------------------------------------------------------------


def test_unknown_field_is_named_with_a_suggestion() -> None:
    errors = invalid(RAW.replace("devices:", "devcies:"))
    assert errors == ['mappings[0].resourceSlice.devcies: unknown field; did you mean "devices"?']


def test_unknown_field_without_a_close_match_lists_the_allowed_ones() -> None:
    errors = invalid(RAW.replace("    resourceSlice:", "    zzz: 1\n    resourceSlice:"))
    assert errors == ["mappings[0].zzz: unknown field; allowed here: bindingSimulation, name, nodeSelectorTerms, resourceSlice"]


def test_unknown_field_positions() -> None:
    with pytest.raises(ConfigInvalid) as info:
        load_config(RAW.replace("devices:", "devcies:"), "gpu.yaml")
    (error,) = info.value.errors
    assert (error.line, error.column) == (13, 7)
    assert "gpu.yaml:13:7: mappings[0].resourceSlice.devcies: unknown field" in str(info.value)


def test_positions_inside_a_configmap_are_lines_of_the_outer_file() -> None:
    text = configmap(RAW.replace("devices:", "devcies:"))
    with pytest.raises(ConfigInvalid) as info:
        load_config(text)
    (error,) = info.value.errors
    assert text.splitlines()[error.line - 1][error.column - 1 :].startswith("devcies:")


def test_all_structural_errors_are_reported_at_once() -> None:
    text = RAW.replace("name: gpu-pool", "name: 7").replace("count: 2", "count: two")
    text = text.replace("fast: {bool: true}", "fast: {bool: \"yes\"}").replace("driver: gpu", "drivers: gpu")
    errors = invalid(text)
    assert len(errors) == 4, errors  # no "driver missing": the misspelt "drivers" already points at it
    joined = "\n".join(errors)
    assert 'drivers: unknown field; did you mean "driver"?' in joined
    assert "mappings[0].resourceSlice.pool.name: expected a string, got integer 7; quote it" in joined
    assert "mappings[0].resourceSlice.devices[0].count: expected an integer, got string 'two'" in joined
    assert "attributes[fast].bool: expected true or false, got string 'yes'" in joined


@pytest.mark.parametrize(
    "old,new,message",
    [
        ("devices:\n        - name: gpu\n", "devices: null\n      x:\n        - name: gpu\n", "mappings[0].resourceSlice.devices: required, got null"),
        ("    nodeSelectorTerms:", "    nodeSelectorTerms: {}\n    x_:", None),
        ("mappings:", "mappings: {}\nx:", "mappings: expected a list of mappings, got a mapping"),
        ("pool:\n        name: gpu-pool", "pool:\n        - gpu-pool\n      x:", None),
        ('values: ["c-4x-amd64-linux"]', "values: [true]",
         "mappings[0].nodeSelectorTerms[0].matchExpressions[0].values[0]: expected a string, got boolean true; "
         'quote it, e.g. "true"'),
        ("type: {string: t4}", "type: t4",
         "mappings[0].resourceSlice.devices[0].attributes[type]: expected a mapping with exactly one of string, int, "
         "bool, version, got string 't4'; write e.g. {string: t4}"),
        ("memory: {value: 16Gi}", "memory: 16Gi",
         "mappings[0].resourceSlice.devices[0].capacity[memory]: expected a mapping {value: <quantity>}, got string "
         "'16Gi'; write e.g. {value: 16Gi}"),
        ("memory: {value: 16Gi}", "memory: {value: 1.5}", None),
        ("type: {string: t4}", "type: {string: 7.5}", None),
        ("type: {string: t4}", "type: {str: t4}", None),
        ("type: {string: t4}", "type: {strings: a}", None),
        ("type: {string: t4}", "type: {ints: [1, a]}", None),
        ("        - name: gpu\n", "        - name: gpu\n          basic: {}\n", None),
    ],
)
def test_wrong_types_are_reported_with_paths(old: str, new: str, message: str | None) -> None:
    text = RAW.replace(old, new, 1)
    assert text != RAW
    errors = invalid(text)
    assert errors
    if message is not None:
        assert any(e.startswith(message) for e in errors), errors


def test_quote_hints_for_yaml_surprises() -> None:
    errors = invalid(RAW.replace("type: {string: t4}", "type: {string: 7.5}"))
    assert errors == ['mappings[0].resourceSlice.devices[0].attributes[type].string: expected a string, got number '
                      '7.5; quote it, e.g. "7.5" (YAML reads unquoted numbers, dates and yes/no/on/off/true/false as '
                      'non-strings)']


def test_missing_required_fields() -> None:
    errors = invalid("mappings:\n  - name: a\n")
    assert errors == [
        "mappings[0].nodeSelectorTerms: required field is missing",
        "mappings[0].resourceSlice: required field is missing",
        "driver: required field is missing",
    ]


def test_misspelt_required_field_is_reported_once() -> None:
    errors = invalid(RAW.replace("  - name: gpu\n", "  - nme: gpu\n", 1))
    assert errors == ['mappings[0].nme: unknown field; did you mean "name"?']


def test_non_string_keys() -> None:
    errors = invalid(RAW.replace("cores: {int: 2560}", "1: {int: 2560}"))
    assert errors[0].startswith("mappings[0].resourceSlice.devices[0].attributes: names must be strings, got integer 1")


ALPHAS = """\
driver: gpu.example.com
mappings:
  - name: tpu
    nodeSelectorTerms: [{matchExpressions: [{key: type, operator: In, values: [kwok]}]}]
    resourceSlice:
      perDeviceNodeSelection: true
      partitionTypeAttribute: gpu.example.com/profile
      skipNodeOperations: [NodePrepareResources, NodeUnprepareResources]
      pool: {name: tpu}
      sharedCounters: [{name: s, counters: {c: {value: "2"}}}]
      devices:
        - name: a
          count: 2
          nodeName: "kwok-node-{{index}}"
          consumesCounters: [{counterSet: s, counters: {c: {value: "1"}}, compatibilityGroups: [g1, g2]}]
          nodeAllocatableResources:
            cpu: {mapping: {capacityKey: cores, capacityMultiplier: "2"}}
            memory: {overhead: {perPod: 1Gi, perContainer: 0}}
        - name: b
          nodeSelector: {nodeSelectorTerms: [{matchExpressions: [{key: rack, operator: In, values: [r1]}]}]}
        - name: c
          allNodes: true
"""


def test_per_device_node_selection_and_the_1_37_alphas_load() -> None:
    config = load_config(ALPHAS)
    template = config.mappings[0].resource_slice
    assert (template.per_device_node_selection, template.partition_type_attribute, template.skip_node_operations) \
        == (True, "gpu.example.com/profile", ("NodePrepareResources", "NodeUnprepareResources"))
    assert template.cluster_wide
    a, b, c = template.devices
    assert a.node_name == "kwok-node-{{index}}" and a.consumes_counters[0].compatibility_groups == ("g1", "g2")
    assert a.node_allocatable_resources == {
        "cpu": NodeAllocatableResource(mapping=NodeAllocatableMapping(capacity_key="cores", capacity_multiplier="2")),
        "memory": NodeAllocatableResource(overhead=NodeAllocatableOverhead(per_pod="1Gi", per_container="0"))}
    assert b.node_selector.node_selector_terms[0].match_expressions[0].values == ("r1",)
    assert c.all_nodes is True
    assert config == Config.from_dict(config.to_dict())  # the fast decoder agrees with dataclasses-json
    assert hash(config) == hash(Config.from_dict(config.to_dict()))


@pytest.mark.parametrize("field,message", [
    ("nodeAllocatableResourceMappings: {cpu: {}}", "the Kubernetes 1.36 shape"),
    ("skipNodeOperations: ['*']", "belongs to the resourceSlice"),
])
def test_device_fields_of_another_shape_or_place_are_refused_with_the_reason(field: str, message: str) -> None:
    (error,) = invalid(RAW.replace("          count: 2\n", f"          count: 2\n          {field}\n"))
    assert message in error, error


ADVANCED = """\
driver: gpu.example.com
mappings:
  - name: gpu
    nodeSelectorTerms: [{matchExpressions: [{key: type, operator: In, values: [kwok]}]}]
    resourceSlice:
      pool: {name: gpu}
      sharedCounters:
        - name: gpu-0
          counters: {memory: {value: 40Gi}}
      devices:
        - name: part
          count: 2
          taints: [{key: example.com/unhealthy, value: "{{device}}", effect: NoSchedule}]
          allowMultipleAllocations: true
          bindsToNode: true
          bindingConditions: [ready]
          bindingFailureConditions: [failed]
          consumesCounters: [{counterSet: gpu-0, counters: {memory: {value: 20Gi}}}]
          capacity:
            bw:
              value: 100G
              requestPolicy: {default: 10G, validRange: {min: 10G, max: 100G, step: 10G}}
            slots: {value: "8", requestPolicy: {default: "1", validValues: ["1", "2", 4]}}
"""


def test_list_attributes_load_into_the_model() -> None:
    lists = 'type: {strings: [a, "{{device}}"]}\n            n: {ints: [1, 2]}\n            b: {bools: [true]}\n' \
        "            v: {versions: [1.0.0]}"
    config = load_config(RAW.replace("type: {string: t4}", lists), "lists")
    attributes = config.mappings[0].resource_slice.devices[0].attributes
    assert attributes["type"] == AttributeValue(strings=("a", "{{device}}"))
    assert (attributes["n"].ints, attributes["b"].bools, attributes["v"].versions) == ((1, 2), (True,), ("1.0.0",))


def test_the_beta_fields_load_into_the_model() -> None:
    config = load_config(ADVANCED, "advanced")
    template = config.mappings[0].resource_slice
    assert template.shared_counters == (CounterSet("gpu-0", {"memory": CounterValue("40Gi")}),)
    device = template.devices[0]
    assert device.taints == (Taint("example.com/unhealthy", "NoSchedule", "{{device}}"),)
    assert (device.allow_multiple_allocations, device.binds_to_node) == (True, True)
    assert (device.binding_conditions, device.binding_failure_conditions) == (("ready",), ("failed",))
    assert device.consumes_counters == (CounterConsumption("gpu-0", {"memory": CounterValue("20Gi")}),)
    assert device.capacity["bw"].request_policy == RequestPolicy("10G", None, ValidRange("10G", "100G", "10G"))
    assert device.capacity["slots"].request_policy == RequestPolicy("1", ("1", "2", "4"))
    assert type(config).from_dict(config.to_dict()) == config
    assert hash(config) == hash(load_config(ADVANCED, "again"))


@pytest.mark.parametrize("old, new, message", [
    ("effect: NoSchedule}", "}", "taints[0].effect: required field is missing"),
    ("bindsToNode: true", "bindsToNode: yes please", "bindsToNode: expected true or false"),
    ("{counterSet: gpu-0, counters", "{counterset: gpu-0, counters", 'consumesCounters[0].counterset: unknown field; '
     'did you mean "counterSet"?'),
    ("{min: 10G,", "{", "validRange.min: required field is missing"),
    ("40Gi}}", "40Gi}, extra: 1}", "sharedCounters[0].counters[extra]: expected a mapping {value: <quantity>}"),
])
def test_the_beta_fields_are_checked_for_structure(old: str, new: str, message: str) -> None:
    assert old in ADVANCED
    errors = invalid(ADVANCED.replace(old, new))
    assert any(message in e for e in errors), errors


def test_node_name_and_generation_are_refused() -> None:
    (error,) = invalid(RAW.replace("      pool:\n", "      nodeName: n1\n      pool:\n"))
    assert error.startswith("mappings[0].resourceSlice.nodeName: not allowed: the driver sets nodeName")
    (error,) = invalid(RAW.replace("resourceSliceCount: 1", "resourceSliceCount: 1\n        generation: 1"))
    assert error.startswith("mappings[0].resourceSlice.pool.generation: not allowed")


def test_other_kinds_are_refused() -> None:
    (error,) = invalid("apiVersion: resource.k8s.io/v1\nkind: ResourceSlice\nspec: {}\n")
    assert error.startswith("kind: unsupported kind 'ResourceSlice'")


def test_config_type_is_frozen_and_hashable() -> None:
    config = load_config(RAW)
    assert isinstance(config, Config)
    assert hash(config) == hash(load_config(RAW)) and len({config, load_config(RAW)}) == 1
    with pytest.raises(AttributeError):
        config.driver = "x"  # type: ignore[misc]


def test_load_config_of_no_config_at_all_is_a_parse_error_not_an_index_error(monkeypatch):
    """`_load` cannot return no config today (every document either is one or is an error), but `load_config` must
    not depend on that: it used to index the second result whenever there was not exactly one."""
    from dra_kwok.config import loader

    monkeypatch.setattr(loader, "_load", lambda text, source: [])
    with pytest.raises(ParseError, match="expected exactly one config, found 0 documents"):
        load_config("driver: x", "test.yaml")
    two = "\n---\n".join([RAW, RAW])
    monkeypatch.undo()
    with pytest.raises(ParseError) as err:
        load_config(two, "test.yaml")
    assert err.value.line > 1 and "found 2 documents" in err.value.message
