"""The diff compares capacities by exact value, beyond int64 too: what we send and what the apiserver stores (the
table in tests/unit/config/test_quantity.py, checked against it) compare equal, so there is no rewrite loop; and
values that differ only past the 28th digit or past int64 are a change."""

from __future__ import annotations

import pytest

from dra_kwok.config.quantity import canonical_quantity
from dra_kwok.slices.plan import devices_digest, equivalent
from tests.unit.config.test_quantity import STORED
from tests.unit.slices.test_plan import body, stored


@pytest.mark.parametrize("written,kept", STORED)
def test_what_we_send_equals_what_the_apiserver_stores(written, kept):
    desired = body("s0", ["a"], capacity=canonical_quantity(written))
    assert equivalent(desired, stored(body("s0", ["a"], capacity=kept)))


@pytest.mark.parametrize("a,b", [("123456789012345678901234567890", "123456789012345678901234567891"),
                                 ("10E", "9223372036854775807"), ("10e18", "9223372036854775807"),
                                 ("1e1000", "1e999"), ("1n", "2n")])
def test_different_values_are_a_change(a, b):
    assert not equivalent(body("s0", ["a"], capacity=a), stored(body("s0", ["a"], capacity=b)))
    assert devices_digest(body("s0", ["a"], capacity=a)["spec"]["devices"]) != \
        devices_digest(body("s0", ["a"], capacity=b)["spec"]["devices"])


@pytest.mark.parametrize("a,b", [("1e19", "10e18"), ("10E", "10e18"), ("1Gi", "1024Mi"), ("1e3", "1E3"), ("1k", "1000")])
def test_equal_values_in_other_spellings_are_no_change(a, b):
    assert equivalent(body("s0", ["a"], capacity=a), stored(body("s0", ["a"], capacity=b)))
