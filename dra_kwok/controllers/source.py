"""The configuration sources: one ConfigMap (watched by an informer) or a local file (`--config-file`).

Why here and not in the ResourceSlice controller: parsing and validating user input is a different failure domain
from writing slices. A source turns text into a validated `Config` and puts it in the shared `Store`; it never
writes slices. Its one rule: an **invalid** config changes nothing. The last valid config stays in force, a Warning
Event on the ConfigMap carries the errors, they are logged, and `dra_kwok_config_valid` drops to 0. Deleting the
ConfigMap (or the file) clears the store, which is the one way to remove all our slices.

A ConfigMap (or file) that does not exist is never mistaken for a fine state: the instance is not ready
(``/readyz?verbose`` says ``configmap <ns>/<name> not found``), a warning says so, and nothing is published. It is
still a config, "no slices", and at start-up too: the instance's own slices (those carrying its instance label,
:mod:`dra_kwok.controllers.instance`) are removed, exactly as if the ConfigMap had been deleted while it ran, so
that a restart converges to the same state as a running driver would. Since the instance label is derived from
the ConfigMap's namespace and name, a typo (``--namespace karpentr``) is another instance, which owns nothing:
it removes nothing of anyone's, and its readiness check says what it is missing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Callable

from kubernetes import client

from dra_kwok.accept import Rejected, accept
from dra_kwok.config.types import Config
from dra_kwok.controllers.metrics import DriverMetrics
from dra_kwok.controllers.store import Store
from dra_kwok.runtime.events import MAX_MESSAGE, EventRecorder
from dra_kwok.runtime.informer import EventHandler, Informer
from dra_kwok.runtime.log import get_logger
from dra_kwok.slices.features import DEFAULT, Version

log = get_logger("controller.configmap")


MAX_REPORTED_ERRORS = 20
MAX_REPORTED_ERROR_LENGTH = 400
_EVENT_PREFIX = "Invalid config.yaml, keeping the last valid configuration: "


def cap_errors(errors: list[str], max_chars: int | None = None) -> list[str]:
    """What a log line or a Warning Event carries: the first MAX_REPORTED_ERRORS errors (fewer if ``max_chars``,
    joined with "; ", would be exceeded), each cut to MAX_REPORTED_ERROR_LENGTH characters, then "and N more".
    2,300 errors made a 464 KB log line, and a 10 MiB value a 10 MiB one; `dra-kwok validate` on the same text
    prints every error in full."""
    cut = [e if len(e) <= MAX_REPORTED_ERROR_LENGTH else f"{e[:MAX_REPORTED_ERROR_LENGTH]}... ({len(e)} characters)"
           for e in errors[:MAX_REPORTED_ERRORS]]
    shown: list[str] = []
    room = max_chars if max_chars is not None else float("inf")
    for error in cut:
        rest = len(errors) - len(shown) - 1
        more = len(f"; and {rest} more; run `dra-kwok validate` for the full list") if rest else 0
        if shown and sum(len(e) + 2 for e in shown) + len(error) + more > room:
            break
        shown.append(error)
    if len(errors) > len(shown):
        shown.append(f"and {len(errors) - len(shown)} more; run `dra-kwok validate` for the full list")
    return shown


def parse_and_validate(text: str | bytes, source: str, version: Version = DEFAULT) -> Config:
    """Text -> a Config valid for the cluster's ``version`` (its warnings logged), or Rejected with every error."""
    config, warnings = accept(text, source, version)
    for warning in warnings:
        log.warning("Configuration warning", source=source, warning=str(warning))
    return config


class _Accepting:
    """Shared bookkeeping of both sources: store the config or keep the last good one, and say so."""

    def __init__(self, store: Store, metrics: DriverMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self.last_error: list[str] | None = None
        self.version: Version = DEFAULT  # the cluster's: what the apiserver accepts (set by the app before start)

    def accept(self, text: str | bytes, source: str, on_reject: Callable[[list[str]], None] = lambda e: None) -> bool:
        try:
            config = parse_and_validate(text, source, self.version)
        except Rejected as err:
            self.last_error = err.errors
            self.metrics.config_valid.set(0)
            log.error("Rejected invalid configuration, keeping the last valid one", source=source,
                      error_count=len(err.errors), errors=cap_errors(err.errors))
            on_reject(err.errors)
            return False
        self.last_error = None
        self.metrics.config_valid.set(1)
        self.metrics.config_last_reload.set(time.time())
        changed = self.store.get() != config
        self.store.set(config)
        if changed:
            log.info("Loaded configuration", source=source, driver=config.driver, mappings=len(config.mappings))
        return True

    def cleared(self, source: str, absent: bool = False) -> None:
        if absent:
            log.warning("Configuration not found: publishing nothing, and removing this instance's own slices if it "
                        "has any (other instances' are never touched); not ready until it exists. Create it, or fix "
                        "the flags that name it", source=source)
        else:
            log.info("Configuration removed, clearing", source=source)
        self.last_error = None
        self.metrics.config_valid.set(1)
        self.store.clear()


class ConfigMapController(_Accepting):
    """Watches exactly one ConfigMap (field selector on its name) in one namespace."""

    def __init__(
        self,
        api: client.ApiClient,
        store: Store,
        metrics: DriverMetrics,
        recorder: EventRecorder,
        namespace: str,
        name: str,
        can_record: Callable[[], bool] = lambda: True,
        watch_timeout: int = 60,
        request_timeout: float = 15.0,
    ) -> None:
        super().__init__(store, metrics)
        self.namespace, self.name = namespace, name
        self.recorder = recorder
        self.can_record = can_record
        observe = lambda verb: metrics.observe_request(verb.upper(), "configmaps", 200)  # noqa: E731
        self.informer: Informer[dict] = Informer(
            "configmap", client.CoreV1Api(api).list_namespaced_config_map, _keep,
            handler=_Events(self), namespace=namespace, field_selector=f"metadata.name={name}",
            watch_timeout=watch_timeout, request_timeout=request_timeout, on_request=observe,
        )
        self._synced = threading.Event()
        self._sync_lock = threading.Lock()

    def start(self) -> None:
        self.informer.start()

    def stop(self) -> None:
        self.informer.stop(0.5)

    def synced(self) -> bool:
        """The ConfigMap (or its absence) has been seen and processed, so the first reconcile may run."""
        if self.informer.synced.is_set() and not self._synced.is_set():
            with self._sync_lock:  # called from the manager and the probe threads: clear at most once
                if not self._synced.is_set():
                    if not self.informer.list():  # no ConfigMap: nothing to apply, the desired state is "no slices"
                        self.cleared(f"configmap {self.namespace}/{self.name}", absent=True)
                    self._synced.set()
        return self._synced.is_set()

    def problem(self) -> str | None:
        """Why this source is not ready (None: it is): the readiness check ``config``."""
        if not self.synced():
            return "configuration not loaded yet"
        if not self.informer.list():
            return f"configmap {self.namespace}/{self.name} not found"
        return None

    def warn(self, reason: str, message: str) -> None:
        """A Warning Event on the ConfigMap (when it exists and this replica may record): what a user must see."""
        items = self.informer.list()
        if items:
            self._record(items[0]["metadata"], reason, message)

    def _record(self, meta: dict, reason: str, message: str) -> None:
        if self.can_record():
            ref = {"apiVersion": "v1", "kind": "ConfigMap", "namespace": meta.get("namespace") or self.namespace,
                   "name": meta["name"], "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
            self.recorder.record(ref, "Warning", reason, message)

    def apply(self, cm: dict) -> None:
        meta = cm["metadata"]
        source = f"configmap {self.namespace}/{self.name}"
        manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": cm.get("data") or {}})

        def warn(errors: list[str]) -> None:
            self._record(meta, "InvalidConfig",
                         _EVENT_PREFIX + "; ".join(cap_errors(errors, MAX_MESSAGE - len(_EVENT_PREFIX))))

        self.accept(manifest, source, warn)


def _keep(raw: dict) -> dict:
    meta = raw.get("metadata") or {}
    return {
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")},
        "data": raw.get("data") or {},
    }


class _Events(EventHandler[dict]):
    def __init__(self, ctrl: ConfigMapController) -> None:
        self.ctrl = ctrl

    def on_add(self, obj: dict) -> None:
        self.ctrl.apply(obj)

    def on_update(self, old: dict, new: dict) -> None:
        if old.get("data") != new.get("data"):
            self.ctrl.apply(new)

    def on_delete(self, obj: dict) -> None:
        self.ctrl.cleared(f"configmap {self.ctrl.namespace}/{self.ctrl.name}")


class FileConfigSource(_Accepting):
    """`--config-file`: local mode without a ConfigMap; the file is re-read when its mtime or size changes."""

    def __init__(self, store: Store, metrics: DriverMetrics, path: str, poll_interval: float = 1.0) -> None:
        super().__init__(store, metrics)
        self.path = path
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._stamp: tuple | None = None
        self._thread: threading.Thread | None = None
        self._synced = threading.Event()

    def start(self) -> None:
        self._poll()
        self._synced.set()
        self._thread = threading.Thread(target=self._loop, name="config-file", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def synced(self) -> bool:
        return self._synced.is_set()

    def problem(self) -> str | None:
        """Why this source is not ready (None: it is)."""
        if not self.synced():
            return "configuration not loaded yet"
        return f"config file {self.path} not found" if self._stamp == ("absent",) else None

    def warn(self, reason: str, message: str) -> None:
        """No object to put an Event on: the controller's log line is the report."""

    def alive(self) -> bool:
        """The reload thread runs (or has not been started yet)."""
        return self._thread is None or self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self._poll()

    def _poll(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._stamp != ("absent",):
                first = self._stamp is None
                self._stamp = ("absent",)
                self.cleared(self.path, absent=first)
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            with open(self.path, "rb") as f:
                text = f.read()
        except OSError as err:
            log.error("Failed to read config file", err=err, path=self.path)
            return
        self.accept(text, self.path)
