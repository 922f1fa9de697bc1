"""Go duration strings (``30s``, ``1m30s``, ``500ms``, ``1.5h``), as Kubernetes, controller-runtime and Karpenter
users write them on command lines.

Why our own: Go's ``time.ParseDuration`` grammar is small and exact, and no well-kept Python package implements
it. A plain number is also accepted and read as seconds (what dra-kwok's flags took before). Negative durations are
refused: no flag of ours means anything by them.
"""

from __future__ import annotations

import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"\d+\.?\d*|\.\d+")
ACCEPTED = "a Go duration such as 30s, 1m30s, 500ms or 1h, or a plain number of seconds"


class DurationError(ValueError):
    pass


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text``: a Go duration (``1h2m3.5s``, ``250ms``) or a plain number of seconds (``30``, ``0.5``)."""
    if isinstance(text, bool):
        raise DurationError(f"{text!r} is not a duration; use {ACCEPTED}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = text.strip()
        if _NUMBER.fullmatch(s):
            value = float(s)
        elif s and _PART.sub("", s) == "" and s[0] != "-":
            value = sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))
        else:
            raise DurationError(f"{text!r} is not a valid duration; use {ACCEPTED}")
    if value < 0 or value != value or value == float("inf"):
        raise DurationError(f"{text!r} is not a valid duration; use {ACCEPTED}")
    return value


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String()``: ``30s``, ``1m30s``, ``2m0s``, ``1h0m0s``, ``500ms``, ``0s``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        for unit, scale in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
            if seconds >= scale:
                return f"{_trim(seconds / scale)}{unit}"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{int(hours)}h{int(minutes)}m{_trim(secs)}s"
    if minutes:
        return f"{int(minutes)}m{_trim(secs)}s"
    return f"{_trim(secs)}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
