from __future__ import annotations

from decimal import Decimal

from kestrel.exchange.paper_factory import build_paper_exchange
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import SimulatedFeed
from kestrel.settings import KestrelSettings, PaperSettings, WatchlistItem
from kestrel.store.sqlite import SQLiteStore


def test_builds_the_demo_wallet_for_the_watchlist(store: SQLiteStore) -> None:
    settings = KestrelSettings(
        watchlist=[WatchlistItem(symbol="BTC/USDT"), WatchlistItem(symbol="NEWCOIN/USDT")],
        paper=PaperSettings(market_data="simulated", starting_balance=Decimal("2500")),
    )
    paper = build_paper_exchange(settings, store)
    assert isinstance(paper.feed, SimulatedFeed)
    assert paper.symbols == ["BTC/USDT", "NEWCOIN/USDT"]
    btc = default_markets()["BTC/USDT"]
    assert paper.specs["BTC/USDT"].amount_step == btc.amount_step
    assert paper.specs["NEWCOIN/USDT"].min_notional == Decimal("5")  # derived from its price
    assert paper.fetch_balance()["total"] == {"USDT": 2500.0}
    assert paper.fetch_ticker("NEWCOIN/USDT")["last"] > 0
