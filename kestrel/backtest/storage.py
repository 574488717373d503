"""Backtest results under the data dir: `<data_dir>/backtests/<id>/` holds result.json,
trades.csv, equity.csv and the charts. A result is written complete or marked partial; a
failed run stores nothing."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from kestrel.backtest.results import BacktestResult
from kestrel.errors import ConfigError

RESULT_FILE = "result.json"
CHARTS = {"equity": "equity.png", "prices": "prices.png"}
# What new_id / unused_id make (20240131T120000-abc123, -2...) and a little more; never a
# path separator or a leading dot, so an id can only name a folder directly under backtests/.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class BadResultId(ConfigError):
    """An id that could not be a stored backtest (a path, a dot-name, odd characters)."""


def check_id(result_id: str) -> str:
    """`result_id` when it can only name a folder directly under backtests/; otherwise a
    BadResultId saying what an id looks like (so `../x` never reaches the file system)."""
    if not _ID.fullmatch(result_id) or ".." in result_id:
        raise BadResultId(
            f"backtest id {result_id[:80]!r} is not valid: letters, digits, '-', '_' and '.' "
            "only (no path), e.g. 20240131T120000-abc123 from the backtest list"
        )
    return result_id


def results_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "backtests"


def result_dir(data_dir: Path, result_id: str) -> Path:
    return results_dir(data_dir) / result_id


def unused_id(data_dir: Path, wanted: str) -> str:
    """`wanted`, or `wanted-2`, `-3`... when a result of that id exists (same second and
    settings)."""
    found, n = wanted, 1
    while result_dir(data_dir, found).exists():
        n += 1
        found = f"{wanted}-{n}"
    return found


def save(data_dir: Path, result: BacktestResult) -> Path:
    """Write the result (json last, so a folder without it is not a result)."""
    folder = result_dir(data_dir, result.id)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "trades.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        fields = list(type(result.trades[0]).model_fields) if result.trades else ["symbol"]
        writer.writerow(fields)
        for trade in result.trades:
            dumped = trade.model_dump(mode="json")
            writer.writerow([dumped[f] for f in fields])
    with (folder / "equity.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "equity"])
        writer.writerows(result.equity)
    partial = folder / (RESULT_FILE + ".tmp")
    partial.write_text(result.model_dump_json(indent=1))
    partial.replace(folder / RESULT_FILE)
    return folder


def load(data_dir: Path, result_id: str) -> BacktestResult:
    path = result_dir(data_dir, check_id(result_id)) / RESULT_FILE
    if not path.is_file():
        known = ", ".join(r.id for r in list_results(data_dir)[-5:]) or "none yet"
        raise ConfigError(f"no backtest {result_id!r} in {results_dir(data_dir)} (latest: {known})")
    return BacktestResult.model_validate_json(path.read_text())


def chart_file(data_dir: Path, result_id: str, chart: str) -> Path | None:
    """The stored PNG `chart` (equity or prices) of a result, None when it was not drawn
    (a run with charts off). Unknown ids and chart names raise ConfigError."""
    if chart not in CHARTS:
        raise ConfigError(f"chart {chart!r}: one of {', '.join(CHARTS)}")
    load(data_dir, result_id)  # unknown id: the same clear error as show
    path = result_dir(data_dir, result_id) / CHARTS[chart]
    return path if path.is_file() else None


def list_results(data_dir: Path) -> list[BacktestResult]:
    """Every stored result, oldest first (unreadable folders are skipped)."""
    found = []
    folder = results_dir(data_dir)
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob(f"*/{RESULT_FILE}")):
        try:
            found.append(BacktestResult.model_validate(json.loads(path.read_text())))
        except (ValueError, OSError):
            continue
    return found
