"""Every error Kestrel raises on purpose, as one tree. Each says what went wrong and what to fix.

Catch the narrowest class that fits; `except KestrelError` means "anything Kestrel refused or
could not do", never a bug (a bug is any other exception).

    KestrelError
    ├── ConfigError                  a configured setting is invalid (field, value, what is allowed)
    ├── SettingsError                a live settings change refused (carries `.field`)
    ├── SecurityError                refused for safety: wrong mode, exchange not whitelisted, ...
    ├── InvalidTransition            an order status change the order lifecycle does not allow
    ├── InvalidMarketData            candles that cannot be trusted
    ├── MarketDataUnavailable        no trustworthy market data now: the run stands down
    ├── AnalystAbstained             an analyst declines to vote (`.kind`, `.detail`)
    ├── MissingRecording             a backtest lacks a recorded analyst answer (stops it)
    ├── LeaseBusy, LeaseLost         kestrel.execution.lease (they carry the Lease they are about)
    ├── StoreError
    │   ├── DuplicateClientOrderId
    │   ├── ConcurrentUpdate         a compare-and-set lost: re-read and retry
    │   └── NotFound
    ├── ExchangeError                final unless a subclass says otherwise
    │   ├── TransientExchangeError   network, rate limit, exchange down: retry with backoff
    │   │   └── OrderOutcomeUnknown  the order may be on the exchange: look, never resend now
    │   ├── OrderRejected            the exchange or our pre-checks refused: retrying cannot help
    │   │   ├── InsufficientFunds
    │   │   └── DuplicateOrderOnExchange
    │   ├── OrderNotFoundOnExchange  never read this as "canceled"
    │   └── InvalidExchangePayload   the exchange sent something we cannot trust
    ├── NotifyError                  the Telegram side; raised `from None` (no token in a chain)
    │   ├── TelegramUnavailable      transient: retry later, the outbox keeps the events
    │   ├── DeliveryBlocked          token rejected, bot blocked, chat not found: fix the config
    │   └── CommandError             a chat command with bad arguments; the text is the reply
    ├── ManualError                  a manual action that cannot run as asked
    │   ├── RequestIdConflict
    │   └── ConfirmationRefused      a REAL-mode confirmation token refused (`.reason`)
    └── CycleFailed, ManualActionFailed   flows/: a run that must show as failed in Prefect

ccxt's exceptions are not wrapped: the exchange clients (ccxt, and the paper exchange, whose
errors in kestrel.exchange.paper_errors are both the Kestrel class above and the ccxt class
Binance would raise) let them through, and kestrel.exchange.errors.classify sorts either kind
into transient / rejected / not found / duplicate by their classes. That classification is
what tasks/retry.py retries on and what kestrel.execution.orders decides with.

This module imports nothing but the standard library, so anything may import it.
"""

from __future__ import annotations

__all__ = [
    "AnalystAbstained",
    "CommandError",
    "ConcurrentUpdate",
    "ConfigError",
    "ConfirmationRefused",
    "DeliveryBlocked",
    "DuplicateClientOrderId",
    "DuplicateOrderOnExchange",
    "ExchangeError",
    "InsufficientFunds",
    "InvalidExchangePayload",
    "InvalidMarketData",
    "InvalidTransition",
    "KestrelError",
    "ManualError",
    "MarketDataUnavailable",
    "MissingRecording",
    "NotFound",
    "NotifyError",
    "OrderNotFoundOnExchange",
    "OrderOutcomeUnknown",
    "OrderRejected",
    "RequestIdConflict",
    "SecurityError",
    "SettingsError",
    "StoreError",
    "TelegramUnavailable",
    "TransientExchangeError",
]


class KestrelError(Exception):
    """Base class of every error Kestrel raises on purpose."""


# -- configuration and safety ---------------------------------------------------------------


class ConfigError(KestrelError):
    """A setting is invalid; the message names the field, the value and what is allowed."""


class SettingsError(KestrelError):
    """A refused live settings change; the message names the field, the value and what is
    allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class SecurityError(KestrelError):
    """Refused for safety: wrong mode, exchange not whitelisted, ..."""


# -- records ----------------------------------------------------------------------------------


class StoreError(KestrelError):
    """The store refused a write or has no such record."""


class DuplicateClientOrderId(StoreError):
    def __init__(self, client_order_id: str) -> None:
        super().__init__(f"an order with client_order_id {client_order_id!r} already exists")
        self.client_order_id = client_order_id


class ConcurrentUpdate(StoreError):
    """A compare-and-set lost: somebody else changed the record first. Re-read and retry."""


class NotFound(StoreError):
    """No record under that key."""


class InvalidTransition(KestrelError):
    """An order status change that the order lifecycle does not allow."""


# -- market data and analysis -----------------------------------------------------------------


class InvalidMarketData(KestrelError):
    """Candles that cannot be trusted: NaN, non-increasing timestamps, high < low, ..."""


class MarketDataUnavailable(KestrelError):
    """No trustworthy market data now (the live feed is down and there is no replay): a run
    stands down with this reason rather than trade on prices nobody observed."""


class AnalystAbstained(KestrelError):
    """An analyst declines to vote; `kind` is machine-readable (timeout, http_error, ...)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class MissingRecording(KestrelError):
    """A backtest asked for a recorded analyst answer that was never recorded, and the user
    chose `on_missing_answer="error"`: the backtest stops (never an abstention, never a call
    to the live service). The message names the analyst, the symbol and the candle."""


# -- the exchange -----------------------------------------------------------------------------


class ExchangeError(KestrelError):
    """Base of exchange failures, mirroring ccxt's split between transient and final errors.
    Final unless a subclass says otherwise."""


class TransientExchangeError(ExchangeError):
    """Network trouble, rate limit, exchange down: safe to retry with backoff."""


class OrderOutcomeUnknown(TransientExchangeError):
    """An order may be on the exchange but cannot be seen yet (a lost reply, eventual
    consistency). Never send it again now: retry later, when the exchange shows the truth."""


class OrderRejected(ExchangeError):
    """The exchange (or our pre-checks) refused the order: retrying cannot help."""


class InsufficientFunds(OrderRejected):
    """Not enough free balance for the order."""


class DuplicateOrderOnExchange(OrderRejected):
    """The exchange already has an order with this client order id: look it up, don't retry."""


class OrderNotFoundOnExchange(ExchangeError):
    """The exchange says it has no such order (yet): never read this as 'canceled'."""


class InvalidExchangePayload(ExchangeError):
    """The exchange sent a payload we cannot trust (the message names the field); it never
    turns into a status change."""


# -- Telegram -----------------------------------------------------------------------------------


class NotifyError(KestrelError):
    """Base of the Telegram side's failures. Raised `from None` so that no chained httpx/PTB
    exception (whose text may hold a URL with the token) reaches a log or a Prefect state."""


class TelegramUnavailable(NotifyError):
    """Transient: Telegram or the network failed (5xx, timeouts, long 429). Retry later;
    nothing was lost: undelivered events stay in the outbox."""


class DeliveryBlocked(NotifyError):
    """Permanent until someone fixes the configuration: token rejected, bot blocked, chat not
    found. Retrying cannot help; the events wait in the outbox meanwhile."""


class CommandError(NotifyError):
    """A chat command with bad arguments; the message is shown to the user."""


# -- manual trading -----------------------------------------------------------------------------


class ManualError(KestrelError):
    """A manual action that cannot run as asked; the message says why and what to do."""


class RequestIdConflict(ManualError):
    """The request id was already used for a different action."""


class ConfirmationRefused(ManualError):
    """A REAL-mode confirmation token that is unknown, used, expired or for another action.
    Nothing was placed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
