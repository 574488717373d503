"""Backtest benchmark: candles per second of the live pipeline on a simulated clock, next to
a plain step-by-step run, the bare indicator computation over the same windows and
(optionally) the Prefect replay demo, all measured in this one run, plus peak memory.

    .venv/bin/python bench/backtest.py [--data ../shared/data/ohlcv] [--steps 200]
        [--symbols ETH/BTC,ADA/BTC,XLM/BTC,DASH/BTC,XMR/BTC] [--demo-cycles 0]
        [--generated 0]

- fast:   kestrel.backtest as it runs by default: spec.fast (sync/monitor skipped while
          nothing is open) and spec.precompute (indicators computed once per series, read by
          candle position; the time to compute them is counted);
- recomputed: spec.fast, but every indicator recomputed at every step (the rate before
          kestrel.analysis.cache);
- plain:  step by step: every pass at every step, indicators recomputed at every step;
- bare:   compute_indicators() alone on the same 200-candle windows (frames built before);
- demo:   flows.demo.demo_session on a replay of the same files (a Prefect flow run, tasks
          per step), `--demo-cycles` cycles; off by default (it starts a Prefect server);
- generated: `--generated N` also runs N steps over 10 generated symbols (5m, labelled
          synthetic) so the rate can be compared at another scale.
A "candle" is one symbol's candle stepped through (one cycle). Rates are printed with
ratios against `plain` measured here, never against a figure from another machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kestrel.backtest import BacktestSpec, backtest_store, execute, prepare  # noqa: E402
from kestrel.backtest.engine import precompute  # noqa: E402
from kestrel.config.settings import KestrelSettings, load_settings  # noqa: E402

SHARED = ROOT / ".." / "shared" / "data" / "ohlcv"
DEFAULT_SYMBOLS = "ETH/BTC,ADA/BTC,XLM/BTC,DASH/BTC,XMR/BTC"
WARMUP = 200


def settings_for(symbols: list[str], data_dir: Path, **paper: Any) -> KestrelSettings:
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        store_uri=None,
        watchlist=[
            {"symbol": s, "timeframe": "5m", "stake_amount": "0.01", "stake_currency": "BTC"}
            for s in symbols
        ],
        paper={"quote_currency": "BTC", "starting_balance": Decimal("1"), **paper},
        risk={"stale_after_candles": 2},
        trading={"gates": {"daily_loss_limit_pct": None}},
    )


def backtest_rate(
    settings: KestrelSettings, folder: Path, steps: int, fast: bool, cached: bool = False
) -> tuple[float, int]:
    spec = BacktestSpec(data_dir=folder, warmup=WARMUP, fast=fast, precompute=False)
    with backtest_store() as store:
        run = prepare(settings, spec, store)
        run.schedule = run.schedule[: steps + 1]
        began = time.perf_counter()
        if cached:  # timed: computing the whole series once is part of the run
            run.indicators = precompute(run.feed, run.plans)
        execute(run)
        elapsed = time.perf_counter() - began
        return run.cycles / elapsed, run.cycles


def bare_rate(settings: KestrelSettings, folder: Path, steps: int) -> float:
    from kestrel.analysis.frame import candles_to_frame
    from kestrel.analysis.indicators import compute_indicators
    from kestrel.backtest.feed import BacktestFeed
    from kestrel.models import CandleSeries
    from kestrel.strategy.resolve import resolve_plans

    plans = resolve_plans(settings)
    feed = BacktestFeed.load(folder, {p.symbol: "5m" for p in plans}, detail=False)
    frames = []
    for plan in plans:
        candles = feed.data[plan.symbol].analysis.candles
        for end in range(WARMUP, WARMUP + steps):
            series = CandleSeries(
                symbol=plan.symbol,
                timeframe="5m",
                candles=candles[end - WARMUP : end],
                source="bench",
            )
            frames.append((candles_to_frame(series), plan.profile.indicators))
    began = time.perf_counter()
    for frame, spec in frames:
        compute_indicators(frame, spec)
    return len(frames) / (time.perf_counter() - began)


def demo_rate(symbols: list[str], folder: Path, cycles: int) -> float:
    from kestrel.config.prefect_env import configure_prefect_env

    home = Path(tempfile.mkdtemp(prefix="kestrel-bench-"))
    configure_prefect_env(home)
    from prefect.testing.utilities import prefect_test_harness

    from flows.demo import demo_session

    settings = settings_for(symbols, home / "demo", market_data="replay", replay_dir=folder)
    with prefect_test_harness(server_startup_timeout=180):
        began = time.perf_counter()
        summary = demo_session(config=settings.model_dump(mode="json"), cycles=cycles)
        elapsed = time.perf_counter() - began
    return summary.cycles * len(symbols) / elapsed


def generated_folder(count: int, candles: int) -> tuple[list[str], Path]:
    from tests.backtest.fixtures import sine_candles, write_csv

    folder = Path(tempfile.mkdtemp(prefix="kestrel-bench-synthetic-")) / "synthetic"
    symbols = [f"S{i}/BTC" for i in range(count)]
    for i, symbol in enumerate(symbols):
        write_csv(folder, symbol, "5m", sine_candles(candles, "5m", period=40 + 7 * i))
    return symbols, folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--symbols", default=DEFAULT_SYMBOLS)
    parser.add_argument("--demo-cycles", type=int, default=0)
    parser.add_argument("--generated", type=int, default=0)
    args = parser.parse_args()
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    data_dir = Path(tempfile.mkdtemp(prefix="kestrel-bench-data-"))
    settings = settings_for(symbols, data_dir)
    print(f"{len(symbols)} symbols x {args.steps} steps (5m) from {args.data.resolve()}")
    backtest_rate(settings, args.data, 3, fast=False)  # warm-up: imports, numba JIT
    fast, cycles = backtest_rate(settings, args.data, args.steps, fast=True, cached=True)
    recomputed, _ = backtest_rate(settings, args.data, args.steps, fast=True)
    plain, _ = backtest_rate(settings, args.data, args.steps, fast=False)
    bare = bare_rate(settings, args.data, args.steps)
    print(
        f"  backtest (fast):          {fast:10.1f} candles/s  ({cycles} candles)  "
        f"x{fast / plain:.2f} of plain"
    )
    print(
        f"  fast, recomputed:         {recomputed:10.1f} candles/s  x{recomputed / plain:.2f} "
        "of plain"
    )
    print(f"  backtest (step by step):  {plain:10.1f} candles/s")
    print(
        f"  bare indicators:          {bare:10.1f} windows/s  (backtest = {fast / bare:.2%} of it)"
    )
    if args.demo_cycles:
        demo = demo_rate(symbols, args.data, args.demo_cycles)
        print(f"  Prefect replay demo:      {demo:10.1f} candles/s  (backtest x{fast / demo:.1f})")
    if args.generated:
        gen_symbols, folder = generated_folder(10, WARMUP + args.generated + 1)
        gen = settings_for(gen_symbols, data_dir)
        rate, gen_cycles = backtest_rate(gen, folder, args.generated, fast=True, cached=True)
        print(f"  10 generated symbols:     {rate:10.1f} candles/s  ({gen_cycles} candles)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory (RSS):        {peak_mb:10.1f} MB")


if __name__ == "__main__":
    main()
