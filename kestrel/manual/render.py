"""Plain-text renderings of manual outcomes, shared by the CLI, flow logs and Telegram."""

from __future__ import annotations

from decimal import Decimal

from kestrel.models.manual import (
    CancelOutcome,
    LegPreview,
    ManualOutcome,
    OutcomeStatus,
    ResetOutcome,
    canonical_decimal,
)


def num(value: Decimal | None, places: int = 8) -> str:
    """Exact but readable: at most `places` decimals, no trailing zeros."""
    if value is None:
        return "-"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        value = value.quantize(Decimal(1).scaleb(-places))
    return canonical_decimal(value) or "0"


def leg_lines(leg: LegPreview) -> list[str]:
    base, _, quote = leg.symbol.partition("/")
    verdict = "APPROVED" if leg.approved else "BLOCKED"
    head = f"{leg.side.value.upper()} {num(leg.amount)} {base} {leg.symbol} {leg.type.value}"
    if leg.type.value == "limit":
        head += f" @ {num(leg.price)}"
    lines = [
        f"{head}  [{verdict}]",
        f"  price {num(leg.price)} {quote} (last {num(leg.last_price)}), value "
        f"{num(leg.notional)} {quote}, est. fee {num(leg.estimated_fee)} {leg.fee_currency} "
        f"({num(leg.fee_rate * 100, 4)}%)",
        f"  {'cost' if leg.side.value == 'buy' else 'proceeds'} {num(abs(leg.quote_delta))} "
        f"{quote}; position {num(leg.position_before)} -> {num(leg.position_after)} {base}, "
        f"exposure {num(leg.exposure_after, 2)} {quote}"
        + (
            f" (~{num(leg.exposure_after_usd, 2)} USD)"
            if leg.exposure_after_usd is not None
            else ""
        )
        + f"; open positions after: {leg.open_positions_after}",
    ]
    if leg.stop_loss is not None or leg.take_profit is not None:
        lines.append(f"  stop-loss {num(leg.stop_loss)}, take-profit {num(leg.take_profit)}")
    for reason in leg.reasons:
        detail = f": {reason.detail}" if reason.detail else ""
        lines.append(f"  - {reason.code.value}{detail}")
    lines.extend(f"  ! {warning}" for warning in leg.warnings)
    if leg.client_order_id:
        lines.append(f"  client order id {leg.client_order_id}")
    return lines


def outcome_lines(outcome: ManualOutcome) -> list[str]:
    lines = [f"[{outcome.mode.value}] {outcome.action}: {outcome.status.value}"]
    lines.append(f"request id {outcome.request_id}")
    for leg in outcome.legs:
        lines.extend(leg_lines(leg))
    for order in outcome.orders:
        average = f" avg {num(order.average_price)}" if order.average_price else ""
        lines.append(
            f"order {order.client_order_id} {order.symbol} {order.side.value} "
            f"{num(order.amount)}: {order.status.value} filled {num(order.filled)}{average}"
        )
    lines.extend(f"error: {error}" for error in outcome.errors)
    if outcome.message:
        lines.append(outcome.message)
    if outcome.status is OutcomeStatus.NEEDS_CONFIRMATION and outcome.token:
        expires = f" (expires {outcome.expires_at:%H:%M:%S} UTC)" if outcome.expires_at else ""
        lines.append(f"confirmation token: {outcome.token}{expires}")
    return lines


def cancel_lines(outcome: CancelOutcome) -> list[str]:
    return [outcome.message]


def reset_lines(outcome: ResetOutcome) -> list[str]:
    balances = ", ".join(f"{num(v)} {c}" for c, v in sorted(outcome.balances.items()))
    before = ", ".join(f"{num(v)} {c}" for c, v in sorted(outcome.previous_balances.items()))
    return [
        f"paper account reset to {balances} (was {before or 'empty'})",
        f"{len(outcome.orders_canceled)} live order(s) canceled, "
        f"{len(outcome.positions_closed)} position(s) closed out",
        f"previous books archived as {outcome.archive_key}",
    ]
