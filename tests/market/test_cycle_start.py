"""Offline and bad-data honesty at the start of a cycle, on the real runtime.

- "auto" with neither live nor replay data stands down (an event with a reason code), it
  does not paper-trade on a simulation nobody asked for;
- a symbol the data source does not list (FOO/BAR) is a clear error before any price is read;
- every decision names the data it was made on.

Live data comes from the Binance emulator through a real `ccxt.binance` (the paper feed reads
at exchange_api.url, as the REAL wallet does); "offline" is a closed local port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import BinanceEmulator
from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.errors import ConfigError, MarketDataUnavailable
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, ReasonCode
from kestrel.runtime import get_runtime, reset_runtimes
from kestrel.store import open_store
from kestrel.trading import cycle
from kestrel.trading.start import start_cycle
from tests.manual.conftest import KEY, SECRET, emulator
from tests.market.fake_binance import closed_port

__all__ = ["emulator"]  # the Binance emulator fixture, with BTC/USDT only


@pytest.fixture(autouse=True)
def fresh_runtimes() -> Iterator[None]:
    reset_runtimes()
    yield
    reset_runtimes()


def demo(data_dir: Path, url: str, *symbols: str, **paper: Any) -> KestrelSettings:
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        exchange_api={"url": url, "rate_limit": False, "timeout_s": 5},
        paper={"market_data": "auto", "network_timeout_s": 5, **paper},
        watchlist=[{"symbol": s, "timeframe": "1h", "strategy": "SCALP"} for s in symbols],
    )


def events(settings: KestrelSettings, kind: EventType) -> list[Any]:
    store = open_store(settings, settings.mode)
    try:
        return store.list_events(types=[kind])
    finally:
        store.close()


@pytest.mark.timeout(60)
def test_offline_auto_stands_down_instead_of_simulating(tmp_data_dir: Path) -> None:
    settings = demo(tmp_data_dir, f"http://127.0.0.1:{closed_port()}", "BTC/USDT")
    with trading_mode(TradingMode.DEMO), pytest.raises(MarketDataUnavailable, match="SIMULATED"):
        get_runtime(settings)  # no simulated feed in its place

    start = start_cycle(settings)
    assert start.stood_down is not None and "live binance unavailable" in start.stood_down
    [event] = events(settings, EventType.TRADE_BLOCKED)
    assert event.reasons == [ReasonCode.BLOCKED_NO_MARKET_DATA.value]
    assert "market_data = 'simulated'" in event.message
    assert events(settings, EventType.TRADE_DECIDED) == []


def test_an_unknown_symbol_is_a_clear_error_before_any_price(
    tmp_data_dir: Path, emulator: BinanceEmulator
) -> None:
    settings = demo(tmp_data_dir, emulator.url, "BTC/USDT", "FOO/BAR")
    with pytest.raises(ConfigError, match=r"FOO/BAR is not a market of binance \(live data\)"):
        start_cycle(settings)
    assert emulator.request_count("/api/v3/klines", "GET") == 0


def test_an_unknown_symbol_in_real_mode(
    tmp_data_dir: Path, emulator: BinanceEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    settings = demo(tmp_data_dir, emulator.url, "BTC/USDT", "BTC/USTD").model_copy(
        update={"mode": TradingMode.REAL}
    )
    with pytest.raises(ConfigError, match=r"BTC/USTD is not a market of binance.*BTC/USDT\?"):
        start_cycle(settings)


def decide(settings: KestrelSettings) -> dict[str, Any]:
    """One symbol through fetch -> analyze -> risk -> decide; the decision event's data."""
    with trading_mode(settings.mode):
        rt = get_runtime(settings)
        item = settings.watchlist[0]
        analysis = cycle.analyze_candles(cycle.fetch_candles(rt, item))
        cycle.make_decision(rt, item, analysis, cycle.assess_risk(rt, item, analysis))
    [event] = [
        e
        for kind in (EventType.TRADE_DECIDED, EventType.TRADE_HELD, EventType.TRADE_BLOCKED)
        for e in events(settings, kind)
    ]
    data: dict[str, Any] = event.data
    return data


def test_decisions_name_live_data(tmp_data_dir: Path, emulator: BinanceEmulator) -> None:
    settings = demo(tmp_data_dir, emulator.url, "BTC/USDT")
    assert start_cycle(settings).data_source == "live (ccxt:binance)"
    data = decide(settings)
    assert (data["data_kind"], data["data_source"]) == ("live", "live (ccxt:binance)")


def test_decisions_name_simulated_data(tmp_data_dir: Path) -> None:
    """Simulated only by name, and then named SIMULATED wherever a decision shows."""
    settings = demo(tmp_data_dir, "http://127.0.0.1:1", "BTC/USDT", market_data="simulated")
    assert start_cycle(settings).data_source == "SIMULATED (seed 7)"
    data = decide(settings)
    assert (data["data_kind"], data["data_source"]) == ("simulated", "SIMULATED (seed 7)")


def test_live_data_going_down_later_stands_the_cycle_down(
    tmp_data_dir: Path, emulator: BinanceEmulator
) -> None:
    """The runtime was built while the feed was up (and is cached); the next cycle finds it
    down and stands down with the reason, instead of trading on anything else."""
    from emulator.faults import FaultRule

    settings = demo(tmp_data_dir, emulator.url, "BTC/USDT", market_data="live")
    assert start_cycle(settings).stood_down is None
    emulator.faults.add(FaultRule(kind="http_error", path="/api/v3/time", status=503))
    start = start_cycle(settings)
    assert start.stood_down is not None
    assert "live data from binance is down (ExchangeNotAvailable" in start.stood_down
    [event] = events(settings, EventType.TRADE_BLOCKED)
    assert event.reasons == [ReasonCode.BLOCKED_NO_MARKET_DATA.value]
    assert start_cycle(settings).data_source == "live (ccxt:binance)"  # back up: trades again
