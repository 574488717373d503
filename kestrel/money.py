"""Exact money. Every amount and price is a Decimal; floats only live inside indicator math.

Precision (how many digits an exchange accepts) is ccxt's: `to_precision` runs ccxt's own
`decimal_to_precision` in the market's precision mode (decimal places, significant digits or
tick size), so Kestrel rounds exactly as `exchange.amount_to_precision` / `price_to_precision`
would, except that the caller always says which way: ccxt rounds prices to the NEAREST step,
which can move a buy limit up (97.126 -> 97.13) and pay more than asked.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from enum import IntEnum, StrEnum
from typing import Literal

ZERO = Decimal("0")
CENT = Decimal("0.01")


class PrecisionMode(IntEnum):
    """How a market's precision numbers count, with ccxt's own values (exchange.precisionMode,
    ccxt.base.decimal_to_precision's constants; a test holds them equal)."""

    DECIMAL_PLACES = 2  # precision 2 -> 0.01
    SIGNIFICANT_DIGITS = 3  # precision 3 -> 97.1, 0.00123
    TICK_SIZE = 4  # precision 0.05 -> multiples of 0.05 (Binance)


class Rounding(StrEnum):
    """Which way a value moves onto the market's grid. Every caller picks one on purpose."""

    DOWN = "down"  # toward zero: amounts, buy limits
    UP = "up"  # away from zero: sell limits, sell stops
    NEAREST = "nearest"  # ccxt's ROUND: only for ccxt's own price_to_precision surface


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


def to_precision(
    value: Decimal, precision: Decimal, mode: PrecisionMode, rounding: Rounding
) -> Decimal:
    """`value` (>= 0) on the market's grid, rounded the way the caller says.

    DOWN is ccxt's TRUNCATE, NEAREST its ROUND. ccxt has no "up", so UP is the truncated
    value plus one step of the grid at that value, passed through ccxt again (9.95 with 2
    significant digits truncates to 9.9 and goes up to 10)."""
    if value < 0:
        raise ValueError(f"cannot round a negative amount or price: {value}")
    if rounding is Rounding.NEAREST:
        return _ccxt(value, "ROUND", precision, mode)
    down = _ccxt(value, "TRUNCATE", precision, mode)
    if rounding is Rounding.DOWN or down == value:
        return down
    return _ccxt(down + step_at(down, precision, mode), "TRUNCATE", precision, mode)


def step_at(value: Decimal, precision: Decimal, mode: PrecisionMode) -> Decimal:
    """The grid's step at `value`: fixed for ticks and decimal places, but with
    significant digits it grows with the value's magnitude (3 digits: 0.1 at 97.1)."""
    if mode is PrecisionMode.TICK_SIZE:
        return precision
    if mode is PrecisionMode.DECIMAL_PLACES or value == 0:
        return Decimal(1).scaleb(-int(precision))
    return Decimal(1).scaleb(value.adjusted() - int(precision) + 1)


def _ccxt(
    value: Decimal, rounding: Literal["TRUNCATE", "ROUND"], precision: Decimal, mode: PrecisionMode
) -> Decimal:
    """ccxt's decimal_to_precision, unpadded. Imported here, not at the top: importing ccxt
    takes seconds, and commands that never round (`kestrel config`) should not pay it."""
    from ccxt.base import decimal_to_precision as ccxt_precision

    how = ccxt_precision.ROUND if rounding == "ROUND" else ccxt_precision.TRUNCATE
    digits: Decimal | int = precision if mode is PrecisionMode.TICK_SIZE else int(precision)
    # ccxt sets the thread's decimal context (rounding, traps) as a side effect; a local
    # context keeps that from leaking into the rest of Kestrel's arithmetic.
    with localcontext():
        text = ccxt_precision.decimal_to_precision(
            value, how, digits, int(mode), ccxt_precision.NO_PADDING
        )
    return Decimal(text)


def round_down_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Amounts round down to the step so we never order more than we can pay for.
    Market rules live on MarketSpec (amount_to_precision); this is for a bare step."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)
