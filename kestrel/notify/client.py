"""Building the python-telegram-bot client, and reading its errors for delivery decisions.

The one question the outbox must answer after a failed sendMessage is "could Telegram have
delivered it?". PTB folds everything into a few exception classes; the httpx exception it
chains (`__cause__`) tells whether the request ever reached the server.

How long to wait before sending again is one tenacity wait (`TelegramBackoff`), shared by the
outbox and the command bot: what a 429 asks for, nothing before a plain-text resend, else
exponential backoff. (python-telegram-bot's AIORateLimiter would throttle ahead of time, but
it needs the `aiolimiter` package, which is not installed.)
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any

import httpx
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning
from tenacity import RetryCallState
from tenacity.wait import wait_base, wait_exponential

from kestrel.notify.redact import register_token
from kestrel.notify.settings import TelegramSettings


class Failure(StrEnum):
    RATE_LIMITED = "rate_limited"  # 429: Telegram refused, nothing sent; wait retry_after
    NOT_SENT = "not_sent"  # Telegram answered an error, or we never connected: safe to retry
    UNKNOWN = "unknown"  # request may have been processed (read timeout, dropped connection)
    BAD_MARKUP = "bad_markup"  # 400 can't parse entities: nothing sent; resend as plain text
    REFUSED = "refused"  # 400 for this message only: retrying the same request cannot help
    CHAT_UNAVAILABLE = "chat_unavailable"  # blocked, kicked, chat not found: config problem
    BAD_TOKEN = "bad_token"  # 401/404: the token is wrong


MAX_BACKOFF_S = 30.0
type Sleep = Callable[[float], Awaitable[Any]]  # asyncio.sleep, or a test's stand-in

# Failures of these httpx kinds happen before a complete request reached the server.
_BEFORE_SERVER = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout)


def classify(exc: TelegramError) -> Failure:
    """Decide whether a failed sendMessage may have delivered its message."""
    if isinstance(exc, RetryAfter):
        return Failure.RATE_LIMITED
    if isinstance(exc, InvalidToken):
        return Failure.BAD_TOKEN
    if isinstance(exc, Forbidden | ChatMigrated):
        return Failure.CHAT_UNAVAILABLE
    if isinstance(exc, BadRequest):
        text = str(exc).lower()
        if "parse entities" in text:
            return Failure.BAD_MARKUP
        if "chat not found" in text or "chat_id is empty" in text:
            return Failure.CHAT_UNAVAILABLE
        return Failure.REFUSED
    if isinstance(exc, NetworkError):  # includes TimedOut
        cause = exc.__cause__
        if cause is None or isinstance(cause, TelegramError):
            return Failure.NOT_SENT  # PTB raised it from the server's error answer (5xx, 409)
        if isinstance(cause, _BEFORE_SERVER):
            return Failure.NOT_SENT
        return Failure.UNKNOWN
    return Failure.UNKNOWN


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds, whichever type PTB hands out (int now, timedelta in its next major)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramBackoff(wait_base):
    """tenacity wait after a failed Telegram request: as long as a 429 asks (retry_after),
    none before a resend as plain text (Telegram refused only the markup), else exponential
    from `backoff_s` (1x, 2x, 4x, ...) capped at MAX_BACKOFF_S."""

    def __init__(self, backoff_s: float) -> None:
        self._exponential = wait_exponential(multiplier=backoff_s, max=MAX_BACKOFF_S)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, RetryAfter):
            return retry_after_seconds(exc)
        if isinstance(exc, TelegramError) and classify(exc) is Failure.BAD_MARKUP:
            return 0.0
        return float(self._exponential(retry_state))


def make_requests(settings: TelegramSettings) -> tuple[HTTPXRequest, HTTPXRequest]:
    """(requests, getUpdates requests) with bounded timeouts; PTB adds the long-poll timeout
    to the read timeout of getUpdates itself."""
    timeout = settings.request_timeout_s

    def build() -> HTTPXRequest:
        return HTTPXRequest(
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        )

    return build(), build()


def make_rate_limiter() -> AIORateLimiter:
    """python-telegram-bot's own limiter keeps sends under Telegram's documented limits (30
    messages a second overall, 20 a minute per group) before a 429 can happen. It never
    retries (`max_retries=0`): a 429 that still comes goes back to our tenacity loop, which
    renews the outbox claim for the wait (TelegramBackoff)."""
    return AIORateLimiter(max_retries=0)


def make_bot(settings: TelegramSettings, token: str | None = None) -> ExtBot[int]:
    """A PTB bot for `settings.api_base_url`, rate limited by PTB's AIORateLimiter. The token
    is registered with the log scrubber before the first request can log a URL containing
    it."""
    secret = token or settings.token()
    register_token(secret)
    request, updates_request = make_requests(settings)
    return ExtBot(
        secret,
        base_url=settings.api_base_url,
        request=request,
        get_updates_request=updates_request,
        rate_limiter=make_rate_limiter(),
    )
