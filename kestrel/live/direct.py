"""Engine hooks as plain in-process calls of the domain (no Prefect): what a bench, a test or a
Prefect-less deployment runs. The flow layer (flows/live.py) wraps the same steps as
subflows and tasks so each shows in the Prefect UI.

A cycle here is the trading cycle's stages (kestrel.trading.batch) over the symbols whose candle
closed together, the same code flows/trading_cycle.py runs as tasks: fetch by REST, refuse a
series with a hole or without the candle that closed, analyze, then risk -> decide -> execute
one symbol at a time under its lease.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal

from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import sync_orders
from kestrel.live.candles import hole
from kestrel.live.claims import CANDLE_MISSED, candle_key
from kestrel.live.engine import ClosedCandle
from kestrel.live.protect import levels_from_store, monitor_at
from kestrel.live.ticks import Levels, StreamPricedExchange
from kestrel.mode import current_mode
from kestrel.models import CandleSeries, Decision, Event, EventType, timeframe_ms
from kestrel.runtime import Runtime
from kestrel.store.recordings import StoreRecordings
from kestrel.strategy.resolve import SymbolPlan, resolve_plans
from kestrel.trading import batch
from kestrel.trading.batch import Progress, TradeProgress, Vet

__all__ = ["DirectHooks", "closed_candle_vet", "record_stood_down", "series_problem"]

log = logging.getLogger(__name__)


def series_problem(series: CandleSeries, open_time: int) -> str | None:
    """Why a cycle must not trade on `series` for the candle opened at `open_time`."""
    times = [c.timestamp for c in series.candles]
    if open_time not in times:
        last = times[-1] if times else None
        return f"the closed candle {open_time} is not confirmed by REST (last: {last})"
    if times[-1] != open_time:
        return f"superseded: candle {times[-1]} closed before this cycle ran (its own cycle runs)"
    missing = hole(times, timeframe_ms(series.timeframe))
    if missing is not None:
        return f"candle {missing} is missing from the series: never trade on a hole"
    return None


def closed_candle_vet(closed: Mapping[str, int]) -> Vet:
    """The fetch stage's check for the live engine: each symbol's series must confirm the
    candle that closed (`closed`: symbol -> its open time) and have no hole."""

    def vet(plan: SymbolPlan, series: CandleSeries) -> str | None:
        return series_problem(series, closed[plan.symbol])

    return vet


def record_stood_down(rt: Runtime, plan: SymbolPlan, open_time: int, why: str) -> None:
    """The candle was claimed but not traded: one event says why (never silent)."""
    symbol, timeframe = plan.symbol, plan.item.timeframe
    key = candle_key(rt.exchange.id, symbol, timeframe, open_time)
    event = Event(
        event_id=f"stood-down:{key}",
        type=EventType.TRADE_BLOCKED,
        mode=current_mode(),
        symbol=symbol,
        reasons=[CANDLE_MISSED],
        message=f"{symbol} {timeframe} candle {open_time}: no cycle: {why}",
        data={"open_time": open_time, "timeframe": timeframe},
    )
    rt.store.append_events([event])


class DirectHooks:
    def __init__(self, rt: Runtime, holder: str = "live engine") -> None:
        self.rt = rt
        self.prices = StreamPricedExchange(rt.exchange)
        self.holder = holder
        self.decisions: list[Decision] = []

    def price(self, symbol: str, price: Decimal, timestamp_ms: int) -> None:
        self.prices.set_price(symbol, price, timestamp_ms)

    def run_cycle(self, closed: Sequence[ClosedCandle]) -> None:
        """One cycle over the symbols whose candle closed: the stages, without retries."""
        rt, settings = self.rt, self.rt.settings
        opened = {candle.symbol: candle.open_time for candle in closed}
        plans = [plan for plan in resolve_plans(settings) if plan.symbol in opened]
        fetched = batch.fetch_all(
            rt,
            plans,
            Progress(),
            may_retry=False,
            workers=settings.ops.max_workers,
            vet=closed_candle_vet(opened),
        )
        for plan in plans:
            if plan.symbol in fetched.stood_down:
                record_stood_down(rt, plan, opened[plan.symbol], fetched.stood_down[plan.symbol])
        analyzed = batch.analyze_all(rt, plans, fetched.done, Progress(), StoreRecordings(rt.store))
        traded = batch.trade_all(
            rt,
            plans,
            analyzed.done,
            TradeProgress(),
            run=self.holder,
            wait_s=settings.ops.cycle_lock_timeout_s,
            may_retry=False,
        )
        self.decisions += [traded.done[p.symbol] for p in plans if p.symbol in traded.done]
        failed = batch.failures(plans, fetched, analyzed, traded)
        if failed:
            raise batch.SymbolsFailed.naming(failed)

    def run_sync(self, reason: str) -> None:
        settings = self.rt.settings
        sync_orders(
            self.rt.store, self.rt.exchange, intent_grace_s=settings.exchange_api.intent_grace_s
        )
        protect_positions(
            self.rt.store, self.rt.exchange, ProtectionPolicy.from_settings(settings.exchange_api)
        )

    def run_monitor(self, reason: str) -> None:
        report = monitor_at(self.rt, self.prices)
        if report.exits:
            log.info("monitor (%s): %s", reason, report.exits)

    def levels(self) -> list[Levels]:
        return levels_from_store(self.rt.store)
