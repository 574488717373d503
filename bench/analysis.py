"""Analysis benchmark: full analysis throughput against the bare indicator computation, in
one run, as a ratio.

    .venv/bin/python bench/analysis.py [--symbols 20] [--candles 500] [--rounds 9]
                                      [--profile SWING/CONSERVATIVE]

Windows of `--candles` real candles from ../shared/data/ohlcv (seeded synthetic candles
when it is absent), one window per symbol, each timed in turn:
- bare:  compute_indicators() on frames built beforehand (pandas-ta and nothing else);
- full:  analyze() from the validated CandleSeries: frame, indicators, the values stored,
         the technical analyst's verdict, the AnalysisResult model.
The two are interleaved per symbol and each keeps its best time over the rounds, so both see
the same machine (other processes only ever slow a call down). Throughput is symbols x
candles / second; the ratio full / bare is the share of the indicator-only speed that a
complete, audited analysis keeps. A breakdown of the full path per symbol follows.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kestrel.analysis.base import consult  # noqa: E402
from kestrel.analysis.engine import analyze, conclude, prepare  # noqa: E402
from kestrel.analysis.frame import candles_to_frame  # noqa: E402
from kestrel.analysis.indicators import compute_indicators  # noqa: E402
from kestrel.analysis.technical import TechnicalAnalyst  # noqa: E402
from kestrel.models import Candle, CandleSeries  # noqa: E402
from kestrel.strategy.profiles import BUILTIN_PROFILES, canonical_name  # noqa: E402

SHARED = ROOT / ".." / "shared" / "data" / "ohlcv"


def real_windows(symbols: int, candles: int) -> list[CandleSeries]:
    """Up to `symbols` windows of `candles` candles, cycling through the files and taking
    successive, non-overlapping windows of each."""
    files = sorted(SHARED.glob("*.csv")) if SHARED.is_dir() else []
    loaded = []
    for path in files:
        rows = np.loadtxt(path, delimiter=",", skiprows=1)
        if len(rows) >= candles:
            loaded.append((path.stem, rows))
    windows: list[CandleSeries] = []
    offset = 0
    while loaded and len(windows) < symbols:
        progressed = False
        for stem, rows in loaded:
            if len(windows) == symbols:
                break
            if offset + candles > len(rows):
                continue
            part = rows[offset : offset + candles]
            windows.append(
                CandleSeries(
                    symbol=f"S{len(windows)}/USDT",
                    timeframe="1h",
                    candles=[Candle.from_ccxt(list(row)) for row in part],
                    source=f"replay:{stem}[{offset}:]",
                )
            )
            progressed = True
        offset += candles
        if not progressed:
            break
    return windows


def synthetic_windows(symbols: int, candles: int, seed: int = 7) -> list[CandleSeries]:
    rng = random.Random(seed)
    windows = []
    for s in range(symbols):
        price, rows = 100.0 * (1 + s), []
        for i in range(candles):
            close = price * math.exp(rng.gauss(0, 0.01))
            high, low = max(price, close) * 1.002, min(price, close) * 0.998
            rows.append(
                Candle(
                    timestamp=i * 3_600_000,
                    open=price,
                    high=high,
                    low=low,
                    close=close,
                    volume=rng.uniform(10, 100),
                )
            )
            price = close

        windows.append(
            CandleSeries(symbol=f"S{s}/USDT", timeframe="1h", candles=rows, source="synthetic")
        )
    return windows


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--candles", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--profile", default="SWING/CONSERVATIVE")
    args = parser.parse_args()
    name = canonical_name(args.profile) or args.profile
    profile = BUILTIN_PROFILES[name]
    spec = profile.indicators

    windows = real_windows(args.symbols, args.candles)
    source = "../shared/data/ohlcv"
    if len(windows) < args.symbols:
        windows += synthetic_windows(args.symbols - len(windows), args.candles)
        source = "synthetic" if not windows else f"{source} + synthetic"
    frames = [candles_to_frame(series) for series in windows]
    prepared = [prepare(series, profile) for series in windows]
    analyst = TechnicalAnalyst()
    steps: dict[str, Callable[[int], object]] = {
        "bare": lambda i: compute_indicators(frames[i], spec),
        "full": lambda i: analyze(windows[i], profile),
        "frame": lambda i: candles_to_frame(windows[i]),
        "prepare": lambda i: prepare(windows[i], profile),
        "verdict": lambda i: conclude(prepared[i], [consult(analyst, prepared[i])], [1.0]),
    }
    for i in range(len(windows)):  # warm up: imports, pandas-ta's first calls
        for run in steps.values():
            run(i)
    # Interleaved per symbol and step, best of the rounds per (symbol, step): a busy machine
    # slows some calls down, never speeds one up, so the minimum is the least disturbed.
    fastest = {name: [math.inf] * len(windows) for name in steps}
    for _ in range(args.rounds):
        for i in range(len(windows)):
            for name, run in steps.items():
                fastest[name][i] = min(fastest[name][i], timed(lambda: run(i)))  # noqa: B023
    best = {name: sum(times) for name, times in fastest.items()}
    work = len(windows) * args.candles

    def rate(seconds: float) -> str:
        return f"{work / seconds:>12,.0f} candles/s  ({len(windows) / seconds:>7,.1f} symbols/s)"

    print(
        f"analysis bench: {len(windows)} symbols x {args.candles} candles from {source}; "
        f"profile {profile.name}; best of {args.rounds} rounds"
    )
    print(f"  bare indicators (pandas-ta)   {rate(best['bare'])}")
    print(f"  full analysis                 {rate(best['full'])}")
    ratio = best["bare"] / best["full"]
    print(
        f"  ratio full / bare throughput  {ratio:.2f}  (full analysis costs "
        f"{best['full'] / best['bare']:.2f}x the bare indicators)"
    )
    per_symbol = 1000 / len(windows)
    print("  full analysis per symbol, by step (ms):")
    print(f"    candles -> frame            {best['frame'] * per_symbol:7.3f}")
    indicators_ms = (best["prepare"] - best["frame"]) * per_symbol
    print(f"    indicators + stored values  {indicators_ms:7.3f}")
    print(f"    verdict + AnalysisResult    {best['verdict'] * per_symbol:7.3f}")
    print(f"    total                       {best['full'] * per_symbol:7.3f}")


if __name__ == "__main__":
    main()
