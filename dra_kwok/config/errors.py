"""Error types shared by the loader, the validator and the renderer.

They live in their own module so that ``loader``, ``validation`` and ``render`` can all raise and return them
without importing each other.  Every problem is reported with a field path (``mappings[1].resourceSlice.
devices[3].name``) because the people reading them are editing a YAML file, not reading a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

__all__ = ["Severity", "FieldError", "ParseError", "ConfigInvalid", "Report", "errors_only"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class FieldError:
    """One problem at one field path.

    ``severity="warning"`` marks something legal but probably unintended (a mapping that can never match);
    warnings never make a config invalid.  ``line``/``column`` (1-based) are filled in by the loader when the
    problem was found in YAML text; they take no part in equality.
    """

    path: str
    message: str
    severity: Severity = "error"
    line: int | None = field(default=None, compare=False)
    column: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def errors_only(problems: Iterable[FieldError]) -> list[FieldError]:
    """The problems that make a config invalid (drops warnings)."""
    return [p for p in problems if p.severity == "error"]


class Report:
    """Collects problems in the order found (a validator's working list)."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.items.append(FieldError(path, message, "error"))

    def warning(self, path: str, message: str) -> None:
        self.items.append(FieldError(path, message, "warning"))

    def extend(self, path: str, messages: Iterable[str]) -> None:
        for message in messages:
            self.error(path, message)


class ParseError(Exception):
    """The input could not be read as YAML at all (or was refused before reading: too big, too deep...).

    ``line`` and ``column`` are 1-based positions in ``source``.
    """

    def __init__(self, source: str, line: int, column: int, message: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{source}:{line}:{column}: {message}")


class ConfigInvalid(Exception):
    """The YAML was read, but is not a dra-kwok config; ``errors`` lists every problem found, with paths."""

    def __init__(self, errors: Iterable[FieldError], source: str = "<input>") -> None:
        self.errors: list[FieldError] = list(errors)
        self.source = source
        lines = []
        for e in self.errors:
            where = f"{source}:{e.line}:{e.column}: " if e.line is not None else f"{source}: "
            lines.append(f"{where}{e}")
        count = len(errors_only(self.errors))
        header = f"{source}: invalid config ({count} error{'s' if count != 1 else ''})"
        super().__init__("\n".join([header, *lines]))
