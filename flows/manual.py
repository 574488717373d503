"""Manual actions as flows, so a deployment run with parameters (Prefect UI, `prefect
deployment run ... --param`, an automation) can trade by hand, change settings or reset the
paper account, with the same rules as the CLI and Telegram.

`config` overrides settings (env / kestrel.toml) as in every Kestrel flow. Who acted is the
`actor` parameter, else "prefect:<flow run name>". In REAL mode a place / close / close-all /
move-stop run without `confirm` only previews and returns a token (also in the run's log and
a markdown artifact); a second run with `confirm=<token>` acts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows._entry import prepare
from kestrel.config.settings import KestrelSettings
from kestrel.errors import KestrelError
from kestrel.manual import CancelOutcome, ManualOutcome, OutcomeStatus, ResetOutcome
from kestrel.manual.render import cancel_lines, outcome_lines, reset_lines
from kestrel.operator.live import SettingsChange
from tasks.manual import (
    manual_action_task,
    manual_cancel_task,
    manual_confirm_task,
    paper_reset_task,
    settings_change_task,
)


def _change_line(change: SettingsChange) -> str:
    line = f"{change.field} {change.symbol or ''}: {change.old!r} -> {change.new!r}"
    if not change.needs_confirmation:
        return line
    return (
        f"{line} NOT APPLIED: REAL, raises risk ({'; '.join(change.risks)}); run again with "
        f"confirm={change.token} before {change.expires_at:%H:%M:%S} UTC"
    )


class ManualActionFailed(KestrelError):
    """The action ran but some of its orders failed (see the outcome's errors)."""


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    from prefect.runtime import flow_run

    return f"prefect:{flow_run.name or 'flow'}"


def _settings(config: dict[str, Any] | None) -> KestrelSettings:
    """The installation's settings with the run's `config`, which may not widen the mode or
    the REAL whitelist (a SECURITY event and SecurityError: kestrel.operator.run), resolved
    as every entry flow resolves them (flows/_entry.py: order logging wired, one line)."""
    from prefect.runtime import flow_run

    return prepare(flow_run.flow_name or "manual flow", None, config, live=False).settings


def _report(lines: list[str], key: str) -> None:
    logger = get_run_logger()
    for line in lines:
        logger.info(line)
    create_markdown_artifact(
        "\n".join(f"    {line}" for line in lines), key=key, description="manual action outcome"
    )


def _finish(outcome: ManualOutcome) -> ManualOutcome:
    _report(outcome_lines(outcome), f"manual-{outcome.mode.value.lower()}")
    if outcome.errors:
        raise ManualActionFailed("; ".join(outcome.errors))
    return outcome


@flow(name="manual-order", log_prints=True)
def manual_order(
    symbol: str,
    side: Literal["buy", "sell"],
    amount: Decimal,
    amount_in: Literal["base", "quote"] = "base",
    order_type: Literal["market", "limit"] = "market",
    price: Decimal | None = None,
    stop_loss: Decimal | None = None,
    take_profit: Decimal | None = None,
    request_id: str | None = None,
    confirm: str | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    config: dict[str, Any] | None = None,
) -> ManualOutcome:
    """Place a market or limit order through the risk rules and the order path."""
    request = {
        "kind": "place",
        "symbol": symbol,
        "side": side,
        "amount": str(amount),
        "amount_in": amount_in,
        "type": order_type,
        "price": str(price) if price is not None else None,
        "stop_loss": str(stop_loss) if stop_loss is not None else None,
        "take_profit": str(take_profit) if take_profit is not None else None,
        "request_id": request_id,
    }
    return _finish(manual_action_task(_settings(config), request, _actor(actor), confirm, dry_run))


@flow(name="manual-close", log_prints=True)
def manual_close(
    symbol: str,
    percent: Decimal | None = None,
    amount: Decimal | None = None,
    request_id: str | None = None,
    confirm: str | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    config: dict[str, Any] | None = None,
) -> ManualOutcome:
    """Close all (default) or part (percent or base amount) of a position at market."""
    request = {
        "kind": "close",
        "symbol": symbol,
        "fraction": str(Decimal(percent) / 100) if percent is not None else None,
        "amount": str(amount) if amount is not None else None,
        "request_id": request_id,
    }
    return _finish(manual_action_task(_settings(config), request, _actor(actor), confirm, dry_run))


@flow(name="manual-close-all", log_prints=True)
def manual_close_all(
    request_id: str | None = None,
    confirm: str | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    config: dict[str, Any] | None = None,
) -> ManualOutcome:
    """Close every open position at market."""
    request = {"kind": "close_all", "request_id": request_id}
    return _finish(manual_action_task(_settings(config), request, _actor(actor), confirm, dry_run))


@flow(name="manual-move-stop", log_prints=True)
def manual_move_stop(
    symbol: str,
    stop_loss: Decimal | None = None,
    take_profit: Decimal | None = None,
    trailing_distance_pct: Decimal | None = None,
    trailing_activation_pct: Decimal | None = None,
    request_id: str | None = None,
    confirm: str | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    config: dict[str, Any] | None = None,
) -> ManualOutcome:
    """Move an open position's stop-loss / take-profit, or set its trailing stop (distance
    0: off); a stop order resting on the exchange is replaced."""
    request = {
        "kind": "move_levels",
        "symbol": symbol,
        "stop_loss": _text(stop_loss),
        "take_profit": _text(take_profit),
        "trailing_distance_pct": _text(trailing_distance_pct),
        "trailing_activation_pct": _text(trailing_activation_pct),
        "request_id": request_id,
    }
    return _finish(manual_action_task(_settings(config), request, _actor(actor), confirm, dry_run))


def _text(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


@flow(name="manual-confirm", log_prints=True)
def manual_confirm(
    token: str, actor: str | None = None, config: dict[str, Any] | None = None
) -> ManualOutcome:
    """Run exactly the action a REAL-mode preview's token was issued for."""
    return _finish(manual_confirm_task(_settings(config), token, _actor(actor)))


@flow(name="manual-cancel", log_prints=True)
def manual_cancel(
    order: str, actor: str | None = None, config: dict[str, Any] | None = None
) -> CancelOutcome:
    """Cancel a live order (client order id or exchange order id)."""
    outcome = manual_cancel_task(_settings(config), order, _actor(actor))
    _report(cancel_lines(outcome), "manual-cancel")
    return outcome


@flow(name="paper-reset", log_prints=True)
def paper_reset(
    balance: Decimal,
    extra_balances: dict[str, Decimal] | None = None,
    reason: str = "",
    actor: str | None = None,
    config: dict[str, Any] | None = None,
) -> ResetOutcome:
    """DEMO only: archive the paper books and restart the paper account from `balance`."""
    outcome = paper_reset_task(
        _settings(config), Decimal(balance), _actor(actor), extra_balances, reason
    )
    _report(reset_lines(outcome), "paper-reset")
    return outcome


@flow(name="settings-change", log_prints=True)
def settings_change(
    action: Literal["set", "reset", "watch-add", "watch-remove"],
    key: str | None = None,
    value: str | None = None,
    symbol: str | None = None,
    force: bool = False,
    timeframe: str | None = None,
    trade_amount_usd: str | None = None,
    confirm: str | None = None,
    actor: str | None = None,
    config: dict[str, Any] | None = None,
) -> list[SettingsChange]:
    """Change a live setting (validated, audited, applied from the next cycle). In REAL, a
    change that loosens a risk limit only returns a token (in the log and the artifact); a
    second run with the same parameters and `confirm=<token>` applies it."""
    changes = settings_change_task(
        _settings(config),
        action,
        _actor(actor),
        key=key,
        value=value,
        symbol=symbol,
        force=force,
        timeframe=timeframe,
        trade_amount_usd=trade_amount_usd,
        confirm=confirm,
    )
    _report([_change_line(c) for c in changes], "settings-change")
    return changes


__all__ = [
    "ManualActionFailed",
    "OutcomeStatus",
    "manual_cancel",
    "manual_close",
    "manual_close_all",
    "manual_confirm",
    "manual_move_stop",
    "manual_order",
    "paper_reset",
    "settings_change",
]
