"""The one place dra-kwok builds its Kubernetes client and sends raw JSON requests.

Why: the official client (37.x) does configuration, auth, TLS and connection pooling well, so we use it; but its
generated methods validate request bodies into pydantic models and decode every response into them, which on the
hot path (thousands of slice writes) costs more than the HTTP round trip, and it sends requests with no timeout at
all unless each call passes one. So writes go through `Rest`: JSON dicts in and out over the client's own
connection pool and auth, a default (connect, read) timeout on every request, `fieldManager=dra-kwok` so
managedFields name us, and a per-request counter (`rest_client_requests_total`, client-go's name).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Callable
from urllib.parse import urlencode

import urllib3
from kubernetes import client, config

from dra_kwok import __version__
from dra_kwok.runtime.errors import api_error

FIELD_MANAGER = "dra-kwok"
DEFAULT_TIMEOUT = (5.0, 30.0)

RequestObserver = Callable[[str, str, int], None]  # (method, resource, code)


def new_api_client(kubeconfig: str | None = None, context: str | None = None,
                   connections: int | None = None) -> client.ApiClient:
    """From `--kubeconfig`, else the in-cluster service account (a pod), else ~/.kube/config / $KUBECONFIG.

    Every request of this client that does not pass its own `_request_timeout` (the client's default is none at
    all, so a dead connection hangs forever) gets DEFAULT_TIMEOUT; this covers the generated API and LeaseLock.

    `connections`: how many connections the pool keeps open to the apiserver. The client's default is 5 per CPU
    (10 on a 2-core laptop); every watch holds one, so with more concurrent requests than that, urllib3 opens a
    new connection (a TLS handshake, on both ends) for each request over the limit and throws it away after."""
    cfg = type.__call__(client.Configuration)  # not a copy of the process-wide default configuration
    if connections:
        cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize, connections)
    if kubeconfig:
        api = config.new_client_from_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
        api = client.ApiClient(cfg)
    else:
        api = config.new_client_from_config(context=context, client_configuration=cfg)
    api.user_agent = f"dra-kwok/{__version__}"
    request = api.rest_client.request

    def request_with_timeout(method, url, headers=None, body=None, post_params=None, _request_timeout=None):
        return request(method, url, headers=headers, body=body, post_params=post_params,
                       _request_timeout=_request_timeout or DEFAULT_TIMEOUT)

    api.rest_client.request = request_with_timeout
    return api


class Rest:
    """Raw JSON calls against one ApiClient: `get/post/put/delete(path, body) -> dict`, raising a typed :class:`~dra_kwok.runtime.errors.ApiError`.

    It uses the client's configuration, TLS, proxy and connection pool (`rest_client.pool_manager`) and its auth
    settings, and sends bytes it encoded itself. Going through `param_serialize` + `rest_client.request` instead
    (as this class first did) costs ~0.1 ms of CPU per request for nothing (py-spy: 9% of the driver's CPU while
    converging): every call runs the kubeconfig's token refresh hook, whose `host` setter scans `os.environ` for
    proxy variables, and parses the Content-Type with the `email` package. The auth headers are re-read from the
    configuration every AUTH_REFRESH seconds instead (client-go re-reads a service account token file every
    minute)."""

    AUTH_REFRESH = 10.0

    def __init__(self, api: client.ApiClient, observe: RequestObserver | None = None, timeout=DEFAULT_TIMEOUT):
        self.api = api
        self._observe = observe or (lambda method, resource, code: None)
        self._timeout = timeout
        self._auth: tuple[float, dict[str, str]] = (-math.inf, {})

    def _auth_headers(self) -> dict[str, str]:
        refresh_at, headers = self._auth
        now = time.monotonic()
        if now >= refresh_at:
            settings = self.api.configuration.auth_settings()  # runs the token refresh hook, as the client would
            headers = {s["key"]: s["value"] for name, s in settings.items()
                       if name == "BearerToken" and s.get("in") == "header" and s.get("value")}
            self._auth = (now + self.AUTH_REFRESH, headers)
        return headers

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None, timeout=None) -> dict:
        query = dict(query or {})
        if method in ("POST", "PUT", "PATCH"):
            query.setdefault("fieldManager", FIELD_MANAGER)
        url = self.api.configuration.host + path + ("?" + urlencode(query) if query else "")
        headers = {**self.api.default_headers, "Accept": "application/json", **self._auth_headers()}
        data = None
        if body is not None:
            headers["Content-Type"] = (
                "application/strategic-merge-patch+json" if method == "PATCH" else "application/json"
            )
            data = json.dumps(body, separators=(",", ":")).encode()
        connect, read = _pair(timeout or self._timeout)
        resource = _resource_of(path)
        try:
            resp = self.api.rest_client.pool_manager.request(
                method, url, body=data, headers=headers, timeout=urllib3.Timeout(connect=connect, read=read),
            )
        except Exception:
            self._observe(method, resource, 0)
            raise
        self._observe(method, resource, resp.status)
        if not 200 <= resp.status <= 299:
            raise api_error(resp.status, resp.data, http_resp=resp)
        return json.loads(resp.data) if resp.data else {}

    def get(self, path: str, **kw: Any) -> dict:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: dict, **kw: Any) -> dict:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: dict, **kw: Any) -> dict:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: dict, **kw: Any) -> dict:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, body: dict | None = None, **kw: Any) -> dict:
        return self.request("DELETE", path, body, **kw)


def _pair(timeout: float | tuple[float, float]) -> tuple[float, float]:
    return timeout if isinstance(timeout, tuple) else (timeout, timeout)


def _resource_of(path: str) -> str:
    parts = [p for p in path.split("?")[0].split("/") if p]
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        return parts[parts.index("namespaces") + 2]
    core = parts[2:] if parts[:1] == ["api"] else parts[3:]
    return core[0] if core else "/".join(parts)

