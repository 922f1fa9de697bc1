"""The Manager's contract, with fake runnables and no apiserver (its api is only used for leader election): what
starts when, what stops in which order, what the probes answer over real HTTP, and the exit code.

The probes are asked with real GETs on 127.0.0.1, so these tests hold whatever serves them. Leader election runs
the real LeaderElector on the fake LeaseLock of tests/unit/runtime/fakes.py; the real Lease is the integration
tests' (tests/integration/test_driver.py, test_faults.py, test_deploy.py).
"""

from __future__ import annotations

import os
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from dra_kwok.runtime.manager import LeaderElection, Manager, Note
from dra_kwok.runtime.metrics import Metrics
from dra_kwok.testing.controlplane import free_port
from tests.support.helpers import wait_for
from tests.unit.runtime.fakes import FakeLock


class Fake:
    """A runnable that writes `start:<name>` / `stop:<name>` to a shared journal."""

    def __init__(self, name: str, journal: list[str], on_start: object = None) -> None:
        self.name, self.journal, self._on_start = name, journal, on_start

    def start(self) -> None:
        if callable(self._on_start):
            self._on_start()
        self.journal.append(f"start:{self.name}")

    def stop(self) -> None:
        self.journal.append(f"stop:{self.name}")


class Cache:
    """A cache's `synced` function, set by the test; counts how often the manager asked."""

    def __init__(self) -> None:
        self.ready = False
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.ready


class Running:
    """Manager.run() on a thread; `exit_code` once it returned."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.exit_code = self.manager.run(install_signals=False)

    def stop(self) -> int | None:
        self.manager.stopping.set()
        return self.wait()

    def wait(self) -> int | None:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the manager did not return"
        return self.exit_code


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET; status 0 when nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()
    except OSError:
        return 0, "", ""


def listening_ports() -> set[int]:
    """The TCP ports this process listens on (Linux: its socket inodes in /proc/net/tcp{,6} in state LISTEN)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def manager(**kwargs: object) -> Manager:
    return Manager(None, Metrics(), bind_address="127.0.0.1", **kwargs)  # type: ignore[arg-type]


def test_plain_runnables_start_first_leader_runnables_only_once_every_cache_synced_and_stop_in_reverse():
    journal: list[str] = []
    caches = [Cache(), Cache()]
    synced_at_start: list[bool] = []
    m = manager()
    m.add(Fake("source", journal))
    m.add(Fake("informers", journal))
    for name in ("reconciler", "gc"):
        m.add(Fake(name, journal, on_start=lambda: synced_at_start.append(all(c.ready for c in caches))),
              needs_leader=True)
    for cache in caches:
        m.add_cache(cache)
    run = Running(m)
    wait_for(lambda: caches[0].asked >= 3, message="the manager to wait on the caches")
    caches[0].ready = True
    asked = caches[1].asked
    wait_for(lambda: caches[1].asked >= asked + 3, message="the manager to ask the second cache again")
    assert journal == ["start:source", "start:informers"]  # one cache synced is not enough
    caches[1].ready = True
    wait_for(lambda: len(journal) == 4, message="the leader runnables to start")
    assert journal == ["start:source", "start:informers", "start:reconciler", "start:gc"]
    assert synced_at_start == [True, True]
    assert m.can_write()  # no election: this replica writes
    assert run.stop() == 0
    assert not m.can_write()
    assert journal[4:] == ["stop:gc", "stop:reconciler", "stop:informers", "stop:source"]


def test_stopped_before_the_caches_synced_never_starts_the_leader_runnables():
    journal: list[str] = []
    cache = Cache()
    m = manager()
    m.add(Fake("informers", journal))
    m.add(Fake("reconciler", journal), needs_leader=True)
    m.add_cache(cache)
    run = Running(m)
    wait_for(lambda: cache.asked >= 2, message="the manager to wait on the cache")
    assert run.stop() == 0
    assert "start:reconciler" not in journal and journal[0] == "start:informers"


@pytest.fixture
def probed():
    """A manager serving its probes on one port and /metrics on another, with checks the test can flip."""
    state = {"informer": None, "elector": None, "config": "configuration not loaded yet"}
    scrapes: list[int] = []
    health, metrics = free_port(), free_port()
    m = manager(health_port=health, metrics_port=metrics)
    m.add_healthz_check("informer", lambda: state["informer"])
    m.add_healthz_check("elector", lambda: state["elector"])
    m.add_readyz_check("config", lambda: state["config"])
    m.on_scrape(lambda: scrapes.append(1))
    run = Running(m)
    wait_for(lambda: get(f"http://127.0.0.1:{health}/healthz")[0] == 200, message="the probe server")
    wait_for(lambda: metrics in listening_ports(), message="the metrics server")
    yield f"http://127.0.0.1:{health}", f"http://127.0.0.1:{metrics}", state, scrapes
    assert run.stop() == 0


def test_probes_answer_each_check_when_asked(probed):
    health, _, state, _ = probed
    assert get(health + "/healthz") == (200, "text/plain", "ok\n")
    assert get(health + "/livez") == (200, "text/plain", "ok\n")
    assert get(health + "/readyz") == (500, "text/plain", "config: configuration not loaded yet\n")
    state["config"] = None  # checks are run on each request, not cached
    assert get(health + "/readyz") == (200, "text/plain", "ok\n")
    state["informer"], state["elector"] = "watch stuck", "elector stopped"
    assert get(health + "/healthz") == (500, "text/plain", "informer: watch stuck; elector: elector stopped\n")
    assert get(health + "/livez")[:2] == (500, "text/plain")
    assert get(health + "/readyz")[0] == 200  # liveness failing does not make readiness fail
    assert get(health + "/nope")[0] == 404
    assert get(health + "/metrics")[0] == 404  # metrics are on their own port


def test_verbose_probes_list_their_own_checks(probed):
    health, _, state, _ = probed
    state["elector"] = "elector stopped"
    liveness = "[+]informer ok\n[-]elector failed: elector stopped\n"
    assert get(health + "/healthz?verbose") == (500, "text/plain", liveness + "healthz check failed\n")
    # /livez lists the liveness checks, never the readiness ones
    assert get(health + "/livez?verbose") == (500, "text/plain", liveness + "livez check failed\n")
    state["config"] = None
    assert get(health + "/readyz?verbose") == (200, "text/plain", "[+]config ok\nreadyz check passed\n")


def test_a_check_that_passes_with_a_note_says_it_only_when_verbose(probed):
    health, _, state, _ = probed
    state["config"] = Note("the apiserver drops devices[].taints")
    assert get(health + "/readyz") == (200, "text/plain", "ok\n")
    assert get(health + "/readyz?verbose") == (
        200, "text/plain", "[+]config ok: the apiserver drops devices[].taints\nreadyz check passed\n")


def test_metrics_are_served_on_their_port_after_the_scrape_hooks(probed):
    health, metrics, _, scrapes = probed
    code, ctype, body = get(metrics + "/metrics")
    assert code == 200 and ctype == CONTENT_TYPE_LATEST
    assert "# TYPE controller_runtime_reconcile_total counter" in body
    assert scrapes == [1]
    get(metrics + "/metrics")
    assert scrapes == [1, 1]
    assert get(metrics + "/healthz")[0] == 404  # and the probes are not


def test_one_port_for_probes_and_metrics_serves_both():
    port = free_port()
    m = manager(health_port=port, metrics_port=port)
    run = Running(m)
    wait_for(lambda: get(f"http://127.0.0.1:{port}/readyz")[0] == 200, message="the server")
    assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    assert run.stop() == 0
    assert port not in listening_ports()


def test_port_zero_serves_nothing_and_a_stopped_manager_listens_no_more():
    before = listening_ports()
    journal: list[str] = []
    m = manager(health_port=0, metrics_port=0)
    m.add(Fake("informers", journal))
    run = Running(m)
    wait_for(lambda: journal == ["start:informers"], message="the runnables to start")
    assert listening_ports() == before
    assert run.stop() == 0

    health, metrics = free_port(), free_port()
    run = Running(manager(health_port=health, metrics_port=metrics))
    wait_for(lambda: {health, metrics} <= listening_ports(), message="both ports to listen")
    assert run.stop() == 0
    assert not {health, metrics} & listening_ports()


def elected(lock: FakeLock, *, wait_to_lead: bool = True) -> tuple[list[str], Manager, Running]:
    """A running manager with leader election on `lock`, a plain runnable and a leader runnable."""
    journal: list[str] = []
    m = manager(leader_election=LeaderElection("karpenter", "dra-kwok", "replica-a", lease_duration=0.4,
                                                  renew_deadline=0.2, retry_period=0.01))
    assert m.elector is not None
    m.elector.lock = lock  # type: ignore[assignment]  # the LeaseLock seam
    m.add(Fake("informers", journal))
    m.add(Fake("reconciler", journal), needs_leader=True)
    run = Running(m)
    if wait_to_lead:
        wait_for(lambda: "start:reconciler" in journal, message="leading")
    return journal, m, run


def leader_gauge(m: Manager) -> float | None:
    return m.metrics.registry.get_sample_value("leader_election_master_status", {"name": "dra-kwok"})


def test_a_leader_that_stops_returns_0_and_releases_the_lease():
    lock = FakeLock()
    journal, m, run = elected(lock)
    assert m.can_write() and leader_gauge(m) == 1.0
    assert run.stop() == 0
    assert journal[-2:] == ["stop:reconciler", "stop:informers"]
    assert lock.record.holder_identity == "" and leader_gauge(m) == 0.0


def test_a_standby_never_starts_the_leader_runnables():
    lock = FakeLock()
    lock.put("replica-b", "t1", duration="3600")
    journal, m, run = elected(lock, wait_to_lead=False)
    wait_for(lambda: lock.lease_reference is not None, message="the lease read")
    assert not m.can_write() and leader_gauge(m) == 0.0 and journal == ["start:informers"]
    assert run.stop() == 0
    assert lock.record.holder_identity == "replica-b"  # not ours to release


def test_a_lost_lease_stops_the_writes_and_returns_1():
    lock = FakeLock()
    journal, m, run = elected(lock)
    lock.failure = 500  # the apiserver answers errors: renews fail past the renew deadline
    assert run.wait() == 1
    assert not m.can_write() and leader_gauge(m) == 0.0
    assert journal[-2:] == ["stop:reconciler", "stop:informers"]


def test_sigterm_returns_0():
    """run() on the main thread, as the CLI calls it; SIGTERM is sent to this very process."""
    journal: list[str] = []
    m = manager()
    m.add(Fake("informers", journal))
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def terminate() -> None:
        wait_for(lambda: journal == ["start:informers"], message="the runnables to start")
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate, daemon=True)
    killer.start()
    try:
        assert m.run(install_signals=True) == 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    killer.join(5)
    assert journal == ["start:informers", "stop:informers"]
