"""`kestrel strategy list|new|check`: the strategy plugins (kestrel/strategy/plugin.py).

Imports stay inside the commands so `kestrel --help` loads neither pandas nor pandas-ta.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli._common import fail
from cli.risk import strategy_app

if TYPE_CHECKING:
    from kestrel.models import CandleSeries
    from kestrel.strategy.check import CheckReport


@strategy_app.command("list")
def list_strategies() -> None:
    """Built-in strategies and those installed through the `kestrel.strategies` entry points."""
    from rich.console import Console
    from rich.table import Table

    from kestrel.strategy.loader import list_strategies as found

    infos, problems = found()
    table = Table(title="strategies (use the `--strategy` column, or package.module:Class)")
    for column in ("--strategy", "origin", "version", "tf", "identity", "description"):
        table.add_column(column)
    for info in infos:
        table.add_row(
            info.ref, info.origin, info.version, info.timeframe, info.identity, info.description
        )
    Console(width=160).print(table)
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)


@strategy_app.command("new")
def new_strategy(
    name: Annotated[str, typer.Argument(help="a Python identifier, e.g. my_trend")],
    directory: Annotated[Path, typer.Option("--dir", help="where to write the files")] = Path(),
) -> None:
    """Write a working strategy skeleton <name>.py and its test test_<name>.py."""
    from kestrel.strategy.plugin import StrategyError
    from kestrel.strategy.skeleton import write_skeleton

    try:
        module, test = write_skeleton(name, directory)
    except StrategyError as exc:
        raise fail(str(exc), 2) from None
    typer.echo(f"wrote {module} and {test}")
    typer.echo(f"try: python -m pytest {test}")
    typer.echo(
        f"then: kestrel strategy check --strategy {module.stem}:"
        f"{_first_class(module)} --data <candles.csv|.parquet>"
    )


def _first_class(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("class ") and "Strategy)" in line:
            return line.removeprefix("class ").split("(")[0]
    return "Strategy"


def _load_series(data: Path, symbol: str | None, timeframe: str | None) -> CandleSeries:
    """A candle file (CSV or Parquet cache), or a folder plus --symbol [--timeframe]."""
    from kestrel.errors import ConfigError
    from kestrel.market.csvfile import find_replay_files, parse_candle_filename, read_candle_file
    from kestrel.models import CandleSeries

    if data.is_dir():
        if symbol is None:
            raise ConfigError(f"--data {data} is a folder: name the series with --symbol")
        files = find_replay_files(data, [symbol], timeframe)
        if symbol not in files:
            raise ConfigError(f"--data {data}: no <BASE>_<QUOTE>-<tf>.csv|.parquet for {symbol}")
        data = files[symbol]
    parsed = parse_candle_filename(data)
    if parsed is None:
        raise ConfigError(f"--data {data}: candle files are named <BASE>_<QUOTE>-<tf>.csv|.parquet")
    candles = read_candle_file(data)
    return CandleSeries(
        symbol=parsed[0], timeframe=parsed[1], candles=candles, source=f"file:{data.name}"
    )


def _print_report(report: CheckReport) -> None:
    look = report.lookahead
    typer.echo(f"strategy {report.strategy} on {report.candles} candles")
    if look.ok:
        typer.echo(f"lookahead: OK ({len(look.points)} random cut points agree with the full run)")
    else:
        rows = sorted({m.row for m in look.mismatches})
        typer.echo(f"lookahead: FAILED at {len(rows)} of {len(look.points)} cut points")
        for m in look.mismatches[:10]:
            typer.echo(f"  row {m.row} ({m.timestamp}): {m.what}: full {m.full}, cut {m.truncated}")
    warm = report.warmup
    if not warm.items:
        typer.echo(f"warm-up: no indicator depends on history beyond {warm.history} candles")
    for item in warm.items:
        needed = (
            f"agrees after {item.history_needed} candles"
            if item.history_needed
            else f"still differs after {max(warm.tested)} candles"
        )
        typer.echo(
            f"warm-up: {item.column} is off by up to {item.max_rel_diff:.2e} (relative) with "
            f"{warm.history} candles loaded; {needed}"
        )
    if warm.points:
        typer.echo(
            f"warm-up: {warm.decisions_changed} of {warm.points} sampled decisions change with "
            f"only {warm.history} candles loaded"
        )


@strategy_app.command("check")
def check(
    strategy: Annotated[str, typer.Option(help="built-in name, entry point or pkg.mod:Class")],
    data: Annotated[Path, typer.Option(help="a candle CSV/Parquet file, or a folder")],
    symbol: Annotated[str | None, typer.Option(help="with a folder: which symbol")] = None,
    timeframe: Annotated[str | None, typer.Option(help="with a folder: which timeframe")] = None,
    params: Annotated[str, typer.Option(help='parameters as JSON, e.g. {"fast": 5}')] = "{}",
    points: Annotated[int, typer.Option(min=1, max=10_000, help="random cut points")] = 50,
    seed: Annotated[int, typer.Option(help="seed of the cut points")] = 0,
) -> None:
    """Lookahead check (decisions on data cut at random points equal the full run's) and a
    warm-up report (indicators that depend on how much history was loaded). Exit 1 on a leak."""
    from kestrel.errors import KestrelError
    from kestrel.strategy.check import check_strategy
    from kestrel.strategy.loader import load_strategy

    try:
        values: Any = json.loads(params)
    except json.JSONDecodeError as exc:
        raise fail(f"--params is not JSON: {exc}", 2) from None
    if not isinstance(values, dict):
        raise fail('--params must be a JSON object, e.g. {"fast": 5}', 2)
    try:
        loaded = load_strategy(strategy, values)
        series = _load_series(data, symbol, timeframe)
        report = check_strategy(loaded, series, points=points, seed=seed)
    except KestrelError as exc:
        raise fail(str(exc), 2) from None
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)
