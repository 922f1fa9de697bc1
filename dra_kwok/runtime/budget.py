"""A weighted semaphore: many workers, but a bounded amount of work held in memory at once.

Why: the workers' count decides how many writes wait on the apiserver at once, which is what a burst of new nodes
needs (measured: 32 workers halve the per-node p99 of 16). But each reconcile also holds a rendered node, and the
largest node a config may give is large (README, "Memory budget"): the memory bound was "workers × largest node".
Weighing each reconcile by the size of what it renders, against a budget of a few largest nodes, keeps that bound
whatever the workers' count, while small nodes (the usual case) run as many at once as there are workers.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["Budget"]


class Budget:
    """``hold(weight)`` blocks until ``weight`` fits in what is left of ``capacity`` (a weight over the capacity is
    held as the whole capacity, alone). Waiters are served in arrival order, so a heavy one is not starved by a
    stream of light ones."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, not {capacity}")
        self.capacity = capacity
        self._used = 0
        self._cond = threading.Condition()
        self._waiting: list[object] = []  # tickets, first come first served

    @property
    def used(self) -> int:
        with self._cond:
            return self._used

    @contextmanager
    def hold(self, weight: int) -> Iterator[None]:
        weight = min(max(weight, 1), self.capacity)
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while self._waiting[0] is not ticket or self._used + weight > self.capacity:
                    self._cond.wait()
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now
            self._used += weight
        try:
            yield
        finally:
            with self._cond:
                self._used -= weight
                self._cond.notify_all()
