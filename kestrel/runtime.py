"""Everything a process needs to trade, built once per process and mode.

Under Prefect every deployment run is its own process, and tasks run in threads; the
runtime is therefore built lazily, cached per (settings, mode), and holds nothing that
cannot be rebuilt from the settings and the store.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kestrel.config.settings import KestrelSettings
from kestrel.exchange.base import ExchangeClient
from kestrel.exchange.ccxt_exchange import market_spec
from kestrel.mode import TradingMode, current_mode
from kestrel.models import MarketSpec
from kestrel.store.base import Store

if TYPE_CHECKING:
    from kestrel.market import FeedKind, MarketFeed


@dataclass
class Runtime:
    settings: KestrelSettings
    store: Store
    exchange: ExchangeClient
    feed: MarketFeed | None = None
    _markets: dict[str, MarketSpec] = field(default_factory=dict)

    @property
    def mode(self) -> TradingMode:
        return self.settings.mode

    def market(self, symbol: str) -> MarketSpec:
        if symbol not in self._markets:
            self.exchange.load_markets()
            self._markets[symbol] = market_spec(self.exchange, symbol)
        return self._markets[symbol]

    @property
    def data_kind(self) -> FeedKind:
        """Where candles and prices come from: "live", "replay" or "simulated"."""
        return self.feed.kind if self.feed is not None else "live"

    @property
    def data_source(self) -> str:
        """The data source as every decision, table and message names it, e.g.
        "live (ccxt:binance)", "replay (replay:BTC_USDT-1h.csv)", "SIMULATED (seed 7)"."""
        if self.feed is None:
            return f"live (ccxt:{self.exchange.id})"
        if self.feed.kind == "simulated":
            return self.feed.label
        return f"{self.feed.kind} ({self.feed.label})"

    def now_ms(self, symbol: str) -> int:
        """Market time: the replay/simulation clock in DEMO replays, else the wall clock."""
        if self.feed is not None:
            return self.feed.now_ms(symbol)
        return int(time.time() * 1000)


# Settings change live (kestrel settings set), and each version gets its own runtime: keep
# the most recent few and close the stores of the rest (a closed StoreRouter reopens lazily,
# so a task still holding an evicted runtime keeps working).
MAX_RUNTIMES = 8
_cache: OrderedDict[tuple[str, TradingMode], Runtime] = OrderedDict()
_lock = threading.Lock()


def build_runtime(settings: KestrelSettings) -> Runtime:
    """The runtime for `settings`. DEMO: the market feed is chosen and the watchlist checked
    against it first (MarketDataUnavailable, or ConfigError naming an unknown symbol)."""
    from kestrel.books.wallet import build_exchange
    from kestrel.store.router import StoreRouter

    store = StoreRouter(settings)
    try:
        feed = None
        if settings.mode is TradingMode.DEMO:
            from kestrel.market import choose_feed
            from kestrel.market.check import check_watchlist

            feed = choose_feed(settings, store, [item.symbol for item in settings.watchlist])
            check_watchlist(settings, feed)  # FOO/BAR: a clear error, before any price is read
        exchange = build_exchange(settings, store, feed=feed)
    except BaseException:
        store.close()
        raise
    return Runtime(settings=settings, store=store, exchange=exchange, feed=feed)


def get_runtime(settings: KestrelSettings) -> Runtime:
    """The process's runtime for these settings in the current mode."""
    key = (settings.model_dump_json(), current_mode())
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        runtime = _cache[key] = build_runtime(settings)
        while len(_cache) > MAX_RUNTIMES:
            _, evicted = _cache.popitem(last=False)
            evicted.store.close()
        return runtime


def reset_runtimes() -> None:
    with _lock:
        for runtime in _cache.values():
            runtime.store.close()
        _cache.clear()
