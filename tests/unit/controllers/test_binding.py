"""The binding controller's pure decisions: which allocation results are ours, when, and what status to write."""

from __future__ import annotations

import pytest

from dra_kwok.accept import validate
from dra_kwok.config import load_config
from dra_kwok.controllers.binding import REASON_FAILED, REASON_READY, Rule, claim_transform, plan_claim, rules_of
from dra_kwok.slices.features import Version

DRIVER = "gpu.example.com"
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
STAMP = "2023-11-14T22:13:20Z"
READY = Rule("m", DRIVER, "fabric", False, frozenset({"gpu-0", "gpu-1"}), 3.0, "ready")
FAIL = Rule("m", DRIVER, "fabric", False, frozenset({"gpu-0", "gpu-1"}), 3.0, "fail")


def _ours(driver: str, pool: str) -> bool:
    return pool.startswith("node-a/")


def _result(device="gpu-0", pool="node-a/fabric", driver=DRIVER, **extra) -> dict:
    return {"request": "r", "driver": driver, "pool": pool, "device": device, "bindingConditions": ["x.io/ok"],
            "bindingFailureConditions": ["x.io/bad", "x.io/worse"], **extra}


def _status(*results: dict, devices: list | None = None, stamp: str | None = STAMP) -> dict:
    allocation: dict = {"devices": {"results": list(results)}}
    if stamp:
        allocation["allocationTimestamp"] = stamp
    return {"allocation": allocation, **({"devices": devices} if devices is not None else {})}


CONFIG = """
driver: gpu.example.com
mappings:
  - name: m
    nodeSelectorTerms: [{matchExpressions: [{key: t, operator: In, values: [k]}]}]
    bindingSimulation: {delay: 1m30s, outcome: fail}
    resourceSlice:
      pool: {name: fabric}
      devices:
        - {name: gpu, count: 2, attributes: {a: {int: 1}}, bindingConditions: [x.io/ok], bindingFailureConditions: [x.io/bad]}
        - {name: plain, attributes: {a: {int: 1}}}
  - name: other
    nodeSelectorTerms: [{matchExpressions: [{key: t, operator: In, values: [k]}]}]
    resourceSlice:
      driver: other.example.com
      pool: {name: other}
      devices: [{name: d, attributes: {a: {int: 1}}}]
"""


def test_rules_of_a_config_name_the_devices_with_binding_conditions():
    assert rules_of(load_config(CONFIG, "t")) == [
        Rule("m", DRIVER, "fabric", False, frozenset({"gpu-0", "gpu-1"}), 90.0, "fail")]


def test_rule_matches_node_local_and_cluster_wide_pools():
    assert READY.matches(DRIVER, "node-a/fabric", "gpu-1")
    assert not READY.matches(DRIVER, "node-a/fabric", "plain")
    assert not READY.matches(DRIVER, "node-a/fabric-b", "gpu-0")
    assert not READY.matches("x" + DRIVER, "node-a/fabric", "gpu-0")
    wide = Rule("m", DRIVER, "fabric", True, frozenset({"gpu-0"}), 0.0, "ready")
    assert wide.matches(DRIVER, "fabric", "gpu-0") and not wide.matches(DRIVER, "n/fabric", "gpu-0")


def test_before_the_delay_nothing_is_written_and_the_claim_is_looked_at_when_it_ends():
    plan = plan_claim(_status(_result()), [READY], _ours, now=T0 + 1)
    assert plan.status is None and plan.wait == pytest.approx(2.0)


def test_after_the_delay_ready_sets_every_binding_condition_true():
    status = _status(_result(bindingConditions=["x.io/ok", "x.io/also"]))
    plan = plan_claim(status, [READY], _ours, now=T0 + 3)
    assert plan.wait is None
    [entry] = plan.status["devices"]
    assert (entry["driver"], entry["pool"], entry["device"]) == (DRIVER, "node-a/fabric", "gpu-0")
    assert [(c["type"], c["status"], c["reason"]) for c in entry["conditions"]] == [
        ("x.io/ok", "True", REASON_READY), ("x.io/also", "True", REASON_READY)]
    assert entry["conditions"][0]["lastTransitionTime"] == "2023-11-14T22:13:23Z"
    assert plan.status["allocation"] == status["allocation"]


def test_fail_sets_only_the_first_failure_condition():
    plan = plan_claim(_status(_result()), [FAIL], _ours, now=T0 + 10)
    [entry] = plan.status["devices"]
    assert [(c["type"], c["reason"]) for c in entry["conditions"]] == [("x.io/bad", REASON_FAILED)]


def test_a_claim_already_as_wanted_costs_no_write():
    done = plan_claim(_status(_result()), [READY], _ours, now=T0 + 3).status
    again = plan_claim(done, [READY], _ours, now=T0 + 100)
    assert again.status is None and again.wait is None


def test_not_ours_is_never_touched_and_others_entries_are_kept():
    foreign = {"driver": "net.example.com", "pool": "p", "device": "nic", "data": {"k": 1}}
    status = _status(_result(pool="node-b/fabric"), _result(driver="net.example.com", pool="p", device="nic"),
                     _result(device="gpu-1", bindingConditions=None), _result(device="gpu-0"),
                     devices=[foreign])
    plan = plan_claim(status, [READY], _ours, now=T0 + 5)
    devices = plan.status["devices"]
    assert devices[0] == foreign
    assert [(d["pool"], d["device"]) for d in devices[1:]] == [("node-a/fabric", "gpu-0")]
    assert plan_claim(_status(_result(pool="node-b/fabric")), [READY], _ours, now=T0 + 5).status is None


def test_an_existing_entry_of_ours_keeps_its_other_fields_and_a_shared_device_its_share_id():
    mine = {"driver": DRIVER, "pool": "node-a/fabric", "device": "gpu-0", "shareID": "s1", "data": {"k": 1},
            "conditions": [{"type": "x.io/other", "status": "False"}]}
    plan = plan_claim(_status(_result(shareID="s1"), devices=[mine]), [READY], _ours, now=T0 + 3)
    [entry] = plan.status["devices"]
    assert entry["data"] == {"k": 1} and entry["shareID"] == "s1"
    assert [c["type"] for c in entry["conditions"]] == ["x.io/other", "x.io/ok"]


def test_without_allocation_timestamp_the_delay_counts_from_first_seen():
    status = _status(_result(), stamp=None)
    assert plan_claim(status, [READY], _ours, now=T0 + 2, allocated_at=T0).wait == pytest.approx(1.0)
    assert plan_claim(status, [READY], _ours, now=T0 + 3, allocated_at=T0).status is not None


def test_transform_keeps_status_only_of_claims_waiting_on_binding_conditions():
    raw = {"metadata": {"name": "c", "namespace": "n", "uid": "u", "resourceVersion": "7", "managedFields": []},
           "spec": {"devices": {}}, "status": _status(_result())}
    assert claim_transform(raw) == {"metadata": {"name": "c", "namespace": "n", "uid": "u", "resourceVersion": "7"},
                                    "status": raw["status"]}
    raw["status"] = _status(_result(bindingConditions=None))
    assert "status" not in claim_transform(raw)


@pytest.mark.parametrize("edit, path, words", [
    ("delay: 1m30s", "mappings[0].bindingSimulation.delay", "soon"),
    ("outcome: fail", "mappings[0].bindingSimulation.outcome", "maybe"),
])
def test_config_errors_name_the_field(edit, path, words):
    text = CONFIG.replace(edit, edit.split(":")[0] + ": " + words)
    problems = [p for p in validate(load_config(text, "t")) if p.severity == "error"]
    assert [p.path for p in problems] == [path], problems


def test_fail_needs_failure_conditions_and_the_option_needs_binding_conditions():
    text = CONFIG.replace(", bindingFailureConditions: [x.io/bad]", "")
    problems = [p for p in validate(load_config(text, "t")) if p.severity == "error"]
    assert "mappings[0].resourceSlice.devices[0].bindingFailureConditions" in [p.path for p in problems]
    text = CONFIG.replace(", bindingConditions: [x.io/ok], bindingFailureConditions: [x.io/bad]", "")
    problems = [p for p in validate(load_config(text, "t")) if p.severity == "error"]
    assert [p.path for p in problems] == ["mappings[0].bindingSimulation"]
    assert "no device of this mapping has bindingConditions" in problems[0].message


def test_refused_on_a_version_without_the_binding_gates_naming_the_gate():
    problems = [p for p in validate(load_config(CONFIG, "t"), Version.parse("1.35")) if p.severity == "error"]
    assert problems[0].path == "mappings[0].bindingSimulation"
    assert "DRADeviceBindingConditions" in problems[0].message
    assert not [p for p in validate(load_config(CONFIG, "t"), Version.parse("1.36")) if p.severity == "error"]
