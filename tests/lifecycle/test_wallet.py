"""The wallet factory and exchange access: DEMO -> paper, REAL -> whitelisted ccxt only, modes
never mixed, credentials from the environment or a registered block, secrets never shown."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import ccxt
import pytest

from kestrel.books.wallet import (
    build_exchange,
    forget_credentials,
    register_credentials,
    wallet_mode,
)
from kestrel.config.settings import load_settings
from kestrel.errors import ConfigError, SecurityError
from kestrel.exchange.ccxt_exchange import CcxtExchange, ExchangeCredentials
from kestrel.exchange.paper import PaperExchange
from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import sync_orders
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, OrderType, Side
from kestrel.store.sqlite import SQLiteStore
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import KEY, SECRET, World, credentials, real_settings


@pytest.fixture(autouse=True)
def no_registered_credentials() -> Iterator[None]:
    forget_credentials()
    yield
    forget_credentials()


def security_events(store: SQLiteStore) -> list[str]:
    return [e.message for e in store.list_events(types=[EventType.SECURITY])]


def test_demo_always_gets_the_paper_exchange(tmp_data_dir: Path) -> None:
    settings = load_settings(
        mode="DEMO", data_dir=tmp_data_dir, exchange="kraken", paper={"market_data": "simulated"}
    )
    store = SQLiteStore(tmp_data_dir / "demo.sqlite3", TradingMode.DEMO)
    with trading_mode(TradingMode.DEMO):
        exchange = build_exchange(settings, store)
    assert isinstance(exchange, PaperExchange)
    assert wallet_mode(exchange) is TradingMode.DEMO


def test_real_gets_a_whitelisted_ccxt_exchange_pointed_by_settings(world: World) -> None:
    assert isinstance(world.exchange, CcxtExchange)
    assert (world.exchange.id, wallet_mode(world.exchange)) == ("binance", TradingMode.REAL)
    assert world.exchange.client.urls["api"]["private"].startswith(world.emu.url)
    assert world.exchange.fetch_balance()["USDT"]["free"] == 10000.0


def test_an_exchange_off_the_whitelist_is_refused_with_an_event(
    world: World, tmp_path: Path
) -> None:
    settings = real_settings(world.emu.url, tmp_path, exchange="kraken")
    with pytest.raises(SecurityError, match="not on the REAL whitelist"):
        build_exchange(settings, world.store, credentials=credentials())
    assert security_events(world.store) == [
        "exchange 'kraken' is not on the REAL whitelist ['binance']; refusing to trade"
    ]
    assert world.emu.request_count() == 0


def test_settings_of_another_mode_are_refused(world: World, tmp_path: Path) -> None:
    settings = real_settings(world.emu.url, tmp_path)
    with trading_mode(TradingMode.DEMO), pytest.raises(SecurityError, match="requested while"):
        build_exchange(settings, world.store, credentials=credentials())
    assert len(security_events(world.store)) == 1


def test_real_needs_credentials(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KESTREL_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("KESTREL_BINANCE_API_SECRET", raising=False)
    settings = real_settings(world.emu.url, tmp_path)
    with pytest.raises(ConfigError, match="KESTREL_BINANCE_API_KEY and KESTREL_BINANCE_API_SECRET"):
        build_exchange(settings, world.store)
    monkeypatch.setenv("KESTREL_BINANCE_API_KEY", KEY)
    monkeypatch.setenv("KESTREL_BINANCE_API_SECRET", SECRET)
    assert build_exchange(settings, world.store).fetch_balance()["USDT"]["total"] == 10000.0


def test_block_credentials_are_used_only_once_registered(world: World, tmp_path: Path) -> None:
    settings = real_settings(world.emu.url, tmp_path, access={"credentials": "block"})
    with pytest.raises(ConfigError, match="no ExchangeAccount block"):
        build_exchange(settings, world.store)
    register_credentials("binance", credentials())
    assert build_exchange(settings, world.store).fetch_balance()["USDT"]["total"] == 10000.0


def test_wrong_credentials_are_an_authentication_error(world: World, tmp_path: Path) -> None:
    wrong = ExchangeCredentials.model_validate({"api_key": KEY, "secret": "not-the-secret"})
    settings = real_settings(world.emu.url, tmp_path)
    exchange = build_exchange(settings, world.store, credentials=wrong)
    with pytest.raises(ccxt.AuthenticationError) as raised:
        exchange.fetch_balance()
    assert "not-the-secret" not in str(raised.value)


def test_secrets_never_reach_logs_events_records_or_errors(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    # The exchange (or a proxy) echoes the key and the secret back in an error page.
    world.emu.faults.http_error(
        status=502, path="/api/v3/order", method="POST", body=f"bad gateway {KEY} {SECRET}"
    )
    with pytest.raises(ccxt.ExchangeNotAvailable) as raised:
        place(world.store, world.exchange, intent("secret-1", "1", stop_loss="101"))
    texts += [str(raised.value), repr(raised.value)]
    assert "***" in str(raised.value)
    place(world.store, world.exchange, intent("secret-1", "1", stop_loss="101"))
    protect_positions(world.store, world.exchange, ProtectionPolicy())  # refused: SLTP_FAILED
    place(world.store, world.exchange, intent("secret-2", "500"))  # insufficient funds
    place(world.store, world.exchange, intent("secret-3", "1", type=OrderType.LIMIT, price="90"))
    world.emu.advance(3)
    sync_orders(world.store, world.exchange)
    place(world.store, world.exchange, intent("secret-4", "0.5", side=Side.SELL, reference="92"))
    texts += [repr(world.exchange), repr(credentials()), str(credentials().model_dump())]
    texts += [e.model_dump_json() for e in world.store.list_events()]
    texts += [o.model_dump_json() for o in world.store.list_orders()]
    texts += [f.model_dump_json() for f in world.store.list_fills()]
    texts += [r.getMessage() for r in caplog.records]
    assert {e.type for e in world.store.list_events()} >= {
        EventType.SLTP_FAILED,
        EventType.CRITICAL,
        EventType.ORDER_REJECTED,
        EventType.ORDER_EXECUTED,
    }
    for text in texts:
        assert KEY not in text and SECRET not in text, text
