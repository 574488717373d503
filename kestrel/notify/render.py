"""A message as data (`Card`) and its rendering for one Telegram parse mode.

Templates and command replies build Cards; only this module knows the markup, so every
value is escaped in exactly one place (PTB's `escape_markdown` for MarkdownV2, `html.escape`
for HTML), and a message Telegram still refuses can be re-rendered as plain text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from telegram.helpers import escape_markdown

from kestrel.notify.settings import ParseMode

# Telegram's limit is 4096 characters after entity parsing; keep a margin for the footer.
MAX_TEXT = 3800
MAX_VALUE = 400


@dataclass(frozen=True)
class Card:
    title: str
    icon: str = ""
    rows: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()
    footer: tuple[str, ...] = field(default_factory=tuple)

    def with_footer(self, *notes: str) -> Card:
        return replace(self, footer=(*self.footer, *notes))


def fmt_num(value: object) -> str:
    """Decimals without float noise or exponent ('0.00010000' -> '0.0001')."""
    if value is None or value == "":
        return "-"
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _clip(text: str, limit: int = MAX_VALUE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(card: Card) -> Card:
    """Drop free-text lines from the end until the plain text fits in one message."""
    lines = list(card.lines)
    rows = tuple((_clip(k, 60), _clip(v)) for k, v in card.rows)
    fitted = replace(
        card, title=_clip(card.title, 200), rows=rows, lines=tuple(_clip(x) for x in lines)
    )
    while len(_render(fitted, None)) > MAX_TEXT and lines:
        lines.pop()
        fitted = replace(fitted, lines=(*(_clip(x) for x in lines), "… (truncated)"))
    return fitted


def format_card(card: Card, parse_mode: ParseMode | None) -> str:
    """The message text for `parse_mode` (None: plain text, no markup at all)."""
    return _render(_fit(card), parse_mode)


def _render(card: Card, parse_mode: ParseMode | None) -> str:
    if parse_mode == "HTML":

        def esc(s: str) -> str:
            return html.escape(s, quote=False)

        def bold(s: str) -> str:
            return f"<b>{esc(s)}</b>"

        def italic(s: str) -> str:
            return f"<i>{esc(s)}</i>"

    elif parse_mode == "MarkdownV2":

        def esc(s: str) -> str:
            return escape_markdown(s, version=2)

        def bold(s: str) -> str:
            return f"*{esc(s)}*"

        def italic(s: str) -> str:
            return f"_{esc(s)}_"

    else:

        def esc(s: str) -> str:
            return s

        bold = italic = esc

    head = f"{card.icon} {bold(card.title)}" if card.icon else bold(card.title)
    parts = [head]
    parts.extend(f"{bold(label + ':')} {esc(value)}" for label, value in card.rows)
    if card.lines:
        parts.append("")
        parts.extend(esc(line) for line in card.lines)
    if card.footer:
        parts.append("")
        parts.append(italic(" · ".join(card.footer)))
    return "\n".join(parts)
