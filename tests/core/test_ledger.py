from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.books.ledger import daily_pnl, fill_day, record_fill
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


def test_fee_in_base_reduces_the_holding_and_is_in_the_entry_price(store: SQLiteStore) -> None:
    record_fill(store, fill("1", Side.BUY, "1", "100", "0.001", currency="BTC"))
    position = store.open_position("BTC/USDT")
    assert position is not None
    assert position.amount == Decimal("0.999")
    assert position.amount * position.avg_entry_price == Decimal("100")  # the quote paid
    assert position.fees == {"BTC": Decimal("0.001")}  # as the exchange charged it
    assert position.fees_paid == Decimal("0")  # already in the entry price: not again


def test_a_buy_fee_in_base_is_counted_once(store: SQLiteStore) -> None:
    """Issue 12 item 3: buy 1 @100 with a 0.001 BTC fee, sell the 0.999 held @100. The wallet
    lost 0.1 USDT (paid 100, got 99.9 back, no BTC left); the books must say 0.1, not 0.2."""
    buy = fill("1", Side.BUY, "1", "100", "0.001", currency="BTC")
    record_fill(store, buy)
    record_fill(store, fill("2", Side.SELL, "0.999", "100", "0"))
    [closed] = store.list_positions(status=PositionStatus.CLOSED)
    assert closed.realized_pnl - closed.fees_paid == Decimal("-0.1")
    day = daily_pnl(store, fill_day(buy))
    assert day is not None and Decimal(day["currencies"]["USDT"]["net"]) == Decimal("-0.1")
    from kestrel.reporting.summary import books_from_positions

    books = books_from_positions(store.list_positions(), {"USDT": Decimal("1000")})
    assert books["USDT"].expected_cash == Decimal("999.9")
    assert books["BTC"].expected_cash == Decimal("0")


def test_untracked_sell_is_kept_and_flagged(store: SQLiteStore) -> None:
    assert record_fill(store, fill("9", Side.SELL, "0.1", "20000", "2"))
    assert store.list_positions() == []
    assert [e.type for e in store.list_events()] == [EventType.CRITICAL]
