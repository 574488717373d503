"""A local Binance spot REST emulator for tests and demos, driven by the real ccxt client.

It serves the part of Binance's /api/v3 that `ccxt.binance` uses (exchangeInfo, klines,
tickers, orders, trades, account), checks HMAC signatures, keeps balances, matches orders
against a replayed candle feed with a controllable clock, and injects faults (timeouts,
dropped connections, 5xx, 429, lost order responses, eventual consistency). A development
tool, not shipped in the wheel: it never imports prefect, kestrel or the test fakes, so it also
runs standalone to rehearse REAL mode. Start it with `with BinanceEmulator(...) as emu:` or
`python -m emulator`.
"""

from emulator.config import AccountConfig, FillPolicy, MarketConfig
from emulator.emulator import BinanceEmulator, ccxt_client_for
from emulator.faults import FaultPlan, FaultRule

__all__ = [
    "AccountConfig",
    "BinanceEmulator",
    "FaultPlan",
    "FaultRule",
    "FillPolicy",
    "MarketConfig",
    "ccxt_client_for",
]
