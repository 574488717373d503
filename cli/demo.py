"""`kestrel demo`: the main job, a DEMO paper-trading session ending in reconciled books."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from cli._common import app, fail, prepare_prefect

if TYPE_CHECKING:
    from kestrel.reporting.summary import SessionSummary

MarketChoice = Literal["auto", "replay", "simulated"]


@app.command()
def demo(
    cycles: Annotated[int, typer.Option(min=1, max=100_000, help="trading cycles to run")] = 200,
    market: Annotated[
        str, typer.Option(help="auto | replay | simulated (auto: replay ../shared data if found)")
    ] = "auto",
    replay_dir: Annotated[
        Path | None, typer.Option(help="folder of <BASE>_<QUOTE>-<tf>.csv candles")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="where demo runs keep their books")] = Path(
        ".kestrel"
    ),
) -> None:
    """Run a DEMO paper-trading session and print its reconciled summary."""
    if market not in ("auto", "replay", "simulated"):
        raise fail(f"--market must be auto, replay or simulated, not {market!r}", 2)
    if replay_dir is not None and not replay_dir.is_dir():
        raise fail(f"--replay-dir {replay_dir} is not a folder", 2)
    from kestrel.config.demo import demo_settings, fresh_run_dir

    choice: MarketChoice = market  # type: ignore[assignment]
    run_dir = fresh_run_dir(data_dir.resolve())
    # Hundreds of cycles x tasks: keep the console to the flow's progress lines.
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    prepare_prefect(data_dir.resolve())
    settings = demo_settings(data_dir=run_dir, market=choice, replay_dir=replay_dir)
    typer.echo(f"Kestrel demo: {cycles} cycles, books in {run_dir}")
    typer.echo("Starting Prefect (the first start on a new machine can take a minute)...")
    from flows.demo import demo_session

    summary = demo_session(config=settings.model_dump(mode="json"), cycles=cycles)
    print_summary(summary)
    if not summary.reconciled:
        raise fail("the books do not reconcile with the paper wallet", 3)


def print_summary(summary: SessionSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    from kestrel.reporting.summary import summary_rows

    console = Console()
    console.print(
        f"\n[bold]DEMO session[/bold]: {summary.cycles} cycles on {summary.market_data}\n"
        f"orders by status: {summary.orders_by_status or 'none'}; fills: {summary.fills}"
    )
    if summary.open_positions:
        positions = Table(title="Open positions")
        for column in ("symbol", "amount", "avg entry", "last", "unrealized PnL"):
            positions.add_column(column, justify="right")
        for line in summary.open_positions:
            positions.add_row(
                line.symbol,
                str(line.amount),
                f"{line.avg_entry_price:.8g}",
                str(line.last_price),
                f"{line.unrealized_pnl:.8f}",
            )
        console.print(positions)
    rows = summary_rows(summary)
    table = Table(
        title="Books per currency",
        caption="expected cash = starting + realized pnl - fees - held cost + held amount",
    )
    table.add_column("")
    for row in rows:
        table.add_column(row["currency"], justify="right")
    for field in (f for f in (rows[0] if rows else {}) if f != "currency"):
        table.add_row(field.replace("_", " "), *(row[field] for row in rows))
    console.print(table)
    verdict = "[green]RECONCILED[/green]" if summary.reconciled else "[red]NOT RECONCILED[/red]"
    console.print(f"Books vs wallet: {verdict}")
