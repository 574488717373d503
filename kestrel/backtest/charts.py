"""Charts of a backtest: equity and drawdown, prices with entries and exits.

PNG through matplotlib's Agg backend (no display needed: artifacts, files, servers) and one
interactive HTML page through plotly (self-contained, opens offline).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from kestrel.backtest.engine import BacktestRun, moment
from kestrel.backtest.results import BacktestResult


def _equity(result: BacktestResult) -> tuple[list[datetime], list[float], list[float]]:
    points = [(moment(ms), value) for ms, value in result.equity if value is not None]
    times = [t for t, _ in points]
    values = [v for _, v in points]
    drawdown, peak = [], -float("inf")
    for value in values:
        peak = max(peak, value)
        drawdown.append((value / peak - 1) * 100 if peak > 0 else 0.0)
    return times, values, drawdown


def equity_png(result: BacktestResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, values, drawdown = _equity(result)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot(times, values, color="tab:blue", linewidth=1)
    top.set_ylabel(f"equity ({result.metrics.currency})")
    top.set_title(f"Backtest {result.id}: {', '.join(result.strategies)}")
    top.grid(alpha=0.3)
    bottom.fill_between(times, drawdown, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _price_line(run: BacktestRun, symbol: str) -> tuple[list[datetime], list[float]]:
    data = run.feed.data[symbol].analysis
    lo = max(0, data.closed_count(run.first_ms) - 1)
    hi = data.closed_count(run.last_ms)
    chosen = data.candles[lo:hi]
    step = max(1, len(chosen) // 5000)  # a readable line, not every candle of a year
    chosen = chosen[::step]
    return [moment(c.timestamp) for c in chosen], [c.close for c in chosen]


def prices_png(run: BacktestRun, result: BacktestResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    symbols = list(result.strategies)
    figure, axes = plt.subplots(len(symbols), 1, figsize=(11, 3.2 * len(symbols)), squeeze=False)
    for axis, symbol in zip(axes[:, 0], symbols, strict=True):
        times, closes = _price_line(run, symbol)
        axis.plot(times, closes, color="grey", linewidth=0.8)
        trades = [t for t in result.trades if t.symbol == symbol]
        axis.scatter(
            [t.entry_time for t in trades],
            [float(t.entry_price) for t in trades],
            marker="^", color="tab:green", label="entry", zorder=3,
        )  # fmt: skip
        done = [t for t in trades if t.exit_time is not None and t.exit_price is not None]
        axis.scatter(
            [t.exit_time for t in done],
            [float(t.exit_price or 0) for t in done],
            marker="v", color="tab:red", label="exit", zorder=3,
        )  # fmt: skip
        axis.set_title(symbol)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def report_html(run: BacktestRun, result: BacktestResult, path: Path) -> Path:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    symbols = list(result.strategies)
    rows = 2 + len(symbols)
    figure = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03,
        subplot_titles=["equity", "drawdown %", *symbols],
    )  # fmt: skip
    times, values, drawdown = _equity(result)
    figure.add_trace(go.Scatter(x=times, y=values, name="equity"), row=1, col=1)
    figure.add_trace(go.Scatter(x=times, y=drawdown, name="drawdown %", fill="tozeroy"), 2, 1)
    for row, symbol in enumerate(symbols, start=3):
        line_t, line_c = _price_line(run, symbol)
        figure.add_trace(go.Scatter(x=line_t, y=line_c, name=symbol, line={"width": 1}), row, 1)
        trades = [t for t in result.trades if t.symbol == symbol]
        figure.add_trace(
            go.Scatter(
                x=[t.entry_time for t in trades], y=[float(t.entry_price) for t in trades],
                mode="markers", marker={"symbol": "triangle-up", "color": "green", "size": 9},
                name=f"{symbol} entries",
            ), row, 1,
        )  # fmt: skip
        done = [t for t in trades if t.exit_time is not None and t.exit_price is not None]
        figure.add_trace(
            go.Scatter(
                x=[t.exit_time for t in done], y=[float(t.exit_price or 0) for t in done],
                mode="markers", marker={"symbol": "triangle-down", "color": "red", "size": 9},
                name=f"{symbol} exits", text=[t.exit_reason for t in done],
            ), row, 1,
        )  # fmt: skip
    figure.update_layout(height=300 * rows, title=f"Backtest {result.id}")
    figure.write_html(path, include_plotlyjs=True)
    return path
