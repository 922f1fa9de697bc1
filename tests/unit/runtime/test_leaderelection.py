"""LeaderElector's decisions, by value, through its seams: a fake clock and a fake lock at the LeaseLock seam.

What a real Lease on a real apiserver does (optimistic concurrency, two replicas, a frozen leader, release on
SIGTERM) is proved by tests/integration/test_driver.py (two replicas, failover), tests/integration/test_faults.py
(SIGSTOP past the lease: never two writers) and tests/integration/test_deploy.py (the lease released on SIGTERM).
Here: when the elector decides to lead, to keep leading, to give up, and what it writes when it stops.
"""

from __future__ import annotations

import threading
import time

import pytest

from dra_kwok.runtime.leaderelection import LeaderElector
from tests.unit.runtime.fakes import Clock, FakeLock

ME, OTHER = "replica-a", "replica-b"


class Calls:
    def __init__(self) -> None:
        self.started = threading.Event()
        self.stopped = threading.Event()


def elector(lock: FakeLock, clock: Clock | None = None, calls: Calls | None = None, **timings: float) -> LeaderElector:
    calls = calls or Calls()
    kwargs = {"clock": clock} if clock is not None else {}
    return LeaderElector(None, lock.namespace, lock.name, ME, on_started=calls.started.set,
                         on_stopped=calls.stopped.set, lock=lock, **kwargs, **timings)  # type: ignore[arg-type]


def test_a_free_lease_is_created_and_held():
    lock, clock, calls = FakeLock(), Clock(), Calls()
    e = elector(lock, clock, calls)
    assert not e.is_leader
    assert e._tick()
    assert e.is_leader and calls.started.is_set() and not calls.stopped.is_set()
    assert lock.writes == [("create", ME, "15")]
    assert lock.record.holder_identity == ME


def test_renewing_keeps_the_acquire_time_and_calls_on_started_once():
    lock, clock = FakeLock(), Clock()
    started = []
    e = LeaderElector(None, lock.namespace, lock.name, ME, on_started=lambda: started.append(clock.now),
                      on_stopped=lambda: None, clock=clock, lock=lock)  # type: ignore[arg-type]
    e._tick()
    acquired = lock.record.acquire_time
    for _ in range(5):
        clock.now += 2
        assert e._tick() and e.is_leader
    assert started == [100.0]
    assert [w[0] for w in lock.writes] == ["create"] + ["update"] * 5
    assert lock.record.acquire_time == acquired


def test_a_free_lease_left_by_a_released_holder_is_taken_at_once():
    lock, clock = FakeLock(), Clock()
    lock.put("", "t1", duration="1")  # what a release leaves: no holder
    e = elector(lock, clock)
    assert e._tick() and e.is_leader
    assert lock.record.holder_identity == ME


@pytest.mark.parametrize("failure", [500, ConnectionRefusedError("apiserver down")], ids=["5xx", "no-connection"])
def test_renew_failing_past_the_renew_deadline_loses_the_lease(failure):
    lock, clock, calls = FakeLock(), Clock(), Calls()
    e = elector(lock, clock, calls, renew_deadline=10.0)
    e._tick()
    lock.failure = failure
    clock.now += 9.0
    assert e._tick()  # failed, but within the deadline: still leading
    assert e.is_leader and not calls.stopped.is_set()
    clock.now += 0.5
    assert e.is_leader
    clock.now += 0.6  # 10.1 s since the last renew: no write may happen any more, even before the next attempt
    assert not e.is_leader
    assert not calls.stopped.is_set()
    assert e._tick() is False  # the loop ends
    assert calls.stopped.is_set() and not e.is_leader


def test_a_renew_that_succeeds_again_before_the_deadline_keeps_leading():
    lock, clock, calls = FakeLock(), Clock(), Calls()
    e = elector(lock, clock, calls, renew_deadline=10.0)
    e._tick()
    lock.failure = 503
    clock.now += 8
    e._tick()
    lock.failure = None
    clock.now += 1
    assert e._tick() and e.is_leader
    clock.now += 9.5  # 9.5 s after the renew that succeeded
    assert e.is_leader and not calls.stopped.is_set()


def test_a_lease_held_by_another_is_not_taken_until_it_expires_by_our_clock():
    lock, clock, calls = FakeLock(), Clock(), Calls()
    lock.put(OTHER, "t1", duration="15")
    e = elector(lock, clock, calls)
    assert e._tick() and not e.is_leader  # first seen at 100
    clock.now += 10
    lock.put(OTHER, "t2", duration="15")  # the holder renews: the 15 s count again from when we see it (110)
    assert e._tick() and not e.is_leader
    clock.now += 14.9  # 124.9: 14.9 s since the record last changed
    assert e._tick() and not e.is_leader
    assert lock.writes == [] and not calls.started.is_set()
    clock.now += 0.2  # 125.1: expired
    assert e._tick() and e.is_leader and calls.started.is_set()
    assert lock.record.holder_identity == ME and lock.writes == [("update", ME, "15")]


def test_a_lease_held_by_another_expires_by_its_own_duration():
    lock, clock = FakeLock(), Clock()
    lock.put(OTHER, "t1", duration="40")
    e = elector(lock, clock)
    e._tick()
    clock.now += 39
    assert e._tick() and not e.is_leader
    clock.now += 1.1
    assert e._tick() and e.is_leader


def test_losing_the_race_for_an_expired_lease_is_not_leading():
    lock, clock = FakeLock(), Clock()
    lock.put(OTHER, "t1")
    e = elector(lock, clock)
    e._tick()
    clock.now += 16
    real_get = lock.get

    def get_then_another_writes(name: str, namespace: str) -> tuple[bool, object]:
        found = real_get(name, namespace)
        lock.put("replica-c", "t2")  # another standby updates between our read and our write
        return found

    lock.get = get_then_another_writes  # type: ignore[method-assign]
    assert e._tick() and not e.is_leader
    assert lock.record.holder_identity == "replica-c"


def test_stop_releases_a_held_lease_so_a_standby_takes_over_at_once():
    lock, clock = FakeLock(), Clock()
    e = elector(lock, clock)
    e._tick()
    e.stop()
    assert not e.is_leader
    assert lock.record.holder_identity == "" and lock.record.lease_duration == "1"
    assert lock.writes[-1] == ("update", "", "1")


def test_stop_leaves_alone_a_lease_it_does_not_hold():
    lock, clock = FakeLock(), Clock()
    lock.put(OTHER, "t1")
    e = elector(lock, clock)
    e._tick()
    e.stop()
    assert lock.record.holder_identity == OTHER and lock.writes == []


def test_stop_after_another_took_over_does_not_release_their_lease():
    lock, clock = FakeLock(), Clock()
    e = elector(lock, clock)
    e._tick()
    lock.put(OTHER, "t9")  # e.g. we were frozen, the lease passed on
    e.stop()
    assert lock.record.holder_identity == OTHER


def test_the_thread_acquires_renews_and_releases_on_stop():
    """The real loop, on the real clock, with short timings: start() campaigns in a thread, stop() ends it."""
    lock, calls = FakeLock(), Calls()
    e = elector(lock, calls=calls, lease_duration=2.0, renew_deadline=1.5, retry_period=0.01)
    assert not e.started
    e.start()
    assert calls.started.wait(5), "the free lease was not acquired"
    assert e.is_leader and e.alive()
    until = time.monotonic() + 5
    while len(lock.writes) < 3 and time.monotonic() < until:
        time.sleep(0.01)
    assert [w[0] for w in lock.writes[:3]] == ["create", "update", "update"]
    e.stop()
    assert not e.alive() and not e.is_leader and not calls.stopped.is_set()
    assert lock.record.holder_identity == ""


def test_the_thread_ends_and_calls_on_stopped_when_the_lease_is_lost():
    lock, calls = FakeLock(), Calls()
    e = elector(lock, calls=calls, lease_duration=0.4, renew_deadline=0.2, retry_period=0.01)
    e.start()
    assert calls.started.wait(5)
    lock.failure = 500
    assert calls.stopped.wait(5), "a lease that cannot be renewed was not given up"
    e._thread.join(5)
    assert not e.alive() and not e.is_leader
