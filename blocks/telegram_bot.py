"""The Telegram bot as a Prefect block: the token as a secret, plus where messages go.

Flows load it by name (`blocks.telegram`) and hand the token to the notification code through
the process environment (KESTREL_TELEGRAM__BOT_TOKEN), never as a flow parameter. The same
settings work without a block: KESTREL_TELEGRAM__* variables or [telegram] in kestrel.toml.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from blocks.secret_env import TOKEN_ENV


class TelegramBot(Block):
    """A Telegram bot Kestrel notifies through and takes commands from."""

    _block_type_name: ClassVar[str] = "Kestrel Telegram Bot"
    _block_type_slug: ClassVar[str] = "kestrel-telegram-bot"
    _description: ClassVar[str] = (
        "Kestrel's Telegram bot: token (secret), notification chat, chats allowed to command."
    )

    bot_token: SecretStr = Field(description="from @BotFather")
    notify_chat_id: int | None = Field(default=None, description="where notifications go")
    command_chat_ids: list[int] = Field(
        default_factory=list, description="chats allowed to send commands (/stop, /status)"
    )
    api_base_url: str = Field(
        default="https://api.telegram.org/bot",
        description="Bot API root; the token is appended. Tests point it at a fake server.",
    )
    alerts_only: bool = Field(default=False, description="only alerts and the daily report")
    timezone: str = Field(default="UTC", description="for quiet hours and the daily report")

    def settings_overrides(self) -> dict[str, Any]:
        """The non-secret part, as a `telegram` settings section."""
        return {
            "telegram": {
                "notify_chat_id": self.notify_chat_id,
                "command_chat_ids": list(self.command_chat_ids),
                "api_base_url": self.api_base_url,
                "alerts_only": self.alerts_only,
                "timezone": self.timezone,
            }
        }

    def secret_env(self) -> dict[str, str]:
        return {TOKEN_ENV: self.bot_token.get_secret_value()}
