"""Telegram commands for manual trading: the handlers on their own (DEMO), and end to end
through the real bot (python-telegram-bot long polling the fake Bot API) wired the way the
lead will wire them, `COMMANDS.update(manual_commands(...))`, in REAL mode on the emulator."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from emulator import BinanceEmulator
from fakes.telegram_server import FakeTelegramServer
from kestrel.config.settings import load_settings
from kestrel.errors import CommandError
from kestrel.manual.telegram import manual_commands, parse_close, parse_order, runtime_factory
from kestrel.models import OrderStatus, Side
from kestrel.notify import commands as notify_commands
from kestrel.notify.bot import run_bot
from kestrel.notify.commands import Caller, CommandContext
from kestrel.notify.render import Card, format_card
from kestrel.runtime import Runtime, reset_runtimes
from tests.manual.conftest import advance
from tests.manual.test_demo_orders import paper_account
from tests.notify.helpers import OWNER_CHAT, make_settings


def run(rt: Runtime, text: str) -> Card:
    """One command as the bot runs it (run_command's handling of CommandError included)."""
    specs = manual_commands(lambda: rt)
    name, *args = text.lstrip("/").split()
    ctx = CommandContext(store=rt.store, caller=Caller(chat_id=OWNER_CHAT, user="owner"))
    try:
        return specs[name].run(ctx, args)
    except CommandError as exc:
        return Card(title=str(exc), icon="❓")


def text_of(card: Card) -> str:
    return format_card(card, None)


def test_parsing() -> None:
    order = parse_order("buy", ["btc/usdt", "100", "usdt", "sl", "19000", "limit", "20000"])
    assert (order.symbol, order.amount, order.amount_in, order.type.value) == (
        "BTC/USDT",
        Decimal("100"),
        "quote",
        "limit",
    )
    assert (order.price, order.stop_loss) == (Decimal("20000"), Decimal("19000"))
    assert parse_order("sell", ["ETH/USDT", "0.5", "ETH"]).side is Side.SELL
    assert parse_close(["BTC/USDT", "25%"]).fraction == Decimal("0.25")
    assert parse_close(["BTC/USDT", "0.1"]).amount == Decimal("0.1")
    for bad, message in [
        (["BTC/USDT"], "usage: /buy"),
        (["BTC/USDT", "x"], "amount: 'x' is not a number"),
        (["BTC/USDT", "1", "moon", "3"], "unknown option 'moon'"),
        (["BTC/USDT", "1", "sl"], "usage: /buy"),
        (["BTC/USDT", "1", "sl", "30", "tp", "20"], "must be below take_profit"),
    ]:
        with pytest.raises(CommandError, match=message):
            parse_order("buy", bad)
    with pytest.raises(CommandError, match="at most 100"):
        parse_close(["BTC/USDT", "120%"])


def test_demo_commands(demo_rt: Runtime) -> None:
    placed = text_of(run(demo_rt, "/buy BTC/USDT 100 USDT"))
    assert "PLACED" in placed and "APPROVED" in placed
    assert "telegram:1001:owner" in demo_rt.store.list_events()[0].data["by"]
    advance(demo_rt)
    assert "PLACED" in text_of(run(demo_rt, "/close BTC/USDT 50%"))
    blocked = text_of(run(demo_rt, "/buy ETH/USDT 1 USDT sl 1900"))
    assert "BLOCKED" in blocked and "BELOW_MIN_NOTIONAL" in blocked
    assert "usage: /cancel" in text_of(run(demo_rt, "/cancel"))
    assert "Refused" in text_of(run(demo_rt, "/cancel nope"))

    assert "risk.min_confidence: 0.55 -> 0.6" in text_of(
        run(demo_rt, "/set risk.min_confidence 0.6")
    )
    refused = text_of(run(demo_rt, "/set risk.min_confidence 7"))
    assert "Refused" in refused and "less than or equal to 1" in refused
    no_candles = text_of(run(demo_rt, "/watch add SOL/USDT"))
    assert "Refused" in no_candles and "not a spot market on the paper replay" in no_candles
    busy = text_of(run(demo_rt, "/watch remove BTC/USDT"))
    assert "Refused" in busy and "open position" in busy
    shown = text_of(run(demo_rt, "/settings"))
    assert "ETH/USDT" in shown and "risk.min_confidence = 0.6" in shown
    assert "0.55" in text_of(run(demo_rt, "/unset risk.min_confidence"))

    assert "usage: /reset" in text_of(run(demo_rt, "/reset 100"))
    reset = text_of(run(demo_rt, "/reset 1000 yes"))
    assert "paper account reset to 1000 USDT" in reset
    assert paper_account(demo_rt).balances == {"USDT": Decimal("1000")}


@pytest.fixture
def server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer(max_hang_s=15, max_long_poll_s=2) as srv:
        yield srv


def test_real_buy_and_confirm_through_the_bot(
    server: FakeTelegramServer,
    real_rt: Runtime,
    emulator: BinanceEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, spec in manual_commands(lambda: real_rt).items():
        monkeypatch.setitem(notify_commands.COMMANDS, name, spec)
    stop = threading.Event()
    errors: list[BaseException] = []

    def bot() -> None:
        try:
            run_bot(make_settings(server), real_rt.store, stop_after_s=120, stop_event=stop)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=bot)
    thread.start()

    def ask(text: str) -> str:
        before = len(server.sent_messages())
        server.inject_message(OWNER_CHAT, text)
        server.wait_for_messages(before + 1, timeout=30)
        return server.sent_messages()[before].text

    try:
        server.wait_for_request("getUpdates", timeout=30)
        preview = ask("/buy BTC/USDT 0.01 sl 19000")
        assert "NEEDS_CONFIRMATION" in preview and "Nothing placed yet" in preview
        assert emulator.request_count("/api/v3/order", "POST") == 0
        found = re.search(r"/confirm ([A-Z2-7]{16})", preview)
        assert found, preview
        assert "unknown confirmation token" in ask("/confirm AAAABBBBCCCCDDDD")
        done = ask(f"/confirm {found.group(1)}")
        assert "PLACED" in done and "FILLED" in done
        assert "already used" in ask(f"/confirm {found.group(1)}")
        reset = ask("/reset 100 yes")
        assert "DEMO only" in reset
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    assert emulator.request_count("/api/v3/order", "POST") == 1
    [order] = real_rt.store.list_orders()
    assert order.status is OrderStatus.FILLED


def test_runtime_factory_applies_live_settings(tmp_data_dir: Path) -> None:
    base = load_settings(
        mode="DEMO",
        data_dir=tmp_data_dir,
        paper={"market_data": "simulated", "seed": 2},
        watchlist=[{"symbol": "BTC/USDT", "strategy": "SCALP"}, {"symbol": "ETH/USDT"}],
    )
    factory = runtime_factory(base)
    try:
        rt = factory()
        card = text_of(
            manual_commands(factory, lambda: base)["set"].run(
                CommandContext(store=rt.store, caller=Caller(chat_id=OWNER_CHAT, user="o")),
                ["trade_enabled", "off", "ETH/USDT"],
            )
        )
        assert "Settings changed" in card
        assert factory().settings.watch("ETH/USDT").trade_enabled is False
        assert rt.settings.watch("ETH/USDT").trade_enabled is True  # the earlier runtime
    finally:
        reset_runtimes()


def test_real_riskier_setting_needs_confirm(real_rt: Runtime) -> None:
    """REAL: /set that loosens a limit answers with a token and changes nothing; /confirm
    applies exactly that change; a tightening /set applies at once."""
    from kestrel.operator.live import effective_settings

    preview = text_of(run(real_rt, "/set trading.gates.cool_off_s 0"))
    assert "NEEDS_CONFIRMATION" in preview and "cool_off_s: 3600 -> 0.0 (lowered)" in preview
    assert effective_settings(real_rt.settings, real_rt.store).trading.gates.cool_off_s == 3600
    found = re.search(r"/confirm ([A-Z2-7]{16})", preview)
    assert found, preview
    done = text_of(run(real_rt, f"/confirm {found.group(1)}"))
    assert "Settings changed" in done
    assert effective_settings(real_rt.settings, real_rt.store).trading.gates.cool_off_s == 0
    assert "already used" in text_of(run(real_rt, f"/confirm {found.group(1)}"))
    tighter = text_of(run(real_rt, "/set risk.max_open_positions 2"))
    assert "Settings changed" in tighter


def test_an_order_confirmation_does_not_burn_a_settings_token(real_rt: Runtime) -> None:
    """`kestrel order confirm` / the manual-confirm flow given a settings token: a clear
    refusal, and the token still confirms its change afterwards."""
    from kestrel.errors import ManualError
    from kestrel.manual import confirm_token
    from kestrel.operator.live import confirm_change, set_setting

    [preview] = set_setting(real_rt.store, real_rt.settings, "risk.min_confidence", "0.1", by="t")
    assert preview.token is not None
    with pytest.raises(ManualError, match="confirms a settings change"):
        confirm_token(real_rt, preview.token, actor="t")
    [done] = confirm_change(real_rt.store, real_rt.settings, preview.token, by="t")
    assert done.changed and done.new == 0.1
