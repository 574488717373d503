"""Keep the bot token out of logs, events, messages and exception texts.

PTB puts the token in every request URL (`.../bot<token>/sendMessage`), httpx logs those URLs
at INFO, and PTB's InvalidToken message quotes the token. A filter on one logger would miss
child loggers ('httpcore.http11', 'telegram.ext.Updater', ...), so the scrubber wraps the
log-record factory: every record, from any logger, is scrubbed once, at creation, before any
handler (console, file, Prefect's API log shipper) can see it.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

REDACTED = "<telegram-token>"

_tokens: set[str] = set()
_lock = threading.Lock()
_installed = False


def redact(text: str, tokens: set[str] | None = None) -> str:
    """The text with every known token (and its secret half) replaced."""
    for token in tokens if tokens is not None else set(_tokens):
        if not token:
            continue
        text = text.replace(token, REDACTED)
        # "<bot id>:<secret>": the secret half alone is just as dangerous.
        _, _, secret = token.partition(":")
        if len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return text


def register_token(token: str) -> None:
    """Remember a token to scrub and make sure the log-record scrubber is installed."""
    global _installed
    with _lock:
        if token:
            _tokens.add(token)
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _scrub(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


def _scrub(record: logging.LogRecord) -> None:
    if not _tokens:
        return
    tokens = set(_tokens)
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format: leave it for logging to report
        return
    clean = redact(message, tokens)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info))
        record.exc_text = redact(text, tokens).rstrip("\n")
        record.exc_info = None  # so no handler can format the unscrubbed original again
    if record.stack_info:
        record.stack_info = redact(record.stack_info, tokens)


def safe_error(exc: BaseException) -> str:
    """`Type: message` with tokens removed, for events, delivery records and re-raising."""
    return redact(f"{type(exc).__name__}: {exc}")
