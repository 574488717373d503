"""The trading cycle's stage tasks (one task run per stage over every symbol) keep what the
per-symbol tasks guaranteed, REAL mode against the emulator through the real ccxt client:

- a symbol failing inside a stage is named, the others are traded, and the run fails at the
  end naming it;
- a trade stage retried after an order whose reply was lost (the exchange executed it) does
  not redo the symbols it finished, does not decide again, and places every order once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from prefect import flow

from emulator import FaultRule, MarketConfig
from flows.trading_cycle import CycleFailed, run_cycle
from kestrel.books.wallet import forget_credentials
from kestrel.models import Action, AnalysisResult, EventType, Signal
from kestrel.runtime import get_runtime, reset_runtimes
from kestrel.strategy.resolve import resolve_plans
from kestrel.trading import cycle
from kestrel.trading.batch import TradeProgress
from tasks.trading import trade_stage
from tests.lifecycle.conftest import MakeWorld
from tests.lifecycle.scenario import HOUR, KEY, SECRET, World

pytestmark = [pytest.mark.prefect]

HISTORY = 120  # closed candles: enough for every indicator of the default profile
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def fresh_market(symbol: str) -> MarketConfig:
    """Hourly candles ending at the top of this hour (REAL mode judges staleness by the wall
    clock) around 100."""
    now = int(time.time() * 1000)
    first = now - now % HOUR - HISTORY * HOUR
    rows: list[list[float | int | str]] = []
    for i in range(HISTORY + 10):
        price = Decimal(100) + Decimal(i % 7) / 10
        rows.append([first + i * HOUR, str(price), str(price + 1), str(price - 1), str(price), 10])
    return MarketConfig(
        symbol=symbol,
        candles=rows,
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_notional=Decimal("5"),
    )


@pytest.fixture
def credentials_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    yield
    reset_runtimes()
    forget_credentials()


def two_symbol_world(make_world: MakeWorld) -> World:
    """BTC/USDT then ETH/USDT, fetched one after the other (ops.max_workers 1), so a fault
    queued for the second candle request hits ETH's."""
    watchlist = [{"symbol": s, "timeframe": "1h"} for s in SYMBOLS]
    return make_world(
        markets=[fresh_market(s) for s in SYMBOLS],
        start_index=HISTORY,
        settings={"watchlist": watchlist, "ops": {"max_workers": 1}},
    )


def test_a_symbol_failing_in_a_stage_fails_the_run_naming_it_after_the_others(
    prefect_harness: None, make_world: MakeWorld, credentials_env: None
) -> None:
    world = two_symbol_world(make_world)
    # BTC's candles come; the exchange refuses ETH's (a final error, not a transient one).
    world.emu.faults.add(FaultRule(kind="latency", path="/api/v3/klines", delay_s=0.0))
    world.emu.faults.http_error(
        status=400, path="/api/v3/klines", body='{"code":-1121,"msg":"Invalid symbol."}'
    )

    @flow(name="stage-failure")
    def one_cycle() -> None:
        run_cycle(world.settings)

    with pytest.raises(CycleFailed) as failed:
        one_cycle()
    message = str(failed.value)
    assert message.startswith("1 symbol(s) failed: ETH/USDT: BadSymbol"), message
    assert "BTC/USDT" not in message
    decided = get_runtime(world.settings).store.list_events(
        types=[EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED]
    )
    assert {event.symbol for event in decided} == {"BTC/USDT"}  # traded despite ETH


def buy_analyses(world: World) -> dict[str, AnalysisResult]:
    """The real analysis of each symbol's candles, its signal set to BUY: both symbols want
    to buy, so each places an order."""
    rt = get_runtime(world.settings)
    buy = Signal(action=Action.BUY, confidence=0.9, reasoning="test: buy")
    return {
        plan.symbol: cycle.analyze_candles(
            cycle.fetch_candles(rt, plan.item), plan.profile
        ).model_copy(update={"signal": buy})
        for plan in resolve_plans(world.settings)
    }


def test_a_retried_trade_stage_neither_redoes_a_symbol_nor_places_twice(
    prefect_harness: None, make_world: MakeWorld, credentials_env: None
) -> None:
    world = two_symbol_world(make_world)
    analyses = buy_analyses(world)
    plans = resolve_plans(world.settings)
    # BTC's order goes through; ETH's is executed by the exchange but its reply is lost (a
    # transient error): the stage is retried.
    world.emu.faults.add(
        FaultRule(kind="latency", path="/api/v3/order", method="POST", delay_s=0.0)
    )
    world.emu.faults.drop(path="/api/v3/order", method="POST", execute=True)
    progress = TradeProgress()
    stage = trade_stage.with_options(retry_delay_seconds=0)

    @flow(name="stage-retry")
    def trade() -> Any:
        return stage(world.settings, plans, analyses, progress, "test cycle")

    done = trade()
    assert done is progress and progress.attempts == 2  # one retry
    assert progress.failed == {}
    assert [progress.done[s].action for s in SYMBOLS] == [Action.BUY, Action.BUY]
    for symbol in SYMBOLS:
        cid = progress.done[symbol].client_order_id
        assert cid is not None and len(world.orders_on_exchange(cid)) == 1, symbol
    assert len(world.orders_on_exchange()) == 2
    assert ("drop", "POST", "/api/v3/order") in world.emu.faults.fired
    # Decided once each: the retry neither redid BTC nor decided ETH again.
    decided = get_runtime(world.settings).store.list_events(types=[EventType.TRADE_DECIDED])
    assert sorted(event.symbol or "" for event in decided) == SYMBOLS
