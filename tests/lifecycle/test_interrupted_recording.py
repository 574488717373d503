"""A process killed between storing a fill and moving its position, on MongoDB without
transactions (the fill stays, the position does not move): the next sync of the order
applies the stored fill, once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kestrel.books.ledger import daily_pnl, fill_day
from kestrel.execution.orders import absorb
from kestrel.mode import TradingMode
from kestrel.models import OrderStatus, StatusSource
from tests.ledger.racing import Crash, new_mongo_db, open_racing
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import SYMBOL, World


def test_a_fill_stored_by_a_killed_run_reaches_the_position_on_the_next_sync(
    world: World,
) -> None:
    store = open_racing("mongo", new_mongo_db(), TradingMode.REAL)
    order = store.insert_order(intent("killed"))
    report = {
        "id": "501",
        "clientOrderId": order.client_order_id,
        "status": "closed",
        "filled": 0.5,
        "average": 100.0,
        "trades": [
            {
                "id": "t1",
                "order": "501",
                "amount": 0.5,
                "price": 100.0,
                "timestamp": 1_700_000_000_000,
                "fee": {"cost": 0.05, "currency": "USDT"},
            },
        ],
    }
    store.race("crash")
    with pytest.raises(Crash):
        absorb(store, world.exchange, order, report, StatusSource.ORDER_HISTORY)
    assert len(store.list_fills()) == 1 and store.list_positions() == []  # what the kill left

    restarted = open_racing("mongo", store.db, TradingMode.REAL)
    stored = restarted.get_order(order.client_order_id)
    assert stored is not None
    synced = absorb(restarted, world.exchange, stored, report, StatusSource.ORDER_HISTORY)
    assert (synced.status, synced.filled) == (OrderStatus.FILLED, Decimal("0.5"))
    position = restarted.open_position(SYMBOL)
    assert position is not None
    assert (position.amount, position.entry_cost, position.fees_paid) == (
        Decimal("0.5"),
        Decimal("50"),
        Decimal("0.05"),
    )
    [fill] = restarted.list_fills()
    day = daily_pnl(restarted, fill_day(fill))
    assert day is not None and day["fills"] == 1
    again = absorb(restarted, world.exchange, synced, report, StatusSource.ORDER_HISTORY)
    assert again.version == synced.version  # nothing left to do
