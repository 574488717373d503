"""`kestrel data download|list` against the Binance emulator's klines with the real ccxt
client (rate limiter on): pagination, resume after an interruption, gaps, closed candles only,
bad arguments, and replays reading the Parquet cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ccxt
import pytest
from typer.testing import CliRunner

from cli import app
from emulator import BinanceEmulator, FaultRule, MarketConfig
from kestrel.errors import ConfigError
from kestrel.market.cache import Span, cache_dir, cache_path, list_cache, read_cache
from kestrel.market.download import Downloader, DownloadInterrupted, DownloadRequest
from kestrel.market.replay import ReplayFeed
from kestrel.store.sqlite import SQLiteStore

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
KLINES = "GET /api/v3/klines"


def hourly(count: int, missing: frozenset[int] = frozenset()) -> list[list[object]]:
    return [
        [T0 + i * HOUR, 100 + i, 102 + i, 99 + i, 101 + i, 10 + i]
        for i in range(count)
        if i not in missing
    ]


def start(rows: list[list[object]], *others: str) -> BinanceEmulator:
    """BTC/USDT over `rows` (and each of `others` over the same rows)."""
    markets = [
        MarketConfig(symbol=symbol, candles=rows, timeframe="1h")
        for symbol in ("BTC/USDT", *others)
    ]
    emu = BinanceEmulator(markets).start()
    emu.advance(len(rows))  # every candle closed: the "present" is the end of the feed
    return emu


@pytest.fixture
def emu() -> Iterator[BinanceEmulator]:
    server = start(hourly(250), "ETH/BTC")
    yield server
    errors = server.internal_errors
    server.stop()
    assert errors == []


def client(emu: BinanceEmulator) -> ccxt.binance:
    return emu.ccxt_client(timeout_ms=5000, enableRateLimit=True)


def downloader(emu: BinanceEmulator, data_dir: Path, **kw: object) -> Downloader:
    return Downloader(
        client(emu),
        data_dir,
        clock=lambda: emu.now_ms,
        page_limit=100,
        **kw,  # type: ignore[arg-type]
    )


REQUEST = DownloadRequest.parse("binance", ["BTC/USDT"], "1h", "2024-01-01")


def test_download_pages_through_the_range(emu: BinanceEmulator, tmp_path: Path) -> None:
    [report] = downloader(emu, tmp_path).run(REQUEST)
    assert emu.request_counts()[KLINES] == 3  # 100 + 100 + 50
    assert (report.requests, report.new_candles, report.total_candles) == (3, 250, 250)
    series = read_cache(cache_path(tmp_path, "binance", "BTC/USDT", "1h"))
    assert [r[0] for r in series.rows] == [T0 + i * HOUR for i in range(250)]
    assert series.rows[7] == (T0 + 7 * HOUR, 107.0, 109.0, 106.0, 108.0, 17.0)
    [cov] = list_cache(tmp_path)
    assert cov.gaps == [] and (cov.first_ms, cov.last_ms) == (T0, T0 + 249 * HOUR)


def test_resume_fetches_only_the_missing_part(emu: BinanceEmulator, tmp_path: Path) -> None:
    def fail_next_page(symbol: str, count: int) -> None:
        emu.faults.add(FaultRule(kind="http_error", path="/api/v3/klines", status=503))

    with pytest.raises(DownloadInterrupted, match="run the same command again to resume"):
        downloader(emu, tmp_path, progress=fail_next_page).run(REQUEST)
    path = cache_path(tmp_path, "binance", "BTC/USDT", "1h")
    assert len(read_cache(path).rows) == 100  # the first page was kept
    [cov] = list_cache(tmp_path)
    assert cov.covered[0].end_ms == T0 + 100 * HOUR

    emu.reset_request_counts()
    [report] = downloader(emu, tmp_path).run(REQUEST)
    assert emu.request_counts()[KLINES] == 2  # 100..199, 200..249: nothing fetched twice
    assert (report.new_candles, report.total_candles) == (150, 250)
    assert [r[0] for r in read_cache(path).rows] == [T0 + i * HOUR for i in range(250)]

    emu.reset_request_counts()
    [report] = downloader(emu, tmp_path).run(REQUEST)
    assert KLINES not in emu.request_counts() and report.new_candles == 0


def test_an_earlier_since_fetches_only_the_head(emu: BinanceEmulator, tmp_path: Path) -> None:
    later = DownloadRequest.parse("binance", ["BTC/USDT"], "1h", "2024-01-05")  # hour 96
    downloader(emu, tmp_path).run(later)
    emu.reset_request_counts()
    [report] = downloader(emu, tmp_path).run(REQUEST)
    assert report.fetched == [Span(start_ms=T0, end_ms=T0 + 96 * HOUR)]
    assert emu.request_counts()[KLINES] == 1 and report.new_candles == 96
    [cov] = list_cache(tmp_path)
    assert cov.gaps == [] and cov.covered == [Span(start_ms=T0, end_ms=T0 + 250 * HOUR)]


def test_a_gap_in_the_source_is_reported_not_filled(tmp_path: Path) -> None:
    emu = start(hourly(150, missing=frozenset({120, 121, 122})))
    try:
        downloader(emu, tmp_path).run(REQUEST)
        emu.reset_request_counts()
        downloader(emu, tmp_path).run(REQUEST)  # a source gap is not "missing": no refetch
        assert KLINES not in emu.request_counts()
    finally:
        emu.stop()
    [cov] = list_cache(tmp_path)
    assert cov.candles == 147
    [gap] = cov.gaps
    assert (gap.start_ms, gap.end_ms, gap.candles, gap.kind) == (
        T0 + 120 * HOUR,
        T0 + 123 * HOUR,
        3,
        "source",
    )
    result = CliRunner().invoke(app, ["data", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 source gap(s), 3 candles" in result.output
    assert "gap BTC/USDT 1h: 2024-01-06 00:00 -> 2024-01-06 03:00 (3 candles, source)" in (
        result.output
    )


def test_only_closed_candles_are_stored(emu: BinanceEmulator, tmp_path: Path) -> None:
    # 250 hours from midnight: the 4h bucket at 248h holds 2 of its 4 hours, still forming.
    request = DownloadRequest.parse("binance", ["BTC/USDT"], "4h", "2024-01-01")
    downloader(emu, tmp_path).run(request)
    series = read_cache(cache_path(tmp_path, "binance", "BTC/USDT", "4h"))
    assert len(series.rows) == 62 and series.rows[-1][0] == T0 + 244 * HOUR
    assert series.rows[-1][4] == 101.0 + 247  # the close of its last hour


def test_until_bounds_the_download(emu: BinanceEmulator, tmp_path: Path) -> None:
    request = DownloadRequest.parse(
        "binance", ["BTC/USDT"], "1h", "2024-01-02", "2024-01-03T00:00Z"
    )
    [report] = downloader(emu, tmp_path).run(request)
    assert report.total_candles == 24 and report.requests == 1


def test_bad_arguments_say_what_to_fix() -> None:
    with pytest.raises(ConfigError, match="unknown timeframe '7m'; allowed: 1m"):
        DownloadRequest.parse("binance", ["BTC/USDT"], "7m", "2024-01-01")
    with pytest.raises(ConfigError, match=r"--since \(2024-02-01 00:00\) must be before --until"):
        DownloadRequest.parse("binance", ["BTC/USDT"], "1h", "2024-02-01", "2024-01-01")
    with pytest.raises(ConfigError, match="--since: 'yesterday' is not a date"):
        DownloadRequest.parse("binance", ["BTC/USDT"], "1h", "yesterday")
    with pytest.raises(ConfigError, match="must look like BASE/QUOTE"):
        DownloadRequest.parse("binance", ["BTCUSDT"], "1h", "2024-01-01")


def test_unknown_symbol_is_refused_before_any_kline(emu: BinanceEmulator, tmp_path: Path) -> None:
    request = DownloadRequest.parse("binance", ["DOGE/USDT"], "1h", "2024-01-01")
    with pytest.raises(ConfigError, match="--symbols: binance lists no DOGE/USDT"):
        downloader(emu, tmp_path).run(request)
    assert KLINES not in emu.request_counts()


def test_cli_downloads_from_the_emulator_and_rejects_bad_input(
    emu: BinanceEmulator, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["data", "download", "--url", emu.url, "--data-dir", str(tmp_path)]
    ok = runner.invoke(
        app,
        [*base, "--symbols", "BTC/USDT,ETH/BTC", "--since", "2024-01-01", "--until", "2024-01-08"],
    )
    assert ok.exit_code == 0, ok.output
    assert "BTC/USDT 1h: 168 new candles in 1 request(s)" in ok.output
    assert "ETH/BTC 1h: 168 new candles in 1 request(s)" in ok.output
    assert (tmp_path / "market" / "binance" / "ETH_BTC-1h.parquet").is_file()
    bad_tf = runner.invoke(app, [*base, "--symbols", "BTC/USDT", "--since", "2024-01-01",
                                 "--timeframe", "2m"])  # fmt: skip
    assert bad_tf.exit_code == 2 and "unknown timeframe '2m'" in bad_tf.output
    backwards = runner.invoke(
        app, [*base, "--symbols", "BTC/USDT", "--since", "2024-02-01", "--until", "2024-01-01"]
    )
    assert backwards.exit_code == 2 and "must be before --until" in backwards.output


def test_replay_reads_the_parquet_cache(
    emu: BinanceEmulator, tmp_path: Path, tmp_data_dir: Path
) -> None:
    from kestrel.mode import TradingMode

    downloader(emu, tmp_path).run(REQUEST)
    store = SQLiteStore(tmp_data_dir / "demo.sqlite", TradingMode.DEMO)
    try:
        feed = ReplayFeed.from_dir(
            cache_dir(tmp_path, "binance"), store, ["BTC/USDT"], timeframe="1h", warmup=50
        )
        series = feed.candles("BTC/USDT", "1h", limit=None)
    finally:
        store.close()
    assert feed.files["BTC/USDT"].suffix == ".parquet"
    assert [c.timestamp for c in series.candles] == [T0 + i * HOUR for i in range(50)]
    assert series.candles[-1].close == 101.0 + 49


def test_time_never_asked_about_is_listed_as_not_downloaded(
    emu: BinanceEmulator, tmp_path: Path
) -> None:
    first = DownloadRequest.parse("binance", ["BTC/USDT"], "1h", "2024-01-01", "2024-01-02")
    later = DownloadRequest.parse("binance", ["BTC/USDT"], "1h", "2024-01-05", "2024-01-06")
    downloader(emu, tmp_path).run(first)
    downloader(emu, tmp_path).run(later)
    [cov] = list_cache(tmp_path)
    [gap] = cov.gaps
    assert (gap.start_ms, gap.end_ms, gap.candles, gap.kind) == (
        T0 + 24 * HOUR,
        T0 + 96 * HOUR,
        72,
        "not_downloaded",
    )
    result = CliRunner().invoke(app, ["data", "list", "--data-dir", str(tmp_path)])
    assert "1 not downloaded" in result.output and "72 candles, not_downloaded" in result.output


def test_pages_shorter_than_asked_for_are_not_taken_as_the_end(tmp_path: Path) -> None:
    """Binance serves at most 1000 klines whatever `limit` says (other exchanges fewer)."""
    emu = start(hourly(1500))
    try:
        client = emu.ccxt_client(timeout_ms=5000, enableRateLimit=True)
        [report] = Downloader(client, tmp_path, clock=lambda: emu.now_ms, page_limit=1500).run(
            REQUEST
        )
        assert emu.request_counts()[KLINES] == 2
    finally:
        emu.stop()
    assert report.total_candles == 1500
    assert list_cache(tmp_path)[0].gaps == []


def test_strategy_check_reads_the_downloaded_cache(emu: BinanceEmulator, tmp_path: Path) -> None:
    downloader(emu, tmp_path).run(REQUEST)
    path = cache_path(tmp_path, "binance", "BTC/USDT", "1h")
    result = CliRunner().invoke(
        app, ["strategy", "check", "--strategy", "intraday", "--data", str(path), "--points", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "on 250 candles" in result.output and "lookahead: OK" in result.output
