"""Kubernetes ``resource.Quantity`` parsing and canonical formatting, in pure Python.

Why this exists instead of ``kubernetes.utils.parse_quantity``: the client helper answers "what number is
this", but dra-kwok needs two more things.

1. *Exactly the apiserver's grammar*, so validation rejects what the apiserver rejects (``1TB``, ``1 Gi``)
   and accepts what it accepts (``1.G``, ``+5``, ``1E``).
2. *The canonical form the apiserver stores.*  The apiserver re-serialises every quantity (``1.5Gi`` is
   stored as ``1536Mi``, ``1000m`` as ``1``).  A publisher that sends the written form and compares it with
   the stored form would see a difference forever; rendering the canonical form makes desired == stored.

This is a port of ``k8s.io/apimachinery/pkg/api/resource`` (``ParseQuantity``, ``CanonicalizeBytes``),
including its quirks, each checked against a real kube-apiserver (tests/integration/test_quantity_stored.py):
values are rounded *up* (away from zero) to a multiple of 1n; only BinarySI magnitudes are capped at 2^63-1
(``8Ei`` is stored as ``9223372036854775807``) while decimal ones are kept exactly (``1e19`` as ``10e18``,
``10000000000000000000`` as ``10E``, ``1e1000`` as ``10e999``); a string that is already canonical is kept
verbatim (``1E3`` stays ``1E3``); a DecimalSI exponent above 18 has no suffix and is dropped (``1000E`` is stored
as ``1``: see :attr:`Quantity.stored_exactly`); an ``e`` exponent is read as int64 and truncated to int32.
Values are kept as ``unscaled * 10**exponent`` so that ``1e999999999`` costs nothing.
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

    unscaled: int  # the value is unscaled * 10**exponent, with no factor of ten left in unscaled
    exponent: int
    format: str
    canonical: str

    @property
    def value(self) -> Fraction:
        """The exact value (beware: an integer of a billion digits for ``1e999999999``)."""
        return Fraction(self.unscaled) * Fraction(10) ** self.exponent

    @property
    def key(self) -> tuple[int, int]:
        """Equal for equal values, cheap for any exponent: what comparisons by value use."""
        return self.unscaled, self.exponent

    @property
    def stored_exactly(self) -> bool:
        """False where the apiserver's own canonical form changes the value: a DecimalSI exponent above 18 has no
        suffix, so ``1000E`` (10^21) is stored as ``1``. Worth a warning to whoever wrote it."""
        return parse_quantity(self.canonical).key == self.key

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
            if -(2**63) <= exponent < 2**63:  # strconv.ParseInt(.., 64), then int32(): wraps as Go does
                return 10, (exponent + 2**31) % 2**32 - 2**31, DECIMAL_EXPONENT
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


def _strip_tens(unscaled: int, exponent: int) -> tuple[int, int]:
    """(unscaled, exponent) with every factor of ten moved into the exponent (0 stays (0, 0))."""
    if unscaled == 0:
        return 0, 0
    digits = str(abs(unscaled))
    zeros = len(digits) - len(digits.rstrip("0"))
    if zeros:
        unscaled //= 10**zeros
        exponent += zeros
    return unscaled, exponent


def _round_up_to_nano(magnitude: int, exponent: int) -> tuple[int, int]:
    """A positive ``magnitude * 10**exponent`` rounded up to a multiple of 1n (``inf.RoundUp`` at scale 9)."""
    if exponent >= -9:
        return magnitude, exponent
    shift = -9 - exponent
    if shift > len(str(magnitude)):  # below 1n: cheap even for 1e-999999999
        return 1, -9
    return -(-magnitude // 10**shift), -9


def _canonical(unscaled: int, exponent: int, fmt: str) -> str:
    """Port of ``Quantity.CanonicalizeBytes`` for ``unscaled * 10**exponent`` (already rounded to 1n and capped).

    Decimal forms move every factor of ten into the exponent, then lower the exponent to a multiple of three:
    ``1e19`` is ``10e18`` (DecimalExponent) and ``10000000000000000000`` is ``10E`` (DecimalSI); a DecimalSI
    exponent with no suffix (above 18) is written with no suffix at all, as apimachinery does. BinarySI is kept
    only for whole values of at least 1024 in magnitude, as a multiple of the largest power of 1024."""
    if unscaled == 0:
        return "0"
    if fmt == BINARY_SI and (exponent < 0 or abs(unscaled) * 10**exponent < 1024):
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        whole = unscaled * 10**exponent  # at most 2^63-1: BinarySI values are capped
        sign, amount, power = ("-" if whole < 0 else ""), abs(whole), 0
        while amount % 1024 == 0:
            amount //= 1024
            power += 10
        return f"{sign}{amount}{_BINARY_BY_EXPONENT.get(power, '')}"
    while exponent % 3 != 0:
        unscaled *= 10
        exponent -= 1
    if fmt == DECIMAL_EXPONENT:
        suffix = f"e{exponent}" if exponent != 0 else ""
    else:
        suffix = _DECIMAL_BY_EXPONENT.get(exponent, "")
    return f"{unscaled}{suffix}"


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
        return Quantity(0, 0, DECIMAL_SI, "0")
    positive, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    digits = int(num + denom)
    if digits == 0:
        return Quantity(0, 0, fmt, "0")
    if base == 2:
        magnitude, scale = digits * (1 << exponent), -len(denom)
    else:
        magnitude, scale = digits, exponent - len(denom)
    magnitude, scale = _strip_tens(*_round_up_to_nano(*_strip_tens(magnitude, scale)))
    if fmt == BINARY_SI and Fraction(magnitude) * Fraction(10) ** scale > _MAX_INT64:
        magnitude, scale = _MAX_INT64, 0  # the cap applies to BinarySI only (apimachinery's inf.Dec path)
    unscaled = magnitude if positive else -magnitude
    if _kept_verbatim(text, positive, num, denom, exponent, fmt):
        return Quantity(unscaled, scale, fmt, text)
    return Quantity(unscaled, scale, fmt, _canonical(unscaled, scale, fmt))


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
