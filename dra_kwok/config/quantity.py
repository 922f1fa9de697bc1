"""Kubernetes ``resource.Quantity`` parsing and canonical formatting, in pure Python.

Why this exists instead of ``kubernetes.utils.parse_quantity``: the client helper answers "what number is
this", but dra-kwok needs two more things.

1. *Exactly the apiserver's grammar*, so validation rejects what the apiserver rejects (``1TB``, ``1 Gi``)
   and accepts what it accepts (``1.G``, ``+5``, ``1E``).
2. *The canonical form the apiserver stores.*  The apiserver re-serialises every quantity (``1.5Gi`` is
   stored as ``1536Mi``, ``1000m`` as ``1``).  A publisher that sends the written form and compares it with
   the stored form would see a difference forever; rendering the canonical form makes desired == stored.

This is a port of ``k8s.io/apimachinery/pkg/api/resource`` (``ParseQuantity``, ``CanonicalizeBytes``),
including its quirks: values are rounded *up* (away from zero) to a multiple of 1n, magnitudes are capped at
2^63-1, and a string that is already canonical is kept verbatim (``1E3`` stays ``1E3``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["QuantityError", "Quantity", "parse_quantity", "canonical_quantity", "suggest_quantity"]

_DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}
_BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {v: k for k, v in _BINARY_SUFFIXES.items()}
_MAX_INT64 = (1 << 63) - 1
_NANO = Fraction(1, 10**9)
_SUFFIX_CHARS = set("eEinumkKMGTP")
_DIGITS = set("0123456789")

# Formats, as in apimachinery.
DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"


class QuantityError(ValueError):
    """The string is not a Kubernetes quantity; the message says why."""


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its exact value (after the apiserver's rounding and capping) and format."""

    value: Fraction
    format: str
    canonical: str

    def __str__(self) -> str:
        return self.canonical


def _split(text: str) -> tuple[bool, str, str, str]:
    """Port of ``parseQuantityString``: (positive, numerator, denominator, suffix)."""
    positive = True
    pos, end = 0, len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(
            f"{text!r} is not a quantity: unexpected {text[pos]!r} at position {pos + 1}"
        )
    return positive, num, denom, text[suffix_start:end]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, or QuantityError."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        if body and all(c in _DIGITS for c in body):
            exponent = int(digits)
            if -(2**31) <= exponent < 2**31:
                return 10, exponent, DECIMAL_EXPONENT
    raise QuantityError(
        f"unknown suffix {suffix!r}: use one of Ki Mi Gi Ti Pi Ei (powers of 1024), "
        "n u m k M G T P E (powers of 1000), or an exponent such as e3"
    )


def _kept_verbatim(text: str, positive: bool, num: str, denom: str, exponent: int, fmt: str) -> bool:
    """Whether apimachinery's fast path keeps the input string as the quantity's canonical form."""
    if fmt == BINARY_SI:
        if exponent < 0 or denom:
            return False
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        scale = 0
    else:
        precision = 18 - (len(num) + len(denom))
        scale = exponent
    if precision < 0:
        return False
    scale -= len(denom)
    if scale < -9:
        return False
    shifted = num + denom
    value = int(shifted)
    if value > _MAX_INT64:
        return False
    mantissa = 1 << exponent if fmt == BINARY_SI else 1
    if value * mantissa > _MAX_INT64:
        return False
    if fmt == BINARY_SI:
        return exponent % 10 == 0 and (value & 0x07) != 0
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


def _round_up_to_nano(value: Fraction) -> Fraction:
    if value == 0 or (value / _NANO).denominator == 1:
        return value
    scaled = abs(value) / _NANO
    rounded = Fraction(-(-scaled.numerator // scaled.denominator)) * _NANO  # ceil of the magnitude
    return rounded if value > 0 else -rounded


def _canonical(value: Fraction, fmt: str) -> str:
    """Port of ``Quantity.CanonicalizeBytes`` for a value already rounded to 1n and capped."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if fmt == BINARY_SI and (magnitude < 1024 or magnitude.denominator != 1):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        amount, exponent = magnitude.numerator, 0
        while amount % 1024 == 0:
            amount //= 1024
            exponent += 10
        return f"{sign}{amount}{_BINARY_BY_EXPONENT.get(exponent, '')}"
    amount = int(magnitude / _NANO)  # exact: the value is a multiple of 1n
    exponent = -9
    while amount % 10 == 0:
        amount //= 10
        exponent += 1
    while exponent % 3 != 0:
        amount *= 10
        exponent -= 1
    if fmt == DECIMAL_EXPONENT:
        suffix = f"e{exponent}" if exponent != 0 else ""
    else:
        suffix = _DECIMAL_BY_EXPONENT[exponent]
    return f"{sign}{amount}{suffix}"


@functools.lru_cache(maxsize=16384)
def _parse_cached(text: str) -> Quantity:
    return _parse(text)


def parse_quantity(text: str) -> Quantity:
    """Parse ``text`` exactly as ``resource.ParseQuantity`` does, or raise :class:`QuantityError`."""
    if not isinstance(text, str):
        raise QuantityError(f"a quantity must be a string, got {type(text).__name__}")
    return _parse_cached(text)


def _parse(text: str) -> Quantity:
    if text == "":
        raise QuantityError("a quantity must not be empty")
    if text == "0":
        return Quantity(Fraction(0), DECIMAL_SI, "0")
    positive, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    digits = Fraction(int(num + denom), 10 ** len(denom))
    if digits == 0:
        return Quantity(Fraction(0), fmt, "0")
    if base == 2:
        value = digits * (1 << exponent)
    else:
        # Exponents beyond these bounds give the same result (capped, or rounded up to 1n); clamping them
        # keeps a hostile "1e999999999" from building a gigantic integer.
        exponent_used = max(min(exponent, 40), -(len(num) + len(denom) + 40))
        value = digits * Fraction(10) ** exponent_used
    value = min(_round_up_to_nano(value), Fraction(_MAX_INT64))
    if not positive:
        value = -value
    if _kept_verbatim(text, positive, num, denom, exponent, fmt):
        return Quantity(value, fmt, text)
    return Quantity(value, fmt, _canonical(value, fmt))


def canonical_quantity(text: str) -> str:
    """The string the apiserver stores for quantity ``text`` (raises :class:`QuantityError`)."""
    return parse_quantity(text).canonical


def suggest_quantity(text: str) -> list[str]:
    """Plausible valid spellings of a wrong quantity such as ``1TB`` or ``16 GiB`` (may be empty)."""
    candidate = text.strip().replace(" ", "")
    for unit in ("iB", "ib", "B", "b"):
        if candidate.endswith(unit) and len(candidate) > len(unit):
            candidate = candidate[: -len(unit)] + ("i" if unit.startswith("i") else "")
            break
    suggestions: list[str] = []
    if candidate == text:
        return suggestions
    if candidate.endswith("i") and candidate[-2:-1].upper() in "KMGTPE":
        candidate = candidate[:-2] + candidate[-2].upper() + "i"
        options = [candidate]
    elif candidate[-1:].upper() in ("K", "M", "G", "T", "P", "E"):
        letter = candidate[-1].upper()
        decimal = candidate[:-1] + ("k" if letter == "K" else letter)
        options = [decimal, candidate[:-1] + letter + "i"]
    else:
        options = [candidate]
    for option in options:
        try:
            parse_quantity(option)
        except QuantityError:
            continue
        if option != text and option not in suggestions:
            suggestions.append(option)
    return suggestions
