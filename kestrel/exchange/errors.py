"""One vocabulary for exchange failures, whichever client raised them (ccxt or paper).

The classes are in kestrel.errors; this module sorts a failure into what to do about it. A
Kestrel exchange error says so by its class; a ccxt exception is sorted by ccxt's class tree
(`isinstance`, most specific first), never by its name or its message: teaching a client an
exchange message ccxt does not map (see `teach_ccxt_client`) is how a message becomes a class.
The paper exchange raises classes that are both (kestrel.exchange.paper_errors).

ccxt takes seconds to import, so classifying never imports it: an exception of ccxt's can
only exist once ccxt is loaded.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from functools import cache
from typing import Any

from kestrel.errors import (
    DuplicateOrderOnExchange,
    OrderNotFoundOnExchange,
    OrderRejected,
    TransientExchangeError,
)

__all__ = ["FailureKind", "classify", "is_transient", "teach_ccxt_client"]


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # retry with backoff: the request may not have happened
    REJECTED = "rejected"  # final: the exchange refused; retrying cannot help
    NOT_FOUND = "not_found"  # the exchange does not know the order (yet)
    DUPLICATE = "duplicate"  # the client order id exists already: look it up
    UNKNOWN = "unknown"  # final for this attempt; the outcome must be looked up


type Families = tuple[tuple[type[BaseException], FailureKind], ...]

# Most specific first, as in ccxt: a duplicate and a missing order are both InvalidOrders.
_KESTREL: Families = (
    (TransientExchangeError, FailureKind.TRANSIENT),
    (DuplicateOrderOnExchange, FailureKind.DUPLICATE),
    (OrderNotFoundOnExchange, FailureKind.NOT_FOUND),
    (OrderRejected, FailureKind.REJECTED),
)


@cache
def _ccxt_families() -> Families:
    """ccxt's exception families, most specific first. Transient: the NetworkError family
    (RequestTimeout, DDoSProtection, RateLimitExceeded, ExchangeNotAvailable, OnMaintenance,
    InvalidNonce): the request failed before the exchange acted on it. Rejected: the request
    itself is wrong for this account or market, so sending it again cannot help. Anything
    else ccxt raises (BadResponse, a bare ExchangeError, ...) is UNKNOWN."""
    import ccxt

    return (
        (ccxt.DuplicateOrderId, FailureKind.DUPLICATE),
        (ccxt.OrderNotFound, FailureKind.NOT_FOUND),
        (ccxt.NetworkError, FailureKind.TRANSIENT),
        (ccxt.InsufficientFunds, FailureKind.REJECTED),
        (ccxt.InvalidOrder, FailureKind.REJECTED),
        (ccxt.BadRequest, FailureKind.REJECTED),  # BadSymbol too
        (ccxt.ArgumentsRequired, FailureKind.REJECTED),
        (ccxt.AuthenticationError, FailureKind.REJECTED),  # PermissionDenied, AccountSuspended
        (ccxt.NotSupported, FailureKind.REJECTED),
        (ccxt.MarginModeAlreadySet, FailureKind.REJECTED),
    )


def _kind(exc: BaseException, families: Families) -> FailureKind | None:
    return next((kind for cls, kind in families if isinstance(exc, cls)), None)


def classify(exc: BaseException) -> FailureKind:
    """What a failed exchange call means for the order: retry, final, look it up."""
    kind = _kind(exc, _KESTREL)
    if kind is None and "ccxt" in sys.modules:  # nothing ccxt raises exists before it loads
        kind = _kind(exc, _ccxt_families())
    if kind is None and isinstance(exc, TimeoutError | ConnectionError):
        kind = FailureKind.TRANSIENT
    return kind or FailureKind.UNKNOWN


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is FailureKind.TRANSIENT


def teach_ccxt_client(client: Any) -> None:
    """Make `client` raise ccxt's precise class for exchange messages that ccxt maps to a
    broader one, through ccxt's own `exceptions['exact']` table (matched before error codes),
    so that `classify` needs only the class. Binance answers a reused clientOrderId with -2010
    "Duplicate order sent.", and ccxt maps -2010 (also a refused order) to InvalidOrder."""
    import ccxt

    if str(getattr(client, "id", "")).startswith("binance"):
        exact = client.exceptions.setdefault("exact", {})
        exact["Duplicate order sent."] = ccxt.DuplicateOrderId
