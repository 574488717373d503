"""Every rule at and around its boundary. The base context passes everything: BUY 100 USD of
BTC at 20 000 (0.005 BTC), 1000 USDT free, market step 0.00001, min notional 5, fee 0.1%."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kestrel.config.settings import RiskSettings, WatchlistItem
from kestrel.models import Action, MarketSpec, ReasonCode
from kestrel.risk import assess
from kestrel.strategy.profiles import BUILTIN_PROFILES

from .helpers import CANDLE_TS, HOUR, MARKET, NOW, analysis, context, position, trading

D = Decimal
ITEM = "BTC/USDT"


def market(**changes: Any) -> MarketSpec:
    return MARKET.model_copy(update={k: D(str(v)) for k, v in changes.items()})


BUY_CASES: list[tuple[str, dict[str, Any], ReasonCode | None]] = [
    ("trade enabled", {"item": WatchlistItem(symbol=ITEM)}, None),
    (
        "trade disabled",
        {"item": WatchlistItem(symbol=ITEM, trade_enabled=False)},
        ReasonCode.SKIP_DISABLED_TRADE,
    ),
    (
        "amount 0",
        {"item": WatchlistItem(symbol=ITEM, trade_amount_usd=0)},
        ReasonCode.SKIP_INVALID_TRADE_AMOUNT,
    ),
    (
        "amount just above 0 is valid but below the market minimum",
        {"item": WatchlistItem(symbol=ITEM, trade_amount_usd=D("0.01"))},
        ReasonCode.BELOW_MIN_AMOUNT,
    ),
    ("2 open orders of 3", {"open_orders_for_symbol": 2}, None),
    ("3 open orders of 3", {"open_orders_for_symbol": 3}, ReasonCode.SKIP_MAX_OPEN_ORDERS),
    ("9 positions of 10", {"open_positions": 9}, None),
    ("10 positions of 10", {"open_positions": 10}, ReasonCode.SKIP_MAX_POSITIONS),
    (
        "1 position, max 1",
        {"open_positions": 1, "settings": RiskSettings(max_open_positions=1)},
        ReasonCode.SKIP_MAX_POSITIONS,
    ),
    ("stale at the limit (3 candles)", {"now_ms": NOW + 3 * HOUR}, None),
    ("stale past the limit", {"now_ms": NOW + 3 * HOUR + 1}, ReasonCode.SKIP_MARKET_DATA_STALE),
    (
        "stale limit 0.5 candles",
        {"now_ms": NOW + HOUR // 2 + 1, "settings": RiskSettings(stale_after_candles=0.5)},
        ReasonCode.SKIP_MARKET_DATA_STALE,
    ),
    ("no price", {"analysis": analysis(price=D("0"))}, ReasonCode.SKIP_NO_PRICE),
    ("no USD rate for the quote", {"quote_to_usd": None}, ReasonCode.SKIP_NO_PRICE),
    ("confidence at threshold", {"analysis": analysis(confidence=0.55)}, None),
    ("confidence just below", {"analysis": analysis(confidence=0.5499)}, ReasonCode.LOW_CONFIDENCE),
    (
        "notional at min (5 USDT = 0.00025 BTC)",
        {"item": WatchlistItem(symbol=ITEM, trade_amount_usd=D("5"))},
        None,
    ),
    (
        "notional below min",
        {"item": WatchlistItem(symbol=ITEM, trade_amount_usd=D("4.9999"))},
        ReasonCode.BELOW_MIN_NOTIONAL,
    ),
    (
        "min amount not reached after rounding",
        {"market": market(min_amount="0.01")},
        ReasonCode.BELOW_MIN_AMOUNT,
    ),
    ("min amount reached", {"market": market(min_amount="0.005")}, None),
    ("balance covers amount + fee exactly", {"quote_free": D("100.1")}, None),
    ("balance a cent short", {"quote_free": D("100.09")}, ReasonCode.INSUFFICIENT_BALANCE),
    ("already long (single position)", {"position": position()}, ReasonCode.SKIP_POSITION_OPEN),
    (
        "exit of the last position still pending",
        {"pending_exit": True},
        ReasonCode.SKIP_EXIT_PENDING,
    ),
    (
        "adding is fine without single-position mode",
        {"position": position(), "trading": trading(single_position=False)},
        None,
    ),
    (
        "adding does not need a new position slot",
        {"position": position(), "open_positions": 10, "trading": trading(single_position=False)},
        None,
    ),
]


@pytest.mark.parametrize(
    ("changes", "code"), [case[1:] for case in BUY_CASES], ids=[case[0] for case in BUY_CASES]
)
def test_buy_rules(changes: dict[str, Any], code: ReasonCode | None) -> None:
    verdict = assess(context(**changes))
    if code is None:
        assert verdict.approved, verdict.reasons
        assert verdict.amount > 0
    else:
        assert not verdict.approved
        assert code in verdict.codes, verdict.reasons
        assert verdict.amount == 0 and verdict.stop_loss is None


def test_amount_is_rounded_down_to_the_step() -> None:
    # 100 / 20 000 = 0.005 exactly; 101 / 20 000 = 0.00505; 100.9 / 20 000 = 0.005045 -> 0.00504
    for usd, amount in (("100", "0.005"), ("101", "0.00505"), ("100.9", "0.00504")):
        item = WatchlistItem(symbol=ITEM, trade_amount_usd=D(usd))
        assert assess(context(item=item)).amount == D(amount)
    coarse = assess(context(market=market(amount_step="0.001")))
    assert coarse.amount == D("0.005")


def test_confidence_threshold_from_the_profile_overrides_risk() -> None:
    strict = BUILTIN_PROFILES["SWING/CONSERVATIVE"].model_copy(update={"min_confidence": 0.9})
    verdict = assess(context(profile=strict, analysis=analysis(confidence=0.85)))
    assert verdict.codes == [ReasonCode.LOW_CONFIDENCE]
    assert verdict.reasons[0].values == {"confidence": 0.85, "threshold": 0.9}


SELL_CASES: list[tuple[str, dict[str, Any], ReasonCode | None, str]] = [
    (
        "exit the whole position",
        {"position": position("0.01"), "base_free": D("0.01")},
        None,
        "0.01",
    ),
    (
        "capped by the wallet",
        {"position": position("0.0123456"), "base_free": D("0.012")},
        None,
        "0.012",
    ),
    (
        "rounded down to the step",
        {"position": position("0.0123456"), "base_free": D("1")},
        None,
        "0.01234",
    ),
    (
        "dust below the minimum",
        {"position": position("0.000001"), "base_free": D("1")},
        ReasonCode.BELOW_MIN_AMOUNT,
        "0",
    ),
    (
        "exit worth less than min notional",
        {"position": position("0.0002"), "base_free": D("1")},
        ReasonCode.BELOW_MIN_NOTIONAL,
        "0",
    ),
    (
        "nothing held in the wallet",
        {"position": position("0.01"), "base_free": D("0")},
        ReasonCode.BELOW_MIN_AMOUNT,
        "0",
    ),
    (
        "coins held by protective orders are released by the exit",
        {"position": position("0.01"), "base_free": D("0.004"), "protected_base": D("0.006")},
        None,
        "0.01",
    ),
    (
        "exit already pending",
        {"position": position(), "base_free": D("1"), "pending_exit": True},
        ReasonCode.SKIP_EXIT_PENDING,
        "0",
    ),
    ("no position", {}, ReasonCode.SKIP_NO_POSITION, "0"),
]


@pytest.mark.parametrize(
    ("changes", "code", "amount"),
    [case[1:] for case in SELL_CASES],
    ids=[case[0] for case in SELL_CASES],
)
def test_sell_is_the_exit_of_the_long(
    changes: dict[str, Any], code: ReasonCode | None, amount: str
) -> None:
    verdict = assess(context(Action.SELL, **changes))
    assert verdict.amount == D(amount)
    if code is None:
        assert verdict.approved
        assert ReasonCode.EXIT_OPPOSITE_SIGNAL in verdict.codes
        exit_reason = next(r for r in verdict.reasons if r.code is ReasonCode.EXIT_OPPOSITE_SIGNAL)
        assert "unrealized_pnl" in exit_reason.values
    else:
        assert code in verdict.codes


def test_hold_reasons() -> None:
    from kestrel.models.analysis import Consensus

    assert assess(context(Action.HOLD, 0)).codes == [ReasonCode.SKIP_NO_SIGNAL]
    thin = analysis(Action.HOLD, 0).model_copy(update={"enough_data": False})
    assert assess(context(analysis=thin)).codes == [ReasonCode.SKIP_INSUFFICIENT_DATA]
    split = analysis(Action.HOLD, 0).model_copy(
        update={
            "consensus": Consensus(
                mode="SWARM", threshold=0.6, support={"BUY": 0.4, "SELL": 0.3}, voters=3
            )
        }
    )
    (reason,) = assess(context(analysis=split)).reasons
    assert reason.code is ReasonCode.SKIP_NO_CONSENSUS
    assert reason.values["support"] == {"BUY": 0.4, "SELL": 0.3}


def test_every_blocking_reason_is_reported_with_numbers() -> None:
    verdict = assess(
        context(
            emergency_stop=True,
            open_orders_for_symbol=5,
            analysis=analysis(confidence=0.1),
            now_ms=CANDLE_TS + 10 * HOUR,
        )
    )
    assert verdict.codes == [
        ReasonCode.BLOCKED_EMERGENCY_STOP,
        ReasonCode.SKIP_MARKET_DATA_STALE,
        ReasonCode.LOW_CONFIDENCE,
        ReasonCode.SKIP_MAX_OPEN_ORDERS,
    ]
    by_code = {r.code: r.values for r in verdict.reasons}
    assert by_code[ReasonCode.SKIP_MAX_OPEN_ORDERS] == {"open_orders": 5, "max": 3}
    assert by_code[ReasonCode.SKIP_MARKET_DATA_STALE] == {"age_ms": 9 * HOUR, "limit_ms": 3 * HOUR}
