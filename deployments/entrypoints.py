"""The flows prefect.yaml deploys and `kestrel serve` serves.

Each one resolves the run's settings (environment and kestrel.toml, then the blocks it names,
then its own parameters), runs the domain flow of flows/ as a subflow with those settings,
writes one log line per order it touched (mode, symbol and client order id on each), and
refreshes the dashboards whatever the outcome (all but the Telegram flows, which change no
book). Secrets (store URI, Telegram token) reach
the subflow through the process environment, never as parameters (blocks/settings.py).

The trading cycle runs on the task runner the settings choose (threads, or Dask for a
cluster) and takes a per-watchlist Prefect lock, so two runs of one watchlist normally run
one after the other. Correctness does not rest on it (`kestrel cycle`, a manual order or a
second server never take it): each symbol is traded under its lease in the store
(kestrel.execution.lease), which decides, and names, who trades it when two runs meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_client, get_run_logger
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run
from prefect.states import Completed, State

from blocks.exchange_account import use_exchange_account
from blocks.settings import BlockRefs, Resolved, exported, resolve_settings, subflow_config
from deployments.logs import ORDER_FILTER, install_order_logging
from deployments.runners import task_runner_for
from flows.dashboards import publish_dashboards
from flows.notifications import daily_report as daily_report_flow
from flows.notifications import notifications as notifications_flow
from flows.telegram_bot import telegram_bot as telegram_bot_flow
from flows.trading_cycle import trading_cycle as trading_cycle_flow
from flows.upkeep import order_sync as order_sync_flow
from flows.upkeep import position_monitor as position_monitor_flow
from kestrel.config.settings import KestrelSettings, WatchlistItem
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import Decision
from kestrel.store import open_store

DEFAULT_WATCHLIST = "default"


# -- shared plumbing -------------------------------------------------------------------------


def prepare(blocks: BlockRefs | None, *layers: dict[str, Any] | None) -> Resolved:
    """Settings for this run, logging wired, and a line saying where the settings came from."""
    resolved = resolve_settings(blocks, *layers, run=flow_run.flow_name or "deployment run")
    install_order_logging()
    with exported(resolved.secret_env):
        use_exchange_account(resolved.settings)  # REAL credentials from a block, if named
    settings = resolved.settings
    get_run_logger().info(
        "mode %s, store %s, %d watchlist symbol(s); settings from environment/kestrel.toml%s",
        settings.mode.value,
        "MongoDB" if (settings.store_uri or "").startswith("mongodb") else "SQLite",
        len(settings.watchlist),
        "".join(f", block {source}" for source in resolved.sources) + ", parameters",
    )
    return resolved


@contextmanager
def run_scope(resolved: Resolved) -> Iterator[KestrelSettings]:
    """Secrets exported, the trading mode set, and log lines able to find an order's symbol
    in the store, for the duration of the run."""
    settings = resolved.settings
    with exported(resolved.secret_env), trading_mode(settings.mode):
        store = open_store(settings, settings.mode)

        def symbol_of(client_order_id: str) -> str | None:
            order = store.get_order(client_order_id)
            return order.symbol if order is not None else None

        ORDER_FILTER.set_lookup(symbol_of)
        try:
            yield settings
        finally:
            ORDER_FILTER.set_lookup(None)
            store.close()


def lock_name(mode: TradingMode, watchlist: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", watchlist.lower()).strip("-") or DEFAULT_WATCHLIST
    return f"kestrel-cycle-{mode.value.lower()}-{slug}"


@contextmanager
def watchlist_lock(name: str, timeout_s: float) -> Iterator[bool]:
    """Hold the watchlist's global concurrency limit (created with one slot if missing);
    yields False if another run holds it for longer than `timeout_s`. The lease expires if
    the holder dies, so a crashed run never blocks its watchlist for good."""
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    with ExitStack() as stack:
        try:
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True))
        except TimeoutError:
            yield False
            return
        yield True


# -- trading cycle ---------------------------------------------------------------------------


@flow(name="kestrel-trading-cycle", log_prints=True)
def trading_cycle(
    watchlist: str = DEFAULT_WATCHLIST,
    items: list[WatchlistItem] | None = None,
    blocks: BlockRefs | None = None,
    config: dict[str, Any] | None = None,
) -> list[Decision] | State[Any]:
    """One cycle over a watchlist: fetch -> analyze -> risk -> decide -> execute per symbol.

    `watchlist` names it (lock, dashboards); `items` are its symbols (empty: the trading-config
    block's or the environment's watchlist); `config` overrides any other setting."""
    watch = {"watchlist": [i.model_dump(mode="json") for i in items]} if items else None
    resolved = prepare(blocks, watch, config)
    logger = get_run_logger()
    with run_scope(resolved) as settings:
        name = lock_name(settings.mode, watchlist)
        with watchlist_lock(name, settings.ops.cycle_lock_timeout_s) as held:
            if not held:  # a busy server can be slow to grant it: the symbol leases decide
                logger.warning(
                    "another run still holds %s; going on: each symbol's lease says who trades it",
                    name,
                )
            try:
                inner = trading_cycle_flow.with_options(task_runner=task_runner_for(settings.ops))
                decisions = inner(config=subflow_config(settings))
                log_decisions(settings, decisions)
                return decisions
            finally:
                publish_dashboards(settings, label=f"watchlist {watchlist}")


def log_decisions(settings: KestrelSettings, decisions: list[Decision]) -> None:
    logger = get_run_logger()
    store = open_store(settings, settings.mode)
    try:
        for decision in decisions:
            codes = ", ".join(reason.code.value for reason in decision.reasons)
            if decision.client_order_id is None:
                logger.info("%s: %s (%s)", decision.symbol, decision.action.value, codes)
                continue
            order = store.get_order(decision.client_order_id)
            if order is not None:
                ORDER_FILTER.remember([order])
            logger.info(
                "%s %s %s: order %s %s (%s)",
                decision.action.value,
                decision.amount,
                decision.symbol,
                decision.client_order_id,
                f"{order.status.value} via {order.status_source.value}" if order else "not stored",
                codes,
            )
    finally:
        store.close()


# -- upkeep ----------------------------------------------------------------------------------


@flow(name="kestrel-order-sync", log_prints=True)
def order_sync(blocks: BlockRefs | None = None, config: dict[str, Any] | None = None) -> Any:
    """Bring the store to the exchange's confirmed truth. The domain flow polls for
    exchange_api.sync_window_s (a scheduled run every minute then keeps the store within
    seconds of the exchange, without sub-minute schedules)."""
    resolved = prepare(blocks, config)
    with run_scope(resolved) as settings:
        try:
            report = order_sync_flow(
                config=subflow_config(settings),
                window_s=window_left(settings.exchange_api.sync_window_s),
            )
            log_order_changes(report)
            return report
        finally:
            publish_dashboards(settings, label="order sync")


@flow(name="kestrel-position-monitor", log_prints=True)
def position_monitor(blocks: BlockRefs | None = None, config: dict[str, Any] | None = None) -> Any:
    """Mark open positions to market; exit on stop-loss, take-profit or trailing stop."""
    resolved = prepare(blocks, config)
    with run_scope(resolved) as settings:
        try:
            report = position_monitor_flow(
                config=subflow_config(settings),
                window_s=window_left(settings.exchange_api.monitor_window_s),
            )
            for symbol, outcome in (getattr(report, "exits", None) or {}).items():
                get_run_logger().warning("%s exit: %s", symbol, outcome)
            return report
        finally:
            publish_dashboards(settings, label="position monitor")


def window_left(window_s: float) -> float:
    """The polling window cut by how late this run started, so a backlog of late runs
    (worker down for a while, ENQUEUE) drains with one pass each instead of a window each."""
    scheduled = flow_run.get_scheduled_start_time()
    late_s = max(0.0, (datetime.now(UTC) - scheduled).total_seconds()) if scheduled else 0.0
    if late_s <= 1.0:
        return window_s
    left = max(0.0, window_s - late_s)
    get_run_logger().info(
        "started %.0fs late: polling for %.0fs instead of %.0fs", late_s, left, window_s
    )
    return left


def log_order_changes(report: Any) -> None:
    """One line per order whose status changed, per unresolved order (reports of any shape
    with `changed` {client id: status} / `unresolved` [client id])."""
    logger = get_run_logger()
    for client_order_id, status in (getattr(report, "changed", None) or {}).items():
        logger.info("order %s is now %s", client_order_id, status)
    for client_order_id in getattr(report, "unresolved", None) or []:
        logger.warning("order %s not confirmed by the exchange yet", client_order_id)


# -- notifications ---------------------------------------------------------------------------


def telegram_ready(settings: KestrelSettings) -> str | None:
    """None if notifications can go out, else why not (a run then completes doing nothing,
    rather than failing every minute on a machine without Telegram)."""
    telegram = settings.telegram
    has_token = (
        telegram.bot_token is not None and bool(telegram.bot_token.get_secret_value())
    ) or bool(telegram.token_secret_block)
    if not has_token:
        return "no Telegram bot token (KESTREL_TELEGRAM__BOT_TOKEN or a telegram block)"
    if not telegram.can_notify:
        return "no notify_chat_id"
    return None


@flow(name="kestrel-notifications", log_prints=True)
def notifications(blocks: BlockRefs | None = None, config: dict[str, Any] | None = None) -> Any:
    """Deliver pending events to Telegram, each exactly once."""
    resolved = prepare(blocks, config)
    missing = telegram_ready(resolved.settings)
    if missing:
        return Completed(message=f"Telegram not configured ({missing}); nothing sent")
    with run_scope(resolved) as settings:
        return notifications_flow(config=subflow_config(settings))


@flow(name="kestrel-daily-report", log_prints=True)
def daily_report(
    blocks: BlockRefs | None = None,
    config: dict[str, Any] | None = None,
    day: date | None = None,
) -> Any:
    """Record the day's summary (default: yesterday in the Telegram time zone) and send it."""
    resolved = prepare(blocks, config)
    with run_scope(resolved) as settings:
        try:
            return daily_report_flow(config=subflow_config(settings), day=day)
        finally:
            publish_dashboards(settings, label="daily report", with_exchange=False)


@flow(name="kestrel-telegram-bot", log_prints=True)
def telegram_bot(
    blocks: BlockRefs | None = None,
    config: dict[str, Any] | None = None,
    stop_after_s: float = 3540.0,
) -> Any:
    """Answer Telegram commands (/status, /stop, ...) for `stop_after_s`, then end."""
    resolved = prepare(blocks, config)
    if not (resolved.settings.telegram.bot_token or resolved.settings.telegram.token_secret_block):
        return Completed(message="Telegram not configured (no bot token); not polling")
    with run_scope(resolved) as settings:
        return telegram_bot_flow(config=subflow_config(settings), stop_after_s=stop_after_s)
