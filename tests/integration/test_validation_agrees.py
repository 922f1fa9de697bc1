"""`dra-kwok validate` and the real kube-apiserver agree, case by case, for the Kubernetes version the harness runs
(K8S_VERSION, e.g. 1.34.4 or 1.37.2; its default feature gates).

- Every slice rendered from the project's examples is accepted (server-side dry run).
- Every file of the invalid corpus gets the verdict it declares for that version (``# apiserver-1.<minor>:`` else
  ``# apiserver:``): `valid`: validate accepts it and the apiserver stores every slice exactly as rendered (no field
  dropped); otherwise validate refuses it and, for each whose rendered slices can be sent, `reject`: some slice
  refused; `accept`: the rule is dra-kwok's own (the scheduler's view, or a field this apiserver drops) and the
  apiserver takes every slice.
- Hand-written slices using each version-dependent feature: our rules refuse exactly those the apiserver refuses, and
  where they say a field is dropped, the apiserver's stored object lacks it.
- Random configs (the property test's strategies): when our slice-level rules pass, the apiserver accepts every
  slice; when they fail, the apiserver refuses at least one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from kubernetes.client.exceptions import ApiException

from dra_kwok.accept import validate
from dra_kwok.config import ConfigInvalid, ParseError, load_config
from dra_kwok.runtime.rest import Rest
from dra_kwok.slices.features import Version
from dra_kwok.slices.plan import same_spec
from dra_kwok.slices.render import SLICES_PATH, NodeInfo, render
from dra_kwok.slices.rules import DROPPED, refused_on_create, validate_slice
from dra_kwok.testing.controlplane import ControlPlane, k8s_version
from tests.unit.config.test_properties import configs, good_configs, nodes
from tests.unit.config.test_validation import declared_verdict
from tests.unit.slices.test_rules import CONSUMER, SETS, TAINT, _body, _device, _policy

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus" / "invalid").glob("*.yaml"))
NODE = NodeInfo("kwok-node-1", "4a3b2c1d-0000-4000-8000-000000000001", {"type": "kwok"})
VERSION = Version.parse(k8s_version())


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
    assert bool(errors) == (declared != "valid"), errors
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
    else:  # accept: the slices are alike; send the first few and the last
        sample = bodies[:3] + bodies[-1:]
        assert [apiserver_accepts(rest, b) for b in sample] == [(True, "")] * len(sample)


def _spec(**spec: object) -> dict:
    body = _body(**spec)
    if body["spec"].get("nodeName") is None:
        body["spec"].pop("nodeName", None)
    return body


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
}

# The same cases on an apiserver started with --feature-gates: on 1.34/1.35 every slice feature turned on, on 1.36+
# the list-type attributes on and consumable capacity off.
GATES = ({"DRADeviceTaints": True, "DRAPartitionableDevices": True, "DRAConsumableCapacity": True,
          "DRADeviceBindingConditions": True} if VERSION.minor < 36 else
         {"DRAListTypeAttributes": True, "DRAConsumableCapacity": False})
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
        dropped = [e for e in ours if e.message.startswith(DROPPED)]
        # where we say "dropped", the stored object differs from what was sent; where we say nothing, it does not
        assert same_spec(body, stored) == (not dropped), (ours, body["spec"], stored["spec"])


@pytest.mark.parametrize("name", sorted(SLICE_CASES))
def test_version_dependent_slice_rules_agree_with_the_apiserver(api, name):
    _agree(api, VERSION, SLICE_CASES[name])


@pytest.mark.parametrize("name", sorted(SLICE_CASES))
def test_slice_rules_agree_with_an_apiserver_started_with_feature_gates(gated_api, name):
    _agree(gated_api, GATED, SLICE_CASES[name])


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
