"""Backtest results under the data dir: `<data_dir>/backtests/<id>/` holds result.json,
trades.csv, equity.csv and the charts. A result is written complete or marked partial; a
failed run stores nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from kestrel.backtest.results import BacktestResult
from kestrel.errors import ConfigError

RESULT_FILE = "result.json"


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
    path = result_dir(data_dir, result_id) / RESULT_FILE
    if not path.is_file():
        known = ", ".join(r.id for r in list_results(data_dir)[-5:]) or "none yet"
        raise ConfigError(f"no backtest {result_id!r} in {results_dir(data_dir)} (latest: {known})")
    return BacktestResult.model_validate_json(path.read_text())


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
