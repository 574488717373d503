"""Store.list_state: the state documents under one key prefix, by key, on every backend."""

from __future__ import annotations

from tests.store.conftest import StoreFactory


def test_list_state_returns_only_the_prefix_in_key_order(make_store: StoreFactory) -> None:
    store = make_store()
    for key in ("paper:1:order:0002", "paper:1:order:0001", "paper:10:order:0001", "paper:1"):
        store.put_state(key, {"key": key}, expected_version=0)
    store.put_state("paper:1:order:0001", {"key": "again"}, expected_version=1)
    found = store.list_state("paper:1:")
    assert found == [
        ("paper:1:order:0001", {"key": "again"}, 2),
        ("paper:1:order:0002", {"key": "paper:1:order:0002"}, 1),
    ]
    assert store.list_state("paper:2:") == []
    assert [key for key, _, _ in store.list_state("paper:1.")] == []  # no pattern characters


def test_list_state_newest_first_with_a_limit(make_store: StoreFactory) -> None:
    store = make_store()
    for n in range(5):
        store.put_state(f"fill:{n:04d}", {"n": n}, expected_version=0)
    assert [doc["n"] for _, doc, _ in store.list_state("fill:", limit=2, reverse=True)] == [4, 3]
    assert [doc["n"] for _, doc, _ in store.list_state("fill:", limit=2)] == [0, 1]
