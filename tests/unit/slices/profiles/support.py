"""Golden files and the by-value comparison the profile tests share.

A golden file (golden/<name>.yaml) holds ``profile``, ``params``, ``node``, ``k8sMinor`` and the expected
``slices``, written from shared/reference/real-drivers.md (see each file's header). :func:`mismatches` compares
by value: same keys, same list lengths and order, same types (``1`` is not ``True``), and a ``<re:REGEX>``
string matches a value the reference marks illustrative by ``re.fullmatch`` on its string form.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from dra_kwok.slices.profiles import PROFILES

GOLDEN = Path(__file__).parent / "golden"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))


@functools.cache
def _load(name: str) -> str:
    return (GOLDEN / f"{name}.yaml").read_text()


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a golden file (libyaml's loader: the generated files are ~300 KB)."""
    return yaml.load(_load(name), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def render(doc: dict[str, Any], node: str | None = None, k8s_minor: int | None = None) -> list[dict[str, Any]]:
    profile = PROFILES[doc["profile"]]
    return profile.render(doc["params"], node or doc["node"], "uid-1",
                          doc["k8sMinor"] if k8s_minor is None else k8s_minor).slices


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every difference between ``expected`` (golden) and ``actual`` (rendered), by path."""
    if isinstance(expected, str) and expected.startswith("<re:") and expected.endswith(">"):
        ok = isinstance(actual, (str, int)) and not isinstance(actual, bool)
        if ok and re.fullmatch(expected[4:-1], str(actual)):
            return []
        return [f"{path}: {actual!r} does not match {expected[4:-1]!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        out = [f"{path}.{k}: missing" for k in expected if k not in actual]
        out += [f"{path}.{k}: unexpected (value {actual[k]!r})" for k in actual if k not in expected]
        for key in expected:
            if key in actual:
                out += mismatches(expected[key], actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        if len(expected) != len(actual):
            names = [getattr(a, "get", lambda _k: None)("name") for a in actual]
            return [f"{path}: expected {len(expected)} items, got {len(actual)} ({names[:6]}...)"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            label = e.get("name", i) if isinstance(e, dict) else i
            out += mismatches(e, a, f"{path}[{label}]")
        return out
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def check_golden(name: str) -> None:
    doc = load(name)
    problems = mismatches(doc["slices"], render(doc), "slices")
    assert problems == [], f"{name}: {len(problems)} differences from the reference:\n" + "\n".join(problems[:30])


def devices(slices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for s in slices for d in s.get("devices") or ()]
