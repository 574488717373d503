"""A fill's recording converges whatever write loses a race, on SQLite and on MongoDB without
transactions (where the fill stays stored when the position or the day's write fails)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.books.ledger import daily_pnl, fill_day, record_fill
from kestrel.models import Fill, PositionStatus, Side
from tests.ledger.racing import Racing, new_mongo_db, open_racing

BACKENDS = ["sqlite", "mongo"]


def fill(trade_id: str, side: Side, amount: str, price: str, fee: str = "0") -> Fill:
    return Fill(
        trade_id=trade_id,
        client_order_id=f"c-{trade_id}",
        symbol="BTC/USDT",
        side=side,
        amount=Decimal(amount),
        price=Decimal(price),
        fee_cost=Decimal(fee),
        fee_currency="USDT",
        timestamp=1_700_000_000_000,
    )


def where(backend: str, tmp_path: Path) -> Any:
    return tmp_path / "ledger.sqlite3" if backend == "sqlite" else new_mongo_db()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_position_write_that_loses_a_race_is_retried_to_the_right_position(
    backend: str, tmp_path: Path
) -> None:
    store: Racing = open_racing(backend, where(backend, tmp_path))
    assert record_fill(store, fill("1", Side.BUY, "0.1", "20000", "2"))
    store.race("position")  # the monitor rewrites the position between our read and our write
    assert record_fill(store, fill("2", Side.BUY, "0.1", "22000", "2.2"))
    position = store.open_position("BTC/USDT")
    assert position is not None
    assert (position.amount, position.avg_entry_price) == (Decimal("0.2"), Decimal("21000"))
    assert position.fees_paid == Decimal("4.2")
    day = daily_pnl(store, fill_day(fill("2", Side.BUY, "1", "1")))
    assert day is not None
    assert (day["fills"], day["currencies"]["USDT"]["fees"]) == (2, "4.2")


def test_a_closing_sell_that_loses_a_race_still_closes_the_position_once(
    backend: str, tmp_path: Path
) -> None:
    store = open_racing(backend, where(backend, tmp_path))
    record_fill(store, fill("1", Side.BUY, "0.1", "20000"))
    store.race("position")
    sell = fill("2", Side.SELL, "0.1", "21000", "2.1")
    assert record_fill(store, sell)
    assert not record_fill(store, sell)  # delivered again: nothing moves
    [closed] = store.list_positions(status=PositionStatus.CLOSED)
    assert (closed.realized_pnl, closed.fees_paid) == (Decimal("100"), Decimal("2.1"))
    day = daily_pnl(store, fill_day(sell))
    assert day is not None
    assert (day["fills"], day["positions_closed"]) == (2, 1)
    assert day["currencies"]["USDT"]["net"] == "97.9"


def test_the_day_counts_a_fill_once_when_its_write_loses_a_race(
    backend: str, tmp_path: Path
) -> None:
    store = open_racing(backend, where(backend, tmp_path))
    buy = fill("1", Side.BUY, "0.1", "20000")
    record_fill(store, buy)
    store.race("daily")  # the monitor writes the day's unrealized PnL just before us
    sell = fill("2", Side.SELL, "0.05", "21000", "1.05")
    assert record_fill(store, sell)
    record_fill(store, sell)
    day = daily_pnl(store, fill_day(sell))
    assert day is not None
    assert day["fills"] == 2
    usdt = day["currencies"]["USDT"]
    assert (usdt["realized_pnl"], usdt["fees"], usdt["net"]) == ("50.00", "1.05", "48.95")


def test_a_second_store_object_delivering_the_same_fill_changes_nothing(
    backend: str, tmp_path: Path
) -> None:
    """Two processes (two store objects on one database) absorbing the same trade."""
    data = where(backend, tmp_path)
    first, second = open_racing(backend, data), open_racing(backend, data)
    buy = fill("1", Side.BUY, "0.1", "20000", "2")
    assert record_fill(first, buy)
    assert not record_fill(second, buy)
    [position] = second.list_positions()
    assert (position.amount, position.fees_paid, position.version) == (
        Decimal("0.1"),
        Decimal("2"),
        1,
    )
    day = daily_pnl(second, fill_day(buy))
    assert day is not None and day["fills"] == 1
