"""The command bot end to end: the real PTB Application long-polls the fake Bot API, a user
types commands, and the store changes (or, for strangers, does not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakes.telegram_server import FakeTelegramServer, SentMessage
from kestrel.config.demo import demo_settings
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Action, Candle, CandleSeries, EventType, ReasonCode
from kestrel.notify.bot import BotRunReport
from kestrel.notify.settings import TelegramSettings
from kestrel.risk.controls import emergency_stop_state, set_emergency_stop
from kestrel.runtime import build_runtime
from kestrel.store import open_store
from kestrel.store.base import Store
from kestrel.trading.cycle import analyze_candles, assess_risk, make_decision

from .helpers import OWNER_CHAT, STRANGER_CHAT, running_bot


def ask(server: FakeTelegramServer, chat_id: int, text: str, **kwargs: Any) -> SentMessage:
    """Send `text` from `chat_id` and return the bot's reply to that chat."""
    before = len(server.sent_messages())
    server.inject_message(chat_id, text, **kwargs)
    server.wait_for_messages(before + 1, timeout=30)
    replies = [m for m in server.sent_messages()[before:] if m.chat_id == chat_id]
    assert replies, f"no reply to {text!r} in chat {chat_id}"
    return replies[0]


def test_owner_stops_and_resumes_trading(
    server: FakeTelegramServer, settings: TelegramSettings, store: Store
) -> None:
    with running_bot(server, settings, store) as outcome:
        stop_reply = ask(server, OWNER_CHAT, "/stop going to sleep")
        assert emergency_stop_state(store).active
        status_reply = ask(server, OWNER_CHAT, "/status")
        resume_reply = ask(server, OWNER_CHAT, "/resume")
        assert not emergency_stop_state(store).active

    assert "Emergency stop is ON" in stop_reply.text and "going to sleep" in stop_reply.text
    assert "ACTIVE" in status_reply.text and f"telegram:{OWNER_CHAT}" in status_reply.text
    assert "Emergency stop is OFF" in resume_reply.text
    kinds = [e.type for e in store.list_events()]
    assert kinds == [EventType.EMERGENCY_STOP_SET, EventType.EMERGENCY_STOP_CLEARED]
    report: BotRunReport = outcome["report"]
    assert report.handled == 3 and report.refused == 0
    registered = {c["command"] for c in server.commands()}
    assert {"status", "positions", "orders", "balance", "pnl", "stop", "resume", "mode"} <= (
        registered
    )


def test_a_stranger_cannot_stop_or_resume_and_is_recorded(
    server: FakeTelegramServer, settings: TelegramSettings, store: Store
) -> None:
    with trading_mode(TradingMode.DEMO):
        set_emergency_stop(store, active=True, reason="owner stopped it", by="cli")

    with running_bot(server, settings, store) as outcome:
        refused_resume = ask(server, STRANGER_CHAT, "/resume", username="mallory")
        assert emergency_stop_state(store).active
        refused_stop = ask(server, STRANGER_CHAT + 1, "/stop")
        refused_status = ask(server, STRANGER_CHAT, "/status")

    for reply in (refused_resume, refused_stop, refused_status):
        assert "Not authorised" in reply.text
        assert "ACTIVE" not in reply.text and "owner stopped it" not in reply.text
    state = emergency_stop_state(store)
    assert state.active and state.set_by == "cli"
    security = store.list_events(types=[EventType.SECURITY])
    chats = [e.data["chat_id"] for e in security]
    assert chats == [STRANGER_CHAT, STRANGER_CHAT + 1, STRANGER_CHAT]
    assert security[0].data["user"] == "mallory" and security[0].data["text"] == "/resume"
    assert outcome["report"].refused == 3 and outcome["report"].handled == 0


def test_a_resume_queued_while_the_bot_was_down_is_ignored_but_a_stop_is_not(
    server: FakeTelegramServer, settings: TelegramSettings, store: Store
) -> None:
    with trading_mode(TradingMode.DEMO):
        set_emergency_stop(store, active=True, reason="owner stopped it", by="cli")

    with running_bot(server, settings, store):
        stale_resume = ask(server, OWNER_CHAT, "/resume", age_s=3600)
        assert emergency_stop_state(store).active
        ask(server, OWNER_CHAT, "/resume")
        assert not emergency_stop_state(store).active
        ask(server, OWNER_CHAT, "/stop", age_s=3600)
        assert emergency_stop_state(store).active

    assert "Ignored /resume" in stale_resume.text


def test_help_mode_and_unknown_commands(
    server: FakeTelegramServer, settings: TelegramSettings, store: Store
) -> None:
    with running_bot(server, settings, store):
        server.fail_next(1, "429", retry_after=1)
        server.fail_next(1, "5xx")
        help_reply = ask(server, OWNER_CHAT, "/help")  # after a 429 and a 500
        mode_reply = ask(server, OWNER_CHAT, "/mode@kestrel_test_bot")
        unknown = ask(server, OWNER_CHAT, "/sell_everything")
        bad_arg = ask(server, OWNER_CHAT, "/pnl year")
        chatter = ask(server, OWNER_CHAT, "hello?")

    assert all(f"/{name}" in help_reply.text for name in ("status", "pnl", "stop", "resume"))
    assert "Mode: DEMO" in mode_reply.text
    assert "Unknown command /sell_everything" in unknown.text
    assert "usage: /pnl [day|week]" in bad_arg.text
    assert "/help" in chatter.text


def _buy_crossover(symbol: str, now_ms: int) -> CandleSeries:
    """A slow decline then a jump: the fast EMA crosses above the slow one on the last candle."""
    hour = 3_600_000
    closes = [100 - 0.1 * i + (1.5 if i % 2 else -1.5) for i in range(60)]
    closes.append(closes[-1] + 6)
    start = now_ms - hour * (len(closes) + 1)
    start -= start % hour
    candles = [
        Candle(timestamp=start + i * hour, open=c, high=c + 1, low=c - 1, close=c, volume=10)
        for i, c in enumerate(closes)
    ]
    return CandleSeries(symbol=symbol, timeframe="1h", candles=candles, source="test")


def test_stop_from_telegram_blocks_the_next_trading_cycle_and_a_stranger_cannot(
    server: FakeTelegramServer, settings: TelegramSettings, tmp_data_dir: Path
) -> None:
    kestrel_settings = demo_settings(data_dir=tmp_data_dir, market="simulated")
    with trading_mode(TradingMode.DEMO):
        runtime = build_runtime(kestrel_settings)
        bot_store = open_store(kestrel_settings, TradingMode.DEMO)  # as another process would
        try:
            item = kestrel_settings.watchlist[0]
            analysis = analyze_candles(_buy_crossover(item.symbol, runtime.now_ms(item.symbol)))
            assert analysis.signal.action is Action.BUY

            with running_bot(server, settings, bot_store):
                ask(server, STRANGER_CHAT, "/stop")
                after_stranger = assess_risk(runtime, item, analysis)
                ask(server, OWNER_CHAT, "/stop")
                after_owner = assess_risk(runtime, item, analysis)
                decision = make_decision(runtime, item, analysis, after_owner)
        finally:
            bot_store.close()
            runtime.store.close()

    assert ReasonCode.BLOCKED_EMERGENCY_STOP not in [r.code for r in after_stranger.reasons]
    assert ReasonCode.BLOCKED_EMERGENCY_STOP in [r.code for r in after_owner.reasons]
    assert decision.action is Action.HOLD
    store = open_store(kestrel_settings, TradingMode.DEMO)
    try:
        (blocked,) = store.list_events(types=[EventType.TRADE_BLOCKED])
        assert ReasonCode.BLOCKED_EMERGENCY_STOP.value in blocked.reasons
        assert len(store.list_events(types=[EventType.SECURITY])) == 1
    finally:
        store.close()
