"""Fixtures for the real control plane: one etcd + kube-apiserver for the whole run, kube-scheduler,
kube-controller-manager and the KWOK controller started on demand, and helpers every integration test needs.

A test that needs the control plane and cannot get it fails (it is never skipped): missing binaries are an error
that says how to build them.
"""

from __future__ import annotations

import os
import uuid

import pytest

from dra_kwok.testing.controlplane import ControlPlane


@pytest.fixture(scope="session")
def control_plane():
    cp = ControlPlane().start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def scheduler(control_plane: ControlPlane) -> ControlPlane:
    control_plane.start_scheduler()
    return control_plane


@pytest.fixture(scope="session")
def controller_manager(control_plane: ControlPlane) -> ControlPlane:
    control_plane.start_controller_manager()
    return control_plane


@pytest.fixture(scope="session")
def kwok(control_plane: ControlPlane) -> ControlPlane:
    """The real KWOK controller with its default stages: nodes annotated kwok.x-k8s.io/node=fake become Ready and keep
    heartbeating, pods bound to them become Running (dra_kwok/testing/kwok.py makes such nodes). Session-scoped like
    the scheduler: once started it manages every such node of the run (tests/e2e runs last)."""
    control_plane.start_kwok()
    return control_plane


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane):
    client = control_plane.api_client()
    yield client
    client.close()


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so tests sharing one apiserver never see each other's objects."""
    return uuid.uuid4().hex[:6]


@pytest.fixture(autouse=True, scope="session")
def _no_proxy():
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    yield
