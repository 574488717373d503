"""Building the DEMO wallet: the paper exchange for the watchlist, priced by the chosen feed."""

from __future__ import annotations

from decimal import Decimal

from kestrel.config.settings import KestrelSettings
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_markets import default_markets, derive_market
from kestrel.market.base import MarketFeed
from kestrel.models import MarketSpec
from kestrel.money import to_decimal
from kestrel.store.base import Store


def watchlist_markets(settings: KestrelSettings, feed: MarketFeed) -> dict[str, MarketSpec]:
    """The table's spec for each watchlist symbol, else one derived from its latest price."""
    table = default_markets()
    markets: dict[str, MarketSpec] = {}
    for item in settings.watchlist:
        if item.symbol in table:
            markets[item.symbol] = table[item.symbol]
            continue
        last = feed.candles(item.symbol, item.timeframe, 1).last
        if last is None:
            raise ValueError(f"{item.symbol}: no candle to derive its market rules from")
        markets[item.symbol] = derive_market(item.symbol, to_decimal(last.close))
    return markets


def build_paper_exchange(
    settings: KestrelSettings,
    store: Store,
    feed: MarketFeed | None = None,
    starting_balances: dict[str, Decimal] | None = None,
) -> PaperExchange:
    """The paper exchange for `settings` (choosing the feed from settings when none is given)."""
    if feed is None:
        from kestrel.market import choose_feed

        feed = choose_feed(settings, store, [item.symbol for item in settings.watchlist])
    return PaperExchange(
        store, feed, watchlist_markets(settings, feed), settings.paper, starting_balances
    )
