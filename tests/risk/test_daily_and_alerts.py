"""Today's PnL for the daily loss limit, and the alert throttle, against a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from kestrel.config.settings import WatchlistItem
from kestrel.models import Action, EventType, Position, PositionStatus, ReasonCode
from kestrel.risk.alerts import LastAlert, alert_for, evaluate_alert
from kestrel.risk.daily import daily_pnl, ensure_day_start
from kestrel.store.base import Store
from kestrel.strategy.settings import AlertSettings

from .helpers import HOUR, NOW, analysis

D = Decimal
MIDDAY = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)


def pos(pid: str, symbol: str = "BTC/USDT", **values: Any) -> Position:
    fields: dict[str, Any] = {"amount": D("1"), "avg_entry_price": D("100")}
    money = {"amount", "avg_entry_price", "realized_pnl", "fees_paid"}
    fields.update({k: D(v) if k in money else v for k, v in values.items()})
    return Position(position_id=pid, symbol=symbol, **fields)


def rates(currency: str) -> Decimal | None:
    return {"USDT": D("1"), "BTC": D("50000")}.get(currency)


def test_day_start_is_taken_once_a_day(store: Store) -> None:
    held = pos("a", realized_pnl="5", fees_paid="1")
    first = ensure_day_start(store, MIDDAY, lambda: D("1000"), [(held, D("110"))])
    again = ensure_day_start(store, MIDDAY + timedelta(hours=3), lambda: D("1"), [])
    assert again == first
    assert first.equity_usd == D("1000")
    assert first.marks["a"].realized == D("4") and first.marks["a"].unrealized == D("10")
    tomorrow = ensure_day_start(store, MIDDAY + timedelta(days=1), lambda: D("900"), [])
    assert (tomorrow.day, tomorrow.equity_usd, tomorrow.marks) == ("2024-03-06", D("900"), {})


def test_pnl_counts_only_what_happened_today(store: Store) -> None:
    carried = pos("carried", realized_pnl="5", fees_paid="1")  # held since yesterday
    start = ensure_day_start(store, MIDDAY, lambda: D("10000"), [(carried, D("110"))])
    now_carried = carried.model_copy(update={"realized_pnl": D("7"), "fees_paid": D("1.5")})
    opened_today = pos("new", amount="2", avg_entry_price="50", fees_paid="0.2")
    closed_today = pos(
        "done",
        status=PositionStatus.CLOSED,
        amount="0",
        realized_pnl="-30",
        fees_paid="0.5",
        closed_at=MIDDAY - timedelta(hours=1),
    )
    closed_yesterday = pos(
        "old",
        status=PositionStatus.CLOSED,
        amount="0",
        realized_pnl="-999",
        closed_at=MIDDAY - timedelta(days=1),
    )
    btc_quoted = pos("eth", symbol="ETH/BTC", amount="1", avg_entry_price="0.05")
    unpriced = pos("x", symbol="AB/XYZ", realized_pnl="-1000")
    result = daily_pnl(
        start,
        [
            (now_carried, D("104")),  # unrealized 10 -> 4: -6; realized net 4 -> 5.5: +1.5
            (opened_today, D("45")),  # unrealized -10, fees -0.2
            (closed_today, None),  # realized -30.5
            (closed_yesterday, None),
            (btc_quoted, D("0.049")),  # -0.001 BTC = -50 USD
            (unpriced, D("1")),
        ],
        rates,
        now=MIDDAY,
    )
    assert result.realized_usd == D("1.5") - D("0.2") - D("30.5")
    assert result.unrealized_usd == D("-6") - D("10") - D("50")
    assert result.pnl_usd == result.realized_usd + result.unrealized_usd
    assert result.start_equity_usd == D("10000")


# -- alerts -----------------------------------------------------------------------------------

ITEM = WatchlistItem(symbol="BTC/USDT")
SETTINGS = AlertSettings(price_change_pct=D("1"), cooldown_candles=4)


def verdict(last: LastAlert | None, price: str = "20000", **changes: Any) -> Any:
    values: dict[str, Any] = {
        "item": ITEM,
        "analysis": analysis(Action.BUY, 0.8, price=D(price)),
        "settings": SETTINGS,
        "min_confidence": 0.55,
        "last": last,
        "now_ms": NOW,
        "timeframe_ms": HOUR,
    }
    values.update(changes)
    return evaluate_alert(**values)


LAST = LastAlert(price=D("20000"), at_ms=NOW - 4 * HOUR)


@pytest.mark.parametrize(
    ("last", "price", "changes", "codes"),
    [
        (None, "20000", {}, [ReasonCode.SIGNAL_BUY]),  # the first alert
        (LAST, "20200", {}, [ReasonCode.SIGNAL_BUY]),  # moved 1% exactly, cooldown just over
        (LAST, "19800", {}, [ReasonCode.SIGNAL_BUY]),  # either direction
        (LAST, "20199.99", {}, [ReasonCode.SKIP_PRICE_CHANGE_INSUFFICIENT]),
        (LAST, "20200", {"now_ms": NOW - 1}, [ReasonCode.SKIP_COOLDOWN_ACTIVE]),
        (
            LAST,
            "20000",
            {"now_ms": NOW - HOUR},
            [ReasonCode.SKIP_PRICE_CHANGE_INSUFFICIENT, ReasonCode.SKIP_COOLDOWN_ACTIVE],
        ),
        (
            None,
            "20000",
            {"item": WatchlistItem(symbol="BTC/USDT", alert_enabled=False)},
            [ReasonCode.SKIP_DISABLED_ALERT],
        ),
        (None, "20000", {"min_confidence": 0.81}, [ReasonCode.LOW_CONFIDENCE]),
        (None, "20000", {"settings": AlertSettings(min_confidence=0.8)}, [ReasonCode.SIGNAL_BUY]),
        (None, "20000", {"analysis": analysis(Action.HOLD, 0)}, [ReasonCode.SKIP_NO_SIGNAL]),
    ],
)
def test_alert_throttle(
    last: LastAlert | None, price: str, changes: dict[str, Any], codes: list[ReasonCode]
) -> None:
    result = verdict(last, price, **changes)
    assert result.codes == codes
    assert result.emitted is (codes[0] is ReasonCode.SIGNAL_BUY)


def test_throttle_reasons_have_the_numbers() -> None:
    moved, cooling = verdict(LAST, "20100", now_ms=NOW - HOUR).reasons
    assert D(moved.values["moved_pct"]) == D("0.5") and moved.values["threshold_pct"] == "1"
    assert cooling.values["cooldown_ms"] == 4 * HOUR and cooling.values["elapsed_ms"] == 3 * HOUR


def test_alerts_are_recorded_once_and_throttled_per_side(store: Store) -> None:
    def emit(action: Action, price: str, now_ms: int) -> bool:
        return alert_for(
            store,
            item=ITEM,
            analysis=analysis(action, 0.9, price=D(price)).model_copy(
                update={"candle_timestamp": now_ms - HOUR}
            ),
            settings=SETTINGS,
            min_confidence=0.55,
            now_ms=now_ms,
            timeframe_ms=HOUR,
        ).emitted

    assert emit(Action.BUY, "100", NOW)
    assert not emit(Action.BUY, "100", NOW + HOUR)  # same price, within the cooldown
    assert emit(Action.SELL, "100", NOW + HOUR)  # the other side has its own throttle
    assert not emit(Action.BUY, "105", NOW + 3 * HOUR)  # moved, still cooling down
    assert emit(Action.BUY, "105", NOW + 4 * HOUR)
    events = store.list_events(types=[EventType.ALERT_EMITTED])
    assert [(e.data["action"], e.data["price"]) for e in events] == [
        ("BUY", "100"),
        ("SELL", "100"),
        ("BUY", "105"),
    ]
    assert all(e.symbol == "BTC/USDT" and e.reasons for e in events)
