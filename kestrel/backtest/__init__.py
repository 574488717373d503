"""Backtests: the live pipeline (kestrel.trading.cycle, sync, monitor, protection, the strict paper
exchange) stepped on a simulated clock over CSV candles, with results a trader reads.

`run_backtest(settings, spec)` does it all; `prepare` / `execute` / `build_result` are the
steps (tests and benchmarks use them).
"""

from kestrel.backtest.engine import BacktestRun, backtest_store, execute, prepare
from kestrel.backtest.feed import BacktestFeed
from kestrel.backtest.results import BacktestResult, Metrics, Trade, build_result
from kestrel.backtest.run import Outcome, run_backtest
from kestrel.backtest.spec import BacktestSpec, backtest_settings

__all__ = [
    "BacktestFeed",
    "BacktestResult",
    "BacktestRun",
    "BacktestSpec",
    "Metrics",
    "Outcome",
    "Trade",
    "backtest_settings",
    "backtest_store",
    "build_result",
    "execute",
    "prepare",
    "run_backtest",
]
