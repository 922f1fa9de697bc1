"""The hostile corpus (tests/corpus/hostile/) through a real ConfigMap, against the real apiserver, with the real
driver running: every case that a ConfigMap can hold goes into data["config.yaml"] (or, for the ConfigMap cases,
becomes the ConfigMap's data), then the valid config goes back, one case after another.

Fault injected: a hostile config.yaml (alias bombs, 10,000 levels of nesting, a 1 MB line, python tags, wrong types,
duplicate keys, lone surrogates, control characters, empty or missing config keys...) written to the watched
ConfigMap while the driver serves two nodes. After each one: the driver runs (its thread alive, /healthz 200),
``dra_kwok_config_valid`` is 0, and a Warning Event ``InvalidConfig`` on the ConfigMap names the problem (a new
Event, or the count of the same one patched up). Throughout: the slices of the last good config are untouched
(same resourceVersions, no write at all), and nothing a python tag names is executed.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.integration.driver import (
    config_text,
    http_get,
    mapping,
    metric,
    put_configmap,
    run_manager,
)
from tests.support.helpers import wait_for

pytestmark = pytest.mark.timeout(240)

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "hostile"
CONFIGMAP = "dra-kwok-configmap"
CONFIGMAP_LIMIT = 1024 * 1024  # data + binaryData of one ConfigMap


def _load_cases():
    spec = importlib.util.spec_from_file_location("hostile_cases", CORPUS / "cases.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hostile_cases"] = module
    spec.loader.exec_module(module)
    return module


hostile = _load_cases()


def _put(api: client.ApiClient, namespace: str, data: dict[str, str], binary: dict[str, str] | None = None) -> None:
    put_configmap(api, namespace, CONFIGMAP, data=data, binary=binary)


def _invalid_config_events(api: client.ApiClient, namespace: str) -> dict[str, tuple[int, str]]:
    """name -> (count, message) of the Warning InvalidConfig Events on our ConfigMap."""
    resp = client.CoreV1Api(api).list_namespaced_event(namespace, _preload_content=False)
    out = {}
    for event in json.loads(resp.data)["items"]:
        if (event.get("type"), event.get("reason")) == ("Warning", "InvalidConfig") and \
                event["involvedObject"].get("name") == CONFIGMAP:
            out[event["metadata"]["name"]] = (event.get("count") or 1, event.get("message", ""))
    return out


def _expectations(case) -> list[str]:
    """Fragments the Event's message must contain: the message, and where (line:column of data[config.yaml] for a
    read error, or the first field path; the Event is cut at 1,024 characters, so not every path)."""
    if case.configmap_message:
        return [case.configmap_message]
    fragments = [case.message]
    if case.line is not None:
        # The controller reads data["config.yaml"] as text of its own: for a "text" case its lines are the file's.
        fragments.append(f"data[config.yaml]:{case.line}:{case.column}: " if case.configmap == "text"
                         else "data[config.yaml]:")
    if case.paths:
        fragments.append(f"{case.paths[0]}: ")
    return fragments


def _cases(workdir: Path) -> list[tuple[str, dict[str, str], dict[str, str] | None, list[str]]]:
    """(name, data, binaryData, expected fragments): the corpus cases a ConfigMap can hold, and a few more about
    the ConfigMap's own structure."""
    out = []
    for case in hostile.CASES:
        if case.configmap is None:
            continue
        raw = case.path(workdir).read_bytes()
        binary = None
        if case.configmap == "text":
            data = {"config.yaml": raw.decode("utf-8")}
        else:
            manifest = yaml.safe_load(raw)
            data, binary = manifest.get("data") or {}, manifest.get("binaryData")
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()), case.name
        assert sum(len(v.encode()) + len(k) for k, v in data.items()) < CONFIGMAP_LIMIT, case.name
        out.append((case.name, data, binary, _expectations(case)))
    bomb = (CORPUS / "alias-bomb-billion-laughs.yaml").read_text()
    out += [
        ("data-empty-config-only-in-binaryData", {}, {"config.yaml": base64.b64encode(b"\x00\xff" * 64).decode()},
         ["data: no config key", "keys found: none"]),
        ("data-whitespace-config", {"config.yaml": "  \n\n   \n"}, None, ["data[config.yaml]: is empty"]),
        ("data-only-a-yml-key-holding-a-bomb", {"gpu.yml": bomb}, None,
         ["data[gpu.yml]:7:7: ", "once aliases are expanded"]),
        ("data-config-and-a-hostile-neighbour-key", {"config.yaml": "[unclosed", "other.yaml": bomb}, None,
         ["data[config.yaml]:1:10: "]),
    ]
    return out


def test_hostile_configmaps_change_nothing_keep_the_driver_up_and_each_gets_a_warning_event(api, env, tmp_path):
    good = config_text(env.driver, [mapping("gpu", env.tag)])
    cases = _cases(tmp_path)
    assert len(cases) >= 50
    env.node("a")
    env.node("b")
    _put(api, env.namespace, {"config.yaml": good})
    with run_manager(env.cp, env.namespace) as drv:
        converged = wait_for(lambda: len(env.slices()) == 2 and env.slices(), message="slices of the good config")
        wait_for(drv.idle, message="converged")
        versions = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in converged}
        writes = drv.writes()
        assert metric(drv.metrics_text(), "dra_kwok_config_valid") == 1

        for name, data, binary, fragments in cases:
            seen = _invalid_config_events(api, env.namespace)
            _put(api, env.namespace, data, binary)

            def reported() -> list[str] | None:
                if metric(drv.metrics_text(), "dra_kwok_config_valid") != 0:
                    return None
                for event, (count, message) in _invalid_config_events(api, env.namespace).items():
                    if count > seen.get(event, (0, ""))[0] and all(f in message for f in fragments):
                        return [message]
                return None

            wait_for(reported, timeout=30, message=f"{name}: config_valid 0 and a Warning Event with {fragments}")
            assert drv.thread.is_alive(), f"{name}: the driver stopped"
            assert http_get(drv.health_url + "/healthz")[0] == 200, f"{name}: /healthz"
            _put(api, env.namespace, {"config.yaml": good})
            wait_for(lambda: metric(drv.metrics_text(), "dra_kwok_config_valid") == 1, timeout=30,
                     message=f"after {name}: the good config read again")

        wait_for(drv.idle, message="idle after the corpus")
        assert {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in env.slices()} == versions
        assert drv.writes() == writes, "a write happened while only invalid configs (and the same good one) came"
        assert not hostile.marker(tmp_path).exists(), "a python tag was executed"

        # still working, not just alive: a real change is applied
        changed = mapping("gpu", env.tag)
        changed["resourceSlice"]["devices"][0]["attributes"]["type"] = {"string": "after-the-corpus"}
        _put(api, env.namespace, {"config.yaml": config_text(env.driver, [changed])})
        wait_for(lambda: all(s["spec"]["devices"][0]["attributes"]["type"]["string"] == "after-the-corpus"
                             for s in env.slices()), message="a valid change applied after the corpus")
