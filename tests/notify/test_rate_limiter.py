"""Telegram sends go through python-telegram-bot's AIORateLimiter (issue 13 item 3): the
outbox's bot and the command bot's application are both built with it, and it never retries
on its own, so a 429 still reaches our tenacity loop (tests/notify/test_rate_limits.py)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from telegram.ext import AIORateLimiter

from kestrel.mode import TradingMode
from kestrel.notify.bot import build_application
from kestrel.notify.client import make_bot
from kestrel.notify.settings import TelegramSettings
from kestrel.store.sqlite import SQLiteStore


def _settings() -> TelegramSettings:
    return TelegramSettings(
        bot_token=SecretStr("123:abc"), notify_chat_id=1, api_base_url="http://127.0.0.1:9/bot"
    )


def test_the_outbox_bot_is_rate_limited_by_ptb_and_leaves_retries_to_us() -> None:
    bot = make_bot(_settings())
    limiter = bot.rate_limiter
    assert isinstance(limiter, AIORateLimiter)
    assert limiter._max_retries == 0  # a 429 goes back to the outbox, which renews its claim


def test_the_command_bot_application_is_rate_limited(tmp_path: Path) -> None:
    app, _ = build_application(
        _settings(), SQLiteStore(tmp_path / "k.db", TradingMode.DEMO), token="123:abc"
    )
    assert isinstance(app.bot.rate_limiter, AIORateLimiter)
