"""The cycle's risk and decision steps over a real runtime (DEMO paper exchange on the
simulated market, SQLite store): what gather_context reads, and what the steps record."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.execution.sync import sync_orders
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Action, AnalysisResult, Event, EventType, ReasonCode, Signal
from kestrel.risk.controls import set_emergency_stop
from kestrel.risk.gather import gather_context
from kestrel.runtime import Runtime, build_runtime
from kestrel.strategy.resolve import resolve_plan
from kestrel.trading import cycle


def settings_for(data_dir: Path, **trading: Any) -> KestrelSettings:
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=[
            {"symbol": "BTC/USDT", "timeframe": "1h", "trade_amount_usd": "500"},
            {"symbol": "ETH/USDT", "timeframe": "1h", "trade_amount_usd": "500"},
        ],
        paper={"market_data": "simulated", "seed": 3},
        trading=trading,
    )


@pytest.fixture
def rt(tmp_data_dir: Path) -> Iterator[Runtime]:
    with trading_mode(TradingMode.DEMO):
        runtime = build_runtime(settings_for(tmp_data_dir))
        try:
            yield runtime
        finally:
            runtime.store.close()


def analysis_for(
    rt: Runtime, symbol: str, action: Action, confidence: float = 0.9
) -> AnalysisResult:
    plan = resolve_plan(rt.settings, rt.settings.watch(symbol))
    series = cycle.fetch_candles(rt, plan.item)
    real = cycle.analyze_candles(series, plan.profile)
    return real.model_copy(
        update={"signal": Signal(action=action, confidence=confidence, reasoning="forced")}
    )


def step(rt: Runtime, symbol: str, action: Action) -> tuple[Any, Any]:
    item = rt.settings.watch(symbol)
    analysis = analysis_for(rt, symbol, action)
    verdict = cycle.assess_risk(rt, item, analysis)
    decision = cycle.make_decision(rt, item, analysis, verdict)
    order = cycle.execute(rt, decision)
    return decision, order


def fill(rt: Runtime) -> None:
    assert rt.feed is not None
    rt.feed.advance()
    sync_orders(rt.store, rt.exchange)


def decisions(rt: Runtime) -> list[Event]:
    kinds = [EventType.TRADE_DECIDED, EventType.TRADE_BLOCKED, EventType.TRADE_HELD]
    return rt.store.list_events(types=kinds)


def test_a_fresh_book(rt: Runtime) -> None:
    plan = resolve_plan(rt.settings, rt.settings.watch("BTC/USDT"))
    ctx = gather_context(rt, plan, analysis_for(rt, "BTC/USDT", Action.BUY))
    assert ctx.equity_usd == Decimal("10000")
    assert ctx.quote_to_usd == 1 and ctx.quote_free == Decimal("10000")
    assert ctx.daily is not None and ctx.daily.pnl_usd == 0
    assert ctx.daily.start_equity_usd == Decimal("10000")
    assert ctx.exposure.total_usd == 0 and ctx.position is None
    assert not ctx.circuit_breaker.active and not ctx.emergency_stop
    assert ctx.profile.name == "SWING/CONSERVATIVE" and ctx.mode is TradingMode.DEMO


def test_buy_fill_then_exposure_cooldown_and_single_position(rt: Runtime) -> None:
    decision, order = step(rt, "BTC/USDT", Action.BUY)
    assert decision.action is Action.BUY and order is not None
    assert decision.stop_loss < decision.price < decision.take_profit
    plan = resolve_plan(rt.settings, rt.settings.watch("BTC/USDT"))
    pending = gather_context(rt, plan, analysis_for(rt, "BTC/USDT", Action.BUY))
    assert pending.open_orders_for_symbol == 1 and pending.open_positions == 1  # pending entry
    assert pending.exposure.symbol_usd == pytest.approx(Decimal("500"), abs=Decimal("1"))
    fill(rt)
    ctx = gather_context(rt, plan, analysis_for(rt, "BTC/USDT", Action.BUY))
    assert ctx.position is not None and ctx.open_orders_for_symbol == 0
    assert "buy" in ctx.last_fill_ms
    assert ctx.exposure.symbol_usd == pytest.approx(Decimal("500"), rel=Decimal("0.05"))
    again, _ = step(rt, "BTC/USDT", Action.BUY)
    codes = [r.code for r in again.reasons]
    assert again.action is Action.HOLD
    assert ReasonCode.SKIP_POSITION_OPEN in codes and ReasonCode.SKIP_COOLDOWN_ACTIVE in codes
    # the opposite signal closes the position
    exit_decision, exit_order = step(rt, "BTC/USDT", Action.SELL)
    assert exit_decision.action is Action.SELL and exit_order is not None
    assert ReasonCode.EXIT_OPPOSITE_SIGNAL in [r.code for r in exit_decision.reasons]
    fill(rt)
    assert rt.store.open_position("BTC/USDT") is None


def test_every_decision_is_an_event_with_reasons_and_numbers(rt: Runtime) -> None:
    set_emergency_stop(rt.store, active=True, reason="test", by="pytest")
    blocked, order = step(rt, "ETH/USDT", Action.BUY)
    assert order is None and blocked.action is Action.HOLD
    (event,) = decisions(rt)
    assert event.type is EventType.TRADE_BLOCKED
    assert event.reasons == ["BLOCKED_EMERGENCY_STOP"]
    assert event.data["profile"] == "SWING/CONSERVATIVE"
    assert event.data["indicators"]["rsi"] is not None
    assert event.data["analysis"]["mode"] == "SOLO"
    # the alert is independent of the trade verdict
    assert event.data["alert"]["emitted"] is True
    (alert,) = rt.store.list_events(types=[EventType.ALERT_EMITTED])
    assert alert.data["action"] == "BUY" and alert.symbol == "ETH/USDT"
    set_emergency_stop(rt.store, active=False, reason="test over", by="pytest")
    held, _ = step(rt, "ETH/USDT", Action.HOLD)
    assert decisions(rt)[-1].type is EventType.TRADE_HELD
    assert [r.code for r in held.reasons] == [ReasonCode.SKIP_NO_SIGNAL]


def test_circuit_breaker_from_rejected_orders_blocks_the_next_trade(rt: Runtime) -> None:
    for n in range(3):
        rt.store.append_events(
            [Event(event_id=f"x{n}:REJECTED", type=EventType.ORDER_REJECTED, mode=rt.mode)]
        )
    decision, order = step(rt, "BTC/USDT", Action.BUY)
    assert order is None
    (reason,) = decision.reasons
    assert reason.code is ReasonCode.BLOCKED_CIRCUIT_BREAKER
    assert reason.values["trigger"] == "failed_orders" and reason.values["streak"] == 3
    assert rt.store.list_events(types=[EventType.CIRCUIT_BREAKER_TRIPPED])


def test_daily_loss_limit_from_the_book(rt: Runtime) -> None:
    """Today's PnL is the book's: fees paid plus the open position marked at the market."""
    from kestrel.risk import assess
    from kestrel.strategy.settings import GateSettings

    step(rt, "BTC/USDT", Action.BUY)
    fill(rt)
    position = rt.store.open_position("BTC/USDT")
    assert position is not None
    plan = resolve_plan(rt.settings, rt.settings.watch("ETH/USDT"))
    ctx = gather_context(rt, plan, analysis_for(rt, "ETH/USDT", Action.BUY))
    price = Decimal(str(rt.exchange.fetch_ticker("BTC/USDT")["last"]))
    assert ctx.daily is not None
    assert ctx.daily.realized_usd == -position.fees_paid
    assert ctx.daily.unrealized_usd == position.unrealized_pnl(price)
    pnl = ctx.daily.pnl_usd

    def blocked(limit: Decimal) -> bool:
        gates = GateSettings(daily_loss_limit_usd=limit, daily_loss_limit_pct=None)
        trading = ctx.trading.model_copy(update={"gates": gates})
        return (
            ReasonCode.BLOCKED_DAILY_LOSS_LIMIT
            in assess(ctx.model_copy(update={"trading": trading})).codes
        )

    if pnl < 0:
        assert blocked(-pnl) and not blocked(-pnl + Decimal("0.01"))
    else:
        assert not blocked(Decimal("0.01"))
