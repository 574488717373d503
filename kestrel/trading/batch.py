"""One trading cycle over many symbols as three stages: fetch all, analyze all, trade all.

Why stages over all symbols rather than steps per symbol: an orchestrator (Prefect) pays a
fixed cost per step it tracks, and a cycle of ten symbols in five steps each paid it fifty
times for ~9 ms of work per symbol. Three stages keep every step visible (a stage logs each
symbol's outcome) at a fixed cost per cycle. The stages are plain functions over a Runtime,
so the scheduled flow, `kestrel cycle` and the live engine (with or without Prefect) run the
same code.

- One symbol failing never stops the others: its failure is recorded, named, and the cycle
  goes on; whoever runs the cycle fails it at the end, naming them.
- Retries are per stage (transient exchange errors only): a stage raises the first
  transient error after trying every pending symbol, and the retry resumes from `Progress`,
  the record of what this cycle's stage already did, so a retried stage never redoes a
  symbol it finished. On the last attempt (`may_retry` False) a transient error is recorded
  like any other failure and the stage goes on.
- Trading is one symbol at a time in watchlist order, each under its lease
  (kestrel.execution.lease), so each symbol's risk checks see the orders placed before it.
  A symbol whose decision was made keeps it on a retry: only its placement runs again, and
  placement looks its deterministic client order id up before sending (never twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kestrel.analysis.recordings import Recordings
from kestrel.errors import KestrelError
from kestrel.exchange.errors import is_transient
from kestrel.execution.lease import LeaseBusy, symbol_lease
from kestrel.models import AnalysisResult, CandleSeries, Decision
from kestrel.runtime import Runtime
from kestrel.strategy.resolve import SymbolPlan
from kestrel.trading import cycle

log = logging.getLogger(__name__)

#: where a stage says what it did per symbol (the flow layer passes the task run's logger,
#: so the lines show under the stage's task run in the UI)
Log = logging.Logger | logging.LoggerAdapter[Any]

#: what a stage step says about a symbol's candles before analysis: why not to trade on them
Vet = Callable[[SymbolPlan, CandleSeries], str | None]


class Progress[T]:
    """What one stage of one cycle has done so far, kept across the stage's retries (a plain
    object handed to every attempt, never rebuilt): per symbol, its result, its failure, or
    why it stood down."""

    def __init__(self) -> None:
        self.done: dict[str, T] = {}
        self.failed: dict[str, str] = {}
        self.stood_down: dict[str, str] = {}
        self.attempts = 0

    def pending(self, plans: Sequence[SymbolPlan]) -> list[SymbolPlan]:
        """The plans this stage has not finished (an attempt works only on these)."""
        finished = self.done.keys() | self.failed.keys() | self.stood_down.keys()
        return [plan for plan in plans if plan.symbol not in finished]

    def attempt(self, retries: int) -> bool:
        """Count an attempt; True while a transient error may still be retried."""
        self.attempts += 1
        return self.attempts <= retries


class TradeProgress(Progress[Decision]):
    """Trading's progress, with each symbol's decision as soon as it is made: a retry after
    a failed placement re-places that decision instead of deciding again."""

    def __init__(self) -> None:
        super().__init__()
        self.decided: dict[str, Decision] = {}


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def failures(plans: Sequence[SymbolPlan], *stages: Progress[Any]) -> list[str]:
    """'SYMBOL: why' for every symbol a stage failed, in watchlist order."""
    return [
        f"{plan.symbol}: {stage.failed[plan.symbol]}"
        for plan in plans
        for stage in stages
        if plan.symbol in stage.failed
    ]


class SymbolsFailed(KestrelError):
    """Some symbols of a cycle failed (each named); the others were traded."""

    @classmethod
    def naming(cls, failed: Sequence[str]) -> SymbolsFailed:
        return cls(f"{len(failed)} symbol(s) failed: " + "; ".join(failed))


class _Transient:
    """The transient errors of one attempt: the first is raised once every symbol was tried."""

    def __init__(self, may_retry: bool) -> None:
        self.may_retry = may_retry
        self.first: BaseException | None = None

    def keep(self, exc: BaseException) -> bool:
        """True when `exc` is left to the retry (the symbol stays pending)."""
        if not (self.may_retry and is_transient(exc)):
            return False
        self.first = self.first or exc
        return True

    def raise_first(self) -> None:
        if self.first is not None:
            raise self.first


def fetch_all(
    rt: Runtime,
    plans: Sequence[SymbolPlan],
    progress: Progress[CandleSeries],
    *,
    may_retry: bool,
    workers: int = 8,
    vet: Vet | None = None,
    logger: Log = log,
) -> Progress[CandleSeries]:
    """Every pending symbol's closed candles, `workers` at a time (exchange I/O). `vet` may
    refuse a series (the live engine refuses one without the candle that closed): that
    symbol stands down with the reason."""
    transient = _Transient(may_retry)
    pending = progress.pending(plans)

    def one(plan: SymbolPlan) -> CandleSeries:
        return cycle.fetch_candles(rt, plan.item)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pending)))) as pool:
        futures = [(plan, pool.submit(one, plan)) for plan in pending]
        for plan, future in futures:
            try:
                series = future.result()
            except Exception as exc:
                if not transient.keep(exc):
                    progress.failed[plan.symbol] = describe(exc)
                    logger.error("%s: fetch failed: %s", plan.symbol, describe(exc))
                continue
            problem = vet(plan, series) if vet is not None else None
            if problem is not None:
                progress.stood_down[plan.symbol] = problem
                logger.warning("%s %s: no cycle: %s", plan.symbol, plan.item.timeframe, problem)
                continue
            progress.done[plan.symbol] = series
    fetched = [plan.symbol for plan in pending if plan.symbol in progress.done]
    logger.info("candles of %d symbol(s): %s", len(fetched), ", ".join(fetched) or "none")
    transient.raise_first()
    return progress


def analyze_all(
    rt: Runtime,
    plans: Sequence[SymbolPlan],
    series: Mapping[str, CandleSeries],
    progress: Progress[AnalysisResult],
    recordings: Recordings | None = None,
    logger: Log = log,
) -> Progress[AnalysisResult]:
    """Every pending symbol with candles, analyzed in-process (SOLO); no I/O, no retries."""
    settings = rt.settings.trading.analysis
    signals: list[str] = []
    for plan in progress.pending(plans):
        if plan.symbol not in series:
            continue
        try:
            analysis = cycle.analyze_candles(
                series[plan.symbol], plan.profile, settings, recordings
            )
        except Exception as exc:
            progress.failed[plan.symbol] = describe(exc)
            logger.error("%s: analysis failed: %s", plan.symbol, describe(exc))
            continue
        progress.done[plan.symbol] = analysis
        signal = analysis.signal
        signals.append(f"{plan.symbol} {signal.action.value} {signal.confidence:.2f}")
    logger.info("signals: %s", "; ".join(signals) or "none")
    return progress


def trade_all(
    rt: Runtime,
    plans: Sequence[SymbolPlan],
    analyses: Mapping[str, AnalysisResult],
    progress: TradeProgress,
    *,
    run: str,
    wait_s: float,
    may_retry: bool,
    logger: Log = log,
) -> TradeProgress:
    """Risk -> decide -> execute for every pending analyzed symbol, in watchlist order, each
    under its lease held as `run`. A symbol whose lease stays taken past `wait_s` stands down
    with a SKIP_SYMBOL_BUSY decision naming the holder. A transient error ends the attempt at
    once (later symbols must see this one's outcome first: watchlist order)."""
    transient = _Transient(may_retry)
    for plan in progress.pending(plans):
        analysis = analyses.get(plan.symbol)
        if analysis is None:
            continue
        try:
            trade_one(rt, plan, analysis, progress, run=run, wait_s=wait_s, logger=logger)
        except Exception as exc:
            if transient.keep(exc):
                break
            progress.failed[plan.symbol] = describe(exc)
            if plan.symbol in progress.decided:  # decided, but its order step failed
                progress.done[plan.symbol] = progress.decided[plan.symbol]
            logger.error("%s: trade failed: %s", plan.symbol, describe(exc))
    transient.raise_first()
    return progress


def trade_one(
    rt: Runtime,
    plan: SymbolPlan,
    analysis: AnalysisResult,
    progress: TradeProgress,
    *,
    run: str,
    wait_s: float,
    logger: Log = log,
) -> None:
    """One symbol's read-decide-place section under its lease; one line says what it did."""
    symbol = plan.symbol
    try:
        with symbol_lease(rt.store, rt.exchange.id, symbol, run, wait_s=wait_s) as held:
            decision = progress.decided.get(symbol)
            if decision is None:
                verdict = cycle.assess_risk(rt, plan, analysis)
                decision = cycle.make_decision(rt, plan, analysis, verdict)
                progress.decided[symbol] = decision
            order = cycle.execute(rt, decision, held.lease)
    except LeaseBusy as busy:
        logger.warning("%s; this run stands down on %s", busy, symbol)
        progress.done[symbol] = cycle.stand_down(rt, plan, analysis, busy)
        return
    progress.done[symbol] = decision
    codes = ", ".join(reason.code.value for reason in decision.reasons)
    placed = f"; order {order.client_order_id} {order.status.value}" if order else ""
    logger.info("%s: %s %s (%s)%s", symbol, decision.action.value, decision.amount, codes, placed)
