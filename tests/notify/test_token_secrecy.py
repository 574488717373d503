"""The bot token is in every Bot API URL; it must never reach logs, events, delivery records,
messages or the exceptions Kestrel raises, whatever goes wrong."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from fakes.telegram_server import FakeTelegramServer
from kestrel.errors import DeliveryBlocked, NotifyError
from kestrel.notify.bot import run_bot
from kestrel.notify.outbox import CURSOR_KEY, delivery_key, drain_outbox
from kestrel.notify.redact import REDACTED
from kestrel.store.sqlite import SQLiteStore

from .helpers import OWNER_CHAT, STRANGER_CHAT, make_settings, store_events
from .test_bot import ask

WRONG_TOKEN = "987654321:AAWrongTokenThatMustNotLeak-zyxwvutsrq"


def exception_texts(exc: BaseException) -> list[str]:
    """The exception and everything chained to it, as a traceback would print them."""
    import traceback

    return ["".join(traceback.format_exception(exc)), str(exc), repr(exc)]


def test_the_token_never_leaks(
    server: FakeTelegramServer, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "telegram", "kestrel"):
        caplog.set_level(logging.DEBUG, logger=name)
    texts: list[str] = []
    events = store_events(store, 4)

    # Deliveries through every kind of failure.
    settings = make_settings(server, request_timeout_s=0.5, max_retry_after_s=0)
    server.fail_next(1, "5xx")
    server.fail_next(1, "drop")
    server.fail_next(1, "hang")
    drain_outbox(store, settings)
    events += store_events(store, 2, start=5)
    server.fail_next(1, "429", retry_after=5)
    assert drain_outbox(store, settings).stopped
    drain_outbox(store, make_settings(server))

    # A wrong token, for the outbox and for the bot.
    wrong = make_settings(server, bot_token=WRONG_TOKEN)
    with pytest.raises(DeliveryBlocked) as outbox_refused:
        drain_outbox(store, wrong)
    with pytest.raises(NotifyError) as bot_refused:
        run_bot(wrong, store, stop_after_s=5)
    texts += exception_texts(outbox_refused.value) + exception_texts(bot_refused.value)

    # The command bot, answering its owner and refusing a stranger.
    stop = threading.Event()
    thread = threading.Thread(
        target=run_bot, args=(settings, store, 60), kwargs={"stop_event": stop}
    )
    thread.start()
    try:
        server.wait_for_request("getUpdates", timeout=30)
        ask(server, OWNER_CHAT, "/status")
        ask(server, STRANGER_CHAT, "/stop")
        ask(server, OWNER_CHAT, "/stop")
    finally:
        stop.set()
        thread.join(timeout=60)

    texts.append(caplog.text)
    texts += [logging.Formatter().format(record) for record in caplog.records]
    texts += [event.model_dump_json() for event in store.list_events()]
    keys = [delivery_key(e.event_id) for e in store.list_events()] + [CURSOR_KEY, "emergency_stop"]
    texts += [json.dumps(found[0]) for key in keys if (found := store.get_state(key))]
    texts += [m.raw_text for m in server.sent_messages()]
    everything = "\n".join(texts)

    assert len(server.sent_messages()) >= len(events)
    assert "HTTP Request: POST" in everything and REDACTED in everything  # URLs were logged
    for token in (server.token, WRONG_TOKEN):
        secret = token.partition(":")[2]
        assert token not in everything
        assert secret not in everything
