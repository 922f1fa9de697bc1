"""`dra-kwok validate` and the real kube-apiserver agree, case by case.

- Every slice rendered from the project's examples is accepted (server-side dry run).
- Every file of the invalid corpus is refused by `validate`; for each whose rendered slices can be sent, the apiserver
  gives exactly the verdict the file declares (`reject`: some slice refused; `accept`: the rule is dra-kwok's own,
  about the scheduler's view, and the apiserver takes every slice).
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
from dra_kwok.slices.render import SLICES_PATH, NodeInfo, render
from dra_kwok.slices.rules import validate_slice
from tests.unit.config.test_properties import configs, good_configs, nodes

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus" / "invalid").glob("*.yaml"))
NODE = NodeInfo("kwok-node-1", "4a3b2c1d-0000-4000-8000-000000000001", {"type": "kwok"})


def apiserver_accepts(rest: Rest, body: dict) -> tuple[bool, str]:
    """Server-side dry-run create: (accepted, reason)."""
    try:
        rest.post(SLICES_PATH, body, query={"dryRun": "All"})
        return True, ""
    except ApiException as err:
        assert err.status in (400, 422), f"unexpected {err.status}: {err.body}"
        return False, f"{err.status}: {(err.body or '')[:300]}"


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_slices_are_accepted(api, example):
    rest = Rest(api)
    config = load_config(example.read_bytes(), str(example))
    assert [p for p in validate(config) if p.severity == "error"] == []
    labels = {r.key: (r.values or ("x",))[0] for m in config.mappings for t in m.node_selector_terms[:1]
              for r in t.match_expressions}
    pools = render(config, [NodeInfo("kwok-node-1", NODE.uid, labels)])
    bodies = [s for p in pools for s in p.slices]
    assert bodies, "the example renders nothing for a node matching its selectors"
    for body in bodies:
        assert apiserver_accepts(rest, body) == (True, "")


def _declared(path: Path) -> str:
    match = re.search(r"^# apiserver: (reject|accept|n/a)", path.read_text(errors="replace"), re.M)
    assert match, f"{path.name} declares no apiserver verdict"
    return match.group(1)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_invalid_corpus_verdicts_agree_with_the_apiserver(api, path):
    declared = _declared(path)
    try:
        config = load_config(path.read_bytes(), str(path))
    except (ParseError, ConfigInvalid):
        assert declared == "n/a"  # refused before anything could be rendered
        return
    assert [p for p in validate(config) if p.severity == "error"], "validate must refuse every corpus file"
    bodies = [s for p in render(config, [NODE], check=False) for s in p.slices]
    if declared == "n/a":
        return
    assert bodies, f"{path.name} declares {declared} but renders no slice"
    rest = Rest(api)
    if declared == "reject":
        verdicts = [apiserver_accepts(rest, b) for b in bodies]
        assert not all(ok for ok, _ in verdicts), f"the apiserver accepted every slice of {path.name}"
    else:  # accept: the slices are alike; send the first few and the last
        sample = bodies[:3] + bodies[-1:]
        assert [apiserver_accepts(rest, b) for b in sample] == [(True, "")] * len(sample)


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
        ours = [e for e in validate_slice(body) if e.severity == "error"]
        accepted, reason = apiserver_accepts(rest, body)
        assert accepted == (not ours), (
            f"disagreement on\n{yaml.safe_dump(body)}\nours: {[str(e) for e in ours]}\napiserver: {reason}")
