"""The Store contract (kestrel/store/base.py), checked on every backend."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kestrel.errors import ConcurrentUpdate, DuplicateClientOrderId, NotFound, StoreError
from kestrel.mode import TradingMode
from kestrel.models import (
    EventType,
    OrderRole,
    OrderStatus,
    PositionStatus,
    StatusSource,
)
from kestrel.store import Store

from .conftest import StoreFactory
from .factories import at, make_event, make_fill, make_order, make_position, transactional

# -- orders ------------------------------------------------------------------------------------


def test_insert_then_get_round_trips_exactly(store: Store) -> None:
    order = make_order("o-1", cycle_id="c-1", reason="signal")
    inserted = store.insert_order(order)

    assert inserted.version == 1
    assert order.version == 0, "the caller's object is not mutated"
    got = store.get_order("o-1")
    assert got == inserted
    assert got is not None
    assert str(got.amount) == "0.00012345"
    assert str(got.price) == "65000.10", "Decimal digits (even trailing zeros) survive"
    assert str(got.fee_cost) == "1E-9"
    assert got.created_at == order.created_at


def test_get_missing_order_is_none(store: Store) -> None:
    assert store.get_order("nope") is None


def test_duplicate_client_order_id_is_rejected(store: Store) -> None:
    store.insert_order(make_order("o-1"))
    with pytest.raises(DuplicateClientOrderId) as caught:
        store.insert_order(make_order("o-1", amount=Decimal("9"), status=OrderStatus.OPEN))
    assert caught.value.client_order_id == "o-1"
    got = store.get_order("o-1")
    assert got is not None and got.amount == Decimal("0.00012345") and got.version == 1


def test_update_order_is_compare_and_set(store: Store) -> None:
    inserted = store.insert_order(make_order("o-1"))
    opened = inserted.model_copy(
        update={
            "status": OrderStatus.OPEN,
            "exchange_order_id": "x-9",
            "status_source": StatusSource.CREATE_RESPONSE,
        }
    )
    updated = store.update_order(opened, expected_version=1)
    assert updated.version == 2
    assert store.get_order("o-1") == updated

    filled = updated.model_copy(update={"status": OrderStatus.FILLED})
    with pytest.raises(ConcurrentUpdate):
        store.update_order(filled, expected_version=1)  # stale: somebody got to 2 first
    got = store.get_order("o-1")
    assert got is not None and got.status is OrderStatus.OPEN and got.version == 2


def test_update_of_a_missing_order_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.update_order(make_order("ghost"), expected_version=1)


def test_records_of_the_other_mode_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="REAL"):
        store.insert_order(make_order("o-real", mode=TradingMode.REAL))
    with pytest.raises(StoreError, match="REAL"):
        store.append_events([make_event("e-real", mode=TradingMode.REAL)])
    assert store.get_order("o-real") is None
    assert store.list_events() == []


def test_list_orders_filters_and_orders_oldest_first(store: Store) -> None:
    store.insert_order(make_order("c", created_at=at(2), cycle_id="k2"))
    store.insert_order(make_order("b", created_at=at(1), symbol="ETH/USDT"))
    store.insert_order(make_order("a", created_at=at(2), role=OrderRole.STOP_LOSS))
    store.insert_order(make_order("d", created_at=at(0), status=OrderStatus.FILLED, cycle_id="k1"))

    def ids(**filters: Any) -> list[str]:
        return [o.client_order_id for o in store.list_orders(**filters)]

    assert ids() == ["d", "b", "a", "c"], "created_at, then client_order_id"
    assert ids(symbol="ETH/USDT") == ["b"]
    assert ids(statuses=[OrderStatus.NEW]) == ["b", "a", "c"]
    assert ids(statuses=[OrderStatus.FILLED, OrderStatus.OPEN]) == ["d"]
    assert ids(statuses=[]) == [], "an empty filter matches nothing"
    assert ids(roles=[OrderRole.STOP_LOSS]) == ["a"]
    assert ids(cycle_id="k2") == ["c"]
    assert ids(symbol="BTC/USDT", statuses=[OrderStatus.NEW]) == ["a", "c"]
    assert ids(limit=2) == ["d", "b"]
    assert ids(limit=0) == []
    assert [o.client_order_id for o in store.iter_live_orders()] == ["b", "a", "c"]
    assert [o.client_order_id for o in store.iter_live_orders("ETH/USDT")] == ["b"]


# -- events and the outbox rule ----------------------------------------------------------------


def test_events_are_stored_with_the_write(store: Store) -> None:
    inserted = store.insert_order(make_order("o-1"), events=[make_event("o-1:CREATED")])
    store.update_order(
        inserted.model_copy(update={"status": OrderStatus.FILLED}),
        expected_version=1,
        events=[make_event("o-1:FILLED", type=EventType.ORDER_EXECUTED)],
    )
    events = store.list_events()
    assert [e.event_id for e in events] == ["o-1:CREATED", "o-1:FILLED"]
    assert all(e.seq is not None for e in events)


def test_a_lost_compare_and_set_stores_none_of_its_events(store: Store) -> None:
    store.insert_order(make_order("o-1"))
    with pytest.raises(ConcurrentUpdate):
        store.update_order(make_order("o-1"), expected_version=7, events=[make_event("lost")])
    with pytest.raises(DuplicateClientOrderId):
        store.insert_order(make_order("o-1"), events=[make_event("dup")])
    assert store.list_events() == []


def test_append_events_dedupes_by_event_id_and_assigns_increasing_seq(store: Store) -> None:
    first = store.append_events([make_event("e1"), make_event("e2")])
    assert first[0].seq is not None and first[1].seq is not None
    assert first[0].seq < first[1].seq

    again = store.append_events([make_event("e2", message="changed"), make_event("e3")])
    assert again[0].event_id == "e2"
    assert again[0].seq == first[1].seq, "a repeat returns the stored event"
    assert again[0].message == "event e2", "a repeat does not overwrite"
    assert again[1].seq is not None and again[1].seq > first[1].seq

    stored = store.list_events()
    assert [e.event_id for e in stored] == ["e1", "e2", "e3"]
    assert stored[0] == first[0]
    assert stored[0].data == {"amount": "0.1", "nested": {"n": 1}}


def test_the_same_event_twice_in_one_batch_is_stored_once(store: Store) -> None:
    result = store.append_events([make_event("e1"), make_event("e1")])
    assert result[0] == result[1]
    assert len(store.list_events()) == 1


def test_list_events_filters(store: Store) -> None:
    stored = store.append_events(
        [
            make_event("a", created_at=at(0)),
            make_event("b", created_at=at(5), symbol="ETH/USDT", type=EventType.TRADE_HELD),
            make_event("c", created_at=at(10), type=EventType.TRADE_HELD),
            make_event("d", created_at=at(1), symbol=None, type=EventType.CRITICAL),
        ]
    )
    seq_b = stored[1].seq

    def ids(**filters: Any) -> list[str]:
        return [e.event_id for e in store.list_events(**filters)]

    assert ids() == ["a", "b", "c", "d"], "seq order, not created_at order"
    assert ids(types=[EventType.TRADE_HELD]) == ["b", "c"]
    assert ids(types=[EventType.TRADE_HELD, EventType.CRITICAL]) == ["b", "c", "d"]
    assert ids(types=[]) == []
    assert ids(symbol="ETH/USDT") == ["b"]
    assert ids(after_seq=seq_b) == ["c", "d"]
    assert ids(since=at(5)) == ["b", "c"]
    assert ids(types=[EventType.TRADE_HELD], symbol="BTC/USDT") == ["c"]
    assert ids(limit=3) == ["a", "b", "c"]
    assert ids(after_seq=seq_b, limit=1) == ["c"]


# -- transactions ------------------------------------------------------------------------------


def test_atomic_commits_every_write_together(store: Store) -> None:
    with store.atomic():
        store.insert_order(make_order("o-1"), events=[make_event("e1")])
        with store.atomic():
            store.put_state("k", {"n": 1}, expected_version=0)
    assert store.get_order("o-1") is not None
    assert store.get_state("k") == ({"n": 1}, 1)
    assert [e.event_id for e in store.list_events()] == ["e1"]


def test_atomic_rolls_back_the_write_and_its_events(store: Store) -> None:
    if not transactional(store):
        pytest.skip("this backend has no multi-document transactions (documented limit)")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.atomic():
        store.insert_order(make_order("o-1"), events=[make_event("o-1:CREATED")])
        store.save_position(make_position("p-1"), expected_version=0)
        raise Boom
    assert store.get_order("o-1") is None
    assert store.get_position("p-1") is None
    assert store.list_events() == []
    # and the store is usable again afterwards
    store.insert_order(make_order("o-1"))
    assert store.get_order("o-1") is not None


def test_a_failed_inner_block_rolls_back_the_outer_one(store: Store) -> None:
    if not transactional(store):
        pytest.skip("this backend has no multi-document transactions (documented limit)")

    # A lost CAS stays a ConcurrentUpdate, so the caller's re-read-and-retry loop catches it.
    with pytest.raises(ConcurrentUpdate, match="rolled back"), store.atomic():
        store.put_state("outer", {"n": 1}, expected_version=0)
        with pytest.raises(ConcurrentUpdate):
            store.put_state("outer", {"n": 2}, expected_version=0)  # inner block fails ...
        # ... and the caller carries on, but the transaction is doomed
    assert store.get_state("outer") is None

    with pytest.raises(StoreError, match="ValueError") as caught, store.atomic():
        store.insert_order(make_order("o-1"))
        with pytest.raises(ValueError), store.atomic():
            raise ValueError("inner")
    assert not isinstance(caught.value, ConcurrentUpdate)
    assert store.get_order("o-1") is None


# -- fills -------------------------------------------------------------------------------------


def test_add_fill_stores_each_trade_once_per_order(store: Store) -> None:
    fill = make_fill("t-1", "o-1")
    assert store.add_fill(fill) is True
    assert store.add_fill(fill) is False
    assert store.add_fill(make_fill("t-1", "o-1", amount=Decimal("5"))) is False
    assert store.add_fill(make_fill("t-1", "o-2")) is True, "trade ids are per exchange-order"
    fills = store.list_fills(client_order_id="o-1")
    assert fills == [fill]
    assert str(fills[0].amount) == "0.00010000"
    assert str(fills[0].fee_cost) == "1E-7"


def test_list_fills_filters_and_orders_by_time_then_trade_id(store: Store) -> None:
    store.add_fill(make_fill("t-3", "o-1", timestamp=200))
    store.add_fill(make_fill("t-2", "o-1", timestamp=100))
    store.add_fill(make_fill("t-1", "o-2", timestamp=200, symbol="ETH/USDT"))
    assert [f.trade_id for f in store.list_fills()] == ["t-2", "t-1", "t-3"]
    assert [f.trade_id for f in store.list_fills(client_order_id="o-1")] == ["t-2", "t-3"]
    assert [f.trade_id for f in store.list_fills(symbol="ETH/USDT")] == ["t-1"]


def test_add_fill_inside_atomic_keeps_the_transaction_usable(store: Store) -> None:
    store.add_fill(make_fill("t-1"))
    with store.atomic():
        assert store.add_fill(make_fill("t-1")) is False
        store.put_state("after", {"ok": True}, expected_version=0)
    assert store.get_state("after") == ({"ok": True}, 1)


# -- positions ---------------------------------------------------------------------------------


def test_positions_insert_at_version_zero_then_compare_and_set(store: Store) -> None:
    position = make_position("p-1")
    saved = store.save_position(position, expected_version=0, events=[make_event("p-1:OPEN")])
    assert saved.version == 1
    assert store.get_position("p-1") == saved
    assert str(saved.avg_entry_price) == "64000.123456789"
    assert [e.event_id for e in store.list_events()] == ["p-1:OPEN"]

    with pytest.raises(ConcurrentUpdate):
        store.save_position(position, expected_version=0)  # it exists already

    closed = saved.model_copy(update={"status": PositionStatus.CLOSED, "closed_at": at(9)})
    assert store.save_position(closed, expected_version=1).version == 2
    with pytest.raises(ConcurrentUpdate):
        store.save_position(closed, expected_version=1)
    got = store.get_position("p-1")
    assert got is not None and got.status is PositionStatus.CLOSED and got.version == 2

    with pytest.raises(NotFound):
        store.save_position(make_position("ghost"), expected_version=3)
    assert store.get_position("ghost") is None


def test_list_positions_filters_and_orders_by_opened_at(store: Store) -> None:
    store.save_position(make_position("p-2", opened_at=at(2)), expected_version=0)
    store.save_position(
        make_position("p-1", opened_at=at(1), symbol="ETH/USDT"), expected_version=0
    )
    store.save_position(
        make_position("p-0", opened_at=at(0), status=PositionStatus.CLOSED), expected_version=0
    )
    assert [p.position_id for p in store.list_positions()] == ["p-0", "p-1", "p-2"]
    open_ids = [p.position_id for p in store.list_positions(status=PositionStatus.OPEN)]
    assert open_ids == ["p-1", "p-2"]
    assert [p.position_id for p in store.list_positions(symbol="ETH/USDT")] == ["p-1"]
    found = store.open_position("BTC/USDT")
    assert found is not None and found.position_id == "p-2"
    assert store.open_position("XRP/USDT") is None


# -- state documents ---------------------------------------------------------------------------


def test_state_documents_are_compare_and_set(store: Store) -> None:
    assert store.get_state("breaker") is None
    doc = {"tripped": False, "losses": ["1.5", "2"], "nested": {"a": None, "b": 1.25}}
    assert store.put_state("breaker", doc, expected_version=0) == 1
    assert store.get_state("breaker") == (doc, 1)

    with pytest.raises(ConcurrentUpdate):
        store.put_state("breaker", {"tripped": True}, expected_version=0)
    assert store.put_state("breaker", {"tripped": True}, expected_version=1) == 2
    with pytest.raises(ConcurrentUpdate):
        store.put_state("breaker", {"tripped": False}, expected_version=1)
    assert store.get_state("breaker") == ({"tripped": True}, 2)

    with pytest.raises(NotFound):
        store.put_state("missing", {}, expected_version=4)


def test_state_documents_hold_json_values_only(store: Store) -> None:
    with pytest.raises(TypeError, match="JSON"):
        store.put_state("paper", {"balance": Decimal("1.5")}, expected_version=0)
    assert store.get_state("paper") is None


# -- modes -------------------------------------------------------------------------------------


def test_demo_and_real_stores_are_separate(make_store: StoreFactory) -> None:
    demo, real = make_store(TradingMode.DEMO), make_store(TradingMode.REAL)
    demo.insert_order(make_order("o-1"))
    assert real.get_order("o-1") is None
    real.insert_order(make_order("o-1", mode=TradingMode.REAL))  # no clash across modes
    assert real.mode is TradingMode.REAL and demo.mode is TradingMode.DEMO
