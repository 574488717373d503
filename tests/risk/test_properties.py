"""Properties over the real assess() and decide(): with any blocking gate active, no input
produces an order; and whatever is approved respects the market, the wallet and the caps."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kestrel.config.settings import RiskSettings, WatchlistItem
from kestrel.mode import TradingMode
from kestrel.models import Action, AnalysisResult, MarketSpec, Position, Signal, utcnow
from kestrel.risk import DailyPnl, Exposure, RiskContext, assess
from kestrel.risk.controls import CircuitBreaker
from kestrel.risk.gates import BLOCKING_GATE_CODES, gate_on
from kestrel.risk.sizing import caps
from kestrel.strategy.profiles import BUILTIN_PROFILES
from kestrel.strategy.settings import TradingSettings
from kestrel.trading.decision import decide

HOUR = 3_600_000
CANDLE_TS = 1_000 * HOUR


def decimals(low: str, high: str, places: int = 6) -> st.SearchStrategy[Decimal]:
    return st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False)


optional = st.one_of(st.none(), decimals("1", "100000", 2))
mostly_true = st.sampled_from([True] * 5 + [False])
mostly_false = st.sampled_from([False] * 5 + [True])
optional_pct = st.one_of(st.none(), decimals("1", "100", 1))


@st.composite
def trading_settings(draw: st.DrawFn) -> TradingSettings:
    return TradingSettings.model_validate(
        {
            "single_position": draw(st.booleans()),
            "gates": {
                "emergency_stop": draw(st.booleans()),
                "circuit_breaker": draw(st.booleans()),
                "cooldown": draw(st.booleans()),
                "daily_loss_limit": draw(st.booleans()),  # no states set: the gates pass
                "cooldown_candles": draw(st.floats(0, 5)),
                "daily_loss_limit_pct": draw(optional_pct),
                "daily_loss_limit_usd": draw(optional),
            },
            "sizing": {
                "method": draw(st.sampled_from(["fixed_quote", "percent_of_equity", "risk_based"])),
                "equity_pct": draw(decimals("0.1", "100", 1)),
                "risk_per_trade_pct": draw(decimals("0.1", "20", 1)),
                "max_order_usd": draw(optional),
            },
            "exposure": {
                "max_symbol_usd": draw(optional),
                "max_symbol_pct": draw(optional_pct),
                "max_total_usd": draw(optional),
                "max_total_pct": draw(optional_pct),
            },
        }
    )


@st.composite
def contexts(draw: st.DrawFn) -> RiskContext:
    price = draw(decimals("0.0001", "100000", 4))
    step = draw(st.sampled_from([Decimal("1"), Decimal("0.01"), Decimal("0.00001")]))
    action = draw(st.sampled_from([Action.BUY, Action.BUY, Action.SELL, Action.HOLD]))
    market = MarketSpec(
        symbol="XY/USDT",
        base="XY",
        quote="USDT",
        amount_step=step,
        price_tick=draw(st.sampled_from([Decimal("0.0001"), Decimal("0.01")])),
        min_amount=draw(st.sampled_from([Decimal("0"), step, step * 10])),
        min_notional=draw(decimals("0", "20", 2)),
        taker_fee=draw(st.sampled_from([Decimal("0"), Decimal("0.001"), Decimal("0.0075")])),
    )
    held = draw(st.one_of(st.none(), decimals("0", "1000", 5), st.just(Decimal("10"))))
    position = (
        None
        if held is None
        else Position(
            position_id="p",
            symbol="XY/USDT",
            amount=held,
            avg_entry_price=price,
            last_price=price,
        )
    )
    level = draw(st.one_of(st.none(), decimals("0.0001", "200000", 4)))
    return RiskContext(
        item=WatchlistItem(
            symbol="XY/USDT",
            trade_enabled=draw(mostly_true),
            trade_amount_usd=draw(decimals("0", "100000", 2)),
        ),
        analysis=AnalysisResult(
            symbol="XY/USDT",
            timeframe="1h",
            candle_timestamp=CANDLE_TS,
            price=price,
            indicators={"atr": draw(st.one_of(st.none(), st.floats(0, 10_000)))},
            signal=Signal(
                action=action,
                confidence=draw(st.floats(0.3, 1)),
                suggested_stop_loss=level,
                suggested_take_profit=draw(st.one_of(st.none(), decimals("0.0001", "200000"))),
            ),
        ),
        market=market,
        settings=RiskSettings(
            min_confidence=draw(st.floats(0, 0.7)),
            max_open_orders_per_symbol=draw(st.integers(1, 5)),
            max_open_positions=draw(st.integers(1, 5)),
            stale_after_candles=draw(st.floats(0.5, 5)),
        ),
        trading=draw(trading_settings()),
        profile=draw(st.sampled_from(list(BUILTIN_PROFILES.values()))),
        mode=draw(st.sampled_from(list(TradingMode))),
        now_ms=CANDLE_TS + HOUR + draw(st.integers(0, 4 * HOUR)),
        timeframe_ms=HOUR,
        open_orders_for_symbol=draw(st.sampled_from([0, 0, 0, 1, 2, 5])),
        pending_exit=draw(mostly_false),
        open_positions=draw(st.sampled_from([0, 0, 1, 2, 6])),
        position=position,
        quote_free=draw(st.one_of(decimals("0", "1000000", 2), st.just(Decimal("1e9")))),
        base_free=draw(st.one_of(decimals("0", "1000", 5), st.just(Decimal("10")))),
        quote_to_usd=draw(st.one_of(st.none(), st.just(Decimal("1")), decimals("0.5", "2", 3))),
        equity_usd=draw(st.one_of(st.none(), decimals("0", "10000000", 2))),
        exposure=Exposure(
            symbol_usd=draw(st.one_of(st.just(Decimal("0")), decimals("0", "100000", 2))),
            total_usd=draw(st.one_of(st.just(Decimal("0")), decimals("0", "1000000", 2))),
        ),
        last_fill_ms={},
    )


GATES = ("emergency_stop", "circuit_breaker", "daily_loss_limit", "cooldown")


def activate(ctx: RiskContext, gate: str, overshoot: Decimal) -> RiskContext:
    """`ctx` with `gate` blocking: its state set, and its switch on in DEMO."""
    gates = ctx.trading.gates.model_copy(update={gate: True})
    changes: dict[str, Any] = {"trading": ctx.trading.model_copy(update={"gates": gates})}
    if gate == "emergency_stop":
        changes["emergency_stop"] = True
    elif gate == "circuit_breaker":
        changes["circuit_breaker"] = CircuitBreaker(
            active=True, tripped=True, reason="test", cool_off_until=utcnow() + timedelta(1)
        )
    elif gate == "daily_loss_limit":
        gates = gates.model_copy(update={"daily_loss_limit_usd": Decimal("100")})
        changes["trading"] = ctx.trading.model_copy(update={"gates": gates})
        changes["daily"] = DailyPnl(
            day="d", start_equity_usd=Decimal("1000"), unrealized_usd=-Decimal("100") - overshoot
        )
    else:
        gates = gates.model_copy(update={"cooldown_candles": 1.0})
        changes["trading"] = ctx.trading.model_copy(update={"gates": gates})
        changes["last_fill_ms"] = {"buy": ctx.now_ms, "sell": ctx.now_ms - HOUR + 1}
    return ctx.model_copy(update=changes)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ctx=contexts(),
    blocking=st.lists(st.sampled_from(GATES), min_size=1, unique=True),
    overshoot=decimals("0", "1000", 2),
)
def test_no_order_while_any_blocking_gate_is_active(
    ctx: RiskContext, blocking: list[str], overshoot: Decimal
) -> None:
    for gate in blocking:
        ctx = activate(ctx, gate, overshoot)
    assert all(gate_on(ctx, gate) for gate in blocking)
    verdict = assess(ctx)
    assert not verdict.approved
    assert verdict.amount == 0
    decision = decide(
        cycle="cycle",
        mode=ctx.mode,
        installation="test0001",
        analysis=ctx.analysis,
        verdict=verdict,
        market=ctx.market,
        profile=ctx.profile,
    )
    assert decision.action is Action.HOLD
    assert not decision.is_trade and decision.client_order_id is None and decision.amount == 0
    action = ctx.analysis.signal.action
    if action is Action.BUY or (action is Action.SELL and ctx.position is not None):
        assert BLOCKING_GATE_CODES & set(verdict.codes)  # a would-be trade names its gate


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=contexts())
def test_what_is_approved_fits_the_market_the_wallet_and_the_caps(ctx: RiskContext) -> None:
    check_approved(ctx)


def check_approved(ctx: RiskContext) -> None:
    verdict = assess(ctx)
    event("approved" if verdict.approved else f"refused: {verdict.codes[0]}")
    decision = decide(
        cycle="cycle",
        mode=ctx.mode,
        installation="test0001",
        analysis=ctx.analysis,
        verdict=verdict,
        market=ctx.market,
        profile=ctx.profile,
    )
    if not verdict.approved:
        assert verdict.amount == 0 and not decision.is_trade
        return
    market, amount, price = ctx.market, verdict.amount, ctx.analysis.price
    assert decision.is_trade and decision.amount == amount
    assert ctx.analysis.signal.confidence >= ctx.min_confidence
    assert not ctx.emergency_stop or not gate_on(ctx, "emergency_stop")
    assert amount > 0 and amount >= market.min_amount
    assert amount % market.amount_step == 0
    assert amount * price >= market.min_notional
    if decision.action is Action.BUY:
        assert amount * price * (1 + market.taker_fee) <= ctx.quote_free
        assert decision.stop_loss is not None and decision.take_profit is not None
        assert decision.stop_loss < price < decision.take_profit or (
            decision.take_profit <= price  # a target rounded onto the price by a coarse tick
        )
        assert ctx.quote_to_usd is not None
        notional_usd = amount * price * ctx.quote_to_usd
        for name, _, room in caps(ctx):
            assert notional_usd <= room + Decimal("1e-9"), name
        if ctx.trading.sizing.method == "fixed_quote":
            assert notional_usd <= ctx.item.trade_amount_usd
    else:
        assert ctx.position is not None
        assert amount <= ctx.position.amount and amount <= ctx.base_free


@st.composite
def approvable(draw: st.DrawFn) -> RiskContext:
    """Contexts whose gates and rules pass, so sizing, clipping, rounding and the market
    minimums are what decides (the previous strategy refuses most inputs earlier)."""
    ctx = draw(contexts())
    action = draw(st.sampled_from([Action.BUY, Action.SELL]))
    signal = ctx.analysis.signal.model_copy(update={"action": action, "confidence": 1.0})
    analysis = ctx.analysis.model_copy(
        update={"signal": signal, "indicators": {"atr": draw(st.floats(0.001, 1000))}}
    )
    trading = ctx.trading.model_copy(update={"single_position": action is Action.SELL})
    return ctx.model_copy(
        update={
            "analysis": analysis,
            "trading": trading,
            "item": ctx.item.model_copy(update={"trade_enabled": True}),
            "now_ms": CANDLE_TS + HOUR,
            "open_orders_for_symbol": 0,
            "open_positions": 0,
            "pending_exit": False,
            "quote_to_usd": ctx.quote_to_usd or Decimal("1"),
            "position": ctx.position
            if action is Action.BUY
            else Position(
                position_id="p",
                symbol="XY/USDT",
                amount=draw(decimals("0.00001", "1000", 5)),
                avg_entry_price=ctx.analysis.price,
            ),
        }
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=approvable())
def test_approved_sizes_fit_when_only_sizing_decides(ctx: RiskContext) -> None:
    check_approved(ctx)
