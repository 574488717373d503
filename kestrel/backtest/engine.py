"""The backtest engine: the live pipeline, step by step, on a simulated clock.

Each step at time t (a close of some symbol's timeframe) runs, in the demo's order:
order sync + protection (kestrel.execution.sync, kestrel.execution.protection) -> position monitor
(kestrel.execution.monitor) -> for each symbol whose candle closed at t: fetch -> analyze -> risk ->
decide -> execute (kestrel.trading.cycle, the functions the trading-cycle tasks call), under the
symbol's lease as the flow holds it. The exchange is the strict paper exchange
(kestrel.exchange.paper), fed by BacktestFeed, so fills follow docs/paper-exchange.md on the
finest candles present. `utcnow()` reads the simulated clock for the whole run, so the
daily loss limit, the circuit breaker's cool-off and every record's timestamps are market
time. There is no second implementation of strategy, sizing, orders or exits here: this
module only moves the clock and calls those functions.

Skipping (spec.fast): order sync and protection are skipped while the store has no live
order and no open position, and the monitor while there is no open position. Those passes
then find nothing to do (sync and protection iterate live orders and open positions; the
monitor iterates open positions), so orders, fills and balances are the same; the only
thing skipped is the monitor's empty "unrealized PnL is 0" note on the day's report
document. tests/backtest/test_fast_path.py runs both ways and compares.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from kestrel.analysis.base import Analyst
from kestrel.analysis.cache import IndicatorCache
from kestrel.analysis.engine import analyze, build_analyst
from kestrel.analysis.recordings import Recordings, load_recordings
from kestrel.backtest.analysts import OnMissing, ReplayedLLM, ReplayedSentiment
from kestrel.backtest.feed import BacktestFeed
from kestrel.backtest.spec import BacktestSpec, backtest_settings, starting_balances
from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, MissingRecording
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_factory import watchlist_markets
from kestrel.execution.lease import symbol_lease
from kestrel.execution.monitor import monitor_positions
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import sync_orders
from kestrel.ids import INSTALLATION_KEY
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import (
    LIVE_STATUSES,
    AnalysisResult,
    CandleSeries,
    PositionStatus,
    simulated_clock,
)
from kestrel.runtime import Runtime
from kestrel.store.base import Store
from kestrel.store.sqlite import SQLiteStore
from kestrel.strategy.resolve import SymbolPlan, resolve_plans
from kestrel.trading import cycle

log = logging.getLogger(__name__)

BACKTEST_INSTALLATION = "backtest"  # 8 chars of [a-z0-9]: client order ids are reproducible
RUN_NAME = "backtest"
Progress = Callable[[int, int], None]


@dataclass
class EquityPoint:
    timestamp: int
    balances: dict[str, Decimal]
    equity: Decimal | None  # in the run's currency; None when a price was missing


@dataclass
class BacktestRun:
    """What happened: the runtime (store, paper exchange, feed) to read the books from, the
    schedule, and the equity after every step."""

    settings: KestrelSettings
    spec: BacktestSpec
    runtime: Runtime
    plans: list[SymbolPlan]
    schedule: list[tuple[int, list[str]]]
    currency: str
    starting: dict[str, Decimal]
    equity: list[EquityPoint] = field(default_factory=list)
    steps_done: int = 0
    cycles: int = 0
    candles: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: {"sync": 0, "monitor": 0})
    errors: list[str] = field(default_factory=list)
    indicators: IndicatorCache | None = None
    partial: bool = False
    elapsed_s: float = 0.0

    @property
    def feed(self) -> BacktestFeed:
        feed = self.runtime.feed
        assert isinstance(feed, BacktestFeed)
        return feed

    @property
    def first_ms(self) -> int:
        return self.schedule[0][0]

    @property
    def last_ms(self) -> int:
        return self.schedule[-1][0]


def moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def build_schedule(
    feed: BacktestFeed, plans: list[SymbolPlan], spec: BacktestSpec
) -> list[tuple[int, list[str]]]:
    """(time, symbols whose cycle runs then) for every close in range, in time order; the
    symbols in watchlist order. A symbol's first cycle has `spec.warmup` candles behind it."""
    start, end = spec.start_ms, spec.end_ms
    due: dict[int, list[str]] = {}
    coverage: list[str] = []
    for plan in plans:
        data = feed.data[plan.symbol]
        closes = data.analysis.closes
        coverage.append(
            f"{plan.symbol} {data.timeframe}: {moment(closes[0])} .. {moment(closes[-1])}"
        )
        chosen = [
            t
            for t in closes[spec.warmup - 1 :]
            if (start is None or t >= start) and (end is None or t <= end)
        ]
        for t in chosen:
            due.setdefault(t, []).append(plan.symbol)
    if len(due) < 2:
        asked = f"{spec.start or 'the start'} .. {spec.end or 'the end'}"
        raise ConfigError(
            f"the range {asked} holds fewer than 2 steps after a warm-up of {spec.warmup} "
            f"candles; the data covers: {'; '.join(coverage)}. Widen the range, pick other "
            "data or lower --warmup"
        )
    return sorted(due.items())


RAM_DIR = Path("/dev/shm")  # tmpfs on Linux: ~25% faster per compare-and-set than a disk file


def scratch_dir() -> Path | None:
    """Where the throwaway store goes: RAM when the machine offers a tmpfs, else the
    system's temporary folder. (An SQLite ':memory:' database is per connection, and the
    store opens one per thread, e.g. a lease's heartbeat: a file shared by all is safer.)"""
    return RAM_DIR if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK) else None


@contextmanager
def backtest_store(directory: Path | None = None) -> Iterator[Store]:
    """A fresh DEMO store (SQLite, the live Store implementation) in a temporary folder."""
    where = directory or scratch_dir()
    with tempfile.TemporaryDirectory(prefix="kestrel-backtest-", dir=where) as folder:
        store = SQLiteStore(Path(folder) / "backtest.sqlite3", TradingMode.DEMO)
        try:
            store.put_state(INSTALLATION_KEY, {"id": BACKTEST_INSTALLATION}, expected_version=0)
            yield store
        finally:
            store.close()


def panel(
    settings: KestrelSettings,
    recordings: Recordings | None = None,
    on_missing: OnMissing = "hold",
) -> list[tuple[Analyst, float]]:
    """The configured analysts; those that would call a live service (LLM, sentiment) replay
    answers recorded live instead (kestrel.backtest.analysts), never an HTTP call."""
    analysis = settings.trading.analysis
    chosen: list[tuple[Analyst, float]] = []
    for spec in analysis.panel():
        analyst: Analyst
        if spec.kind == "technical":
            analyst = build_analyst(spec, analysis)
        elif spec.kind == "llm":
            analyst = ReplayedLLM(spec.llm or analysis.llm, spec.label, recordings, on_missing)
        else:
            analyst = ReplayedSentiment(analysis.sentiment, spec.label, recordings, on_missing)
        chosen.append((analyst, spec.weight))
    return chosen


def spec_panel(settings: KestrelSettings, spec: BacktestSpec) -> list[tuple[Analyst, float]]:
    """The panel of this backtest: its recordings file (if any) read once, up front."""
    recordings = load_recordings(spec.recordings) if spec.recordings is not None else None
    return panel(settings, recordings, spec.on_missing_answer)


def analyze_plan(
    rt: Runtime,
    plan: SymbolPlan,
    analysts: list[tuple[Analyst, float]],
    cache: IndicatorCache | None = None,
    limit: int = cycle.CANDLE_LIMIT,
) -> AnalysisResult:
    """The live cycle's fetch and analysis; `cache` supplies the indicator rows of the
    fetched candles (kestrel.analysis.cache), `limit` is how many candles are fetched."""
    series = cycle.fetch_candles(rt, plan.item, limit)
    return analyze(
        series,
        plan.profile,
        settings=rt.settings.trading.analysis,
        analysts=analysts,
        cache=cache,
    )


def precompute(feed: BacktestFeed, plans: list[SymbolPlan]) -> IndicatorCache:
    """Every plan's indicators over its whole loaded series, once (the candles the cycle
    fetches from the feed are slices of these, with the feed's label as their source)."""
    cache = IndicatorCache()
    for plan in plans:
        data = feed.data[plan.symbol]
        series = CandleSeries(
            symbol=plan.symbol,
            timeframe=data.timeframe,
            candles=data.analysis.candles,
            source=feed.label,
        )
        cache.fill(series, plan.profile)
    return cache


def upkeep(rt: Runtime) -> None:
    """Order sync then protection: tasks.upkeep.sync_pass without Prefect."""
    sync_orders(rt.store, rt.exchange, intent_grace_s=rt.settings.exchange_api.intent_grace_s)
    protect_positions(
        rt.store, rt.exchange, ProtectionPolicy.from_settings(rt.settings.exchange_api)
    )


def trade_symbols(
    run: BacktestRun, plans: list[SymbolPlan], analysts: list[tuple[Analyst, float]]
) -> None:
    """kestrel.trading.cycle for the due symbols: every analysis, then risk -> decide -> execute one
    symbol at a time in watchlist order, each under its lease (flows.trading_cycle.run_cycle)."""
    rt, errors = run.runtime, run.errors
    analyses: list[tuple[SymbolPlan, AnalysisResult]] = []
    for plan in plans:
        limit = cycle.CANDLE_LIMIT
        if run.spec.full_history:  # every loaded candle (the exchange reads None as its default)
            limit = max(limit, len(run.feed.data[plan.symbol].analysis.candles))
        try:
            analyses.append((plan, analyze_plan(rt, plan, analysts, run.indicators, limit)))
        except MissingRecording:
            raise  # the user chose on_missing_answer="error": the backtest stops
        except Exception as exc:
            errors.append(
                f"{moment(rt.now_ms(plan.symbol))} {plan.symbol}: {type(exc).__name__}: {exc}"
            )
    for plan, analysis in analyses:
        try:
            with symbol_lease(rt.store, rt.exchange.id, plan.symbol, RUN_NAME):
                verdict = cycle.assess_risk(rt, plan, analysis)
                decision = cycle.make_decision(rt, plan, analysis, verdict)
                cycle.execute(rt, decision)
        except Exception as exc:
            errors.append(
                f"{moment(rt.now_ms(plan.symbol))} {plan.symbol}: {type(exc).__name__}: {exc}"
            )


def has_live_orders(store: Store) -> bool:
    return bool(store.list_orders(statuses=LIVE_STATUSES, limit=1))


def has_open_positions(store: Store) -> bool:
    return bool(store.list_positions(status=PositionStatus.OPEN))


def value_in(
    currency: str, balances: dict[str, Decimal], prices: dict[str, Decimal]
) -> Decimal | None:
    """Balances valued in `currency` through the symbols' last prices (direct, inverse, or
    through one other currency); None when a held currency has no path."""
    rates: dict[tuple[str, str], Decimal] = {}
    for symbol, price in prices.items():
        base, _, quote = symbol.partition("/")
        rates[(base, quote)] = price
        if price:
            rates[(quote, base)] = 1 / price

    def rate(source: str) -> Decimal | None:
        if source == currency:
            return Decimal(1)
        if (source, currency) in rates:
            return rates[(source, currency)]
        for (a, b), first in rates.items():
            if a == source and (b, currency) in rates:
                return first * rates[(b, currency)]
        return None

    total = Decimal(0)
    for held, amount in balances.items():
        if not amount:
            continue
        found = rate(held)
        if found is None:
            return None
        total += amount * found
    return total


def record_equity(run: BacktestRun) -> None:
    found = run.runtime.store.get_state("paper_account")
    balances = (
        {c: Decimal(str(v)) for c, v in found[0].get("balances", {}).items()}
        if found is not None
        else dict(run.starting)
    )
    prices = {}
    for symbol in run.feed.symbols:
        close = run.feed.last_close(symbol)
        if close is not None:
            prices[symbol] = Decimal(str(close))
    run.equity.append(EquityPoint(run.feed.now, balances, value_in(run.currency, balances, prices)))


def step(run: BacktestRun, symbols: list[str], analysts: list[tuple[Analyst, float]]) -> None:
    rt, fast = run.runtime, run.spec.fast
    positions = not fast or has_open_positions(rt.store)
    if positions or not fast or has_live_orders(rt.store):
        upkeep(rt)
    else:
        run.skipped["sync"] += 1
    if not fast or has_open_positions(rt.store):
        monitor_positions(rt)
    else:
        run.skipped["monitor"] += 1
    due = [plan for plan in run.plans if plan.symbol in symbols]
    trade_symbols(run, due, analysts)
    run.cycles += len(due)


def prepare(settings: KestrelSettings, spec: BacktestSpec, store: Store) -> BacktestRun:
    """Load the data, resolve the strategies, build the paper exchange; nothing runs yet."""
    bt = backtest_settings(settings, spec)
    plans = resolve_plans(bt)
    feed = BacktestFeed.load(
        spec.data_dir, {plan.symbol: plan.item.timeframe for plan in plans}, detail=spec.detail
    )
    schedule = build_schedule(feed, plans, spec)
    feed.now = schedule[0][0]
    balances = starting_balances(bt, spec)
    with trading_mode(TradingMode.DEMO):
        exchange = PaperExchange(store, feed, watchlist_markets(bt, feed), bt.paper, balances)
    runtime = Runtime(settings=bt, store=store, exchange=exchange, feed=feed)
    currency = spec.currency or plans[0].symbol.partition("/")[2]
    candles = sum(
        len(
            feed.data[p.symbol].analysis.candles[
                : feed.data[p.symbol].analysis.closed_count(schedule[-1][0])
            ]
        )
        for p in plans
    )
    return BacktestRun(
        settings=bt,
        spec=spec,
        runtime=runtime,
        plans=plans,
        schedule=schedule,
        currency=currency,
        starting=balances,
        candles=candles,
        indicators=precompute(feed, plans) if spec.precompute else None,
    )


def execute(
    run: BacktestRun,
    progress: Progress | None = None,
    analysts: list[tuple[Analyst, float]] | None = None,
) -> BacktestRun:
    """Run every step (the last one only syncs: its orders fill at the next price, as the
    demo's final sync). Ctrl-C stops after the step under way and marks the run partial.
    `analysts`: another panel than the spec's (default: `spec_panel`, which replays)."""
    feed = run.feed
    if analysts is None:
        analysts = spec_panel(run.settings, run.spec)
    total = len(run.schedule)
    began = time.perf_counter()
    with trading_mode(TradingMode.DEMO), simulated_clock(lambda: moment(feed.now)):
        try:
            for index, (now, symbols) in enumerate(run.schedule[:-1]):
                feed.now = now
                step(run, symbols, analysts)
                record_equity(run)
                run.steps_done = index + 1
                if progress is not None:
                    progress(run.steps_done, total)
            feed.now = run.last_ms
            upkeep(run.runtime)
            record_equity(run)
            run.steps_done = total
        except KeyboardInterrupt:
            run.partial = True
            log.warning("backtest interrupted after %d of %d steps", run.steps_done, total)
    run.elapsed_s = time.perf_counter() - began
    return run
