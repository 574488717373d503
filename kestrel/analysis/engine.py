"""analyze: candles in, AnalysisResult out (indicator values kept for the audit trail)."""

from __future__ import annotations

from kestrel.analysis.frame import candles_to_frame
from kestrel.analysis.indicators import IndicatorSpec, compute_indicators, last_values
from kestrel.analysis.technical import TechnicalAnalyst
from kestrel.errors import InvalidMarketData
from kestrel.models import Action, AnalysisResult, CandleSeries, Signal
from kestrel.money import to_decimal


def analyze(series: CandleSeries, spec: IndicatorSpec | None = None) -> AnalysisResult:
    spec = spec or IndicatorSpec()
    last = series.last
    if last is None:
        raise InvalidMarketData(f"{series.symbol}: no candles to analyze")
    if len(series.candles) < spec.warmup:
        return AnalysisResult(
            symbol=series.symbol,
            timeframe=series.timeframe,
            candle_timestamp=last.timestamp,
            price=to_decimal(last.close),
            indicators={},
            signal=Signal(
                action=Action.HOLD,
                confidence=0.0,
                reasoning=f"only {len(series.candles)} candles, need {spec.warmup}",
            ),
        )
    indicators = compute_indicators(candles_to_frame(series), spec)
    signal = TechnicalAnalyst().judge(indicators)
    return AnalysisResult(
        symbol=series.symbol,
        timeframe=series.timeframe,
        candle_timestamp=last.timestamp,
        price=to_decimal(last.close),
        indicators=last_values(indicators),
        signal=signal,
        votes=[signal],
    )
