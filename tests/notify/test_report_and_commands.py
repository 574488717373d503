"""The daily report and the read-only commands, computed from books the real ledger wrote."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fakes.telegram_server import FakeTelegramServer
from kestrel.books.ledger import record_fill
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, Fill, Order, OrderStatus, OrderType, Side
from kestrel.notify.commands import Caller, CommandContext, run_command
from kestrel.notify.outbox import drain_with_bot
from kestrel.notify.render import Card, format_card
from kestrel.notify.report import build_daily_summary, record_daily_summary
from kestrel.store.sqlite import SQLiteStore

from .helpers import OWNER_CHAT, make_settings

UTC_ZONE = ZoneInfo("UTC")
DAY = date(2026, 3, 4)
NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def at(hours: float) -> int:
    """Epoch ms, `hours` after the start of DAY (negative: the day before)."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    return int((start + timedelta(hours=hours)).timestamp() * 1000)


def fill(n: int, symbol: str, side: Side, amount: str, price: str, fee: str, hours: float) -> Fill:
    return Fill(
        trade_id=f"t{n}",
        client_order_id=f"kst-{n}",
        symbol=symbol,
        side=side,
        amount=Decimal(amount),
        price=Decimal(price),
        fee_cost=Decimal(fee),
        fee_currency="USDT",
        timestamp=at(hours),
    )


@pytest.fixture
def books(store: SQLiteStore) -> SQLiteStore:
    """BTC: a winning round trip today. ETH: bought yesterday, sold today at a loss.
    SOL: bought today, still open. Recorded through the real ledger."""
    fills = [
        fill(1, "ETH/USDT", Side.BUY, "0.5", "3000", "1.5", -1),
        fill(2, "BTC/USDT", Side.BUY, "0.01", "60000", "0.6", 1),
        fill(3, "BTC/USDT", Side.SELL, "0.01", "61000", "0.61", 3),
        fill(4, "ETH/USDT", Side.SELL, "0.5", "2990", "1.495", 4),
        fill(5, "SOL/USDT", Side.BUY, "2", "150", "0.3", 5),
    ]
    with trading_mode(TradingMode.DEMO):
        for item in fills:
            assert record_fill(store, item)
    return store


def test_daily_summary_from_the_books(books: SQLiteStore) -> None:
    summary = build_daily_summary(books, DAY, UTC_ZONE)

    assert summary.trade_count == 4 and summary.buy_count == 2 and summary.sell_count == 2
    assert summary.realized_pnl == {"USDT": Decimal("5")}  # +10 on BTC, -5 on ETH
    assert summary.fees == {"USDT": Decimal("3.005")}
    assert (summary.closed_count, summary.win_count) == (2, 1)
    (sol,) = summary.open_positions
    assert sol.symbol == "SOL/USDT" and sol.amount == Decimal("2")


def test_daily_summary_is_stored_once_and_delivered(
    books: SQLiteStore, server: FakeTelegramServer
) -> None:
    first = record_daily_summary(books, build_daily_summary(books, DAY, UTC_ZONE))
    again = record_daily_summary(books, build_daily_summary(books, DAY, UTC_ZONE))
    assert first.seq == again.seq and first.type is EventType.DAILY_SUMMARY
    settings = make_settings(server, event_types=[EventType.DAILY_SUMMARY])

    asyncio.run(drain_with_bot(books, settings))

    (message,) = server.sent_messages()
    assert "Daily report" in message.text and "Day: 2026-03-04 (UTC)" in message.text
    assert "Realized PnL: 5 USDT" in message.text and "Fees: 3.005 USDT" in message.text
    assert "Win rate: 50% (1/2)" in message.text and "SOL/USDT: 2 @ 150" in message.text


def command(store: SQLiteStore, text: str, **kwargs: object) -> str:
    ctx = CommandContext(
        store=store,
        caller=Caller(chat_id=OWNER_CHAT, user="owner"),
        now=lambda: NOON,
        **kwargs,  # type: ignore[arg-type]
    )
    name, *args = text.split()
    return plain(run_command(ctx, name.lstrip("/"), args))


def plain(card: Card) -> str:
    return format_card(card, None)


def test_pnl_day_and_week(books: SQLiteStore) -> None:
    today = command(books, "/pnl")
    week = command(books, "/pnl week")

    assert "PnL today" in today and "Trades: 4" in today and "Realized PnL: 5 USDT" in today
    assert "Win rate: 50% (1/2)" in today
    assert "PnL last 7 days" in week and "Trades: 5" in week and "Fees: 4.505 USDT" in week


def test_positions_orders_and_balance(books: SQLiteStore) -> None:
    books.insert_order(
        Order(
            client_order_id="kst-live-1",
            mode=TradingMode.DEMO,
            exchange="paper",
            symbol="SOL/USDT",
            side=Side.SELL,
            type=OrderType.LIMIT,
            amount=Decimal("2"),
            price=Decimal("170"),
            status=OrderStatus.OPEN,
        )
    )

    positions = command(books, "/positions")
    orders = command(books, "/orders")
    no_balance = command(books, "/balance")
    balance = command(
        books, "/balance", balances=lambda: {"USDT": Decimal("9690.5"), "SOL": Decimal("2")}
    )

    assert "Open positions (1)" in positions and "SOL/USDT: 2 @ 150" in positions
    assert "Live orders (1)" in orders and "SOL/USDT sell 2 limit @ 170" in orders
    assert "kst-live-1" in orders
    assert "No balance known yet" in no_balance
    assert "USDT: 9690.5" in balance and "SOL: 2" in balance


def test_status_reports_the_books(books: SQLiteStore) -> None:
    status = command(books, "/status")

    assert "Mode: DEMO" in status and "Emergency stop: off" in status
    assert "Open positions: 1" in status and "Live orders: 0" in status
