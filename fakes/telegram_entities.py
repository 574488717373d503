"""Telegram's text-formatting parsers (MarkdownV2 and HTML), as strict as the real Bot API.

The fake Bot API server uses them so that a template that would be refused by Telegram with
"400 Bad Request: can't parse entities" is refused by our tests too, and so that tests can
assert on the text a user would actually see (entities stripped, escapes resolved).
The rules follow https://core.telegram.org/bots/api#formatting-options.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "tg-emoji",
        "blockquote",
    }
)
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)\s*>")
_HTML_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_MD_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "`": "Code",
    "```": "Pre",
    "[": "TextUrl",
}


class EntityParseError(ValueError):
    """The text is not valid for its parse_mode; str() is Telegram's own wording."""


@dataclass(frozen=True)
class ParsedText:
    text: str
    entity_types: tuple[str, ...]


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_markdown_v2(text: str) -> ParsedText:
    """Strip MarkdownV2 markup, raising like Telegram on unescaped reserved characters and
    unclosed entities. Only the innermost open entity can be closed (as in Telegram)."""
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    found: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        top = stack[-1][0] if stack else None
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) < 127:
            out.append(text[i + 1])
            i += 2
            continue
        if top in ("`", "```"):
            if top == "```" and text.startswith("```", i):
                found.append(_MD_NAMES[stack.pop()[0]])
                i += 3
            elif top == "`" and c == "`":
                found.append(_MD_NAMES[stack.pop()[0]])
                i += 1
            else:
                out.append(c)
                i += 1
            continue
        if c not in MARKDOWN_V2_RESERVED:
            out.append(c)
            i += 1
            continue
        if c == ">" and (i == 0 or text[i - 1] == "\n"):
            found.append("Blockquote")
            i += 1
            continue
        token = c
        for longer in ("```", "__", "||"):
            if text.startswith(longer, i):
                token = longer
                break
        if top is not None and token == top and token != "[":
            found.append(_MD_NAMES[stack.pop()[0]])
            i += len(token)
            continue
        if token == "]" and top == "[":
            stack.pop()
            i += 1
            if i < n and text[i] == "(":
                i = _skip_markdown_url(text, i + 1)
                found.append("TextUrl")
            continue
        if token in _MD_NAMES:
            stack.append((token, i))
            i += len(token)
            continue
        raise EntityParseError(
            f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
        )
    if stack:
        token, start = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MD_NAMES[token]} entity at byte offset "
            f"{_byte_offset(text, start)}"
        )
    return ParsedText("".join(out), tuple(found))


def _skip_markdown_url(text: str, i: int) -> int:
    """Past the closing ')' of an inline URL; inside it only ')' and '\\' must be escaped."""
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == ")":
            return i + 1
        i += 1
    raise EntityParseError(f"Can't find end of a URL at byte offset {_byte_offset(text, i)}")


def parse_html(text: str) -> ParsedText:
    """Strip Telegram-HTML markup, raising like Telegram on unknown or unbalanced tags and on
    a bare '<'. A '&' that does not start a supported entity is kept literally (as Telegram)."""
    out: list[str] = []
    stack: list[tuple[str, int]] = []
    found: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "&":
            entity = _HTML_ENTITY.match(text, i)
            if entity:
                out.append(html.unescape(entity.group(0)))
                i = entity.end()
                continue
            out.append(c)
            i += 1
            continue
        if c != "<":
            out.append(c)
            i += 1
            continue
        tag = _HTML_TAG.match(text, i)
        offset = _byte_offset(text, i)
        if tag is None:
            bad = re.match(r"</?([^\s>]*)", text[i:])
            shown = bad.group(1) if bad else ""
            raise EntityParseError(f'Unsupported start tag "{shown}" at byte offset {offset}')
        closing, name = tag.group(1) == "/", tag.group(2).lower()
        if name not in HTML_TAGS:
            kind = "end" if closing else "start"
            raise EntityParseError(f'Unsupported {kind} tag "{name}" at byte offset {offset}')
        if closing:
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {offset}")
            open_name, _ = stack.pop()
            if open_name != name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{open_name}>", '
                    f'found "</{name}>"'
                )
            found.append(name)
        else:
            if name == "a" and "href" not in tag.group(3):
                raise EntityParseError(f"Empty href in a tag at byte offset {offset}")
            stack.append((name, i))
        i = tag.end()
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return ParsedText("".join(out), tuple(found))


def parse_entities(text: str, parse_mode: str | None) -> ParsedText:
    """Dispatch on Telegram's parse_mode names (case-insensitive, like the Bot API)."""
    mode = (parse_mode or "").lower()
    if mode == "":
        return ParsedText(text, ())
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "html":
        return parse_html(text)
    if mode == "markdown":
        return parse_markdown_v2(text)  # legacy mode: close enough for a strict fake
    raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")
