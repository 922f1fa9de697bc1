"""`dra-kwok validate` and the real kube-apiserver agree, case by case, for the Kubernetes version the harness runs
(K8S_VERSION, e.g. 1.34.4 or 1.37.2; its default feature gates).

- Every slice rendered from the project's examples is accepted (server-side dry run).
- Every file of the invalid corpus gets the verdict it declares for that version (``# apiserver-1.<minor>:`` else
  ``# apiserver:``): `valid`: validate accepts it and the apiserver stores every slice exactly as rendered (no field
  dropped); `dropped`: validate accepts it with warnings, and the apiserver stores every slice without exactly the
  fields those warnings name; otherwise validate refuses it and, for each whose rendered slices can be sent,
  `reject`: some slice refused; `accept`: the rule is dra-kwok's own (the scheduler's view) and the apiserver takes
  every slice.
- Hand-written slices using each version-dependent feature: our rules refuse exactly those the apiserver refuses, and
  the fields they warn are dropped are exactly those the apiserver's stored object lacks.
- Random configs (the property test's strategies): when our slice-level rules pass, the apiserver accepts every
  slice; when they fail, the apiserver refuses at least one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from kubernetes.client.exceptions import ApiException

from dra_kwok.accept import validate
from dra_kwok.config import ConfigInvalid, ParseError, load_config
from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.dropped import dropped_fields
from dra_kwok.slices.features import Version
from dra_kwok.slices.plan import same_spec
from dra_kwok.slices.render import SLICES_PATH, NodeInfo, render
from dra_kwok.slices.rules import dropped_warnings, refused_on_create, validate_slice
from dra_kwok.testing.controlplane import ControlPlane, k8s_version
from tests.unit.config.test_properties import configs, good_configs, nodes
from tests.unit.config.test_validation import declared_verdict
from tests.unit.slices.test_rules import CONSUMER, SETS, TAINT, _body, _device, _policy

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus" / "invalid").glob("*.yaml"))
NODE = NodeInfo("kwok-node-1", "4a3b2c1d-0000-4000-8000-000000000001", {"type": "kwok"})
VERSION = Version.parse(k8s_version())
_INDEX, _BRACKETS = re.compile(r"\[\d+\]"), re.compile(r"\[[^\]]+\]")


def dry_run(rest: Rest, body: dict) -> tuple[dict | None, str]:
    """Server-side dry-run create: (the object as it would be stored, or None if refused; the reason)."""
    try:
        return rest.post(SLICES_PATH, body, query={"dryRun": "All"}), ""
    except ApiException as err:
        assert err.status in (400, 422), f"unexpected {err.status}: {err.body}"
        return None, f"{err.status}: {(err.body or '')[:300]}"


def apiserver_accepts(rest: Rest, body: dict) -> tuple[bool, str]:
    stored, reason = dry_run(rest, body)
    return stored is not None, reason


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_slices_are_accepted(api, example):
    rest = Rest(api)
    config = load_config(example.read_bytes(), str(example))
    assert [p for p in validate(config, VERSION) if p.severity == "error"] == []
    labels = {r.key: (r.values or ("x",))[0] for m in config.mappings for t in m.node_selector_terms[:1]
              for r in t.match_expressions}
    pools = render(config, [NodeInfo("kwok-node-1", NODE.uid, labels)], version=VERSION)
    bodies = [s for p in pools for s in p.slices]
    assert bodies, "the example renders nothing for a node matching its selectors"
    for body in bodies:
        assert apiserver_accepts(rest, body) == (True, "")


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_invalid_corpus_verdicts_agree_with_the_apiserver(api, path):
    declared = declared_verdict(path.read_text(errors="replace"), VERSION.minor)
    try:
        config = load_config(path.read_bytes(), str(path))
    except (ParseError, ConfigInvalid):
        assert declared == "n/a"  # refused before anything could be rendered
        return
    errors = [p for p in validate(config, VERSION) if p.severity == "error"]
    assert bool(errors) == (declared not in ("valid", "dropped")), errors
    bodies = [s for p in render(config, [NODE], check=False, version=VERSION) for s in p.slices]
    if declared == "n/a":
        return
    assert bodies, f"{path.name} declares {declared} but renders no slice"
    rest = Rest(api)
    if declared == "reject":
        verdicts = [apiserver_accepts(rest, b) for b in bodies]
        assert not all(ok for ok, _ in verdicts), f"the apiserver accepted every slice of {path.name}"
    elif declared == "valid":  # stored as rendered: nothing dropped, nothing the driver would rewrite
        for body in bodies:
            stored, reason = dry_run(rest, body)
            assert stored is not None, reason
            assert same_spec(body, stored), (body["spec"], stored["spec"])
    elif declared == "dropped":  # stored without exactly the fields our rules warn about
        for body in bodies:
            stored, reason = dry_run(rest, body)
            assert stored is not None, reason
            assert _warned(validate_slice(body, VERSION)) == _really_dropped(body, stored)
        assert _warned(validate_slice(bodies[0], VERSION)), f"{path.name} declares dropped but nothing is"
    else:  # accept: the slices are alike; send the first few and the last
        sample = bodies[:3] + bodies[-1:]
        assert [apiserver_accepts(rest, b) for b in sample] == [(True, "")] * len(sample)


def _warned(problems: list) -> set[str]:
    """The fields our rules say this apiserver drops, as feature-table paths (``devices[].capacity{}.requestPolicy``)."""
    return {_BRACKETS.sub("{}", _INDEX.sub("[]", p.path.removeprefix("spec."))) for p in dropped_warnings(problems)}


def _really_dropped(body: dict, stored: dict) -> set[str]:
    """The fields the apiserver really dropped: what was sent vs what it stored (the driver's own comparison)."""
    return {d.path for d in dropped_fields(body["spec"], stored["spec"])}


def _spec(**spec: object) -> dict:
    body = _body(**spec)
    if body["spec"].get("nodeName") is None:
        body["spec"].pop("nodeName", None)
    return body


# 1.37's NodeDeclaredFeatures admission refuses (403) a slice with nodeAllocatableResources unless every node its
# devices are available on exists and declares DRANodeAllocatableResources in status.declaredFeatures: a slice
# available on no node passes it, so that these cases compare validation only (the 403 has its own test below).
NOWHERE = {"nodeSelectorTerms": [{"matchExpressions": [{"key": "example.com/no-such-label", "operator": "Exists"}]}]}


def _nowhere(**spec: object) -> dict:
    return _spec(nodeName=None, nodeSelector=NOWHERE, **spec)


# Slices using each version-dependent feature (valid and invalid on 1.37; on 1.34 their gated fields are dropped).
_BINDING = {"bindsToNode": True, "bindingConditions": ["a"], "bindingFailureConditions": ["b"]}
SLICE_CASES = {
    "taint": _spec(devices=[_device(taints=[TAINT])]),
    "taint-effect-none": _spec(devices=[_device(taints=[{**TAINT, "effect": "None"}])]),
    "taint-effect-unknown": _spec(devices=[_device(taints=[{**TAINT, "effect": "Evict"}])]),
    "taints-5": _spec(devices=[_device(taints=[{**TAINT, "key": f"example.com/t{i}"} for i in range(5)])]),
    "taints-17": _spec(devices=[_device(taints=[{**TAINT, "key": f"example.com/t{i}"} for i in range(17)])]),
    "taint-key-invalid": _spec(devices=[_device(taints=[{**TAINT, "key": "a/b/c"}])]),
    "65-tainted-devices": _spec(devices=[_device(name=f"d{i}", taints=[TAINT]) for i in range(65)]),
    "128-devices-allow-multiple": _spec(devices=[_device(name=f"d{i}", allowMultipleAllocations=True)
                                                 for i in range(128)]),
    "counters-only": _spec(sharedCounters=SETS, devices=None),
    "consumer-only": _spec(devices=[CONSUMER]),
    "counters-and-consumer": _spec(sharedCounters=SETS, devices=[CONSUMER]),
    "counter-sets-9": _spec(sharedCounters=[{"name": f"s{i}", "counters": {"c": {"value": "1"}}} for i in range(9)],
                            devices=None),
    "counters-33-in-a-set": _spec(sharedCounters=[{"name": "s", "counters": {f"c{i}": {"value": "0"}
                                                                             for i in range(33)}}], devices=None),
    "consumes-3-sets": _spec(devices=[{"name": "p", "consumesCounters": [
        {"counterSet": f"s{i}", "counters": {"c": {"value": "1"}}} for i in range(3)]}]),
    "counter-set-name-invalid": _spec(sharedCounters=[{"name": "a.b", "counters": {"c": {"value": "1"}}}],
                                      devices=None),
    "policy-valid-range": _spec(devices=_policy({"default": "10", "validRange": {"min": "10", "max": "50",
                                                                                 "step": "10"}})),
    "policy-valid-values": _spec(devices=_policy({"default": "10", "validValues": ["10", "20", "100"]})),
    "policy-without-multiple": _spec(devices=_policy({"default": "10"}, multiple=False)),
    "policy-default-off-step": _spec(devices=_policy({"default": "15", "validRange": {"min": "10", "step": "10"}})),
    "policy-values-unsorted": _spec(devices=_policy({"default": "10", "validValues": ["20", "10"]})),
    "policy-value-over-capacity": _spec(devices=_policy({"default": "10", "validValues": ["10", "200"]})),
    "policy-min-over-capacity": _spec(devices=_policy({"default": "200", "validRange": {"min": "200"}})),
    "policy-no-default": _spec(devices=_policy({"validValues": ["10"]})),
    "binding": _spec(devices=[{"name": "d", **_BINDING}]),
    "binds-to-node-only": _spec(devices=[{"name": "d", "bindsToNode": True}]),
    "binding-without-failure": _spec(devices=[{"name": "d", "bindingConditions": ["a"]}]),
    "binding-overlap": _spec(devices=[{"name": "d", "bindingConditions": ["a"], "bindingFailureConditions": ["a"]}]),
    "binding-5": _spec(devices=[{"name": "d", "bindingConditions": list("abcde"), "bindingFailureConditions": ["f"]}]),
    "per-device-node-selection": _spec(nodeName=None, perDeviceNodeSelection=True,
                                       devices=[{"name": "a", "nodeName": "n1"}, {"name": "b", "allNodes": True}]),
    "per-device-missing": _spec(nodeName=None, perDeviceNodeSelection=True, devices=[{"name": "a"}]),
    "device-node-name-without-per-device": _spec(devices=[{"name": "a", "nodeName": "n1"}]),
    "taint-without-effect": _spec(devices=[_device(taints=[{"key": "a"}])]),
    "taint-value-invalid": _spec(devices=[_device(taints=[{**TAINT, "value": "-x"}])]),
    "counter-value-zero": _spec(sharedCounters=[{"name": "s", "counters": {"c": {"value": "0"}}}], devices=None),
    "counter-set-without-counters": _spec(sharedCounters=[{"name": "s", "counters": {}}], devices=None),
    "consumes-same-set-twice": _spec(devices=[{"name": "p", "consumesCounters": [
        {"counterSet": "s", "counters": {"c": {"value": "1"}}}] * 2}]),
    "consumes-33-counters": _spec(devices=[{"name": "p", "consumesCounters": [
        {"counterSet": "s", "counters": {f"c{i}": {"value": "1"} for i in range(33)}}]}]),
    "policy-values-and-range": _spec(devices=_policy({"default": "10", "validValues": ["10"],
                                                      "validRange": {"min": "10"}})),
    "policy-range-max-below-min": _spec(devices=_policy({"default": "10", "validRange": {"min": "10", "max": "5"}})),
    "policy-range-max-off-step": _spec(devices=_policy({"default": "10", "validRange": {"min": "10", "max": "45",
                                                                                        "step": "10"}})),
    "policy-range-step-too-big": _spec(devices=_policy({"default": "10", "validRange": {"min": "10", "step": "95"}})),
    "policy-fractional-range": _spec(devices=_policy({"default": "1", "validRange": {"min": "500m", "max": "10",
                                                                                     "step": "500m"}})),
    "policy-11-values": _spec(devices=_policy({"default": "1", "validValues": [str(i) for i in range(1, 12)]})),
    "binding-invalid-name": _spec(devices=[{"name": "d", "bindingConditions": ["a b"],
                                            "bindingFailureConditions": ["f"]}]),
    "per-device-node-selector": _spec(nodeName=None, perDeviceNodeSelection=True, devices=[{"name": "a", "nodeSelector": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]}}]),
    "per-device-node-selector-two-terms": _spec(nodeName=None, perDeviceNodeSelection=True, devices=[
        {"name": "a", "nodeSelector": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]},
            {"matchExpressions": [{"key": "k", "operator": "Exists"}]}]}}]),
    "per-device-two-selections": _spec(nodeName=None, perDeviceNodeSelection=True,
                                       devices=[{"name": "a", "nodeName": "n1", "allNodes": True}]),
    "list-attribute": _spec(devices=[_device(attributes={"models": {"strings": ["a", "b"]}})]),
    "list-attribute-empty": _spec(devices=[_device(attributes={"n": {"ints": []}})]),
    "list-attribute-and-scalar": _spec(devices=[_device(attributes={"n": {"int": 1, "ints": [1]}})]),
    "65-devices-with-list-attributes": _spec(devices=[_device(name=f"d{i}", attributes={"n": {"ints": [i]}})
                                                      for i in range(65)]),
    # per-device node selection as dra-kwok renders it: cluster-wide, the counters in a slice of their own
    "per-device-counters-slice": _spec(nodeName=None, perDeviceNodeSelection=True, sharedCounters=SETS, devices=None),
    "per-device-node-name-false-all-nodes": _spec(nodeName=None, perDeviceNodeSelection=True,
                                                  devices=[{"name": "a", "allNodes": False}]),
    "per-device-false": _spec(nodeName=None, allNodes=True, perDeviceNodeSelection=False),
    # the 1.37 alphas (gates off by default; on in the gated apiserver of 1.37)
    "partition-type": _spec(partitionTypeAttribute="gpu.example.com/profile",
                            devices=[{**CONSUMER, "attributes": {"profile": {"string": "1g"}}}]),
    "partition-type-with-a-plain-device": _spec(partitionTypeAttribute="example.com/profile", devices=[
        {**CONSUMER, "attributes": {"example.com/profile": {"string": "1g"}}}, _device()]),
    "partition-type-missing-on-device": _spec(partitionTypeAttribute="gpu.example.com/profile", devices=[CONSUMER]),
    "partition-type-not-a-string": _spec(partitionTypeAttribute="gpu.example.com/profile",
                                         devices=[{**CONSUMER, "attributes": {"profile": {"int": 1}}}]),
    "partition-type-without-consumers": _spec(partitionTypeAttribute="gpu.example.com/profile"),
    "partition-type-not-qualified": _spec(partitionTypeAttribute="profile",
                                          devices=[{**CONSUMER, "attributes": {"profile": {"string": "1g"}}}]),
    "skip-node-operations": _spec(skipNodeOperations=["NodePrepareResources", "NodeUnprepareResources"]),
    "skip-node-operations-all": _spec(skipNodeOperations=["*"]),
    "skip-node-operations-prepare-only": _spec(skipNodeOperations=["NodePrepareResources"]),
    "skip-node-operations-unknown": _spec(skipNodeOperations=["NodeUnprepareResources", "Reboot"]),
    "skip-node-operations-twice": _spec(skipNodeOperations=["NodeUnprepareResources", "NodeUnprepareResources"]),
    "compatibility-groups": _spec(devices=[{**CONSUMER, "consumesCounters": [
        {**CONSUMER["consumesCounters"][0], "compatibilityGroups": ["half", "quarter"]}]}]),
    "compatibility-groups-with-counters": _spec(sharedCounters=SETS, devices=[{**CONSUMER, "consumesCounters": [
        {**CONSUMER["consumesCounters"][0], "compatibilityGroups": ["half"]}]}]),
    "compatibility-groups-3": _spec(devices=[{**CONSUMER, "consumesCounters": [
        {**CONSUMER["consumesCounters"][0], "compatibilityGroups": ["a", "b", "c"]}]}]),
    "compatibility-groups-twice": _spec(devices=[{**CONSUMER, "consumesCounters": [
        {**CONSUMER["consumesCounters"][0], "compatibilityGroups": ["a", "a"]}]}]),
    "compatibility-group-invalid": _spec(devices=[{**CONSUMER, "consumesCounters": [
        {**CONSUMER["consumesCounters"][0], "compatibilityGroups": ["A.b"]}]}]),
    "node-allocatable-capacity": _nowhere(devices=[_device(capacity={"cores": {"value": "8"}}, nodeAllocatableResources={
        "cpu": {"mapping": {"capacityKey": "cores", "capacityMultiplier": "2"}}})]),
    "node-allocatable-device-and-overhead": _nowhere(devices=[_device(nodeAllocatableResources={
        "cpu": {"mapping": {"deviceMultiplier": "8"}}, "memory": {"overhead": {"perPod": "1Gi", "perContainer": "0"}},
        "hugepages-2Mi": {"overhead": {"perContainer": "2Mi"}}})]),
    "node-allocatable-ephemeral-storage": _nowhere(devices=[_device(nodeAllocatableResources={
        "ephemeral-storage": {"overhead": {"perPod": "1Gi"}}})]),
    "node-allocatable-extended": _nowhere(devices=[_device(nodeAllocatableResources={
        "example.com/gpu": {"mapping": {"deviceMultiplier": "1"}}})]),
    "node-allocatable-empty": _nowhere(devices=[_device(nodeAllocatableResources={"cpu": {}})]),
    "node-allocatable-unknown-capacity": _nowhere(devices=[_device(nodeAllocatableResources={
        "cpu": {"mapping": {"capacityKey": "cores", "capacityMultiplier": "1"}}})]),
    "node-allocatable-key-without-multiplier": _nowhere(devices=[_device(nodeAllocatableResources={
        "memory": {"mapping": {"capacityKey": "memory"}}})]),
    "node-allocatable-both-forms": _nowhere(devices=[_device(nodeAllocatableResources={
        "memory": {"mapping": {"capacityKey": "memory", "capacityMultiplier": "1", "deviceMultiplier": "1"}}})]),
    "node-allocatable-mapping-empty": _nowhere(devices=[_device(nodeAllocatableResources={"cpu": {"mapping": {}}})]),
    "node-allocatable-zero-multiplier": _nowhere(devices=[_device(nodeAllocatableResources={
        "cpu": {"mapping": {"deviceMultiplier": "0"}}})]),
    "node-allocatable-negative-overhead": _nowhere(devices=[_device(nodeAllocatableResources={
        "memory": {"overhead": {"perPod": "-1Gi"}}})]),
    "node-allocatable-overhead-empty": _nowhere(devices=[_device(nodeAllocatableResources={"memory": {"overhead": {}}})]),
}

# The same cases on an apiserver started with --feature-gates: on 1.34/1.35 every slice feature turned on, on 1.36+
# the list-type attributes and node allocatable resources on and consumable capacity off, on 1.37 also every alpha.
ALPHAS_137 = {"DRAPartitionableDevicesType": True, "DRAResourcePoolStatus": True, "DRADeviceCompatibilityGroups": True,
              "DRAOptionalNodeOperations": True}
GATES = ({"DRADeviceTaints": True, "DRAPartitionableDevices": True, "DRAConsumableCapacity": True,
          "DRADeviceBindingConditions": True} if VERSION.minor < 36 else
         {"DRAListTypeAttributes": True, "DRAConsumableCapacity": False, "DRANodeAllocatableResources": True,
          **(ALPHAS_137 if VERSION.minor >= 37 else {})})
GATED = Version(VERSION.minor, GATES)


@pytest.fixture(scope="module")
def gated_api():
    flag = ",".join(f"{k}={str(v).lower()}" for k, v in GATES.items())
    cp = ControlPlane(extra_apiserver_args=[f"--feature-gates={flag}"]).start()
    try:
        client = cp.api_client()
        yield client
        client.close()
    finally:
        cp.stop()


def _agree(api, version: Version, body: dict) -> None:
    ours = [e for e in validate_slice(body, version) if e.severity == "error"]
    stored, reason = dry_run(Rest(api), body)
    refused = refused_on_create(ours)
    assert (stored is None) == bool(refused), (
        f"on {version}: ours {[str(e) for e in ours]}; apiserver: {reason or 'accepted'}")
    if stored is not None:
        # where we warn "dropped", the apiserver stored the slice without exactly those fields; else as sent
        warned = _warned(validate_slice(body, version))
        assert warned == _really_dropped(body, stored), (ours, body["spec"], stored["spec"])
        assert same_spec(body, stored) == (not warned), (ours, body["spec"], stored["spec"])


@pytest.mark.parametrize("name", sorted(SLICE_CASES))
def test_version_dependent_slice_rules_agree_with_the_apiserver(api, name):
    _agree(api, VERSION, SLICE_CASES[name])


@pytest.mark.parametrize("name", sorted(SLICE_CASES))
def test_slice_rules_agree_with_an_apiserver_started_with_feature_gates(gated_api, name):
    _agree(gated_api, GATED, SLICE_CASES[name])


def test_node_allocatable_resources_need_a_node_that_declares_the_feature(gated_api):
    """The NodeDeclaredFeatures admission plugin (1.37): on a node-local slice for a node that does not exist (or
    does not declare DRANodeAllocatableResources) the apiserver answers 403; on 1.34 the field is unknown and
    dropped, and the slice is stored."""
    body = SLICE_CASES["node-allocatable-device-and-overhead"]
    body = {**body, "spec": {**body["spec"], "nodeName": "n1"}}
    del body["spec"]["nodeSelector"]
    if GATED.on("DRANodeAllocatableResources") and GATED.minor >= 37:
        with pytest.raises(ApiException) as refused:
            Rest(gated_api).post(SLICES_PATH, body, query={"dryRun": "All"})
        assert refused.value.status == 403 and 'node \\"n1\\" not found for device' in refused.value.body
    else:
        stored, reason = dry_run(Rest(gated_api), body)
        assert stored is not None, reason
        assert "nodeAllocatableResources" not in stored["spec"]["devices"][0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(st_config=good_configs() | configs, cluster=nodes)
def test_random_configs_our_slice_rules_match_the_apiserver(api, st_config, cluster):
    rest = Rest(api)
    try:
        pools = render(st_config, cluster, check=False)
    except ConfigInvalid:
        return  # hard limits (too many devices); nothing to send
    for body in [s for p in pools for s in p.slices][:4]:
        ours = refused_on_create(validate_slice(body, VERSION))
        accepted, reason = apiserver_accepts(rest, body)
        assert accepted == (not ours), (
            f"disagreement on\n{yaml.safe_dump(body)}\nours: {[str(e) for e in ours]}\napiserver: {reason}")


def test_the_harness_runs_the_version_the_verdicts_are_for(api):
    info = Rest(api).get("/version")
    assert (info["major"], info["minor"].rstrip("+")) == ("1", str(VERSION.minor)), info
