from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.ledger import record_fill
from kestrel.mode import TradingMode
from kestrel.models import EventType, Fill, PositionStatus, Side
from kestrel.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_data_dir: Path) -> SQLiteStore:
    return SQLiteStore(tmp_data_dir / "demo.sqlite3", TradingMode.DEMO)


def fill(
    trade_id: str, side: Side, amount: str, price: str, fee: str, currency: str = "USDT"
) -> Fill:
    return Fill(
        trade_id=trade_id,
        client_order_id=f"c-{trade_id}",
        symbol="BTC/USDT",
        side=side,
        amount=Decimal(amount),
        price=Decimal(price),
        fee_cost=Decimal(fee),
        fee_currency=currency,
        timestamp=1,
    )


def test_round_trip_realizes_exact_pnl_and_counts_fees(store: SQLiteStore) -> None:
    assert record_fill(store, fill("1", Side.BUY, "0.1", "20000", "2"), (Decimal("19000"), None))
    assert record_fill(store, fill("2", Side.BUY, "0.1", "22000", "2.2"))
    opened = store.open_position("BTC/USDT")
    assert opened is not None
    assert opened.amount == Decimal("0.2")
    assert opened.avg_entry_price == Decimal("21000")
    assert opened.stop_loss == Decimal("19000")
    assert record_fill(store, fill("3", Side.SELL, "0.05", "23000", "1.15"))
    assert record_fill(store, fill("4", Side.SELL, "0.15", "20000", "3"))
    assert store.open_position("BTC/USDT") is None
    (closed,) = store.list_positions(status=PositionStatus.CLOSED)
    assert closed.realized_pnl == Decimal("0.05") * 2000 + Decimal("0.15") * -1000
    assert closed.fees_paid == Decimal("8.35")
    kinds = [e.type for e in store.list_events()]
    assert kinds == [EventType.POSITION_OPENED, EventType.POSITION_CLOSED]


def test_a_fill_is_applied_once(store: SQLiteStore) -> None:
    buy = fill("1", Side.BUY, "0.1", "20000", "2")
    assert record_fill(store, buy)
    assert not record_fill(store, buy)
    position = store.open_position("BTC/USDT")
    assert position is not None and position.amount == Decimal("0.1")
    assert len(store.list_fills()) == 1


def test_fee_in_base_reduces_the_holding(store: SQLiteStore) -> None:
    record_fill(store, fill("1", Side.BUY, "1", "100", "0.001", currency="BTC"))
    position = store.open_position("BTC/USDT")
    assert position is not None
    assert position.amount == Decimal("0.999")
    assert position.fees_paid == Decimal("0.1")


def test_untracked_sell_is_kept_and_flagged(store: SQLiteStore) -> None:
    assert record_fill(store, fill("9", Side.SELL, "0.1", "20000", "2"))
    assert store.list_positions() == []
    assert [e.type for e in store.list_events()] == [EventType.CRITICAL]
