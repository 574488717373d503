"""What analysis, risk and decision hand each other: signals, verdicts with reasons, decisions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field

from kestrel.models._base import KestrelModel, Money, utcnow
from kestrel.models.orders import OrderType, Side


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"

    @property
    def side(self) -> Side | None:
        return {Action.BUY: Side.BUY, Action.SELL: Side.SELL}.get(self)


class ReasonCode(StrEnum):
    SIGNAL_BUY = "SIGNAL_BUY"
    SIGNAL_SELL = "SIGNAL_SELL"
    SKIP_NO_SIGNAL = "SKIP_NO_SIGNAL"
    SKIP_DISABLED_TRADE = "SKIP_DISABLED_TRADE"
    SKIP_INVALID_TRADE_AMOUNT = "SKIP_INVALID_TRADE_AMOUNT"
    SKIP_MAX_OPEN_ORDERS = "SKIP_MAX_OPEN_ORDERS"
    SKIP_MAX_POSITIONS = "SKIP_MAX_POSITIONS"
    SKIP_MAX_EXPOSURE = "SKIP_MAX_EXPOSURE"
    SKIP_COOLDOWN_ACTIVE = "SKIP_COOLDOWN_ACTIVE"
    SKIP_PRICE_CHANGE_INSUFFICIENT = "SKIP_PRICE_CHANGE_INSUFFICIENT"
    SKIP_MARKET_DATA_STALE = "SKIP_MARKET_DATA_STALE"
    SKIP_NO_PRICE = "SKIP_NO_PRICE"
    SKIP_NO_POSITION = "SKIP_NO_POSITION"
    SKIP_POSITION_OPEN = "SKIP_POSITION_OPEN"
    SKIP_EXIT_PENDING = "SKIP_EXIT_PENDING"
    SKIP_SYMBOL_BUSY = (
        "SKIP_SYMBOL_BUSY"  # another run holds the symbol's lease (kestrel.execution.lease)
    )
    SKIP_INSUFFICIENT_DATA = "SKIP_INSUFFICIENT_DATA"
    SKIP_NO_CONSENSUS = "SKIP_NO_CONSENSUS"
    SKIP_DISABLED_ALERT = "SKIP_DISABLED_ALERT"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    BLOCKED_EMERGENCY_STOP = "BLOCKED_EMERGENCY_STOP"
    BLOCKED_CIRCUIT_BREAKER = "BLOCKED_CIRCUIT_BREAKER"
    BLOCKED_DAILY_LOSS_LIMIT = "BLOCKED_DAILY_LOSS_LIMIT"
    BLOCKED_NO_MARKET_DATA = "BLOCKED_NO_MARKET_DATA"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    BELOW_MIN_NOTIONAL = "BELOW_MIN_NOTIONAL"
    BELOW_MIN_AMOUNT = "BELOW_MIN_AMOUNT"
    APPROVED = "APPROVED"
    SIZE_CLIPPED = "SIZE_CLIPPED"
    EXIT_OPPOSITE_SIGNAL = "EXIT_OPPOSITE_SIGNAL"
    STOP_LOSS_HIT = "STOP_LOSS_HIT"
    TAKE_PROFIT_HIT = "TAKE_PROFIT_HIT"
    TRAILING_STOP_HIT = "TRAILING_STOP_HIT"


class Reason(KestrelModel):
    """A machine-readable code plus the numbers that produced it."""

    code: ReasonCode
    detail: str = ""
    values: dict[str, Any] = Field(default_factory=dict)


class Signal(KestrelModel):
    action: Action
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = ""
    analyst: str = "technical"
    suggested_entry: Money | None = None
    suggested_stop_loss: Money | None = None
    suggested_take_profit: Money | None = None


class Abstention(KestrelModel):
    """An analyst that gave no verdict (timeout, HTTP error, malformed answer, ...). It never
    counts as a vote, so it can never cause a trade."""

    analyst: str
    kind: str = Field(description="timeout | http_error | network | malformed | error | ...")
    detail: str = ""


class Consensus(KestrelModel):
    """How the panel's votes became one signal. `support[action]` is the share of the
    panel's weight x confidence behind that action (weights of abstainers excluded)."""

    mode: str = Field(description="SOLO | SWARM")
    threshold: float
    support: dict[str, float] = Field(default_factory=dict)
    agreement: float = 0.0
    reached: bool = False
    voters: int = 0
    abstained: int = 0
    weights: dict[str, float] = Field(default_factory=dict)


class AnalysisResult(KestrelModel):
    symbol: str
    timeframe: str
    candle_timestamp: int
    price: Money
    indicators: dict[str, float | None]
    signal: Signal
    votes: list[Signal] = Field(default_factory=list)
    abstentions: list[Abstention] = Field(default_factory=list)
    dissent: list[Signal] = Field(
        default_factory=list, description="votes that disagree with the final action"
    )
    consensus: Consensus | None = None
    profile: str = ""
    enough_data: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class RiskVerdict(KestrelModel):
    approved: bool
    reasons: list[Reason]
    amount: Money = Decimal("0")
    price: Money | None = None
    stop_loss: Money | None = Field(default=None, description="the levels the size was for")
    take_profit: Money | None = None

    @property
    def codes(self) -> list[ReasonCode]:
        return [reason.code for reason in self.reasons]


class AlertVerdict(KestrelModel):
    """Whether this cycle's signal was worth telling a human (ALERT_EMITTED), and why not."""

    emitted: bool
    action: Action = Action.HOLD
    reasons: list[Reason] = Field(default_factory=list)

    @property
    def codes(self) -> list[ReasonCode]:
        return [reason.code for reason in self.reasons]


class Decision(KestrelModel):
    """The final word of a cycle for one symbol: what to do and every reason why."""

    cycle_id: str
    symbol: str
    action: Action
    reasons: list[Reason]
    order_type: OrderType = OrderType.MARKET
    amount: Money = Decimal("0")
    price: Money | None = None
    stop_loss: Money | None = None
    take_profit: Money | None = None
    client_order_id: str | None = None
    profile: str = ""
    strategy: str = Field(
        default="", description="name@version#hash of the strategy's code and parameters"
    )
    alert: AlertVerdict | None = None
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def is_trade(self) -> bool:
        return self.action is not Action.HOLD
