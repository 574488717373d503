"""What a trader reads after a backtest: trades, tables, metrics, the reconciled books.

Trades are the positions the ledger kept (a position is a pure function of its fills), so
the trade list is the live books, not a second bookkeeping. Ratios come from
empyrical-reloaded over the equity curve (the wallet marked to market after every step);
trade statistics (win rate, profit factor, expectancy) are sums over the trade list. The
books table is kestrel.reporting.summary's, the one the demo ends with, and must reconcile exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kestrel.backtest.engine import BacktestRun, moment, value_in
from kestrel.models import EventType, Fill, Order, OrderRole, Position, PositionStatus, utcnow
from kestrel.reporting.summary import SessionSummary, summarize, summary_rows
from kestrel.strategy.builtin import profile_identity

YEAR_MS = 365 * 24 * 3_600_000


class Trade(BaseModel):
    symbol: str
    position_id: str
    entry_time: datetime
    entry_price: Decimal
    exit_time: datetime | None
    exit_price: Decimal | None
    amount: Decimal = Field(description="bought, in the base currency")
    fees: Decimal = Field(description="in the quote currency, valued at fill time")
    pnl: Decimal = Field(description="realized (open: unrealized at the last price), in quote")
    pnl_pct: float
    pnl_value: float | None = Field(description="pnl in the run's currency at exit")
    exit_reason: str
    is_open: bool = False


class Metrics(BaseModel):
    currency: str
    start_equity: float | None
    end_equity: float | None
    total_return: float | None
    cagr: float | None
    max_drawdown: float | None
    max_drawdown_duration: str
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    win_rate: float | None
    profit_factor: float | None
    expectancy: float | None = Field(description="mean PnL per closed trade, run currency")
    exposure: float = Field(description="share of the range with a position open")
    fees_paid: float | None = Field(description="all fees, run currency")
    trade_count: int
    open_trades: int
    buy_and_hold: float | None = Field(description="equal-weight return of the symbols held")
    buy_and_hold_by_symbol: dict[str, float]


class BacktestResult(BaseModel):
    id: str
    label: str = ""
    created_at: datetime
    status: str = Field(description="complete | partial")
    strategies: dict[str, str]
    strategy_ids: dict[str, str] = Field(
        default_factory=dict,
        description="symbol -> the strategy's identity, name@version#hash of code and "
        "parameters, as every decision of the run records it",
    )
    settings_hash: str
    spec: dict[str, Any]
    data_source: str
    start: datetime
    end: datetime
    steps: int
    cycles: int
    candles: int
    elapsed_s: float
    candles_per_s: float
    skipped: dict[str, int]
    errors: list[str]
    metrics: Metrics
    trades: list[Trade]
    by_symbol: list[dict[str, Any]]
    by_exit_reason: list[dict[str, Any]]
    books: list[dict[str, str]]
    reconciled: bool
    orders_by_status: dict[str, int]
    decisions: dict[str, int] = Field(
        default_factory=dict, description="reason code -> how many cycle decisions gave it"
    )
    fills: int
    equity: list[tuple[int, float | None]] = Field(description="(ms, equity) after each step")


def _avg(fills: list[Fill]) -> Decimal | None:
    amount = sum((f.amount for f in fills), Decimal(0))
    return sum((f.amount * f.price for f in fills), Decimal(0)) / amount if amount else None


def exit_reason(order: Order | None) -> str:
    if order is None:
        return "unknown"
    if order.role is OrderRole.STOP_LOSS:
        return "STOP_LOSS_ORDER"
    if order.role is OrderRole.EXIT:
        return order.reason or "EXIT"
    return "SIGNAL_SELL"


def prices_at(run: BacktestRun, ms: int) -> dict[str, Decimal]:
    out = {}
    for symbol, data in run.feed.data.items():
        visible = data.detail.closed_count(ms)
        if visible:
            out[symbol] = Decimal(str(data.detail.candles[visible - 1].close))
    return out


def trades_of(run: BacktestRun) -> list[Trade]:
    store = run.runtime.store
    fills = {f.key: f for f in store.list_fills()}
    orders = {o.client_order_id: o for o in store.list_orders()}
    trades: list[Trade] = []
    for position in store.list_positions():
        trades.append(_trade(run, position, fills, orders))
    return sorted(trades, key=lambda t: (t.entry_time, t.symbol))


def _trade(
    run: BacktestRun, position: Position, fills: dict[str, Fill], orders: dict[str, Order]
) -> Trade:
    own = [fills[key] for key in position.fills if key in fills]
    buys = [f for f in own if f.side.value == "buy"]
    sells = [f for f in own if f.side.value == "sell"]
    amount = sum((f.amount for f in buys), Decimal(0))
    entry = _avg(buys) or position.avg_entry_price
    quote = position.symbol.partition("/")[2]
    is_open = position.status is PositionStatus.OPEN
    exit_price: Decimal | None
    if is_open:
        last = prices_at(run, run.last_ms).get(position.symbol, position.avg_entry_price)
        pnl = position.realized_pnl + position.unrealized_pnl(last)
        reason, exit_time, exit_price = "OPEN_AT_END", None, last
        at = run.last_ms
    else:
        last_sell = max(sells, key=lambda f: f.timestamp) if sells else None
        reason = exit_reason(orders.get(last_sell.client_order_id) if last_sell else None)
        exit_time = position.closed_at
        exit_price = _avg(sells)
        pnl = position.realized_pnl
        at = last_sell.timestamp if last_sell else run.last_ms
    cost = sum((f.amount * f.price for f in buys), Decimal(0))
    rate = value_in(run.currency, {quote: Decimal(1)}, prices_at(run, at))
    return Trade(
        symbol=position.symbol,
        position_id=position.position_id,
        entry_time=position.opened_at,
        entry_price=entry,
        exit_time=exit_time,
        exit_price=exit_price,
        amount=amount,
        fees=position.fees_paid,
        pnl=pnl,
        pnl_pct=float(pnl / cost * 100) if cost else 0.0,
        pnl_value=float(pnl * rate) if rate is not None else None,
        exit_reason=reason,
        is_open=is_open,
    )


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def drawdown_duration(points: list[tuple[int, float]]) -> timedelta:
    """The longest time from a peak of equity until it was regained (or the end)."""
    longest, peak_value, peak_at = 0, -math.inf, points[0][0] if points else 0
    for ms, value in points:
        if value >= peak_value:
            peak_value, peak_at = value, ms
        longest = max(longest, ms - peak_at)
    return timedelta(milliseconds=longest)


def exposure(run: BacktestRun, trades: list[Trade]) -> float:
    """Share of the range during which at least one position was open."""
    span = run.last_ms - run.first_ms
    if span <= 0:
        return 0.0
    intervals = sorted(
        (
            max(int(t.entry_time.timestamp() * 1000), run.first_ms),
            int(t.exit_time.timestamp() * 1000) if t.exit_time else run.last_ms,
        )
        for t in trades
    )
    covered, reach = 0, run.first_ms
    for start, end in intervals:
        start = max(start, reach)
        if end > start:
            covered += end - start
            reach = end
    return covered / span


def buy_and_hold(run: BacktestRun) -> dict[str, float]:
    out = {}
    for symbol, data in run.feed.data.items():
        first = data.analysis.closed_count(run.first_ms)
        last = data.analysis.closed_count(run.last_ms)
        if first and last:
            begin = data.analysis.candles[first - 1].close
            out[symbol] = data.analysis.candles[last - 1].close / begin - 1
    return out


def metrics(run: BacktestRun, trades: list[Trade]) -> Metrics:
    import empyrical
    import pandas as pd

    points = [(p.timestamp, float(p.equity)) for p in run.equity if p.equity is not None]
    values = pd.Series(
        [v for _, v in points], index=pd.to_datetime([ms for ms, _ in points], unit="ms", utc=True)
    )
    returns = values.pct_change().dropna()
    steps = [b - a for (a, _), (b, _) in itertools.pairwise(points)]
    annualization = YEAR_MS / statistics.median(steps) if steps else None
    closed = [t for t in trades if not t.is_open and t.pnl_value is not None]
    gains = sum(t.pnl_value for t in closed if t.pnl_value and t.pnl_value > 0)
    losses = -sum(t.pnl_value for t in closed if t.pnl_value and t.pnl_value < 0)
    held = buy_and_hold(run)
    ok = len(returns) > 1 and annualization is not None
    fees = [_fee_value(run, t) for t in trades]
    return Metrics(
        currency=run.currency,
        start_equity=points[0][1] if points else None,
        end_equity=points[-1][1] if points else None,
        total_return=_finite(empyrical.cum_returns_final(returns)) if len(returns) else None,
        cagr=_finite(empyrical.annual_return(returns, annualization=annualization)) if ok else None,
        max_drawdown=_finite(empyrical.max_drawdown(returns)) if len(returns) else None,
        max_drawdown_duration=str(drawdown_duration(points)),
        sharpe=_finite(empyrical.sharpe_ratio(returns, annualization=annualization))
        if ok
        else None,
        sortino=_finite(empyrical.sortino_ratio(returns, annualization=annualization))
        if ok
        else None,
        calmar=_finite(empyrical.calmar_ratio(returns, annualization=annualization))
        if ok
        else None,
        win_rate=sum(1 for t in closed if (t.pnl_value or 0) > 0) / len(closed) if closed else None,
        profit_factor=gains / losses if losses else None,
        expectancy=sum(t.pnl_value or 0 for t in closed) / len(closed) if closed else None,
        exposure=exposure(run, trades),
        fees_paid=None if any(f is None for f in fees) else sum(f or 0 for f in fees),
        trade_count=len(trades),
        open_trades=sum(1 for t in trades if t.is_open),
        buy_and_hold=sum(held.values()) / len(held) if held else None,
        buy_and_hold_by_symbol=held,
    )


def _fee_value(run: BacktestRun, trade: Trade) -> float | None:
    quote = trade.symbol.partition("/")[2]
    at = int((trade.exit_time or moment(run.last_ms)).timestamp() * 1000)
    rate = value_in(run.currency, {quote: Decimal(1)}, prices_at(run, at))
    return None if rate is None else float(trade.fees * rate)


def by_symbol(trades: list[Trade]) -> list[dict[str, Any]]:
    groups: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        groups[trade.symbol].append(trade)
    return [_row("symbol", key, group) for key, group in sorted(groups.items())]


def by_exit_reason(trades: list[Trade]) -> list[dict[str, Any]]:
    groups: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        groups[trade.exit_reason].append(trade)
    return [_row("exit_reason", key, group) for key, group in sorted(groups.items())]


def _row(name: str, key: str, trades: list[Trade]) -> dict[str, Any]:
    wins = sum(1 for t in trades if t.pnl > 0)
    return {
        name: key,
        "trades": len(trades),
        "wins": wins,
        "win_rate": round(wins / len(trades), 4) if trades else None,
        "pnl": _sum_by_quote(trades, "pnl"),
        "fees": _sum_by_quote(trades, "fees"),
        "avg_pnl_pct": round(sum(t.pnl_pct for t in trades) / len(trades), 4) if trades else None,
    }


def _sum_by_quote(trades: list[Trade], field: str) -> str:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for trade in trades:
        sums[trade.symbol.partition("/")[2]] += getattr(trade, field)
    return ", ".join(f"{value.normalize():f} {quote}" for quote, value in sorted(sums.items()))


def decision_reasons(run: BacktestRun) -> dict[str, int]:
    """Why the cycles decided what they did (SKIP_NO_SIGNAL, BLOCKED_DAILY_LOSS_LIMIT, ...):
    a backtest without trades says why at once."""
    counts: Counter[str] = Counter()
    kinds = [EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED]
    for event in run.runtime.store.list_events(types=kinds):
        if event.event_id.startswith("decision:") and "|" in event.event_id:
            counts.update(event.reasons)
    return dict(counts.most_common())


def settings_hash(run: BacktestRun) -> str:
    text = run.settings.model_dump_json(exclude={"data_dir"}) + run.spec.model_dump_json()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_id(run: BacktestRun) -> str:
    return f"{utcnow():%Y%m%dT%H%M%S}-{settings_hash(run)[:6]}"


def session_summary(run: BacktestRun) -> SessionSummary:
    with _demo_mode():
        return summarize(run.runtime, run.starting, run.cycles)


def _demo_mode() -> Any:
    from kestrel.mode import TradingMode, trading_mode

    return trading_mode(TradingMode.DEMO)


def build_result(run: BacktestRun, result_id: str | None = None) -> BacktestResult:
    trades = trades_of(run)
    summary = session_summary(run)
    end = run.schedule[run.steps_done - 1][0] if run.steps_done else run.first_ms
    span_s = max(run.elapsed_s, 1e-9)
    return BacktestResult(
        id=result_id or new_id(run),
        label=run.spec.label,
        created_at=utcnow(),
        status="partial" if run.partial else "complete",
        strategies={p.symbol: f"{p.profile.name} ({p.item.timeframe})" for p in run.plans},
        strategy_ids={p.symbol: profile_identity(p.profile).ref for p in run.plans},
        settings_hash=settings_hash(run),
        spec=run.spec.model_dump(mode="json"),
        data_source=run.feed.label,
        start=moment(run.first_ms),
        end=moment(end),
        steps=run.steps_done,
        cycles=run.cycles,
        candles=run.candles,
        elapsed_s=round(run.elapsed_s, 3),
        candles_per_s=round(run.cycles / span_s, 1),
        skipped=dict(run.skipped),
        errors=run.errors[:200],
        metrics=metrics(run, trades),
        trades=trades,
        by_symbol=by_symbol(trades),
        by_exit_reason=by_exit_reason(trades),
        books=summary_rows(summary),
        reconciled=summary.reconciled,
        orders_by_status=summary.orders_by_status,
        decisions=decision_reasons(run),
        fills=summary.fills,
        equity=[
            (p.timestamp, float(p.equity) if p.equity is not None else None) for p in run.equity
        ],
    )


def compare_results(a: BacktestResult, b: BacktestResult) -> dict[str, Any]:
    """Two results side by side: each metric of `a` and `b` and, where both are numbers,
    b - a. What `kestrel backtest compare` prints, as data for the API."""
    left, right = a.metrics.model_dump(mode="json"), b.metrics.model_dump(mode="json")
    rows = []
    for name in Metrics.model_fields:
        x, y = left[name], right[name]
        numbers = isinstance(x, int | float) and isinstance(y, int | float)
        rows.append({"metric": name, "a": x, "b": y, "diff": y - x if numbers else None})
    return {
        "a": {"id": a.id, "strategies": a.strategies, "strategy_ids": a.strategy_ids},
        "b": {"id": b.id, "strategies": b.strategies, "strategy_ids": b.strategy_ids},
        "range": {
            "a": [a.start.isoformat(), a.end.isoformat()],
            "b": [b.start.isoformat(), b.end.isoformat()],
        },
        "metrics": rows,
        "reconciled": {"a": a.reconciled, "b": b.reconciled},
    }
