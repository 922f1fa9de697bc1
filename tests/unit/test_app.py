"""What the app makes of the cluster's version (given with --kubernetes-version; /version is the integration tests')."""

from __future__ import annotations

import pytest

from dra_kwok.app import cluster_version


@pytest.mark.parametrize("given, minor", [("1.34", 34), ("v1.37.2", 37), ("1.38", 37), ("v1.39.0-rc.1+abc", 37)])
def test_a_version_dra_kwok_knows_or_a_newer_one_is_driven_with_its_rules(given: str, minor: int) -> None:
    assert cluster_version(None, given, "").minor == minor  # type: ignore[arg-type]  # no request is made


@pytest.mark.parametrize("given, gates, message", [
    ("1.33", "", "has no resource.k8s.io/v1: dra-kwok needs 1.34 or later"),
    ("137", "", "not a Kubernetes version like 1.37"),
    ("1.37", "Bogus=true", "unrecognized feature gate 'Bogus'"),
])
def test_flags_that_cannot_be_are_refused_before_any_request(given: str, gates: str, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        cluster_version(None, given, gates)  # type: ignore[arg-type]


def test_feature_gates_are_applied_to_the_version() -> None:
    version = cluster_version(None, "1.34", "DRADeviceTaints=true")  # type: ignore[arg-type]
    assert version.on("DRADeviceTaints") and not cluster_version(None, "1.34", "").on("DRADeviceTaints")  # type: ignore[arg-type]
