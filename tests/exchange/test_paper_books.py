"""Random sequences of orders, partial fills, cancels and restarts on the paper exchange: the
wallet always equals the start plus what the fills moved minus the fees, per currency."""

from __future__ import annotations

import contextlib
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestrel.config.settings import PaperSettings
from kestrel.exchange.paper import PaperExchange
from kestrel.exchange.paper_errors import PaperInsufficientFunds, PaperOrderRejected
from kestrel.exchange.paper_markets import default_markets
from kestrel.market import SimulatedFeed
from kestrel.mode import TradingMode
from kestrel.store.sqlite import SQLiteStore

START = {"USDT": Decimal("5000"), "ETH": Decimal("2"), "BNB": Decimal("0.05")}
SYMBOL = "ETH/USDT"

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.sampled_from(["buy", "sell"]),
            st.sampled_from(["market", "limit", "stop"]),
            st.decimals(min_value=Decimal("0.005"), max_value=Decimal("40"), places=3),
            st.decimals(min_value=Decimal("-0.03"), max_value=Decimal("0.03"), places=3),
        ),
        st.tuples(st.just("advance"), st.integers(1, 3)),
        st.tuples(st.just("cancel")),
        st.tuples(st.just("restart")),
    ),
    min_size=5,
    max_size=30,
)


def open_paper(store: SQLiteStore, fee_mode: Any) -> tuple[SimulatedFeed, PaperExchange]:
    feed = SimulatedFeed(store, [SYMBOL], seed=3, warmup=30, length=200)
    rules = PaperSettings(fee_mode=fee_mode, bnb_prices={"USDT": Decimal("600")})
    markets = {SYMBOL: default_markets()[SYMBOL]}
    return feed, PaperExchange(store, feed, markets, rules, START)


def check_books(paper: PaperExchange) -> None:
    expected = dict(START)
    for trade in paper.fetch_my_trades(SYMBOL):
        info = trade["info"]
        sign = 1 if trade["side"] == "buy" else -1
        expected["ETH"] += sign * Decimal(info["amount"])
        expected["USDT"] -= sign * Decimal(info["cost"])
        expected[info["fee_currency"]] -= Decimal(info["fee_cost"])
    balance = paper.fetch_balance()
    for currency, amount in expected.items():
        stored = Decimal(balance["info"]["balances"].get(currency, "0"))
        assert stored == amount, currency
        assert balance[currency]["free"] >= 0 and balance[currency]["used"] >= 0
    for order in paper.fetch_orders(SYMBOL):
        fills = [t for t in paper.fetch_my_trades(SYMBOL) if t["order"] == order["id"]]
        assert Decimal(order["info"]["filled"]) == sum(Decimal(t["info"]["amount"]) for t in fills)


def place(paper: PaperExchange, side: str, kind: str, amount: Decimal, offset: Decimal) -> None:
    """A limit `offset` away from the last price, a stop 2% away on the losing side, or a
    market order; a refusal (funds, minimums) must change nothing, which check_books sees."""
    last = paper.last_price(SYMBOL)
    price = float(last * (1 + offset)) if kind == "limit" else None
    params = {}
    if kind == "stop":
        params = {
            "stopPrice": float(last * (Decimal("0.98") if side == "sell" else Decimal("1.02")))
        }
    with contextlib.suppress(PaperInsufficientFunds, PaperOrderRejected):
        paper.create_order(
            SYMBOL, "limit" if kind == "limit" else "market", side, float(amount), price, params
        )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, fee_mode=st.sampled_from(["standard", "bnb"]))
def test_the_wallet_always_equals_start_plus_fills_minus_fees(
    ops: list[tuple[Any, ...]], fee_mode: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "demo.sqlite", TradingMode.DEMO)
        try:
            feed, paper = open_paper(store, fee_mode)
            for op in ops:
                if op[0] == "order":
                    place(paper, *op[1:])
                elif op[0] == "advance" and not feed.exhausted:
                    feed.advance(op[1])
                elif op[0] == "cancel":
                    waiting = paper.fetch_open_orders(SYMBOL)
                    if waiting:
                        paper.cancel_order(waiting[0]["id"], SYMBOL)
                elif op[0] == "restart":
                    feed, paper = open_paper(store, fee_mode)  # a new process, same store
                check_books(paper)
        finally:
            store.close()
