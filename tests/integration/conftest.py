"""Fixtures of the integration tests: a private namespace / driver name / label per test."""

from __future__ import annotations

import pytest

from tests.integration.driver import TestEnv


@pytest.fixture
def env(api, control_plane, unique):
    e = TestEnv(api, control_plane, unique)
    yield e
    e.cleanup()
