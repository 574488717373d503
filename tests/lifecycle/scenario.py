"""The lifecycle tests' world: a small scripted Binance market served by the emulator, a REAL
SQLite store, and Kestrel's REAL wallet (a real `ccxt.binance` inside CcxtExchange) pointed at
the emulator through settings, exactly as a deployment would be (KESTREL_EXCHANGE_API__URL).

Prices are easy to follow by hand: 100 at the start; candle 2 dips to 95, candle 3 to 90,
candle 4 rallies to 110 (close 108), candle 6 drops to 100 (close 101); fees 0.1%, taken by
Binance in the asset received.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from emulator import AccountConfig, BinanceEmulator, MarketConfig
from emulator.orders import Order as EmuOrder
from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.exchange.ccxt_exchange import CcxtExchange, ExchangeCredentials
from kestrel.mode import TradingMode
from kestrel.store.sqlite import SQLiteStore

HOUR = 3_600_000
T0 = 1_699_999_200_000  # 2023-11-14T22:00:00Z
KEY = "lifecycle-api-key-1234567890"
SECRET = "lifecycle-secret-never-in-logs-0987654321"
SYMBOL = "BTC/USDT"

SCRIPT = [
    (100, 101, 99, 100, 10),  # 0: the current candle at start (price 100)
    (100, 102, 98, 101, 10),  # 1
    (101, 103, 95, 96, 10),  # 2: dips to 95
    (96, 97, 90, 92, 4),  # 3: dips to 90
    (92, 110, 91, 108, 10),  # 4: rallies to 110
    (108, 109, 107, 108, 10),  # 5
    (108, 108, 100, 101, 10),  # 6: drops to 100
] + [(101, 102, 100, 101, 10)] * 30


def rows(scale: Decimal = Decimal(1)) -> list[list[float | int | str]]:
    return [
        [T0 + i * HOUR, *(str(Decimal(x) * scale) for x in (o, h, low, c)), v]
        for i, (o, h, low, c, v) in enumerate(SCRIPT)
    ]


def market(symbol: str = SYMBOL, scale: Decimal = Decimal(1), **kw: Any) -> MarketConfig:
    kw.setdefault("tick_size", Decimal("0.01") * scale)
    kw.setdefault("step_size", Decimal("0.001"))
    kw.setdefault("min_notional", Decimal("5"))
    return MarketConfig(symbol=symbol, candles=rows(scale), **kw)


def account(usdt: str = "10000", **assets: str) -> AccountConfig:
    balances = {"USDT": Decimal(usdt), **{a.upper(): Decimal(v) for a, v in assets.items()}}
    return AccountConfig(api_key=KEY, secret=SECRET, balances=balances)


def credentials() -> ExchangeCredentials:
    return ExchangeCredentials.model_validate({"api_key": KEY, "secret": SECRET})


def real_settings(url: str, data_dir: Path, **overrides: Any) -> KestrelSettings:
    access = {"url": url, "timeout_s": 1.0, "rate_limit": False, **overrides.pop("access", {})}
    fields: dict[str, Any] = {
        "mode": TradingMode.REAL,
        "data_dir": data_dir,
        "exchange": "binance",
        "exchange_api": access,
        "watchlist": [{"symbol": SYMBOL, "timeframe": "1h"}],
    }
    return load_settings(**{**fields, **overrides})


@dataclass
class World:
    emu: BinanceEmulator
    store: SQLiteStore
    exchange: CcxtExchange
    settings: KestrelSettings
    store_path: Path

    def orders_on_exchange(self, client_order_id: str | None = None) -> list[EmuOrder]:
        with self.emu.engine.lock:
            found = sorted(self.emu.engine.orders.values(), key=lambda o: o.order_id)
        return [o for o in found if client_order_id in (None, o.client_order_id)]

    def trades_on_exchange(self, order_id: int) -> int:
        with self.emu.engine.lock:
            return sum(1 for t in self.emu.engine.trades if t.order_id == order_id)

    def posts(self) -> int:
        return self.emu.request_count("/api/v3/order", "POST")
