"""The emulator's WebSocket side, driven by the REAL ccxt.pro binance client: market streams
(kline, trade, bookTicker), the user data stream through the WebSocket API (what ccxt uses for
spot) and the REST listenKey life cycle with its raw /ws/<listenKey> stream.

No timing assumptions: a test waits for the server to see the subscription (a condition, with
a safety timeout only) before it moves the clock, then awaits the watch call itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest
from websockets.asyncio.client import connect

from emulator import BinanceEmulator
from tests.emulator.scripted import KEY, T0, raw_request

HOUR = 3_600_000
SAFETY_S = 20


def _run[T](coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, SAFETY_S)

    return asyncio.run(bounded())


async def _subscribed(emu: BinanceEmulator, stream: str) -> None:
    ok = await asyncio.to_thread(emu.streams.wait_for, lambda: emu.streams.subscribers(stream) > 0)
    assert ok, f"nobody subscribed to {stream}"


async def _user_subscribed(emu: BinanceEmulator) -> None:
    streams = emu.streams
    ok = await asyncio.to_thread(streams.wait_for, lambda: streams.user_subscribers(KEY) > 0)
    assert ok, "no user data stream subscribed"


async def _with_client(emu: BinanceEmulator, body: Any, **keys: str) -> Any:
    client = emu.ccxt_pro_client(**keys)
    try:
        await client.load_markets()
        return await body(client)
    finally:
        await client.close()


def test_watch_ohlcv_receives_the_candle_that_closes(emu: BinanceEmulator) -> None:
    async def body(client: ccxt.pro.binance) -> list[list[Any]]:
        watch = asyncio.create_task(client.watch_ohlcv("BTC/USDT", "1h"))
        await _subscribed(emu, "btcusdt@kline_1h")
        await asyncio.to_thread(emu.advance)
        return await watch

    candles = _run(_with_client(emu, body))
    assert candles[-1][:6] == [T0 + HOUR, 100.0, 102.0, 98.0, 101.0, 10.0]


def test_a_finer_feed_streams_the_coarser_kline_when_it_closes() -> None:
    """As on Binance, every interval streams, not only the feed's: a 1m feed's 1h kline
    arrives (aggregated, closed) when the hour's last minute closes, and not before; public
    streams need no key."""
    from emulator import MarketConfig

    minutes = [[T0 + i * 60_000, 100 + i, 100 + i + 1, 100 + i - 1, 100 + i, 1] for i in range(130)]
    market = MarketConfig(symbol="BTC/USDT", candles=minutes, tick_size=Decimal("0.01"))
    with BinanceEmulator([market]) as emu:  # candle 0 has closed: the clock is at T0 + 1m

        async def body(client: ccxt.pro.binance) -> tuple[list[list[Any]], list[list[Any]]]:
            hourly = asyncio.create_task(client.watch_ohlcv("BTC/USDT", "1h"))
            await _subscribed(emu, "btcusdt@kline_1h")
            minute = asyncio.create_task(client.watch_ohlcv("BTC/USDT", "1m"))
            await _subscribed(emu, "btcusdt@kline_1m")
            await asyncio.to_thread(emu.advance, 58)  # to T0 + 59m: the hour still forms
            minutes = await minute
            await asyncio.to_thread(emu.advance)  # minute 59 closes the hour
            return minutes, await hourly  # the first 1h message, whole: none came early

        minutes, hours = _run(_with_client(emu, body, api_key="", secret=""))
    assert minutes[0][:6] == [T0 + 60_000, 101.0, 102.0, 100.0, 101.0, 1.0]
    assert [row[:6] for row in hours] == [[T0, 100.0, 160.0, 99.0, 159.0, 60.0]]


def test_watch_trades_and_bids_asks_see_a_tick_between_candles(emu: BinanceEmulator) -> None:
    async def body(client: ccxt.pro.binance) -> tuple[Any, Any]:
        trades = asyncio.create_task(client.watch_trades("BTC/USDT"))
        book = asyncio.create_task(client.watch_bids_asks(["BTC/USDT"]))
        await _subscribed(emu, "btcusdt@trade")
        await _subscribed(emu, "btcusdt@bookTicker")
        emu.publish_tick("BTC/USDT", Decimal("93.5"))
        return await trades, await book

    trades, book = _run(_with_client(emu, body))
    assert trades[-1]["price"] == 93.5
    assert book["BTC/USDT"]["bid"] == 93.5
    assert emu.price("BTC/USDT") == Decimal("100")  # the tick is on the stream only


def test_watch_orders_and_my_trades_receive_a_fill(emu: BinanceEmulator) -> None:
    async def body(client: ccxt.pro.binance) -> tuple[Any, Any, Any]:
        orders = asyncio.create_task(client.watch_orders("BTC/USDT"))
        await _user_subscribed(emu)
        trades = asyncio.create_task(client.watch_my_trades("BTC/USDT"))
        placed = await client.create_order("BTC/USDT", "limit", "buy", 1, 96)
        new = [dict(o) for o in await orders]  # ccxt's cache is updated in place
        filled_watch = asyncio.create_task(client.watch_orders("BTC/USDT"))
        await asyncio.to_thread(emu.advance, 2)  # candle 2 dips to 95: the limit fills
        filled = await filled_watch
        return placed, new, (filled, await trades)

    placed, new, (filled, trades) = _run(_with_client(emu, body))
    assert new[-1]["id"] == placed["id"] and new[-1]["status"] == "open"
    assert filled[-1]["id"] == placed["id"] and filled[-1]["status"] == "closed"
    assert filled[-1]["filled"] == 1.0
    assert trades[-1]["order"] == placed["id"] and trades[-1]["price"] == 96.0
    assert trades[-1]["fee"]["currency"] == "BTC"


def test_watch_balance_receives_the_account_position(emu: BinanceEmulator) -> None:
    async def body(client: ccxt.pro.binance) -> Any:
        balance = asyncio.create_task(client.watch_balance())
        await _user_subscribed(emu)
        await client.create_order("BTC/USDT", "limit", "buy", 1, 90)  # locks 90 USDT
        return await balance

    balance = _run(_with_client(emu, body))
    assert balance["USDT"]["used"] == 90.0
    assert balance["USDT"]["free"] == 910.0


def test_a_bad_signature_is_refused_on_the_websocket_api(emu: BinanceEmulator) -> None:
    async def body() -> None:
        client = emu.ccxt_pro_client(secret="wrong")
        try:
            await client.load_markets()
            # ccxt 4.5.90 raises AuthenticationError, then trips over its own clean-up (a KeyError
            # while handling it); either way the refusal is the -1022 the emulator sent.
            with pytest.raises(Exception) as caught:
                await client.watch_balance()
            error = caught.value
            if not isinstance(error, ccxt.AuthenticationError):
                error = error.__context__  # type: ignore[assignment]
            assert isinstance(error, ccxt.AuthenticationError)
            assert "-1022" in str(error)
        finally:
            await client.close()

    _run(body())


def test_listen_key_life_cycle_and_its_raw_user_stream(emu: BinanceEmulator) -> None:
    status, created, _ = raw_request(emu, "POST", "/api/v3/userDataStream", secret=None)
    assert status == 200
    listen_key = created["listenKey"]
    again = raw_request(emu, "POST", "/api/v3/userDataStream", secret=None)[1]
    assert again == {"listenKey": listen_key}  # one live key per account, as on Binance
    keep = raw_request(emu, "PUT", "/api/v3/userDataStream", {"listenKey": listen_key}, secret=None)
    assert keep[:2] == (200, {})

    async def body() -> list[dict[str, Any]]:
        async with connect(f"{emu.ws_url}/ws/{listen_key}") as ws:
            await _user_subscribed(emu)
            await asyncio.to_thread(
                raw_request,
                emu,
                "POST",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
            )
            events = [json.loads(await ws.recv()) for _ in range(3)]
            await asyncio.to_thread(
                raw_request,
                emu,
                "DELETE",
                "/api/v3/userDataStream",
                {"listenKey": listen_key},
                secret=None,
            )
            await ws.wait_closed()  # closing the key ends its stream
            return events

    events = _run(body())
    assert [(e["e"], e.get("x")) for e in events] == [
        ("executionReport", "NEW"),
        ("executionReport", "TRADE"),
        ("outboundAccountPosition", None),
    ]
    assert events[1]["X"] == "FILLED" and events[1]["L"] == "100.00000000"
    gone = raw_request(emu, "PUT", "/api/v3/userDataStream", {"listenKey": listen_key}, secret=None)
    assert gone[0] == 400 and gone[1]["code"] == -1125


def test_dropped_connections_are_resubscribed_by_ccxt(emu: BinanceEmulator) -> None:
    stream = "btcusdt@kline_1h"

    async def body(client: ccxt.pro.binance) -> list[list[Any]]:
        first = asyncio.create_task(client.watch_ohlcv("BTC/USDT", "1h"))
        await _subscribed(emu, stream)
        await asyncio.to_thread(emu.advance)
        await first
        pending = asyncio.create_task(client.watch_ohlcv("BTC/USDT", "1h"))
        await asyncio.to_thread(emu.streams.drop_connections)
        with pytest.raises(ccxt.NetworkError):
            await pending  # a watch waiting on the dropped connection learns of it
        gone = await asyncio.to_thread(
            emu.streams.wait_for, lambda: emu.streams.subscribers(stream) == 0
        )
        assert gone
        again = asyncio.create_task(client.watch_ohlcv("BTC/USDT", "1h"))
        await _subscribed(emu, stream)
        await asyncio.to_thread(emu.advance)
        return await again

    candles = _run(_with_client(emu, body))
    assert candles[-1][0] == T0 + 2 * HOUR
