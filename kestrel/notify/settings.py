"""Telegram notification and command settings: an optional section of Kestrel's settings.

Standalone it reads KESTREL_TELEGRAM_* variables; nested as `KestrelSettings.telegram` the
outer settings read KESTREL_TELEGRAM__* (both spellings work for the token). The token is a
SecretStr so that repr(), logs and Prefect parameters never show it; a Prefect Secret block
name may be given instead (tasks/ loads it: kestrel/ never imports prefect).
"""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kestrel.models import EventType

ParseMode = Literal["HTML", "MarkdownV2"]

# Events a human must see even during quiet hours and even in alerts-only mode.
ALERT_TYPES: frozenset[EventType] = frozenset(
    {
        EventType.ALERT_EMITTED,
        EventType.ORDER_FAILED,
        EventType.SLTP_FAILED,
        EventType.EMERGENCY_STOP_SET,
        EventType.EMERGENCY_STOP_CLEARED,
        EventType.CIRCUIT_BREAKER_TRIPPED,
        EventType.CIRCUIT_BREAKER_RESET,
        EventType.SECURITY,
        EventType.CRITICAL,
    }
)
# Every-cycle chatter that would drown the useful messages; opt in by listing them.
_NOISY = frozenset({EventType.TRADE_DECIDED, EventType.TRADE_HELD})
DEFAULT_EVENT_TYPES: tuple[EventType, ...] = tuple(t for t in EventType if t not in _NOISY)


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KESTREL_TELEGRAM_",
        extra="forbid",
        validate_assignment=True,
        populate_by_name=True,
    )

    bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "bot_token", "KESTREL_TELEGRAM__BOT_TOKEN", "KESTREL_TELEGRAM_BOT_TOKEN"
        ),
        description="from @BotFather; or leave empty and name a Prefect Secret block",
    )
    token_secret_block: str | None = Field(
        default=None, description="name of a Prefect Secret block holding the bot token"
    )
    api_base_url: str = Field(
        default="https://api.telegram.org/bot",
        description="Bot API root; PTB appends the token. Tests point it at the fake server.",
    )
    notify_chat_id: int | None = Field(default=None, description="the chat notifications go to")
    command_chat_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="chats allowed to command the bot (comma-separated)"
    )
    event_types: Annotated[list[EventType], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_EVENT_TYPES)
    )
    alerts_only: bool = False
    parse_mode: ParseMode = "HTML"
    timezone: str = Field(default="UTC", description="for quiet hours and the daily report day")
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    quiet_hours_bypass: Annotated[list[EventType], NoDecode] = Field(
        default_factory=lambda: sorted(ALERT_TYPES)
    )

    request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    lease_s: float = Field(
        default=120.0, gt=0, description="how long a claim on one event protects a sender"
    )
    send_attempts_per_run: int = Field(default=4, ge=1, le=20)
    retry_backoff_s: float = Field(default=1.0, ge=0, le=60)
    max_retry_after_s: float = Field(
        default=60.0, ge=0, description="longer 429 waits end the run and resume later"
    )
    batch_size: int = Field(default=100, ge=1, le=1000)
    max_events_per_run: int = Field(default=500, ge=1)
    max_event_age_h: float | None = Field(
        default=48.0, gt=0, description="older undelivered events are skipped, not sent"
    )
    cursor_grace_s: float = Field(
        default=30.0, ge=0, description="the cursor never passes events younger than this"
    )
    poll_timeout_s: int = Field(default=20, ge=0, le=50, description="getUpdates long poll")
    command_max_age_s: float = Field(
        default=300.0,
        gt=0,
        description="older commands (queued while the bot was down) are ignored, except /stop",
    )

    @field_validator("command_chat_ids", "event_types", "quiet_hours_bypass", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        """Environment values come as 'a,b,c' or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone, e.g. UTC or Europe/Paris") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TelegramSettings:
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValueError("set both quiet_hours_start and quiet_hours_end, or neither")
        if self.lease_s <= self.request_timeout_s * 3:
            raise ValueError("lease_s must exceed 3 x request_timeout_s (connect+write+read)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def can_notify(self) -> bool:
        return self.notify_chat_id is not None

    def token(self) -> str:
        """The raw token, for building the Bot only; never log or store what this returns."""
        if self.bot_token is None or not self.bot_token.get_secret_value():
            raise ValueError(
                "no Telegram bot token: set KESTREL_TELEGRAM__BOT_TOKEN or token_secret_block"
            )
        return self.bot_token.get_secret_value()

    def in_quiet_hours(self, moment: datetime) -> bool:
        if self.quiet_hours_start is None or self.quiet_hours_end is None:
            return False
        local = moment.astimezone(self.zone).time()
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start <= end:
            return start <= local < end
        return local >= start or local < end  # spans midnight, e.g. 22:00-07:00

    def wants(self, event_type: EventType) -> bool:
        """Whether this event type is ever sent (quiet hours only delay)."""
        if self.alerts_only and event_type not in ALERT_TYPES | {EventType.DAILY_SUMMARY}:
            return False
        return event_type in self.event_types
