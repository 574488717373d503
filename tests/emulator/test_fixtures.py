"""The emulator against ccxt's recorded Binance traffic (../shared/data/ccxt-static):

- response shapes: our raw JSON has the keys real Binance sent, and ccxt parses as much from
  ours as from the real reply;
- requests: every spot /api/v3 request ccxt is recorded sending to an endpoint we emulate is
  accepted (at worst rejected for a business reason such as an unknown order id).
Skipped when ../shared is absent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest

from emulator import AccountConfig, BinanceEmulator, MarketConfig
from tests.emulator.scripted import HOUR, T0, raw_request

SYMBOL = "BTC/USDT"
# Present only when the request sent a matching parameter (Binance's "conditional fields").
CONDITIONAL = {"icebergQty", "stopPrice", "trailingDelta", "trailingTime"}


@pytest.fixture
def recorded(shared_data_dir: Path) -> dict[str, Any]:
    path = shared_data_dir / "ccxt-static" / "response" / "binance.json"
    return json.loads(path.read_text())["methods"]


def case(recorded: dict[str, Any], method: str, first_arg: Any) -> dict[str, Any]:
    """The spot case of `method` whose first input is `first_arg` (no market-type params)."""
    other_markets = {"portfolioMargin", "type", "subType", "price"}
    for c in recorded[method]:
        params = [a for a in c["input"][1:] if isinstance(a, dict)]
        spot = not any(other_markets & set(p) for p in params)
        if c["input"] and c["input"][0] == first_arg and spot:
            return c
    raise AssertionError(f"no spot case of {method} starting with {first_arg!r}")


def known(parsed: dict[str, Any]) -> set[str]:
    return {k for k, v in parsed.items() if v is not None and k != "info"}


def test_order_and_trade_shapes_match_binance(
    recorded: dict[str, Any], ex: ccxt.binance, emu: BinanceEmulator
) -> None:
    filled = ex.create_order(SYMBOL, "market", "sell", 0.1)
    resting = ex.create_order(SYMBOL, "limit", "buy", 0.2, 50, {"postOnly": True})
    canceled = ex.create_order(SYMBOL, "limit", "buy", 0.1, 50)
    ex.cancel_order(canceled["id"], SYMBOL)

    real = case(recorded, "createOrder", "SOL/USDT")
    assert set(resting["info"]) == set(real["httpResponse"]) - CONDITIONAL
    assert set(filled["info"]) == set(real["httpResponse"]) - CONDITIONAL

    real = case(recorded, "fetchOrder", 3397148653)  # a FILLED spot MARKET sell
    ours = ex.fetch_order(filled["id"], SYMBOL)
    assert set(ours["info"]) == set(real["httpResponse"])
    assert known(real["parsedResponse"]) <= known(ours)

    real = case(recorded, "fetchOpenOrders", "LTC/USDT")  # a resting LIMIT_MAKER buy
    [ours] = ex.fetch_open_orders(SYMBOL)
    assert set(ours["info"]) == set(real["httpResponse"][0])
    assert known(real["parsedResponse"][0]) <= known(ours)

    real = case(recorded, "fetchOrders", "LTC/USDT")  # a CANCELED LIMIT buy
    ours = next(o for o in ex.fetch_orders(SYMBOL) if o["id"] == canceled["id"])
    assert set(ours["info"]) == set(real["httpResponse"][0])
    assert known(real["parsedResponse"][0]) <= known(ours)

    real = case(recorded, "fetchMyTrades", "LTC/USDT")  # a taker sell
    [ours] = ex.fetch_my_trades(SYMBOL)
    assert set(ours["info"]) == set(real["httpResponse"][0])
    assert known(real["parsedResponse"][0]) <= known(ours)


def test_account_ticker_and_kline_shapes_match_binance(
    recorded: dict[str, Any], ex: ccxt.binance, emu: BinanceEmulator
) -> None:
    real = recorded["fetchBalance"][0]
    assert real["input"] == []
    ours = ex.fetch_balance()
    assert set(ours["info"]) == set(real["httpResponse"])
    assert set(ours["info"]["balances"][0]) == set(real["httpResponse"]["balances"][0])
    assert ours["timestamp"] is not None or real["parsedResponse"]["timestamp"] is not None

    emu.advance(4)
    real = case(recorded, "fetchTicker", "BTC/USDT")
    ours = ex.fetch_ticker(SYMBOL)
    assert set(ours["info"]) == set(real["httpResponse"])
    assert known(real["parsedResponse"]) <= known(ours)

    real = case(recorded, "fetchOHLCV", "BTC/USDT")
    raw_real = real["httpResponse"][0]
    raw_ours = ex.public_get_klines({"symbol": "BTCUSDT", "interval": "1h", "limit": 1})[0]
    assert len(raw_ours) == len(raw_real) == 12
    assert isinstance(raw_ours[0], int) and isinstance(raw_ours[6], int)
    assert all(isinstance(raw_ours[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10))
    assert raw_ours[6] == raw_ours[0] + HOUR - 1  # closeTime, as in the recording
    assert raw_real[6] - raw_real[0] == HOUR - 1


# -- the request recording ----------------------------------------------------------------------


def _replay_markets() -> list[MarketConfig]:
    """The symbols the recording trades, at price levels like the recorded orders (1m feeds)."""
    levels = {"BTC/USDT": 60000, "ETH/USDT": 3000, "LTC/USDT": 70, "SOL/USDT": 240}
    levels["XRP/USDT"] = 1
    minute = 60_000
    return [
        MarketConfig(
            symbol=symbol,
            candles=[[T0 + i * minute, p, p, p, p, 100] for i in range(3)],
            tick_size=Decimal("0.01") if p > 10 else Decimal("0.0001"),
        )
        for symbol, p in levels.items()
    ]


def _recorded_spot_requests(shared_data_dir: Path, routes: set[str]) -> list[tuple[str, Any]]:
    path = shared_data_dir / "ccxt-static" / "request" / "binance.json"
    out = []
    for method, cases in json.loads(path.read_text())["methods"].items():
        for c in cases:
            url = c.get("url") or ""
            if not url.startswith(("https://api.binance.com", "https://testnet.binance.vision")):
                continue
            if urlsplit(url).path in routes:
                out.append((method, c))
    return out


def test_every_recorded_spot_request_is_understood(shared_data_dir: Path) -> None:
    balances = {a: Decimal("1000000") for a in ("USDT", "BTC", "ETH", "LTC", "SOL", "XRP")}
    account = AccountConfig(api_key="replay", secret="replay-secret", balances=balances)
    with BinanceEmulator(_replay_markets(), [account], start_index=1) as emu:
        routes = {path for _, path in (*emu.api.public, *emu.api.signed)}
        replayed = 0
        for method, c in _recorded_spot_requests(shared_data_dir, routes):
            split = urlsplit(c["url"])
            raw = c["output"] if isinstance(c.get("output"), str) else split.query
            params = {
                k: v
                for k, v in parse_qsl(raw, keep_blank_values=True)
                if k not in {"timestamp", "recvWindow", "signature"}
            }
            if "trailingDelta" in params or "icebergQty" in params:
                continue  # documented as not emulated
            verb = "POST" if c.get("output") else "DELETE" if "cancel" in method else "GET"
            signed = (verb, split.path) in emu.api.signed
            status, body, _ = raw_request(
                emu,
                verb,
                split.path,
                params,
                api_key="replay",
                secret="replay-secret" if signed else None,
            )
            business = isinstance(body, dict) and body.get("code") in {-2011, -2013}
            assert status == 200 or business, (method, c["input"], status, body)
            replayed += 1
        assert replayed >= 25
        assert emu.internal_errors == []
