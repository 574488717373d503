"""Engine hooks as plain in-process calls of the domain (no Prefect): what a bench, a test or a
Prefect-less deployment runs. The flow layer (flows/live.py) wraps the same steps as
subflows and tasks so each shows in the Prefect UI.

A cycle here is the trading cycle's steps for one symbol (kestrel.trading.cycle): fetch by REST,
refuse a series with a hole or without the candle that closed, analyze, then risk -> decide
-> execute under the symbol's lease, as flows/trading_cycle.py does per symbol.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from kestrel.execution.lease import LeaseBusy, symbol_lease
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import sync_orders
from kestrel.live.candles import hole
from kestrel.live.claims import CANDLE_MISSED, candle_key
from kestrel.live.protect import levels_from_store, monitor_at
from kestrel.live.ticks import Levels, StreamPricedExchange
from kestrel.mode import current_mode
from kestrel.models import CandleSeries, Decision, Event, EventType, timeframe_ms
from kestrel.runtime import Runtime
from kestrel.store.recordings import StoreRecordings
from kestrel.strategy.resolve import resolve_plan
from kestrel.trading import cycle

__all__ = ["DirectHooks", "series_problem"]

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


class DirectHooks:
    def __init__(self, rt: Runtime, holder: str = "live engine") -> None:
        self.rt = rt
        self.prices = StreamPricedExchange(rt.exchange)
        self.holder = holder
        self.decisions: list[Decision] = []

    def price(self, symbol: str, price: Decimal, timestamp_ms: int) -> None:
        self.prices.set_price(symbol, price, timestamp_ms)

    def run_cycle(self, symbol: str, timeframe: str, open_time: int) -> None:
        settings = self.rt.settings
        item = next(
            i for i in settings.watchlist if i.symbol == symbol and i.timeframe == timeframe
        )
        plan = resolve_plan(settings, item)
        series = cycle.fetch_candles(self.rt, plan.item)
        problem = series_problem(series, open_time)
        if problem is not None:
            log.warning("%s %s: no cycle: %s", symbol, timeframe, problem)
            self._stood_down(symbol, timeframe, open_time, problem)
            return
        analysis = cycle.analyze_candles(
            series, plan.profile, settings.trading.analysis, StoreRecordings(self.rt.store)
        )
        rt, wait_s = self.rt, settings.ops.cycle_lock_timeout_s
        try:
            with symbol_lease(rt.store, rt.exchange.id, symbol, self.holder, wait_s=wait_s):
                verdict = cycle.assess_risk(self.rt, plan, analysis)
                decision = cycle.make_decision(self.rt, plan, analysis, verdict)
                cycle.execute(self.rt, decision)
        except LeaseBusy as busy:
            log.warning("%s; the engine stands down on %s for this candle", busy, symbol)
            return
        self.decisions.append(decision)

    def _stood_down(self, symbol: str, timeframe: str, open_time: int, why: str) -> None:
        """The candle was claimed but not traded: one event says why (never silent)."""
        key = candle_key(self.rt.exchange.id, symbol, timeframe, open_time)
        event = Event(
            event_id=f"stood-down:{key}",
            type=EventType.TRADE_BLOCKED,
            mode=current_mode(),
            symbol=symbol,
            reasons=[CANDLE_MISSED],
            message=f"{symbol} {timeframe} candle {open_time}: no cycle: {why}",
            data={"open_time": open_time, "timeframe": timeframe},
        )
        self.rt.store.append_events([event])

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
