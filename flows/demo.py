"""`kestrel demo`: many trading cycles on a replayed (or simulated) market, in one flow run.

Each step: order sync (fills at the next price) -> position monitor (stops, targets) ->
trading cycle -> the market clock moves one candle. The books are then reconciled against
the paper wallet, and the summary is published as a Prefect table artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.trading_cycle import run_cycle
from kestrel.mode import TradingMode, trading_mode
from kestrel.operator.run import settings_for_run
from kestrel.reporting.summary import SessionSummary, summarize, summary_rows
from kestrel.runtime import get_runtime
from tasks.upkeep import monitor_positions_task, sync_orders_task


@flow(name="kestrel-demo", log_prints=True)
def demo_session(config: dict[str, Any], cycles: int = 200) -> SessionSummary:
    settings = settings_for_run(config, run="kestrel-demo")
    if settings.mode is not TradingMode.DEMO:
        raise ValueError("the demo only runs in DEMO mode")
    logger = get_run_logger()
    with trading_mode(TradingMode.DEMO):
        rt = get_runtime(settings)
        if rt.feed is None:
            raise RuntimeError("the demo needs a replayed or simulated market feed")
        logger.info("market data: %s", rt.feed.label)
        done = 0
        for _ in range(cycles):
            if rt.feed.exhausted:
                logger.info("market data exhausted after %d cycles", done)
                break
            sync_orders_task(settings)
            monitor_positions_task(settings)
            run_cycle(settings)
            rt.feed.advance()
            done += 1
            if done % 25 == 0:
                logger.info("%d/%d cycles", done, cycles)
        sync_orders_task(settings)  # the last orders fill at the next price
        summary = summarize(rt, settings.paper.starting_balances(), done)
    create_table_artifact(
        summary_rows(summary),
        key="demo-summary",
        description=f"DEMO session: {done} cycles on {summary.market_data}",
    )
    return summary
