"""`kestrel backtest run | list | show ID | compare ID ID`: the live pipeline on history.

Settings are the live ones (env, kestrel.toml or --config), so a saved live config
backtests as is; the options say only what differs (data, range, stake, fees, balances).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli._common import app, fail

if TYPE_CHECKING:
    from kestrel.backtest.results import BacktestResult

backtest_app = typer.Typer(help="Backtests on the live code path.", no_args_is_help=True)
app.add_typer(backtest_app, name="backtest")


def _balances(values: list[str]) -> dict[str, Decimal] | None:
    if not values:
        return None
    out: dict[str, Decimal] = {}
    for value in values:
        currency, sep, amount = value.partition("=")
        try:
            if not sep or not currency:
                raise InvalidOperation
            out[currency.strip().upper()] = Decimal(amount)
        except InvalidOperation:
            raise fail(
                f"--balance {value!r}: expected CURRENCY=AMOUNT, e.g. USDT=10000", 2
            ) from None
    return out


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{option} {value!r}: expected a date or time, e.g. 2024-01-31 or 2024-01-31T12:00", 2
        ) from None


@backtest_app.command("run")
def run(
    data: Annotated[Path, typer.Option(help="folder of <BASE>_<QUOTE>-<tf>.csv candles")],
    symbols: Annotated[
        str | None, typer.Option(help="comma-separated; default: the watchlist")
    ] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="analysis timeframe of every symbol")
    ] = None,
    start: Annotated[str | None, typer.Option(help="first cycle at/after (UTC ISO date)")] = None,
    end: Annotated[str | None, typer.Option(help="last candle before (UTC ISO date)")] = None,
    stake: Annotated[str | None, typer.Option(help="stake per trade, e.g. 0.01")] = None,
    stake_currency: Annotated[str | None, typer.Option(help="currency of --stake")] = None,
    fee: Annotated[str | None, typer.Option(help="taker and maker fee, e.g. 0.001")] = None,
    balance: Annotated[list[str] | None, typer.Option(help="CURRENCY=AMOUNT (repeatable)")] = None,
    warmup: Annotated[
        int, typer.Option(min=1, help="candles of history before the first cycle")
    ] = 200,
    detail: Annotated[bool, typer.Option(help="fill on finer candles when present")] = True,
    fast: Annotated[bool, typer.Option(help="skip passes while nothing is open")] = True,
    currency: Annotated[str | None, typer.Option(help="value equity in this currency")] = None,
    precompute: Annotated[
        bool, typer.Option(help="indicators computed once per series (docs/backtest.md)")
    ] = True,
    full_history: Annotated[
        bool, typer.Option(help="analyze every loaded candle at each step (slow, a check)")
    ] = False,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="every symbol's strategy: a built-in (e.g. SCALP/AGGRESSIVE), pkg.mod:Class "
            "or an installed entry point; default: the settings'"
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="a kestrel.toml to backtest")] = None,
    results_dir: Annotated[
        Path | None, typer.Option(help="default: the settings' data dir")
    ] = None,
    label: Annotated[str, typer.Option(help="a note stored with the result")] = "",
    charts: Annotated[bool, typer.Option(help="write PNG and HTML charts")] = True,
    recordings: Annotated[
        Path | None,
        typer.Option(help="LLM / sentiment answers to replay (`kestrel backtest recordings`)"),
    ] = None,
    on_missing_answer: Annotated[
        str, typer.Option(help="an answer not recorded: hold (abstain) or error (stop)")
    ] = "hold",
) -> None:
    """Backtest the live settings over CSV candles; prints the tables and stores the result."""
    from pydantic import ValidationError

    from cli._common import load_cli_settings
    from kestrel.backtest import BacktestSpec, run_backtest
    from kestrel.errors import KestrelError

    settings = load_cli_settings(config)
    try:
        fee_value = Decimal(fee) if fee is not None else None
        stake_value = Decimal(stake) if stake is not None else None
    except InvalidOperation:
        raise fail(f"--fee / --stake must be numbers (got {fee!r}, {stake!r})", 2) from None
    try:
        spec = BacktestSpec(
            data_dir=data,
            symbols=[s.strip() for s in symbols.split(",") if s.strip()] if symbols else None,
            timeframe=timeframe,
            start=_date(start, "--start"),
            end=_date(end, "--end"),
            stake_amount=stake_value,
            stake_currency=stake_currency,
            taker_fee=fee_value,
            maker_fee=fee_value,
            starting_balances=_balances(balance or []),
            warmup=warmup,
            detail=detail,
            fast=fast,
            strategy=strategy,
            precompute=precompute,
            full_history=full_history,
            currency=currency,
            label=label,
            recordings=recordings,
            on_missing_answer=on_missing_answer,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(f"invalid backtest options: {problems}", 2) from None
    try:
        outcome = _run_with_progress(lambda progress: run_backtest(
            settings, spec, results_root=results_dir, progress=progress, charts=charts
        ))  # fmt: skip
    except (KestrelError, ValueError) as exc:
        raise fail(str(exc), 2) from None
    print_result(outcome.result)
    typer.echo(f"stored in {outcome.folder}")
    for name, path in outcome.charts.items():
        typer.echo(f"  {name}: {path}")
    if not outcome.result.reconciled:
        raise fail("the books do not reconcile with the paper wallet", 3)


def _run_with_progress(work: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("backtest"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} steps/s"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("steps", total=None, rate="-")

        def progress(done: int, total: int) -> None:
            if done % 10 == 0 or done == total:
                elapsed = bar.tasks[0].elapsed or 0
                rate = f"{done / elapsed:.0f}" if elapsed else "-"
                bar.update(task, completed=done, total=total, rate=rate)

        return work(progress)


def _table(title: str, rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    if not rows:
        table.add_column("(none)")
        return table
    for column in rows[0]:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    return table


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def metric_rows(result: BacktestResult) -> list[dict[str, str]]:
    m = result.metrics
    return [
        {"metric": "total return", "value": _pct(m.total_return)},
        {"metric": "CAGR", "value": _pct(m.cagr)},
        {"metric": "max drawdown", "value": _pct(m.max_drawdown)},
        {"metric": "max drawdown duration", "value": m.max_drawdown_duration},
        {"metric": "Sharpe", "value": _num(m.sharpe)},
        {"metric": "Sortino", "value": _num(m.sortino)},
        {"metric": "Calmar", "value": _num(m.calmar)},
        {"metric": "win rate", "value": _pct(m.win_rate)},
        {"metric": "profit factor", "value": _num(m.profit_factor)},
        {"metric": f"expectancy ({m.currency})", "value": _num(m.expectancy)},
        {"metric": "exposure", "value": _pct(m.exposure)},
        {"metric": f"fees paid ({m.currency})", "value": _num(m.fees_paid)},
        {"metric": "trades (open at end)", "value": f"{m.trade_count} ({m.open_trades})"},
        {"metric": "buy and hold", "value": _pct(m.buy_and_hold)},
        {
            "metric": f"equity ({m.currency})",
            "value": f"{_num(m.start_equity)} -> {_num(m.end_equity)}",
        },
    ]


def trade_rows(result: BacktestResult, limit: int = 50) -> list[dict[str, Any]]:
    return [
        {
            "symbol": t.symbol,
            "entry": f"{t.entry_time:%Y-%m-%d %H:%M}",
            "entry price": f"{t.entry_price:.8g}",
            "exit": f"{t.exit_time:%Y-%m-%d %H:%M}" if t.exit_time else "open",
            "exit price": f"{t.exit_price:.8g}" if t.exit_price is not None else "",
            "amount": f"{t.amount.normalize():f}",
            "fees": f"{t.fees:.8g}",
            "pnl": f"{t.pnl:.8g}",
            "pnl %": f"{t.pnl_pct:.2f}",
            "exit reason": t.exit_reason,
        }
        for t in result.trades[-limit:]
    ]


def print_result(result: BacktestResult) -> None:
    from rich.console import Console

    console = Console()
    console.print(
        f"\n[bold]Backtest {result.id}[/bold] ({result.status}) {result.start:%Y-%m-%d %H:%M} .. "
        f"{result.end:%Y-%m-%d %H:%M} on {result.data_source}\n"
        f"strategies: {result.strategies}; {result.steps} steps, {result.cycles} cycles in "
        f"{result.elapsed_s:.1f}s ({result.candles_per_s:.0f} candles/s); orders: "
        f"{result.orders_by_status or 'none'}; fills: {result.fills}"
    )
    if result.strategy_ids:
        ids = ", ".join(f"{symbol} {ref}" for symbol, ref in result.strategy_ids.items())
        console.print(f"strategy identity: {ids}", markup=False, highlight=False)
    if result.errors:
        console.print(
            f"[yellow]{len(result.errors)} step errors[/yellow], first: {result.errors[0]}"
        )
    reasons = ", ".join(f"{code} x{n}" for code, n in list(result.decisions.items())[:8])
    console.print(f"decision reasons: {reasons or 'none'}")
    console.print(_table("Metrics", metric_rows(result)))
    console.print(
        _table(
            f"Trades (last {min(50, len(result.trades))} of {len(result.trades)})",
            trade_rows(result),
        )
    )
    console.print(_table("Per symbol", result.by_symbol))
    console.print(_table("Per exit reason", result.by_exit_reason))
    console.print(books_table(result.books))
    verdict = "[green]RECONCILED[/green]" if result.reconciled else "[red]NOT RECONCILED[/red]"
    console.print(f"Books vs wallet: {verdict}")


def books_table(rows: list[dict[str, str]]) -> Any:
    """The demo's table: one column per currency, one row per field."""
    from rich.table import Table

    table = Table(
        title="Books per currency",
        caption="expected cash = starting + realized pnl - fees - held cost + held amount",
    )
    table.add_column("")
    for row in rows:
        table.add_column(row["currency"], justify="right")
    for field in (f for f in (rows[0] if rows else {}) if f != "currency"):
        table.add_row(field.replace("_", " "), *(row[field] for row in rows))
    return table


@backtest_app.command("recordings")
def recordings_cmd(
    out: Annotated[Path, typer.Option(help="the JSON-lines file to write")],
    config: Annotated[Path | None, typer.Option(help="a kestrel.toml (its store)")] = None,
) -> None:
    """Export the LLM / sentiment answers live runs recorded in this mode's store, for
    `kestrel backtest run --recordings FILE` to replay."""
    from cli._common import load_cli_settings
    from kestrel.analysis.recordings import export_recordings
    from kestrel.store import open_store
    from kestrel.store.recordings import StoreRecordings

    settings = load_cli_settings(config)
    store = open_store(settings, settings.mode)
    try:
        count = export_recordings(StoreRecordings(store).items(), out)
    except OSError as exc:
        raise fail(f"--out {out}: {exc.strerror or exc}", 2) from None
    finally:
        store.close()
    typer.echo(f"{count} recorded answers ({settings.mode.value} store) written to {out}")


def _root(results_dir: Path | None) -> Path:
    if results_dir is not None:
        return results_dir
    from cli._common import load_cli_settings

    return load_cli_settings().data_dir


@backtest_app.command("list")
def list_cmd(
    results_dir: Annotated[
        Path | None, typer.Option(help="default: the settings' data dir")
    ] = None,
) -> None:
    """Stored backtests, oldest first."""
    from rich.console import Console

    from kestrel.backtest.storage import list_results

    rows = [
        {
            "id": r.id, "status": r.status, "label": r.label,
            "range": f"{r.start:%Y-%m-%d} .. {r.end:%Y-%m-%d}",
            "symbols": ", ".join(r.strategies), "trades": r.metrics.trade_count,
            "return": _pct(r.metrics.total_return), "max dd": _pct(r.metrics.max_drawdown),
            "reconciled": "yes" if r.reconciled else "NO",
        }
        for r in list_results(_root(results_dir))
    ]  # fmt: skip
    Console().print(_table("Backtests", rows))


@backtest_app.command("show")
def show(
    result_id: Annotated[str, typer.Argument(help="an id from `kestrel backtest list`")],
    results_dir: Annotated[
        Path | None, typer.Option(help="default: the settings' data dir")
    ] = None,
) -> None:
    """One stored backtest's tables."""
    from kestrel.backtest.storage import load
    from kestrel.errors import ConfigError

    try:
        print_result(load(_root(results_dir), result_id))
    except ConfigError as exc:
        raise fail(str(exc), 2) from None


@backtest_app.command("compare")
def compare(
    first: Annotated[str, typer.Argument(help="a backtest id")],
    second: Annotated[str, typer.Argument(help="another backtest id")],
    results_dir: Annotated[
        Path | None, typer.Option(help="default: the settings' data dir")
    ] = None,
) -> None:
    """Two stored backtests' metrics side by side."""
    from rich.console import Console
    from rich.table import Table

    from kestrel.backtest.storage import load
    from kestrel.errors import ConfigError

    root = _root(results_dir)
    try:
        a, b = load(root, first), load(root, second)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    table = Table(title=f"{a.id} vs {b.id}")
    for column in ("metric", a.id, b.id):
        table.add_column(column)
    table.add_row("strategies", str(a.strategies), str(b.strategies))
    table.add_row(
        "range",
        f"{a.start:%Y-%m-%d} .. {a.end:%Y-%m-%d}",
        f"{b.start:%Y-%m-%d} .. {b.end:%Y-%m-%d}",
    )
    for left, right in zip(metric_rows(a), metric_rows(b), strict=True):
        table.add_row(left["metric"], left["value"], right["value"])
    table.add_row("reconciled", str(a.reconciled), str(b.reconciled))
    Console().print(table)
