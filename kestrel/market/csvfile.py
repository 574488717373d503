"""Reading candle CSV files (`timestamp,open,high,low,close,volume`, ms open times).

Bad rows fail loudly with the file and line: a silently dropped candle would shift every
indicator and make a replay disagree with the data it claims to replay.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from kestrel.errors import InvalidMarketData
from kestrel.models import Candle, timeframe_ms

HEADER = ["timestamp", "open", "high", "low", "close", "volume"]
# BTC_USDT-1h.csv -> ("BTC", "USDT", "1h"). Anything else in the folder is ignored. The
# `.parquet` twin is the download cache (kestrel/market/cache.py), replayed the same way.
FILENAME = re.compile(
    r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<tf>\d+[mhdw])\.(?:csv|parquet)$"
)


def parse_candle_filename(path: Path) -> tuple[str, str] | None:
    """(symbol, timeframe) for a `<BASE>_<QUOTE>-<tf>.csv|.parquet` name, else None."""
    match = FILENAME.match(path.name)
    if match is None:
        return None
    try:
        timeframe_ms(match["tf"])
    except ValueError:
        return None
    return f"{match['base']}/{match['quote']}", match["tf"]


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in error.errors())


def read_candle_csv(path: Path) -> list[Candle]:
    """All rows as Candles, validated; InvalidMarketData names `file:line` for the first bad one."""
    if not path.is_file():
        raise InvalidMarketData(f"{path}: no such candle file")
    candles: list[Candle] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != HEADER:
            raise InvalidMarketData(f"{path}:1: header must be {','.join(HEADER)}, got {header}")
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                raise InvalidMarketData(f"{path}:{line}: empty row")
            candles.append(_parse_row(path, line, row))
            if len(candles) > 1 and candles[-1].timestamp <= candles[-2].timestamp:
                raise InvalidMarketData(
                    f"{path}:{line}: timestamp {candles[-1].timestamp} does not increase "
                    f"(previous row {candles[-2].timestamp})"
                )
    if not candles:
        raise InvalidMarketData(f"{path}: no candle rows")
    return candles


def read_candle_file(path: Path) -> list[Candle]:
    """Candles of a CSV replay file or of a Parquet download-cache file (by suffix)."""
    if path.suffix == ".parquet":
        from kestrel.market.cache import read_parquet_candles

        return read_parquet_candles(path)
    return read_candle_csv(path)


def _parse_row(path: Path, line: int, row: list[str]) -> Candle:
    if len(row) != len(HEADER):
        raise InvalidMarketData(f"{path}:{line}: expected 6 values, got {len(row)}: {row}")
    try:
        timestamp = int(row[0])
        o, h, low, c, v = (float(cell) for cell in row[1:])
        return Candle(timestamp=timestamp, open=o, high=h, low=low, close=c, volume=v)
    except ValidationError as exc:
        raise InvalidMarketData(f"{path}:{line}: invalid candle {row}: {_describe(exc)}") from None
    except ValueError as exc:
        raise InvalidMarketData(f"{path}:{line}: not a number in {row}: {exc}") from None


def find_replay_files(
    directory: Path, symbols: Iterable[str] | None = None, timeframe: str | None = None
) -> dict[str, Path]:
    """symbol -> file for the `<BASE>_<QUOTE>-<tf>.csv` files in `directory`.

    With several timeframes for one symbol: the one equal to `timeframe`, else the coarsest one
    that divides it (the feed aggregates it; coarsest, because the replay advances one file
    candle per step and the warm-up counts file candles), else the finest one. `symbols`
    limits the result to those symbols (missing ones are simply absent).
    """
    wanted = set(symbols) if symbols is not None else None
    found: dict[str, list[tuple[int, str, Path]]] = {}
    if not directory.is_dir():
        return {}
    for path in sorted(directory.iterdir()):
        parsed = parse_candle_filename(path)
        if parsed is None or not path.is_file():
            continue
        symbol, tf = parsed
        if wanted is None or symbol in wanted:
            found.setdefault(symbol, []).append((timeframe_ms(tf), tf, path))
    target = timeframe_ms(timeframe) if timeframe else None
    chosen: dict[str, Path] = {}
    for symbol, options in found.items():
        options.sort()
        exact = [p for ms, _, p in options if ms == target]
        dividing = [p for ms, _, p in reversed(options) if target and target % ms == 0]
        chosen[symbol] = (exact or dividing or [options[0][2]])[0]
    return chosen


def replay_files(directory: Path, timeframes: Mapping[str, str]) -> dict[str, Path]:
    """symbol -> file, each symbol choosing by its own timeframe (see find_replay_files)."""
    found: dict[str, Path] = {}
    for symbol, timeframe in timeframes.items():
        found.update(find_replay_files(directory, [symbol], timeframe))
    return found
