"""One vocabulary for exchange failures, whichever client raised them (ccxt or paper).

ccxt is not imported here (it is slow to import); its exception classes are recognised by
name along the MRO, which is stable across ccxt versions.
"""

from __future__ import annotations

from enum import StrEnum

from kestrel.errors import (
    DuplicateOrderOnExchange,
    OrderNotFoundOnExchange,
    OrderRejected,
    TransientExchangeError,
)


class OrderOutcomeUnknown(TransientExchangeError):
    """An order may be on the exchange but cannot be seen yet (a lost reply, eventual
    consistency). Never send it again now: retry later, when the exchange shows the truth."""


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # retry with backoff: the request may not have happened
    REJECTED = "rejected"  # final: the exchange refused; retrying cannot help
    NOT_FOUND = "not_found"  # the exchange does not know the order (yet)
    DUPLICATE = "duplicate"  # the client order id exists already: look it up
    UNKNOWN = "unknown"  # final for this attempt; the outcome must be looked up


_TRANSIENT = {
    "NetworkError",
    "RequestTimeout",
    "ExchangeNotAvailable",
    "DDoSProtection",
    "RateLimitExceeded",
    "OnMaintenance",
    "InvalidNonce",
}
_REJECTED = {
    "InsufficientFunds",
    "InvalidOrder",
    "BadSymbol",
    "BadRequest",
    "ArgumentsRequired",
    "AuthenticationError",
    "PermissionDenied",
    "AccountSuspended",
    "NotSupported",
    "MarginModeAlreadySet",
}


def classify(exc: BaseException) -> FailureKind:
    if isinstance(exc, TransientExchangeError):
        return FailureKind.TRANSIENT
    if isinstance(exc, DuplicateOrderOnExchange):
        return FailureKind.DUPLICATE
    if isinstance(exc, OrderNotFoundOnExchange):
        return FailureKind.NOT_FOUND
    if isinstance(exc, OrderRejected):
        return FailureKind.REJECTED
    names = [cls.__name__ for cls in type(exc).__mro__]
    # Most specific first: OrderNotFound is an InvalidOrder in ccxt.
    if "DuplicateOrderId" in names or "duplicate order" in str(exc).lower():
        return FailureKind.DUPLICATE
    if "OrderNotFound" in names:
        return FailureKind.NOT_FOUND
    if any(name in _TRANSIENT for name in names):
        return FailureKind.TRANSIENT
    if any(name in _REJECTED for name in names):
        return FailureKind.REJECTED
    if isinstance(exc, TimeoutError | ConnectionError):
        return FailureKind.TRANSIENT
    return FailureKind.UNKNOWN


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is FailureKind.TRANSIENT
