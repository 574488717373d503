"""Aggregating fine candles into coarser ones, so one replay file serves several timeframes."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from kestrel.errors import InvalidMarketData
from kestrel.models import Candle


def merge(bucket_start: int, parts: Sequence[Candle]) -> Candle:
    return Candle(
        timestamp=bucket_start,
        open=parts[0].open,
        high=max(c.high for c in parts),
        low=min(c.low for c in parts),
        close=parts[-1].close,
        volume=sum(c.volume for c in parts),
    )


def resample_closed(
    base: Sequence[Candle],
    timestamps: Sequence[int],
    base_ms: int,
    target_ms: int,
    now_ms: int,
    limit: int | None,
) -> list[Candle]:
    """The last `limit` target-timeframe candles that have closed at `now_ms`.

    Buckets are aligned to the epoch (as exchanges align them, 1d at 00:00 UTC). A bucket with
    missing base candles (a gap in the data) aggregates what exists, as exchanges do when
    nothing traded. `timestamps` are the open times of `base`, for bisecting.
    """
    if target_ms % base_ms:
        raise InvalidMarketData(
            f"cannot build {target_ms // 1000}s candles from {base_ms // 1000}s candles"
        )
    end = (now_ms // target_ms) * target_ms  # buckets before this one have closed
    start = 0 if limit is None else end - limit * target_ms
    lo, hi = bisect_left(timestamps, start), bisect_left(timestamps, end)
    groups: dict[int, list[Candle]] = {}
    for candle in base[lo:hi]:
        groups.setdefault(candle.timestamp - candle.timestamp % target_ms, []).append(candle)
    out = [merge(bucket, parts) for bucket, parts in groups.items()]
    if out and lo == 0 and base[0].timestamp % target_ms:
        out.pop(0)  # the data starts mid-bucket: its open would be wrong
    return out
