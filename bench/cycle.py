"""One trading cycle over 10 symbols: through Prefect vs the same kestrel functions called
directly, in one run. Prints each median and its ratio to the direct baseline.

    .venv/bin/python bench/cycle.py [--symbols 10] [--repeats 7]

- direct: the cycle's steps called in process, symbol after symbol (the baseline);
- scheduled flow: the `kestrel-trading-cycle` flow run (what a deployment and `kestrel
  cycle` run: flow run start and end, settings, lock, stage tasks, artifact, dashboards);
- engine cycle: what the live engine runs when candles close, `flows.live.live_cycle`, as
  tasks of an already-running flow run (the issue's "in-process cycle"), timed until the
  cycle returns (orders out, the engine free for the next candles); its decisions table is
  published after, off the cycle's path, as the engine does (flows.live.TablePublisher);
- engine direct: the same engine cycle without Prefect (kestrel.live.direct.DirectHooks),
  for the share of the leases and the candle checks, which the baseline does not do.

The Prefect side runs against a temporary local API server (prefect_test_harness), the
way tests do; its start-up is excluded. Every side uses the simulated market, a SQLite store
of its own, and advances the market one candle between repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kestrel.config.prefect_env import configure_prefect_env

SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LTC", "DOT", "LINK", "AVAX", "TRX"]


def settings_for(data_dir: Path, symbols: int) -> dict[str, object]:
    from kestrel.config.settings import load_settings

    watchlist = [{"symbol": f"{s}/USDT", "timeframe": "1h"} for s in SYMBOLS[:symbols]]
    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=watchlist,
        paper={"market_data": "simulated", "seed": 3},
        risk={"min_confidence": 0.0},
    ).model_dump(mode="json")


def direct_cycle(config: dict[str, object]) -> None:
    from kestrel.config.settings import load_settings
    from kestrel.mode import trading_mode
    from kestrel.runtime import get_runtime
    from kestrel.trading import cycle

    settings = load_settings(**config)
    with trading_mode(settings.mode):
        rt = get_runtime(settings)
        for item in settings.watchlist:
            series = cycle.fetch_candles(rt, item)
            analysis = cycle.analyze_candles(series)
            verdict = cycle.assess_risk(rt, item, analysis)
            decision = cycle.make_decision(rt, item, analysis, verdict)
            cycle.execute(rt, decision)


def advance(config: dict[str, object]) -> None:
    from kestrel.config.settings import load_settings
    from kestrel.mode import trading_mode
    from kestrel.runtime import get_runtime

    settings = load_settings(**config)
    with trading_mode(settings.mode):
        feed = get_runtime(settings).feed
        assert feed is not None
        feed.advance()


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def median_ms(timings: list[float]) -> float:
    return statistics.median(timings) * 1000


def closed_now(rt: Any) -> list[Any]:
    """The newest closed candle of every watchlist symbol, as the engine would claim it."""
    from kestrel.live.engine import ClosedCandle
    from kestrel.trading import cycle

    closed = []
    for item in rt.settings.watchlist:
        last = cycle.fetch_candles(rt, item).candles[-1].timestamp
        closed.append(ClosedCandle(item.symbol, item.timeframe, last))
    return closed


class EngineSide:
    """One engine's runtime and hooks: a cycle over every symbol's newest closed candle,
    through Prefect (`live_cycle`: tasks of the flow run it is called in) or not."""

    def __init__(self, config: dict[str, object], prefect: bool) -> None:
        from kestrel.config.settings import load_settings
        from kestrel.live.direct import DirectHooks
        from kestrel.runtime import get_runtime

        self.settings = load_settings(**config)
        self.prefect = prefect
        with trading_mode_of(self.settings):
            self.rt = get_runtime(self.settings)
        self.direct = DirectHooks(self.rt, holder="bench engine")
        from flows.live import TablePublisher

        self.tables = TablePublisher()

    def cycle(self) -> float:
        from flows.live import live_cycle

        with trading_mode_of(self.settings):
            closed = closed_now(self.rt)  # outside the timing: the engine knows it already
            if self.prefect:  # its decisions table goes out after, as in the engine
                took = timed(lambda: live_cycle(self.settings, self.rt, closed, self.tables))
            else:
                took = timed(lambda: self.direct.run_cycle(closed))
            assert self.rt.feed is not None
            self.rt.feed.advance()
        return took


def trading_mode_of(settings: Any) -> Any:
    from kestrel.mode import trading_mode

    return trading_mode(settings.mode)


def engine_phase(configs: dict[str, dict[str, object]], repeats: int) -> dict[str, list[float]]:
    """In one running flow run (the engine's): direct, engine cycle and engine direct,
    interleaved repeat by repeat so a busy machine weighs on each side alike."""
    engine, plain = EngineSide(configs["engine"], True), EngineSide(configs["plain"], False)
    engine.cycle(), plain.cycle()  # warm-up
    timings: dict[str, list[float]] = {"direct": [], "engine cycle": [], "engine direct": []}
    for _ in range(repeats):
        timings["direct"].append(timed(lambda: direct_cycle(configs["direct"])))
        advance(configs["direct"])
        timings["engine cycle"].append(engine.cycle())
        timings["engine direct"].append(plain.cycle())
    engine.tables.wait()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configure_prefect_env(root)
        from prefect import flow
        from prefect.testing.utilities import prefect_test_harness

        from flows.trading_cycle import trading_cycle

        @flow(name="bench-live-engine")
        def engine_run(
            configs: dict[str, dict[str, object]], repeats: int
        ) -> dict[str, list[float]]:
            return engine_phase(configs, repeats)

        names = ("direct", "prefect", "engine", "plain")
        configs = {name: settings_for(root / name, args.symbols) for name in names}
        direct_cycle(configs["direct"])  # warm-up: imports, numba, markets
        advance(configs["direct"])
        with prefect_test_harness(server_startup_timeout=180):
            trading_cycle(config=configs["prefect"])  # warm-up: first flow run
            advance(configs["prefect"])
            scheduled: dict[str, list[float]] = {"direct": [], "scheduled flow": []}
            for _ in range(args.repeats):  # interleaved, as in the engine's phase
                scheduled["direct"].append(timed(lambda: direct_cycle(configs["direct"])))
                advance(configs["direct"])
                flow_run = timed(lambda: trading_cycle(config=configs["prefect"]))
                scheduled["scheduled flow"].append(flow_run)
                advance(configs["prefect"])
            in_engine = engine_run(configs, args.repeats)
    print(f"symbols: {args.symbols}, {args.repeats} cycles per side; medians:")
    for phase, label in ((scheduled, "scheduled flow"), (in_engine, "engine cycle")):
        base, through = median_ms(phase["direct"]), median_ms(phase[label])
        print(
            f"  {label:>14}: {through:7.1f} ms, direct {base:6.1f} ms in the same phase: "
            f"Prefect / direct = {through / base:.2f}x (+{through - base:.0f} ms)"
        )
    plain = median_ms(in_engine["engine direct"])
    engine = median_ms(in_engine["engine cycle"])
    print(
        f"  {'engine direct':>14}: {plain:7.1f} ms (the engine cycle without Prefect: leases "
        f"and candle checks included): engine cycle / engine direct = {engine / plain:.2f}x"
    )


if __name__ == "__main__":
    main()
