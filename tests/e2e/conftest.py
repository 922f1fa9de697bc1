"""Fixtures of the e2e scheduling tests: the real kube-scheduler, kube-controller-manager and KWOK, a `Scenario` per test,
and a report hook that, when a test fails, appends what explains it (pods with their PodScheduled condition, the
namespace's events such as the scheduler's FailedScheduling, claims, slices, the driver's log)."""

from __future__ import annotations

import pytest

from tests.e2e.support import Scenario

_SCENARIO = pytest.StashKey[Scenario]()


@pytest.fixture
def scenario(request, api, scheduler, controller_manager, kwok, unique):
    sc = Scenario(api, scheduler, unique)
    request.node.stash[_SCENARIO] = sc
    try:
        yield sc.setup()
    finally:
        sc.teardown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call") and report.failed:
        sc = item.stash.get(_SCENARIO, None)
        if sc is not None:
            report.sections.append(("e2e: scheduler events, pods, claims and slices", sc.describe()))
