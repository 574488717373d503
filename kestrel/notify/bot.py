"""The command bot: python-telegram-bot long polling, run for a bounded time.

Bounded because it runs as a deployment (a flow run must end) and in tests; `kestrel
telegram` runs it until SIGINT/SIGTERM. Every update passes a gatekeeper first: chats not in
`command_chat_ids` get a refusal and a SECURITY event, and nothing else runs for them. The
handlers only parse and render; the work is in kestrel.notify.commands.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from telegram import Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from kestrel.errors import DeliveryBlocked, TelegramUnavailable
from kestrel.models import utcnow
from kestrel.notify.client import (
    Failure,
    Sleep,
    TelegramBackoff,
    classify,
    make_rate_limiter,
    make_requests,
    retry_after_seconds,
)
from kestrel.notify.commands import (
    COMMANDS,
    Caller,
    CommandContext,
    record_refusal,
    refusal_card,
    run_command,
)
from kestrel.notify.redact import register_token, safe_error
from kestrel.notify.render import Card, format_card
from kestrel.notify.settings import ParseMode, TelegramSettings
from kestrel.store.base import Store

log = logging.getLogger(__name__)

# A late /stop is still the safe direction; a late /resume (queued while the bot was down)
# could restart trading nobody is watching, so only /stop runs whatever its age.
RUNS_WHEN_STALE = frozenset({"stop"})
REPLY_ATTEMPTS = 3
Balances = Callable[[], Mapping[str, Decimal]]


@dataclass
class BotRunReport:
    handled: int = 0
    refused: int = 0
    ignored_stale: int = 0


class CommandBot:
    """The handlers of one bot run, bound to one store and its settings."""

    def __init__(
        self,
        store: Store,
        settings: TelegramSettings,
        balances: Balances | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`sleep` is injectable so tests can skip a retry's wait without waiting."""
        self.store, self.settings, self.balances = store, settings, balances
        self.sleep = sleep
        self.allowed = frozenset(settings.command_chat_ids)
        self.report = BotRunReport()

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        app.add_handler(MessageHandler(filters.COMMAND, self.command))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.hint))
        app.add_error_handler(self.on_error)

    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Refuse (and record) anything from a chat that may not command the bot."""
        chat = update.effective_chat
        if chat is not None and chat.id in self.allowed:
            return
        message = update.effective_message
        caller = _caller(update)
        text = message.text if message is not None and message.text else ""
        record_refusal(self.store, caller, text, update.update_id)
        self.report.refused += 1
        log.warning("refused a Telegram message from unauthorised chat %s", caller.chat_id)
        if message is not None:
            await self.reply(update, refusal_card())
        raise ApplicationHandlerStop

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        head, *args = message.text.split()
        name = head[1:].split("@", 1)[0].lower()
        age = utcnow() - message.date
        if age > timedelta(seconds=self.settings.command_max_age_s) and (
            name not in RUNS_WHEN_STALE
        ):
            self.report.ignored_stale += 1
            await self.reply(
                update,
                Card(
                    title=f"Ignored /{name}",
                    icon="⌛",
                    lines=(f"It was sent {int(age.total_seconds())}s ago; send it again.",),
                ),
            )
            return
        ctx = CommandContext(
            store=self.store,
            caller=_caller(update),
            zone=self.settings.zone,
            balances=self.balances,
        )
        card = run_command(ctx, name, args)
        self.report.handled += 1
        await self.reply(update, card)

    async def hint(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, Card(title="Send /help for the commands", icon="🦅"))

    async def reply(self, update: Update, card: Card) -> None:
        """Answer in the chat; honours 429 retry_after and retries answers Telegram provably
        did not take (a lost reply is retried by the user; a duplicate would confuse). The
        waits are tenacity's, through `self.sleep`."""
        message = update.effective_message
        if message is None:
            return
        mode: ParseMode | None = self.settings.parse_mode

        async def send() -> None:
            nonlocal mode
            try:
                await message.reply_text(format_card(card, mode), parse_mode=mode)
            except TelegramError as exc:
                if mode is None or classify(exc) is not Failure.BAD_MARKUP:
                    raise
                log.error("reply markup refused (%s); sending plain text", safe_error(exc))
                mode = None
                raise

        retrying = AsyncRetrying(
            stop=stop_after_attempt(REPLY_ATTEMPTS),
            wait=TelegramBackoff(self.settings.retry_backoff_s),
            retry=retry_if_exception(self._worth_another_reply),
            sleep=self.sleep,
            reraise=True,
        )
        await retrying(send)

    def _worth_another_reply(self, exc: BaseException) -> bool:
        """Only what Telegram provably did not take: a 429 we may wait for, an error answer
        or no connection, a refused markup (the next attempt is plain text)."""
        if not isinstance(exc, TelegramError):
            return False
        failure = classify(exc)
        if failure is Failure.RATE_LIMITED and isinstance(exc, RetryAfter):
            return retry_after_seconds(exc) <= self.settings.max_retry_after_s
        return failure in (Failure.NOT_SENT, Failure.BAD_MARKUP)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.error("Telegram handler failed: %s", safe_error(error) if error else "unknown")


def _caller(update: Update) -> Caller:
    chat = update.effective_chat
    user = update.effective_user
    name = (user.username or str(user.id)) if user is not None else "?"
    return Caller(chat_id=chat.id if chat is not None else 0, user=name)


def build_application(
    settings: TelegramSettings,
    store: Store,
    *,
    token: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> tuple[Application[Any, Any, Any, Any, Any, Any], CommandBot]:
    secret = token or settings.token()
    register_token(secret)
    request, updates_request = make_requests(settings)
    app = (
        ApplicationBuilder()
        .token(secret)
        .base_url(settings.api_base_url)
        .request(request)
        .get_updates_request(updates_request)
        .rate_limiter(make_rate_limiter())
        .build()
    )
    bot = CommandBot(store, settings, sleep=sleep)
    bot.install(app)
    return app, bot


async def run_bot_async(
    settings: TelegramSettings,
    store: Store,
    stop_after_s: float | None = None,
    *,
    stop_event: threading.Event | None = None,
    balances: Balances | None = None,
    token: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> BotRunReport:
    """Poll until `stop_after_s` passes, `stop_event` is set, or SIGINT/SIGTERM. `sleep` is
    how a reply waits before another attempt (injectable for tests)."""
    app, handlers = build_application(settings, store, token=token, sleep=sleep)
    handlers.balances = balances
    try:
        async with app:
            await app.bot.set_my_commands(
                [(name, spec.description) for name, spec in COMMANDS.items()]
            )
            assert app.updater is not None
            await app.updater.start_polling(
                timeout=settings.poll_timeout_s, allowed_updates=[Update.MESSAGE]
            )
            await app.start()
            try:
                await _wait(stop_after_s, stop_event)
            finally:
                await app.updater.stop()
                await app.stop()
    except TelegramError as exc:
        if classify(exc) in (Failure.BAD_TOKEN, Failure.CHAT_UNAVAILABLE):
            raise DeliveryBlocked(safe_error(exc)) from None
        raise TelegramUnavailable(safe_error(exc)) from None
    return handlers.report


def run_bot(
    settings: TelegramSettings,
    store: Store,
    stop_after_s: float | None,
    *,
    stop_event: threading.Event | None = None,
    balances: Balances | None = None,
    token: str | None = None,
    sleep: Sleep = asyncio.sleep,
) -> BotRunReport:
    """Synchronous entry point for `kestrel telegram` and the bot deployment."""
    return asyncio.run(
        run_bot_async(
            settings,
            store,
            stop_after_s,
            stop_event=stop_event,
            balances=balances,
            token=token,
            sleep=sleep,
        )
    )


async def _wait(stop_after_s: float | None, stop_event: threading.Event | None) -> None:
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, signalled.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: stop_after_s / stop_event bound the run instead
    deadline = None if stop_after_s is None else loop.time() + stop_after_s
    try:
        while not signalled.is_set() and not (stop_event is not None and stop_event.is_set()):
            step = 0.2 if deadline is None else min(0.2, deadline - loop.time())
            if step <= 0:
                return
            try:
                await asyncio.wait_for(signalled.wait(), timeout=step)
            except TimeoutError:
                continue
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
