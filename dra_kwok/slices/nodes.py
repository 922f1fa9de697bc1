"""Which nodes a mapping applies to, and what the renderer keeps of a Node.

Why apart from rendering: the controller matches nodes against mappings far more often than it renders (every node
event, every config change), and the semantics are upstream's NodeSelector
(k8s.io/component-helpers/scheduling/corev1/nodeaffinity), which deserve their own tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field

from dra_kwok.config.formats import is_label_value, label_key_errors, parse_int64
from dra_kwok.config.types import Mapping, NodeSelectorRequirement, NodeSelectorTerm

__all__ = ["FrozenLabels", "NodeInfo", "node_matches", "terms_match"]


class FrozenLabels(AbcMapping[str, str]):
    """An immutable, hashable ``str → str`` mapping (node labels)."""

    __slots__ = ("_items", "_dict")

    def __init__(self, items: AbcMapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, AbcMapping) else items
        self._dict = {str(k): str(v) for k, v in pairs}
        self._items = tuple(sorted(self._dict.items()))

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"FrozenLabels({self._dict!r})"


@dataclass(frozen=True)
class NodeInfo:
    """What the renderer needs of a Node.  ``labels`` may be given as any mapping; it is frozen on creation."""

    name: str
    uid: str
    labels: AbcMapping[str, str] = field(default_factory=FrozenLabels)

    def __post_init__(self) -> None:
        if not isinstance(self.labels, FrozenLabels):
            object.__setattr__(self, "labels", FrozenLabels(self.labels))


def _expression_matches(requirement: NodeSelectorRequirement, labels: AbcMapping[str, str]) -> bool:
    key, operator, values = requirement.key, requirement.operator, requirement.values
    if label_key_errors(key) or not all(is_label_value(v) for v in values):
        return False  # upstream: an invalid requirement makes its term match nothing
    if operator in ("In", "NotIn"):
        if not values:
            return False
        present = key in labels and labels[key] in values
        return present if operator == "In" else not present
    if operator in ("Exists", "DoesNotExist"):
        if values:
            return False
        return (key in labels) == (operator == "Exists")
    if operator in ("Gt", "Lt"):
        if len(values) != 1 or key not in labels:
            return False
        wanted, actual = parse_int64(values[0]), parse_int64(labels[key])
        if wanted is None or actual is None:
            return False
        return actual > wanted if operator == "Gt" else actual < wanted
    return False


def _field_matches(requirement: NodeSelectorRequirement, node: NodeInfo) -> bool:
    if requirement.key != "metadata.name" or len(requirement.values) != 1:
        return False
    if requirement.operator == "In":
        return node.name == requirement.values[0]
    if requirement.operator == "NotIn":
        return node.name != requirement.values[0]
    return False


def _term_matches(term: NodeSelectorTerm, node: NodeInfo) -> bool:
    if not term.match_expressions and not term.match_fields:
        return False  # an empty term matches no node
    return all(_expression_matches(r, node.labels) for r in term.match_expressions) and all(
        _field_matches(r, node) for r in term.match_fields
    )


def terms_match(terms: Iterable[NodeSelectorTerm], node: NodeInfo) -> bool:
    """True if any term matches (terms are ORed; requirements within a term are ANDed)."""
    return any(_term_matches(term, node) for term in terms)


def node_matches(mapping: Mapping, node: NodeInfo) -> bool:
    """Whether ``node`` matches ``mapping.node_selector_terms`` (no terms: never)."""
    return terms_match(mapping.node_selector_terms, node)


