"""Authentication and rejections: Binance's error bodies, and the ccxt class each becomes."""

from __future__ import annotations

import ccxt
import pytest

from emulator import BinanceEmulator
from tests.emulator.scripted import KEY, MakeEmulator, raw_request

SYMBOL = "BTC/USDT"


def test_wrong_secret_is_an_authentication_error(emu: BinanceEmulator) -> None:
    client = emu.ccxt_client(KEY, "not-the-secret", timeout_ms=2000)
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        client.fetch_balance()


def test_unknown_api_key_is_an_authentication_error(emu: BinanceEmulator) -> None:
    client = emu.ccxt_client("who-dis", "whatever", timeout_ms=2000)
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        client.fetch_balance()


def test_missing_key_header_and_signature(emu: BinanceEmulator) -> None:
    status, body, _ = raw_request(emu, "GET", "/api/v3/account", api_key=None)
    assert (status, body["code"]) == (401, -2014)
    status, body, _ = raw_request(emu, "GET", "/api/v3/account", {"timestamp": "1"}, secret=None)
    assert (status, body["code"]) == (400, -1021)
    status, body, _ = raw_request(emu, "GET", "/api/v3/account", secret=None)
    assert (status, body["code"]) == (400, -1102)


def test_clock_skew_is_invalid_nonce(emu: BinanceEmulator) -> None:
    client = emu.ccxt_client(timeout_ms=2000)
    client.load_markets()
    emu.clock_skew_ms = -5_000  # server behind: the client's timestamp is 5 s in the future
    with pytest.raises(ccxt.InvalidNonce, match="ahead of the server"):
        client.fetch_balance()
    emu.clock_skew_ms = 30_000  # server ahead by more than ccxt's 10 s recvWindow
    with pytest.raises(ccxt.InvalidNonce, match="recvWindow"):
        client.fetch_balance()
    emu.clock_skew_ms = 0
    assert client.fetch_balance()["USDT"]["free"] == 1000.0


def test_timestamp_check_can_be_disabled(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(check_timestamps=False)
    emu.clock_skew_ms = 3_600_000
    assert emu.ccxt_client(timeout_ms=2000).fetch_balance()["BTC"]["total"] == 2.0


def test_insufficient_balance_is_insufficient_funds(ex: ccxt.binance) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYMBOL, "limit", "buy", 20, 97)  # 1940 USDT > 1000
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYMBOL, "market", "sell", 3)  # holds 2 BTC
    ex.create_order(SYMBOL, "limit", "buy", 10, 97)  # locks 970
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYMBOL, "market", "buy", 1)  # 100 > 30 free


def test_duplicate_client_order_id_is_rejected_while_not_filled(ex: ccxt.binance) -> None:
    ex.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent") as info:
        ex.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "dup"})
    assert not isinstance(info.value, ccxt.InsufficientFunds)
    ex.cancel_order("", SYMBOL, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "dup"})
    # Binance: "accepted only when the previous one is filled".
    first = ex.create_order(SYMBOL, "market", "buy", 0.1, None, {"clientOrderId": "again"})
    second = ex.create_order(SYMBOL, "market", "buy", 0.1, None, {"clientOrderId": "again"})
    assert first["id"] != second["id"]
    latest = ex.fetch_order("", SYMBOL, {"clientOrderId": "again"})
    assert latest["id"] == second["id"]


def test_duplicate_rule_always_rejects_any_reuse(make_emulator: MakeEmulator) -> None:
    ex = make_emulator(duplicate_rule="always").ccxt_client(timeout_ms=2000)
    ex.create_order(SYMBOL, "market", "buy", 0.1, None, {"clientOrderId": "once"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        ex.create_order(SYMBOL, "market", "buy", 0.1, None, {"clientOrderId": "once"})


def test_unemulated_endpoints_and_parameters_fail_loudly(ex: ccxt.binance) -> None:
    with pytest.raises(ccxt.BadRequest, match="emulator: GET /api/v3/depth"):
        ex.fetch_order_book(SYMBOL)
    with pytest.raises(ccxt.BadRequest, match="emulator: parameter trailingDelta"):
        params = {"trailingPercent": 1, "stopLossOrTakeProfit": "stopLoss"}
        ex.create_order(SYMBOL, "market", "sell", 1, None, params)
    with pytest.raises(ccxt.BadRequest, match="emulator: GET /fapi/v1/klines"):
        ex.fapipublic_get_klines({"symbol": "BTCUSDT", "interval": "1h"})
