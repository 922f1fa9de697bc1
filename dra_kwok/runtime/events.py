"""Kubernetes Events for what a user must see on the object itself (`kubectl describe configmap`).

Why: an invalid ConfigMap is a user's mistake in a cluster they may not be tailing logs of; the Warning Event on the
ConfigMap carries the validation errors to where they look. Like client-go's event correlator, a repeat of the
same event PATCHes the existing one's count and lastTimestamp instead of creating another object. What it
remembers for that is an LRU of MAX_CACHE events (client-go's correlator keeps 4,096 too): objects come and go
forever (each new ConfigMap has a new uid), and a forgotten event only costs a new Event object instead of a PATCH.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections import OrderedDict

from dra_kwok.runtime.errors import NotFound
from dra_kwok.runtime.log import get_logger
from dra_kwok.runtime.rest import Rest

log = get_logger("events")
MAX_MESSAGE = 1024
MAX_CACHE = 4096  # events remembered for aggregation (client-go: maxLruCacheEntries)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, rest: Rest, component: str = "dra-kwok", instance: str = "") -> None:
        self._rest = rest
        self._component = component
        self._instance = instance
        self._lock = threading.Lock()
        # (object uid, reason, message) -> (event name, count), least recently recorded first
        self._last: OrderedDict[tuple, tuple[str, int]] = OrderedDict()

    def record(self, obj_ref: dict, event_type: str, reason: str, message: str) -> None:
        """obj_ref: {apiVersion, kind, namespace, name, uid, resourceVersion}. Failures are logged, never raised."""
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
        namespace = obj_ref.get("namespace") or "default"
        key = (obj_ref.get("uid"), reason, message)
        try:
            with self._lock:
                previous = self._last.get(key)
            if previous is not None:
                name, count = previous
                try:
                    self._rest.patch(
                        f"/api/v1/namespaces/{namespace}/events/{name}",
                        {"count": count + 1, "lastTimestamp": _now()},
                    )
                    self._remember(key, name, count + 1)
                    return
                except NotFound:
                    pass
            name = f"{obj_ref.get('name')}.{uuid.uuid4().hex[:16]}"
            now = _now()
            self._rest.post(
                f"/api/v1/namespaces/{namespace}/events",
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": obj_ref,
                    "type": event_type,
                    "reason": reason,
                    "message": message,
                    "count": 1,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "source": {"component": self._component},
                    "reportingComponent": self._component,
                    "reportingInstance": self._instance,
                },
            )
            self._remember(key, name, 1)
        except Exception as err:  # an event is best effort; never let it break the controller
            log.error("Failed to record event", err=err, reason=reason, object=obj_ref.get("name"))

    def _remember(self, key: tuple, name: str, count: int) -> None:
        with self._lock:
            self._last[key] = (name, count)
            self._last.move_to_end(key)
            while len(self._last) > MAX_CACHE:
                self._last.popitem(last=False)
