"""The one way into a Kestrel job, shared by every entry flow (what prefect.yaml deploys and
the `kestrel` CLI runs: the same flow object for both).

`entry_run` resolves the run's settings once (environment and kestrel.toml, then the blocks
the run names, then its own parameters, then the live settings stored for the mode), wires
order logging, exports secrets for the run's duration, loads the exchange account block, sets
the trading mode and, when the job changes books, refreshes the dashboards whatever the
outcome. `settle` turns the outcomes a job expects (a bad parameter, another run holding the
job's slot, an exchange that stayed down past its retries) into a final state with a message
and one log line, instead of an ERROR with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prefect import get_client, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Cancelled, Completed, Failed

from blocks.exchange_account import use_exchange_account
from blocks.settings import BlockRefs, Resolved, exported, resolve_settings
from flows.dashboards import publish_dashboards
from flows.logs import ORDER_FILTER, install_order_logging
from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, KestrelError, SecurityError
from kestrel.exchange.errors import is_transient
from kestrel.mode import trading_mode
from kestrel.operator import live as live_settings
from kestrel.store import open_store

log = logging.getLogger("kestrel.flows")


class JobFailed(KestrelError):
    """The job ran and some of its work failed; the message says what, in one line."""


def prepare(
    job: str, blocks: BlockRefs | None, *layers: Mapping[str, Any] | None, live: bool = True
) -> Resolved:
    """The run's settings (see the module docstring), and one line saying where they came
    from. Raises ConfigError naming a bad field, SecurityError for a widening `config`."""
    resolved = resolve_settings(blocks, *layers, run=flow_run.flow_name or job)
    install_order_logging()
    settings = resolved.settings
    with exported(resolved.secret_env), trading_mode(settings.mode):
        use_exchange_account(settings)  # REAL credentials from a block, if named
        if live:  # `kestrel settings` changes are in force from the next run
            settings = live_settings.resolve_settings(settings)
    get_run_logger().info(
        "%s: mode %s, store %s, %d watchlist symbol(s); settings from environment/kestrel.toml%s",
        job,
        settings.mode.value,
        "MongoDB" if (settings.store_uri or "").startswith("mongodb") else "SQLite",
        len(settings.watchlist),
        "".join(f", block {source}" for source in resolved.sources) + ", parameters",
    )
    return Resolved(settings=settings, secret_env=resolved.secret_env, sources=resolved.sources)


@contextmanager
def entry_run(
    job: str,
    blocks: BlockRefs | None,
    *layers: Mapping[str, Any] | None,
    live: bool = True,
    dashboards: str | None = None,
    with_exchange: bool = True,
) -> Iterator[KestrelSettings]:
    """Settings resolved, secrets exported, the trading mode set and log lines able to find
    an order's symbol in the store, for the duration of the run; the dashboards refreshed
    at the end when `dashboards` labels them (a dashboard failure never fails the run)."""
    resolved = prepare(job, blocks, *layers, live=live)
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
            try:
                if dashboards is not None:
                    publish_dashboards(settings, label=dashboards, with_exchange=with_exchange)
            finally:
                ORDER_FILTER.set_lookup(None)
                store.close()


def settle[T](job: str, body: Callable[[], T | State[Any]]) -> T | State[Any]:
    """Run a job's body; the outcomes it expects end the run with a clear state and one line.

    - a bad parameter (ConfigError): Cancelled, one WARNING naming the field;
    - a `config` that widens the installation's mode or whitelist (SecurityError, recorded
      as a SECURITY event): Cancelled, one WARNING;
    - an exchange still failing when its retries are exhausted: Failed, one ERROR line saying
      what failed and that the next run reconciles it; the traceback goes to DEBUG;
    - JobFailed (some symbols or orders failed, each already logged): Failed, one ERROR line.

    The exception rides in the state's data, so a direct call (the CLI, a test) still raises
    it. Anything else is a defect and fails the run with Prefect's traceback."""
    logger = get_run_logger()
    try:
        return body()
    except ConfigError as exc:
        message = f"{job} not run: bad parameter: {exc}"
        logger.warning(message)
        return Cancelled(message=message, data=exc)
    except SecurityError as exc:  # a `config` that widens the installation (an event too)
        message = f"{job} not run: {exc}"
        logger.warning(message)
        return Cancelled(message=message, data=exc)
    except JobFailed as exc:
        message = f"{job} failed: {exc}"
        logger.error(message)
        return Failed(message=message, data=exc)
    except Exception as exc:
        if not is_transient(exc):
            raise
        message = exchange_trouble(job, exc)
        logger.error(message)
        log.debug("%s: traceback", job, exc_info=exc)
        return Failed(message=message, data=exc)


def exchange_trouble(job: str, exc: BaseException) -> str:
    """One line for an exchange that stayed unavailable: what failed and what happens now."""
    return (
        f"{job}: the exchange is unavailable ({type(exc).__name__}: {exc}) after the task "
        "retries; nothing is lost: an order sent or not is reconciled by the next order sync"
    )


def done[T](value: T, message: str | None) -> T | State[Any]:
    """`value` as the run's result, Completed with `message` when there is one to tell."""
    return value if message is None else Completed(message=message, data=value)


def running_holders(flow_name: str) -> str:
    """Who else is running `flow_name` on this server (best effort, for a stand-down line):
    'flow run brave-owl (id)', or 'another run' when the API cannot say."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    me = flow_run.get_id()
    try:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
                ),
                limit=5,
            )
    except Exception as exc:  # naming the holder must never fail the stand-down
        log.debug("could not list running %s runs: %s", flow_name, exc)
        return "another run"
    others = [f"flow run {run.name} ({run.id})" for run in runs if str(run.id) != me]
    return ", ".join(others) or "another run"
