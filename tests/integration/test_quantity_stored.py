"""The capacity values dra-kwok sends are the ones kube-apiserver stores, byte for byte.

Every row of the by-value table in tests/unit/config/test_quantity.py (ordinary values, values beyond int64,
apimachinery's quirks) is created for real in a ResourceSlice and read back from etcd. The written form must be
stored as the table says (so the table, which the unit test checks against ``canonical_quantity``, is the
apiserver's), and our canonical form must be stored unchanged (so desired == stored: no rewrite loop).
"""

from __future__ import annotations

from dra_kwok.config.quantity import canonical_quantity
from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.render import SLICES_PATH
from tests.unit.config.test_quantity import STORED

PER_SLICE = 100  # devices per slice (the apiserver allows 128)


def _slice(name: str, driver: str, values: list[str]) -> dict:
    return {
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name},
        "spec": {"driver": driver, "allNodes": True, "pool": {"name": name, "generation": 0, "resourceSliceCount": 1},
                 "devices": [{"name": f"d{i}", "capacity": {"size": {"value": v}}} for i, v in enumerate(values)]},
    }


def _stored(rest: Rest, name: str, driver: str, values: list[str]) -> list[str]:
    rest.post(SLICES_PATH, _slice(name, driver, values))
    try:
        got = rest.get(f"{SLICES_PATH}/{name}")  # read back from etcd, not the create's echo
    finally:
        rest.delete(f"{SLICES_PATH}/{name}")
    return [d["capacity"]["size"]["value"] for d in got["spec"]["devices"]]


def test_the_apiserver_stores_what_canonical_quantity_says(api, unique):
    rest, driver = Rest(api), f"q-{unique}.example.com"
    written = [w for w, _ in STORED]
    assert len(written) <= PER_SLICE
    stored = _stored(rest, f"q-written-{unique}", driver, written)
    assert {w: s for w, s in zip(written, stored, strict=True)} == dict(STORED)
    ours = [canonical_quantity(w) for w in written]
    assert _stored(rest, f"q-canonical-{unique}", driver, ours) == ours
