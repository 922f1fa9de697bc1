"""Leader election on a coordination.k8s.io Lease, with controller-runtime's timings (15 s / 10 s / 2 s).

Why not the client's `LeaderElection.run()`: its acquire loop cannot be stopped (SIGTERM would hang), it never
releases the lease on shutdown (a rolling update then waits a full lease duration), and it reports a lost lease only
after its renew loop returns. We keep the client's `LeaseLock` (get / create / update of the Lease with optimistic
concurrency) and drive it with a stoppable loop that: judges expiry by our own monotonic clock from when the record
last changed (as client-go does, so clock skew between replicas does not matter); calls `on_stopped` the moment a
renew deadline passes; and releases the lease (empty holder, 1 s duration) on `stop()`.

Seams, for unit tests that need no apiserver (tests/unit/runtime/test_leaderelection.py): `clock` (every expiry and
deadline is judged by it), `lock` (anything with LeaseLock's get / create / update / lease_reference) and `_tick`
(one attempt of the loop). The real Lease is exercised by the integration tests (failover, freeze, release).
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Callable

from kubernetes import client
from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from dra_kwok.runtime.log import get_logger

log = get_logger("leaderelection")


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient | None,
        namespace: str,
        name: str,
        identity: str,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        lock: LeaseLock | None = None,
    ) -> None:
        if lock is None:
            lock = LeaseLock(name, namespace, identity)
            lock.api_instance = client.CoordinationV1Api(api)
        self.lock = lock
        self.identity = identity
        self._on_started, self._on_stopped = on_started, on_stopped
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self._clock = clock
        self._stop = threading.Event()
        self._leading = threading.Event()
        self._observed: tuple | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        """Leading, and renewed within the renew deadline by our own clock. The second half matters after a pause
        (SIGSTOP, a long GC, a frozen VM): the workers must not write before the elector thread has even noticed
        that the lease may have passed to another replica."""
        return self._leading.is_set() and self._clock() - self._last_renew < self.renew_deadline

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop campaigning; if leading, release the lease so a standby takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_period + 5)
        if self._leading.is_set():
            self._leading.clear()
            self._release()

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        log.info("Attempting to acquire leader lease", lease=f"{self.lock.namespace}/{self.lock.name}", identity=self.identity)
        while not self._stop.is_set() and self._tick():
            self._stop.wait(self.retry_period)

    def _tick(self) -> bool:
        """One attempt to acquire or renew, and its consequences; False once the lease is lost (the loop ends)."""
        ok = self._try_acquire_or_renew()
        now = self._clock()
        if ok:
            self._last_renew = now
            if not self._leading.is_set():
                self._leading.set()
                log.info("Successfully acquired lease", lease=f"{self.lock.namespace}/{self.lock.name}", identity=self.identity)
                self._on_started()
        elif self._leading.is_set() and now - self._last_renew > self.renew_deadline:
            self._leading.clear()
            log.error("Leader election lost", lease=f"{self.lock.namespace}/{self.lock.name}", identity=self.identity)
            self._on_stopped()
            return False
        return True

    def _record(self, acquire_time: str | None = None) -> LeaderElectionRecord:
        now = str(datetime.datetime.now())
        return LeaderElectionRecord(self.identity, str(int(self.lease_duration)), acquire_time or now, now)

    def _try_acquire_or_renew(self) -> bool:
        try:
            found, record = self.lock.get(self.lock.name, self.lock.namespace)
            if not found:
                if getattr(record, "status", None) != 404:
                    return False
                return bool(self.lock.create(self.lock.name, self.lock.namespace, self._record()))
            key = (record.holder_identity, record.renew_time, record.acquire_time, record.lease_duration)
            now = self._clock()
            if key != self._observed:
                self._observed, self._observed_at = key, now
            holder = record.holder_identity
            if holder and holder != self.identity:
                duration = float(record.lease_duration or self.lease_duration)
                if now < self._observed_at + duration:
                    return False  # held by someone else and not expired
            acquire = record.acquire_time if holder == self.identity else None
            return bool(self.lock.update(self.lock.name, self.lock.namespace, self._record(acquire)))
        except Exception as err:  # timeouts, connection errors: count as a failed attempt
            log.v(2).info("Failed to renew lease", err=str(err)[:200])
            return False

    def _release(self) -> None:
        try:
            found, _ = self.lock.get(self.lock.name, self.lock.namespace)
            if found and self.lock.lease_reference.spec.holder_identity == self.identity:
                now = str(datetime.datetime.now())
                self.lock.update(self.lock.name, self.lock.namespace, LeaderElectionRecord("", "1", now, now))
                log.info("Released leader lease", lease=f"{self.lock.namespace}/{self.lock.name}")
        except Exception as err:
            log.error("Failed to release lease", err=err)
