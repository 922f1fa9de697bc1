"""The shared configuration store between the ConfigMap controller (writer) and the ResourceSlice controller (reader).

Why: the two controllers never call each other (as in the original driver); they meet here, behind one
`threading.Lock`. The store distinguishes three states, because they demand different actions:

- UNKNOWN: nothing valid has been seen yet (startup, or the only config seen so far is invalid) -> touch nothing;
- cleared: the ConfigMap is gone -> the desired state is "no slices", so ours are removed;
- a Config: render it.

Every change bumps a revision and wakes the listeners (the ResourceSlice controller enqueues its keys).
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from dra_kwok.config.types import Config


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: Config | None | _Unknown = UNKNOWN
        self._revision = 0
        self._listeners: list[Callable[[Optional[Config], Optional[Config]], None]] = []

    def get(self) -> Config | None | _Unknown:
        """The config in force: a Config, None once cleared, or UNKNOWN before any valid config was seen."""
        with self._lock:
            return self._config

    @property
    def revision(self) -> int:
        with self._lock:
            return self._revision

    def set(self, config: Config) -> None:
        self._swap(config)

    def clear(self) -> None:
        self._swap(None)

    def on_change(self, listener: Callable[[Optional[Config], Optional[Config]], None]) -> None:
        """Register a wake-up callback, called with (old, new) outside the lock after every change."""
        with self._lock:
            self._listeners.append(listener)

    def _swap(self, new: Config | None) -> None:
        with self._lock:
            old = self._config
            if old == new and not isinstance(old, _Unknown):
                return
            self._config = new
            self._revision += 1
            listeners = list(self._listeners)
        old_cfg = None if isinstance(old, _Unknown) else old
        for listener in listeners:
            listener(old_cfg, new)
