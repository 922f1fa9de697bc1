"""The benchmark's eyes: one watch on dra-kwok's ResourceSlices, and trackers that wait for conditions on it.

Why a watch and not polling: a LIST of thousands of slices costs the apiserver (and us) far more than the writes
being measured, and polling quantizes the result to its interval. One long watch (started from a LIST's
resourceVersion, so nothing is missed) sees every write within milliseconds of its commit.

A `Tracker` is registered *before* the action it times (ConfigMap edit, Node create); it holds the slice names it
waits for and a predicate on the slice body, and records the time (time.monotonic) at which each name first
satisfied the predicate. Trackers and `objects` see a slim summary of each slice (`slim`: name, resourceVersion,
nodeName, device count, generation, the first device's attributes), not the whole body: at 10,000 slices the
bodies would cost the benchmark process hundreds of MiB. Events are decoded with orjson when available (the watcher shares the machine with the
driver under test, so it should be as cheap as possible).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

try:
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover
    import json

    _loads = json.loads

MANAGED = "app.kubernetes.io/managed-by=dra-kwok"


class Tracker:
    def __init__(self, names: Iterable[str], predicate: Callable[[dict], bool] = lambda obj: True) -> None:
        self.pending = set(names)
        self.total = len(self.pending)
        self.predicate = predicate
        self.hits: dict[str, float] = {}
        self.done = threading.Event()
        if not self.pending:
            self.done.set()

    def offer(self, name: str, obj: dict, now: float) -> None:
        if name in self.pending and self.predicate(obj):
            self.pending.discard(name)
            self.hits[name] = now
            if not self.pending:
                self.done.set()

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)

    def last(self) -> float | None:
        return max(self.hits.values()) if self.hits else None


class SliceWatcher:
    """LIST once (untimed), then one watch; every ADDED/MODIFIED event is offered to the active trackers."""

    def __init__(self, api: client.ApiClient, label_selector: str = MANAGED) -> None:
        self.api = client.ResourceV1Api(api)
        self.selector = label_selector
        self.objects: dict[str, dict] = {}  # name -> slim(last body seen): the current state, for checks
        self.events = 0
        self.deleted = 0
        self.restarts = 0
        self._trackers: list[Tracker] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._resp = None
        self._rv: str | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ trackers
    def track(self, tracker: Tracker, replay: bool = False) -> Tracker:
        """Register `tracker`; with replay, first offer it the current state (objects already present count)."""
        with self._lock:
            if replay:
                now = time.monotonic()
                for name, obj in self.objects.items():
                    tracker.offer(name, obj, now)
            self._trackers.append(tracker)
        return tracker

    def untrack(self, tracker: Tracker) -> None:
        with self._lock:
            if tracker in self._trackers:
                self._trackers.remove(tracker)

    def count(self) -> int:
        with self._lock:
            return len(self.objects)

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30) -> "SliceWatcher":
        self._list()
        self._thread = threading.Thread(target=self._run, name="bench-slice-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            try:
                resp.shutdown() if hasattr(resp, "shutdown") else resp.close()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(5)

    def _list(self) -> None:
        resp = self.api.list_resource_slice(label_selector=self.selector, _preload_content=False,
                                            _request_timeout=(5, 300))
        body = _loads(resp.data)
        now = time.monotonic()
        with self._lock:
            fresh = {o["metadata"]["name"]: slim(o) for o in body.get("items") or []}
            self.objects = fresh
            for name, obj in fresh.items():
                for t in list(self._trackers):
                    t.offer(name, obj, now)
        self._rv = body["metadata"]["resourceVersion"]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch()
            except ApiException as err:
                if self._stop.is_set():
                    return
                self.restarts += 1
                if err.status == 410:
                    self._list()
                else:
                    time.sleep(0.2)
            except Exception as err:  # connection closed (also how stop() ends a read)
                if self._stop.is_set():
                    return
                self.error = err
                self.restarts += 1
                time.sleep(0.2)

    def _watch(self) -> None:
        resp = self.api.list_resource_slice(
            label_selector=self.selector, watch=True, resource_version=self._rv, timeout_seconds=3600,
            allow_watch_bookmarks=True, _preload_content=False, _request_timeout=(5, 3700),
        )
        self._resp = resp
        try:
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    return
                if not line:
                    continue
                now = time.monotonic()
                event = _loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message"))
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self._rv = rv
                if kind == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                obj = slim(obj)
                with self._lock:
                    self.events += 1
                    if kind == "DELETED":
                        self.deleted += 1
                        self.objects.pop(name, None)
                        continue
                    self.objects[name] = obj
                    for t in self._trackers:
                        t.offer(name, obj, now)
        finally:
            self._resp = None
            try:
                resp.close()
                resp.release_conn()
            except Exception:
                pass


def slim(obj: dict) -> dict:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    devices = spec.get("devices") or []
    return {
        "name": meta.get("name"),
        "rv": meta.get("resourceVersion"),
        "node": spec.get("nodeName"),
        "generation": (spec.get("pool") or {}).get("generation", 0),
        "devices": len(devices),
        "attrs": (devices[0].get("attributes") or {}) if devices else {},
        "counters": sorted((spec.get("sharedCounters") or [{}])[0].get("counters") or {}),
        "multi": bool(devices[0].get("allowMultipleAllocations")) if devices else False,  # profile shape's change
    }
