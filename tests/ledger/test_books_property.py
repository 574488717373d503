"""Property: whatever the sequence of buys and sells, partial fills, fees (in base, quote or
BNB, with or without a BNB price), repeated deliveries of a fill (retries, a second process),
writes that lose a race between storing the fill and moving the position or the day, a kill
between those writes (the next sync records the fill again), and restarts (a new store object
on the same data), the books stay true. On SQLite and on MongoDB
without transactions (mongomock: the code path of a standalone server).

After every step:
- cash per currency = start + what the fills moved - their fees, in the fees' currency: the
  store holds each fill the exchange made, once;
- each position is the fold of its fills (`apply_fill`), and every fill is in exactly one;
- the positions reconcile with that cash, currency by currency (`books_from_positions`);
- realized + unrealized PnL - fees is the change of the wallet's value (at the last price,
  BNB at its rate; a fee with no rate is the one thing the PnL does not know, and says so);
- the daily PnL documents count every fill, its PnL and its fees once.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kestrel.books.ledger import (
    Tradable,
    apply_fill,
    daily_pnl,
    fill_day,
    record_fill,
    with_fee_rates,
)
from kestrel.models import Fill, Position, PositionStatus, Side
from kestrel.reporting.summary import books_from_positions
from tests.ledger.racing import Crash, Racing, new_mongo_db, open_racing

SYMBOL = "BTC/USDT"
START = {"USDT": Decimal("100000"), "BTC": Decimal("0"), "BNB": Decimal("10")}
BNB_RATE = Decimal("600")  # USDT per BNB, constant so the wallet can be valued with it
STEP = Decimal("0.001")  # the market's amount step and minimum: below it, dust
TRADABLE = Tradable(
    symbol=SYMBOL,
    base="BTC",
    quote="USDT",
    amount_step=STEP,
    price_tick=Decimal("0.01"),
    min_amount=STEP,
)
FEE_RATE = Decimal("0.001")
BNB_FEE_RATE = Decimal("0.00075")
TOLERANCE = Decimal("1e-12")  # averages are divided at 28 digits
T0 = 1_700_000_000_000
TWO_HOURS = 7_200_000
FEE_KINDS = ("base", "quote", "bnb", "bnb_no_rate")

prices = st.integers(9_000, 11_000).map(lambda cents: Decimal(cents) / 100)
buys = st.tuples(
    st.just("buy"), st.integers(1, 2_000), prices, st.sampled_from(FEE_KINDS), st.integers(1, 3)
)
sells = st.tuples(
    st.just("sell"), st.integers(1, 100), prices, st.sampled_from(FEE_KINDS), st.integers(1, 3)
)
redeliveries = st.tuples(st.just("redeliver"), st.integers(0, 10_000), st.booleans())
races = st.tuples(st.just("race"), st.sampled_from(["position", "daily", "crash"]))
restarts = st.tuples(st.just("restart"))
steps = st.lists(
    st.one_of(buys, buys, sells, sells, redeliveries, races, restarts), min_size=1, max_size=20
)


@dataclass
class Books:
    """The exchange's side of the story (wallet, fills) and the store under test."""

    backend: str
    where: Any
    store: Racing = field(init=False)
    other: Racing = field(init=False)  # a second process on the same data
    wallet: dict[str, Decimal] = field(default_factory=lambda: dict(START))
    fills: list[Fill] = field(default_factory=list)
    last_price: Decimal = Decimal("100")

    def __post_init__(self) -> None:
        self.store = open_racing(self.backend, self.where)
        self.other = open_racing(self.backend, self.where)

    # -- steps ----------------------------------------------------------------------------
    def run(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "buy":
            _, units, price, fee_kind, parts = step
            self.trade(Side.BUY, units, price, fee_kind, parts)
        elif kind == "sell":
            _, percent, price, fee_kind, parts = step
            position = self.store.open_position(SYMBOL)
            if position is not None:
                # A fee in base leaves with the coins sold: keep room for it.
                room = position.amount / (1 + FEE_RATE) if fee_kind == "base" else position.amount
                units = int(room / STEP) * percent // 100
                if units > 0:
                    self.trade(Side.SELL, units, price, fee_kind, parts)
        elif kind == "redeliver" and self.fills:
            _, index, by_other = step
            again = self.fills[index % len(self.fills)]
            assert not record_fill(self.other if by_other else self.store, again, tradable=TRADABLE)
        elif kind == "race":
            self.store.race(step[1])
        elif kind == "restart":
            self.restart()

    def restart(self) -> None:
        self.store.close()
        self.store = open_racing(self.backend, self.where)

    def trade(self, side: Side, units: int, price: Decimal, fee_kind: str, parts: int) -> None:
        """One order of `units` steps, filled in `parts` trades."""
        order, parts = f"o{len(self.fills)}", min(parts, units)
        sizes = [units // parts + (1 if i < units % parts else 0) for i in range(parts)]
        for size in sizes:
            fill = self.fill(order, side, STEP * size, price, fee_kind)
            try:
                assert record_fill(self.store, fill, tradable=TRADABLE)
            except Crash:  # killed mid-recording; the next sync records the fill again
                self.restart()
                record_fill(self.store, fill, tradable=TRADABLE)
            self.fills.append(fill)
            self.move_wallet(fill)
            self.last_price = price

    def fill(self, order: str, side: Side, amount: Decimal, price: Decimal, kind: str) -> Fill:
        cost = amount * price
        currency, fee = {
            "base": ("BTC", amount * FEE_RATE),
            "quote": ("USDT", cost * FEE_RATE),
        }.get(kind, ("BNB", (cost * BNB_FEE_RATE / BNB_RATE).quantize(Decimal("1e-8"))))
        fill = Fill(
            trade_id=f"t{len(self.fills)}",
            client_order_id=order,
            symbol=SYMBOL,
            side=side,
            amount=amount,
            price=price,
            fee_cost=fee,
            fee_currency=currency,
            timestamp=T0 + len(self.fills) * TWO_HOURS,
        )
        rate: Callable[[str, str], Decimal | None] = (
            (lambda c, q: BNB_RATE) if kind == "bnb" else (lambda c, q: None)
        )
        return with_fee_rates(fill, rate)

    def move_wallet(self, fill: Fill) -> None:
        sign = 1 if fill.side is Side.BUY else -1
        self.wallet["BTC"] += sign * fill.amount
        self.wallet["USDT"] -= sign * fill.cost
        for currency, cost in fill.fees.items():
            self.wallet[currency] -= cost

    # -- invariants -----------------------------------------------------------------------
    def check(self) -> None:
        stored = self.store.list_fills()
        self.check_cash(stored)
        positions = self.store.list_positions()
        self.check_positions_are_their_fills(positions, stored)
        self.check_books(positions)
        self.check_pnl(positions)
        self.check_days(positions, stored)

    def check_cash(self, stored: list[Fill]) -> None:
        assert sorted(f.key for f in stored) == sorted(f.key for f in self.fills)
        cash = dict(START)
        for fill in stored:
            sign = 1 if fill.side is Side.BUY else -1
            cash["BTC"] += sign * fill.amount
            cash["USDT"] -= sign * fill.cost
            for currency, cost in fill.fees.items():
                cash[currency] -= cost
        assert cash == self.wallet

    def check_positions_are_their_fills(
        self, positions: list[Position], stored: list[Fill]
    ) -> None:
        by_key = {f.key: f for f in stored}
        applied = Counter(key for p in positions for key in p.fills)
        assert set(applied) == set(by_key) and set(applied.values()) <= {1}
        assert len([p for p in positions if p.status is PositionStatus.OPEN]) <= 1
        for position in positions:
            replayed: Position | None = None
            for key in position.fills:
                replayed, _ = apply_fill(replayed, by_key[key], tradable=TRADABLE)
            assert replayed is not None
            same = {"opened_at", "closed_at", "updated_at", "version", "high_water_mark"}
            assert replayed.model_dump(exclude=same) == position.model_dump(exclude=same)

    def check_books(self, positions: list[Position]) -> None:
        books = books_from_positions(positions, START)
        for currency, cash in self.wallet.items():
            expected = books[currency].expected_cash if currency in books else START[currency]
            assert abs(expected - cash) <= TOLERANCE, (currency, expected, cash)

    def check_pnl(self, positions: list[Position]) -> None:
        price = {"USDT": Decimal("1"), "BTC": self.last_price, "BNB": BNB_RATE}
        wallet_change = sum(((self.wallet[c] - START[c]) * price[c] for c in START), Decimal("0"))
        pnl = Decimal("0")
        for p in positions:
            pnl += p.realized_pnl - p.fees_paid + p.dust * self.last_price
            pnl -= p.fees_unvalued.get("BNB", Decimal("0")) * BNB_RATE  # spent, not in the PnL
            if p.status is PositionStatus.OPEN:
                pnl += p.unrealized_pnl(self.last_price)
        assert abs(pnl - wallet_change) <= TOLERANCE, (pnl, wallet_change)

    def check_days(self, positions: list[Position], stored: list[Fill]) -> None:
        days = [daily_pnl(self.store, day) for day in sorted({fill_day(f) for f in stored})]
        counted = [key for day in days if day for key in day["fill_keys"]]
        assert sorted(counted) == sorted(f.key for f in stored)
        assert sum(day["fills"] for day in days if day) == len(stored)
        usdt = [day["currencies"]["USDT"] for day in days if day]
        realized = sum((Decimal(u["realized_pnl"]) for u in usdt), Decimal("0"))
        fees = sum((Decimal(u["fees"]) for u in usdt), Decimal("0"))
        unvalued = sum(
            (Decimal((u.get("fees_not_valued") or {}).get("BNB", "0")) for u in usdt),
            Decimal("0"),
        )
        assert abs(realized - sum((p.realized_pnl for p in positions), Decimal("0"))) <= TOLERANCE
        assert abs(fees - sum((p.fees_paid for p in positions), Decimal("0"))) <= TOLERANCE
        assert unvalued == sum(
            (p.fees_unvalued.get("BNB", Decimal("0")) for p in positions), Decimal("0")
        )


@pytest.mark.parametrize("backend", ["sqlite", "mongo"])
@settings(max_examples=30, deadline=None)
@given(script=steps)
def test_the_books_stay_true_whatever_happens(backend: str, script: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "books.sqlite3" if backend == "sqlite" else new_mongo_db()
        books = Books(backend, where)
        try:
            for step in script:
                books.run(step)
                books.check()
        finally:
            books.store.close()
            books.other.close()
