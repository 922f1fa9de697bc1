"""The diff decides every write: nothing when equal, generation kept or bumped, order, immutables, foreign labels."""

from __future__ import annotations

import copy

from dra_kwok.slices.plan import devices_digest, equivalent, plan, plan_pool
from dra_kwok.slices.render import Pool

DRIVER = "gpu.example.com"


def body(name: str, devices: list[str], count: int = 1, generation: int = 0, node: str = "n1", rv: str | None = None,
         capacity: str = "16Gi") -> dict:
    meta = {"name": name, "labels": {"app.kubernetes.io/managed-by": "dra-kwok"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": "u1", "controller": True}]}
    if rv:
        meta.update(resourceVersion=rv, uid=f"uid-{name}")
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": meta,
        "spec": {"driver": DRIVER, "nodeName": node, "pool": {"name": f"{node}/gpu", "generation": generation,
                                                             "resourceSliceCount": count},
                 "devices": [{"name": d, "capacity": {"memory": {"value": capacity}}} for d in devices]},
    }


def pool(*slices: dict, node: str = "n1") -> Pool:
    return Pool(driver=DRIVER, name=f"{node}/gpu", node_name=node, slices=tuple(slices))


def stored(b: dict, rv: str = "7", generation: int | None = None) -> dict:
    out = copy.deepcopy(b)
    out["metadata"].update(resourceVersion=rv, uid=f"uid-{b['metadata']['name']}")
    if generation is not None:
        out["spec"]["pool"]["generation"] = generation
    return out


def verbs(actions) -> list[tuple[str, str]]:
    return [(a.verb, a.name) for a in actions]


def test_nothing_differs_no_action():
    s0 = body("s0", ["a", "b"])
    assert plan([pool(s0)], [stored(s0, generation=4)]) == []


def test_server_canonical_quantities_and_dropped_empty_fields_are_equal():
    desired = body("s0", ["a"], capacity="1024Mi")
    actual = stored(body("s0", ["a"], capacity="1Gi"))
    desired["spec"]["devices"][0]["attributes"] = {}
    assert equivalent(desired, actual)


def test_false_zero_and_empty_string_attributes_are_values_not_absences():
    """The server keeps `{"bool": false}` and `{"int": 0}` (pointer fields): removing one is a change."""
    actual = stored(body("s0", ["a"]))
    for value in ({"bool": False}, {"int": 0}, {"string": ""}):
        desired = body("s0", ["a"])
        desired["spec"]["devices"][0]["attributes"] = {"x": value}
        assert not equivalent(desired, actual), value
        assert equivalent(desired, stored(desired)), value
    as_int, as_bool = body("s0", ["a"]), stored(body("s0", ["a"]))
    as_int["spec"]["devices"][0]["attributes"] = {"x": {"int": 0}}
    as_bool["spec"]["devices"][0]["attributes"] = {"x": {"bool": False}}
    assert not equivalent(as_int, as_bool)


def test_create_and_update_actions_carry_the_digest_of_their_devices():
    s0, s1 = body("s0", ["a"], 2), body("s1", ["b"], 2)
    changed = body("s0", ["a"], 2, capacity="32Gi")
    actions = plan([pool(changed, s1)], [stored(s0)])
    assert verbs(actions) == [("update", "s0"), ("create", "s1")]
    assert [a.digest for a in actions] == [devices_digest(changed["spec"]["devices"]),
                                           devices_digest(s1["spec"]["devices"])]


def test_first_publish_creates_at_generation_zero():
    actions = plan([pool(body("s0", ["a"], 2), body("s1", ["b"], 2))], [])
    assert verbs(actions) == [("create", "s0"), ("create", "s1")]
    assert {a.body["spec"]["pool"]["generation"] for a in actions} == {0}


def test_one_slice_changed_in_place_keeps_generation_and_resource_version():
    s0, s1 = body("s0", ["a"], 2), body("s1", ["b"], 2)
    actual = [stored(s0, generation=3), stored(s1, rv="9", generation=3)]
    s1_new = body("s1", ["b", "c"], 2)
    actions = plan_pool(pool(s0, s1_new), actual)
    assert verbs(actions) == [("update", "s1")]
    assert actions[0].body["spec"]["pool"]["generation"] == 3
    assert actions[0].body["metadata"]["resourceVersion"] == "9"


def test_two_slices_changed_bumps_generation_on_every_slice():
    s = [body(f"s{i}", [f"d{i}"], 3) for i in range(3)]
    actual = [stored(x, generation=5) for x in s]
    new = [body("s0", ["x"], 3), body("s1", ["y"], 3), s[2]]
    actions = plan_pool(pool(*new), actual)
    assert verbs(actions) == [("update", "s0"), ("update", "s1"), ("update", "s2")]
    assert {a.body["spec"]["pool"]["generation"] for a in actions} == {6}


def test_growing_the_pool_deletes_nothing_updates_all_then_creates_at_bumped_generation():
    actual = [stored(body("s0", ["a"], 1), generation=2)]
    actions = plan_pool(pool(body("s0", ["a"], 2), body("s1", ["b"], 2)), actual)
    assert verbs(actions) == [("update", "s0"), ("create", "s1")]
    assert {a.body["spec"]["pool"]["generation"] for a in actions} == {3}


def test_shrinking_deletes_obsolete_first():
    actual = [stored(body("s0", ["a"], 2)), stored(body("s1", ["b"], 2))]
    actions = plan_pool(pool(body("s0", ["a"], 1)), actual)
    assert verbs(actions) == [("delete", "s1"), ("update", "s0")]
    assert actions[0].uid == "uid-s1" and actions[0].resource_version == "7"
    assert actions[1].body["spec"]["pool"]["generation"] == 1


def test_an_interrupted_rewrite_is_finished_not_restarted():
    # s0 already rewritten at generation 4, s1 still at 3 with old content
    s0, s1 = body("s0", ["a2"], 2), body("s1", ["b2"], 2)
    actual = [stored(s0, generation=4), stored(body("s1", ["b1"], 2), generation=3)]
    actions = plan_pool(pool(s0, s1), actual)
    assert verbs(actions) == [("update", "s1")]
    assert actions[0].body["spec"]["pool"]["generation"] == 4


def test_immutable_field_change_is_delete_then_create():
    actual = [stored(body("s0", ["a"]))]
    moved = body("s0", ["a"])
    moved["spec"]["driver"] = "other.example.com"
    actions = plan([Pool(driver="other.example.com", name="n1/gpu", node_name="n1", slices=(moved,))], actual)
    assert verbs(actions) == [("delete", "s0"), ("create", "s0")]


def test_labels_added_by_others_are_kept_and_ours_restored():
    actual = stored(body("s0", ["a"]))
    actual["metadata"]["labels"] = {"team": "x"}  # ours removed, theirs added
    actions = plan_pool(pool(body("s0", ["a"])), [actual])
    assert verbs(actions) == [("update", "s0")]
    assert actions[0].body["metadata"]["labels"] == {"team": "x", "app.kubernetes.io/managed-by": "dra-kwok"}


def test_adopting_every_slice_of_a_pool_by_a_new_label_keeps_the_generation():
    """The instance label added to the slices of the release before it: metadata only, so every slice is updated
    in place at the generation it has (no rewrite of the pool for the scheduler), and the uid is not touched."""
    desired = [body(f"s{i}", [f"d{i}"], count=3) for i in range(3)]
    for d in desired:
        d["metadata"]["labels"]["dra-kwok.x-k8s.io/instance"] = "ns.cm"
    actual = [stored(body(f"s{i}", [f"d{i}"], count=3), generation=4) for i in range(3)]
    actions = plan_pool(pool(*desired), actual)
    assert verbs(actions) == [("update", "s0"), ("update", "s1"), ("update", "s2")]
    assert {a.body["spec"]["pool"]["generation"] for a in actions} == {4}
    assert all(a.body["metadata"]["labels"]["dra-kwok.x-k8s.io/instance"] == "ns.cm" for a in actions)
    assert [a.body["metadata"]["resourceVersion"] for a in actions] == ["7", "7", "7"]


def test_relabelling_with_two_spec_changes_still_bumps_the_generation():
    desired = [body(f"s{i}", [f"new{i}"], count=2) for i in range(2)]
    actual = [stored(body(f"s{i}", [f"d{i}"], count=2)) for i in range(2)]
    assert {a.body["spec"]["pool"]["generation"] for a in plan_pool(pool(*desired), actual)} == {1}


def test_pools_no_longer_desired_are_deleted_and_order_is_global():
    gone = stored(body("old", ["z"], node="n1"))
    gone["spec"]["pool"]["name"] = "n1/old"
    actions = plan([pool(body("s0", ["a"]))], [gone])
    assert verbs(actions) == [("delete", "old"), ("create", "s0")]
