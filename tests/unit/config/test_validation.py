"""validate(): every rule, its path and its advice; the corpus."""

from __future__ import annotations

import dataclasses
import glob
import os
import re

import pytest

from dra_kwok.accept import validate
from dra_kwok.config import ConfigInvalid, FieldError, ParseError, load_config
from dra_kwok.config.formats import suggest_driver_name
from dra_kwok.config.types import AttributeValue, Config, NodeSelectorTerm
from dra_kwok.slices.render import NodeInfo, render
from dra_kwok.slices.rules import DROPPED, Version, dropped_warnings, refused_on_create, validate_slice
from tests.unit.config.builders import KWOK, attrs, config, device, mapping, req, term
from tests.unit.config.test_loader import ADVANCED

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CORPUS = sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "invalid", "*.yaml")))
ORIGINALS = sorted(glob.glob(os.path.join(ROOT, "examples", "original", "*.yaml")))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml")))


def errors(cfg: Config) -> dict[str, str]:
    """path → message of the errors (warnings dropped); several messages at one path are joined by " | "."""
    out: dict[str, str] = {}
    for problem in validate(cfg):
        if problem.severity == "error":
            out[problem.path] = f"{out[problem.path]} | {problem.message}" if problem.path in out else problem.message
    return out


def warnings(cfg: Config) -> dict[str, str]:
    return {p.path: p.message for p in validate(cfg) if p.severity == "warning"}


def only_error(cfg: Config) -> tuple[str, str]:
    found = errors(cfg)
    assert len(found) == 1, found
    return next(iter(found.items()))


D0 = "mappings[0].resourceSlice.devices[0]"


# -- FieldError ------------------------------------------------------------------------------------------


def test_field_error() -> None:
    error = FieldError("mappings[0].name", "bad")
    assert str(error) == "mappings[0].name: bad" and error.severity == "error"
    assert FieldError("a", "b", line=3) == FieldError("a", "b")  # positions take no part in equality
    with pytest.raises(dataclasses.FrozenInstanceError):
        error.path = "x"  # type: ignore[misc]


def test_valid_config_has_no_problems() -> None:
    assert validate(config()) == []


# -- the original driver's config tests ------------------------------------------------------------------


def test_empty_driver() -> None:
    path, message = only_error(config(driver=""))
    assert path == "driver" and message.startswith("required")


def test_no_mappings() -> None:
    assert errors(Config("gpu.example.com", ())) == {"mappings": "at least one mapping is required"}


# -- driver ----------------------------------------------------------------------------------------------


def test_driver_with_slash_suggests_a_valid_name() -> None:
    path, message = only_error(config(driver="karpenter.sh/dra-kwok-driver"))
    assert path == "driver"
    assert "'/' is not allowed" in message and "use e.g. 'dra-kwok-driver.karpenter.sh'" in message


@pytest.mark.parametrize(
    "name,suggestion",
    [
        ("karpenter.sh/dra-kwok-driver", "dra-kwok-driver.karpenter.sh"),
        ("example.com/gpu", "gpu.example.com"),
        ("GPU.Example.com", "gpu.example.com"),
        ("my_driver.example.com", "my-driver.example.com"),
        ("a/b/c", "c.b.a"),
        ("x" * 70 + ".example.com", "x" * 51 + ".example.com"),
        ("///", "dra-kwok.example.com"),
    ],
)
def test_driver_name_suggestions(name: str, suggestion: str) -> None:
    assert suggest_driver_name(name) == suggestion
    assert validate(config(driver=suggestion)) == []


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("d" * 64, "64 characters, at most 63"),
        ("GPU.example.com", "must be lowercase"),
        ("gpu_driver.example.com", "not a DNS subdomain"),
        ("-gpu.example.com", "not a DNS subdomain"),
        ("gpu..example.com", "not a DNS subdomain"),
    ],
)
def test_invalid_driver_names(name: str, fragment: str) -> None:
    path, message = only_error(config(driver=name))
    assert path == "driver" and fragment in message and "use e.g." in message


def test_slice_driver() -> None:
    assert validate(config(mapping(driver="other.example.com"))) == []
    assert only_error(config(mapping(driver="a/b"))) [0] == "mappings[0].resourceSlice.driver"
    assert only_error(config(mapping(driver=""))) == (
        "mappings[0].resourceSlice.driver", "empty; remove it to publish under the top-level driver")


# -- mappings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "GPU", "gpu_mapping", "-gpu", "g" * 64])
def test_mapping_names_are_dns_labels(name: str) -> None:
    path, message = only_error(config(mapping(name=name)))
    assert path == "mappings[0].name"


def test_mapping_names_are_unique() -> None:
    cfg = config(mapping(), mapping(pool="other"))
    assert errors(cfg) == {
        "mappings[1].name": "duplicate mapping name 'gpu' (also mappings[0]); mapping names must be unique"
    }


def test_no_terms_is_a_warning_only() -> None:
    cfg = config(mapping(terms=()))
    assert errors(cfg) == {}
    assert "can never match" in warnings(cfg)["mappings[0].nodeSelectorTerms"]


def test_empty_term_is_an_error() -> None:
    path, message = only_error(config(mapping(terms=(NodeSelectorTerm(),))))
    assert path == "mappings[0].nodeSelectorTerms[0]" and "matches no node" in message


@pytest.mark.parametrize(
    "requirement,path,fragment",
    [
        (req("type", "Equals", "kwok"), "operator", "use one of In, NotIn, Exists, DoesNotExist, Gt, Lt"),
        (req("type", "In"), "values", "needs at least one value"),
        (req("type", "NotIn"), "values", "needs at least one value"),
        (req("type", "Exists", "x"), "values", "takes no values"),
        (req("type", "DoesNotExist", "x"), "values", "takes no values"),
        (req("gpus", "Gt"), "values", "exactly one value, an integer"),
        (req("gpus", "Lt", "1", "2"), "values", "exactly one value, an integer"),
        (req("gpus", "Gt", "many"), "values[0]", "compares integers"),
        (req("gpus", "Lt", "99999999999999999999"), "values[0]", "compares integers"),
        (req("gpus", "Gt", "-3"), "values[0]", "negative or signed bounds cannot be expressed"),
        (req("gpus", "Lt", "+7"), "values[0]", "not a valid label value"),
        (req("a/b/c", "Exists"), "key", "at most one '/'"),
        (req("-x", "Exists"), "key", "starting and ending with a letter or digit"),
        ("Bad_Prefix/x", "key", "not a DNS subdomain"),
        (req("k" * 64, "Exists"), "key", "64 characters"),
        (req("type", "In", "a b"), "values[0]", "label value"),
        (req("type", "In", "v" * 64), "values[0]", "64 characters"),
    ],
)
def test_match_expression_rules(requirement: object, path: str, fragment: str) -> None:
    if isinstance(requirement, str):
        requirement = req(requirement, "Exists")
    found = errors(config(mapping(terms=(term(requirement),))))  # type: ignore[arg-type]
    key = f"mappings[0].nodeSelectorTerms[0].matchExpressions[0].{path}"
    assert key in found and fragment in found[key], found


@pytest.mark.parametrize(
    "requirement",
    [req("type", "Exists"), req("type", "DoesNotExist"), req("gpus", "Gt", "0"), req("gpus", "Lt", "007"),
     req("example.com/type", "NotIn", "a", "b", ""), req("kwok.x-k8s.io/node", "In", "fake")],
)
def test_valid_match_expressions(requirement: object) -> None:
    assert errors(config(mapping(terms=(term(requirement),)))) == {}  # type: ignore[arg-type]


def test_match_fields_rules() -> None:
    assert errors(config(mapping(terms=(term(fields=(req("metadata.name", "In", "node-1"),)),)))) == {}
    assert errors(config(mapping(terms=(term(fields=(req("metadata.name", "NotIn", "node-1"),)),)))) == {}
    found = errors(config(mapping(terms=(term(fields=(req("spec.nodeName", "Exists"),)),))))
    base = "mappings[0].nodeSelectorTerms[0].matchFields[0]"
    assert "supports only metadata.name" in found[f"{base}.key"]
    assert "supports In and NotIn" in found[f"{base}.operator"]
    assert "exactly one value" in found[f"{base}.values"]
    found = errors(config(mapping(terms=(term(fields=(req("metadata.name", "In", "a", "b"),)),))))
    assert "one term per node" in found[f"{base}.values"]
    found = errors(config(mapping(terms=(term(fields=(req("metadata.name", "In", "Node_1"),)),))))
    assert "not a DNS subdomain" in found[f"{base}.values[0]"]


# -- pools and node selection ----------------------------------------------------------------------------


@pytest.mark.parametrize("pool,fragment", [("", "required"), ("GPU", "not a DNS subdomain"), ("a//b", "empty part"),
                                           ("a/", "empty part"), ("a_b", "not a DNS subdomain")])
def test_pool_name_format(pool: str, fragment: str) -> None:
    path, message = only_error(config(mapping(pool=pool)))
    assert path == "mappings[0].resourceSlice.pool.name" and fragment in message


def test_pool_names_may_have_slashes() -> None:
    assert validate(config(mapping(pool="gpus.example.com/t4/a"))) == []


def test_node_local_pool_name_leaves_room_for_the_node() -> None:
    ok = "/".join(["p" * 63, "p" * 63, "p" * 61])  # 189 characters: 63 + 1 + 189 = 253
    assert len(ok) == 189 and validate(config(mapping(pool=ok))) == []
    path, message = only_error(config(mapping(pool=ok + "p")))
    assert "published as <node>/<name>" in message and "at most 189" in message
    assert validate(config(mapping(pool=ok + "p", all_nodes=True))) == []  # cluster-wide: as written
    long = "/".join(["p" * 63] * 4) + "/p"  # 254
    assert "at most 253" in only_error(config(mapping(pool=long, all_nodes=True)))[1]


@pytest.mark.parametrize("count", [0, -1, 1001])
def test_resource_slice_count_range(count: int) -> None:
    path, message = only_error(config(mapping(slices=count)))
    assert path == "mappings[0].resourceSlice.pool.resourceSliceCount" and "between 1 and 1000" in message


def test_resource_slice_count_must_hold_the_devices() -> None:
    assert validate(config(mapping(devices=[device("d", count=128)], slices=1))) == []
    path, message = only_error(config(mapping(devices=[device("d", count=129)], slices=1)))
    assert path == "mappings[0].resourceSlice.pool.resourceSliceCount"
    assert "1 slice cannot hold the pool's 129 devices" in message and "at least 2" in message
    assert validate(config(mapping(devices=[device("d", count=129)], slices=2))) == []
    assert validate(config(mapping(devices=[device("d", count=129)]))) == []  # split automatically
    assert validate(config(mapping(devices=[device("d", count=3)], slices=5))) == []  # empty slices are fine


def test_too_many_devices_in_a_pool() -> None:
    devices = [device(f"d{i}", count=100_000) for i in range(2)]
    path, message = only_error(config(mapping(devices=devices)))
    assert path == "mappings[0].resourceSlice.devices" and "200000 devices" in message


def test_both_all_nodes_and_node_selector() -> None:
    path, message = only_error(config(mapping(all_nodes=True, node_selector=(KWOK,))))
    assert path == "mappings[0].resourceSlice" and "both allNodes and nodeSelector" in message


def test_cluster_wide_selections() -> None:
    assert validate(config(mapping(all_nodes=True))) == []
    assert validate(config(mapping(node_selector=(KWOK,)))) == []
    assert validate(config(mapping(all_nodes=False))) == []  # false means unset: node-local


@pytest.mark.parametrize("terms", [(), (KWOK, KWOK)])
def test_node_selector_needs_exactly_one_term(terms: tuple[NodeSelectorTerm, ...]) -> None:
    path, message = only_error(config(mapping(node_selector=terms)))
    assert path == "mappings[0].resourceSlice.nodeSelector.nodeSelectorTerms" and "exactly one term" in message


def test_node_selector_term_rules() -> None:
    path, message = only_error(config(mapping(node_selector=(NodeSelectorTerm(),))))
    assert path == "mappings[0].resourceSlice.nodeSelector.nodeSelectorTerms[0]" and "matches no node" in message
    path, _ = only_error(config(mapping(node_selector=(term(req("type", "In")),))))
    assert path == "mappings[0].resourceSlice.nodeSelector.nodeSelectorTerms[0].matchExpressions[0].values"


def test_cluster_wide_pools_must_not_share_a_name() -> None:
    cfg = config(mapping(all_nodes=True), mapping("b", devices=[device("x")], all_nodes=True))
    path, message = only_error(cfg)
    assert path == "mappings[1].resourceSlice.pool.name" and "also published by mappings[0]" in message
    # ...but a node-local and a cluster-wide pool of the same name do not collide (<node>/name vs name).
    assert errors(config(mapping(), mapping("b", all_nodes=True))) == {}


# -- devices ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["GPU_0", "gpu.0", "-gpu", "gpu-", "", "g" * 64])
def test_device_names_are_dns_labels(name: str) -> None:
    path, _ = only_error(config(mapping(devices=[device(name)])))
    assert path == f"{D0}.name"


def test_device_name_length_with_count() -> None:
    assert validate(config(mapping(devices=[device("g" * 61, count=10)]))) == []  # g...g-9: 63
    path, message = only_error(config(mapping(devices=[device("g" * 61, count=11)])))  # g...g-10: 64
    assert path == f"{D0}.name" and "shorten the name to at most 60 characters" in message


@pytest.mark.parametrize("count", [0, -2, 100_001])
def test_count_range(count: int) -> None:
    path, message = only_error(config(mapping(devices=[device("gpu", count=count)])))
    assert path == f"{D0}.count" and "between 1 and 100000" in message


def test_device_names_unique_in_a_pool() -> None:
    path, message = only_error(config(mapping(devices=[device("a"), device("a")])))
    assert path == "mappings[0].resourceSlice.devices[1].name" and "used twice in pool 'gpu-pool'" in message
    path, message = only_error(config(mapping(devices=[device("gpu", count=2), device("gpu-1")])))
    assert path == "mappings[0].resourceSlice.devices[1].name" and "'gpu-1'" in message


def test_device_names_unique_across_mappings_sharing_a_pool() -> None:
    cfg = config(mapping("a"), mapping("b", terms=(term(req("zone", "Exists")),)))
    path, message = only_error(cfg)
    assert path == "mappings[1].resourceSlice.devices[0].name"
    assert "also by mappings[0].resourceSlice.devices[0].name" in message and "form one pool per node" in message
    assert errors(config(mapping("a"), mapping("b", pool="other"))) == {}  # other pool
    assert errors(config(mapping("a"), mapping("b", driver="other.example.com"))) == {}  # other driver


def test_shared_pool_slice_counts() -> None:
    cfg = config(mapping("a", slices=1), mapping("b", devices=[device("x")], slices=2))
    path, message = only_error(cfg)
    assert path == "mappings[1].resourceSlice.pool.resourceSliceCount" and "differs from 1 in mappings[0]" in message
    cfg = config(mapping("a", devices=[device("x", count=100)], slices=1),
                 mapping("b", devices=[device("y", count=100)]))
    path, message = only_error(cfg)
    assert path == "mappings[1].resourceSlice.pool.resourceSliceCount"
    assert "200 devices (together with mappings 0)" in message


def test_device_without_attributes_is_a_warning() -> None:
    cfg = config(mapping(devices=[device(attributes={}, capacity={"memory": "1Gi"})]))
    assert errors(cfg) == {}
    assert "no attributes" in warnings(cfg)[f"{D0}.attributes"]


# -- attributes and capacity -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["type", "_x", "A1_b", "a" * 32, "gpu.example.com/model", "Example.COM/model",
                                 "d" * 63 + "/" + "n" * 32])
def test_valid_attribute_names(key: str) -> None:
    assert errors(config(mapping(devices=[device(attributes=attrs(**{key: "x"}))]))) == {}


@pytest.mark.parametrize(
    "key,fragment",
    [("gpu-type", "not a C identifier"), ("1abc", "not a C identifier"), ("a" * 33, "33 characters"),
     ("a/b/c", "more than one '/'"), ("/model", "domain before '/' must not be empty"),
     ("example.com/", "name after '/' must not be empty"), ("bad_domain.com/model", "not a DNS subdomain"),
     ("d" * 64 + "/model", "64 characters"), ("", "must not be empty")],
)
def test_invalid_attribute_and_capacity_names(key: str, fragment: str) -> None:
    path, message = only_error(config(mapping(devices=[device(attributes=attrs(**{key: "x"}))])))
    assert path == f"{D0}.attributes[{key}]" and message.startswith("invalid attribute name") and fragment in message
    path, message = only_error(config(mapping(devices=[device(capacity={key: "1"})])))
    assert path == f"{D0}.capacity[{key}]" and message.startswith("invalid capacity name") and fragment in message


def test_attribute_needs_exactly_one_value() -> None:
    path, message = only_error(config(mapping(devices=[device(attributes={"t": AttributeValue()})])))
    assert (path, message) == (f"{D0}.attributes[t]", "no value: set exactly one of string, int, bool, version (or "
                               "a list: strings, ints, bools, versions)")
    path, message = only_error(config(mapping(devices=[device(attributes={"t": AttributeValue(string="a", int_=1)})])))
    assert message == ("2 values (int, string): set exactly one of string, int, bool, version (or a list: strings, "
                       "ints, bools, versions)")


def test_list_attributes_need_their_gate_and_items_follow_the_scalar_rules() -> None:
    listed = config(mapping(devices=[device(attributes={"t": AttributeValue(strings=("a", "{{device}}"))})]))
    gated = Version(37, {"DRAListTypeAttributes": True})
    assert [p for p in validate(listed, gated) if p.severity == "error"] == []
    refused = [p.message for p in validate(listed) if p.severity == "error"]
    assert any("refused (422) by an apiserver without the alpha feature gate DRAListTypeAttributes" in m
               for m in refused), refused
    bad = config(mapping(devices=[device(attributes={"t": AttributeValue(strings=("a", "{{nope}}")),
                                                     "n": AttributeValue(ints=()),
                                                     "v": AttributeValue(versions=("1.0",))})]))
    assert set(errors(bad)) == {f"{D0}.attributes[t].strings[1]", f"{D0}.attributes[n].ints",
                                f"{D0}.attributes[v].versions[0]"}


def test_string_length() -> None:
    assert errors(config(mapping(devices=[device(attributes=attrs(s="x" * 64))]))) == {}
    path, message = only_error(config(mapping(devices=[device(attributes=attrs(s="x" * 65))])))
    assert path == f"{D0}.attributes[s].string" and "65 bytes" in message and "at most 64" in message


def test_string_length_is_counted_in_bytes_like_the_apiserver() -> None:
    assert errors(config(mapping(devices=[device(attributes=attrs(s="ü" * 32))]))) == {}  # 64 bytes
    path, message = only_error(config(mapping(devices=[device(attributes=attrs(s="ü" * 33))])))  # 33 characters
    assert "66 bytes" in message


def test_same_attribute_with_and_without_the_driver_domain_is_a_warning() -> None:
    cfg = config(mapping(devices=[device(attributes=attrs(model="a", **{"gpu.example.com/model": "b"}))]))
    assert errors(cfg) == {}
    assert "name the same entry" in warnings(cfg)[f"{D0}.attributes[gpu.example.com/model]"]
    cfg = config(mapping(devices=[device(attributes=attrs(model="a", **{"other.example.com/model": "b"}))]))
    assert warnings(cfg) == {}


def test_int_range() -> None:
    assert errors(config(mapping(devices=[device(attributes=attrs(n=2**63 - 1, m=-(2**63)))]))) == {}
    path, message = only_error(config(mapping(devices=[device(attributes=attrs(n=2**63))])))
    assert path == f"{D0}.attributes[n].int" and "64 bits" in message


@pytest.mark.parametrize("version", ["1.2.3", "0.0.0", "1.0.0-rc.1+build.5", "1.2.3-alpha-1", "10.20.30+meta"])
def test_valid_versions(version: str) -> None:
    assert errors(config(mapping(devices=[device(attributes={"v": AttributeValue(version=version)})]))) == {}


@pytest.mark.parametrize(
    "version,hint",
    [("1.2", "e.g. '1.2.0'"), ("7", "e.g. '7.0.0'"), ("v1.2.3", "drop the leading 'v': '1.2.3'"), ("01.2.3", ""),
     ("1.2.3-01", ""), ("1.2.3+", ""), ("1.2.3-", ""), ("1.2.3\n", ""), ("1.2.3." + "0" * 60, "")],
)
def test_invalid_versions(version: str, hint: str) -> None:
    found = errors(config(mapping(devices=[device(attributes={"v": AttributeValue(version=version)})])))
    message = found[f"{D0}.attributes[v].version"]
    assert "not a semantic version" in message and hint in message


def test_long_version() -> None:
    version = "1.2.3-" + "a" * 59  # 65 characters, valid semver
    found = errors(config(mapping(devices=[device(attributes={"v": AttributeValue(version=version)})])))
    assert "65 bytes; at most 64" in found[f"{D0}.attributes[v].version"]


def test_attributes_plus_capacities_at_most_32() -> None:
    many = attrs(**{f"a{i}": i for i in range(20)})
    assert errors(config(mapping(devices=[device(attributes=many, capacity={f"c{i}": "1" for i in range(12)})]))) == {}
    path, message = only_error(
        config(mapping(devices=[device(attributes=many, capacity={f"c{i}": "1" for i in range(13)})])))
    assert path == D0 and message == "20 attributes + 13 capacities = 33; a device may have at most 32 in total"


@pytest.mark.parametrize(
    "value,fragment",
    [("1TB", "no 'B' (bytes) unit; use '1T' or '1Ti'"), ("16GiB", "use '16Gi'"), ("1 Gi", "use '1Gi'"),
     ("abc", "not a quantity"), ("", "must not be empty"), ("1e", "unknown suffix"), ("1.5.5", "not a quantity")],
)
def test_invalid_quantities(value: str, fragment: str) -> None:
    path, message = only_error(config(mapping(devices=[device(capacity={"memory": value})])))
    assert path == f"{D0}.capacity[memory].value" and fragment in message


@pytest.mark.parametrize("value", ["16Gi", "1T", "1Ti", "100m", "1.5", "+5", "1e3", "0", "2560", "1.G"])
def test_valid_quantities(value: str) -> None:
    assert errors(config(mapping(devices=[device(capacity={"memory": value})]))) == {}


@pytest.mark.parametrize("value", ["1e999999999", "1e2147483648", "1e10001", "1e-10010"])
def test_quantities_the_apiserver_computes_for_ever_are_refused(value: str) -> None:
    """A create with 1e999999999 was not answered within 30 s by a real apiserver (it computes the value in full)."""
    path, message = only_error(config(mapping(devices=[device(capacity={"memory": value})])))
    assert path == f"{D0}.capacity[memory].value" and "at most 10^10000 is allowed" in message


def test_a_quantity_the_apiserver_would_change_is_a_warning_with_the_fix() -> None:
    cfg = config(mapping(devices=[device(capacity={"memory": "1000E"})]))
    assert errors(cfg) == {}
    assert warnings(cfg) == {f"{D0}.capacity[memory].value": "the apiserver stores '1000E' as '1' (its canonical form "
                             "has no suffix for this power of ten), a different value; write it as 1e21 to keep it"}
    assert warnings(config(mapping(devices=[device(capacity={"memory": "1e21"})]))) == {}
    assert errors(config(mapping(devices=[device(capacity={"memory": "1e1000"})]))) == {}  # stored as 10e999


# -- placeholders ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["{{node}}", "GPU-{{uuid}}", "{{device}}/{{index}}", "s-{{hash}}-{{hash:16}}",
                                  "{{hash:64}}", "}} and { are fine", "x{{node}}"])
def test_valid_placeholders(text: str) -> None:
    assert errors(config(mapping(devices=[device(attributes=attrs(s=text))]))) == {}


@pytest.mark.parametrize("text", ["{{nodename}}", "{{ node }}", "{{hash:0}}", "{{hash:65}}", "{{hash:}}", "a{{b",
                                  "{{NODE}}"])
def test_unknown_placeholders(text: str) -> None:
    path, message = only_error(config(mapping(devices=[device(attributes=attrs(s=text))])))
    assert path == f"{D0}.attributes[s].string"
    assert "placeholder" in message or "hash length" in message


def test_placeholder_lengths_are_worst_case() -> None:
    # {{node}} counts as 63, so "n-{{node}}" (65) is too long; {{device}} and {{index}} count exactly.
    path, message = only_error(config(mapping(devices=[device(attributes=attrs(s="n-{{node}}"))])))
    assert "can reach 65" in message and "counting {{node}} as 63" in message
    assert errors(config(mapping(devices=[device("g" * 60, count=100, attributes=attrs(s="{{device}}"))]))) == {}
    found = errors(config(mapping(devices=[device("g" * 58, count=100, attributes=attrs(s="xxx{{device}}"))])))
    assert "can reach 64" not in str(found) and found == {}
    found = errors(config(mapping(devices=[device("g" * 58, count=1000, attributes=attrs(s="xxx-{{device}}"))])))
    assert "can reach 66" in found[f"{D0}.attributes[s].string"]


def test_node_placeholder_needs_a_node() -> None:
    path, message = only_error(config(mapping(all_nodes=True, devices=[device(attributes=attrs(h="{{node}}"))])))
    assert "only available in node-local pools" in message


def test_placeholders_only_in_strings() -> None:
    found = errors(config(mapping(devices=[device(attributes={"v": AttributeValue(version="{{index}}.0.0")})])))
    assert "not a semantic version" in found[f"{D0}.attributes[v].version"]


# -- everything at once ----------------------------------------------------------------------------------


def test_all_problems_are_reported_at_once() -> None:
    cfg = config(
        mapping("Bad_Name", devices=[device("GPU_0", attributes=attrs(**{"gpu-type": "x" * 70})),
                                     device("ok", capacity={"memory": "1TB"})], slices=0),
        mapping("second", pool="p", terms=(term(req("type", "Equals", "x")),), all_nodes=True, node_selector=(KWOK,)),
        driver="karpenter.sh/dra-kwok-driver",
    )
    assert set(errors(cfg)) == {
        "driver",
        "mappings[0].name",
        "mappings[0].resourceSlice.pool.resourceSliceCount",
        f"{D0}.name",
        f"{D0}.attributes[gpu-type]",
        f"{D0}.attributes[gpu-type].string",
        "mappings[0].resourceSlice.devices[1].capacity[memory].value",
        "mappings[1].nodeSelectorTerms[0].matchExpressions[0].operator",
        "mappings[1].resourceSlice",
    }


# -- the original driver's examples and ours -------------------------------------------------------------


@pytest.mark.parametrize("path", ORIGINALS, ids=os.path.basename)
def test_originals_load_and_fail_only_on_the_driver_with_a_fix(path: str) -> None:
    text = open(path, encoding="utf-8").read()
    problems = [p for p in validate(load_config(text, path)) if p.severity == "error"]
    assert problems and all(p.path == "driver" or p.path.endswith(".resourceSlice.driver") for p in problems)
    assert all("use e.g. 'dra-kwok-driver.karpenter.sh'" in p.message for p in problems)
    fixed = load_config(text.replace("karpenter.sh/dra-kwok-driver", "dra-kwok-driver.karpenter.sh"), path)
    assert [p for p in validate(fixed) if p.severity == "error"] == []


def test_there_are_four_originals_and_four_examples() -> None:
    names = ["cluster-wide.yaml", "fpga.yaml", "gpu.yaml", "multi-device.yaml"]
    assert [os.path.basename(p) for p in ORIGINALS] == names
    assert [os.path.basename(p) for p in EXAMPLES] == sorted([*names, "karpenter-kwok.yaml"])  # + profiles


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_examples_are_valid_configmaps(path: str) -> None:
    text = open(path, encoding="utf-8").read()
    assert "name: dra-kwok-configmap" in text and "namespace: karpenter" in text and "config.yaml: |" in text
    assert validate(load_config(text, path)) == []


# -- the invalid corpus ----------------------------------------------------------------------------------

_HEADER = re.compile(r"\A# rule: (?P<rule>.+)\n# apiserver: (?P<verdict>reject|accept|dropped|n/a)\n")
_VERSION_VERDICT = re.compile(r"^# apiserver-1\.(3[4-7]): (reject|accept|dropped|n/a|valid)$", re.M)


def declared_verdict(text: str, minor: int) -> str:
    """A corpus file's verdict for a Kubernetes 1.<minor> apiserver with its default gates: its
    ``# apiserver-1.<minor>:`` line if any, else ``# apiserver:``. ``valid``: dra-kwok accepts the config for that
    version and the apiserver every slice. ``dropped``: dra-kwok accepts it with a warning naming each field that
    version drops (and its gate); the apiserver stores every slice without those fields."""
    header = _HEADER.match(text)
    assert header, "each corpus file starts with '# rule: ...' and '# apiserver: reject|accept|n/a'"
    return dict(_VERSION_VERDICT.findall(text)).get(str(minor), header["verdict"])


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 40
    assert all(re.fullmatch(r"\d\d-[a-z0-9-]+\.yaml", os.path.basename(p)) for p in CORPUS)


@pytest.mark.parametrize("minor", [34, 35, 36, 37])
@pytest.mark.parametrize("path", CORPUS, ids=os.path.basename)
def test_corpus_config_is_rejected(path: str, minor: int) -> None:
    text = open(path, encoding="utf-8").read()
    verdict = declared_verdict(text, minor)
    version = Version(minor)
    try:
        cfg = load_config(text, path)
    except (ParseError, ConfigInvalid):
        assert verdict == "n/a", "a config that cannot be loaded cannot be sent"
        return
    problems = [p for p in validate(cfg, version) if p.severity == "error"]
    if verdict in ("valid", "dropped"):
        assert problems == []
        warned = [p.message for p in validate(cfg, version) if p.severity == "warning" and DROPPED in p.message]
        assert bool(warned) == (verdict == "dropped"), warned
        assert all("feature gate" in m for m in warned)
    else:
        assert problems, f"validate accepted a config breaking: {_HEADER.match(text)['rule']}"  # type: ignore[index]
    if verdict == "n/a":
        return
    # Our port of the apiserver's rules must agree with the declared verdict on the unchecked rendering.
    node = NodeInfo("kwok-node-1", "6b3c6f0e-3a54-4a39-9f8a-5b0b2b7b8d11", {"type": "kwok"})
    pools = render(cfg, [node], check=False, version=version)
    assert pools
    slice_errors = [e for p in pools for body in p.slices for e in validate_slice(body, version)]
    assert bool(refused_on_create(slice_errors)) == (verdict == "reject"), slice_errors[:3]
    if verdict == "dropped":
        assert dropped_warnings(slice_errors), slice_errors[:3]
    if verdict == "valid":
        assert slice_errors == []


def test_the_total_of_devices_over_all_mappings_is_bounded():
    """100 mappings of 100,000 devices each: 25 KB of YAML that would cost the driver gigabytes on every node."""
    import yaml

    text = yaml.safe_dump({"driver": "gpu.example.com", "mappings": [
        {"name": f"m{i}", "nodeSelectorTerms": [{"matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]}],
         "resourceSlice": {"pool": {"name": f"p{i}"}, "devices": [{"name": "gpu", "count": 100000,
                                                                   "attributes": {"t": {"string": "x"}}}]}}
        for i in range(100)]})
    errors = [str(e) for e in validate(load_config(text)) if e.severity == "error"]
    assert errors == ["mappings: the mappings publish 10000000 devices in all; at most 100000 are allowed (a node, "
                      "and the driver, must be able to hold them): lower the counts"]


# -- the 1.36/1.37 beta fields ---------------------------------------------------------------------------------------

def test_the_beta_fields_are_valid_on_1_36_and_later_and_dropped_before_with_their_gate() -> None:
    cfg = load_config(ADVANCED, "beta")
    assert errors(cfg) == {}
    def dropped(version: Version) -> list[FieldError]:
        return [p for p in validate(cfg, version) if p.severity == "error" or DROPPED in p.message]

    assert dropped(Version(36)) == []
    old = dropped(Version(35))
    assert old and {(p.path, p.severity) for p in old} == {("mappings[0].resourceSlice", "warning")}
    assert ("the rendered ResourceSlices' spec.devices[].taints: dropped by an apiserver without the alpha feature "
            "gate DRADeviceTaints (Kubernetes 1.35; on by default since Kubernetes 1.36): that apiserver stores the "
            "slice without it, and dra-kwok reports the drop (a DroppedFields Warning Event); the scheduler does not "
            "see the taints: a claim without a toleration can get a tainted device") in [p.message for p in old]
    assert len({p.message for p in old}) == len(old)  # one warning per field, not one per device
    gates = {"DRADeviceTaints": True, "DRAPartitionableDevices": True, "DRAConsumableCapacity": True,
             "DRADeviceBindingConditions": True}
    assert dropped(Version(35, gates)) == []


@pytest.mark.parametrize("old, new, path, message", [
    ("counterSet: gpu-0", "counterSet: gpu-1", f"{D0}.consumesCounters[0].counterSet",
     "counter set 'gpu-1' is not in this mapping's resourceSlice.sharedCounters (defined: gpu-0)"),
    ("counters: {memory: {value: 20Gi}}", "counters: {power: {value: 5}}", f"{D0}.consumesCounters[0].counters[power]",
     "counter 'power' is not defined in counter set 'gpu-0' (defined: memory)"),
    ("        - name: gpu-0\n", "        - name: gpu.0\n", "mappings[0].resourceSlice.sharedCounters[0].name", "counter set name"),
    ("counters: {memory: {value: 40Gi}}", "counters: {memory: {value: 40GB}}",
     "mappings[0].resourceSlice.sharedCounters[0].counters[memory].value", "invalid quantity '40GB'"),
    ("effect: NoSchedule", "effect: Evict", f"{D0}.taints[0].effect", "unsupported effect 'Evict'"),
    ("key: example.com/unhealthy", "key: a/b/c", f"{D0}.taints[0].key", ""),
    ('value: "{{device}}"', 'value: "{{nope}}"', f"{D0}.taints[0].value", "nope"),
    ('value: "{{device}}"', 'value: "-x"', f"{D0}.taints[0].value", ""),
    ('value: "{{device}}"', 'value: "{{uuid}}-{{uuid}}"', f"{D0}.taints[0].value",
     "taint values are label values of at most 63 characters; with placeholders expanded this one can reach 73"),
    ("allowMultipleAllocations: true", "allowMultipleAllocations: false", f"{D0}.capacity[bw].requestPolicy",
     "a request policy needs allowMultipleAllocations: true on the device"),
    ("default: 10G", "default: 10GB", f"{D0}.capacity[bw].requestPolicy.default", "invalid quantity '10GB'"),
])
def test_the_beta_fields_rules_with_paths_into_the_config(old: str, new: str, path: str, message: str) -> None:
    assert old in ADVANCED
    found = errors(load_config(ADVANCED.replace(old, new), "beta"))
    assert path in found and message in found[path], found


def test_counter_set_names_are_unique_in_a_pool_across_mappings() -> None:
    second = ADVANCED.split("  - name: gpu\n")[1].replace("name: part", "name: other")
    cfg = load_config(ADVANCED + "  - name: gpu-b\n" + second, "beta")
    assert errors(cfg)["mappings[1].resourceSlice.sharedCounters[0].name"].startswith(
        "counter set 'gpu-0' is also defined by mappings[0].resourceSlice.sharedCounters[0]")
