"""A controller: a work queue, N reconcile workers with per-key backoff, a periodic resync, and their metrics.

Why its own module (controller-runtime's ``pkg/internal/controller``): every controller needs the same loop, and the
loop knows nothing of what it reconciles. A reconciler is a function of a typed request (any hashable value; the
ResourceSlice controller uses :class:`~dra_kwok.controllers.resourceslice.PoolsRequest`). It returns normally
(success: the key's backoff is forgotten), raises (retried with per-key exponential backoff, capped at
``TRANSIENT_MAX_BACKOFF`` when the error is transient: connection, timeout, 429, 5xx), or raises
:class:`TerminalError` (controller-runtime's ``reconcile.TerminalError``): logged once while it keeps happening,
counted, and **not** requeued; the next event or resync that touches the key tries again.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, Iterable, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from dra_kwok.runtime.errors import ApiError
from dra_kwok.runtime.log import get_logger
from dra_kwok.runtime.metrics import Metrics
from dra_kwok.runtime.workqueue import WorkQueue

__all__ = ["Controller", "TerminalError"]

K = TypeVar("K", bound=Hashable)
log = get_logger("controller")


class TerminalError(Exception):
    """A reconcile failure that retrying cannot fix (e.g. a slice of our name that is not ours)."""


class Controller(Generic[K]):
    def __init__(
        self,
        name: str,
        reconcile: Callable[[K], None],
        metrics: Metrics,
        *,
        keys: Callable[[], Iterable[K]],
        workers: int = 1,
        resync_period: float = 30.0,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._keys = keys
        self.workers = workers
        self.resync_period = resync_period
        self.queue = WorkQueue(name, metrics.queue)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._terminal: dict[K, str] = {}  # key -> the terminal error last reported for it (cleared on success)
        metrics.max_concurrent.labels(controller=name).set(workers)
        # children bound once (labels() takes a lock and a lookup), exported as 0 from the start, as
        # controller-runtime does
        self._active = metrics.active_workers.labels(controller=name)
        self._errors = metrics.reconcile_errors.labels(controller=name)
        self._terminal_errors = metrics.terminal_reconcile_errors.labels(controller=name)
        self._time = metrics.reconcile_time.labels(controller=name)
        self._results = {r: metrics.reconcile_total.labels(controller=name, result=r) for r in ("success", "error")}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Enqueue every key once, then let events and resyncs drive the work."""
        self.enqueue_all()
        for i in range(self.workers):
            self._spawn(self._worker, f"{self.name}-worker-{i}")
        self._spawn(self._resync_loop, f"{self.name}-resync")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def started(self) -> bool:
        return bool(self._threads)

    def alive(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    # ------------------------------------------------------------------ work
    def enqueue_all(self) -> None:
        for key in self._keys():
            self.queue.add(key)

    def _resync_loop(self) -> None:
        while not self._stop.wait(self.resync_period):
            log.v(4).info("Resync started", controller=self.name)
            self.enqueue_all()

    def _worker(self) -> None:
        while not self._stop.is_set():
            key = self.queue.get(timeout=1.0)
            self.queue.update_processing_metrics()
            if key is not None:
                self.process(key)  # type: ignore[arg-type]

    def process(self, key: K) -> None:
        """One reconcile of ``key``, with its bookkeeping (the work queue's ``done`` included)."""
        self._active.inc()
        start = time.monotonic()
        result = "error"
        try:
            self._reconcile(key)
        except TerminalError as err:
            self._terminal_errors.inc()
            self.queue.forget(key)
            if self._terminal.get(key) != str(err):
                self._terminal[key] = str(err)
                log.error("Reconciler error (terminal, not retried)", controller=self.name, request=str(key),
                          err=str(err))
        except Exception as err:
            self._errors.inc()
            delay = self.queue.add_rate_limited(key, TRANSIENT_MAX_BACKOFF if transient(err) else None)
            log.error("Reconciler error", controller=self.name, request=str(key), err=_describe(err),
                      backoff=f"{delay:.3f}s")
        else:
            result = "success"
            self.queue.forget(key)
            self._terminal.pop(key, None)
        finally:
            self._active.dec()
            self._time.observe(time.monotonic() - start)
            self.queue.done(key)
        self._results[result].inc()


TRANSIENT_MAX_BACKOFF = 2.0
"""Seconds: the longest per-key backoff after a transient error. client-go's default controller rate limiter lets a
key back off to 1000 s whatever the error; here an error that says "the apiserver is unreachable, slow or
overloaded" backs off to 2 s at most, so that after an outage of any length every key is retried within 2 s of
the apiserver answering again (the cost: one cheap request per key every 2 s while it is down)."""

_TRANSIENT_STATUS = {0, 429, 500, 502, 503, 504}


def transient(err: BaseException) -> bool:
    """A connection error, a timeout, or a 429 / 5xx answer: the request was fine, the apiserver was not."""
    if isinstance(err, ApiException):
        return (err.status or 0) in _TRANSIENT_STATUS
    return isinstance(err, (OSError, TimeoutError, urllib3.exceptions.HTTPError))


def _describe(err: BaseException) -> str:
    if isinstance(err, ApiError):
        return str(err)[:300]
    if isinstance(err, ApiException):  # the generated client's: its str() is several lines with headers
        return f"{err.status} {err.reason}"
    return f"{type(err).__name__}: {err}"[:300]
