"""The work queue's client-go semantics, by value, with a fake clock where time matters."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from dra_kwok.runtime.workqueue import QueueMetrics, WorkQueue
from tests.unit.runtime.fakes import Clock


def test_a_key_is_queued_once_however_often_it_is_added():
    q = WorkQueue("t")
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert [q.get(0), q.get(0), q.get(0)] == ["a", "b", None]


def test_a_key_added_while_processing_waits_until_done():
    q = WorkQueue("t")
    q.add("a")
    assert q.get(0) == "a"
    q.add("a")
    assert q.get(0) is None  # never two workers on one key
    q.done("a")
    assert q.get(0) == "a"
    q.done("a")
    assert q.idle()


def test_rate_limited_backoff_doubles_per_failure_and_forget_resets():
    clock = Clock()
    q = WorkQueue("t", base_delay=0.005, max_delay=1.0, clock=clock)
    assert [q.add_rate_limited("k") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    for _ in range(20):
        q.add_rate_limited("k")
    assert q.add_rate_limited("k") == 1.0  # capped
    q.forget("k")
    assert q.add_rate_limited("k") == 0.005


def test_add_after_is_not_ready_before_its_time():
    clock = Clock()
    q = WorkQueue("t", clock=clock)
    q.add_after("late", 5.0)
    assert q.get(0) is None
    assert not q.idle()
    clock.now += 5.0
    assert q.get(0) == "late"


def test_shutdown_wakes_a_blocked_get():
    q = WorkQueue("t")
    got: list = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.shutdown()
    t.join(2)
    assert got == [None]


def test_metrics_count_adds_and_depth():
    registry = CollectorRegistry()
    q = WorkQueue("t", QueueMetrics(registry))
    q.add("a")
    q.add("a")
    q.add("b")
    assert registry.get_sample_value("workqueue_adds_total", {"name": "t", "controller": "t"}) == 2
    assert registry.get_sample_value("workqueue_depth", {"name": "t", "controller": "t"}) == 2
    q.get(0)
    assert registry.get_sample_value("workqueue_depth", {"name": "t", "controller": "t"}) == 1


def test_a_capped_retry_never_waits_longer_than_its_cap():
    q = WorkQueue("t")
    delays = [q.add_rate_limited("a") for _ in range(30)]
    assert delays[:3] == [0.005, 0.01, 0.02] and delays[-1] == 1000.0
    q.forget("a")
    capped = [q.add_rate_limited("a", max_delay=2.0) for _ in range(100)]
    assert capped[:3] == [0.005, 0.01, 0.02] and max(capped) == 2.0


def test_transient_errors_back_off_two_seconds_at_most():
    """After an outage, every key is retried within TRANSIENT_MAX_BACKOFF of the apiserver answering (#18 item 7)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    from dra_kwok.runtime.controller import TRANSIENT_MAX_BACKOFF, transient
    from dra_kwok.runtime.errors import Conflict, Invalid, api_error

    assert TRANSIENT_MAX_BACKOFF == 2.0
    for err in (ConnectionRefusedError(), TimeoutError(), urllib3.exceptions.ReadTimeoutError(None, "/", "timed out"),
                urllib3.exceptions.ProtocolError("reset"), ApiException(status=503), ApiException(status=429),
                api_error(500, {"message": "etcdserver: request timed out"}), ApiException(status=0)):
        assert transient(err), err
    for err in (Invalid(422, "Invalid"), Conflict(409, "Conflict"), ApiException(status=404), ValueError("bug")):
        assert not transient(err), err
