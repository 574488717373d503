"""Fault injection seen through the real ccxt client: each fault raises the ccxt exception a
production outage would, and "lost" orders really exist on the exchange afterwards."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import ccxt
import pytest

from emulator import BinanceEmulator, FaultRule
from tests.emulator.scripted import raw_request

SYMBOL = "BTC/USDT"


@pytest.fixture
def fast(emu: BinanceEmulator) -> ccxt.binance:
    """A client with a short timeout, markets loaded before any fault is armed."""
    client = emu.ccxt_client(timeout_ms=300)
    client.load_markets()
    return client


def admin(emu: BinanceEmulator, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{emu.url}/_emulator/{route}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_timeout_raises_request_timeout_then_recovers(
    emu: BinanceEmulator, fast: ccxt.binance
) -> None:
    emu.faults.timeout(path="/api/v3/ticker/24hr", hang_s=3)
    with pytest.raises(ccxt.RequestTimeout):
        fast.fetch_ticker(SYMBOL)
    assert fast.fetch_ticker(SYMBOL)["last"] == 100.0
    assert emu.request_count("/api/v3/ticker/24hr") == 2


def test_http_5xx_is_exchange_not_available(emu: BinanceEmulator, fast: ccxt.binance) -> None:
    emu.faults.http_error(status=503, path="/api/v3/klines")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        fast.fetch_ohlcv(SYMBOL, "1h")
    emu.faults.http_error(status=504, path="/api/v3/klines")
    with pytest.raises(ccxt.RequestTimeout):
        fast.fetch_ohlcv(SYMBOL, "1h")
    assert len(fast.fetch_ohlcv(SYMBOL, "1h")) == 1


def test_429_is_ddos_protection_with_retry_after(emu: BinanceEmulator, fast: ccxt.binance) -> None:
    emu.faults.rate_limit(retry_after_s=7)
    with pytest.raises(ccxt.DDoSProtection) as info:
        fast.fetch_balance()
    assert isinstance(info.value, ccxt.NetworkError)
    assert fast.last_response_headers["Retry-After"] == "7"
    assert '"code":-1003' in fast.last_http_response
    status, body, headers = _raw_after(emu, "rate_limit", status=418)
    assert (status, body["code"], headers["Retry-After"]) == (418, -1003, "1")


def _raw_after(emu: BinanceEmulator, kind: str, **rule: Any) -> tuple[int, Any, dict[str, str]]:
    emu.faults.add(FaultRule(kind=kind, **rule))
    return raw_request(emu, "GET", "/api/v3/ping", secret=None)


def test_dropped_connection_is_a_network_error(emu: BinanceEmulator, fast: ccxt.binance) -> None:
    emu.faults.drop(method="GET")
    with pytest.raises(ccxt.NetworkError):
        fast.fetch_balance()
    assert fast.fetch_balance()["USDT"]["free"] == 1000.0


def test_faults_target_path_method_and_count(emu: BinanceEmulator, fast: ccxt.binance) -> None:
    emu.faults.http_error(count=2, path="/api/v3/order", method="POST", status=500)
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            fast.create_order(SYMBOL, "limit", "buy", 1, 50)
        assert fast.fetch_open_orders(SYMBOL) == []  # not executed, and GETs are unaffected
    assert fast.create_order(SYMBOL, "limit", "buy", 1, 50)["status"] == "open"
    emu.faults.http_error(count=5, path="/api/v3/ticker/*")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        fast.fetch_ticker(SYMBOL)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        fast.public_get_ticker_price({"symbol": "BTCUSDT"})
    assert len(fast.fetch_ohlcv(SYMBOL, "1h")) == 1
    assert [r.count for r in emu.faults.pending()] == [3]
    emu.faults.clear()
    assert fast.fetch_ticker(SYMBOL)["last"] == 100.0


@pytest.mark.parametrize(
    ("how", "raised"),
    [
        ("drop", ccxt.NetworkError),
        ("http_error", ccxt.ExchangeNotAvailable),
        ("timeout", ccxt.RequestTimeout),
    ],
)
def test_lost_order_response_leaves_a_real_order(
    emu: BinanceEmulator, fast: ccxt.binance, how: str, raised: type[Exception]
) -> None:
    emu.faults.lose_response(how=how, hang_s=3)  # type: ignore[arg-type]
    with pytest.raises(raised):
        fast.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "lost-1"})
    found = fast.fetch_order("", SYMBOL, {"clientOrderId": "lost-1"})
    assert (found["status"], found["amount"], found["price"]) == ("open", 1.0, 97.0)
    assert fast.fetch_balance()["USDT"]["used"] == 97.0
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        fast.create_order(SYMBOL, "limit", "buy", 1, 97, {"clientOrderId": "lost-1"})
    assert emu.request_count("/api/v3/order", "POST") == 2


def test_lost_market_order_is_filled_and_paid_for(emu: BinanceEmulator, fast: ccxt.binance) -> None:
    emu.faults.lose_response(how="http_error", status=502)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        fast.create_order(SYMBOL, "market", "buy", 1, None, {"clientOrderId": "lost-2"})
    found = fast.fetch_order("", SYMBOL, {"clientOrderId": "lost-2"})
    assert (found["status"], found["filled"]) == ("closed", 1.0)
    assert fast.fetch_balance()["USDT"]["free"] == 900.0


def test_visibility_lag_hides_closed_orders_for_some_queries(
    emu: BinanceEmulator, fast: ccxt.binance
) -> None:
    emu.set_visibility_lag(queries=2)
    resting = fast.create_order(SYMBOL, "limit", "buy", 1, 50)
    assert fast.fetch_order(resting["id"], SYMBOL)["status"] == "open"  # open: never hidden
    filled = fast.create_order(SYMBOL, "market", "buy", 1, None, {"clientOrderId": "lag-1"})
    assert filled["status"] == "closed"  # the placement reply itself is complete
    assert [o["id"] for o in fast.fetch_open_orders(SYMBOL)] == [resting["id"]]
    with pytest.raises(ccxt.OrderNotFound):  # order query 1 after it closed
        fast.fetch_order(filled["id"], SYMBOL)
    assert filled["id"] not in [o["id"] for o in fast.fetch_orders(SYMBOL)]  # query 2
    assert [t["order"] for t in fast.fetch_my_trades(SYMBOL)] == [filled["id"]]  # trades are not
    late = fast.fetch_order("", SYMBOL, {"clientOrderId": "lag-1"})  # query 3
    assert late["status"] == "closed"


def test_visibility_lag_applies_to_cancels_and_wall_time(
    emu: BinanceEmulator, fast: ccxt.binance
) -> None:
    emu.set_visibility_lag(seconds=3600)
    order = fast.create_order(SYMBOL, "limit", "buy", 1, 50)
    assert fast.cancel_order(order["id"], SYMBOL)["status"] == "canceled"
    assert fast.fetch_open_orders(SYMBOL) == []
    for _ in range(3):
        with pytest.raises(ccxt.OrderNotFound):
            fast.fetch_order(order["id"], SYMBOL)
    assert fast.fetch_orders(SYMBOL) == []


def test_request_counts_bound_a_sync(emu: BinanceEmulator, fast: ccxt.binance) -> None:
    emu.reset_request_counts()
    fast.fetch_open_orders(SYMBOL)
    fast.fetch_my_trades(SYMBOL)
    fast.fetch_balance()
    admin(emu, "GET", "state")
    assert emu.request_counts() == {
        "GET /api/v3/openOrders": 1,
        "GET /api/v3/myTrades": 1,
        "GET /api/v3/account": 1,
    }
    assert emu.request_count() == 3 and emu.request_count(method="POST") == 0


def test_admin_http_endpoint_drives_faults_clock_and_counters(
    emu: BinanceEmulator, fast: ccxt.binance
) -> None:
    admin(emu, "POST", "faults", {"kind": "http_error", "status": 502, "path": "/api/v3/time"})
    assert admin(emu, "GET", "state")["pending_faults"][0]["path"] == "/api/v3/time"
    with pytest.raises(ccxt.ExchangeNotAvailable):
        fast.fetch_time()
    moved = admin(emu, "POST", "advance", {"candles": 4})
    assert moved["advanced"] == 4 and moved["now"] == emu.now_ms
    assert fast.fetch_ticker(SYMBOL)["last"] == 108.0
    admin(emu, "POST", "faults", {"kind": "rate_limit", "count": 3})
    admin(emu, "DELETE", "faults")
    assert fast.fetch_ticker(SYMBOL)["last"] == 108.0
    admin(emu, "POST", "lag", {"queries": 1})
    order = fast.create_order(SYMBOL, "market", "buy", 0.1)
    with pytest.raises(ccxt.OrderNotFound):
        fast.fetch_order(order["id"], SYMBOL)
    admin(emu, "POST", "clock_skew", {"ms": -5000})
    with pytest.raises(ccxt.InvalidNonce):
        fast.fetch_balance()
    assert admin(emu, "GET", "requests")["GET /api/v3/account"] == 1
    admin(emu, "DELETE", "requests")
    assert emu.request_counts() == {}
    with pytest.raises(urllib.error.HTTPError) as bad:
        admin(emu, "POST", "faults", {"kind": "meteor"})
    assert bad.value.code == 400


def test_a_held_request_is_answered_when_its_gate_opens(
    emu: BinanceEmulator, ex: ccxt.binance
) -> None:
    ex.load_markets()
    gate = emu.faults.hold(path="/api/v3/order", method="POST")
    replies: list[dict[str, Any]] = []
    sender = threading.Thread(
        target=lambda: replies.append(ex.create_order(SYMBOL, "market", "buy", 0.1))
    )
    sender.start()
    assert gate.arrived.wait(timeout=30)
    with emu.engine.lock:
        assert replies == [] and emu.engine.orders == {}  # not processed yet
    gate.open()
    sender.join(timeout=30)
    [reply] = replies
    assert reply["status"] == "closed"
    assert emu.request_count("/api/v3/order", "POST") == 1


def test_a_tampered_reply_carries_the_patch_on_the_chosen_item(
    emu: BinanceEmulator, ex: ccxt.binance
) -> None:
    for price in (50, 60):
        ex.create_order(SYMBOL, "limit", "buy", 0.1, price)
    emu.faults.tamper({"status": "PENDING_REVIEW"}, path="/api/v3/openOrders", method="GET", item=1)
    listed = ex.fetch_open_orders(SYMBOL)
    assert [o["status"] for o in listed] == ["open", "PENDING_REVIEW"]
    assert [o["status"] for o in ex.fetch_open_orders(SYMBOL)] == ["open", "open"]  # once
