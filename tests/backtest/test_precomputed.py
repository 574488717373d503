"""Indicators computed once per series (spec.precompute) change nothing a trader can see:
the decisions (with the indicator values they stored), orders, fills and balances equal a
plain step-by-step run that recomputes every indicator at every step, under the exact
condition the precomputed values are defined by (kestrel/analysis/cache.py): the analysis
at a step covers every loaded candle up to it. That holds for the live 200-candle window
whenever no more than 200 candles are loaded before a step; beyond that, the reference is a
step-by-step run over the whole loaded history (spec.full_history)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kestrel.backtest import BacktestRun, backtest_store, execute, prepare
from kestrel.config.settings import KestrelSettings
from kestrel.trading.cycle import CANDLE_LIMIT
from tests.backtest.helpers import btc_settings, sine_folder, spec
from tests.backtest.test_fast_path import books


def outcome(settings: KestrelSettings, folder: Path, **extra: Any) -> tuple[BacktestRun, dict]:
    with backtest_store() as store:
        run = execute(prepare(settings, spec(folder, **extra), store))
        record = books(run)
        record["events"] = [e.model_dump(exclude={"seq"}) for e in run.runtime.store.list_events()]
        record["errors"] = list(run.errors)
        return run, record


def test_precomputed_equals_step_by_step_over_the_whole_history(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path, steps=160)  # 260 candles: beyond the live window
    settings = btc_settings(tmp_path / "data")
    fast_run, fast = outcome(settings, folder)
    plain_run, plain = outcome(settings, folder, precompute=False, full_history=True)
    cache = fast_run.indicators
    assert cache is not None and cache.misses == 0 and cache.hits == fast_run.cycles
    assert plain_run.indicators is None
    assert len(fast["fills"]) >= 4 and not fast["errors"]
    assert fast == plain


def test_precomputed_equals_the_live_window_while_history_fits_in_it(tmp_path: Path) -> None:
    folder = sine_folder(tmp_path, steps=90)  # 190 candles: the live window holds them all
    settings = btc_settings(tmp_path / "data")
    assert CANDLE_LIMIT >= 190
    fast_run, fast = outcome(settings, folder)
    _, plain = outcome(settings, folder, precompute=False)
    assert fast_run.indicators is not None and fast_run.indicators.misses == 0
    assert len(fast["fills"]) >= 2 and not fast["errors"]
    assert fast == plain


def test_a_lookup_of_other_candles_misses_and_computes_live(tmp_path: Path) -> None:
    from kestrel.analysis.cache import IndicatorCache
    from kestrel.analysis.engine import prepare as prepare_analysis
    from kestrel.backtest.feed import BacktestFeed
    from kestrel.strategy.resolve import resolve_plans

    folder = sine_folder(tmp_path, steps=20)
    settings = btc_settings(tmp_path / "data")
    plan = resolve_plans(settings)[0]
    feed = BacktestFeed.load(folder, {plan.symbol: "5m"}, detail=False)
    feed.now = feed.data[plan.symbol].analysis.closes[-1]
    history = feed.candles(plan.symbol, "5m", 1000)
    cache = IndicatorCache()
    cache.fill(history, plan.profile)
    window = feed.candles(plan.symbol, "5m", 110)
    assert len(window.candles) < len(history.candles)
    cached = prepare_analysis(window, plan.profile, cache=cache)
    assert cache.hits == 1 and len(cached.frame()) == len(window.candles)
    # the rows of the whole loaded history, bit for bit; not those of the shorter window
    # (EMA, RSI, MACD remember earlier candles: the warm-up `kestrel strategy check` reports)
    assert cached.values == prepare_analysis(history, plan.profile).values
    assert cached.values != prepare_analysis(window, plan.profile).values
    last = window.candles[-1].model_copy(update={"close": window.candles[-1].close * 2})
    changed = window.model_copy(update={"candles": [*window.candles[:-1], last]})
    assert cache.window(changed, plan.profile) is None  # other candles: a miss
    other = window.model_copy(update={"source": "elsewhere"})
    assert cache.window(other, plan.profile) is None
    assert cache.misses == 2
