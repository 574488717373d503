"""choose_feed: explicit sources, and "auto" falling back fast when there is no network,
to replay data only: never to a simulation nobody asked for.

No real internet exists here: "unreachable" is a closed local port, "hanging" is a socket
that accepts connections and never answers. The pytest timeout guards against a hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.config.settings import KestrelSettings, PaperSettings, WatchlistItem
from kestrel.errors import ConfigError, MarketDataUnavailable
from kestrel.market import CcxtLiveFeed, ReplayFeed, SimulatedFeed, choose_feed, probe
from kestrel.store.sqlite import SQLiteStore
from tests.market.conftest import ramp, write_csv
from tests.market.fake_binance import FakeBinance, binance_at, closed_port, serve, silent_listener

SYMBOLS = ["BTC/USDT"]


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "candles"
    folder.mkdir()
    write_csv(folder / "BTC_USDT-1h.csv", ramp(30))
    return folder


def test_explicit_simulated_and_replay(store: SQLiteStore, replay_dir: Path) -> None:
    simulated = choose_feed(PaperSettings(market_data="simulated", seed=11), store, SYMBOLS)
    assert isinstance(simulated, SimulatedFeed) and simulated.label == "SIMULATED (seed 11)"
    replay = choose_feed(
        PaperSettings(market_data="replay", replay_dir=replay_dir), store, SYMBOLS, warmup=5
    )
    assert isinstance(replay, ReplayFeed) and replay.label == "replay:BTC_USDT-1h.csv"


def test_explicit_replay_needs_a_folder_with_every_symbol(
    store: SQLiteStore, replay_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="replay_dir"):
        choose_feed(PaperSettings(market_data="replay"), store, SYMBOLS)
    with pytest.raises(ConfigError, match="ETH/USDT"):
        choose_feed(
            PaperSettings(market_data="replay", replay_dir=replay_dir),
            store,
            ["BTC/USDT", "ETH/USDT"],
            warmup=5,
        )


def test_explicit_live_makes_no_request_and_sets_the_timeout(store: SQLiteStore) -> None:
    exchange = binance_at(f"http://127.0.0.1:{closed_port()}")
    feed = choose_feed(
        PaperSettings(market_data="live", network_timeout_s=7), store, SYMBOLS, exchange=exchange
    )
    assert isinstance(feed, CcxtLiveFeed) and exchange.timeout == 7000


@pytest.mark.timeout(30)
def test_auto_offline_uses_replay_and_never_simulates(store: SQLiteStore, replay_dir: Path) -> None:
    unreachable = binance_at(f"http://127.0.0.1:{closed_port()}")
    settings = PaperSettings(market_data="auto", replay_dir=replay_dir)
    feed = choose_feed(settings, store, SYMBOLS, exchange=unreachable, probe_timeout_s=2, warmup=5)
    assert isinstance(feed, ReplayFeed)

    # the replay folder lacks a watchlist symbol: no data, said so; no invented prices
    with pytest.raises(MarketDataUnavailable, match=r"lacks files for SOL/USDT 1h") as missing:
        choose_feed(
            settings, store, ["BTC/USDT", "SOL/USDT"], exchange=unreachable, probe_timeout_s=2
        )
    assert "market_data = 'simulated'" in str(missing.value)

    no_replay = PaperSettings(market_data="auto")
    with pytest.raises(MarketDataUnavailable, match="live binance unavailable"):
        choose_feed(no_replay, store, SYMBOLS, exchange=unreachable, probe_timeout_s=2)


@pytest.mark.timeout(30)
def test_auto_does_not_wait_for_an_exchange_that_never_answers(store: SQLiteStore) -> None:
    with silent_listener() as port:
        hanging = binance_at(f"http://127.0.0.1:{port}", timeout_ms=60_000)
        reason = probe(hanging, timeout_s=1)
        assert reason is not None
        with pytest.raises(MarketDataUnavailable, match="live binance unavailable"):
            choose_feed(
                PaperSettings(market_data="auto", network_timeout_s=60),
                store,
                SYMBOLS,
                exchange=hanging,
                probe_timeout_s=1,
            )


def test_auto_uses_live_data_when_the_exchange_answers(store: SQLiteStore) -> None:
    with serve(FakeBinance(0, count=1)) as url:
        exchange = binance_at(url)
        assert probe(exchange, timeout_s=5) is None
        feed = choose_feed(
            PaperSettings(market_data="auto", network_timeout_s=9),
            store,
            SYMBOLS,
            exchange=exchange,
            probe_timeout_s=5,
        )
        assert isinstance(feed, CcxtLiveFeed) and feed.label == "ccxt:binance"
        assert exchange.timeout == 9000  # the probe's short timeout is not left behind


def test_whole_settings_bring_watchlist_timeframe(store: SQLiteStore, replay_dir: Path) -> None:
    settings = KestrelSettings(
        watchlist=[WatchlistItem(symbol="BTC/USDT", timeframe="4h")],
        paper=PaperSettings(market_data="simulated"),
    )
    feed = choose_feed(settings, store, ["BTC/USDT"])
    assert isinstance(feed, SimulatedFeed) and feed.timeframe == "4h"


def test_replay_picks_each_symbols_file_by_its_own_timeframe(
    store: SQLiteStore, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name, step in [
        ("BTC_USDT-1m.csv", 60_000),
        ("BTC_USDT-1h.csv", 3_600_000),
        ("ETH_BTC-1m.csv", 60_000),
        ("ETH_BTC-5m.csv", 300_000),
    ]:
        write_csv(folder / name, ramp(30, step=step))
    settings = KestrelSettings(
        watchlist=[
            WatchlistItem(symbol="BTC/USDT", timeframe="1h"),
            WatchlistItem(symbol="ETH/BTC", timeframe="5m"),
        ],
        paper=PaperSettings(market_data="replay", replay_dir=folder),
    )
    feed = choose_feed(settings, store, ["BTC/USDT", "ETH/BTC"], warmup=5)
    assert isinstance(feed, ReplayFeed)
    assert {s: p.name for s, p in feed.files.items()} == {
        "BTC/USDT": "BTC_USDT-1h.csv",
        "ETH/BTC": "ETH_BTC-5m.csv",
    }
    auto = settings.model_copy(
        update={"paper": PaperSettings(market_data="auto", replay_dir=folder)}
    )
    unreachable = binance_at(f"http://127.0.0.1:{closed_port()}")
    feed = choose_feed(auto, store, ["BTC/USDT", "ETH/BTC"], exchange=unreachable, warmup=5)
    assert isinstance(feed, ReplayFeed) and feed.files["ETH/BTC"].name == "ETH_BTC-5m.csv"
    simulated = settings.model_copy(update={"paper": PaperSettings(market_data="simulated")})
    sim = choose_feed(simulated, store, ["BTC/USDT", "ETH/BTC"])
    assert isinstance(sim, SimulatedFeed) and sim.timeframe == "5m"
