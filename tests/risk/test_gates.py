"""Safety gates at and around their boundaries; always on in REAL, switchable in DEMO."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from kestrel.mode import TradingMode
from kestrel.models import Action, ReasonCode, utcnow
from kestrel.risk import DailyPnl, assess
from kestrel.risk.controls import CircuitBreaker

from .helpers import HOUR, NOW, context, trading

D = Decimal


def daily(pnl: str, start: str | None = "10000", realized: str = "0") -> DailyPnl:
    return DailyPnl(
        day="2024-01-01",
        start_equity_usd=D(start) if start is not None else None,
        realized_usd=D(realized),
        unrealized_usd=D(pnl) - D(realized),
    )


TRIPPED = CircuitBreaker(
    active=True,
    tripped=True,
    reason="3 consecutive failed orders (max 3)",
    trigger="failed_orders",
    streak=3,
    tripped_at=utcnow(),
    cool_off_until=utcnow() + timedelta(hours=1),
)


@pytest.mark.parametrize(
    ("changes", "blocked_by"),
    [
        ({"emergency_stop": True}, ReasonCode.BLOCKED_EMERGENCY_STOP),
        ({"emergency_stop": False}, None),
        ({"circuit_breaker": TRIPPED}, ReasonCode.BLOCKED_CIRCUIT_BREAKER),
        ({"circuit_breaker": CircuitBreaker()}, None),
        # daily loss limit: 5% of 10 000 = 500 USD, realized + unrealized
        ({"daily": daily("-499.99")}, None),
        ({"daily": daily("-500")}, ReasonCode.BLOCKED_DAILY_LOSS_LIMIT),
        ({"daily": daily("-500.01", realized="-300")}, ReasonCode.BLOCKED_DAILY_LOSS_LIMIT),
        ({"daily": daily("250")}, None),
        # the tighter of the % and the USD limit applies
        (
            {"daily": daily("-200"), "trading": trading(gates={"daily_loss_limit_usd": "200"})},
            ReasonCode.BLOCKED_DAILY_LOSS_LIMIT,
        ),
        (
            {"daily": daily("-199.99"), "trading": trading(gates={"daily_loss_limit_usd": "200"})},
            None,
        ),
        ({"daily": daily("-600"), "trading": trading(gates={"daily_loss_limit_pct": "10"})}, None),
        ({"daily": daily("-600"), "trading": trading(gates={"daily_loss_limit_pct": None})}, None),
        # a % limit that cannot be evaluated fails closed
        ({"daily": daily("0", start=None)}, ReasonCode.BLOCKED_DAILY_LOSS_LIMIT),
        # cooldown per symbol and side: 2 candles after the last fill on that side
        ({"last_fill_ms": {"buy": NOW - 2 * HOUR + 1}}, ReasonCode.SKIP_COOLDOWN_ACTIVE),
        ({"last_fill_ms": {"buy": NOW - 2 * HOUR}}, None),
        ({"last_fill_ms": {"sell": NOW}}, None),  # the other side does not count
        ({"last_fill_ms": {"buy": NOW}, "trading": trading(gates={"cooldown_candles": 0})}, None),
        (
            {
                "last_fill_ms": {"buy": NOW - HOUR},
                "trading": trading(gates={"cooldown_candles": 0.5}),
            },
            None,
        ),
    ],
)
def test_gate_boundaries(changes: dict[str, Any], blocked_by: ReasonCode | None) -> None:
    verdict = assess(context(**changes))
    if blocked_by is None:
        assert verdict.approved, verdict.reasons
    else:
        assert not verdict.approved
        assert blocked_by in verdict.codes
        assert verdict.amount == 0


def test_reasons_carry_the_numbers() -> None:
    (loss,) = assess(context(daily=daily("-612.5", realized="-100"))).reasons
    assert D(loss.values["pnl_usd"]) == D("-612.5") and D(loss.values["limit_usd"]) == 500
    assert loss.values["realized_usd"] == "-100"
    (cool,) = assess(context(last_fill_ms={"buy": NOW - HOUR})).reasons
    assert cool.values == {
        "side": "buy",
        "elapsed_ms": HOUR,
        "cooldown_ms": 2 * HOUR,
        "remaining_ms": HOUR,
    }
    (breaker,) = assess(context(circuit_breaker=TRIPPED)).reasons
    assert breaker.values["trigger"] == "failed_orders" and breaker.values["streak"] == 3


ALL_OFF: dict[str, Any] = {
    "emergency_stop": False,
    "circuit_breaker": False,
    "cooldown": False,
    "daily_loss_limit": False,
}
EVERY_GATE: dict[str, Any] = {
    "emergency_stop": True,
    "circuit_breaker": TRIPPED,
    "daily": daily("-5000"),
    "last_fill_ms": {"buy": NOW},
}


def test_demo_can_switch_gates_off() -> None:
    verdict = assess(context(trading=trading(gates=ALL_OFF), **EVERY_GATE))
    assert verdict.approved, verdict.reasons


def test_real_mode_enforces_every_gate_whatever_the_switches() -> None:
    verdict = assess(context(mode=TradingMode.REAL, trading=trading(gates=ALL_OFF), **EVERY_GATE))
    assert not verdict.approved
    assert set(verdict.codes) == {
        ReasonCode.BLOCKED_EMERGENCY_STOP,
        ReasonCode.BLOCKED_CIRCUIT_BREAKER,
        ReasonCode.BLOCKED_DAILY_LOSS_LIMIT,
        ReasonCode.SKIP_COOLDOWN_ACTIVE,
    }


@pytest.mark.parametrize("gate", sorted(ALL_OFF))
def test_each_switch_only_turns_its_own_gate_off(gate: str) -> None:
    verdict = assess(context(trading=trading(gates={gate: False}), **EVERY_GATE))
    assert not verdict.approved
    off_code = {
        "emergency_stop": ReasonCode.BLOCKED_EMERGENCY_STOP,
        "circuit_breaker": ReasonCode.BLOCKED_CIRCUIT_BREAKER,
        "daily_loss_limit": ReasonCode.BLOCKED_DAILY_LOSS_LIMIT,
        "cooldown": ReasonCode.SKIP_COOLDOWN_ACTIVE,
    }[gate]
    assert off_code not in verdict.codes
    assert len(verdict.codes) == 3


def test_gates_block_exits_too() -> None:
    """Kill switch, breaker and loss limit stop every order from a cycle, exits included
    (protective stop-loss / take-profit exits are the position monitor's, not ours)."""
    from .helpers import position

    held: dict[str, Any] = {"position": position(), "base_free": D("0.01")}
    assert assess(context(Action.SELL, **held)).approved
    for gate in ({"emergency_stop": True}, {"circuit_breaker": TRIPPED}, {"daily": daily("-5000")}):
        assert not assess(context(Action.SELL, **held, **gate)).approved
