"""The manual flows run as real Prefect flows (the session's temporary API server): what a
deployment run with parameters does."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulator import BinanceEmulator
from kestrel.config.settings import load_settings
from kestrel.errors import ManualError
from kestrel.manual import OutcomeStatus
from kestrel.mode import TradingMode, trading_mode
from kestrel.operator.live import resolve_settings
from kestrel.runtime import reset_runtimes
from kestrel.store import open_store
from tests.manual.conftest import KEY, SECRET

pytestmark = pytest.mark.prefect


@pytest.fixture(autouse=True)
def fresh_runtimes() -> Iterator[None]:
    reset_runtimes()
    yield
    reset_runtimes()


def demo_config(data_dir: Path) -> dict[str, Any]:
    return {
        "mode": "DEMO",
        "data_dir": str(data_dir),
        "paper": {"market_data": "simulated", "seed": 5},
        "watchlist": [
            {"symbol": "BTC/USDT", "timeframe": "1h", "strategy": "SCALP/CONSERVATIVE"},
            {"symbol": "ETH/USDT", "timeframe": "1h", "strategy": "SCALP/CONSERVATIVE"},
        ],
    }


def test_demo_flows(prefect_harness: None, tmp_data_dir: Path) -> None:
    from flows.manual import manual_close, manual_order, paper_reset, settings_change

    config = demo_config(tmp_data_dir)
    placed = manual_order(
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("150"),
        amount_in="quote",
        request_id="flow-1",
        actor="pytest",
        config=config,
    )
    assert placed.status is OutcomeStatus.PLACED and placed.request_id == "flow-1"
    again = manual_order(
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("150"),
        amount_in="quote",
        request_id="flow-1",
        config=config,
    )
    assert again.status is OutcomeStatus.ALREADY_DONE

    [change] = settings_change(
        action="set", key="trade_amount_usd", value="75", symbol="ETH/USDT", config=config
    )
    assert change.changed and change.by.startswith("prefect:")
    settings = resolve_settings(load_settings(**config))
    assert settings.watch("ETH/USDT").trade_amount_usd == Decimal("75")

    # the market order fills at the next candle: nothing to close yet, and the run says so
    with pytest.raises(ManualError, match="no open BTC/USDT position"):
        manual_close(symbol="BTC/USDT", config=config)
    reset = paper_reset(balance=Decimal("2000"), reason="flow test", config=config)
    assert reset.balances["USDT"] == Decimal("2000")
    assert reset.orders_canceled == [placed.orders[0].client_order_id]


def test_real_flows_preview_then_confirm(
    prefect_harness: None,
    tmp_data_dir: Path,
    emulator: BinanceEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.manual import manual_confirm, manual_order

    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    monkeypatch.setenv("KESTREL_MODE", "REAL")  # the installation's mode, never a parameter
    monkeypatch.setenv("KESTREL_EXCHANGE_API__URL", emulator.url)  # ...and REAL endpoint
    config = {
        "data_dir": str(tmp_data_dir),
        "exchange_api": {"rate_limit": False},
        "watchlist": [{"symbol": "BTC/USDT", "timeframe": "1h", "strategy": "SCALP"}],
    }
    preview = manual_order(symbol="BTC/USDT", side="buy", amount=Decimal("0.01"), config=config)
    assert preview.status is OutcomeStatus.NEEDS_CONFIRMATION and preview.token
    assert emulator.request_count("/api/v3/order", "POST") == 0
    done = manual_confirm(token=preview.token, config=config)
    assert done.status is OutcomeStatus.PLACED
    assert emulator.request_count("/api/v3/order", "POST") == 1


def test_real_move_stop_flow_previews_then_the_confirm_flow_moves(
    prefect_harness: None,
    tmp_data_dir: Path,
    emulator: BinanceEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.manual import manual_confirm, manual_move_stop, manual_order

    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    monkeypatch.setenv("KESTREL_MODE", "REAL")  # the installation's mode, never a parameter
    monkeypatch.setenv("KESTREL_EXCHANGE_API__URL", emulator.url)  # ...and REAL endpoint
    config = {
        "data_dir": str(tmp_data_dir),
        "exchange_api": {"rate_limit": False},
        "watchlist": [{"symbol": "BTC/USDT", "timeframe": "1h", "strategy": "SCALP"}],
    }
    bought = manual_order(symbol="BTC/USDT", side="buy", amount=Decimal("0.01"), config=config)
    assert bought.token
    manual_confirm(token=bought.token, config=config)
    preview = manual_move_stop(
        symbol="BTC/USDT",
        stop_loss=Decimal("19000"),
        trailing_distance_pct=Decimal("2"),
        config=config,
    )
    assert preview.status is OutcomeStatus.NEEDS_CONFIRMATION and preview.token
    done = manual_confirm(token=preview.token, config=config)
    assert done.status is OutcomeStatus.APPLIED
    settings = load_settings(**config)
    with trading_mode(TradingMode.REAL):
        store = open_store(settings, TradingMode.REAL)
        position = store.open_position("BTC/USDT")
        store.close()
    assert position is not None
    assert (position.stop_loss, position.trailing_stop_pct) == (Decimal("19000"), Decimal("0.02"))


def test_a_run_config_cannot_switch_to_real(
    prefect_harness: None, tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A custom run from the Prefect UI asking for REAL in a DEMO installation: refused
    before anything runs, with a SECURITY event in the installation's (DEMO) store."""
    from flows.manual import manual_order, settings_change
    from kestrel.errors import SecurityError
    from kestrel.mode import TradingMode
    from kestrel.models import EventType
    from kestrel.store import open_store

    monkeypatch.delenv("KESTREL_MODE", raising=False)
    monkeypatch.setenv("KESTREL_DATA_DIR", str(tmp_data_dir))
    config = {**demo_config(tmp_data_dir), "mode": "REAL"}
    with pytest.raises(SecurityError, match="mode 'DEMO' -> 'REAL'"):
        manual_order(symbol="BTC/USDT", side="buy", amount=Decimal("0.01"), config=config)
    widened = {**demo_config(tmp_data_dir), "real_exchange_whitelist": ["binance", "kraken"]}
    with pytest.raises(SecurityError, match="real_exchange_whitelist"):
        settings_change(action="set", key="risk.min_confidence", value="0.1", config=widened)
    store = open_store(load_settings(), TradingMode.DEMO)
    try:
        events = store.list_events(types=[EventType.SECURITY])
        assert [e.data["run"] for e in events] == ["manual-order", "settings-change"]
        assert not store.list_events(types=[EventType.SETTINGS_CHANGED])
    finally:
        store.close()


def test_real_settings_flow_needs_the_token(
    prefect_harness: None, tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings-change flow keeps the REAL guardrail: a riskier change is only a token
    until a second run confirms it."""
    from flows.manual import settings_change
    from kestrel.mode import TradingMode

    monkeypatch.setenv("KESTREL_MODE", "REAL")
    config = {"data_dir": str(tmp_data_dir), "watchlist": [{"symbol": "BTC/USDT"}]}
    key = "trading.gates.cool_off_s"
    [preview] = settings_change(action="set", key=key, value="0", config=config)
    assert preview.needs_confirmation and preview.token and not preview.changed
    [done] = settings_change(action="set", key=key, value="0", confirm=preview.token, config=config)
    assert done.changed and done.new == 0.0
    settings = resolve_settings(load_settings(**config))
    assert settings.mode is TradingMode.REAL and settings.trading.gates.cool_off_s == 0
