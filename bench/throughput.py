"""Throughput of the trading cycle as it runs in production, and what Prefect costs per task.

    .venv/bin/python bench/throughput.py [--sizes 1 10 50] [--repeats 3] [--json out.json]

Part 1, served deployment: a local `prefect server start` and `kestrel serve` serving the
trading-cycle deployment (its own process, exactly as a user runs it); cycles over 1, 10 and
50 symbols are triggered through the API (`run_deployment`). For each size: the end-to-end
latency (trigger -> Completed, as a caller sees it: every deployment run is a new Python
process that imports prefect, ccxt and pandas-ta) and the flow run's own duration (the
cycle runs in it: one flow per job, no subflow); plus the same cycle called directly
in-process (no Prefect), and the ratio served / direct.

Part 2, per task, in this process against the same server: a no-op task called from a flow
vs the bare function, and the cycle's real stages (fetch, analyze, trade: one task each over
every symbol) through `run_cycle` vs the same task functions called directly:
(Prefect - direct) / number of tasks, and the ratio.

DEMO mode, simulated market, fresh SQLite stores; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KNOWN = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LTC", "DOT", "LINK", "AVAX", "TRX"]
DEPLOYMENT = "kestrel-trading-cycle/trading-cycle-majors"


def symbols(count: int) -> list[str]:
    """Familiar symbols first, then seeded synthetic ones (the simulated market prices any)."""
    bases = KNOWN[:count] + [f"SYN{i:03d}" for i in range(max(0, count - len(KNOWN)))]
    return [f"{base}/USDT" for base in bases]


def items(count: int) -> list[dict[str, Any]]:
    return [{"symbol": s, "timeframe": "1h", "trade_amount_usd": "100"} for s in symbols(count)]


def kestrel_env(root: Path, api_url: str) -> dict[str, str]:
    config = root / "kestrel.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KESTREL_", "PREFECT_"))}
    env.update(
        {
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(root / "prefect-client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "KESTREL_CONFIG": str(config),
            "KESTREL_DATA_DIR": str(root / "served"),
            "KESTREL_PAPER__MARKET_DATA": "simulated",
        }
    )
    return env


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- part 1: served deployment ---------------------------------------------------------------


def wait_for_deployment(name: str, timeout_s: float = 180) -> None:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.read_deployment_by_name(name)
                return
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def served_cycles(size: int, repeats: int) -> dict[str, float]:
    from prefect.deployments import run_deployment

    e2e: list[float] = []
    run_s: list[float] = []
    for attempt in range(repeats + 1):  # the first one warms the server's caches
        started = time.perf_counter()
        run = run_deployment(
            DEPLOYMENT,
            parameters={"watchlist": f"bench-{size}", "items": items(size)},
            timeout=900,
            poll_interval=1,
        )
        elapsed = time.perf_counter() - started
        state = run.state  # type: ignore[union-attr]
        if state is None or not state.is_completed():
            raise RuntimeError(f"{size} symbols: run ended {state}")
        if attempt == 0:
            continue
        e2e.append(elapsed)
        run_s.append(run.total_run_time.total_seconds())  # type: ignore[union-attr]
    return {"e2e_s": median(e2e), "flow_run_s": median(run_s)}


# -- direct and per-task measurements (this process) -----------------------------------------


def cycle_settings(data_dir: Path, size: int) -> Any:
    from kestrel.config.settings import load_settings

    return load_settings(
        mode="DEMO",
        data_dir=data_dir,
        watchlist=items(size),
        paper={"market_data": "simulated"},
    )


def direct_cycle(settings: Any) -> int:
    """The cycle's SOLO path with each stage task's own function called directly (their
    logger is the module's); returns the number of task calls it stands for."""
    from kestrel.mode import trading_mode
    from kestrel.runtime import get_runtime
    from kestrel.strategy.resolve import resolve_plans
    from kestrel.trading import batch

    with trading_mode(settings.mode):
        rt = get_runtime(settings)
        plans = resolve_plans(settings)
        fetched = batch.fetch_all(rt, plans, batch.Progress(), may_retry=False)
        analyzed = batch.analyze_all(rt, plans, fetched.done, batch.Progress())
        batch.trade_all(
            rt, plans, analyzed.done, batch.TradeProgress(), run="bench", wait_s=5.0,
            may_retry=False,
        )  # fmt: skip
    return 3


def timed(run: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return median(samples)


def per_task(root: Path, repeats: int) -> dict[str, float]:
    from prefect import flow, task

    from flows.trading_cycle import run_cycle

    @task
    def noop(value: int) -> int:
        return value + 1

    calls = 100

    @flow
    def noops() -> float:
        started = time.perf_counter()
        for i in range(calls):
            noop(i)
        return time.perf_counter() - started

    def bare() -> None:
        for i in range(calls):
            noop.fn(i)

    noops()  # warm-up
    bare_s = timed(bare, repeats)
    noop_s = median([noops() for _ in range(repeats)])

    size = 10
    direct_settings = cycle_settings(root / "direct-10", size)
    prefect_settings = cycle_settings(root / "prefect-10", size)
    task_calls = direct_cycle(direct_settings)  # warm-up: imports, numba, markets

    @flow
    def cycle_inside() -> float:
        started = time.perf_counter()
        run_cycle(prefect_settings)
        return time.perf_counter() - started

    cycle_inside()  # warm-up
    direct_s = timed(lambda: direct_cycle(direct_settings), repeats)
    inside_s = median([cycle_inside() for _ in range(repeats)])
    whole_flow_s = timed(cycle_inside, repeats)
    return {
        "noop_task_ms": noop_s / calls * 1000,
        "noop_direct_us": bare_s / calls * 1e6,
        "noop_ratio": noop_s / bare_s if bare_s else float("inf"),
        "cycle10_direct_s": direct_s,
        "cycle10_tasks_s": inside_s,
        "cycle10_flow_s": whole_flow_s,
        "cycle10_task_calls": task_calls,
        "cycle_overhead_per_task_ms": (inside_s - direct_s) / task_calls * 1000,
        "cycle_ratio": inside_s / direct_s,
        "flow_run_overhead_s": whole_flow_s - inside_s,
    }


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kestrel-bench-") as tmp:
        root = Path(tmp)
        from kestrel.config.prefect_env import configure_prefect_env

        os.environ["PREFECT_HOME"] = str(root / "prefect-bench")
        configure_prefect_env(root)
        from deployments.server import LocalPrefectServer

        server = LocalPrefectServer(root / "server", scheduler=False, ui=False).start()
        env = kestrel_env(root, server.api_url)
        serve_log = (root / "serve.log").open("wb")
        command = [str(ROOT / ".venv" / "bin" / "kestrel"), "serve", "--no-deadman"]
        serve = subprocess.Popen(
            [*command, "-d", "trading-cycle-majors", "--limit", "1"],
            cwd=root,
            env=env,
            stdout=serve_log,
            stderr=subprocess.STDOUT,
        )
        results: dict[str, Any] = {"served": {}, "direct": {}}
        try:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                wait_for_deployment(DEPLOYMENT)
                for size in args.sizes:
                    results["served"][size] = served_cycles(size, args.repeats)
                    settings = cycle_settings(root / f"direct-{size}", size)
                    direct_cycle(settings)  # warm-up for this store
                    results["direct"][size] = timed(partial(direct_cycle, settings), args.repeats)
                    print(f"  measured {size} symbols", file=sys.stderr)
                results["per_task"] = per_task(root, args.repeats)
        finally:
            serve.terminate()
            serve.wait(60)
            serve_log.close()
            server.stop()

    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def report(results: dict[str, Any]) -> str:
    lines = [
        "Served trading-cycle deployment (kestrel serve, local prefect server; medians)",
        f"{'symbols':>8} {'end-to-end':>11} {'flow run':>9} {'direct':>8} "
        f"{'served/direct':>14} {'symbols/s':>10}",
    ]
    for size, served in results["served"].items():
        direct = results["direct"][size]
        lines.append(
            f"{size:>8} {served['e2e_s']:>10.2f}s {served['flow_run_s']:>8.2f}s "
            f"{direct:>7.2f}s "
            f"{served['e2e_s'] / direct:>13.1f}x {size / served['e2e_s']:>10.2f}"
        )
    task = results["per_task"]
    lines += [
        "",
        "Prefect per task (in-process, thread-pool task runner, same server)",
        f"  no-op task: {task['noop_task_ms']:.2f} ms per call vs {task['noop_direct_us']:.2f} us "
        f"direct ({task['noop_ratio']:.0f}x)",
        f"  cycle steps, 10 symbols ({task['cycle10_task_calls']} tasks): "
        f"{task['cycle10_tasks_s'] * 1000:.0f} ms as tasks vs "
        f"{task['cycle10_direct_s'] * 1000:.0f} ms direct = {task['cycle_ratio']:.2f}x, "
        f"+{task['cycle_overhead_per_task_ms']:.1f} ms per task",
        f"  one flow run around it: +{task['flow_run_overhead_s'] * 1000:.0f} ms",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
