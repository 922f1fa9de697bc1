"""The configuration store's three states, its revision and its listeners, by value."""

from __future__ import annotations

import threading

from dra_kwok.config.types import Config
from dra_kwok.controllers.store import UNKNOWN, Store

A, B = Config("a.example.com"), Config("b.example.com")


def recording(store: Store) -> list[tuple[Config | None, Config | None]]:
    calls: list[tuple[Config | None, Config | None]] = []
    store.on_change(lambda old, new: calls.append((old, new)))
    return calls


def test_a_new_store_knows_nothing_yet():
    store = Store()
    assert store.get() is UNKNOWN and store.revision == 0


def test_unknown_then_a_config_then_cleared_then_a_config_again():
    store = Store()
    calls = recording(store)
    store.set(A)
    assert store.get() == A and store.revision == 1
    store.set(B)
    assert store.get() == B and store.revision == 2
    store.clear()
    assert store.get() is None and store.revision == 3
    store.set(A)
    assert store.get() == A and store.revision == 4
    # UNKNOWN is never handed to a listener: before any config, "old" is None
    assert calls == [(None, A), (A, B), (B, None), (None, A)]


def test_cleared_before_any_config_is_a_change_from_unknown():
    """A ConfigMap that is absent at startup: the desired state is known now ("no slices"), unlike UNKNOWN."""
    store = Store()
    calls = recording(store)
    store.clear()
    assert store.get() is None and store.get() is not UNKNOWN
    assert store.revision == 1 and calls == [(None, None)]


def test_setting_an_equal_config_or_clearing_twice_changes_nothing():
    store = Store()
    store.set(A)
    calls = recording(store)
    store.set(Config("a.example.com"))  # equal by value, another object (a re-read of the same ConfigMap)
    assert store.revision == 1 and calls == []
    store.clear()
    store.clear()
    assert store.revision == 2 and calls == [(A, None)]


def test_every_listener_is_called_in_registration_order():
    store = Store()
    order: list[str] = []
    store.on_change(lambda old, new: order.append("first"))
    store.on_change(lambda old, new: order.append("second"))
    store.set(A)
    assert order == ["first", "second"]


def test_listeners_run_outside_the_lock_and_see_the_new_state():
    """A listener reads the store (the ResourceSlice controller does, to enqueue): under the lock it would deadlock."""
    store = Store()
    seen: list[tuple[object, int]] = []
    store.on_change(lambda old, new: seen.append((store.get(), store.revision)))
    writer = threading.Thread(target=lambda: (store.set(A), store.clear()), daemon=True)
    writer.start()
    writer.join(5)
    assert not writer.is_alive(), "a listener deadlocked on the store's lock"
    assert seen == [(A, 1), (None, 2)]
