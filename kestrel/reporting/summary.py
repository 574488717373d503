"""The session summary: orders, fills, positions, PnL, fees and equity, reconciled per
currency against the wallet's actual balances.

For each currency C the books must satisfy, exactly (`books_from_positions`):
    cash(C) = start(C)
              + sum over pairs quoted in C of (realized PnL - fees - cost of what is still held)
              + sum over pairs with base C of the amount still held
              - fees charged in C on pairs where C is neither base nor quote (BNB)
The fees of a pair's book are its positions' fees in quote and base valued at fill time (a
buy's fee in base is in the cost of what is held instead, and what is held is net of it); a
fee in a third currency is counted in that currency's book, at its cost. An unsellable
remainder ("dust") is written off at cost in the realized PnL and still held.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.models import Position, PositionStatus
from kestrel.money import to_decimal
from kestrel.runtime import Runtime

TOLERANCE = Decimal("0.00000001")


class CurrencyBook(BaseModel):
    currency: str
    starting: Decimal
    realized_pnl: Decimal = Decimal("0")
    fees: Decimal = Decimal("0")
    held_cost: Decimal = Decimal("0")
    held_amount: Decimal = Decimal("0")
    unrealized_pnl: Decimal = Decimal("0")
    expected_cash: Decimal = Decimal("0")
    cash: Decimal = Decimal("0")

    @property
    def difference(self) -> Decimal:
        return self.cash - self.expected_cash

    @property
    def reconciled(self) -> bool:
        return abs(self.difference) <= TOLERANCE


class PositionLine(BaseModel):
    symbol: str
    amount: Decimal
    avg_entry_price: Decimal
    last_price: Decimal
    unrealized_pnl: Decimal


class SessionSummary(BaseModel):
    mode: str
    market_data: str
    cycles: int
    orders_by_status: dict[str, int]
    fills: int
    open_positions: list[PositionLine] = Field(default_factory=list)
    books: list[CurrencyBook]

    @property
    def reconciled(self) -> bool:
        return all(book.reconciled for book in self.books)


def books_from_positions(
    positions: Iterable[Position], starting: Mapping[str, Decimal]
) -> dict[str, CurrencyBook]:
    """What the positions say each currency's cash must be (the formula in the module
    docstring); cash and unrealized PnL are left for the caller to fill in."""
    books: dict[str, CurrencyBook] = {}

    def book(currency: str) -> CurrencyBook:
        if currency not in books:
            books[currency] = CurrencyBook(
                currency=currency, starting=starting.get(currency, Decimal("0"))
            )
        return books[currency]

    for currency in starting:
        book(currency)
    for position in positions:
        base, _, quote = position.symbol.partition("/")
        pair = book(quote)
        pair.realized_pnl += position.realized_pnl
        pair.fees += sum(
            (position.fee_values.get(c, Decimal("0")) for c in (base, quote)), Decimal("0")
        )
        for currency, cost in position.fees.items():
            if currency not in (base, quote):
                book(currency).fees += cost
        book(base).held_amount += position.dust  # written off at cost, still in the wallet
        if position.status is PositionStatus.OPEN:
            pair.held_cost += position.entry_cost
            book(base).held_amount += position.amount
    for each in books.values():
        each.expected_cash = (
            each.starting + each.realized_pnl - each.fees - each.held_cost + each.held_amount
        )
    return books


def summarize(rt: Runtime, starting: dict[str, Decimal], cycles: int) -> SessionSummary:
    store = rt.store
    positions = store.list_positions()
    balance = rt.exchange.fetch_balance()
    books = books_from_positions(positions, starting)
    lines = []
    for position in positions:
        if position.status is PositionStatus.OPEN:
            line = _mark(rt, position)
            lines.append(line)
            books[position.symbol.partition("/")[2]].unrealized_pnl += line.unrealized_pnl
    for book in books.values():
        book.cash = to_decimal((balance.get(book.currency) or {}).get("total") or 0)
    statuses = Counter(order.status.value for order in store.list_orders())
    return SessionSummary(
        mode=rt.mode.value,
        market_data=rt.feed.label if rt.feed is not None else f"ccxt:{rt.exchange.id}",
        cycles=cycles,
        orders_by_status=dict(sorted(statuses.items())),
        fills=len(store.list_fills()),
        open_positions=lines,
        books=sorted(books.values(), key=lambda b: b.currency),
    )


def _mark(rt: Runtime, position: Position) -> PositionLine:
    price = to_decimal(rt.exchange.fetch_ticker(position.symbol)["last"])
    return PositionLine(
        symbol=position.symbol,
        amount=position.amount,
        avg_entry_price=position.avg_entry_price,
        last_price=price,
        unrealized_pnl=position.unrealized_pnl(price),
    )


def equity_by_currency(summary: SessionSummary) -> dict[str, Decimal]:
    """Cash plus open positions at market, per quote currency (base holdings valued there)."""
    equity: dict[str, Decimal] = defaultdict(Decimal)
    for book in summary.books:
        equity[book.currency] += book.cash
    for line in summary.open_positions:
        base, _, quote = line.symbol.partition("/")
        equity[quote] += line.amount * line.last_price
        equity[base] -= line.amount
    return dict(equity)


def summary_rows(summary: SessionSummary) -> list[dict[str, str]]:
    """One row per currency: the table shown at the end of the demo and in the artifact."""
    equity = equity_by_currency(summary)
    return [
        {
            "currency": book.currency,
            "market_data": summary.market_data,  # SIMULATED (seed 7) when it is invented
            "starting": _fmt(book.starting),
            "realized_pnl": _fmt(book.realized_pnl),
            "fees": _fmt(book.fees),
            "held_cost": _fmt(book.held_cost),
            "unrealized_pnl": _fmt(book.unrealized_pnl),
            "expected_cash": _fmt(book.expected_cash),
            "cash": _fmt(book.cash),
            "equity": _fmt(equity.get(book.currency, book.cash)),
            "reconciled": "yes" if book.reconciled else f"NO (off by {book.difference})",
        }
        for book in summary.books
    ]


def _fmt(value: Decimal) -> str:
    """Exact when the value has at most 12 decimals (balances, fees, PnL always do); only a
    derived average carried to 28 digits is rounded, for display."""
    if value.as_tuple().exponent < -12:  # type: ignore[operator]
        value = value.quantize(Decimal("1e-12"))
    text = f"{value:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"
