"""Every rule at and around its boundary; a blocked verdict never carries an order size."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kestrel.config.settings import WatchlistItem
from kestrel.models import Action, ReasonCode
from kestrel.risk import assess
from tests.risk.helpers import CANDLE_TS, HOUR, context, position


def test_buy_is_sized_rounded_down_and_approved() -> None:
    verdict = assess(context())
    assert verdict.approved
    assert verdict.amount == Decimal("0.005")  # 100 / 20000
    assert ReasonCode.APPROVED in verdict.codes


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"emergency_stop": True}, ReasonCode.BLOCKED_EMERGENCY_STOP),
        (
            {"item": WatchlistItem(symbol="BTC/USDT", trade_enabled=False)},
            ReasonCode.SKIP_DISABLED_TRADE,
        ),
        (
            {"item": WatchlistItem(symbol="BTC/USDT", trade_amount_usd=0)},
            ReasonCode.SKIP_INVALID_TRADE_AMOUNT,
        ),
        ({"open_orders_for_symbol": 3}, ReasonCode.SKIP_MAX_OPEN_ORDERS),
        ({"now_ms": CANDLE_TS + HOUR + 3 * HOUR + 1}, ReasonCode.SKIP_MARKET_DATA_STALE),
        ({"quote_free": Decimal("100")}, ReasonCode.INSUFFICIENT_BALANCE),
        ({"position": position()}, ReasonCode.SKIP_POSITION_OPEN),
        ({"open_positions": 10}, ReasonCode.SKIP_MAX_POSITIONS),
        ({"quote_to_usd": None}, ReasonCode.SKIP_NO_PRICE),
        (
            {"item": WatchlistItem(symbol="BTC/USDT", trade_amount_usd=Decimal("4"))},
            ReasonCode.BELOW_MIN_NOTIONAL,
        ),
    ],
)
def test_each_gate_blocks_with_its_reason(changes: dict[str, Any], code: ReasonCode) -> None:
    verdict = assess(context(**changes))
    assert not verdict.approved
    assert code in verdict.codes


@pytest.mark.parametrize(
    ("changes", "approved"),
    [
        ({"open_orders_for_symbol": 2}, True),
        ({"open_orders_for_symbol": 3}, False),
        ({"now_ms": CANDLE_TS + HOUR + 3 * HOUR}, True),
        ({"now_ms": CANDLE_TS + HOUR + 3 * HOUR + 1}, False),
        ({"quote_free": Decimal("100.1")}, True),  # 100 + 0.1% taker fee
        ({"quote_free": Decimal("100.09")}, False),
    ],
)
def test_boundaries(changes: dict[str, Any], approved: bool) -> None:
    assert assess(context(**changes)).approved is approved


@pytest.mark.parametrize(("confidence", "approved"), [(0.55, True), (0.5499, False)])
def test_confidence_threshold(confidence: float, approved: bool) -> None:
    verdict = assess(context(confidence=confidence))
    assert verdict.approved is approved
    if not approved:
        assert verdict.codes == [ReasonCode.LOW_CONFIDENCE]


def test_hold_is_no_signal() -> None:
    assert assess(context(action=Action.HOLD, confidence=0)).codes == [ReasonCode.SKIP_NO_SIGNAL]


def test_sell_exits_whole_position_capped_by_wallet() -> None:
    verdict = assess(
        context(action=Action.SELL, position=position("0.0123456"), base_free=Decimal("0.012"))
    )
    assert verdict.approved
    assert verdict.amount == Decimal("0.012")


def test_sell_without_position_is_nothing_to_do() -> None:
    # Spot: a SELL only exits a long; without one there is nothing to trade. Only the
    # book-wide gates are reported with it (not e.g. a stale candle or the cooldown).
    assert assess(context(action=Action.SELL)).codes == [ReasonCode.SKIP_NO_POSITION]
    verdict = assess(context(action=Action.SELL, emergency_stop=True, now_ms=CANDLE_TS + 10 * HOUR))
    assert verdict.codes == [ReasonCode.BLOCKED_EMERGENCY_STOP, ReasonCode.SKIP_NO_POSITION]


def test_buy_carries_profile_levels() -> None:
    verdict = assess(context())
    # SWING/CONSERVATIVE: stop 1.5 x ATR (200) below, target 4 x ATR above the price.
    assert verdict.stop_loss == Decimal("19700.00")
    assert verdict.take_profit == Decimal("20800.00")


def test_every_blocking_reason_is_reported() -> None:
    verdict = assess(context(emergency_stop=True, open_orders_for_symbol=5, confidence=0.1))
    assert {
        ReasonCode.BLOCKED_EMERGENCY_STOP,
        ReasonCode.SKIP_MAX_OPEN_ORDERS,
        ReasonCode.LOW_CONFIDENCE,
    } <= set(verdict.codes)
    assert verdict.amount == 0
