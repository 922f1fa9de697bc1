"""A rate-limited work queue with client-go's semantics, and its controller-runtime metrics.

Why: events arrive far faster than writes can happen (a config change touches every node), and the same key can be
enqueued many times while it waits. Like client-go's workqueue, a key is queued at most once (dirty set), never
processed by two workers at once (processing set: re-added keys wait until `done`), can be delayed (`add_after`),
and failing keys back off exponentially per item (`add_rate_limited`, 5 ms doubling to 1000 s, reset by `forget`;
the caller may cap one retry lower, as the controller does for transient errors).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Callable, Hashable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class QueueMetrics:
    """The workqueue_* families client-go / controller-runtime export, labelled by queue name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name", "controller"], registry=registry)
        self.adds = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", ["name", "controller"], registry=registry)
        self.retries = Counter("workqueue_retries_total", "Total number of retries handled by workqueue", ["name", "controller"], registry=registry)
        buckets = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds", "How long in seconds an item stays in workqueue before being requested",
            ["name", "controller"], buckets=buckets, registry=registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes",
            ["name", "controller"], buckets=buckets, registry=registry,
        )
        self.unfinished = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
            ["name", "controller"], registry=registry,
        )
        self.longest = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            ["name", "controller"], registry=registry,
        )

    def bind(self, name: str) -> QueueMetrics:
        """The same families with the labels of one queue applied once (`labels()` costs a lock and a dict lookup,
        and a queue calls it several times per item)."""
        bound = object.__new__(QueueMetrics)
        for attr, family in vars(self).items():
            setattr(bound, attr, family.labels(name=name, controller=name))
        return bound


class WorkQueue:
    def __init__(
        self,
        name: str,
        metrics: QueueMetrics | None = None,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: dict[Hashable, float] = {}
        self._added_at: dict[Hashable, float] = {}
        self._waiting: list[tuple[float, int, Hashable]] = []  # (ready_at, seq, key)
        self._seq = 0
        self._failures: dict[Hashable, int] = {}
        self._base, self._max = base_delay, max_delay
        self._shutdown = False
        self._m = metrics.bind(name) if metrics else None

    # ------------------------------------------------------------------ producers
    def add(self, key: Hashable) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: Hashable) -> None:
        if self._shutdown or key in self._dirty:
            return
        if self._m:
            self._m.adds.inc()
        self._dirty.add(key)
        self._added_at.setdefault(key, self._clock())
        if key in self._processing:
            return  # re-queued by done()
        self._queue.append(key)
        self._set_depth()
        self._cond.notify()

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            self._seq += 1
            heapq.heappush(self._waiting, (self._clock() + delay, self._seq, key))
            self._cond.notify()

    def add_rate_limited(self, key: Hashable, max_delay: float | None = None) -> float:
        """Re-add ``key`` after its per-item exponential delay; ``max_delay`` caps it below the queue's own maximum
        (the controller does so for transient errors, so that an outage leaves no key in a long backoff)."""
        with self._cond:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        if self._m:
            self._m.retries.inc()
        delay = min(self._base * (2 ** min(n, 64)), self._max, self._max if max_delay is None else max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        with self._cond:
            self._failures.pop(key, None)

    # ------------------------------------------------------------------ consumers
    def get(self, timeout: float | None = None) -> Hashable | None:
        """Block until a key is ready (None on shutdown or timeout)."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                self._promote_waiting()
                if self._queue:
                    key = self._queue.popleft()
                    now = self._clock()
                    self._dirty.discard(key)
                    self._processing[key] = now
                    added = self._added_at.pop(key, now)
                    if self._m:
                        self._m.queue_duration.observe(now - added)
                    self._set_depth()
                    return key
                if self._shutdown:
                    return None
                wait = None
                if self._waiting:
                    wait = max(0.0, self._waiting[0][0] - self._clock())
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: Hashable) -> None:
        with self._cond:
            started = self._processing.pop(key, None)
            if started is not None and self._m:
                self._m.work_duration.observe(self._clock() - started)
            if key in self._dirty:
                self._queue.append(key)
                self._set_depth()
                self._cond.notify()

    def _promote_waiting(self) -> None:
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= now:
            _, _, key = heapq.heappop(self._waiting)
            self._add_locked(key)

    # ------------------------------------------------------------------ state
    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def idle(self) -> bool:
        """Nothing queued, delayed or in flight."""
        with self._cond:
            return not self._queue and not self._processing and not self._waiting

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def update_processing_metrics(self) -> None:
        if not self._m:
            return
        with self._cond:
            now = self._clock()
            running = [now - t for t in self._processing.values()]
        self._m.unfinished.set(sum(running))
        self._m.longest.set(max(running, default=0.0))

    def _set_depth(self) -> None:
        if self._m:
            self._m.depth.set(len(self._queue))
