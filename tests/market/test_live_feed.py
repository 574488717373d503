from __future__ import annotations

import pytest

from kestrel.errors import ExchangeError, InvalidMarketData, TransientExchangeError
from kestrel.market import CcxtLiveFeed, MarketFeed
from kestrel.market.live import translate
from tests.market.fake_binance import MINUTE, FakeBinance, binance_at, closed_port, serve

T0 = 1_700_000_040_000 - 1_700_000_040_000 % MINUTE


def test_only_closed_candles_through_real_ccxt() -> None:
    fake = FakeBinance(T0, count=10)
    with serve(fake) as url:
        # now = 30 s into the 10th candle: it is still forming
        feed = CcxtLiveFeed(binance_at(url), timeout_s=2, clock=lambda: T0 + 9 * MINUTE + 30_000)
        assert isinstance(feed, MarketFeed)
        assert feed.label == "ccxt:binance" and feed.kind == "live"
        series = feed.candles("BTC/USDT", "1m", 3)
        assert [c.timestamp for c in series.candles] == [T0 + i * MINUTE for i in (6, 7, 8)]
        assert series.candles[-1].close == 109.0
        assert series.source == "ccxt:binance"
        assert "limit=4" in fake.requests[-1]  # one extra row for the forming candle
        assert feed.now_ms("BTC/USDT") == T0 + 9 * MINUTE + 30_000
        feed.advance()  # a no-op for live data
        assert not feed.exhausted


def test_candles_between_pages_and_stops_at_now() -> None:
    fake = FakeBinance(T0, count=2_500)
    with serve(fake) as url:
        feed = CcxtLiveFeed(binance_at(url), timeout_s=2, clock=lambda: T0 + 2_499 * MINUTE + 1)
        got = feed.candles_between("BTC/USDT", T0 + 5 * MINUTE, T0 + 3_000 * MINUTE)
        assert [c.timestamp for c in got] == [T0 + i * MINUTE for i in range(5, 2_499)]
        assert sum("klines" in r for r in fake.requests) == 3  # 1000 + 1000 + 494 rows


def test_timeout_is_set_on_the_ccxt_client() -> None:
    exchange = binance_at("http://127.0.0.1:9")
    CcxtLiveFeed(exchange, timeout_s=4.5)
    assert exchange.timeout == 4500


@pytest.mark.parametrize("mode", ["429", "503", "slow"])
def test_network_trouble_is_transient(mode: str) -> None:
    fake = FakeBinance(T0, count=5)
    fake.mode = mode
    with serve(fake) as url:
        feed = CcxtLiveFeed(binance_at(url), timeout_s=1, clock=lambda: T0 + 10 * MINUTE)
        with pytest.raises(TransientExchangeError, match="ccxt:binance"):
            feed.candles("BTC/USDT", "1m", 3)


def test_unreachable_exchange_is_transient() -> None:
    feed = CcxtLiveFeed(binance_at(f"http://127.0.0.1:{closed_port()}"), timeout_s=1)
    with pytest.raises(TransientExchangeError):
        feed.candles("BTC/USDT", "1h", 3)


def test_bad_symbol_is_final_not_transient() -> None:
    fake = FakeBinance(T0, count=5)
    fake.mode = "bad-symbol"
    with serve(fake) as url:
        feed = CcxtLiveFeed(binance_at(url), timeout_s=1, clock=lambda: T0 + 10 * MINUTE)
        with pytest.raises(ExchangeError) as caught:
            feed.candles("BTC/USDT", "1m", 3)
        assert not isinstance(caught.value, TransientExchangeError)


def test_translate_covers_ccxt_network_family() -> None:
    import ccxt

    for cls in (ccxt.NetworkError, ccxt.RequestTimeout, ccxt.DDoSProtection,
                ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable, ccxt.OnMaintenance,
                ccxt.OperationFailed, ccxt.BadResponse):  # fmt: skip
        assert isinstance(translate("x", cls("boom")), TransientExchangeError)
    for final in (ccxt.BadSymbol, ccxt.AuthenticationError, ccxt.ExchangeError):
        translated = translate("x", final("no"))
        assert isinstance(translated, ExchangeError)
        assert not isinstance(translated, TransientExchangeError)
    plain = ValueError("ours")
    assert translate("x", plain) is plain


def test_invalid_rows_from_the_exchange_are_invalid_market_data() -> None:
    fake = FakeBinance(T0, count=5)
    with serve(fake) as url:
        exchange = binance_at(url)
        feed = CcxtLiveFeed(exchange, timeout_s=2, clock=lambda: T0 + 10 * MINUTE)
        original = fake.klines

        def broken(start: int | None, limit: int) -> list[list[object]]:
            rows = original(start, limit)
            rows[1][2] = "1"  # high below open and close
            return rows

        fake.klines = broken  # type: ignore[method-assign]
        with pytest.raises(InvalidMarketData, match="BTC/USDT"):
            feed.candles("BTC/USDT", "1m", 3)
