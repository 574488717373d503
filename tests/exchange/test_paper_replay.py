"""End to end: a simple strategy trades through a whole replay (real BTC/USDT 2019 candles)
and a simulation, and the account reconciles with its trades to the last Decimal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.config.settings import PaperSettings
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import MarketFeed, ReplayFeed, SimulatedFeed
from kestrel.store.sqlite import SQLiteStore
from tests.exchange.conftest import exact_balances

SETTINGS = PaperSettings()  # Binance-like defaults: 0.1% fees, 5 bps slippage
START = Decimal("10000")


def trade_sma_crossover(paper: PaperExchange, feed: MarketFeed, symbol: str) -> int:
    """Buy 500 USDT worth when the close is above its 20-candle mean, protect it with a 3%
    stop, sell everything when the close drops below the mean; one step per candle."""
    base = symbol.split("/")[0]
    steps = 0
    while not feed.exhausted:
        closes = [Decimal(str(c.close)) for c in feed.candles(symbol, "1h", 20).candles]
        last, mean = closes[-1], sum(closes) / len(closes)
        # what can be sold: the buy fee in base leaves dust below the amount step
        total = paper.fetch_balance()["total"].get(base, 0.0)
        held = Decimal(paper.amount_to_precision(symbol, total))
        waiting = paper.fetch_open_orders(symbol)
        if held == 0 and not waiting and last > mean:
            paper.create_order(symbol, "market", "buy", float(Decimal(500) / last))
        elif held > 0 and last < mean:
            for order in waiting:
                paper.cancel_order(order["id"], symbol)
            paper.create_order(symbol, "market", "sell", float(held))
        elif held > 0 and not waiting:
            stop = last * Decimal("0.97")
            paper.create_order(
                symbol, "stop_market", "sell", float(held), None, {"stopPrice": stop}
            )
        feed.advance()
        steps += 1
    return steps


def reconcile(paper: PaperExchange, store: SQLiteStore, symbol: str) -> None:
    """Every currency: start + what the fills moved - the fees taken in it, to the Decimal."""
    base, quote = symbol.split("/")
    totals = {quote: START, base: Decimal(0)}
    for trade in paper.fetch_my_trades(symbol):
        info = trade["info"]  # exact strings
        cost, amount, fee = (Decimal(info[k]) for k in ("cost", "amount", "fee_cost"))
        assert cost == amount * Decimal(info["price"])
        # Binance's rule: a buy pays its fee in the base it receives, a sell in the quote
        paid_on = amount if trade["side"] == "buy" else cost
        assert info["fee_currency"] == (base if trade["side"] == "buy" else quote)
        assert fee == paid_on * Decimal(info["fee_rate"])
        sign = 1 if trade["side"] == "buy" else -1
        totals[base] += sign * amount
        totals[quote] -= sign * cost
        totals[info["fee_currency"]] -= fee
    balances = exact_balances(store)
    assert balances[quote] == totals[quote]
    assert balances.get(base, Decimal(0)) == totals[base]
    fetched = paper.fetch_balance()
    assert fetched["total"][quote] == float(totals[quote])


@pytest.mark.shared_data
def test_replay_of_the_real_btc_file(store: SQLiteStore, shared_data_dir: Path) -> None:
    feed = ReplayFeed({"BTC/USDT": shared_data_dir / "ohlcv" / "BTC_USDT-1h.csv"}, store, warmup=30)
    paper = PaperExchange(store, feed, default_markets(), SETTINGS)
    steps = trade_sma_crossover(paper, feed, "BTC/USDT")
    assert steps == 585 - 30
    trades = paper.fetch_my_trades("BTC/USDT")
    assert len(trades) >= 10
    assert {t["side"] for t in trades} == {"buy", "sell"}
    assert all(int(t["datetime"][:4]) == 2019 for t in trades)  # market time, not wall time
    assert len({t["id"] for t in trades}) == len(trades)
    reconcile(paper, store, "BTC/USDT")


def test_simulation_trades_and_reconciles(store: SQLiteStore) -> None:
    feed = SimulatedFeed(store, ["ETH/USDT"], seed=7, warmup=30, length=400)
    paper = PaperExchange(store, feed, default_markets(), SETTINGS)
    trade_sma_crossover(paper, feed, "ETH/USDT")
    trades = paper.fetch_my_trades("ETH/USDT")
    assert len(trades) >= 10 and {t["side"] for t in trades} == {"buy", "sell"}
    reconcile(paper, store, "ETH/USDT")
