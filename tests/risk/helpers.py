"""Builders for risk tests: a RiskContext where every gate and rule passes, which each test
then breaks in exactly one place."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kestrel.config.settings import RiskSettings, WatchlistItem
from kestrel.mode import TradingMode
from kestrel.models import Action, AnalysisResult, MarketSpec, Position, Signal
from kestrel.risk import RiskContext
from kestrel.strategy.settings import TradingSettings

HOUR = 3_600_000
CANDLE_TS = 100 * HOUR
NOW = CANDLE_TS + HOUR  # the candle has just closed
PRICE = Decimal("20000")


def analysis(
    action: Action = Action.BUY,
    confidence: float = 0.8,
    price: Decimal = PRICE,
    atr: float | None = 200.0,
    **signal: Any,
) -> AnalysisResult:
    return AnalysisResult(
        symbol="BTC/USDT",
        timeframe="1h",
        candle_timestamp=CANDLE_TS,
        price=price,
        indicators={"atr": atr, "close": float(price)},
        signal=Signal(action=action, confidence=confidence, reasoning="test", **signal),
    )


MARKET = MarketSpec(
    symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    amount_step=Decimal("0.00001"),
    price_tick=Decimal("0.01"),
    min_amount=Decimal("0.00001"),
    min_notional=Decimal("5"),
)


def trading(**sections: Any) -> TradingSettings:
    return TradingSettings.model_validate(sections)


def context(action: Action = Action.BUY, confidence: float = 0.8, **changes: Any) -> RiskContext:
    base: dict[str, Any] = {
        "item": WatchlistItem(symbol="BTC/USDT", trade_amount_usd=Decimal("100")),
        "analysis": analysis(action, confidence),
        "market": MARKET,
        "settings": RiskSettings(min_confidence=0.55, max_open_orders_per_symbol=3),
        "trading": TradingSettings(),
        "mode": TradingMode.DEMO,
        "now_ms": NOW,
        "timeframe_ms": HOUR,
        "open_orders_for_symbol": 0,
        "open_positions": 0,
        "position": None,
        "quote_free": Decimal("1000"),
        "base_free": Decimal("0"),
        "quote_to_usd": Decimal("1"),
    }
    base.update(changes)
    return RiskContext(**base)


def position(amount: str = "0.01", entry: str = "19000", **changes: Any) -> Position:
    return Position(
        position_id=changes.pop("position_id", "p1"),
        symbol=changes.pop("symbol", "BTC/USDT"),
        amount=Decimal(amount),
        avg_entry_price=Decimal(entry),
        **changes,
    )
