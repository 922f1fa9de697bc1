"""Budget by value, with real threads: what fits runs at once, what does not waits, in arrival order."""

from __future__ import annotations

import threading
import time

import pytest

from dra_kwok.runtime.budget import Budget


def _hold_in_thread(budget: Budget, weight: int, entered: list, release: threading.Event) -> threading.Thread:
    def run() -> None:
        with budget.hold(weight):
            entered.append(weight)
            release.wait(5)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _until(cond, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_light_holds_run_together_up_to_the_capacity():
    budget, entered, release = Budget(10), [], threading.Event()
    threads = [_hold_in_thread(budget, 1, entered, release) for _ in range(10)]
    assert _until(lambda: len(entered) == 10)
    assert budget.used == 10
    release.set()
    for t in threads:
        t.join(2)
    assert budget.used == 0


def test_a_hold_that_does_not_fit_waits_and_later_ones_queue_behind_it():
    budget, entered = Budget(10), []
    first, second = threading.Event(), threading.Event()
    a = _hold_in_thread(budget, 8, entered, first)
    assert _until(lambda: entered == [8])
    b = _hold_in_thread(budget, 5, entered, second)  # 8 + 5 > 10: waits
    assert _until(lambda: len(budget._waiting) == 1)
    c = _hold_in_thread(budget, 1, entered, second)  # would fit, but must not overtake the heavier one
    assert _until(lambda: len(budget._waiting) == 2)
    time.sleep(0.1)
    assert entered == [8] and budget.used == 8
    first.set()
    assert _until(lambda: entered == [8, 5, 1])
    second.set()
    for t in (a, b, c):
        t.join(2)
    assert budget.used == 0


def test_a_weight_over_the_capacity_runs_alone():
    budget, entered, release = Budget(10), [], threading.Event()
    t = _hold_in_thread(budget, 50, entered, release)
    assert _until(lambda: entered == [50])
    assert budget.used == 10
    release.set()
    t.join(2)
    assert budget.used == 0


def test_the_weight_is_released_when_the_body_raises():
    budget = Budget(3)
    with pytest.raises(RuntimeError):
        with budget.hold(3):
            raise RuntimeError("boom")
    assert budget.used == 0
    with pytest.raises(ValueError):
        Budget(0)
