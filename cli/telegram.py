"""`kestrel telegram`: the command bot in the foreground (long polling until Ctrl-C)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli._common import app, fail, load_cli_settings


@app.command()
def telegram(
    stop_after: Annotated[
        float | None, typer.Option(min=1, help="stop after this many seconds (default: never)")
    ] = None,
) -> None:
    """Run the Telegram command bot: /status /positions /orders /balance /pnl /stop /resume,
    and manual trading (/buy /sell /close /confirm ...). Only configured chats may command."""
    from blocks.exchange_account import use_exchange_account
    from kestrel.errors import DeliveryBlocked, TelegramUnavailable
    from kestrel.manual.telegram import register_manual_commands
    from kestrel.mode import trading_mode
    from kestrel.notify.bot import run_bot
    from kestrel.store.router import open_store

    settings = load_cli_settings()
    if settings.telegram.bot_token is None:
        raise fail("no bot token: set KESTREL_TELEGRAM__BOT_TOKEN (from @BotFather)", 2)
    register_manual_commands(settings, use_exchange_account)
    with trading_mode(settings.mode):
        store = open_store(settings, settings.mode)
        try:
            report = run_bot(settings.telegram, store, stop_after)
        except (DeliveryBlocked, TelegramUnavailable) as exc:
            raise fail(str(exc)) from None
        finally:
            store.close()
    typer.echo(
        f"commands handled: {report.handled}, refused: {report.refused}, "
        f"stale ignored: {report.ignored_stale}"
    )
