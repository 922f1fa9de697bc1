"""Quantity parsing and the apiserver's canonical form (values from apimachinery's own quantity tests)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from dra_kwok.config.quantity import (
    QuantityError,
    canonical_quantity,
    parse_quantity,
    suggest_quantity,
)

# written -> what kube-apiserver 1.34 stores (tests/integration/test_quantity_stored.py checks every row against it)
STORED: list[tuple[str, str]] = [
    ("0", "0"), ("00", "0"), ("0Gi", "0"), ("-0", "0"), ("0.0", "0"),
    ("1", "1"), ("1000", "1k"), ("1000m", "1"), ("1500m", "1500m"), ("1.5", "1500m"), (".5", "500m"), ("0.5", "500m"),
    ("0.001", "1m"), ("100m", "100m"), ("1k", "1k"), ("10k", "10k"), ("1M", "1M"), ("100M", "100M"), ("1T", "1T"),
    ("1E", "1E"), ("16Gi", "16Gi"), ("1Gi", "1Gi"), ("1.5Gi", "1536Mi"), ("0.5Gi", "512Mi"), ("1024Mi", "1Gi"),
    ("1536Mi", "1536Mi"), ("8Ki", "8Ki"), ("1Ki", "1Ki"), ("0.5Ki", "512"), ("1023", "1023"), ("-1.5Gi", "-1536Mi"),
    ("1e3", "1e3"), ("1E3", "1E3"), ("12e6", "12e6"), ("1.5e3", "1500"), ("1e-12", "1e-9"), ("0.1n", "1n"),
    ("+1", "+1"), ("-1", "-1"), ("1.G", "1.G"), ("1.0000000001", "1000000001n"),
    # beyond int64: only BinarySI is capped at 2^63-1; decimal values are kept exactly, in canonical form
    ("9223372036854775807", "9223372036854775807"), ("99999999999999999999", "99999999999999999999"),
    ("1e19", "10e18"), ("-1e19", "-10e18"), ("10000000000000000000", "10E"),
    ("123456789012345678901234567890", "123456789012345678901234567890"), ("1e1000", "10e999"),
    ("8Ei", "9223372036854775807"), ("-8Ei", "-9223372036854775807"),
    ("12345678901234567890Ki", "9223372036854775807"),
    # apimachinery quirks: a DecimalSI exponent above 18 has no suffix, and is written without one; an exponent is
    # read as int64 then truncated to int32
    ("1000E", "1"), ("1000000000000000000000", "1"), ("1e4294967296", "1e4294967296"),
]


@pytest.mark.parametrize("written,stored", STORED)
def test_canonical_form(written: str, stored: str) -> None:
    assert canonical_quantity(written) == stored


def test_values() -> None:
    assert parse_quantity("1.5Gi").value == Fraction(3 * 2**29)
    assert parse_quantity("100m").value == Fraction(1, 10)
    assert parse_quantity("1T").value == 10**12 and parse_quantity("1Ti").value == 2**40


@pytest.mark.parametrize("text", ["", "1TB", "1 Gi", " 1", "1Gi ", "abc", "1e", "1.5.5", "1Gib", "0x10", "1_000", "--1",
                                  "1e1e1", "ï"])
def test_invalid(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_not_a_string() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("text,suggestions", [("1TB", ["1T", "1Ti"]), ("16GiB", ["16Gi"]), ("1kb", ["1k", "1Ki"]),
                                              ("1 Gi", ["1Gi"]), ("abc", []), ("1e", [])])
def test_suggestions(text: str, suggestions: list[str]) -> None:
    assert suggest_quantity(text) == suggestions


def test_values_the_apiserver_changes_are_known() -> None:
    assert not parse_quantity("1000E").stored_exactly and not parse_quantity("1000000000000000000000").stored_exactly
    assert all(parse_quantity(w).stored_exactly for w, _ in STORED if w not in ("1000E", "1000000000000000000000"))


def test_huge_exponents_are_cheap() -> None:
    # (kube-apiserver itself does not answer a create with 1e999999999 or 1e2147483648 (read as 1e-2147483648)
    # within 30 s, so they are not in STORED)
    assert canonical_quantity("1e2147483648") == "1e-9"
    assert canonical_quantity("1e999999999") == "1e999999999" and canonical_quantity("1e999999998") == "100e999999996"
    assert parse_quantity("1e999999999").key == (1, 999999999)
    assert canonical_quantity("1e-999999999") == "1e-9"
    assert parse_quantity("1e1000").key == parse_quantity("10e999").key == parse_quantity("0.1e1001").key
