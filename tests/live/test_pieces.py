"""The engine's parts on their own: candle book, backoff, order-event filter, claims, levels,
and the stream loop's reconnect with backoff (an injected sleep records the delays)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from kestrel.live import (
    CANDLE_MISSED,
    Backoff,
    CandleBook,
    CandleClaim,
    OrderUpdate,
    OrderUpdateFilter,
    ProtectionWatch,
    Seen,
    Watchdog,
    claim_candle,
    consume,
    hole,
    record_missed,
)
from kestrel.mode import TradingMode, trading_mode
from kestrel.store import Store
from tests.live.conftest import ManualClock, stop_at

H = 3_600_000


def test_the_candle_book_dedupes_orders_and_finds_gaps() -> None:
    book = CandleBook()
    assert book.see("BTC/USDT", H, 10 * H) is Seen.NEW
    assert book.see("BTC/USDT", H, 10 * H) is Seen.DUPLICATE
    assert book.gap_after("BTC/USDT", H, 13 * H) == [11 * H, 12 * H]
    assert book.see("BTC/USDT", H, 13 * H) is Seen.NEW
    assert book.see("BTC/USDT", H, 12 * H) is Seen.STALE  # late: never goes backwards
    assert not book.complete_through("BTC/USDT", H, 13 * H, 4)
    book.fill("BTC/USDT", H, [11 * H, 12 * H])
    assert book.complete_through("BTC/USDT", H, 13 * H, 4)
    assert hole([10 * H, 11 * H, 13 * H], H) == 12 * H
    assert hole([10 * H, 11 * H], H) is None
    with pytest.raises(ValueError, match="boundary"):
        book.see("BTC/USDT", H, 10 * H + 5)


def test_backoff_grows_to_its_cap_and_resets() -> None:
    b = Backoff(base_s=0.5, cap_s=3)
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3, 3]
    b.reset()
    assert b.next_delay() == 0.5
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=0)


def test_order_events_only_pass_when_they_move_the_order_forward() -> None:
    f = OrderUpdateFilter()
    new = OrderUpdate(order_id="1", symbol="BTC/USDT", status="open", filled=Decimal(0))
    done = new.model_copy(update={"status": "closed", "filled": Decimal(1)})
    assert f.accept(new)
    assert not f.accept(new)  # duplicate
    assert f.accept(done)
    assert not f.accept(new)  # a stale "open" after "closed"


def test_a_candle_is_claimed_once_across_engines(store: Store) -> None:
    claim = CandleClaim(symbol="BTC/USDT", timeframe="1h", open_time=5 * H, holder="engine-a")
    assert claim_candle(store, "binance", claim) is None
    other = claim.model_copy(update={"holder": "engine-b"})
    earlier = claim_candle(store, "binance", other)
    assert earlier is not None and earlier.holder == "engine-a"


def test_a_missed_candle_is_one_event_with_its_reason(store: Store) -> None:
    claim = CandleClaim(symbol="BTC/USDT", timeframe="1h", open_time=6 * H, holder="engine-a")
    with trading_mode(TradingMode.REAL):
        assert record_missed(store, "binance", claim, "hole at 5") is None
        assert record_missed(store, "binance", claim, "hole at 5") is not None  # claimed
    events = [e for e in store.list_events() if CANDLE_MISSED in e.reasons]
    assert len(events) == 1 and "hole at 5" in events[0].message
    assert claim_candle(store, "binance", claim) is not None  # nobody runs it later


def test_levels_trigger_on_stop_and_take_profit_unless_a_native_stop_rests() -> None:
    watch = ProtectionWatch()
    watch.replace([stop_at("BTC/USDT", "95")])
    assert watch.crossed("BTC/USDT", Decimal("96")) is None
    assert "stop-loss" in (watch.crossed("BTC/USDT", Decimal("95")) or "")
    assert "take-profit" in (watch.crossed("BTC/USDT", Decimal("150")) or "")
    assert watch.crossed("ETH/USDT", Decimal("1")) is None
    watch.replace([stop_at("BTC/USDT", "95", native="95")])
    assert watch.crossed("BTC/USDT", Decimal("94")) is None  # the exchange's stop executes it


def test_a_failing_stream_reconnects_with_backoff_and_a_message_resets_it() -> None:
    clock = ManualClock()
    slept: list[float] = []
    results: list[int] = []
    script: list[int | Exception] = [OSError("down"), OSError("down"), 1, OSError("x"), 2]
    stop = asyncio.Event()

    async def watch() -> int:
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def handle(value: int) -> None:
        results.append(value)
        if not script:
            stop.set()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    dog = Watchdog("test", silence_s=10, clock=clock)
    asyncio.run(consume(watch, handle, watchdog=dog, backoff=Backoff(1, 8), sleep=sleep, stop=stop))
    assert results == [1, 2]
    assert slept == [1, 2, 1]  # reset by the good message in between
    assert dog.reconnects == 3 and dog.messages == 2
    clock.now += 11
    assert dog.silent()
