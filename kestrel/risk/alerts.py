"""The alert throttle: a BUY/SELL signal becomes an ALERT_EMITTED event (for Telegram and the
audit trail) only when the price moved at least `price_change_pct` since the last alert on the
same side of the same symbol AND that alert is at least `cooldown_candles` old. Alerts do not
depend on the trade verdict (a human wants to see a signal the emergency stop blocked).

`evaluate_alert` is the pure rule; `alert_for` reads the symbol's last alerts (state document
`alerts:<symbol>`) and records an emitted alert with its event in one transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kestrel.config.settings import WatchlistItem
from kestrel.mode import current_mode
from kestrel.models import Action, AnalysisResult, Event, EventType, Reason, ReasonCode
from kestrel.models.analysis import AlertVerdict
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, update_state
from kestrel.strategy.settings import AlertSettings

HUNDRED = Decimal("100")


class LastAlert(BaseModel):
    price: Decimal
    at_ms: int
    confidence: float = 0.0


class AlertBook(BaseModel):
    last: dict[str, LastAlert] = Field(default_factory=dict, description="BUY/SELL -> last")


def alerts_key(symbol: str) -> str:
    return f"alerts:{symbol}"


def evaluate_alert(
    *,
    item: WatchlistItem,
    analysis: AnalysisResult,
    settings: AlertSettings,
    min_confidence: float,
    last: LastAlert | None,
    now_ms: int,
    timeframe_ms: int,
) -> AlertVerdict:
    signal = analysis.signal
    action = signal.action
    if action is Action.HOLD:
        return AlertVerdict(
            emitted=False, reasons=[Reason(code=ReasonCode.SKIP_NO_SIGNAL, detail="no signal")]
        )
    if not item.alert_enabled:
        return AlertVerdict(
            emitted=False,
            action=action,
            reasons=[
                Reason(code=ReasonCode.SKIP_DISABLED_ALERT, detail=f"alerts off for {item.symbol}")
            ],
        )
    threshold = settings.min_confidence if settings.min_confidence is not None else min_confidence
    if signal.confidence < threshold:
        return AlertVerdict(
            emitted=False,
            action=action,
            reasons=[
                Reason(
                    code=ReasonCode.LOW_CONFIDENCE,
                    detail=f"confidence {signal.confidence:.4f} < {threshold:.4f}",
                    values={"confidence": signal.confidence, "threshold": threshold},
                )
            ],
        )
    price = analysis.price
    values: dict[str, object] = {"price": str(price), "confidence": signal.confidence}
    if last is None:
        return AlertVerdict(
            emitted=True,
            action=action,
            reasons=[_signal_reason(action, signal.reasoning, {**values, "first": True})],
        )
    moved_pct = abs(price - last.price) / last.price * HUNDRED if last.price > 0 else HUNDRED
    elapsed = now_ms - last.at_ms
    cooldown_ms = int(settings.cooldown_candles * timeframe_ms)
    blocked: list[Reason] = []
    if moved_pct < settings.price_change_pct:
        blocked.append(
            Reason(
                code=ReasonCode.SKIP_PRICE_CHANGE_INSUFFICIENT,
                detail=f"price moved {moved_pct:.3f}% since the last {action.value} alert at "
                f"{last.price}; needs {settings.price_change_pct}%",
                values={
                    "moved_pct": str(moved_pct),
                    "threshold_pct": str(settings.price_change_pct),
                    "last_price": str(last.price),
                    "price": str(price),
                },
            )
        )
    if elapsed < cooldown_ms:
        blocked.append(
            Reason(
                code=ReasonCode.SKIP_COOLDOWN_ACTIVE,
                detail=f"last {action.value} alert {elapsed / 1000:.0f}s ago; "
                f"alert cooldown {cooldown_ms / 1000:.0f}s",
                values={
                    "kind": "alert",
                    "elapsed_ms": elapsed,
                    "cooldown_ms": cooldown_ms,
                    "remaining_ms": cooldown_ms - elapsed,
                },
            )
        )
    if blocked:
        return AlertVerdict(emitted=False, action=action, reasons=blocked)
    values.update({"moved_pct": str(moved_pct), "last_price": str(last.price)})
    return AlertVerdict(
        emitted=True, action=action, reasons=[_signal_reason(action, signal.reasoning, values)]
    )


def _signal_reason(action: Action, detail: str, values: dict[str, object]) -> Reason:
    code = ReasonCode.SIGNAL_BUY if action is Action.BUY else ReasonCode.SIGNAL_SELL
    return Reason(code=code, detail=detail, values=values)


def alert_event(analysis: AnalysisResult, verdict: AlertVerdict) -> Event:
    signal = analysis.signal
    return Event(
        event_id=f"alert:{analysis.symbol}:{analysis.timeframe}:{analysis.candle_timestamp}:"
        f"{verdict.action.value}",
        type=EventType.ALERT_EMITTED,
        mode=current_mode(),
        symbol=analysis.symbol,
        reasons=[reason.code.value for reason in verdict.reasons],
        message=f"{verdict.action.value} signal on {analysis.symbol} {analysis.timeframe} @ "
        f"{analysis.price} ({signal.confidence:.0%}): {signal.reasoning}"[:900],
        data={
            "action": verdict.action.value,
            "price": str(analysis.price),
            "confidence": f"{signal.confidence:.2f}",
            "profile": analysis.profile,
            "analyst": signal.analyst,
            "candle_timestamp": analysis.candle_timestamp,
            "reasons": [r.model_dump(mode="json") for r in verdict.reasons],
        },
    )


def alert_for(
    store: Store,
    *,
    item: WatchlistItem,
    analysis: AnalysisResult,
    settings: AlertSettings,
    min_confidence: float,
    now_ms: int,
    timeframe_ms: int,
) -> AlertVerdict:
    """Evaluate against the stored last alerts; record an emitted one (state + event,
    atomically; a concurrent writer makes us re-evaluate)."""

    def change(doc: dict[str, Any] | None) -> StateChange[AlertVerdict]:
        book = AlertBook.model_validate(doc) if doc else AlertBook()
        action = analysis.signal.action
        verdict = evaluate_alert(
            item=item,
            analysis=analysis,
            settings=settings,
            min_confidence=min_confidence,
            last=book.last.get(action.value),
            now_ms=now_ms,
            timeframe_ms=timeframe_ms,
        )
        if not verdict.emitted:
            return StateChange(result=verdict)
        book.last[action.value] = LastAlert(
            price=analysis.price, at_ms=now_ms, confidence=analysis.signal.confidence
        )
        return StateChange(
            result=verdict,
            value=book.model_dump(mode="json"),
            events=[alert_event(analysis, verdict)],
        )

    key = alerts_key(item.symbol)
    return update_state(store, key, change, what=f"alert state of {item.symbol}", attempts=10)
