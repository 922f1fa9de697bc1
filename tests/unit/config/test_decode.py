"""The loader's fast decoder (types.decode) builds exactly what dataclasses-json's ``Config.from_dict`` builds.

The loader decodes checked data with :func:`dra_kwok.config.types.decode` because ``from_dict`` re-evaluates type
hints per object (30,000 devices: ~9 s). These tests load every example and every readable corpus file twice, once
with the fast path and once with ``Config.from_dict`` on the same checked data, and compare by value, and
check that ``to_dict`` / ``from_dict`` still round-trip what the loader builds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dra_kwok.config import Config, ConfigInvalid, ParseError
from dra_kwok.config.loader import _load
from dra_kwok.config.types import AttributeValue, DeviceTemplate, decode

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "corpus" / "hostile"))
from cases import CASES, _amplified  # noqa: E402

# Generated cases that are small enough to read twice; the alias amplification has its own, smaller test below
# (dataclasses-json's from_dict takes ~10 s on the real one, which is the point of the fast path).
_SMALL_GENERATED = [c for c in CASES if c.generate is not None and c.special is None and "50-mb" not in c.name
                    and "10-mib" not in c.name and "flood" not in c.name and "amplification" not in c.name]
_FILES = sorted(
    [*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/corpus/*/*.yaml")], key=str
)


def _texts(tmp_path: Path) -> list[tuple[str, bytes]]:
    texts = [(str(p.relative_to(ROOT)), p.read_bytes()) for p in _FILES]
    texts += [(c.name, c.generate(tmp_path)) for c in _SMALL_GENERATED if c.generate is not None]
    return texts


def _both(text: bytes, name: str) -> tuple[list[Config], list[Config]] | None:
    try:
        fast = [config for config, _ in _load(text, name)]
    except (ParseError, ConfigInvalid):
        return None
    slow = [config for config, _ in _load(text, name, build=Config.from_dict)]  # type: ignore[attr-defined]
    return fast, slow


def test_fast_path_equals_from_dict_on_examples_and_corpus(tmp_path: Path) -> None:
    loaded = 0
    for name, text in _texts(tmp_path):
        both = _both(text, name)
        if both is None:
            continue
        fast, slow = both
        assert fast == slow, name
        assert [repr(c) for c in fast] == [repr(c) for c in slow], name  # same types too (tuple vs list, int vs bool)
        loaded += len(fast)
    assert loaded >= 40  # the examples, the fuzz seeds and the rule-invalid corpus files all load


def test_alias_amplification_decodes_equal() -> None:
    # The corpus case's shape (one mapping aliased 99 times) with 30 devices instead of 300.
    both = _both(_amplified(30), "amplified.yaml")
    assert both is not None
    fast, slow = both
    assert fast == slow
    assert sum(len(m.resource_slice.devices) for m in fast[0].mappings) == 3_000
    assert len({id(m) for m in fast[0].mappings}) == 100  # aliases become separate, equal values


def test_round_trip_through_dataclasses_json(tmp_path: Path) -> None:
    for name, text in _texts(tmp_path):
        both = _both(text, name)
        if both is None:
            continue
        for config in both[0]:
            plain = config.to_dict()  # type: ignore[attr-defined]
            assert Config.from_dict(plain) == config, name  # type: ignore[attr-defined]
            assert decode(Config, plain) == config, name


def test_decode_fills_defaults_and_renamed_fields() -> None:
    config = decode(Config, {
        "driver": "d.example.com",
        "mappings": [{"name": "m", "nodeSelectorTerms": [{}], "resourceSlice": {
            "pool": {"name": "p"},
            "devices": [{"name": "x", "attributes": {"n": {"int": 3}, "b": {"bool": False}}}],
        }}],
    })
    device = config.mappings[0].resource_slice.devices[0]
    assert device == DeviceTemplate("x", None, {"n": AttributeValue(int_=3), "b": AttributeValue(bool_=False)}, {})
    assert config.mappings[0].node_selector_terms[0].match_expressions == ()
    assert config.mappings[0].resource_slice.pool.resource_slice_count is None
    assert config == Config.from_dict(config.to_dict())  # type: ignore[attr-defined]


def test_decode_keeps_explicit_null_as_from_dict_does() -> None:
    plain = {"name": "x", "count": None}
    assert decode(DeviceTemplate, plain) == DeviceTemplate.from_dict(plain)  # type: ignore[attr-defined]
