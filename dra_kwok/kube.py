"""The one place dra-kwok builds its Kubernetes client and sends raw JSON requests.

Why: the official client (37.x) does configuration, auth, TLS and connection pooling well, so we use it; but its
generated methods validate request bodies into pydantic models and decode every response into them, which on the
hot path (thousands of slice writes) costs more than the HTTP round trip, and it sends requests with no timeout at
all unless each call passes one. So writes go through `Rest`, which uses the client's own `param_serialize` and
`call_api` with JSON dicts in and out, a default (connect, read) timeout on every request, `fieldManager=dra-kwok`
so managedFields name us, and a per-request counter (`rest_client_requests_total`, client-go's name).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from dra_kwok import __version__

FIELD_MANAGER = "dra-kwok"
DEFAULT_TIMEOUT = (5.0, 30.0)

RequestObserver = Callable[[str, str, int], None]  # (method, resource, code)


def new_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """From `--kubeconfig`, else the in-cluster service account (a pod), else ~/.kube/config / $KUBECONFIG.

    Every request of this client that does not pass its own `_request_timeout` (the client's default is none at
    all, so a dead connection hangs forever) gets DEFAULT_TIMEOUT; this covers the generated API and LeaseLock."""
    if kubeconfig:
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        api = client.ApiClient(cfg)
    else:
        api = config.new_client_from_config(context=context)
    api.user_agent = f"dra-kwok/{__version__}"
    request = api.rest_client.request

    def request_with_timeout(method, url, headers=None, body=None, post_params=None, _request_timeout=None):
        return request(method, url, headers=headers, body=body, post_params=post_params,
                       _request_timeout=_request_timeout or DEFAULT_TIMEOUT)

    api.rest_client.request = request_with_timeout
    return api


class Rest:
    """Raw JSON calls against one ApiClient: `get/post/put/delete(path, body) -> dict`, raising ApiException."""

    def __init__(self, api: client.ApiClient, observe: RequestObserver | None = None, timeout=DEFAULT_TIMEOUT):
        self.api = api
        self._observe = observe or (lambda method, resource, code: None)
        self._timeout = timeout

    def request(self, method: str, path: str, body: Any = None, query: dict | None = None, timeout=None) -> dict:
        query = dict(query or {})
        if method in ("POST", "PUT", "PATCH"):
            query.setdefault("fieldManager", FIELD_MANAGER)
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = (
                "application/strategic-merge-patch+json" if method == "PATCH" else "application/json"
            )
        # The body is left out of param_serialize: its sanitize_for_serialization walks every value of what is
        # already plain JSON (1.3 ms a slice, measured); the REST client json.dumps it once.
        method, url, header_params, _, _ = self.api.param_serialize(
            method,
            path,
            query_params=list(query.items()) or None,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        resource = _resource_of(path)
        try:
            resp = self.api.rest_client.request(method, url, headers=header_params, body=body,
                                                _request_timeout=timeout or self._timeout)
            resp.read()
        except ApiException as err:
            self._observe(method, resource, err.status or 0)
            raise
        except Exception:
            self._observe(method, resource, 0)
            raise
        self._observe(method, resource, resp.status)
        if not 200 <= resp.status <= 299:
            raise ApiException(http_resp=resp)
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


def _resource_of(path: str) -> str:
    parts = [p for p in path.split("?")[0].split("/") if p]
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        return parts[parts.index("namespaces") + 2]
    core = parts[2:] if parts[:1] == ["api"] else parts[3:]
    return core[0] if core else "/".join(parts)


SLICES_PATH = "/apis/resource.k8s.io/v1/resourceslices"
