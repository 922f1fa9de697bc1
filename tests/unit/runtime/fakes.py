"""Fakes at the runtime's seams that a real system cannot reach deterministically: a clock, and a LeaseLock."""

from __future__ import annotations

from types import SimpleNamespace

from kubernetes.client.exceptions import ApiException
from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLock:
    """LeaseLock's contract, in memory: get -> (True, record) or (False, ApiException); create fails if the Lease
    exists; update fails unless the Lease is unchanged since our last get (the apiserver's resourceVersion check).
    `failure` makes every call fail: an ApiException status answered, or an exception raised (no connection)."""

    def __init__(self, name: str = "dra-kwok", namespace: str = "karpenter") -> None:
        self.name, self.namespace = name, namespace
        self.record: LeaderElectionRecord | None = None
        self.version = 0
        self.lease_reference: SimpleNamespace | None = None
        self.failure: int | Exception | None = None
        self.writes: list[tuple[str, str, str]] = []  # (verb, holder, lease duration)

    def put(self, holder: str, renew_time: str, duration: str = "15") -> None:
        """Another replica (or a person) writes the Lease."""
        self.record = LeaderElectionRecord(holder, duration, "t0", renew_time)
        self.version += 1

    def _fail(self) -> ApiException | None:
        if isinstance(self.failure, Exception):
            raise self.failure
        return ApiException(status=self.failure) if self.failure else None

    def get(self, name: str, namespace: str) -> tuple[bool, object]:
        assert (name, namespace) == (self.name, self.namespace)
        err = self._fail()
        if err is not None:
            return False, err
        if self.record is None:
            return False, ApiException(status=404)
        r = self.record
        self.lease_reference = SimpleNamespace(version=self.version, spec=SimpleNamespace(holder_identity=r.holder_identity))
        return True, LeaderElectionRecord(r.holder_identity, r.lease_duration, r.acquire_time, r.renew_time)

    def create(self, name: str, namespace: str, record: LeaderElectionRecord) -> bool:
        if self._fail() is not None or self.record is not None:
            return False
        self._store("create", record)
        return True

    def update(self, name: str, namespace: str, record: LeaderElectionRecord) -> bool:
        if self._fail() is not None or self.lease_reference is None or self.lease_reference.version != self.version:
            return False
        self._store("update", record)
        return True

    def _store(self, verb: str, record: LeaderElectionRecord) -> None:
        self.record = LeaderElectionRecord(record.holder_identity, record.lease_duration, record.acquire_time,
                                           record.renew_time)
        self.version += 1
        self.writes.append((verb, record.holder_identity, record.lease_duration))
