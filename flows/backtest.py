"""The `backtest` flow: one flow run per backtest, Prefect outside the inner loop.

The run's parameters are the BacktestSpec (a form in the Prefect UI) and an optional
`config` overriding the installation's settings, exactly as a trading-cycle run takes it
(kestrel.operator.run: a config may narrow, never widen, the mode or the REAL whitelist; a
backtest is DEMO anyway). The engine (kestrel.backtest) runs in the flow's own thread; the
result is stored under the data dir and published as a markdown artifact with the tables and
the equity chart.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from kestrel.backtest import BacktestResult, BacktestSpec, run_backtest
from kestrel.operator.run import settings_for_run

ARTIFACT_KEY = "backtest-result"


def _cell(value: object) -> str:
    return "" if value is None else str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "_none_\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def result_markdown(result: BacktestResult, folder: Path | None, chart: Path | None) -> str:
    m = result.metrics
    metrics: list[dict[str, Any]] = [
        {"metric": "total return", "value": _pct(m.total_return)},
        {"metric": "CAGR", "value": _pct(m.cagr)},
        {"metric": "max drawdown", "value": f"{_pct(m.max_drawdown)} ({m.max_drawdown_duration})"},
        {"metric": "Sharpe / Sortino / Calmar", "value": f"{m.sharpe} / {m.sortino} / {m.calmar}"},
        {"metric": "win rate", "value": _pct(m.win_rate)},
        {"metric": "profit factor", "value": m.profit_factor},
        {"metric": f"expectancy ({m.currency})", "value": m.expectancy},
        {"metric": "exposure", "value": _pct(m.exposure)},
        {"metric": f"fees paid ({m.currency})", "value": m.fees_paid},
        {"metric": "trades (open at end)", "value": f"{m.trade_count} ({m.open_trades})"},
        {"metric": "buy and hold", "value": _pct(m.buy_and_hold)},
    ]
    trades = [
        {
            "symbol": t.symbol, "entry": t.entry_time.isoformat(), "entry price": t.entry_price,
            "exit": t.exit_time.isoformat() if t.exit_time else "open",
            "exit price": t.exit_price, "amount": t.amount, "fees": t.fees, "pnl": t.pnl,
            "reason": t.exit_reason,
        }
        for t in result.trades[-100:]
    ]  # fmt: skip
    parts = [
        f"# Backtest {result.id} ({result.status})\n",
        f"{result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC on "
        f"{result.data_source}; strategies {result.strategy_ids or result.strategies}; "
        f"{result.steps} steps, "
        f"{result.cycles} cycles, {result.candles_per_s:.0f} candles/s\n",
        "## Metrics\n", markdown_table(metrics),
        "## Books per currency (must reconcile)\n", markdown_table(result.books),
        "## Per symbol\n", markdown_table(result.by_symbol),
        "## Per exit reason\n", markdown_table(result.by_exit_reason),
        f"## Trades (last {len(trades)} of {len(result.trades)})\n", markdown_table(trades),
    ]  # fmt: skip
    if chart is not None and chart.is_file():
        encoded = base64.b64encode(chart.read_bytes()).decode()
        parts.append(f"## Equity and drawdown\n![equity](data:image/png;base64,{encoded})\n")
    if folder is not None:
        parts.append(f"Files: `{folder}` (result.json, trades.csv, equity.csv, report.html)\n")
    return "\n".join(parts)


@flow(name="kestrel-backtest", log_prints=True)
def backtest(
    spec: BacktestSpec, config: dict[str, Any] | None = None, charts: bool = True
) -> dict[str, Any]:
    """Backtest the installation's settings (with `config` on top) over `spec`."""
    logger = get_run_logger()
    settings = settings_for_run(config, run="backtest")
    marks: set[int] = set()

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth not in marks:
            marks.add(tenth)
            logger.info("%d/%d steps", done, total)

    outcome = run_backtest(settings, spec, progress=progress, charts=charts)
    result = outcome.result
    create_markdown_artifact(
        result_markdown(result, outcome.folder, outcome.charts.get("equity")),
        key=ARTIFACT_KEY,
        description=f"backtest {result.id}: {', '.join(result.strategies)}",
    )
    if not result.reconciled:
        raise RuntimeError(f"backtest {result.id}: the books do not reconcile: {result.books}")
    return {
        "id": result.id,
        "folder": str(outcome.folder),
        "reconciled": result.reconciled,
        "metrics": result.metrics.model_dump(mode="json"),
    }
