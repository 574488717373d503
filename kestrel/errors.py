"""Exceptions shared across Kestrel. Each says what went wrong and what to fix."""

from __future__ import annotations


class KestrelError(Exception):
    """Base class of every error Kestrel raises on purpose."""


class ConfigError(KestrelError):
    """A setting is invalid; the message names the field, the value and what is allowed."""


class StoreError(KestrelError):
    pass


class DuplicateClientOrderId(StoreError):
    def __init__(self, client_order_id: str) -> None:
        super().__init__(f"an order with client_order_id {client_order_id!r} already exists")
        self.client_order_id = client_order_id


class ConcurrentUpdate(StoreError):
    """A compare-and-set lost: somebody else changed the record first. Re-read and retry."""


class NotFound(StoreError):
    pass


class InvalidTransition(KestrelError):
    """An order status change that the order lifecycle does not allow."""


class ExchangeError(KestrelError):
    """Base of exchange failures, mirroring ccxt's split between transient and final errors."""


class TransientExchangeError(ExchangeError):
    """Network trouble, rate limit, exchange down: safe to retry with backoff."""


class OrderRejected(ExchangeError):
    """The exchange (or our pre-checks) refused the order: retrying cannot help."""


class InsufficientFunds(OrderRejected):
    pass


class InvalidMarketData(KestrelError):
    """Candles that cannot be trusted: NaN, non-increasing timestamps, high < low, ..."""


class OrderNotFoundOnExchange(ExchangeError):
    """The exchange says it has no such order (yet): never read this as 'canceled'."""


class DuplicateOrderOnExchange(OrderRejected):
    """The exchange already has an order with this client order id: look it up, don't retry."""
