"""The daily report and /pnl say what the ledger booked: the same realized PnL, fees and
closed positions as the positions the real ledger wrote (fees in base counted once, dust
write-offs, fees in a third currency valued at the fill's rate or shown as not valued)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

from fakes.telegram_server import FakeTelegramServer
from kestrel.books.ledger import record_fill
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, Fill, MarketSpec, Side
from kestrel.notify.commands import Caller, CommandContext, run_command
from kestrel.notify.outbox import drain_with_bot
from kestrel.notify.render import format_card
from kestrel.notify.report import build_daily_summary, record_daily_summary
from kestrel.store.sqlite import SQLiteStore

from .helpers import OWNER_CHAT, make_settings

UTC_ZONE = ZoneInfo("UTC")
DAY = date(2026, 3, 4)
NOON = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)

# BTC/USDT with a 0.01 BTC minimum: a remainder below it cannot be sold (dust).
BTC = MarketSpec(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    amount_precision=D("0.00001"),
    price_precision=D("0.01"),
    min_amount=D("0.01"),
    min_notional=D("5"),
)


def fill(
    n: int,
    side: Side,
    amount: str,
    price: str,
    fees: dict[str, str],
    rates: dict[str, str] | None = None,
) -> Fill:
    """A BTC/USDT fill `n` hours into DAY, charged `fees` (per currency)."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    return Fill(
        trade_id=f"t{n}",
        client_order_id=f"kst-{n}",
        symbol="BTC/USDT",
        side=side,
        amount=D(amount),
        price=D(price),
        fee_currency=next(iter(fees)),
        fees={currency: D(cost) for currency, cost in fees.items()},
        fee_rates={currency: D(rate) for currency, rate in (rates or {}).items()},
        timestamp=int((start + timedelta(hours=n)).timestamp() * 1000),
    )


def record(store: SQLiteStore, *fills: Fill, tradable: MarketSpec | None = None) -> None:
    with trading_mode(TradingMode.DEMO):
        for item in fills:
            assert record_fill(store, item, tradable=tradable)


def pnl_text(store: SQLiteStore) -> str:
    ctx = CommandContext(
        store=store, caller=Caller(chat_id=OWNER_CHAT, user="owner"), now=lambda: NOON
    )
    return format_card(run_command(ctx, "pnl", []), None)


def test_a_buy_fee_in_base_is_lost_once(store: SQLiteStore) -> None:
    """Buy 1 BTC @100 paying 0.001 BTC, sell the 0.999 held @100: the wallet lost 0.1 USDT."""
    record(
        store,
        fill(1, Side.BUY, "1", "100", {"BTC": "0.001"}),
        fill(2, Side.SELL, "0.999", "100", {"USDT": "0.0999"}),
    )
    (position,) = store.list_positions()

    summary = build_daily_summary(store, DAY, UTC_ZONE)

    assert summary.realized_pnl == {"USDT": position.realized_pnl} == {"USDT": D("-0.1")}
    assert summary.fees == {"USDT": position.fees_paid} == {"USDT": D("0.0999")}
    assert (summary.closed_count, summary.win_count) == (1, 0)
    text = pnl_text(store)
    assert "Realized PnL: -0.1 USDT" in text and "Fees: 0.0999 USDT" in text
    assert "Win rate: 0% (0/1)" in text


def test_a_position_closed_on_dust_is_closed_in_the_report(store: SQLiteStore) -> None:
    """The 0.009 BTC left after selling 0.99 is below the market's minimum: the ledger closes
    the position and writes the remainder off at cost; the report says the same."""
    record(
        store,
        fill(1, Side.BUY, "1", "100", {"BTC": "0.001"}),
        fill(2, Side.SELL, "0.99", "102", {"USDT": "0.101"}),
        tradable=BTC,
    )
    (position,) = store.list_positions()
    assert position.dust == D("0.009")

    summary = build_daily_summary(store, DAY, UTC_ZONE)

    assert summary.realized_pnl == {"USDT": position.realized_pnl} == {"USDT": D("0.98")}
    assert (summary.closed_count, summary.win_count) == (1, 1)
    assert summary.open_positions == []


def test_a_fee_in_bnb_is_valued_at_its_rate_or_shown_as_not_valued(
    store: SQLiteStore, server: FakeTelegramServer
) -> None:
    """The buy's BNB fee has a rate on its fill (0.0002 BNB x 500 = 0.1 USDT); the sell's has
    none: it is not in the fees, and the report lists it as charged rather than as zero."""
    record(
        store,
        fill(1, Side.BUY, "1", "100", {"BNB": "0.0002"}, rates={"BNB": "500"}),
        fill(2, Side.SELL, "1", "101", {"BNB": "0.0003"}),
    )
    (position,) = store.list_positions()

    summary = build_daily_summary(store, DAY, UTC_ZONE)

    assert summary.realized_pnl == {"USDT": D("1")}
    assert summary.fees == {"USDT": position.fees_paid} == {"USDT": D("0.1")}
    assert summary.fees_not_valued == position.fees_unvalued == {"BNB": D("0.0003")}
    assert "Fees not valued: 0.0003 BNB" in pnl_text(store)
    record_daily_summary(store, summary)
    settings = make_settings(server, event_types=[EventType.DAILY_SUMMARY])
    asyncio.run(drain_with_bot(store, settings))
    (message,) = server.sent_messages()
    assert "Fees: 0.1 USDT" in message.text and "Fees not valued: 0.0003 BNB" in message.text
