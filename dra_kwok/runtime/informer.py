"""A list-watch cache (client-go's reflector + indexer + event handlers), on the official client's transport.

Why not `kubernetes.informer.SharedInformer` (client 37.x)? It was read and tried; for a controller that must never
hang and never poll it falls short in ways that cannot be fixed from outside:
- its watch has no client-side read timeout, so a connection that stops without a close hangs the thread forever;
- it has no "synced" signal, so a controller cannot wait for its cache before the first reconcile;
- its periodic resync re-LISTs from the apiserver, which is exactly the idle cost dra-kwok promises not to pay;
- it decodes every object into the client's pydantic models (~10x the cost of `json.loads`, see README), and
  `Watch.stream(deserialize=False)` raises KeyError on the ERROR event a 410 Gone arrives as.
So this module keeps the client for everything it is good at (configuration, auth, TLS, the generated `list_*`
methods and their `watch=True` streaming, `iter_resp_lines`) and adds: raw-JSON list and watch
(`_preload_content=False`), server-side `timeoutSeconds` plus a client-side read timeout on every request,
bookmarks, re-list on 410 Gone, exponential reconnect backoff, a `synced` event, a `transform` that keeps only the
fields the controller reads (client-go's SetTransform), and handlers called with (old, new).
"""

from __future__ import annotations

import builtins
import json
import random
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Generic, TypeVar

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from dra_kwok.runtime.errors import Gone, api_error
from dra_kwok.runtime.log import get_logger

T = TypeVar("T")

log = get_logger("informer")
PAGE_SIZE = 500  # client-go's reflector pages LISTs by 500 items; ours also caps a page's bytes (below)
FIRST_PAGE = 100  # before the first page has shown how large this resource's objects are
PAGE_BYTES = 2 << 20  # raw JSON per page aimed at: decoded, ~10x that is held until the page is transformed


def next_page_size(limit: int, items: int, nbytes: int) -> int:
    """The next LIST page's `limit`, from the last page's item count and raw size: as many items as fit PAGE_BYTES
    at the last page's bytes per item, between 1 and PAGE_SIZE. Why not client-go's fixed 500: a Python dict holds
    ~10x its JSON, and 500 of the largest slices (a DynamicMIG GPU's, 16 KB each) made one page ~80 MiB of objects,
    the restart peak of the whole driver (242 MiB RSS on 300 such nodes against the Deployment's 256Mi)."""
    if items <= 0 or nbytes <= 0:
        return limit
    return max(1, min(PAGE_SIZE, PAGE_BYTES * items // nbytes))


class EventHandler(Generic[T]):
    """Override what you need; each is called on the informer thread after the cache is updated."""

    def on_add(self, obj: T) -> None: ...

    def on_update(self, old: T, new: T) -> None: ...

    def on_delete(self, obj: T) -> None: ...


class Informer(Generic[T]):
    def __init__(
        self,
        name: str,
        list_func: Callable[..., Any],
        transform: Callable[[dict], T],
        handler: EventHandler[T] | None = None,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = 60,
        request_timeout: float = 15.0,
        max_backoff: float = 5.0,  # reconnect: after an outage of any length, watching again within 5 s
        on_request: Callable[[str], None] | None = None,
        index: Callable[[T], str | None] | None = None,
        version: Callable[[T], str | None] | None = None,
    ) -> None:
        self.name = name
        self._list = list_func
        self._transform = transform
        self._handler = handler or EventHandler()
        self._namespace = namespace
        self._selectors = {
            k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v
        }
        self._watch_timeout = watch_timeout
        self._request_timeout = request_timeout
        self._max_backoff = max_backoff
        self._on_request = on_request or (lambda verb: None)
        self._lock = threading.RLock()
        self._items: dict[str, T] = {}
        self._index_fn = index
        self._version = version
        self._tombstones: OrderedDict[str, T] = OrderedDict()  # recently deleted (watch), for _older()
        self._index: dict[str | None, dict[str, T]] = {}
        self._rv: str | None = None
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._resp: Any = None
        self._thread: threading.Thread | None = None
        self.last_progress = time.monotonic()  # last time the loop moved (a response, a line, a retry), for /healthz
        self.connected = False

    # ------------------------------------------------------------------ cache reads
    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> list[T]:
        with self._lock:
            return list(self._items.values())

    def by_index(self, value: str | None) -> builtins.list[T]:  # in this class, `list` names the method above
        """Items whose index function returns `value` (client-go's indexer, with one index)."""
        with self._lock:
            return list(self._index.get(value, {}).values())

    def index_values(self) -> builtins.list[str | None]:
        with self._lock:
            return [v for v, items in self._index.items() if items]

    def _put(self, k: str, obj: T) -> T | None:
        old = self._items.get(k)
        if old is not None:
            self._unindex(k, old)
        self._items[k] = obj
        if self._index_fn is not None:
            self._index.setdefault(self._index_fn(obj), {})[k] = obj
        return old

    def _pop(self, k: str) -> T | None:
        old = self._items.pop(k, None)
        if old is not None:
            self._unindex(k, old)
        return old

    def _unindex(self, k: str, obj: T) -> None:
        if self._index_fn is not None:
            bucket = self._index.get(self._index_fn(obj))
            if bucket is not None:
                bucket.pop(k, None)
                if not bucket:
                    del self._index[self._index_fn(obj)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def mutate(self, raw: dict | None, key: str | None = None) -> None:
        """Record our own successful write before its watch event arrives (client-go's mutation cache), so a
        reconcile that runs again before the event does not act on a stale view. `raw=None` records a delete.
        No handlers fire: our own writes must not enqueue work."""
        with self._lock:
            if raw is None:
                if key is not None:
                    self._pop(key)
                return
            k = meta_key(raw)
            if self._same_version(k, raw):
                return  # its watch event came first and is in the cache already: no second transform
            obj = self._transform(raw)
            if not self._older(self._items.get(k) or self._tombstones.get(k), obj):
                self._put(k, obj)

    def _same_version(self, k: str, raw: dict) -> bool:
        """Does the cache hold this very state already? One resourceVersion is one state of one object, so the
        watch event of our own write and that write's response, whichever comes second, need no transform."""
        if self._version is None:
            return False
        cached = self._items.get(k)
        rv = (raw.get("metadata") or {}).get("resourceVersion")
        return cached is not None and rv is not None and self._version(cached) == rv

    def _older(self, cached: T | None, obj: T) -> bool:
        """Is `obj` older than what the cache holds? Our own write's response can come back after the watch
        already delivered someone else's later change; putting it in the cache then would hide that change for
        good. resourceVersions are etcd revisions, so they compare as integers (as client-go's mutation cache
        does); without a version function nothing is ever older."""
        if cached is None or self._version is None:
            return False
        try:
            return int(self._version(obj) or 0) < int(self._version(cached) or 0)
        except ValueError:
            return False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            try:  # unblock a read in progress
                resp.shutdown() if hasattr(resp, "shutdown") else resp.close()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def started(self) -> bool:
        return self._thread is not None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stuck(self) -> bool:
        """Silent for longer than any of our own timeouts allows: the timeout machinery itself has failed."""
        limit = 2 * self._watch_timeout + 2 * self._request_timeout + self._max_backoff + 10
        return time.monotonic() - self.last_progress > limit

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.last_progress = time.monotonic()
            try:
                if self._rv is None:
                    self._relist()
                self._watch()
                failures = 0
            except ApiException as err:
                if isinstance(err, Gone) or err.status == 410:  # ours typed, or the generated client's
                    log.info("Watch expired, re-listing", informer=self.name, resourceVersion=self._rv)
                    self._rv = None
                    continue
                failures += 1
                self._backoff(failures, err)
            except Exception as err:  # connection refused/reset, read timeout, protocol errors
                failures += 1
                self._backoff(failures, err)

    def _backoff(self, failures: int, err: BaseException) -> None:
        self.connected = False
        if self._stop.is_set():
            return  # the connection was closed by stop(): not a failure
        delay = min(self._max_backoff, 0.2 * 2 ** min(failures - 1, 10)) * (0.5 + random.random() / 2)
        log.info("Watch failed, retrying", informer=self.name, err=_short(err), failures=failures, backoff=f"{delay:.2f}s")
        self._stop.wait(delay)

    # ------------------------------------------------------------------ list / watch
    def _call(self, **kwargs: Any) -> Any:
        if self._namespace is not None:
            kwargs["namespace"] = self._namespace
        return self._list(**self._selectors, **kwargs, _preload_content=False)

    def _relist(self) -> None:
        """LIST in pages (`next_page_size`: at most PAGE_SIZE items, as client-go's reflector, and about PAGE_BYTES),
        transforming each page before the next is read, so the transient memory of a re-list is one page of raw
        JSON, not the whole cluster's."""
        new: dict[str, T] = {}
        token: str | None = None
        limit = FIRST_PAGE
        while True:
            self._on_request("list")
            kwargs: dict[str, Any] = {"limit": limit}
            if token:
                kwargs["_continue"] = token
            resp = self._call(_request_timeout=(5, self._request_timeout * 4), **kwargs)
            try:
                _raise_for_status(resp)
                data = resp.data
                body = json.loads(data)
            finally:
                resp.release_conn()
            items = body.get("items") or []
            limit = next_page_size(limit, len(items), len(data))
            for raw in items:
                new[meta_key(raw)] = self._transform(raw)
            token = (body.get("metadata") or {}).get("continue")
            body.pop("items", None)
            if not token:
                break
        with self._lock:
            old = self._items
            self._items, self._index = {}, {}
            for k, obj in new.items():
                self._put(k, obj)
        self._rv = body["metadata"]["resourceVersion"]
        self.last_progress = time.monotonic()
        self.connected = True
        for k, obj in old.items():
            if k not in new:
                self._notify(self._handler.on_delete, obj)
        for k, obj in new.items():
            prev = old.get(k)
            if prev is None:
                self._notify(self._handler.on_add, obj)
            elif prev != obj:
                self._notify(self._handler.on_update, prev, obj)
        self.synced.set()
        log.v(2).info("Listed", informer=self.name, items=len(new), resourceVersion=self._rv)

    def _watch(self) -> None:
        self._on_request("watch")
        # The server ends the watch after a jittered watch_timeout (as client-go does, so that informers do not
        # reconnect in lockstep); the client gives up when nothing at all arrived for request_timeout beyond that,
        # which is what turns a connection that died without a close into a reconnect instead of a hang.
        server_timeout = int(self._watch_timeout * (1 + random.random()))
        resp = self._call(
            watch=True,
            resource_version=self._rv,
            allow_watch_bookmarks=True,
            timeout_seconds=server_timeout,
            _request_timeout=(5, server_timeout + self._request_timeout),
        )
        self._resp = resp
        try:
            _raise_for_status(resp)
            self.last_progress = time.monotonic()
            self.connected = True
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    return
                self.last_progress = time.monotonic()
                if not line:
                    continue
                self._dispatch(json.loads(line))
        finally:
            self._resp = None
            try:
                resp.close()
                resp.release_conn()
            except Exception:
                pass

    def _dispatch(self, event: dict) -> None:
        kind, raw = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise api_error(int(raw.get("code") or 500), raw)
        rv = (raw.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self._rv = rv or self._rv
            return
        k = meta_key(raw)
        self._rv = rv or self._rv
        if kind != "DELETED":
            with self._lock:
                if self._same_version(k, raw):
                    return  # our own write, recorded by mutate(): nothing changed, nothing to notify
        obj = self._transform(raw)
        with self._lock:
            if kind != "DELETED" and self._older(self._items.get(k), obj):
                return  # our own write, recorded by mutate(), is already newer than this event
            if kind == "DELETED":
                old = self._pop(k)
                self._tombstones[k] = obj
                while len(self._tombstones) > 4096:
                    self._tombstones.popitem(last=False)
            else:
                self._tombstones.pop(k, None)
                old = self._put(k, obj)
        if kind == "DELETED":
            if old is not None:
                self._notify(self._handler.on_delete, obj)
        elif old is None:
            self._notify(self._handler.on_add, obj)
        elif old != obj:
            self._notify(self._handler.on_update, old, obj)

    def _notify(self, fn: Callable[..., None], *args: T) -> None:
        """A handler's bug is logged, never allowed to look like a broken watch (which would re-list forever)."""
        try:
            fn(*args)
        except Exception as err:
            log.error("Event handler failed", err=f"{type(err).__name__}: {err}", informer=self.name)


def meta_key(raw: dict) -> str:
    """client-go's MetaNamespaceKeyFunc: `<namespace>/<name>`, or `<name>` for a cluster-scoped object."""
    meta = raw.get("metadata") or {}
    return f"{meta['namespace']}/{meta.get('name', '')}" if meta.get("namespace") else meta.get("name", "")


def _raise_for_status(resp: Any) -> None:
    """With `_preload_content=False` the client hands back error responses instead of raising."""
    if not 200 <= resp.status <= 299:
        raise api_error(resp.status, resp.data, http_resp=resp)


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]

