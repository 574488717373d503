"""The paper exchange's errors: Kestrel's classes AND the ccxt classes Binance's answers
become, so code written against either (`except OrderRejected`, `except ccxt.InvalidOrder`,
`classify(exc)`) treats paper exactly as it would treat Binance. They are the leaves of the
exchange branch of the tree drawn in kestrel.errors; they live here because they need ccxt."""

from __future__ import annotations

import ccxt

from kestrel.errors import (
    DuplicateOrderOnExchange,
    InsufficientFunds,
    OrderNotFoundOnExchange,
    OrderRejected,
)


class PaperOrderRejected(OrderRejected, ccxt.InvalidOrder):
    """Precision, minimums, unsupported order types: Binance's -1013 / -2010 family."""


class PaperBadSymbol(OrderRejected, ccxt.BadSymbol):
    """The paper exchange has no such market."""


class PaperInsufficientFunds(InsufficientFunds, ccxt.InsufficientFunds):
    """Not enough free balance; nothing was reserved or changed."""


class PaperDuplicateOrder(DuplicateOrderOnExchange, ccxt.DuplicateOrderId):
    """Binance's "Duplicate order sent.": this clientOrderId already names an order."""


class PaperOrderNotFound(OrderNotFoundOnExchange, ccxt.OrderNotFound):
    """No such order, or (for cancel) no such OPEN order, like Binance's "Unknown order sent."."""
