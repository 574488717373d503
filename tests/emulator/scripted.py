"""The scripted feed and account the emulator tests share: small enough to compute fills by hand."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from emulator import AccountConfig, BinanceEmulator, MarketConfig
from emulator.signing import sign

HOUR = 3_600_000
T0 = 1_699_999_200_000  # 2023-11-14T22:00:00Z, on an hour boundary

# [open, high, low, close, volume] per hour. The clock starts after candle 0 (price 100).
SCRIPT = [
    (100, 101, 99, 100, 10),  # 0: current candle at start
    (100, 102, 98, 101, 10),  # 1
    (101, 103, 95, 96, 10),  # 2: dips to 95
    (96, 97, 90, 92, 4),  # 3: dips to 90, thin volume
    (92, 110, 91, 108, 10),  # 4: rallies to 110
    (108, 109, 107, 108, 10),  # 5
    (108, 109, 107, 108, 0),  # 6: no trades at all
    (108, 109, 106, 107, 10),  # 7
]
ROWS: list[list[float | int | str]] = [
    [T0 + i * HOUR, o, h, low, c, v] for i, (o, h, low, c, v) in enumerate(SCRIPT)
]

KEY, SECRET = "test-key", "test-secret"
MakeEmulator = Callable[..., BinanceEmulator]


def scripted_market() -> MarketConfig:
    return MarketConfig(
        symbol="BTC/USDT",
        candles=ROWS,
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_notional=Decimal("5"),
    )


def account(usdt: str = "1000", btc: str = "0", **kw: Any) -> AccountConfig:
    balances = {"USDT": Decimal(usdt), "BTC": Decimal(btc)}
    return AccountConfig(api_key=KEY, secret=SECRET, balances=balances, **kw)


def raw_request(
    emu: BinanceEmulator,
    method: str,
    path: str,
    params: dict[str, str] | None = None,
    *,
    api_key: str | None = KEY,
    secret: str | None = SECRET,
    body: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One HTTP request without ccxt; signed like Binance when `secret` is given."""
    query = urlencode(params or {})
    headers = {}
    if secret is not None:
        query = f"{query}&timestamp={int(time.time() * 1000)}".lstrip("&")
        query += "&signature=" + sign(query, secret)
    if api_key is not None:
        headers["X-MBX-APIKEY"] = api_key
    data = body.encode() if body is not None else None
    req = urllib.request.Request(
        f"{emu.url}{path}?{query}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as err:
        payload = err.read()
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = payload.decode()
        return err.code, parsed, dict(err.headers)
