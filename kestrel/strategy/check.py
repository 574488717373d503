"""`kestrel strategy check`: does a strategy see the future, and how much history does it need?

Lookahead: the indicators and decisions computed on the full series, read at row p, must equal
those computed on the series cut right after row p, for random p. A strategy that uses
`shift(-1)`, a centred window or a whole-series statistic (max, mean, normalisation) fails,
because cutting the future away changes its past. This is also what allows a backtest to
compute indicators once and slice them by position.

Warm-up: indicators computed with only `warmup` (2x, 4x, ...) candles of history are compared
with the same rows computed with all history. Recursive indicators (EMA, RSI, ATR, MACD)
depend on where they started; the report names them, how far off they are, and how many
candles make them agree, so live fetches and backtests load enough.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from pydantic import BaseModel

from kestrel.analysis.frame import candles_to_frame
from kestrel.errors import InvalidMarketData
from kestrel.models import CandleSeries, Signal
from kestrel.strategy.plugin import Strategy, strategy_identity

if TYPE_CHECKING:
    import pandas as pd

REL_TOL = 1e-9  # lookahead: the same arithmetic on the same inputs, so (near) bit-equal
WARMUP_TOL = 1e-6  # warm-up: an indicator "agrees" within a millionth


class Mismatch(BaseModel):
    """A row where the full run and the truncated run disagree."""

    row: int
    timestamp: int
    what: str
    full: str
    truncated: str


class LookaheadReport(BaseModel):
    points: list[int]
    mismatches: list[Mismatch]

    @property
    def ok(self) -> bool:
        return not self.mismatches


class WarmupItem(BaseModel):
    """An indicator whose value depends on how much history was loaded."""

    column: str
    max_rel_diff: float  # with `history` candles loaded
    history_needed: int | None  # candles after which it agrees within WARMUP_TOL; None: >tested


class WarmupReport(BaseModel):
    history: int
    tested: list[int]
    points: int
    items: list[WarmupItem]
    decisions_changed: int  # of `points`, decided differently with only `history` candles


class CheckReport(BaseModel):
    strategy: str
    candles: int
    lookahead: LookaheadReport
    warmup: WarmupReport

    @property
    def ok(self) -> bool:
        return self.lookahead.ok


def _differs(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return abs(a - b) > tol * max(1.0, abs(a), abs(b))


def _rel(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) == math.isnan(b) else math.inf
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _verdict(signal: Signal) -> str:
    return f"{signal.action.value} {signal.confidence:g}"


def _row(frame: pd.DataFrame, row: int) -> dict[str, float]:
    return {str(k): float(v) for k, v in frame.iloc[row].items()}


def _sample(candidates: range, points: int, seed: int) -> list[int]:
    return sorted(random.Random(seed).sample(candidates, min(points, len(candidates))))


def check_lookahead(
    strategy: Strategy, candles: pd.DataFrame, *, points: int = 50, seed: int = 0
) -> LookaheadReport:
    """Compare full-run rows with truncated runs at `points` random rows."""
    full = strategy.indicators(candles)
    start = max(1, min(strategy.warmup, len(candles) - 1))
    rows = sorted(
        random.Random(seed).sample(range(start, len(candles)), min(points, len(candles) - start))
    )
    mismatches: list[Mismatch] = []
    for p in rows:
        cut = strategy.indicators(candles.iloc[: p + 1])
        stamp = int(candles["timestamp"].iloc[p])
        whole, part = _row(full, p), _row(cut, -1)
        for column, value in whole.items():
            if _differs(value, part.get(column, math.nan), REL_TOL):
                mismatches.append(
                    Mismatch(row=p, timestamp=stamp, what=f"indicator {column}",
                             full=f"{value!r}", truncated=f"{part.get(column)!r}")
                )  # fmt: skip
        full_signal, cut_signal = strategy.signal(full, p), strategy.signal(cut, -1)
        if _verdict(full_signal) != _verdict(cut_signal):
            mismatches.append(
                Mismatch(row=p, timestamp=stamp, what="decision",
                         full=_verdict(full_signal), truncated=_verdict(cut_signal))
            )  # fmt: skip
    return LookaheadReport(points=rows, mismatches=mismatches)


def check_warmup(
    strategy: Strategy, candles: pd.DataFrame, *, points: int = 10, seed: int = 0
) -> WarmupReport:
    """Indicators at rows computed from `warmup`, 2x, 4x, 8x candles vs all history."""
    history = max(2, strategy.warmup)
    tested = [h for h in (history, 2 * history, 4 * history, 8 * history) if h < len(candles)]
    if not tested:
        return WarmupReport(history=history, tested=[], points=0, items=[], decisions_changed=0)
    full = strategy.indicators(candles)
    lo = max(tested)
    rows = sorted(
        random.Random(seed).sample(range(lo, len(candles)), min(points, len(candles) - lo))
    )
    worst: dict[int, dict[str, float]] = {h: {} for h in tested}
    changed = 0
    for p in rows:
        whole = _row(full, p)
        for h in tested:
            cut = strategy.indicators(candles.iloc[p + 1 - h : p + 1])
            part = _row(cut, -1)
            for column, value in whole.items():
                diff = _rel(value, part.get(column, math.nan))
                worst[h][column] = max(worst[h].get(column, 0.0), diff)
            if h == history and _verdict(strategy.signal(full, p)) != _verdict(
                strategy.signal(cut, -1)
            ):
                changed += 1
    items = []
    for column, diff in worst[history].items():
        if diff <= WARMUP_TOL:
            continue
        needed = next((h for h in tested if worst[h].get(column, 0.0) <= WARMUP_TOL), None)
        items.append(WarmupItem(column=column, max_rel_diff=diff, history_needed=needed))
    items.sort(key=lambda item: -item.max_rel_diff)
    return WarmupReport(
        history=history, tested=tested, points=len(rows), items=items, decisions_changed=changed
    )


def check_strategy(
    strategy: Strategy, series: CandleSeries, *, points: int = 50, seed: int = 0
) -> CheckReport:
    """Both checks over one candle series."""
    if len(series.candles) <= strategy.warmup + 1:
        raise InvalidMarketData(
            f"{series.symbol} {series.timeframe}: {len(series.candles)} candles; the check "
            f"needs more than the strategy's warm-up ({strategy.warmup})"
        )
    frame = candles_to_frame(series)
    return CheckReport(
        strategy=strategy_identity(strategy).ref,
        candles=len(series.candles),
        lookahead=check_lookahead(strategy, frame, points=points, seed=seed),
        warmup=check_warmup(strategy, frame, points=max(3, points // 5), seed=seed),
    )
