"""Fixtures for the emulator tests: a small scripted feed whose fills can be computed by hand,
and emulators over it (or over the shared BTC/USDT 1h CSV) with a real ccxt client."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from emulator import BinanceEmulator, FillPolicy
from tests.emulator.scripted import MakeEmulator, account, scripted_market


@pytest.fixture
def make_emulator() -> Iterator[MakeEmulator]:
    """Factory: `make_emulator(fill_policy=..., accounts=[...])`, all stopped at teardown."""
    started: list[BinanceEmulator] = []

    def factory(**kw: Any) -> BinanceEmulator:
        kw.setdefault("accounts", [account(btc="2")])
        markets = kw.pop("markets", [scripted_market()])
        emu = BinanceEmulator(markets, **kw).start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        errors = emu.internal_errors
        emu.stop()
        assert errors == [], "emulator hit internal errors:\n" + "\n".join(errors)


@pytest.fixture
def emu(make_emulator: MakeEmulator) -> BinanceEmulator:
    return make_emulator()


@pytest.fixture
def ex(emu: BinanceEmulator) -> ccxt.binance:
    client = emu.ccxt_client(timeout_ms=2000)
    client.load_markets()
    return client


@pytest.fixture
def partial_emu(make_emulator: MakeEmulator) -> BinanceEmulator:
    return make_emulator(fill_policy=FillPolicy(max_fill_qty_per_candle=Decimal("0.4")))


@pytest.fixture
def btc_csv(shared_data_dir: Path) -> Path:
    return shared_data_dir / "ohlcv" / "BTC_USDT-1h.csv"
