"""Fixtures: emulator + REAL store + REAL wallet through real ccxt, in REAL mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import BinanceEmulator
from kestrel.books.wallet import build_exchange
from kestrel.mode import TradingMode, trading_mode
from kestrel.store.sqlite import SQLiteStore
from tests.lifecycle.scenario import World, account, credentials, market, real_settings

MakeWorld = Callable[..., World]


@pytest.fixture(autouse=True)
def real_mode() -> Iterator[None]:
    with trading_mode(TradingMode.REAL):
        yield


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[MakeWorld]:
    """`make_world(markets=[...], accounts=[...], fill_policy=..., access={...})`."""
    made: list[World] = []

    def factory(**kw: Any) -> World:
        overrides = kw.pop("settings", {})
        kw.setdefault("accounts", [account()])
        markets = kw.pop("markets", [market()])
        emu = BinanceEmulator(markets, **kw).start()
        data_dir = tmp_path / f"world{len(made)}"
        data_dir.mkdir()
        settings = real_settings(emu.url, data_dir, **overrides)
        store_path = data_dir / "real.sqlite3"
        store = SQLiteStore(store_path, TradingMode.REAL)
        exchange = build_exchange(settings, store, credentials=credentials())
        exchange.load_markets()
        emu.reset_request_counts()
        world = World(emu, store, exchange, settings, store_path)  # type: ignore[arg-type]
        made.append(world)
        return world

    yield factory
    for world in made:
        errors = world.emu.internal_errors
        world.emu.stop()
        world.store.close()
        assert errors == [], "emulator hit internal errors:\n" + "\n".join(errors)


@pytest.fixture
def world(make_world: MakeWorld) -> World:
    return make_world()
