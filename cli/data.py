"""`kestrel data download|list`: the local Parquet candle cache (kestrel/market/cache.py).

Imports stay inside the commands so `kestrel --help` loads neither ccxt nor pyarrow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli._common import app, fail

if TYPE_CHECKING:
    from kestrel.market.cache import Coverage

data_app = typer.Typer(
    help="Market data: download candles into the local Parquet cache and show its coverage.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

DataDir = Annotated[
    Path, typer.Option(help="Kestrel data dir; candles go to <data-dir>/market/<exchange>/")
]


def _client(exchange: str, url: str | None, timeout_s: float) -> Any:
    """A public ccxt client with ccxt's rate limiter on; `url` points it at an emulator."""
    from kestrel.exchange.ccxt_exchange import point_at
    from kestrel.market.live import make_exchange

    config: dict[str, Any] = {}
    if url and exchange.startswith("binance"):
        config["options"] = {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "adjustForTimeDifference": False,
        }
    client = make_exchange(exchange, timeout_s, config)
    if url:
        point_at(client, url)
    return client


@data_app.command("download")
def download(
    symbols: Annotated[str, typer.Option(help="comma separated, e.g. BTC/USDT,ETH/BTC")],
    since: Annotated[str, typer.Option(help="first candle: YYYY-MM-DD[THH:MM] (UTC) or epoch ms")],
    exchange: Annotated[str, typer.Option(help="a ccxt exchange id")] = "binance",
    timeframe: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h, 4h, 1d, ...")] = "1h",
    until: Annotated[
        str | None, typer.Option(help="end (exclusive); default: the last closed candle")
    ] = None,
    data_dir: DataDir = Path(".kestrel"),
    url: Annotated[
        str | None, typer.Option(help="send requests to this base URL (e.g. the emulator)")
    ] = None,
    timeout_s: Annotated[float, typer.Option(min=1, max=120, help="per request")] = 30.0,
) -> None:
    """Download closed candles, page by page; a rerun resumes where the cache ends."""
    from kestrel.errors import ConfigError, ExchangeError, KestrelError
    from kestrel.market.download import Downloader, DownloadRequest

    try:
        request = DownloadRequest.parse(
            exchange, [s.strip() for s in symbols.split(",") if s.strip()], timeframe, since, until
        )
        client = _client(exchange, url, timeout_s)
    except (ConfigError, ExchangeError) as exc:
        raise fail(str(exc), 2) from None

    def progress(symbol: str, count: int) -> None:
        typer.echo(f"  {symbol}: +{count} candles", err=True)

    try:
        reports = Downloader(client, data_dir, progress=progress).run(request)
    except ConfigError as exc:
        raise fail(str(exc), 2) from None
    except KestrelError as exc:
        raise fail(str(exc), 1) from None
    except KeyboardInterrupt:
        raise fail("interrupted; what arrived is saved: rerun to resume", 130) from None
    for report in reports:
        typer.echo(
            f"{report.symbol} {timeframe}: {report.new_candles} new candles in "
            f"{report.requests} request(s), {report.total_candles} cached -> {report.path}"
        )


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _row(item: Coverage) -> list[str]:
    source = [g for g in item.gaps if g.kind == "source"]
    missing = [g for g in item.gaps if g.kind == "not_downloaded"]
    parts = [f"{len(source)} source gap(s), {sum(g.candles for g in source)} candles"]
    if missing:
        parts.append(f"{len(missing)} not downloaded")
    return [
        item.exchange,
        item.symbol,
        item.timeframe,
        str(item.candles),
        _when(item.first_ms),
        _when(item.last_ms),
        "; ".join(parts) if item.gaps else "none",
    ]


@data_app.command("list")
def list_data(
    data_dir: DataDir = Path(".kestrel"),
    gaps: Annotated[bool, typer.Option("--gaps", help="list every gap")] = False,
) -> None:
    """Cached series: coverage per symbol/timeframe and the gaps in it."""
    from rich.console import Console
    from rich.table import Table

    from kestrel.errors import KestrelError
    from kestrel.market.cache import list_cache

    try:
        items = list_cache(data_dir)
    except KestrelError as exc:
        raise fail(str(exc), 1) from None
    if not items:
        typer.echo(f"no cached candles under {data_dir}; run `kestrel data download`")
        return
    table = Table(title=f"candle cache in {data_dir}")
    for column in ("exchange", "symbol", "tf", "candles", "first", "last", "gaps"):
        table.add_column(column)
    for item in items:
        table.add_row(*_row(item))
    Console(width=160).print(table)
    for item in items:
        for gap in item.gaps if gaps or len(item.gaps) <= 5 else item.gaps[:5]:
            typer.echo(
                f"gap {item.symbol} {item.timeframe}: {_when(gap.start_ms)} -> "
                f"{_when(gap.end_ms)} ({gap.candles} candles, {gap.kind})"
            )
