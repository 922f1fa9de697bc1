"""The package's layers, enforced (kopf-style contracts, without a linter to install): lower layers never import
higher ones, and no module imports itself back through others. Imports inside functions count too.

    cli  >  app  >  controllers  >  accept  >  slices  >  config
                \\>  runtime (knows nothing of DRA)      settings, config > runtime.duration (a leaf)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dra_kwok"

# module prefix -> the dra_kwok modules it may import (by prefix); dra_kwok.__version__ is the package's own
ALLOWED = {
    "dra_kwok.config": ("dra_kwok.config", "dra_kwok.runtime.duration"),
    "dra_kwok.runtime": ("dra_kwok.runtime", "dra_kwok.__version__"),
    "dra_kwok.slices": ("dra_kwok.slices", "dra_kwok.config"),
    "dra_kwok.accept": ("dra_kwok.config", "dra_kwok.slices"),
    "dra_kwok.settings": ("dra_kwok.runtime.duration",),
    "dra_kwok.controllers": ("dra_kwok.controllers", "dra_kwok.accept", "dra_kwok.slices", "dra_kwok.config",
                             "dra_kwok.runtime"),
    "dra_kwok.app": ("dra_kwok.controllers", "dra_kwok.runtime", "dra_kwok.settings", "dra_kwok.slices",
                     "dra_kwok.config", "dra_kwok.accept"),
    "dra_kwok.cli": ("dra_kwok.__version__", "dra_kwok.app", "dra_kwok.controllers", "dra_kwok.settings", "dra_kwok.accept",
                     "dra_kwok.slices", "dra_kwok.config", "dra_kwok.runtime"),
    "dra_kwok.__main__": ("dra_kwok.cli",),
    "dra_kwok.testing": ("dra_kwok.testing", "dra_kwok.slices", "dra_kwok.config", "dra_kwok.runtime"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m == "dra_kwok" or m.startswith("dra_kwok.")}


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(module: str, imports: set[str]) -> list[str]:
    """The imports of ``module`` that are above its layer."""
    rule = next((k for k in sorted(ALLOWED, key=len, reverse=True) if _covers(k, module)), None)
    assert rule is not None, f"{module} belongs to no layer: add it to ALLOWED"
    # `from a.b import c` imports a.b and names a.b.c: fine when either is allowed
    return sorted(i for i in imports - {"dra_kwok"}
                  if not any(_covers(a, i) or _covers(a, i.rsplit(".", 1)[0]) for a in ALLOWED[rule]))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "dra_kwok"))
def test_module_imports_only_lower_layers(module: str) -> None:
    assert violations(module, _imports(MODULES[module])) == []


def test_no_import_cycles() -> None:
    graph = {m: {i if i in MODULES else i.rsplit(".", 1)[0] for i in _imports(p)} & set(MODULES) - {m, "dra_kwok"}
             for m, p in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_rules_can_fail() -> None:
    """The checker itself catches what the layers forbid."""
    assert violations("dra_kwok.config.validation", {"dra_kwok.slices.render"}) == ["dra_kwok.slices.render"]
    assert violations("dra_kwok.runtime.manager", {"dra_kwok.controllers.store", "dra_kwok.controllers.store.Store"})
    assert violations("dra_kwok.slices.render", {"dra_kwok.app"}) == ["dra_kwok.app"]
    assert violations("dra_kwok.runtime.rest", {"dra_kwok", "dra_kwok.__version__"}) == []
