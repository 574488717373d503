"""An account whose equity has no USD value (BTC only, no BTC/USD price): the daily loss
limit is measured in BTC, never computed from a USD equity of 0 (which blocked every entry
with BLOCKED_DAILY_LOSS_LIMIT); a USD amount it cannot check blocks with a reason that says
so."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from kestrel.backtest import backtest_store, execute, prepare
from kestrel.mode import TradingMode
from kestrel.models import EventType, ReasonCode
from kestrel.risk import DailyPnl, assess
from kestrel.risk.daily import DAILY_KEY, ensure_day_start
from kestrel.risk.portfolio import equity_usd
from kestrel.store.sqlite import SQLiteStore
from tests.backtest.helpers import btc_settings, sine_folder, spec

from .helpers import context, trading

D = Decimal


def btc_day(pnl: str, start: str | None = "1") -> DailyPnl:
    return DailyPnl(
        day="2024-01-01",
        currency="BTC",
        start_equity_usd=D(start) if start is not None else None,
        unrealized_usd=D(pnl),
    )


def blocked_by(**changes: Any) -> list[str]:
    verdict = assess(context(**changes))
    return [r.detail for r in verdict.reasons if r.code is ReasonCode.BLOCKED_DAILY_LOSS_LIMIT]


def test_the_percent_limit_holds_in_btc() -> None:
    pct = trading(gates={"daily_loss_limit_pct": "5"})
    assert blocked_by(daily=btc_day("-0.0499"), trading=pct) == []
    (detail,) = blocked_by(daily=btc_day("-0.05"), trading=pct)
    assert "-0.05000000 BTC" in detail and "limit -0.05000000" in detail


def test_a_usd_amount_without_usd_valuation_blocks_and_says_why() -> None:
    usd_only = trading(gates={"daily_loss_limit_pct": None, "daily_loss_limit_usd": "200"})
    (detail,) = blocked_by(daily=btc_day("0"), trading=usd_only)
    assert "no USD valuation" in detail and "daily_loss_limit_pct" in detail
    both = trading(gates={"daily_loss_limit_pct": "5", "daily_loss_limit_usd": "200"})
    assert blocked_by(daily=btc_day("-0.01"), trading=both) == []  # the % applies, in BTC


def test_unvalued_equity_is_unknown_not_zero() -> None:
    assert equity_usd({"BTC": D("1")}, lambda c: None).known is None
    assert equity_usd({"BTC": D("0")}, lambda c: None).known == D("0")
    assert equity_usd({"BTC": D("1"), "USDT": D("5")}, {"USDT": D("1")}.get).known == D("5")


def test_the_day_start_falls_back_to_the_currency_equity_is_known_in(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", TradingMode.DEMO)
    try:
        now = datetime(2024, 3, 5, 12, tzinfo=UTC)
        start = ensure_day_start(store, now, lambda: None, [], fallback=("BTC", lambda: D("1")))
        assert (start.currency, start.equity_usd) == ("BTC", D("1"))
    finally:
        store.close()


def test_a_btc_account_trades_with_the_limit_in_btc(tmp_path: Path) -> None:
    settings = btc_settings(tmp_path / "data", trading={"gates": {"daily_loss_limit_pct": "5"}})
    with backtest_store() as store:
        run = execute(prepare(settings, spec(sine_folder(tmp_path)), store))
        reasons = [r for e in store.list_events(types=[EventType.TRADE_BLOCKED]) for r in e.reasons]
        day = store.get_state(DAILY_KEY)
        fills = store.list_fills()
    assert not run.errors
    assert ReasonCode.BLOCKED_DAILY_LOSS_LIMIT.value not in " ".join(reasons)
    assert len(fills) >= 2
    assert day is not None and day[0]["currency"] == "BTC" and D(day[0]["equity_usd"]) > 0
