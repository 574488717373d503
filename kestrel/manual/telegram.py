"""Telegram commands for manual trading and live settings, in the shape of
kestrel.notify.commands (a function of a CommandContext and the arguments, returning a Card).

They are not registered here (kestrel/notify belongs to the notifications work): the bot
adds them with
    COMMANDS.update(manual_commands(runtime_factory(settings), lambda: settings))
Authorisation happens before any of these run (the bot's gatekeeper), and `ctx.caller.tag`
is the audited actor. In REAL mode /buy, /sell, /close, /closeall and /move answer with a
preview and a token, and so do /set, /unset and /watch add when they loosen a risk limit
(kestrel.operator.risk_changes); `/confirm TOKEN` acts (the token's own stored action: nothing else
can be confirmed with it).

    /buy BTC/USDT 0.01                  market buy of 0.01 BTC
    /buy BTC/USDT 100 USDT sl 19000 tp 22000 limit 20000
    /sell BTC/USDT 0.005
    /close BTC/USDT [50%|0.002]         /closeall
    /move BTC/USDT [sl P] [tp P] [trail PCT [from PCT]]   move a position's levels
    /cancel <client or exchange order id>
    /confirm <token>
    /set <key> <value> [SYMBOL]         /unset <key> [SYMBOL]
    /watch add|remove SYMBOL            /settings
    /reset <balance> yes                (DEMO only)
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from kestrel.config.settings import KestrelSettings
from kestrel.errors import (
    CommandError,
    ConfigError,
    KestrelError,
    ManualError,
    SecurityError,
    SettingsError,
)
from kestrel.manual import cancel_order, confirm_token, submit
from kestrel.manual.render import leg_lines, reset_lines
from kestrel.manual.reset import reset_paper_account
from kestrel.mode import trading_mode
from kestrel.models.manual import (
    CloseAllRequest,
    ClosePositionRequest,
    ManualOutcome,
    MoveLevelsRequest,
    OutcomeStatus,
    PlaceOrderRequest,
)
from kestrel.money import to_decimal
from kestrel.notify.commands import CommandContext, CommandSpec
from kestrel.notify.render import Card
from kestrel.operator.live import (
    SettingsChange,
    confirm_change,
    describe,
    exchange_markets,
    reset_setting,
    set_setting,
    watch_add,
    watch_remove,
)
from kestrel.operator.tokens import peek_token
from kestrel.runtime import Runtime

RuntimeFactory = Callable[[], Runtime]
SettingsFactory = Callable[[], KestrelSettings]

_ICON = {
    OutcomeStatus.NEEDS_CONFIRMATION: "❓",
    OutcomeStatus.BLOCKED: "🚧",
    OutcomeStatus.PLACED: "✅",
    OutcomeStatus.ALREADY_DONE: "↩️",
    OutcomeStatus.NOTHING_TO_DO: "💤",
    OutcomeStatus.PREVIEW: "👀",
    OutcomeStatus.APPLIED: "🛡",
}


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.rstrip("%"))
    except InvalidOperation:
        raise CommandError(f"{what}: {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise CommandError(f"{what}: must be > 0, got {text}")
    return value


def _validated(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or "order"
        raise CommandError(f"{field}: {problem['msg'].removeprefix('Value error, ')}") from None


def parse_order(side: str, args: list[str]) -> PlaceOrderRequest:
    """`SYMBOL AMOUNT [CURRENCY] [limit P] [sl P] [tp P] [id REQUEST_ID]`."""
    usage = f"usage: /{side} SYMBOL AMOUNT [QUOTE] [limit PRICE] [sl PRICE] [tp PRICE]"
    if len(args) < 2:
        raise CommandError(usage)
    symbol = args[0].upper()
    data: dict[str, Any] = {"symbol": symbol, "side": side, "amount": _decimal(args[1], "amount")}
    rest = args[2:]
    base, _, quote = symbol.partition("/")
    if rest and rest[0].upper() in (base, quote):
        data["amount_in"] = "quote" if rest[0].upper() == quote else "base"
        rest = rest[1:]
    if len(rest) % 2:
        raise CommandError(usage)
    names = {"limit": "price", "sl": "stop_loss", "tp": "take_profit", "id": "request_id"}
    for word, value in zip(rest[::2], rest[1::2], strict=True):
        field = names.get(word.lower())
        if field is None:
            raise CommandError(f"unknown option {word!r}; {usage}")
        data[field] = value if field == "request_id" else _decimal(value, word)
    if "price" in data:
        data["type"] = "limit"
    request: PlaceOrderRequest = _validated(PlaceOrderRequest, data)
    return request


def parse_close(args: list[str]) -> ClosePositionRequest:
    if not args or len(args) > 2:
        raise CommandError("usage: /close SYMBOL [PERCENT% | AMOUNT]")
    data: dict[str, Any] = {"symbol": args[0].upper()}
    if len(args) == 2:
        size = args[1]
        if size.endswith("%"):
            share = _decimal(size, "percent")
            if share > 100:
                raise CommandError(f"percent must be at most 100, got {size}")
            data["fraction"] = share / 100
        else:
            data["amount"] = _decimal(size, "amount")
    request: ClosePositionRequest = _validated(ClosePositionRequest, data)
    return request


def parse_move(args: list[str]) -> MoveLevelsRequest:
    """`SYMBOL [sl PRICE] [tp PRICE] [trail PCT] [from PCT] [id REQUEST_ID]`; trail 0: off."""
    usage = "usage: /move SYMBOL [sl PRICE] [tp PRICE] [trail PCT [from PCT]]"
    if not args or len(args) % 2 == 0:
        raise CommandError(usage)
    data: dict[str, Any] = {"symbol": args[0].upper()}
    names = {
        "sl": "stop_loss",
        "tp": "take_profit",
        "trail": "trailing_distance_pct",
        "from": "trailing_activation_pct",
        "id": "request_id",
    }
    for word, value in zip(args[1::2], args[2::2], strict=True):
        field = names.get(word.lower())
        if field is None:
            raise CommandError(f"unknown option {word!r}; {usage}")
        if field == "request_id":
            data[field] = value
        elif field.startswith("trailing") and value.rstrip("%") == "0":
            data[field] = Decimal(0)
        else:
            data[field] = _decimal(value, word)
    request: MoveLevelsRequest = _validated(MoveLevelsRequest, data)
    return request


def outcome_card(outcome: ManualOutcome) -> Card:
    lines: list[str] = []
    for leg in outcome.legs:
        lines.extend(leg_lines(leg))
    for order in outcome.orders:
        lines.append(f"order {order.client_order_id}: {order.status.value} (filled {order.filled})")
    lines.extend(f"error: {error}" for error in outcome.errors)
    rows: list[tuple[str, str]] = [("Mode", outcome.mode.value), ("Request", outcome.request_id)]
    footer: tuple[str, ...] = ()
    if outcome.status is OutcomeStatus.NEEDS_CONFIRMATION and outcome.token:
        expires = f" before {outcome.expires_at:%H:%M:%S} UTC" if outcome.expires_at else ""
        rows.append(("Confirm", f"/confirm {outcome.token}"))
        footer = (f"Nothing placed yet. Send /confirm {outcome.token}{expires} to act.",)
    if outcome.message:
        lines.append(outcome.message)
    return Card(
        title=f"{outcome.action}: {outcome.status.value}",
        icon=_ICON.get(outcome.status, "🦅"),
        rows=tuple(rows),
        lines=tuple(lines),
        footer=footer,
    )


def _change_card(changes: list[SettingsChange]) -> Card:
    pending = next((c for c in changes if c.needs_confirmation), None)
    if pending is not None:  # REAL and riskier: nothing changed yet
        expires = f" before {pending.expires_at:%H:%M:%S} UTC" if pending.expires_at else ""
        return Card(
            title="Settings: NEEDS_CONFIRMATION",
            icon="❓",
            rows=(("Mode", "REAL"), ("Confirm", f"/confirm {pending.token}")),
            lines=tuple(f"raises risk: {risk}" for risk in pending.risks),
            footer=(f"Nothing changed yet. Send /confirm {pending.token}{expires} to apply.",),
        )
    lines = tuple(
        f"{c.field}{f' [{c.symbol}]' if c.symbol else ''}: {c.old!r} -> {c.new!r}"
        + ("" if c.changed else " (unchanged)")
        for c in changes
    )
    return Card(
        title="Settings changed" if any(c.changed for c in changes) else "Nothing changed",
        icon="⚙️",
        lines=(*lines, "Applies from the next cycle."),
    )


CredentialsLoader = Callable[[KestrelSettings], object]


def runtime_factory(
    base: KestrelSettings, load_credentials: CredentialsLoader | None = None
) -> RuntimeFactory:
    """What the bot passes as `runtime`: at each command, the process's runtime for the
    settings in force now (configured `base` + live changes), built in `base`'s mode.
    `load_credentials` registers REAL credentials first (the Prefect layer passes its
    ExchangeAccount block loader; kestrel itself never imports Prefect)."""

    def build() -> Runtime:
        from kestrel.operator.live import resolve_settings
        from kestrel.runtime import get_runtime

        with trading_mode(base.mode):
            if load_credentials is not None:
                load_credentials(base)
            return get_runtime(resolve_settings(base))

    return build


def manual_commands(
    runtime: RuntimeFactory, settings: SettingsFactory | None = None
) -> dict[str, CommandSpec]:
    """The manual-trading and live-settings commands, ready for COMMANDS.update(...).

    `runtime` builds (or returns the cached) Runtime of the bot's mode with the live settings
    applied; `settings` returns the configured (base) settings (default: runtime().settings,
    which already carries the live changes: fine for reading, and changes are validated
    against it)."""

    def base() -> KestrelSettings:
        return settings() if settings is not None else runtime().settings

    def act(ctx: CommandContext, work: Callable[[Runtime], Card]) -> Card:
        try:
            rt = runtime()
        except KestrelError as exc:
            return Card(title="Not available", icon="❗", lines=(f"{type(exc).__name__}: {exc}",))
        with trading_mode(rt.mode):
            try:
                return work(rt)
            except (ManualError, ConfigError, SecurityError) as exc:
                return Card(title="Refused", icon="⛔", lines=(str(exc),))
            except KestrelError as exc:
                return Card(title="Failed", icon="❗", lines=(f"{type(exc).__name__}: {exc}",))

    def order(side: str) -> Callable[[CommandContext, list[str]], Card]:
        def run(ctx: CommandContext, args: list[str]) -> Card:
            request = parse_order(side, args)
            return act(ctx, lambda rt: outcome_card(submit(rt, request, actor=ctx.caller.tag)))

        return run

    def close(ctx: CommandContext, args: list[str]) -> Card:
        request = parse_close(args)
        return act(ctx, lambda rt: outcome_card(submit(rt, request, actor=ctx.caller.tag)))

    def move(ctx: CommandContext, args: list[str]) -> Card:
        request = parse_move(args)
        return act(ctx, lambda rt: outcome_card(submit(rt, request, actor=ctx.caller.tag)))

    def close_all(ctx: CommandContext, args: list[str]) -> Card:
        if args:
            raise CommandError("usage: /closeall")
        request = CloseAllRequest()
        return act(ctx, lambda rt: outcome_card(submit(rt, request, actor=ctx.caller.tag)))

    def confirm(ctx: CommandContext, args: list[str]) -> Card:
        if len(args) != 1:
            raise CommandError("usage: /confirm TOKEN")
        token = args[0]

        def work(rt: Runtime) -> Card:
            record = peek_token(rt.store, token)
            if record is not None and record.action.get("kind") == "settings":
                configured = base()
                return _change_card(
                    confirm_change(
                        rt.store,
                        configured,
                        token,
                        by=ctx.caller.tag,
                        markets=lambda: exchange_markets(configured, rt.store),
                    )
                )
            return outcome_card(confirm_token(rt, token, actor=ctx.caller.tag))

        return act(ctx, work)

    def cancel(ctx: CommandContext, args: list[str]) -> Card:
        if len(args) != 1:
            raise CommandError("usage: /cancel ORDER_ID")

        def work(rt: Runtime) -> Card:
            done = cancel_order(rt, args[0], actor=ctx.caller.tag)
            return Card(
                title="Order canceled" if done.canceled else "Not canceled",
                icon="✖️" if done.canceled else "⚠️",
                lines=(done.message,),
            )

        return act(ctx, work)

    def set_cmd(ctx: CommandContext, args: list[str]) -> Card:
        if len(args) not in (2, 3):
            raise CommandError(
                "usage: /set KEY VALUE [SYMBOL]  (e.g. /set trade_enabled off BTC/USDT)"
            )
        symbol = args[2] if len(args) == 3 else None

        def work(rt: Runtime) -> Card:
            try:
                return _change_card(
                    set_setting(
                        rt.store, base(), args[0], args[1], symbol=symbol, by=ctx.caller.tag
                    )
                )
            except SettingsError as exc:
                return Card(title="Refused", icon="⛔", lines=(str(exc),))

        return act(ctx, work)

    def unset(ctx: CommandContext, args: list[str]) -> Card:
        if len(args) not in (1, 2):
            raise CommandError("usage: /unset KEY [SYMBOL]")
        symbol = args[1] if len(args) == 2 else None

        def work(rt: Runtime) -> Card:
            try:
                change = reset_setting(rt.store, base(), args[0], symbol=symbol, by=ctx.caller.tag)
            except SettingsError as exc:
                return Card(title="Refused", icon="⛔", lines=(str(exc),))
            return _change_card([change])

        return act(ctx, work)

    def watch(ctx: CommandContext, args: list[str]) -> Card:
        if len(args) != 2 or args[0].lower() not in ("add", "remove"):
            raise CommandError("usage: /watch add|remove SYMBOL")

        def work(rt: Runtime) -> Card:
            configured = base()
            try:
                if args[0].lower() == "add":
                    markets, where = exchange_markets(configured, rt.store)
                    change = watch_add(
                        rt.store,
                        configured,
                        args[1],
                        markets=markets,
                        by=ctx.caller.tag,
                        exchange_name=where,
                    )
                else:
                    change = watch_remove(rt.store, configured, args[1], by=ctx.caller.tag)
            except SettingsError as exc:
                return Card(title="Refused", icon="⛔", lines=(str(exc),))
            return _change_card([change])

        return act(ctx, work)

    def show(ctx: CommandContext, args: list[str]) -> Card:
        def work(rt: Runtime) -> Card:
            shown = describe(base(), rt.store)
            lines = [
                f"{i['symbol']} {i['timeframe']}: trading {'on' if i['trade_enabled'] else 'OFF'}, "
                f"alerts {'on' if i['alert_enabled'] else 'OFF'}, {i['trade_amount_usd']} USD, "
                f"{i['strategy'] or 'default strategy'}"
                for i in shown["watchlist"]
            ]
            lines += [f"{key} = {shown['settings'][key]}" for key in shown["live_fields"]]
            return Card(
                title=f"Settings ({shown['mode']}, revision {shown['revision']})",
                icon="⚙️",
                lines=tuple(lines),
            )

        return act(ctx, work)

    def reset(ctx: CommandContext, args: list[str]) -> Card:
        if len(args) != 2 or args[1].lower() != "yes":
            raise CommandError("usage: /reset BALANCE yes  (DEMO only: archives the paper books)")
        balance = _decimal(args[0], "balance")

        def work(rt: Runtime) -> Card:
            outcome = reset_paper_account(
                rt.store,
                rt.settings,
                balance=balance,
                actor=ctx.caller.tag,
                price_of=lambda s: to_decimal(rt.exchange.fetch_ticker(s)["last"]),
            )
            return Card(title="Paper account reset", icon="♻️", lines=tuple(reset_lines(outcome)))

        return act(ctx, work)

    return {
        "buy": CommandSpec("Buy: /buy SYMBOL AMOUNT [QUOTE] [limit P] [sl P] [tp P]", order("buy")),
        "sell": CommandSpec("Sell: /sell SYMBOL AMOUNT [limit P]", order("sell")),
        "close": CommandSpec("Close a position: /close SYMBOL [50%]", close),
        "closeall": CommandSpec("Close every open position", close_all),
        "move": CommandSpec(
            "Move a position's levels: /move SYMBOL [sl P] [tp P] [trail PCT [from PCT]]", move
        ),
        "confirm": CommandSpec("Confirm a REAL-mode action or setting: /confirm TOKEN", confirm),
        "cancel": CommandSpec("Cancel an order: /cancel ORDER_ID", cancel),
        "set": CommandSpec("Change a setting: /set KEY VALUE [SYMBOL]", set_cmd),
        "unset": CommandSpec("Back to the configured value: /unset KEY [SYMBOL]", unset),
        "watch": CommandSpec("Watchlist: /watch add|remove SYMBOL", watch),
        "settings": CommandSpec("Settings in force", show),
        "reset": CommandSpec("DEMO: reset the paper account: /reset BALANCE yes", reset),
    }


def register_manual_commands(
    settings: KestrelSettings, load_credentials: CredentialsLoader | None = None
) -> None:
    """Add the manual-trading commands to the bot's registry (idempotent), for `settings`."""
    from kestrel.notify.commands import COMMANDS

    COMMANDS.update(manual_commands(runtime_factory(settings, load_credentials), lambda: settings))
