from __future__ import annotations

from decimal import Decimal

from kestrel.config.settings import KestrelSettings, PaperSettings, WatchlistItem
from kestrel.exchange.paper_factory import build_paper_exchange
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import SimulatedFeed
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


def test_extra_starting_balances_seed_a_new_account(store: SQLiteStore) -> None:
    settings = KestrelSettings(
        watchlist=[WatchlistItem(symbol="ETH/BTC")],
        paper=PaperSettings(market_data="simulated", extra_balances={"BTC": Decimal("0.5")}),
    )
    paper = build_paper_exchange(settings, store)
    assert paper.fetch_balance()["total"] == {"BTC": 0.5, "USDT": 10000.0}
    order = paper.create_order("ETH/BTC", "market", "buy", 1)  # paid in BTC
    assert order["info"]["reserved_currency"] == "BTC"
