"""One trading cycle over 10 symbols: through Prefect vs the same kestrel functions called
directly, in one run. Prints each median and its ratio to the direct baseline.

    .venv/bin/python bench/cycle.py [--symbols 10] [--repeats 7]

- direct: the cycle's steps called in process, symbol after symbol (the baseline);
- scheduled flow: the `kestrel-trading-cycle` flow run (what a deployment and `kestrel
  cycle` run: flow run start and end, settings, lock, stage tasks, artifact, dashboards);
- engine cycle: what the live engine runs when candles close, `flows.live.live_cycle`, as
  tasks of an already-running flow run (the issue's "in-process cycle");
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


def measure(label: str, run: object, config: dict[str, object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(config)  # type: ignore[operator]
        timings.append(time.perf_counter() - start)
        advance(config)
    return report(label, timings)


def report(label: str, timings: list[float]) -> float:
    median = statistics.median(timings)
    print(f"{label:>15}: median {median * 1000:8.1f} ms over {len(timings)} cycles")
    return median


def closed_now(rt: Any) -> list[Any]:
    """The newest closed candle of every watchlist symbol, as the engine would claim it."""
    from kestrel.live.engine import ClosedCandle
    from kestrel.trading import cycle

    closed = []
    for item in rt.settings.watchlist:
        last = cycle.fetch_candles(rt, item).candles[-1].timestamp
        closed.append(ClosedCandle(item.symbol, item.timeframe, last))
    return closed


def engine_cycles(config: dict[str, object], repeats: int, prefect: bool) -> list[float]:
    """`repeats` engine cycles over every symbol (each on a new candle), timed one by one;
    with `prefect`, as tasks of the flow run this is called in."""
    from flows.live import live_cycle
    from kestrel.config.settings import load_settings
    from kestrel.live.direct import DirectHooks
    from kestrel.mode import trading_mode
    from kestrel.runtime import get_runtime

    settings = load_settings(**config)
    timings = []
    with trading_mode(settings.mode):
        rt = get_runtime(settings)
        direct = DirectHooks(rt, holder="bench engine")
        for _ in range(repeats + 1):  # the first is a warm-up
            closed = closed_now(rt)
            start = time.perf_counter()
            if prefect:
                live_cycle(settings, rt, closed)
            else:
                direct.run_cycle(closed)
            timings.append(time.perf_counter() - start)
            assert rt.feed is not None
            rt.feed.advance()
    return timings[1:]


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
        def engine_run(config: dict[str, object], repeats: int) -> list[float]:
            return engine_cycles(config, repeats, prefect=True)

        direct_config = settings_for(root / "direct", args.symbols)
        prefect_config = settings_for(root / "prefect", args.symbols)
        engine_config = settings_for(root / "engine", args.symbols)
        plain_config = settings_for(root / "plain", args.symbols)
        direct_cycle(direct_config)  # warm-up: imports, numba, markets
        with prefect_test_harness(server_startup_timeout=180):
            trading_cycle(config=prefect_config)  # warm-up: first flow run
            direct = measure("direct", direct_cycle, direct_config, args.repeats)
            through = measure(
                "scheduled flow", lambda c: trading_cycle(config=c), prefect_config, args.repeats
            )
            engine = report("engine cycle", engine_run(engine_config, args.repeats))
            plain = report("engine direct", engine_cycles(plain_config, args.repeats, False))
    print(f"symbols: {args.symbols}; Prefect's share against the direct baseline:")
    for label, median in (("scheduled flow", through), ("engine cycle", engine)):
        print(
            f"  {label:>15} / direct = {median / direct:.2f}x "
            f"(+{(median - direct) * 1000:.0f} ms per cycle)"
        )
    print(
        f"  {'engine cycle':>15} / engine direct = {engine / plain:.2f}x "
        f"(+{(engine - plain) * 1000:.0f} ms per cycle)"
    )


if __name__ == "__main__":
    main()
