"""Synthetic candle files for backtest tests, labelled as such in their names' folder
(`synthetic/`): a sine wave around a drift, so moving averages cross both ways and the
default strategy trades within a few hundred candles. Deterministic (no randomness)."""

from __future__ import annotations

import math
from pathlib import Path

from kestrel.models import timeframe_ms

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def sine_candles(
    count: int,
    timeframe: str,
    *,
    price: float = 0.05,
    period: int = 48,
    amplitude: float = 0.06,
    drift: float = 0.0,
    start_ms: int = START_MS,
) -> list[tuple[int, float, float, float, float, float]]:
    """(timestamp, open, high, low, close, volume) rows."""
    step = timeframe_ms(timeframe)
    rows = []
    previous = price
    for i in range(count):
        wave = math.sin(2 * math.pi * i / period) + 0.3 * math.sin(2 * math.pi * i / (period / 3))
        close = price * (1 + amplitude * wave) * (1 + drift) ** i
        open_ = previous
        high = max(open_, close) * 1.002
        low = min(open_, close) * 0.998
        volume = 1000.0 + 800.0 * (1 + math.sin(2 * math.pi * i / 7))
        rows.append(
            (
                start_ms + i * step,
                round(open_, 8),
                round(high, 8),
                round(low, 8),
                round(close, 8),
                round(volume, 4),
            )
        )
        previous = close
    return rows


def write_csv(
    folder: Path,
    symbol: str,
    timeframe: str,
    rows: list[tuple[int, float, float, float, float, float]],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol.replace('/', '_')}-{timeframe}.csv"
    with path.open("w") as handle:
        handle.write("timestamp,open,high,low,close,volume\n")
        for row in rows:
            handle.write(",".join(str(v) for v in row) + "\n")
    return path


def split_minutes(
    rows: list[tuple[int, float, float, float, float, float]], parts: int, part_ms: int
) -> list[tuple[int, float, float, float, float, float]]:
    """Finer candles whose aggregate is each row (open -> low -> high -> close path)."""
    out = []
    for ts, o, h, low, c, v in rows:
        path = [o, low, h, c]
        for k in range(parts):
            a = path[min(k * 3 // parts, 3)]
            b = path[min((k + 1) * 3 // parts, 3)] if k < parts - 1 else c
            out.append((ts + k * part_ms, a, max(a, b), min(a, b), b, round(v / parts, 6)))
        # the bucket's extremes must be reached by some part
        first = out[-parts]
        out[-parts] = (
            first[0],
            first[1],
            max(first[2], h if parts == 1 else first[2]),
            min(first[3], low),
            first[4],
            first[5],
        )
    return out
