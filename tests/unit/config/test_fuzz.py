"""Fuzzing the config core (hypothesis): more than 10,000 generated inputs through ``load_documents`` ->
``validate`` -> ``render`` (for the configs that validate, with two fake nodes), and not one unhandled exception.

The contract being fuzzed: whatever the bytes, the loader raises :class:`ParseError` (with a 1-based line and
column) or :class:`ConfigInvalid` (with a field path per error), ``validate`` returns problems, and ``render``
either renders or raises :class:`RenderError` (a ``ConfigInvalid``). Any other exception (``TypeError``,
``RecursionError``, ``UnicodeEncodeError``, ``MemoryError``...) fails the test, and hypothesis shrinks it to a
minimal input. Every message must also be printable as UTF-8, because the CLI and the Warning Event print it.

Inputs, in six tests (quotas in ``QUOTAS``; ``test_zz_...`` checks the total last):

* random bytes and random unicode text;
* text made of YAML syntax and hostile tokens (anchors, aliases, tags, ``\\ud800`` escapes, ``<<``, ``---``);
* mutations of the seed corpus in ``tests/corpus/fuzz-seeds/`` (bit flips, byte changes, insertions of bytes
  or tokens, deletions, duplications, splices of two seeds, swapped lines, changed indentation, a digit or a
  word replaced by a tricky value);
* structured: random JSON-like trees (mappings, lists, scalars of every type, at random depths) put in place of,
  or next to, the fields of a valid config, serialised as YAML block or flow style, JSON, or inside a ConfigMap
  (as a ``|`` block, or as the JSON manifest the controller builds); and random trees as the ConfigMap's data.

All tests are derandomized (the same cases on every run, no example database), so CI is reproducible;
``--hypothesis-show-statistics`` shows what each case led to (parse error, invalid, validated, rendered).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dra_kwok.accept import validate
from dra_kwok.config import ConfigInvalid, ParseError, errors_only, load_documents
from dra_kwok.slices.render import NodeInfo, RenderError, render

SEEDS_DIR = Path(__file__).resolve().parents[2] / "corpus" / "fuzz-seeds"
SEEDS: list[bytes] = [p.read_bytes() for p in sorted(SEEDS_DIR.glob("*.yaml"))]

NODES = [
    NodeInfo("kwok-node-0", "00000000-0000-4000-8000-000000000001",
             {"type": "kwok", "node.kubernetes.io/instance-type": "c-4x-amd64-linux", "cores": "16",
              "kwok.x-k8s.io/node": "fake"}),
    NodeInfo("n" * 63, "00000000-0000-4000-8000-000000000002",
             {"type": "gpu", "node.kubernetes.io/instance-type": "p5.48xlarge", "kubernetes.io/arch": "amd64"}),
]

QUOTAS = {  # cheap cases are many; the costly ones (a whole config parsed, validated, rendered) fewer
    "random-bytes": 3000,
    "random-text": 1000,
    "yaml-tokens": 3500,
    "seed-mutations": 1800,
    "structured": 1200,
    "configmap-data": 500,
}
COUNTS: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


def fuzz_settings(name: str) -> settings:
    return settings(max_examples=QUOTAS[name], deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _printable(text: str) -> None:
    text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate: the CLI could not print it


def exercise(data: str | bytes, kind: str) -> str:
    """The whole pure pipeline on ``data``; returns what happened. Only the documented errors may escape."""
    COUNTS[kind] += 1
    try:
        configs = load_documents(data, "fuzz.yaml")
    except ParseError as err:
        assert err.line >= 1 and err.column >= 1 and err.message, err
        _printable(str(err))
        outcome = "parse error"
    except ConfigInvalid as err:
        assert err.errors, "ConfigInvalid without errors"
        for e in err.errors:
            assert e.path and e.message, e
            assert e.line is None or e.line >= 1, e
        _printable(str(err))
        outcome = "structure invalid"
    else:
        outcome = "validated" if configs else "no config"
        for config in configs:
            problems = validate(config)
            for problem in problems:
                assert problem.path and problem.message, problem
                _printable(str(problem))
            if errors_only(problems):
                outcome = "rules invalid"
                continue
            try:
                pools = render(config, NODES)
            except RenderError as err:  # allowed by the contract; would mean validate and render disagree
                _printable(str(err))
                outcome = "render refused"
                continue
            for pool in pools:
                json.dumps(pool.slices)  # what the controller sends
            outcome = "rendered"
    OUTCOMES[outcome] += 1
    OUTCOMES[f"{kind}: {outcome}"] += 1
    event(outcome)
    return outcome


# ------------------------------------------------------------------------------------------------------------
# (a) random bytes and text


@fuzz_settings("random-bytes")
@given(st.binary(max_size=2048))
def _random_bytes(data: bytes) -> None:
    exercise(data, "random-bytes")


@fuzz_settings("random-text")
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=512))
def _random_text(text: str) -> None:
    exercise(text, "random-text")


TOKENS = [
    "{", "}", "[", "]", ":", ": ", ",", "- ", "-", "?", "? ", "&a ", "&b ", "*a", "*b", "*a ", "!", "!!str ",
    "!!int ", "!!map ", "!!seq ", "!!binary ", "!!set ", "!!omap ", "!!pairs ", "!!timestamp ", "!!float ",
    "!!python/object:os.system ", "!!python/object/apply:os.system [\"true\"]", "!!python/name:os.system ",
    "!custom ", "!<tag:example.com,2000:x> ", "%YAML 1.1\n", "%TAG ! tag:example.com,2000:\n", "---", "--- ",
    "...", "|", "|-", "|+", ">", ">2", "'", "''", '"', '\\"', "\\u", "\\ud800", "\\udfff", "\\ud83d\\ude80",
    "\\U0001F680", "\\x00", "\\0", "\\N", "\\_", "#", " # c", "\n", "\n  ", "\n    ", "\r\n", "\r", "\t", " ",
    "  ", "<<: ", "<<: *a", "=", "~", "null", "Null", "true", "yes", "off", "0x1F", "0o17", "1_000", "1e3",
    ".inf", ".nan", "-.inf", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-02-30", "12:30:45", "0", "-1",
    "99999999999999999999", "9" * 5000,
    "driver", "mappings", "name", "nodeSelectorTerms", "matchExpressions", "matchFields", "key", "operator",
    "values", "resourceSlice", "pool", "resourceSliceCount", "allNodes", "nodeSelector", "devices", "count",
    "attributes", "capacity", "string", "int", "bool", "version", "value", "taints", "generation", "nodeName",
    "kind", "ConfigMap", "data", "config.yaml", "apiVersion", "v1", "In", "NotIn", "Exists", "Gt",
    "metadata.name", "gpu.example.com", "16Gi", "1TB", "{{node}}", "{{hash:4}}", "{{uuid}}", "{{", "}}",
    "\x00", "\ufeff", "\x85", "\u2028", "\u2029", "\x7f", "\x1b", "\ud800", "é", "🚀", "\U0010ffff",
]


@fuzz_settings("yaml-tokens")
@given(st.lists(st.sampled_from(TOKENS), max_size=80).map("".join), st.booleans())
def _yaml_tokens(text: str, as_bytes: bool) -> None:
    exercise(text.encode("utf-8", "surrogatepass") if as_bytes else text, "yaml-tokens")


# ------------------------------------------------------------------------------------------------------------
# (b) mutations of the seed corpus


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4, 6]))):
        # byte-level edits mostly break the UTF-8 or the YAML; text-level ones reach validation and rendering
        op = draw(st.sampled_from(["flip", "byte", "insert", "token", "token", "delete", "delete", "duplicate",
                                   "splice", "swap-lines", "indent", "digit", "digit", "word", "word", "word"]))
        pos = draw(st.integers(0, len(data)))
        if op in ("digit", "word"):  # the next digit, or the next word, from pos on
            match = re.compile(rb"[0-9]" if op == "digit" else rb"[A-Za-z0-9.-]+").search(bytes(data), pos)
            if match:
                new = str(draw(st.integers(0, 9))) if op == "digit" else draw(st.sampled_from(INTERESTING))
                data[match.start() : match.end()] = new.encode("utf-8", "surrogatepass")
        elif op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(TOKENS)).encode("utf-8", "surrogatepass")
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 256))]
        elif op == "splice":  # the head of this seed, the tail of another
            other = draw(st.sampled_from(SEEDS))
            data[pos:] = other[draw(st.integers(0, len(other))) :]
        elif op == "swap-lines":
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
        elif op == "indent":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            shift = draw(st.integers(-4, 4))
            lines[i] = b" " * shift + lines[i] if shift > 0 else lines[i][-shift:]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@fuzz_settings("seed-mutations")
@given(mutated_seed(), st.sampled_from(["bytes", "bytes", "bytes", "text"]))
def _seed_mutations(data: bytes, form: str) -> None:
    exercise(data if form == "bytes" else data.decode("utf-8", "replace"), "seed-mutations")


# ------------------------------------------------------------------------------------------------------------
# (c) structured: random trees in a valid config's fields

FIELD_NAMES = ["driver", "mappings", "name", "nodeSelectorTerms", "matchExpressions", "matchFields", "key",
               "operator", "values", "resourceSlice", "pool", "resourceSliceCount", "allNodes", "nodeSelector",
               "devices", "count", "attributes", "capacity", "string", "int", "bool", "version", "value", "String",
               "strings", "basic", "taints", "generation", "nodeName", "sharedCounters", "requestPolicy", "kind",
               "data", "config.yaml", "apiVersion", "<<", "devcies", "Driver"]
INTERESTING = ["", " ", "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "in", "16Gi", "1.5Gi", "1TB", "0.5",
               "1e3", "-1", "+1", "1m", "{{node}}", "{{device}}-{{index}}", "{{hash:64}}", "{{hash:99}}", "{{bogus}}",
               "{{", "metadata.name", "gpu.example.com", "karpenter.sh/dra-kwok-driver", "a/b/c", "GPU", "-a", "a_b",
               "1.2.3", "v1.0.0", "01.0.0", "a" * 64, "x" * 300, "ConfigMap", "config.yaml", "kwok", "é", "🚀",
               "\x00", "\ufeff", "\\ud800", "null", "~", "*a", "&a", "!!python/object:os.system"]
# Integers stay small, except for boundaries: a valid `count` renders that many devices (validation renders
# every pool), and the cost of 100,000 devices would eat the time budget without testing anything new.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300),
    st.sampled_from([0, 1000, 1001, 100_001, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30]),
    st.floats(), st.text(max_size=12), st.sampled_from(INTERESTING), st.sampled_from(FIELD_NAMES),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8), st.integers(-2, 5), st.booleans(), st.none(),
                 st.floats(allow_nan=False))
trees = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=24,
)


def skeleton() -> dict[str, Any]:
    """A valid config that uses every field (fresh each time: the fuzzer edits it in place)."""
    return {
        "driver": "gpu.dra-kwok.x-k8s.io",
        "mappings": [
            {
                "name": "gpu",
                "nodeSelectorTerms": [{
                    "matchExpressions": [{"key": "type", "operator": "In", "values": ["kwok"]},
                                         {"key": "cores", "operator": "Gt", "values": ["8"]}],
                    "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["kwok-node-0"]}],
                }],
                "resourceSlice": {
                    "driver": "gpu.dra-kwok.x-k8s.io",
                    "pool": {"name": "gpu", "resourceSliceCount": 2},
                    "devices": [{
                        "name": "gpu", "count": 3,
                        "attributes": {"type": {"string": "t4-{{index}}"}, "cores": {"int": 2560},
                                       "fast": {"bool": True}, "fw": {"version": "1.2.3"}},
                        "capacity": {"memory": {"value": "16Gi"}},
                    }],
                },
            },
            {
                "name": "shared",
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "type", "operator": "Exists"}]}],
                "resourceSlice": {
                    "allNodes": True,
                    "pool": {"name": "shared"},
                    "devices": [{"name": "nic", "attributes": {"id": {"string": "{{uuid}}"}}}],
                },
            },
            {
                "name": "selected",
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "type", "operator": "In", "values": ["gpu"]}]}],
                "resourceSlice": {
                    "nodeSelector": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "type", "operator": "In", "values": ["gpu"]}]}]},
                    "pool": {"name": "selected"},
                    "devices": [{"name": "fpga", "count": 2}],
                },
            },
        ],
    }


def _containers(tree: Any) -> list[Any]:
    """Every dict and list in ``tree``, the root included."""
    out = [tree] if isinstance(tree, (dict, list)) else []
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else ()
    for child in children:
        out.extend(_containers(child))
    return out


def _leaves(tree: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every scalar in ``tree``."""
    out = []
    for container in _containers(tree):
        slots = container.keys() if isinstance(container, dict) else range(len(container))
        out.extend((container, k) for k in slots if not isinstance(container[k], (dict, list)))
    return out


def _similar(draw: st.DrawFn, value: Any) -> Any:
    """Another value of roughly the same type: keeps the config loadable, so that the rules get fuzzed."""
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, None, "true", 1]))
    if isinstance(value, int):
        return draw(st.one_of(st.integers(-3, 300), st.sampled_from([0, 129, 1000, 1001, 100_001, 2**63])))
    if isinstance(value, str):
        return draw(st.one_of(st.sampled_from(INTERESTING), st.text(max_size=10), st.just(value + value)))
    return draw(scalars)


@st.composite
def structured_config(draw: st.DrawFn) -> Any:
    config: Any = skeleton()
    for _ in range(draw(st.integers(1, 3))):
        spots = _containers(config)
        if not spots:  # the root was replaced by a scalar
            break
        container = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["similar", "similar", "similar", "replace", "replace", "add", "delete",
                                       "replace-root"]))
        if action == "replace-root":
            config = draw(trees)
            continue
        if action == "similar":
            leaves = _leaves(config)
            if leaves:
                parent, slot = draw(st.sampled_from(leaves))
                parent[slot] = _similar(draw, parent[slot])
            continue
        if isinstance(container, dict):
            slots = list(container)
            if action == "add" or not slots:
                container[draw(keys)] = draw(trees)
            elif action == "delete":
                del container[draw(st.sampled_from(slots))]
            else:
                container[draw(st.sampled_from(slots))] = draw(trees)
        else:
            if action == "add" or not container:
                container.insert(draw(st.integers(0, len(container))), draw(trees))
            elif action == "delete":
                del container[draw(st.integers(0, len(container) - 1))]
            else:
                container[draw(st.integers(0, len(container) - 1))] = draw(trees)
    return config


def _configmap_yaml(text: str) -> str:
    block = "".join(f"    {line}\n" if line else "\n" for line in text.splitlines())
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dra-kwok-configmap\n  namespace: karpenter\n"
            "data:\n  config.yaml: |\n" + block)


def serialise(tree: Any, form: str) -> str:
    if form == "json":
        return json.dumps(tree)
    text = yaml.safe_dump(tree, default_flow_style={"yaml-block": False, "yaml-flow": True}.get(form, None),
                          allow_unicode=True, sort_keys=False)
    if form == "configmap-block":
        return _configmap_yaml(text)
    if form == "configmap-json":  # exactly what ConfigMapController.apply passes to the loader
        return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": {"config.yaml": text}})
    return text


@fuzz_settings("structured")
@given(structured_config(),
       st.sampled_from(["yaml-block", "yaml-flow", "yaml-auto", "json", "configmap-block", "configmap-json"]))
def _structured(tree: Any, form: str) -> None:
    exercise(serialise(tree, form), "structured")


@fuzz_settings("configmap-data")
@given(st.one_of(trees, st.dictionaries(st.one_of(st.sampled_from(["config.yaml", "other.yaml", "x.yml", "a.txt"]),
                                                   keys), trees, max_size=3)),
       st.sampled_from(["yaml", "json"]))
def _configmap_data(data: Any, form: str) -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dra-kwok-configmap"}, "data": data}
    text = json.dumps(manifest) if form == "json" else yaml.safe_dump(manifest, allow_unicode=True)
    exercise(text, "configmap-data")


# ------------------------------------------------------------------------------------------------------------
# The tests: each runs its quota and checks it ran; the last one checks the total.


def _run(name: str, fuzz: Any) -> None:
    before = COUNTS[name]
    fuzz()
    ran = COUNTS[name] - before
    print(f"{name}: {ran} cases")
    assert ran >= QUOTAS[name], f"{name}: only {ran} of {QUOTAS[name]} cases ran"


def test_random_bytes_never_raise_anything_but_parse_errors() -> None:
    _run("random-bytes", _random_bytes)


def test_random_unicode_text_never_raises_unhandled_errors() -> None:
    _run("random-text", _random_text)


def test_yaml_syntax_and_hostile_tokens_never_raise_unhandled_errors() -> None:
    _run("yaml-tokens", _yaml_tokens)


def test_mutated_seed_configs_never_raise_unhandled_errors() -> None:
    _run("seed-mutations", _seed_mutations)


def test_random_trees_in_a_valid_configs_fields_never_raise_unhandled_errors() -> None:
    _run("structured", _structured)


def test_random_configmap_data_never_raises_unhandled_errors() -> None:
    _run("configmap-data", _configmap_data)


def test_zz_at_least_10000_cases_ran_with_every_kind_of_outcome() -> None:
    """Runs last (pytest keeps file order): the total over the tests above, when they all ran."""
    assert sum(QUOTAS.values()) >= 10_000
    print(f"fuzz cases: {sum(COUNTS.values())} {dict(COUNTS)}; outcomes: {dict(OUTCOMES)}")
    if set(COUNTS) == set(QUOTAS):  # the whole file ran (not a -k selection)
        assert sum(COUNTS.values()) >= 10_000
        # the generators reach every stage: refused unread, refused by structure, by rules, and rendered
        for outcome in ("parse error", "structure invalid", "rules invalid", "rendered"):
            assert OUTCOMES[outcome] >= 50, (outcome, OUTCOMES)
