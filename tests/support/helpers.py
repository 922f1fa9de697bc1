"""Helpers shared by the integration and e2e tests: waiting on conditions; KWOK nodes come from dra_kwok.testing.kwok."""

from __future__ import annotations

import time
from typing import Callable

from dra_kwok.testing.kwok import create_node, kwok_node  # noqa: F401 (re-exported for the tests)


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, message: str = "") -> object:
    """Poll until `condition()` is truthy; fail with `message` (and the last value) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}: last={last!r}")

