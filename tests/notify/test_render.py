"""Templates render text Telegram accepts, for any values, in both parse modes; the fake
server's parsers are as strict as Telegram's, so a template bug fails here first."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import Bot
from telegram.error import BadRequest, InvalidToken

from fakes.telegram_entities import EntityParseError, parse_entities
from fakes.telegram_server import FakeTelegramServer
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType
from kestrel.notify.client import Failure, classify
from kestrel.notify.render import Card, format_card
from kestrel.notify.settings import ParseMode
from kestrel.notify.templates import render_event

from .helpers import fill_event

MODES: tuple[ParseMode, ...] = ("HTML", "MarkdownV2")
# Anything a symbol, reason or exchange message could contain (no lone surrogates: JSON
# cannot carry them to Telegram at all).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    title=TEXT,
    rows=st.lists(st.tuples(TEXT, TEXT), max_size=5),
    lines=st.lists(TEXT, max_size=3),
    footer=st.lists(TEXT, max_size=2),
)
def test_any_card_parses_and_shows_exactly_the_plain_text(
    title: str, rows: list[tuple[str, str]], lines: list[str], footer: list[str]
) -> None:
    card = Card(title=title, icon="✅", rows=tuple(rows), lines=tuple(lines), footer=tuple(footer))
    plain = format_card(card, None)
    for mode in MODES:
        assert parse_entities(format_card(card, mode), mode).text == plain


@pytest.mark.parametrize("kind", list(EventType))
@pytest.mark.parametrize("mode", MODES)
def test_every_event_type_has_a_template_telegram_accepts(kind: EventType, mode: ParseMode) -> None:
    event = fill_event(7, symbol="ETH/USDT").model_copy(
        update={"type": kind, "seq": 12, "reasons": ["BLOCKED_EMERGENCY_STOP", "a_b*c"]}
    )
    text = format_card(render_event(event, possible_repeat=True, held=True), mode)
    shown = parse_entities(text, mode).text
    assert "#12" in shown and "DEMO" in shown
    assert kind is EventType.DAILY_SUMMARY or "ETH/USDT" in shown
    assert "possible repeat" in shown and "held during quiet hours" in shown


def test_daily_summary_template_shows_the_numbers() -> None:
    event = Event(
        event_id="daily_summary:2026-01-02",
        type=EventType.DAILY_SUMMARY,
        mode=TradingMode.DEMO,
        seq=3,
        data={
            "day": "2026-01-02",
            "timezone": "UTC",
            "trade_count": 4,
            "buy_count": 2,
            "sell_count": 2,
            "realized_pnl": {"USDT": "12.5000"},
            "fees": {"USDT": "0.40"},
            "closed_count": 2,
            "win_count": 1,
            "open_positions": [
                {
                    "symbol": "BTC/USDT",
                    "amount": "0.01",
                    "avg_entry_price": "60000",
                    "last_price": "61000",
                    "unrealized_pnl": "10",
                }
            ],
        },
    )
    shown = parse_entities(format_card(render_event(event), "HTML"), "HTML").text
    assert "Trades: 4 (2 buys, 2 sells)" in shown
    assert "Realized PnL: 12.5 USDT" in shown and "Fees: 0.4 USDT" in shown
    assert "Win rate: 50% (1/2)" in shown
    assert "BTC/USDT: 0.01 @ 60000, last 61000, uPnL 10" in shown


@pytest.mark.parametrize(
    ("text", "mode", "complaint"),
    [
        ("price 1.5", "MarkdownV2", "Character '.' is reserved"),
        ("*bold", "MarkdownV2", "Can't find end of Bold entity"),
        ("a_b", "MarkdownV2", "Can't find end of Italic entity"),
        ("x - y", "MarkdownV2", "Character '-' is reserved"),
        ("<b>bold", "HTML", 'Can\'t find end tag corresponding to start tag "b"'),
        ("1 < 2", "HTML", "Unsupported start tag"),
        ("<b>x</i>", "HTML", "Unmatched end tag"),
        ("<script>x</script>", "HTML", 'Unsupported start tag "script"'),
    ],
)
def test_the_fake_refuses_what_telegram_refuses(text: str, mode: str, complaint: str) -> None:
    with pytest.raises(EntityParseError, match=complaint):
        parse_entities(text, mode)


def test_refusals_reach_ptb_as_telegram_errors(server: FakeTelegramServer) -> None:
    async def scenario() -> tuple[BadRequest, InvalidToken, str]:
        async with Bot(server.token, base_url=server.base_url) as bot:
            with pytest.raises(BadRequest) as bad_markup:
                await bot.send_message(1, "price 1.5", parse_mode="MarkdownV2")
            fine = await bot.send_message(1, "price 1\\.5 *ok*", parse_mode="MarkdownV2")
        with pytest.raises(InvalidToken) as bad_token:
            async with Bot("42:not-the-token", base_url=server.base_url):
                pass
        return bad_markup.value, bad_token.value, fine.text or ""

    bad_markup, bad_token, shown = asyncio.run(scenario())
    assert classify(bad_markup) is Failure.BAD_MARKUP
    assert classify(bad_token) is Failure.BAD_TOKEN
    assert shown == "price 1.5 ok"
    assert [m.text for m in server.sent_messages()] == ["price 1.5 ok"]
    assert [r.token_ok for r in server.requests("getMe")] == [True, False]
