"""Instance identity and who holds a pool, by value: the label value each source gets, and the one-sided decision
two instances reach from the same objects (no apiserver: nothing here is sent)."""

from __future__ import annotations

import os

import pytest

from dra_kwok.config.formats import is_label_value
from dra_kwok.controllers.instance import InvalidInstance, instance_name
from dra_kwok.controllers.resourceslice import arbitrate, other_transform
from dra_kwok.slices.render import INSTANCE_LABEL, MANAGED_BY_LABEL, Pool

DRIVER = "gpu.example.com"


def test_a_configmap_instance_is_named_after_its_namespace_and_name():
    assert instance_name(namespace="karpenter", configmap="dra-kwok-configmap") == "karpenter.dra-kwok-configmap"
    assert instance_name(namespace="karpentr", configmap="dra-kwok-configmap") != \
        instance_name(namespace="karpenter", configmap="dra-kwok-configmap")


def test_a_file_instance_is_stable_per_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = instance_name(namespace="karpenter", configmap="c", config_file="local.yaml")
    assert relative == instance_name(namespace="other", configmap="d", config_file=str(tmp_path / "local.yaml"))
    assert relative.startswith("file-") and len(relative) == 17
    assert relative != instance_name(namespace="karpenter", configmap="c", config_file=os.path.join("x", "local.yaml"))


def test_too_long_names_stay_label_values_and_distinct():
    a = instance_name(namespace="n" * 63, configmap="c" * 200)
    b = instance_name(namespace="n" * 63, configmap="c" * 199)
    assert is_label_value(a) and is_label_value(b) and a != b and a.startswith("nnnn")


def test_an_explicit_instance_wins_and_a_bad_one_is_refused_by_name():
    assert instance_name(namespace="k", configmap="c", config_file="x.yaml", explicit="laptop-alice") == "laptop-alice"
    with pytest.raises(InvalidInstance, match="--instance"):
        instance_name(namespace="k", configmap="c", explicit="alice's laptop")


def slice_(name: str, holder: str | None, created: str = "2026-01-01T00:00:00Z", pool: str = "n1/gpu") -> dict:
    labels = {MANAGED_BY_LABEL: "dra-kwok", **({INSTANCE_LABEL: holder} if holder else {})}
    return {"metadata": {"name": name, "uid": f"u-{name}", "resourceVersion": "5", "creationTimestamp": created,
                         "labels": labels},
            "spec": {"driver": DRIVER, "nodeName": "n1", "pool": {"name": pool, "generation": 0}, "devices": []}}


def desired(*names: str, pool: str = "n1/gpu") -> Pool:
    return Pool(DRIVER, pool, "n1", tuple({"metadata": {"name": n}} for n in names))


def test_a_pool_held_by_another_instance_is_refused_and_the_rest_published():
    gpu, fpga = desired("gpu-0"), desired("fpga-0", pool="n1/fpga")
    kept, actual, refused = arbitrate("b", [gpu, fpga], [], [other_transform(slice_("gpu-0", "a"))])
    assert kept == [fpga] and actual == [] and refused == {(DRIVER, "n1/gpu"): "a"}


def test_both_sides_reach_the_same_verdict_the_earlier_keeps_it_ties_go_to_the_smaller_name():
    early, late = "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z"
    pool = desired("gpu-0", "gpu-1")
    a_own, b_own = [slice_("gpu-0", "a", early)], [slice_("gpu-1", "b", late)]
    a_view = arbitrate("a", [pool], a_own, [other_transform(s) for s in b_own])
    b_view = arbitrate("b", [pool], b_own, [other_transform(s) for s in a_own])
    assert a_view[2] == {} and b_view[2] == {(DRIVER, "n1/gpu"): "a"}
    assert a_view[0] == [] and a_view[1] == []  # a waits until b's gpu-1 is gone, writing nothing
    assert b_view[0] == [] and b_view[1] == b_own  # b deletes its slice of the pool
    tie_a = arbitrate("a", [pool], [slice_("gpu-0", "a", early)], [other_transform(slice_("gpu-1", "b", early))])
    tie_b = arbitrate("b", [pool], [slice_("gpu-1", "b", early)], [other_transform(slice_("gpu-0", "a", early))])
    assert tie_a[2] == {} and tie_b[2] == {(DRIVER, "n1/gpu"): "a"}


def test_slices_of_the_previous_release_are_adopted_only_with_a_pool_we_publish():
    legacy, retired = slice_("gpu-0", None), slice_("old-0", None, pool="n1/old")
    kept, actual, refused = arbitrate("b", [desired("gpu-0")], [], [other_transform(legacy),
                                                                   other_transform(retired)])
    assert [s["metadata"]["name"] for s in actual] == ["gpu-0"] and refused == {}
    assert actual[0]["metadata"]["uid"] == "u-gpu-0"  # kept whole: the plan updates it in place


def test_another_instances_slice_is_kept_small():
    raw = slice_("gpu-0", "a")
    raw["spec"]["devices"] = [{"name": f"d{i}"} for i in range(128)]
    assert other_transform(raw) == {
        "metadata": {"name": "gpu-0", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {INSTANCE_LABEL: "a"}},
        "spec": {"driver": DRIVER, "pool": {"name": "n1/gpu"}, "nodeName": "n1"}}


def test_refused_pools_are_reported_once_per_holder_and_counted():
    from kubernetes import client

    from dra_kwok.controllers.metrics import DriverMetrics
    from dra_kwok.controllers.resourceslice import PoolsRequest, ResourceSliceController
    from dra_kwok.controllers.store import Store

    metrics, told = DriverMetrics(), []
    ctrl = ResourceSliceController(client.ApiClient(), Store(), metrics, instance="b", on_conflict=told.append)
    gauge = lambda: {s.labels["holder"]: s.value for f in metrics.registry.collect()  # noqa: E731
                     if f.name == "dra_kwok_pool_conflicts" for s in f.samples}
    for n in ("n1", "n2", "n1"):  # n1 twice: a resync that decides the same
        ctrl._set_refused(PoolsRequest(n), {(DRIVER, f"{n}/gpu"): "a"})
    assert len(told) == 1 and "instance a" in told[0] and "(b)" in told[0]
    assert gauge() == {"a": 2}
    ctrl._set_refused(PoolsRequest("n1"), {})
    assert gauge() == {"a": 1}
    ctrl._set_refused(PoolsRequest("n2"), {})
    assert gauge() == {} and len(told) == 1
