"""The `latency` fault: the request waits, then is processed as usual (a slow exchange)."""

from __future__ import annotations

import time

import ccxt

from emulator import BinanceEmulator


def test_latency_delays_an_order_post_then_processes_it(
    emu: BinanceEmulator, ex: ccxt.binance
) -> None:
    emu.faults.latency(0.3, path="/api/v3/order", method="POST")
    started = time.monotonic()
    order = ex.create_order("BTC/USDT", "limit", "buy", 1, 97, {"clientOrderId": "slow-1"})
    assert time.monotonic() - started >= 0.3  # a lower bound: never flaky
    assert order["clientOrderId"] == "slow-1" and order["status"] == "open"
    assert emu.faults.fired == [("latency", "POST", "/api/v3/order")]
    assert emu.faults.pending() == []  # one request, one delay
    assert ex.fetch_order(order["id"], "BTC/USDT")["clientOrderId"] == "slow-1"
