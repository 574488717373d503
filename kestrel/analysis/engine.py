"""Candles in, AnalysisResult out, in three steps that Prefect can run apart:

1. `prepare`: the frame and the profile's indicators, computed once for every analyst;
2. `consult` (kestrel.analysis.base) each analyst of the panel - concurrently in SWARM mode;
3. `conclude`: SOLO pass-through or SWARM vote, with the indicator values used, the votes,
   abstentions and dissent kept for the audit trail.

`analyze` runs the three in-process (backtests, tests, the bench, SOLO mode).
"""

from __future__ import annotations

from collections.abc import Sequence

from kestrel.analysis.base import Analyst, AnalystInput, Vote, consult
from kestrel.analysis.cache import IndicatorCache, indicators_for
from kestrel.analysis.frame import candles_to_frame
from kestrel.analysis.indicators import last_values
from kestrel.analysis.llm import LLMAnalyst
from kestrel.analysis.recordings import Recordings
from kestrel.analysis.sentiment import SentimentAnalyst
from kestrel.analysis.swarm import abstentions, dissent, solo, swarm
from kestrel.analysis.technical import PREVIOUS_ROW_COLUMNS, TechnicalAnalyst
from kestrel.errors import InvalidMarketData
from kestrel.models import Action, AnalysisResult, CandleSeries, Signal
from kestrel.money import to_decimal
from kestrel.strategy.loader import strategy_for
from kestrel.strategy.profiles import BUILTIN_PROFILES, FALLBACK_PROFILE, StrategyProfile
from kestrel.strategy.settings import AnalysisSettings, AnalystSpec


def prepare(
    series: CandleSeries,
    profile: StrategyProfile | None = None,
    *,
    cache: IndicatorCache | None = None,
) -> AnalystInput:
    """The analysts' input. With `cache` (a backtest), the indicator rows of these candles
    come from the series computed once (kestrel.analysis.cache: equal to computing on all
    the loaded candles up to the last one); without it, or on a miss, they are computed on
    `series` itself, as the live cycle does."""
    profile = profile or BUILTIN_PROFILES[FALLBACK_PROFILE]
    last = series.last
    if last is None:
        raise InvalidMarketData(f"{series.symbol}: no candles to analyze")
    plugin = strategy_for(profile) if profile.plugin is not None else None
    warmup = plugin.warmup if plugin is not None else profile.indicators.warmup
    if len(series.candles) < warmup:
        return AnalystInput(
            series=series, profile=profile, price=to_decimal(last.close), warmup=warmup
        )
    indicators = cache.window(series, profile) if cache is not None else None
    if indicators is None:
        indicators = indicators_for(candles_to_frame(series), profile)
    values = last_values(indicators)
    previous = last_values(indicators, row=-2)
    values.update({f"prev_{n}": previous[n] for n in PREVIOUS_ROW_COLUMNS if n in previous})
    return AnalystInput(
        series=series,
        profile=profile,
        indicators=indicators,
        values=values,
        price=to_decimal(last.close),
        warmup=warmup,
    )


def build_analyst(
    spec: AnalystSpec, settings: AnalysisSettings, recordings: Recordings | None = None
) -> Analyst:
    """`recordings`: where analysts that call out record their answers (live runs)."""
    if spec.kind == "technical":
        return TechnicalAnalyst(spec.label)
    if spec.kind == "llm":
        return LLMAnalyst(spec.llm or settings.llm, spec.label, recordings)
    return SentimentAnalyst(settings.sentiment, spec.label, recordings)


def conclude(
    data: AnalystInput,
    votes: Sequence[Vote],
    weights: Sequence[float],
    *,
    mode: str = "SOLO",
    threshold: float = 0.6,
    min_votes: int = 1,
) -> AnalysisResult:
    """The panel's verdict; `votes` and `weights` are in panel order."""
    series = data.series
    last = series.last
    assert last is not None  # prepare() refused an empty series
    if not data.enough_data:
        signal = Signal(
            action=Action.HOLD,
            confidence=0.0,
            reasoning=f"only {len(series.candles)} candles, need {data.warmup}",
            analyst="engine",
        )
        return AnalysisResult(
            symbol=series.symbol,
            timeframe=series.timeframe,
            candle_timestamp=last.timestamp,
            price=data.price,
            indicators={},
            signal=signal,
            abstentions=abstentions(votes),
            profile=data.profile.name,
            enough_data=False,
        )
    if mode == "SOLO":
        if len(votes) != 1:
            raise ValueError(f"SOLO mode takes one vote, got {len(votes)}")
        signal, consensus = solo(votes[0], weights[0] if weights else 1.0)
    else:
        signal, consensus = swarm(
            list(zip(votes, weights, strict=True)), threshold=threshold, min_votes=min_votes
        )
    return AnalysisResult(
        symbol=series.symbol,
        timeframe=series.timeframe,
        candle_timestamp=last.timestamp,
        price=data.price,
        indicators=data.values,
        signal=signal,
        votes=[v for v in votes if isinstance(v, Signal)],
        abstentions=abstentions(votes),
        dissent=dissent(signal.action, votes),
        consensus=consensus,
        profile=data.profile.name,
    )


def analyze(
    series: CandleSeries,
    profile: StrategyProfile | None = None,
    *,
    settings: AnalysisSettings | None = None,
    analysts: Sequence[tuple[Analyst, float]] | None = None,
    cache: IndicatorCache | None = None,
    recordings: Recordings | None = None,
) -> AnalysisResult:
    """Everything in-process. The panel is `analysts` (analyst, weight) if given, else the
    one `settings` describes (default: SOLO with the technical analyst), recording answers
    to `recordings`. `cache`: see `prepare`."""
    settings = settings or AnalysisSettings()
    data = prepare(series, profile, cache=cache)
    if analysts is None:
        analysts = [
            (build_analyst(spec, settings, recordings), spec.weight) for spec in settings.panel()
        ]
    votes = [consult(analyst, data) for analyst, _ in analysts] if data.enough_data else []
    return conclude(
        data,
        votes,
        [weight for _, weight in analysts],
        mode="SWARM" if settings.mode == "SWARM" or len(analysts) > 1 else "SOLO",
        threshold=settings.agreement_threshold,
        min_votes=settings.min_votes,
    )
