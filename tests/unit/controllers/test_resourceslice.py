"""The ResourceSlice controller's bookkeeping of its own writes, by value (no apiserver: nothing here is sent)."""

from __future__ import annotations

import copy

from kubernetes import client

from dra_kwok.config.types import Config
from dra_kwok.controllers import resourceslice
from dra_kwok.controllers.metrics import DriverMetrics
from dra_kwok.controllers.resourceslice import ResourceSliceController
from dra_kwok.controllers.store import Store
from dra_kwok.slices.plan import Action, devices_digest
from dra_kwok.slices.render import Pool

DEVICES = [{"name": "gpu-0", "attributes": {"model": {"string": "a"}}, "capacity": {"memory": {"value": "16Gi"}}}]


def controller() -> ResourceSliceController:
    return ResourceSliceController(client.ApiClient(), Store(), DriverMetrics())


def created(name: str, devices: list[dict], rv: str = "10") -> dict:
    return {"metadata": {"name": name, "resourceVersion": rv}, "spec": {"nodeName": "n1", "devices": devices,
                                                                        "pool": {"name": "n1/gpu", "generation": 0}}}


def create(name: str) -> Action:
    body = {"metadata": {"name": name}, "spec": {"devices": DEVICES, "pool": {"name": "n1/gpu", "generation": 0}}}
    return Action("create", name, body=body, digest=devices_digest(DEVICES))


def test_our_write_seen_back_with_the_same_devices_reuses_their_digest(mocker):
    ctrl = controller()
    ctrl._expect(create("s0"))
    digest = mocker.spy(resourceslice, "devices_digest")
    seen = ctrl._transform(created("s0", copy.deepcopy(DEVICES)))
    assert digest.call_count == 0
    assert seen["devicesDigest"] == devices_digest(DEVICES) and "devices" not in seen["spec"]
    assert ctrl.is_own_write(seen)
    assert ctrl._sent == {}  # used once, then dropped: the cache must not keep device lists


def test_different_devices_or_no_write_of_ours_are_digested(mocker):
    ctrl = controller()
    ctrl._expect(create("s0"))
    other = copy.deepcopy(DEVICES)
    other[0]["capacity"]["memory"]["value"] = "32Gi"
    expected_other, expected_ours = devices_digest(other), devices_digest(DEVICES)
    digest = mocker.spy(resourceslice, "devices_digest")
    seen = ctrl._transform(created("s0", other))  # someone else's write of our slice, seen before ours
    unknown = ctrl._transform(created("s1", DEVICES))  # a slice we have not written
    assert digest.call_count == 2
    assert seen["devicesDigest"] == expected_other != expected_ours
    assert unknown["devicesDigest"] == expected_ours
    assert not ctrl.is_own_write(seen)


def test_one_scrape_matches_the_nodes_once_for_both_kwok_node_gauges(mocker):
    metrics = DriverMetrics()
    ctrl = ResourceSliceController(client.ApiClient(), Store(), metrics)
    count = mocker.spy(ctrl, "_count_kwok_now")
    now = [100.0]
    mocker.patch("dra_kwok.controllers.resourceslice.time.monotonic", side_effect=lambda: now[0])
    scrape = lambda: {s.labels["state"]: s.value for f in metrics.registry.collect()  # noqa: E731
                      if f.name == "dra_kwok_kwok_nodes" for s in f.samples}
    assert scrape() == {"all": 0, "matched": 0}
    assert count.call_count == 1
    now[0] += 2  # the next scrape counts again
    scrape()
    assert count.call_count == 2


TAINTED = [{**DEVICES[0], "taints": [{"key": "k", "effect": "NoSchedule"}]}]


def _tainted_create(name: str) -> Action:
    body = {"metadata": {"name": name}, "spec": {"devices": TAINTED, "pool": {"name": "n1/gpu", "generation": 0}}}
    return Action("create", name, body=body, digest=devices_digest(TAINTED))


def test_dropped_fields_are_learnt_counted_per_write_and_reported_once_per_config_revision():
    told: list[str] = []
    metrics = DriverMetrics()
    store = Store()
    ctrl = ResourceSliceController(client.ApiClient(), store, metrics, on_dropped=told.append)
    assert ctrl.dropped_note() is None
    ctrl._check_dropped(_tainted_create("s0"), created("s0", DEVICES))
    ctrl._check_dropped(_tainted_create("s1"), created("s1", DEVICES))
    counted = metrics.dropped_fields.labels(field="devices[].taints")._value.get()
    assert counted == 2 and len(told) == 1
    assert "devices[].taints (feature gate DRADeviceTaints)" in told[0] and "s0" in told[0]
    assert str(ctrl.dropped_note()) == ("the apiserver drops devices[].taints (feature gate DRADeviceTaints); "
                                        "published without, see dra_kwok_dropped_fields_total")
    store.set(Config(driver="gpu.example.com", mappings=()))  # a new config revision: reported once more
    ctrl._check_dropped(_tainted_create("s0"), created("s0", DEVICES))
    assert len(told) == 2
    ctrl._check_dropped(_tainted_create("s0"), created("s0", TAINTED))  # kept now: its gate was turned on
    assert ctrl._drops == {} and ctrl.dropped_note() is None


def test_desired_slices_are_compared_as_the_apiserver_keeps_them_but_sent_whole():
    ctrl = controller()
    ctrl._drops = {"devices[].taints": "DRADeviceTaints"}
    body = _tainted_create("s0").body
    pool = Pool("gpu.example.com", "n1/gpu", "n1", (body,))
    kept = ctrl._as_kept([pool], [])
    assert kept[0].slices[0]["spec"]["devices"] == DEVICES and body["spec"]["devices"] == TAINTED
    # a stored slice that has the field (the apiserver keeps a gated field the stored object uses): compared whole
    stored = {"metadata": {"name": "s0", "resourceVersion": "7"}, "spec": copy.deepcopy(body["spec"])}
    assert ctrl._as_kept([pool], [stored])[0].slices[0] is body
    planned = Action("update", "s0", body={**kept[0].slices[0], "spec": {**kept[0].slices[0]["spec"],
                                                                       "pool": {"name": "n1/gpu", "generation": 3}}},
                     digest=devices_digest(DEVICES))
    sent = resourceslice._with_spec(planned, body)
    assert sent.body["spec"]["devices"] == TAINTED and sent.body["spec"]["pool"]["generation"] == 3
    assert sent.digest == devices_digest(DEVICES)  # what the server will store, as _expect looks for


def test_a_reconcile_weighs_the_devices_its_config_can_give_one_node_or_the_cluster_wide_pools():
    from dra_kwok.config import load_config
    from dra_kwok.controllers.resourceslice import CLUSTER, RENDER_BUDGET, PoolsRequest

    ctrl = controller()
    cfg = load_config("""
driver: gpu.example.com
mappings:
- name: a
  nodeSelectorTerms: [{matchExpressions: [{key: type, operator: In, values: [a]}]}]
  resourceSlice: {pool: {name: a}, devices: [{name: gpu, count: 8}, {name: nic}]}
- name: b
  nodeSelectorTerms: [{matchExpressions: [{key: type, operator: In, values: [b]}]}]
  resourceSlice: {pool: {name: b}, profile: {name: nvidia-gpu, model: H100-80GB, count: 8, mode: dynamic-mig}}
- name: shared
  nodeSelectorTerms: [{matchExpressions: [{key: type, operator: In, values: [a]}]}]
  resourceSlice: {pool: {name: shared}, allNodes: true, devices: [{name: nvme, count: 20}]}
""")
    # 1 (the floor) + 9 hand-written + 208 devices of the 8xH100 DynamicMIG profile; the cluster-wide pool alone
    assert ctrl._weight(cfg, PoolsRequest("n")) == 1 + 9 + 208
    assert ctrl._weight(cfg, CLUSTER) == 1 + 20
    # so this config's nodes run RENDER_BUDGET // 218 reconciles at once: far more than any --workers
    assert RENDER_BUDGET // ctrl._weight(cfg, PoolsRequest("n")) > 300
