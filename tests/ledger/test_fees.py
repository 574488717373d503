"""Fees are kept per currency as the exchange charged them, and valued in quote at fill time
with the rate recorded on the fill; a fee with no rate is said so, never counted as zero."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.books.ledger import daily_pnl, fill_day, record_fill, with_fee_rates
from kestrel.exchange.adapter import fill_from_trade
from kestrel.mode import TradingMode
from kestrel.models import EventType, Fill, Order, OrderType, PositionStatus, Side
from kestrel.reporting.summary import books_from_positions
from kestrel.store.sqlite import SQLiteStore

BNB_RATE = Decimal("600")  # USDT per BNB


@pytest.fixture
def store(tmp_data_dir: Path) -> SQLiteStore:
    return SQLiteStore(tmp_data_dir / "demo.sqlite3", TradingMode.DEMO)


def bnb_fill(trade_id: str, side: Side, amount: str, price: str, bnb: str) -> Fill:
    return Fill(
        trade_id=trade_id,
        client_order_id=f"c-{trade_id}",
        symbol="BTC/USDT",
        side=side,
        amount=Decimal(amount),
        price=Decimal(price),
        fees={"BNB": Decimal(bnb)},
        fee_currency="BNB",
        timestamp=1_700_000_000_000,
    )


def known_rate(currency: str, quote: str) -> Decimal | None:
    return BNB_RATE if (currency, quote) == ("BNB", "USDT") else None


def no_rate(currency: str, quote: str) -> Decimal | None:
    return None


def test_a_fee_in_bnb_is_valued_at_the_rate_recorded_on_the_fill(store: SQLiteStore) -> None:
    # Binance's BNB discount: 0.075% of 2000 USDT = 1.5 USDT, paid as 0.0025 BNB at 600.
    buy = with_fee_rates(bnb_fill("1", Side.BUY, "0.1", "20000", "0.0025"), known_rate)
    assert buy.fee_rates == {"BNB": BNB_RATE}
    record_fill(store, buy)
    [stored] = store.list_fills()
    assert stored.fee_rates == {"BNB": BNB_RATE}  # which rate was used stays on the record
    position = store.open_position("BTC/USDT")
    assert position is not None
    assert (position.fees, position.fee_values) == (
        {"BNB": Decimal("0.0025")},
        {"BNB": Decimal("1.5")},
    )
    assert position.fees_paid == Decimal("1.5")
    assert position.entry_cost == Decimal("2000")  # the fee is not in the cost: it left BNB
    day = daily_pnl(store, fill_day(buy))
    assert day is not None and Decimal(day["currencies"]["USDT"]["fees"]) == Decimal("1.5")


def test_a_fee_with_no_rate_is_flagged_never_counted_as_zero(store: SQLiteStore) -> None:
    buy = with_fee_rates(bnb_fill("1", Side.BUY, "0.1", "20000", "0.0025"), no_rate)
    record_fill(store, buy)
    position = store.open_position("BTC/USDT")
    assert position is not None
    assert position.fees_unvalued == {"BNB": Decimal("0.0025")}
    assert position.fees == {"BNB": Decimal("0.0025")}
    [flag] = store.list_events(types=[EventType.FEE_NOT_VALUED])
    assert "0.0025 BNB" in flag.message and flag.data == {"BNB": "0.0025"}
    day = daily_pnl(store, fill_day(buy))
    assert day is not None
    assert day["currencies"]["USDT"]["fees_not_valued"] == {"BNB": "0.0025"}
    record_fill(store, buy)  # delivered again: one flag, one count
    assert len(store.list_events(types=[EventType.FEE_NOT_VALUED])) == 1


def test_each_currency_book_reconciles_with_fees_in_bnb_base_and_quote(
    store: SQLiteStore,
) -> None:
    """Wallet by hand: USDT 10000, BNB 1. Buy 0.1 @20000 (0.0025 BNB fee), buy 0.1 @21000
    (0.0001 BTC fee), sell 0.1999 @22000 (4.3978 USDT fee): USDT 10000 - 2000 - 2100 +
    4397.8 - 4.3978 = 10293.4022; BTC 0.2 - 0.0001 - 0.1999 = 0; BNB 1 - 0.0025 = 0.9975."""
    record_fill(
        store, with_fee_rates(bnb_fill("1", Side.BUY, "0.1", "20000", "0.0025"), known_rate)
    )
    record_fill(
        store,
        Fill(
            trade_id="2",
            client_order_id="c-2",
            symbol="BTC/USDT",
            side=Side.BUY,
            amount=Decimal("0.1"),
            price=Decimal("21000"),
            fee_cost=Decimal("0.0001"),
            fee_currency="BTC",
            timestamp=1_700_000_000_001,
        ),
    )
    record_fill(
        store,
        Fill(
            trade_id="3",
            client_order_id="c-3",
            symbol="BTC/USDT",
            side=Side.SELL,
            amount=Decimal("0.1999"),
            price=Decimal("22000"),
            fee_cost=Decimal("4.3978"),
            fee_currency="USDT",
            timestamp=1_700_000_000_002,
        ),
    )
    [closed] = store.list_positions(status=PositionStatus.CLOSED)
    # Net PnL = what the wallet gained in USDT, less the BNB spent at its rate (0.0025 x 600).
    assert closed.realized_pnl - closed.fees_paid == Decimal("293.4022") - Decimal("1.5")
    books = books_from_positions([closed], {"USDT": Decimal("10000"), "BNB": Decimal("1")})
    wallet = {"USDT": Decimal("10293.4022"), "BTC": Decimal("0"), "BNB": Decimal("0.9975")}
    assert {c: b.expected_cash for c, b in books.items()} == wallet


def ccxt_order() -> Order:
    return Order(
        client_order_id="x-fees-1",
        exchange_order_id="77",
        mode=TradingMode.REAL,
        exchange="binance",
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        amount=Decimal("1"),
    )


def test_a_ccxt_trade_with_several_fees_keeps_each_currency() -> None:
    # ccxt: `fees` is the complete list; `fee` is only meaningful when there is one.
    trade = {
        "id": "t1",
        "order": "77",
        "amount": 1.0,
        "price": 100.0,
        "timestamp": 1,
        "fee": {"cost": None, "currency": None},
        "fees": [{"cost": 0.05, "currency": "USDT"}, {"cost": 0.0001, "currency": "BNB"}],
    }
    fill = fill_from_trade(ccxt_order(), trade)
    assert fill.fees == {"USDT": Decimal("0.05"), "BNB": Decimal("0.0001")}


def test_a_ccxt_trade_with_one_fee_keeps_it_in_its_currency() -> None:
    trade = {
        "id": "t1",
        "amount": 1.0,
        "price": 100.0,
        "timestamp": 1,
        "fee": {"cost": 0.001, "currency": "BTC"},
    }
    fill = fill_from_trade(ccxt_order(), trade)
    assert (fill.fees, fill.fee_cost, fill.fee_currency) == (
        {"BTC": Decimal("0.001")},
        Decimal("0.001"),
        "BTC",
    )
