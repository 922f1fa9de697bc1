"""The client's connection pool is sized for the driver's concurrency (no cluster: the pool is built, not used)."""

from __future__ import annotations

import yaml

from dra_kwok.runtime.rest import new_api_client

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "c",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
}


def _maxsize(api) -> int:
    return api.rest_client.pool_manager.connection_pool_kw["maxsize"]


def test_the_pool_keeps_a_connection_per_concurrent_request(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    default = _maxsize(new_api_client(str(path)))
    assert _maxsize(new_api_client(str(path), connections=default + 30)) == default + 30
    assert _maxsize(new_api_client(str(path), connections=1)) == default  # never below the client's own default
    api = new_api_client(str(path), connections=default + 30)
    assert api.configuration.host == "https://127.0.0.1:6443" and api.configuration.api_key == {"BearerToken": "Bearer t"}
