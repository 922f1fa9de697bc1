"""`dra-kwok profiles`: every profile with its parameters and what one node gets, as text and as JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dra_kwok.cli import main
from dra_kwok.slices.profiles import PROFILES


def test_json_lists_every_profile_with_its_schema_and_node_shape() -> None:
    result = CliRunner().invoke(main, ["profiles", "-o", "json"])
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.output)}
    assert list(entries) == list(PROFILES)
    nvidia = entries["nvidia-gpu"]
    assert nvidia["driver"] == "gpu.nvidia.com"
    assert [p["name"] for p in nvidia["parameters"]] == ["driver", "model", "count", "mode", "migLayout",
                                                         "consumableShares", "healthTaints"]
    assert {"name": "model", "type": "string", "allowed": "H100-80GB, A100-SXM4-40GB", "default": "H100-80GB",
            "help": "GPU model"} in nvidia["parameters"]
    # reference §1.6/§1.8: 8 full GPUs in one slice; DynamicMIG on 1.35: 208 devices in 9 slices, 8 counter sets
    assert nvidia["perNode"] == [
        {"params": {}, "devices": 8, "slices": 1, "counterSets": 0},
        {"params": {"mode": "static-mig"}, "devices": 56, "slices": 1, "counterSets": 0},
        {"params": {"mode": "dynamic-mig"}, "devices": 208, "slices": 9, "counterSets": 8},
    ]
    assert entries["cpu"]["perNode"][0] == {"params": {}, "devices": 2, "slices": 1, "counterSets": 0}


def test_k8s_minor_changes_the_dynamic_mig_layout() -> None:
    result = CliRunner().invoke(main, ["profiles", "-o", "json", "--k8s-minor", "34"])
    nvidia = json.loads(result.output)[0]
    assert nvidia["perNode"][2] == {"params": {"mode": "dynamic-mig"}, "devices": 208, "slices": 8, "counterSets": 8}


def test_text_output_names_parameters_defaults_and_allowed_values() -> None:
    result = CliRunner().invoke(main, ["profiles"])
    assert result.exit_code == 0, result.output
    assert "nvidia-gpu (gpu.nvidia.com)" in result.output
    assert "one node on 1.35 (mode: dynamic-mig): 208 devices in 9 slice(s), 8 counter set(s)" in result.output
    line = next(x for x in result.output.splitlines() if x.strip().startswith("consumableShares"))
    assert line.split() == ["consumableShares", "default", '"disabled"', "allowed:", "disabled,", "unlimited,",
                            "memory", "or", "an", "integer", ">=", "2"]
    assert "profiles" in CliRunner().invoke(main, ["--help"]).output


def test_every_listed_variant_is_valid() -> None:
    for profile in PROFILES.values():
        for params in profile.variants:
            assert profile.validate_params(params) == [], (profile.name, params)
