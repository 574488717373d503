"""The LLM analyst: asks any OpenAI-compatible chat-completions endpoint for a JSON verdict.

The request is a plain POST <base_url>/chat/completions (stream off, temperature 0, JSON
mode unless turned off); the reply's first choice must hold a JSON object that validates as
LLMVerdict. Anything else - a timeout (the whole request is bounded), an HTTP error, a
refusal, a truncated or malformed answer, levels on the wrong side of the price - makes the
analyst abstain, which can never produce a trade. The API key is sent as a Bearer token and
appears nowhere else (not in reasons, events, logs or exceptions).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kestrel.analysis.base import AnalystInput
from kestrel.analysis.http import bounded_request
from kestrel.analysis.recordings import Recordings, record, recording_key
from kestrel.errors import AnalystAbstained
from kestrel.models import Action, Signal
from kestrel.money import to_decimal
from kestrel.strategy.settings import LLMSettings

SYSTEM_PROMPT = """\
You are one analyst on a crypto trading desk. From the market data you are given, judge the \
next move of a SPOT market over the coming candles.
Reply with ONLY one JSON object - no prose, no code fences - of this shape:
{"action": "BUY" | "SELL" | "HOLD", "confidence": <number from 0 to 1>, \
"reasoning": "<at most two sentences>", "entry": <number or null>, \
"stop_loss": <number or null>, "take_profit": <number or null>}
Spot only: SELL means exit or stay out, never a short. Say HOLD when the evidence is mixed. \
confidence is your probability that the action is right. For BUY, stop_loss must be below \
and take_profit above the current price."""

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


class LLMVerdict(BaseModel):
    """The JSON object we ask for. Unknown keys are ignored; wrong types are not."""

    model_config = ConfigDict(extra="ignore")

    action: Literal["BUY", "SELL", "HOLD"]
    confidence: float = Field(ge=0, le=1)
    reasoning: str = ""
    entry: float | None = Field(default=None, gt=0)
    stop_loss: float | None = Field(default=None, gt=0)
    take_profit: float | None = Field(default=None, gt=0)

    @field_validator("action", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("confidence", mode="before")
    @classmethod
    def _no_bool(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("confidence must be a number, not a boolean")
        return value


def build_messages(data: AnalystInput, candles: int) -> list[dict[str, str]]:
    recent = data.series.candles[-candles:]
    payload: dict[str, Any] = {
        "symbol": data.symbol,
        "timeframe": data.timeframe,
        "strategy_profile": data.profile.name,
        "price": float(data.price),
        "indicators": {k: (round(v, 6) if v is not None else None) for k, v in data.values.items()},
        "candles": {
            "columns": ["open_time_utc", "open", "high", "low", "close", "volume"],
            "rows": [
                [
                    datetime.fromtimestamp(c.timestamp / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ"),
                    c.open,
                    c.high,
                    c.low,
                    c.close,
                    round(c.volume, 4),
                ]
                for c in recent
            ],
        },
    }
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(payload, separators=(",", ":"))},
    ]


def build_request(settings: LLMSettings, data: AnalystInput) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": settings.model,
        "messages": build_messages(data, settings.prompt_candles),
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "stream": False,
    }
    if settings.json_mode:
        body["response_format"] = {"type": "json_object"}
    return body


def _error_message(body: bytes) -> str:
    try:
        parsed = json.loads(body)
        message = parsed.get("error", {}).get("message") if isinstance(parsed, dict) else None
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) else body[:200].decode("utf-8", "replace")
    return text.strip()[:200]


def extract_content(body: bytes) -> str:
    """The first choice's message content; AnalystAbstained('malformed'|'refused')."""
    try:
        parsed = json.loads(body)
    except ValueError:
        raise AnalystAbstained("malformed", f"not JSON: {body[:120]!r}") from None
    try:
        choice = parsed["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise AnalystAbstained("malformed", "no choices[0].message in the answer") from None
    if isinstance(message, dict) and message.get("refusal"):
        raise AnalystAbstained("refused", str(message["refusal"])[:200])
    if choice.get("finish_reason") == "length":
        raise AnalystAbstained("malformed", "answer cut off at max_tokens")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        raise AnalystAbstained("malformed", "empty message content")
    return content


def parse_verdict(content: str) -> LLMVerdict:
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        raw = json.loads(text)
    except ValueError:
        raise AnalystAbstained("malformed", f"content is not JSON: {text[:120]!r}") from None
    if not isinstance(raw, dict):
        raise AnalystAbstained("malformed", f"content is JSON {type(raw).__name__}, not object")
    try:
        return LLMVerdict.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise AnalystAbstained("malformed", f"verdict does not validate: {problems}") from None


def check_levels(verdict: LLMVerdict, price: Decimal) -> None:
    """Levels must make sense for a long: a BUY's stop below and target above the price."""
    if verdict.action != "BUY":
        return
    if verdict.stop_loss is not None and to_decimal(verdict.stop_loss) >= price:
        raise AnalystAbstained("malformed", f"BUY stop_loss {verdict.stop_loss} >= price {price}")
    if verdict.take_profit is not None and to_decimal(verdict.take_profit) <= price:
        raise AnalystAbstained(
            "malformed", f"BUY take_profit {verdict.take_profit} <= price {price}"
        )


def request_key(name: str, settings: LLMSettings, body: dict[str, Any]) -> str:
    """The recording key of one request: the analyst, its model and the exact body sent."""
    return recording_key(name, settings.model, body)


def verdict_signal(content: str, data: AnalystInput, settings: LLMSettings, name: str) -> Signal:
    """The Signal of an answer's message content, live or replayed (same checks both ways)."""
    verdict = parse_verdict(content)
    check_levels(verdict, data.price)
    reasoning = " ".join(verdict.reasoning.split())[:600]

    def level(value: float | None) -> Decimal | None:
        return to_decimal(value) if value is not None and verdict.action == "BUY" else None

    return Signal(
        action=Action(verdict.action),
        confidence=round(verdict.confidence, 4),
        reasoning=f"{settings.model}: {reasoning or '(no reasoning given)'}",
        analyst=name,
        suggested_entry=level(verdict.entry),
        suggested_stop_loss=level(verdict.stop_loss),
        suggested_take_profit=level(verdict.take_profit),
    )


class LLMAnalyst:
    """`recordings`: where each answer received is recorded for backtests to replay."""

    def __init__(
        self, settings: LLMSettings, name: str = "llm", recordings: Recordings | None = None
    ) -> None:
        self.settings = settings
        self.name = name
        self.recordings = recordings

    @property
    def url(self) -> str:
        return f"{self.settings.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(self.settings.extra_headers)
        key = self.settings.key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def judge(self, data: AnalystInput) -> Signal:
        if not data.enough_data:
            data.frame()  # raises the insufficient_data abstention
        settings = self.settings
        body = build_request(settings, data)
        answer = bounded_request(
            "POST",
            self.url,
            json_body=body,
            headers=self.headers(),
            timeout_s=settings.timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            max_bytes=settings.max_response_bytes,
        )
        if answer.status != 200:
            raise AnalystAbstained(
                "http_error", f"HTTP {answer.status}: {_error_message(answer.body)}"
            )
        content = extract_content(answer.body)
        last = data.series.last
        record(
            self.recordings,
            request_key(self.name, settings, body),
            {
                "analyst": self.name,
                "kind": "llm",
                "model": settings.model,
                "symbol": data.symbol,
                "timeframe": data.timeframe,
                "candle": last.timestamp if last is not None else None,
                "content": content,
            },
        )
        return verdict_signal(content, data, settings, self.name)
