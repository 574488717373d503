"""The steps of one trading cycle for one symbol: fetch -> analyze -> risk -> decide -> execute.

Plain functions over a Runtime, so backtests and tests run them directly and Prefect tasks
(tasks/trading.py) only wrap them with retries. Analysis splits into prepare / consult /
conclude so that a SWARM's analysts can run as concurrent tasks. Every decision, HOLDs and
blocks included, is stored as an event with its reasons and the numbers behind them; an
emitted alert is its own ALERT_EMITTED event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from kestrel.analysis.base import AnalystInput, Vote, consult
from kestrel.analysis.engine import analyze, build_analyst, conclude, prepare
from kestrel.analysis.recordings import Recordings
from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.errors import InvalidMarketData
from kestrel.execution.lease import Lease, LeaseBusy
from kestrel.execution.orders import intent_from_decision, place
from kestrel.ids import cycle_id, installation_id
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
    Reason,
    ReasonCode,
    RiskVerdict,
    timeframe_ms,
)
from kestrel.risk import RiskContext, assess
from kestrel.risk.alerts import alert_for
from kestrel.risk.controls import circuit_breaker_state
from kestrel.risk.gather import gather_context
from kestrel.runtime import Runtime
from kestrel.strategy.profiles import StrategyProfile
from kestrel.strategy.resolve import SymbolPlan, resolve_plan
from kestrel.strategy.settings import AnalysisSettings, AnalystSpec
from kestrel.trading.decision import decide

CANDLE_LIMIT = 200


def plan_for(settings: KestrelSettings, item: WatchlistItem | SymbolPlan) -> SymbolPlan:
    return item if isinstance(item, SymbolPlan) else resolve_plan(settings, item)


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


# -- analysis ---------------------------------------------------------------------------------


def analyze_candles(
    series: CandleSeries,
    profile: StrategyProfile | None = None,
    settings: AnalysisSettings | None = None,
    recordings: Recordings | None = None,
) -> AnalysisResult:
    """The whole panel in-process (SOLO by default); answers of analysts that call out are
    recorded to `recordings` (a live run's store) for backtests to replay."""
    return analyze(series, profile, settings=settings, recordings=recordings)


def prepare_analysis(series: CandleSeries, profile: StrategyProfile) -> AnalystInput:
    return prepare(series, profile)


def consult_analyst(
    settings: AnalysisSettings,
    spec: AnalystSpec,
    data: AnalystInput,
    recordings: Recordings | None = None,
) -> Vote:
    """One analyst's vote; with too few candles every analyst abstains without any I/O."""
    return consult(build_analyst(spec, settings, recordings), data)


def conclude_analysis(
    settings: AnalysisSettings, data: AnalystInput, votes: Sequence[Vote]
) -> AnalysisResult:
    panel = settings.panel()
    return conclude(
        data,
        votes,
        [spec.weight for spec in panel],
        mode=settings.mode,
        threshold=settings.agreement_threshold,
        min_votes=settings.min_votes,
    )


# -- risk and decision ------------------------------------------------------------------------


def risk_context(
    rt: Runtime, item: WatchlistItem | SymbolPlan, analysis: AnalysisResult
) -> RiskContext:
    return gather_context(rt, plan_for(rt.settings, item), analysis)


def assess_risk(
    rt: Runtime, item: WatchlistItem | SymbolPlan, analysis: AnalysisResult
) -> RiskVerdict:
    return assess(risk_context(rt, item, analysis))


def make_decision(
    rt: Runtime,
    item: WatchlistItem | SymbolPlan,
    analysis: AnalysisResult,
    verdict: RiskVerdict,
) -> Decision:
    plan = plan_for(rt.settings, item)
    symbol_item = plan.item
    decision = decide(
        cycle=cycle_id(symbol_item.symbol, symbol_item.timeframe, analysis.candle_timestamp),
        mode=rt.mode,
        installation=installation_id(rt.store),
        analysis=analysis,
        verdict=verdict,
        market=rt.market(symbol_item.symbol),
        profile=plan.profile,
    )
    min_confidence = (
        plan.profile.min_confidence
        if plan.profile.min_confidence is not None
        else rt.settings.risk.min_confidence
    )
    alert = alert_for(
        rt.store,
        item=symbol_item,
        analysis=analysis,
        settings=rt.settings.trading.alerts,
        min_confidence=min_confidence,
        now_ms=rt.now_ms(symbol_item.symbol),
        timeframe_ms=timeframe_ms(symbol_item.timeframe),
    )
    decision = decision.model_copy(update={"alert": alert})
    rt.store.append_events([decision_event(decision, analysis, rt.data_kind, rt.data_source)])
    return decision


# Nothing to trade (as opposed to a trade refused): a TRADE_HELD event, not TRADE_BLOCKED.
_NOT_A_BLOCK = frozenset(
    {
        ReasonCode.SKIP_NO_SIGNAL,
        ReasonCode.SKIP_NO_CONSENSUS,
        ReasonCode.SKIP_INSUFFICIENT_DATA,
        ReasonCode.SKIP_NO_POSITION,
        ReasonCode.SKIP_SYMBOL_BUSY,
    }
)


def _votes(analysis: AnalysisResult) -> list[dict[str, Any]]:
    return [
        {"analyst": v.analyst, "action": v.action.value, "confidence": v.confidence}
        for v in analysis.votes
    ]


def decision_event(
    decision: Decision, analysis: AnalysisResult, data_kind: str = "", data_source: str = ""
) -> Event:
    """The decision as an event; `data_kind` (live / replay / simulated) and `data_source`
    (Runtime.data_source) say what prices it was made on."""
    codes = [reason.code for reason in decision.reasons]
    if decision.is_trade:
        kind = EventType.TRADE_DECIDED
    elif all(code in _NOT_A_BLOCK for code in codes):
        kind = EventType.TRADE_HELD
    else:
        kind = EventType.TRADE_BLOCKED
    fingerprint = hashlib.sha256("|".join(codes).encode()).hexdigest()[:10]
    consensus = analysis.consensus
    return Event(
        event_id=f"decision:{decision.cycle_id}:{decision.action}:{fingerprint}",
        type=kind,
        mode=current_mode(),
        symbol=decision.symbol,
        client_order_id=decision.client_order_id,
        reasons=[code.value for code in codes],
        message="; ".join(
            f"{r.code}: {r.detail}" if r.detail else r.code for r in decision.reasons
        )[:2000],
        data={
            "action": decision.action.value,
            "signal": analysis.signal.action.value,
            "confidence": analysis.signal.confidence,
            "price": str(analysis.price),
            "amount": str(decision.amount),
            "stop_loss": str(decision.stop_loss) if decision.stop_loss else None,
            "take_profit": str(decision.take_profit) if decision.take_profit else None,
            "profile": decision.profile,
            "strategy": decision.strategy,
            "data_kind": data_kind,
            "data_source": data_source,
            "indicators": analysis.indicators,
            "reasons": [r.model_dump(mode="json") for r in decision.reasons],
            "analysis": {
                "mode": consensus.mode if consensus else None,
                "agreement": consensus.agreement if consensus else None,
                "threshold": consensus.threshold if consensus else None,
                "support": consensus.support if consensus else {},
                "votes": _votes(analysis),
                "dissent": [v.analyst for v in analysis.dissent],
                "abstentions": [a.model_dump(mode="json") for a in analysis.abstentions],
            },
            "alert": decision.alert.model_dump(mode="json") if decision.alert else None,
        },
    )


def stand_down(
    rt: Runtime, item: WatchlistItem | SymbolPlan, analysis: AnalysisResult, busy: LeaseBusy
) -> Decision:
    """Another run holds the symbol's lease (kestrel.execution.lease): no trade from this run, and a
    TRADE_HELD decision whose reason names that run and until when it holds the symbol."""
    plan = plan_for(rt.settings, item)
    lease = busy.lease
    reason = Reason(
        code=ReasonCode.SKIP_SYMBOL_BUSY,
        detail=str(busy),
        values={
            "holder": lease.holder.describe(),
            "expires_at": lease.expires_at.isoformat(),
            "installation": lease.holder.installation,
        },
    )
    decision = Decision(
        cycle_id=cycle_id(plan.item.symbol, plan.item.timeframe, analysis.candle_timestamp),
        symbol=plan.item.symbol,
        action=Action.HOLD,
        reasons=[reason],
        profile=plan.profile.name,
    )
    rt.store.append_events([decision_event(decision, analysis)])
    return decision


def execute(rt: Runtime, decision: Decision, lease: Lease | None = None) -> Order | None:
    """Place the decision's order. The caller holds the symbol's lease from the risk check on
    (kestrel.execution.lease.symbol_lease; the trading-cycle flow does), so that what risk read is
    still true when the order goes out; `lease` is that holding when this runs elsewhere (a
    task on another worker), so placement goes on under it rather than stand down."""
    if decision.action is Action.HOLD:
        return None
    intent = intent_from_decision(decision, rt.exchange.id)
    return place(rt.store, rt.exchange, intent, lease=lease)


def breaker_summary(rt: Runtime) -> str:
    state, _ = circuit_breaker_state(rt.store)
    return f"TRIPPED: {state.reason}" if state.active else "ok"
