"""Market rules (table, derived, ccxt shape) and the paper exchange's market data calls."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kestrel.exchange.ccxt_exchange import native_stop_kind
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_markets import (
    ORDER_TYPES,
    ccxt_market,
    default_markets,
    derive_market,
    markets_for,
)
from kestrel.execution.protection import ProtectionPolicy
from kestrel.market import ReplayFeed
from kestrel.models import MarketSpec
from kestrel.money import PrecisionMode
from tests.exchange.conftest import CANDLES, HOUR, T0


def test_default_table_is_binance_like() -> None:
    table = default_markets()
    btc = table["BTC/USDT"]
    assert (btc.amount_step, btc.price_tick) == (Decimal("0.00001"), Decimal("0.01"))
    assert (btc.min_amount, btc.min_notional) == (Decimal("0.00001"), Decimal("5"))
    assert table["ETH/BTC"].min_notional == Decimal("0.0001")
    assert table["ETH/BTC"].quote == "BTC"
    assert {"ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/BTC", "LTC/BTC"} <= set(table)


@pytest.mark.parametrize(
    ("symbol", "price", "tick", "step", "min_notional"),
    [
        ("PEPE/USDT", "0.0000123", "0.00000001", "1", "5"),
        ("NEW/USDT", "3.456", "0.00001", "0.1", "5"),
        ("BIG/USDT", "65432.1", "0.1", "0.000001", "5"),
        ("ETH/EUR", "3000", "0.01", "0.00001", "0"),
        ("NEW/BTC", "0.00123", "0.00000001", "0.001", "0.0001"),
        ("NEW/EUR", "12.5", "0.0001", "0.00001", "0"),
    ],
)
def test_derived_specs_scale_with_price(
    symbol: str, price: str, tick: str, step: str, min_notional: str
) -> None:
    spec = derive_market(symbol, Decimal(price))
    assert spec.price_tick == Decimal(tick)
    assert spec.amount_step == Decimal(step)
    assert spec.min_notional == Decimal(min_notional)
    # one step is worth at most a tenth of the minimum order (or of one unit)
    assert spec.amount_step * Decimal(price) <= max(spec.min_notional, Decimal(price)) / 10


def test_markets_for_uses_table_then_prices() -> None:
    found = markets_for(["BTC/USDT", "NEW/USDT"], {"NEW/USDT": Decimal("2.5")})
    assert found["BTC/USDT"] == default_markets()["BTC/USDT"]
    assert found["NEW/USDT"].price_tick == Decimal("0.00001")
    with pytest.raises(ValueError, match="NOPE/USDT"):
        markets_for(["NOPE/USDT"])


def test_ccxt_market_round_trips_through_marketspec() -> None:
    for spec in default_markets().values():
        market = ccxt_market(spec)
        assert market["symbol"] == spec.symbol and market["spot"] is True
        assert MarketSpec.from_ccxt(market, precision_mode=PrecisionMode.TICK_SIZE) == spec


def test_markets_carry_the_paper_fees(paper: PaperExchange) -> None:
    assert paper.load_markets() is paper.markets
    market = paper.market("BTC/USDT")
    assert (market["maker"], market["taker"]) == (0.0008, 0.001)
    assert market["precision"] == {"amount": 0.00001, "price": 0.01}
    assert market["limits"]["cost"]["min"] == 5.0
    assert MarketSpec.from_ccxt(market, PrecisionMode.TICK_SIZE).maker_fee == Decimal("0.0008")


def test_fetch_ohlcv_serves_the_feed_closed_candles(paper: PaperExchange, feed: ReplayFeed) -> None:
    rows = paper.fetch_ohlcv("BTC/USDT", "1h")
    assert rows == [[T0 + i * HOUR, *map(float, CANDLES[i]), 10.0 + i] for i in (0, 1)]
    feed.advance(3)
    assert [r[0] for r in paper.fetch_ohlcv("BTC/USDT", "1h", limit=2)] == [
        T0 + 3 * HOUR,
        T0 + 4 * HOUR,
    ]
    since = paper.fetch_ohlcv("BTC/USDT", "1h", since=T0 + HOUR, limit=2)
    assert [r[0] for r in since] == [T0 + HOUR, T0 + 2 * HOUR]


def test_fetch_ticker_last_is_the_latest_close(paper: PaperExchange, feed: ReplayFeed) -> None:
    ticker = paper.fetch_ticker("BTC/USDT")
    assert ticker["last"] == ticker["close"] == 20150.0
    assert ticker["timestamp"] == T0 + 2 * HOUR
    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    feed.advance()
    assert paper.fetch_ticker("BTC/USDT")["last"] == 20250.0
    assert paper.last_price("BTC/USDT") == Decimal("20250")


def test_markets_list_binance_order_types_so_protection_rests_native_stops(
    paper: PaperExchange,
) -> None:
    """DEMO protects positions as REAL does on Binance: a resting STOP_LOSS order."""
    assert paper.market("BTC/USDT")["info"]["orderTypes"] == ORDER_TYPES
    assert native_stop_kind(paper, "BTC/USDT") == "market"
    assert ProtectionPolicy().stop_kind(paper, "BTC/USDT") == "market"
    assert ProtectionPolicy(mode="monitor").stop_kind(paper, "BTC/USDT") is None
