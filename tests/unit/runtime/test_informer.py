"""The informer's cache under the races a real watch produces, replayed in a fixed order (no apiserver needed:
these are the orders in which a watch event and our own write's response can arrive)."""

from __future__ import annotations

from dra_kwok.runtime.informer import EventHandler, Informer, meta_key


class Recorder(EventHandler[dict]):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_add(self, obj: dict) -> None:
        self.events.append(("add", obj["metadata"]["resourceVersion"]))

    def on_update(self, old: dict, new: dict) -> None:
        self.events.append(("update", new["metadata"]["resourceVersion"]))

    def on_delete(self, obj: dict) -> None:
        self.events.append(("delete", obj["metadata"]["resourceVersion"]))


def obj(rv: str, value: str = "ours", node: str = "n1") -> dict:
    return {"metadata": {"name": "s", "resourceVersion": rv}, "spec": {"nodeName": node, "value": value}}


def informer(handler: EventHandler | None = None) -> Informer[dict]:
    return Informer("t", lambda **kw: None, lambda raw: raw, handler=handler,
                    index=lambda o: o["spec"].get("nodeName"), version=lambda o: o["metadata"]["resourceVersion"])


def test_our_write_response_arriving_after_a_newer_watch_event_does_not_hide_it():
    inf = informer()
    inf._dispatch({"type": "MODIFIED", "object": obj("101", "theirs")})  # someone else's later write, seen first
    inf.mutate(obj("100"))  # then the response of our own earlier write
    assert inf.get("s")["spec"]["value"] == "theirs"


def test_a_watch_event_older_than_our_recorded_write_is_skipped_without_a_handler():
    rec = Recorder()
    inf = informer(rec)
    inf._dispatch({"type": "ADDED", "object": obj("99", "before")})
    inf.mutate(obj("100"))
    inf._dispatch({"type": "MODIFIED", "object": obj("100")})  # the event of our own write: nothing to do
    assert inf.get("s")["metadata"]["resourceVersion"] == "100"
    assert rec.events == [("add", "99")]


def test_index_follows_puts_and_deletes():
    inf = informer()
    inf._dispatch({"type": "ADDED", "object": obj("1", node="a")})
    assert [o["metadata"]["resourceVersion"] for o in inf.by_index("a")] == ["1"]
    inf._dispatch({"type": "MODIFIED", "object": obj("2", node="b")})
    assert inf.by_index("a") == [] and len(inf.by_index("b")) == 1
    inf._dispatch({"type": "DELETED", "object": obj("3", node="b")})
    assert inf.by_index("b") == [] and inf.index_values() == []


def test_bookmarks_only_advance_the_resource_version():
    rec = Recorder()
    inf = informer(rec)
    inf._dispatch({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "500"}}})
    assert inf._rv == "500" and rec.events == [] and len(inf) == 0


def test_our_create_response_arriving_after_the_objects_deletion_does_not_resurrect_it():
    inf = informer()
    inf._dispatch({"type": "ADDED", "object": obj("100")})
    inf._dispatch({"type": "DELETED", "object": obj("101")})  # someone deleted what we had just created
    inf.mutate(obj("100"))  # our create's response, late
    assert inf.get("s") is None
    inf._dispatch({"type": "ADDED", "object": obj("102")})  # re-created later: a newer object is welcome
    assert inf.get("s")["metadata"]["resourceVersion"] == "102"


def test_the_second_sighting_of_one_resource_version_is_not_transformed_again():
    transformed: list[str] = []

    def transform(raw: dict) -> dict:
        transformed.append(raw["metadata"]["resourceVersion"])
        return raw

    rec = Recorder()
    inf = Informer("t", lambda **kw: None, transform, handler=rec, version=lambda o: o["metadata"]["resourceVersion"])
    inf._dispatch({"type": "ADDED", "object": obj("100")})  # the watch event of our write came first
    inf.mutate(obj("100"))  # then its response
    inf.mutate(obj("101"))  # our next write's response came first
    inf._dispatch({"type": "MODIFIED", "object": obj("101")})  # then its event
    assert transformed == ["100", "101"]
    assert rec.events == [("add", "100")] and inf.get("s")["metadata"]["resourceVersion"] == "101"


def test_keys_are_client_go_meta_namespace_keys():
    assert meta_key({"metadata": {"name": "n1"}}) == "n1"
    assert meta_key({"metadata": {"namespace": "karpenter", "name": "cm"}}) == "karpenter/cm"


def test_list_pages_hold_about_page_bytes_of_json_and_at_most_client_gos_500_items():
    from dra_kwok.runtime.informer import PAGE_BYTES, PAGE_SIZE, next_page_size

    assert PAGE_SIZE == 500
    # small objects (a 3 KB slice of 8 devices): client-go's 500
    assert next_page_size(100, 100, 100 * 3_000) == 500
    # a DynamicMIG GPU's 16 KB slices: as many as fit PAGE_BYTES, so a page decodes to ~10x 2 MiB, not ~10x 8 MB
    assert next_page_size(100, 100, 100 * 16_000) == PAGE_BYTES // 16_000 == 131
    # objects over PAGE_BYTES each still make progress, one per page
    assert next_page_size(131, 1, 5 * PAGE_BYTES) == 1
    # an empty page (the last, or nothing listed) says nothing about sizes: keep the limit
    assert next_page_size(131, 0, 80) == 131
