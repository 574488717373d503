"""The steps of one trading cycle for one symbol: fetch -> analyze -> risk -> decide -> execute.

Plain functions over a Runtime, so backtests and tests run them directly and Prefect tasks
(tasks/trading.py) only wrap them with retries. Every decision, HOLDs and blocks included,
is stored as an event with its reasons.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from kestrel.analysis import IndicatorSpec, analyze
from kestrel.controls import emergency_stop_state
from kestrel.decision import decide
from kestrel.errors import InvalidMarketData
from kestrel.ids import cycle_id
from kestrel.mode import current_mode
from kestrel.models import (
    Action,
    AnalysisResult,
    Candle,
    CandleSeries,
    Decision,
    Event,
    EventType,
    Order,
    PositionStatus,
    ReasonCode,
    RiskVerdict,
    timeframe_ms,
)
from kestrel.money import to_decimal
from kestrel.orders import intent_from_decision, place
from kestrel.risk import RiskContext, assess
from kestrel.runtime import Runtime
from kestrel.settings import WatchlistItem

USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI"})
CANDLE_LIMIT = 200


def fetch_candles(rt: Runtime, item: WatchlistItem, limit: int = CANDLE_LIMIT) -> CandleSeries:
    """Closed candles only: a candle still forming would make signals flicker."""
    rows = rt.exchange.fetch_ohlcv(item.symbol, item.timeframe, None, limit)
    now = rt.now_ms(item.symbol)
    period = timeframe_ms(item.timeframe)
    try:
        candles = [Candle.from_ccxt(row) for row in rows]
    except ValueError as exc:
        raise InvalidMarketData(
            f"{item.symbol} {item.timeframe}: bad candle from exchange: {exc}"
        ) from None
    closed = [c for c in candles if c.timestamp + period <= now]
    source = rt.feed.label if rt.feed is not None else f"ccxt:{rt.exchange.id}"
    return CandleSeries(symbol=item.symbol, timeframe=item.timeframe, candles=closed, source=source)


def analyze_candles(series: CandleSeries, spec: IndicatorSpec | None = None) -> AnalysisResult:
    return analyze(series, spec)


def quote_to_usd(rt: Runtime, quote: str) -> Decimal | None:
    if quote in USD_LIKE:
        return Decimal("1")
    try:
        return to_decimal(rt.exchange.fetch_ticker(f"{quote}/USDT")["last"])
    except Exception:
        return None


def risk_context(rt: Runtime, item: WatchlistItem, analysis: AnalysisResult) -> RiskContext:
    market = rt.market(item.symbol)
    store = rt.store
    balance = rt.exchange.fetch_balance()
    live = list(store.iter_live_orders(item.symbol))
    return RiskContext(
        item=item,
        analysis=analysis,
        market=market,
        settings=rt.settings.risk,
        now_ms=rt.now_ms(item.symbol),
        timeframe_ms=timeframe_ms(item.timeframe),
        open_orders_for_symbol=len(live),
        open_positions=len(store.list_positions(status=PositionStatus.OPEN)),
        position=store.open_position(item.symbol),
        quote_free=to_decimal(balance.get(market.quote, {}).get("free") or 0),
        base_free=to_decimal(balance.get(market.base, {}).get("free") or 0),
        quote_to_usd=quote_to_usd(rt, market.quote),
        emergency_stop=emergency_stop_state(store).active,
    )


def assess_risk(rt: Runtime, item: WatchlistItem, analysis: AnalysisResult) -> RiskVerdict:
    return assess(risk_context(rt, item, analysis))


def make_decision(
    rt: Runtime, item: WatchlistItem, analysis: AnalysisResult, verdict: RiskVerdict
) -> Decision:
    decision = decide(
        cycle=cycle_id(item.symbol, item.timeframe, analysis.candle_timestamp),
        mode=rt.mode,
        analysis=analysis,
        verdict=verdict,
        market=rt.market(item.symbol),
        risk=rt.settings.risk,
    )
    rt.store.append_events([decision_event(decision, analysis)])
    return decision


_NOT_A_BLOCK = frozenset({ReasonCode.SKIP_NO_SIGNAL})


def decision_event(decision: Decision, analysis: AnalysisResult) -> Event:
    codes = [reason.code for reason in decision.reasons]
    if decision.is_trade:
        kind = EventType.TRADE_DECIDED
    elif all(code in _NOT_A_BLOCK for code in codes):
        kind = EventType.TRADE_HELD
    else:
        kind = EventType.TRADE_BLOCKED
    fingerprint = hashlib.sha256("|".join(codes).encode()).hexdigest()[:10]
    return Event(
        event_id=f"decision:{decision.cycle_id}:{decision.action}:{fingerprint}",
        type=kind,
        mode=current_mode(),
        symbol=decision.symbol,
        client_order_id=decision.client_order_id,
        reasons=[code.value for code in codes],
        message="; ".join(
            f"{r.code}: {r.detail}" if r.detail else r.code for r in decision.reasons
        ),
        data={
            "action": decision.action.value,
            "signal": analysis.signal.action.value,
            "confidence": analysis.signal.confidence,
            "price": str(analysis.price),
            "amount": str(decision.amount),
            "indicators": analysis.indicators,
            "reasons": [r.model_dump(mode="json") for r in decision.reasons],
        },
    )


def execute(rt: Runtime, decision: Decision) -> Order | None:
    if decision.action is Action.HOLD:
        return None
    intent = intent_from_decision(decision, rt.exchange.id)
    return place(rt.store, rt.exchange, intent)
