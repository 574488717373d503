"""Exact money. Every amount and price is a Decimal; floats only live inside indicator math."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation

ZERO = Decimal("0")
CENT = Decimal("0.01")


def to_decimal(value: object) -> Decimal:
    """Convert via str so that 0.1 becomes Decimal('0.1'), not its binary expansion."""
    if isinstance(value, Decimal):
        result = value
    else:
        try:
            result = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def round_down_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Amounts round down to the step so we never order more than we can pay for."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def round_to_tick(value: Decimal, tick: Decimal) -> Decimal:
    if tick <= 0:
        return value
    return (value / tick).to_integral_value(rounding=ROUND_HALF_EVEN) * tick


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)
