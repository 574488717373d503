"""The paper exchange's fill rules as objects: when an order fills, how much, at what price,
and what it pays. docs/paper-exchange.md explains each rule and why it is what it is.

They are pure (candle and order terms in, an Execution out) and know nothing about storage,
so a backtest can use `FillRules.from_settings(settings.paper)` exactly as the paper exchange
does. All prices land on the market's tick, rounded against the trader; all amounts on its
step, rounded down.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kestrel.config.settings import PaperSettings
from kestrel.exchange.settings import FeeMode, LimitFill
from kestrel.models import Candle
from kestrel.money import to_decimal

BPS = Decimal("10000")
BNB = "BNB"
BNB_FEE_QUANTUM = Decimal("0.00000001")  # Binance reports BNB commissions to 8 decimals

Side = Literal["buy", "sell"]
Liquidity = Literal["taker", "maker"]
Kind = Literal["market", "limit", "stop_market", "stop_loss_limit"]


def on_tick(price: Decimal, tick: Decimal, side: Side) -> Decimal:
    """`price` on the tick grid, rounded against the trader: buys up, sells down."""
    rounding = ROUND_CEILING if side == "buy" else ROUND_FLOOR
    return (price / tick).to_integral_value(rounding=rounding) * tick


def worse(side: Side, a: Decimal, b: Decimal) -> Decimal:
    """The price the trader would rather not get: the higher for a buy, the lower for a sell."""
    return max(a, b) if side == "buy" else min(a, b)


@dataclass(frozen=True)
class Bar:
    """A candle in Decimal, so every rule computes exactly."""

    timestamp: int
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal

    @classmethod
    def of(cls, candle: Candle) -> Bar:
        return cls(
            candle.timestamp,
            to_decimal(candle.open),
            to_decimal(candle.high),
            to_decimal(candle.low),
            to_decimal(candle.volume),
        )


@dataclass(frozen=True)
class OrderTerms:
    """What the rules need to know about an open order."""

    kind: Kind
    side: Side
    remaining: Decimal
    limit: Decimal | None = None
    stop: Decimal | None = None
    triggered: bool = False  # a stop order whose stop has already been hit
    fresh: bool = True  # no candle has been matched against it yet
    taking: bool = False  # a limit that was marketable last candle and is not done


@dataclass(frozen=True)
class Execution:
    price: Decimal
    amount: Decimal
    liquidity: Liquidity
    triggered: bool  # the stop was hit in this candle (stop orders only)
    taking: bool = False  # a limit order still marketable: it keeps taking next candle


@dataclass(frozen=True)
class Fee:
    cost: Decimal
    currency: str
    rate: Decimal
    bnb_price: Decimal | None = None  # the rate a BNB fee was converted at


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TriggerRule(_Rule):
    """When a resting price is reached. Candles do not say in which order high and low
    happened, so a limit is only sure to have filled when the price went BEYOND it: at
    exactly the limit, the orders queued before ours may have taken all there was."""

    limit_fill: LimitFill = "through"

    def limit_reached(self, side: Side, limit: Decimal, bar: Bar) -> bool:
        if self.limit_fill == "touch":
            return bar.low <= limit if side == "buy" else bar.high >= limit
        return bar.low < limit if side == "buy" else bar.high > limit

    def stop_hit(self, side: Side, stop: Decimal, bar: Bar) -> bool:
        """A stop triggers when the price reaches it (Binance triggers on the last trade)."""
        return bar.high >= stop if side == "buy" else bar.low <= stop

    def stop_reference(self, side: Side, stop: Decimal, bar: Bar) -> Decimal:
        """Where a triggered stop starts executing: the stop, or the open when the candle
        opened beyond it (a gap: the stop price never traded)."""
        return worse(side, stop, bar.open)


class ParticipationCap(_Rule):
    """The share of a candle's volume the account's orders may take, together, oldest order
    first: an order bigger than that fills partially over several candles."""

    fraction: Decimal | None = Field(default=Decimal("0.1"), gt=0, le=1)

    def room(self, bar: Bar) -> Decimal | None:
        """What all orders together may fill in `bar`; None: no limit."""
        return None if self.fraction is None else bar.volume * self.fraction

    @staticmethod
    def take(remaining: Decimal, room: Decimal | None, step: Decimal) -> Decimal:
        """How much of `remaining` fills with `room` left: rounded down to the step."""
        wanted = remaining if room is None else min(remaining, room)
        return (wanted / step).to_integral_value(rounding=ROUND_FLOOR) * step


class SlippageModel(_Rule):
    """What a taker pays beyond the reference price (the next trade: the candle's open):
    a spread of `spread_bps`, plus `impact` x the candle's range x the share of its volume
    taken. Never better than the reference, never beyond the candle's high (buys) or low."""

    spread_bps: Decimal = Field(default=Decimal("5"), ge=0)
    impact: Decimal = Field(default=Decimal("1"), ge=0)

    def price(self, side: Side, reference: Decimal, bar: Bar, amount: Decimal) -> Decimal:
        share = min(amount / bar.volume, Decimal(1)) if bar.volume > 0 else Decimal(1)
        cost = reference * self.spread_bps / BPS + self.impact * (bar.high - bar.low) * share
        if side == "buy":
            return max(min(reference + cost, bar.high), reference)
        return min(max(reference - cost, bar.low), reference)

    def estimate(self, side: Side, reference: Decimal) -> Decimal:
        """The spread part alone: what a market order is expected to pay before it fills."""
        moved = reference * self.spread_bps / BPS
        return reference + moved if side == "buy" else reference - moved


class FeeRule(_Rule):
    """Binance spot: a buy pays its fee in the base asset it receives, a sell in the quote
    it receives. With mode "bnb" and enough free BNB, the fee is paid in BNB instead, with
    `bnb_discount` off, converted at `bnb_prices[quote]` (1 for BNB-quoted pairs, the fill
    price for BNB-based ones); otherwise the standard fee applies."""

    maker: Decimal = Field(default=Decimal("0.001"), ge=0)
    taker: Decimal = Field(default=Decimal("0.001"), ge=0)
    mode: FeeMode = "standard"
    bnb_discount: Decimal = Field(default=Decimal("0.25"), ge=0, lt=1)
    bnb_prices: dict[str, Decimal] = Field(default_factory=dict)

    def rate(self, liquidity: Liquidity) -> Decimal:
        return self.taker if liquidity == "taker" else self.maker

    def bnb_price(self, base: str, quote: str, price: Decimal) -> Decimal | None:
        """Quote per BNB for a fill of base/quote at `price`, or None when unknown."""
        if quote == BNB:
            return Decimal(1)
        if base == BNB:
            return price
        return self.bnb_prices.get(quote)

    def charge(
        self,
        side: Side,
        amount: Decimal,
        price: Decimal,
        liquidity: Liquidity,
        base: str,
        quote: str,
        bnb_free: Decimal = Decimal(0),
    ) -> Fee:
        rate = self.rate(liquidity)
        cost = amount * price
        if self.mode == "bnb":
            bnb_price = self.bnb_price(base, quote, price)
            if bnb_price is not None:
                bnb_rate = rate * (1 - self.bnb_discount)
                bnb_fee = (cost * bnb_rate / bnb_price).quantize(
                    BNB_FEE_QUANTUM, rounding=ROUND_CEILING
                )
                if bnb_fee <= bnb_free:
                    return Fee(bnb_fee, BNB, bnb_rate, bnb_price)
        if side == "buy":
            return Fee(amount * rate, base, rate)
        return Fee(cost * rate, quote, rate)


class FillRules(_Rule):
    """All the rules, in one object: `execute` says what an open order gets in one candle."""

    fees: FeeRule = Field(default_factory=FeeRule)
    slippage: SlippageModel = Field(default_factory=SlippageModel)
    trigger: TriggerRule = Field(default_factory=TriggerRule)
    participation: ParticipationCap = Field(default_factory=ParticipationCap)

    @classmethod
    def from_settings(cls, settings: PaperSettings) -> FillRules:
        return cls(
            fees=FeeRule(
                maker=settings.maker_fee,
                taker=settings.taker_fee,
                mode=settings.fee_mode,
                bnb_discount=settings.bnb_discount,
                bnb_prices=settings.bnb_prices,
            ),
            slippage=SlippageModel(
                spread_bps=settings.slippage_bps, impact=settings.slippage_impact
            ),
            trigger=TriggerRule(limit_fill=settings.limit_fill),
            participation=ParticipationCap(fraction=settings.participation_cap),
        )

    def execute(
        self, order: OrderTerms, bar: Bar, tick: Decimal, step: Decimal, room: Decimal | None
    ) -> Execution | None:
        """The fill `order` gets in `bar` with `room` of the candle's volume left, or None.

        A fill of zero (no room left) still reports a stop hit in this candle: the caller
        records it, and the order then fills as a market (or limit) order later."""
        just_triggered = False
        reference = bar.open
        if order.stop is not None and not order.triggered:
            if not self.trigger.stop_hit(order.side, order.stop, bar):
                return None
            just_triggered = True
            reference = self.trigger.stop_reference(order.side, order.stop, bar)
        amount = self.participation.take(order.remaining, room, step)
        if order.kind in ("market", "stop_market"):
            if amount <= 0:
                return Execution(reference, amount, "taker", True) if just_triggered else None
            price = self.slippage.price(order.side, reference, bar, amount)
            return Execution(on_tick(price, tick, order.side), amount, "taker", just_triggered)
        return self._limit(order, bar, tick, amount, reference, just_triggered)

    def _limit(
        self,
        order: OrderTerms,
        bar: Bar,
        tick: Decimal,
        amount: Decimal,
        reference: Decimal,
        just_triggered: bool,
    ) -> Execution | None:
        """A limit order (or a triggered stop-limit). When it arrives, or while a marketable
        one is still filling (the volume cap left a remainder), it takes like a market order
        but never beyond its limit; otherwise it rests and fills at its limit, traded through."""
        assert order.limit is not None
        limit, buy = order.limit, order.side == "buy"
        entering = order.fresh or just_triggered or order.taking
        marketable = entering and (reference <= limit if buy else reference >= limit)
        if marketable:
            if amount <= 0:
                return Execution(reference, amount, "taker", just_triggered, taking=True)
            slipped = self.slippage.price(order.side, reference, bar, amount)
            slipped = on_tick(slipped, tick, order.side)
            price = min(slipped, limit) if buy else max(slipped, limit)
            return Execution(price, amount, "taker", just_triggered, taking=True)
        if amount > 0 and self.trigger.limit_reached(order.side, limit, bar):
            return Execution(limit, amount, "maker", just_triggered)
        if just_triggered:
            return Execution(reference, Decimal(0), "taker", True)
        return None
