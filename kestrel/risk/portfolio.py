"""Valuing the book in USD: a currency's USD price, the account's equity, and exposure.

Prices come from the exchange (ticker <C>/USDT, USDT/<C>, or through a bridge currency such as
<C>/BTC and BTC/USDT), else from an open position quoted in a currency we can price.
Everything is looked up at most once per assessment (PriceBook caches), and a currency that
cannot be priced is named in `unpriced` rather than silently valued at zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from pydantic import BaseModel, Field

from kestrel.exchange.base import ExchangeClient
from kestrel.models import Order, OrderStatus, Position, Side
from kestrel.money import to_decimal

USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI"})
# Currencies a conversion may pass through when no pair links two currencies directly.
BRIDGES = ("USDT", "USDC", "BTC", "ETH", "BNB")
ZERO = Decimal("0")


class PriceBook:
    """Last prices of symbols and USD rates of currencies, each fetched once."""

    def __init__(
        self,
        exchange: ExchangeClient,
        positions: Iterable[Position] = (),
        known: dict[str, Decimal] | None = None,
    ) -> None:
        self.exchange = exchange
        self.positions = list(positions)
        self._symbols: dict[str, Decimal | None] = dict(known or {})
        self._usd: dict[str, Decimal | None] = {}

    def symbol_price(self, symbol: str) -> Decimal | None:
        if symbol not in self._symbols:
            try:
                last = self.exchange.fetch_ticker(symbol).get("last")
                self._symbols[symbol] = to_decimal(last) if last else None
            except Exception:  # not listed, no data in a replay, network: simply unknown
                self._symbols[symbol] = None
        return self._symbols[symbol]

    def usd(self, currency: str, _seen: frozenset[str] = frozenset()) -> Decimal | None:
        if currency in USD_LIKE:
            return Decimal("1")
        if currency in self._usd:
            return self._usd[currency]
        self._usd[currency] = None  # guards cycles while we look
        rate = self.rate(currency, "USDT")
        if rate is None:
            for position in self.positions:
                base, _, quote = position.symbol.partition("/")
                if base != currency or quote in _seen | {currency}:
                    continue
                price = self.symbol_price(position.symbol) or position.last_price
                quote_rate = self.usd(quote, _seen | {currency})
                if price is not None and quote_rate is not None:
                    rate = price * quote_rate
                    break
        self._usd[currency] = rate
        return rate

    def rate(self, source: str, target: str) -> Decimal | None:
        """How much `target` one `source` is worth, by the first ticker path the exchange
        offers: the pair SOURCE/TARGET, the inverse pair TARGET/SOURCE, or through one of
        BRIDGES (each leg direct or inverse). USD-like currencies count as one another, as
        everywhere in the book. None: no path."""
        direct = self._leg(source, target)
        if direct is not None:
            return direct
        for bridge in BRIDGES:
            if bridge in (source, target):
                continue
            first = self._leg(source, bridge)
            second = self._leg(bridge, target) if first is not None else None
            if first is not None and second is not None:
                return first * second
        return None

    def _leg(self, source: str, target: str) -> Decimal | None:
        if source == target or (source in USD_LIKE and target in USD_LIKE):
            return Decimal("1")
        price = self.symbol_price(f"{source}/{target}")
        if price:
            return price
        inverse = self.symbol_price(f"{target}/{source}")
        return 1 / inverse if inverse else None


class Valuation(BaseModel):
    equity_usd: Decimal = ZERO
    unpriced: list[str] = Field(default_factory=list)

    @property
    def known(self) -> Decimal | None:
        """The equity, or None when something is held and nothing of it could be valued
        (0 would claim an empty account)."""
        return None if self.unpriced and not self.equity_usd else self.equity_usd


def equity_usd(balances: dict[str, Decimal], usd: Callable[[str], Decimal | None]) -> Valuation:
    """Total balances valued in USD (free and in orders)."""
    total = ZERO
    unpriced = []
    for currency, amount in sorted(balances.items()):
        if amount == 0:
            continue
        rate = usd(currency)
        if rate is None:
            unpriced.append(currency)
            continue
        total += amount * rate
    return Valuation(equity_usd=total, unpriced=unpriced)


def order_price(order: Order, book: PriceBook) -> Decimal | None:
    """What a live order is worth per unit: its limit price, the price it expected, its
    average fill, else the market."""
    for value in (order.price, getattr(order, "reference_price", None), order.average_price):
        if value is not None and value > 0:
            return Decimal(value)
    return book.symbol_price(order.symbol)


def exposure_usd(
    positions: Iterable[Position],
    live_orders: Iterable[Order],
    book: PriceBook,
    value_in: Callable[[str], Decimal | None] | None = None,
) -> dict[str, Decimal]:
    """USD held or being bought per symbol: positions marked at the current (else last,
    else entry) price, plus the unfilled part of live buy orders. `value_in` values a
    currency in another unit than USD (e.g. a pair's quote when it has no USD price)."""
    usd = value_in or book.usd
    exposure: dict[str, Decimal] = {}
    for position in positions:
        quote = position.symbol.partition("/")[2]
        rate = usd(quote)
        price = book.symbol_price(position.symbol) or position.last_price
        price = price or position.avg_entry_price
        if rate is None:
            continue
        exposure[position.symbol] = exposure.get(position.symbol, ZERO) + (
            position.amount * price * rate
        )
    for order in live_orders:
        if order.side is not Side.BUY or order.status is OrderStatus.FILLED:
            continue
        rate = usd(order.symbol.partition("/")[2])
        price = order_price(order, book)
        if rate is None or price is None:
            continue
        exposure[order.symbol] = exposure.get(order.symbol, ZERO) + order.remaining * price * rate
    return exposure
