"""Why a notification run stopped early; texts are scrubbed of the bot token."""

from __future__ import annotations

from kestrel.errors import KestrelError


class NotifyError(KestrelError):
    """Base of notification failures. Raised `from None` so that no chained httpx/PTB
    exception (whose text may hold a URL with the token) reaches a log or a Prefect state."""


class TelegramUnavailable(NotifyError):
    """Transient: Telegram or the network failed (5xx, timeouts, long 429). Retry later;
    nothing was lost: undelivered events stay in the outbox."""


class DeliveryBlocked(NotifyError):
    """Permanent until someone fixes the configuration: token rejected, bot blocked, chat not
    found. Retrying cannot help; the events wait in the outbox meanwhile."""
