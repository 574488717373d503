"""Position sizing (fixed, % of equity, risk-based), the exposure clips, and the protective
levels the size is computed for."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kestrel.config.settings import WatchlistItem
from kestrel.mode import TradingMode
from kestrel.models import Action, ReasonCode
from kestrel.risk import Exposure, assess
from kestrel.risk.levels import protective_levels
from kestrel.strategy.profiles import BUILTIN_PROFILES, build_profiles
from kestrel.trading.decision import decide

from .helpers import MARKET, PRICE, analysis, context, trading

D = Decimal
RICH: dict[str, Any] = {"quote_free": D("1000000")}


def approved_usd(**changes: Any) -> Decimal:
    verdict = assess(context(**{**RICH, **changes}))
    assert verdict.approved, verdict.reasons
    return verdict.amount * PRICE


@pytest.mark.parametrize(
    ("sizing", "equity", "usd"),
    [
        ({"method": "fixed_quote"}, None, "100"),
        ({"method": "percent_of_equity", "equity_pct": "2"}, "50000", "1000"),
        ({"method": "percent_of_equity", "equity_pct": "0.5"}, "50000", "250"),
        # risk-based: lose 1% of 50 000 = 500 USD at the stop; SWING/CONSERVATIVE's stop is
        # 1.5 x ATR 200 = 300 below 20 000, i.e. 1.5% -> 500 / 0.015 = 33 333.33 USD
        ({"method": "risk_based", "risk_per_trade_pct": "1"}, "50000", "33333.2"),
        ({"method": "risk_based", "risk_per_trade_pct": "0.5"}, "50000", "16666.6"),
    ],
)
def test_methods(sizing: dict[str, Any], equity: str | None, usd: str) -> None:
    settings = trading(sizing=sizing, exposure={"max_symbol_pct": None, "max_total_pct": None})
    got = approved_usd(trading=settings, equity_usd=D(equity) if equity else None)
    assert got == D(usd)  # rounded down to the 0.00001 BTC step (0.2 USD here)


def test_equity_based_sizing_needs_equity() -> None:
    verdict = assess(context(trading=trading(sizing={"method": "percent_of_equity"})))
    assert verdict.codes == [ReasonCode.SKIP_NO_PRICE]


CLIPS: list[tuple[str, dict[str, Any], dict[str, Any], str | None, ReasonCode | None]] = [
    ("under every cap", {"max_symbol_usd": "1000"}, {}, "100", None),
    ("max order", {}, {"max_order_usd": "60"}, "60", None),
    (
        "symbol cap in USD: room 40",
        {"max_symbol_usd": "1000"},
        {"exposure": Exposure(symbol_usd=D("960"), total_usd=D("960"))},
        "40",
        None,
    ),
    (
        "symbol cap in % of equity: 25% of 2000 = 500, 450 held",
        {},
        {"equity_usd": D("2000"), "exposure": Exposure(symbol_usd=D("450"), total_usd=D("450"))},
        "50",
        None,
    ),
    (
        "total cap: 90% of 10 000, 8950 held",
        {},
        {"equity_usd": D("10000"), "exposure": Exposure(symbol_usd=D("0"), total_usd=D("8950"))},
        "50",
        None,
    ),
    (
        "room exactly used up",
        {"max_symbol_usd": "1000"},
        {"exposure": Exposure(symbol_usd=D("1000"), total_usd=D("1000"))},
        None,
        ReasonCode.SKIP_MAX_EXPOSURE,
    ),
    (
        "room below the market minimum",
        {"max_total_usd": "1000"},
        {"exposure": Exposure(symbol_usd=D("0"), total_usd=D("996"))},
        None,
        ReasonCode.BELOW_MIN_NOTIONAL,
    ),
]


@pytest.mark.parametrize(
    ("exposure", "extra", "usd", "code"),
    [case[1:] for case in CLIPS],
    ids=[case[0] for case in CLIPS],
)
def test_exposure_clips(
    exposure: dict[str, Any], extra: dict[str, Any], usd: str | None, code: ReasonCode | None
) -> None:
    sizing = {"max_order_usd": extra.pop("max_order_usd")} if "max_order_usd" in extra else {}
    settings = trading(exposure=exposure, sizing=sizing)
    verdict = assess(context(trading=settings, **RICH, **extra))
    if usd is not None:
        assert verdict.approved, verdict.reasons
        assert verdict.amount * PRICE == D(usd)
        clipped = D(usd) < 100
        assert (ReasonCode.SIZE_CLIPPED in verdict.codes) is clipped
    else:
        assert not verdict.approved and code in verdict.codes
        assert verdict.amount == 0


def test_clip_reason_has_the_numbers() -> None:
    settings = trading(sizing={"max_order_usd": "60"})
    clip = next(r for r in assess(context(trading=settings)).reasons if r.values.get("by"))
    assert clip.values == {"by": "max_order_usd", "from_usd": "100", "to_usd": "60"}


@pytest.mark.parametrize(
    ("profile", "atr", "stop", "target"),
    [
        ("SWING/CONSERVATIVE", 200.0, "19700.00", "20800.00"),  # 1.5 / 4 x ATR
        ("SWING/AGGRESSIVE", 200.0, "19400.00", "20500.00"),  # 3 / 2.5 x ATR
        ("SCALP/CONSERVATIVE", 200.0, "19920.00", "20200.00"),  # 0.4% / 1% (ATR unused)
        ("SWING/CONSERVATIVE", 1.0, "19960.00", "20004.00"),  # min stop 0.2% of price
        ("SWING/CONSERVATIVE", 5000.0, "16000.00", "40000.00"),  # max stop 20% of price
    ],
)
def test_levels(profile: str, atr: float, stop: str, target: str) -> None:
    levels = protective_levels(BUILTIN_PROFILES[profile], analysis(atr=atr), MARKET, PRICE)
    assert (levels.stop_loss, levels.take_profit) == (D(stop), D(target))


def test_atr_levels_need_an_atr() -> None:
    verdict = assess(context(analysis=analysis(atr=None)))
    assert verdict.codes == [ReasonCode.SKIP_INSUFFICIENT_DATA]
    percent = BUILTIN_PROFILES["SCALP/AGGRESSIVE"]
    assert assess(context(analysis=analysis(atr=None), profile=percent)).approved


@pytest.mark.parametrize(
    ("stop", "target", "expected_stop", "expected_target", "source"),
    [
        ("19800", "20500", "19800.00", "20500.00", "analyst"),  # tighter, nearer: taken
        ("19000", "25000", "19700.00", "20800.00", "profile"),  # looser, farther: ignored
        ("19990", None, "19700.00", "20800.00", "profile"),  # inside the 0.2% minimum
        ("20100", "19000", "19700.00", "20800.00", "profile"),  # wrong side
    ],
)
def test_analyst_levels_only_when_more_careful(
    stop: str, target: str | None, expected_stop: str, expected_target: str, source: str
) -> None:
    signal_levels: dict[str, Any] = {"suggested_stop_loss": D(stop)}
    if target:
        signal_levels["suggested_take_profit"] = D(target)
    levels = protective_levels(
        BUILTIN_PROFILES["SWING/CONSERVATIVE"], analysis(**signal_levels), MARKET, PRICE
    )
    assert (levels.stop_loss, levels.take_profit, levels.source) == (
        D(expected_stop),
        D(expected_target),
        source,
    )


def test_decision_uses_the_levels_the_size_was_for() -> None:
    profile = build_profiles(
        {"SWING/CONSERVATIVE": {"stop_loss": {"kind": "percent", "value": "2"}}}
    )["SWING/CONSERVATIVE"]
    ctx = context(
        profile=profile,
        trading=trading(sizing={"method": "risk_based"}),
        equity_usd=D("10000"),
        **RICH,
    )
    verdict = assess(ctx)
    assert verdict.stop_loss == D("19600.00")  # 2% below
    decision = decide(
        cycle="c",
        mode=TradingMode.DEMO,
        installation="test0001",
        analysis=ctx.analysis,
        verdict=verdict,
        market=MARKET,
        profile=profile,
    )
    assert (decision.action, decision.stop_loss, decision.take_profit) == (
        Action.BUY,
        verdict.stop_loss,
        verdict.take_profit,
    )
    # risk 1% of 10 000 = 100 USD over a 2% stop = 5000 USD capped at 25% of equity = 2500
    assert decision.amount * PRICE == D("2500")
    assert decision.profile == "SWING/CONSERVATIVE"


def test_refused_verdicts_decide_hold_without_an_order_id() -> None:
    ctx = context(item=WatchlistItem(symbol="BTC/USDT", trade_enabled=False))
    decision = decide(
        cycle="c",
        mode=TradingMode.DEMO,
        installation="test0001",
        analysis=ctx.analysis,
        verdict=assess(ctx),
        market=MARKET,
    )
    assert decision.action is Action.HOLD and decision.client_order_id is None
    assert [r.code for r in decision.reasons] == [ReasonCode.SKIP_DISABLED_TRADE]
