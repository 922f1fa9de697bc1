"""The two YAML readers reach the same verdict: libyaml's scanner (the fast path) and PyYAML's pure-Python one.

The loader reads with libyaml under PyYAML's Python composer and re-reads with PyYAML alone whatever libyaml
refuses, so every input must load to equal configs, or fail with the same message at the same line and column,
whichever reader is used. Checked on the examples, every corpus file and the generated hostile cases (those that
fit in a unit test), plus inputs where the two scanners could differ (surrogate pairs, tabs, control characters).
One known difference is kept on purpose (_LENIENT): libyaml reads a tab after a value as a separator.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import pytest

from dra_kwok.accept import Rejected, accept
from dra_kwok.config import ConfigInvalid, ParseError, loader

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "corpus" / "hostile"))
from cases import CASES, VALID  # noqa: E402

_FILES = sorted([*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/corpus/*/*.yaml")], key=str)
_GENERATED = [c for c in CASES if c.generate is not None and c.special is None and "50-mb" not in c.name]

_SPECIAL = {
    "surrogate-pair-escape": VALID.replace("MODEL", '"t4 \\ud83d\\ude00"'),  # libyaml refuses, PyYAML joins
    "lone-surrogate": VALID.replace("MODEL", '"t4 \\udc80"'),
    "json-manifest-emoji": json.dumps({"kind": "ConfigMap", "data": {"config.yaml": VALID.replace("MODEL", "t4 😀")}}),
    "tab-indent": VALID.replace("    resourceSlice", "\tresourceSlice"),
    "control-character": VALID.replace("MODEL", "t4\x07"),
    "nel-and-bom-inside": VALID.replace("MODEL", '"t4\u0085x\ufeffy"'),
    "unclosed-flow": VALID.replace("{string: MODEL}", "{string: MODEL"),
    "plain-colon-in-flow": VALID.replace("{string: MODEL}", "{string: a:b}"),
}
# Where libyaml is more lenient than PyYAML's scanner (it follows YAML 1.2 on tabs as separators): it reads the
# text as if the tab were a space, where PyYAML refused "a character '\t' that cannot start any token".
_LENIENT = {
    "tab-after-value": (VALID.replace("count: 2", "count: 2\t"), VALID.replace("count: 2", "count: 2 ")),
    "tab-in-flow": (VALID.replace("{string: MODEL}", "{string:\tMODEL}"), VALID),
}


def _outcome(text: str | bytes, name: str) -> object:
    try:
        return [(config, line) for config, line in loader._load(text, name)]
    except ParseError as err:
        return ("ParseError", err.line, err.column, err.message)
    except ConfigInvalid as err:
        return ("ConfigInvalid", [(str(e), e.line, e.column) for e in err.errors])


def _inputs(tmp_path: Path) -> list[tuple[str, str | bytes]]:
    inputs: list[tuple[str, str | bytes]] = [(str(p.relative_to(ROOT)), p.read_bytes()) for p in _FILES]
    inputs += [(c.name, c.generate(tmp_path)) for c in _GENERATED if c.generate is not None]
    inputs += list(_SPECIAL.items())
    return inputs


@pytest.mark.skipif(loader._StrictCLoader is None, reason="PyYAML without libyaml: only one reader exists")
def test_libyaml_and_pure_python_readers_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = _inputs(tmp_path)
    fast = [_outcome(text, name) for name, text in inputs]
    monkeypatch.setattr(loader, "_StrictCLoader", None)  # the pure-Python reader alone, as before libyaml
    slow = [_outcome(text, name) for name, text in inputs]
    for (name, _), a, b in zip(inputs, fast, slow, strict=True):
        assert a == b, name
    outcomes = {type(o).__name__ if isinstance(o, list) else o[0] for o in fast}  # type: ignore[index]
    assert outcomes == {"list", "ParseError", "ConfigInvalid"}  # each kind of verdict was compared


@pytest.mark.skipif(loader._StrictCLoader is None, reason="PyYAML without libyaml: only one reader exists")
def test_where_libyaml_is_more_lenient_it_reads_what_was_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, (text, meant) in _LENIENT.items():
        fast = _outcome(text, name)
        assert fast == _outcome(meant, name) and isinstance(fast, list), name
        monkeypatch.setattr(loader, "_StrictCLoader", None)
        assert _outcome(text, name)[0] == "ParseError", name  # type: ignore[index]
        monkeypatch.undo()


def test_surrogate_pairs_from_a_json_manifest_still_load() -> None:
    config, _ = accept(_SPECIAL["json-manifest-emoji"], "cm")
    assert config.mappings[0].resource_slice.devices[0].attributes["model"].string == "t4 😀"


def test_gc_resumes_after_a_verdict_and_stays_off_if_it_was_off() -> None:
    assert gc.isenabled()
    with pytest.raises(Rejected):
        accept("driver: [", "x")
    accept(VALID.replace("MODEL", "t4"), "x")
    assert gc.isenabled()
    with loader.gc_paused():
        with loader.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with loader.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_scalar_tagged_as_a_map_or_seq_is_refused_by_both_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in ("!!map ---", "a: !!map x\n", "a: !!seq x\n"):
        fast = _outcome(text, "t")
        monkeypatch.setattr(loader, "_StrictCLoader", None)
        assert _outcome(text, "t") == fast and fast[0] == "ParseError", text  # type: ignore[index]
        monkeypatch.undo()
