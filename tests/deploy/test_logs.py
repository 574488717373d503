"""Order-related log lines carry mode, symbol and client order id, and Kestrel's own loggers
reach the run's logs in Prefect."""

from __future__ import annotations

import logging
from uuid import UUID

import pytest

from flows.logs import OrderContextFilter, install_order_logging

from .helpers import run_logs

CID_REAL = "krp-0123456789abcdef0123456789"
CID_DEMO = "kds-abcdefabcdefabcdefabcdefab"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "kestrel.execution.sync", logging.INFO, __file__, 1, message, args, None
    )
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_prefix_from_the_id_and_the_lookup() -> None:
    looked_up: list[str] = []

    def lookup(cid: str) -> str | None:
        looked_up.append(cid)
        return {"krp-0123456789abcdef0123456789": "BTC/USDT"}.get(cid)

    flt = OrderContextFilter()
    flt.set_lookup(lookup)
    line = record("order %s not confirmed yet; will retry", CID_REAL)
    assert flt.filter(line)
    assert (
        line.getMessage()
        == f"[REAL BTC/USDT {CID_REAL}] order {CID_REAL} not confirmed yet; will retry"
    )
    again = record("order %s filled", CID_REAL)
    flt.filter(again)
    assert looked_up == [CID_REAL]  # cached after the first lookup
    unknown = record("order %s rejected", CID_DEMO)
    flt.filter(unknown)
    assert unknown.getMessage().startswith(f"[DEMO ? {CID_DEMO}]")


def test_ids_with_the_installation_are_recognised() -> None:
    """Ids made today carry the installation (kestrel.ids.client_order_id); older stored
    orders keep the earlier form. Both are tagged."""
    from kestrel.ids import client_order_id
    from kestrel.mode import TradingMode
    from kestrel.models import OrderRole

    cid = client_order_id(
        TradingMode.REAL, "BTC/USDT|1h|0", "BTC/USDT", OrderRole.PRIMARY, installation="ab12cd34"
    )
    flt = OrderContextFilter()
    flt.set_lookup(lambda _: "BTC/USDT")
    line = record("BUY 0.1 BTC/USDT: order %s FILLED", cid)
    flt.filter(line)
    assert line.getMessage().startswith(f"[REAL BTC/USDT {cid}] ")


def test_explicit_extra_wins_and_lines_are_tagged_once() -> None:
    flt = OrderContextFilter()
    line = record("placing", client_order_id=CID_DEMO, symbol="ETH/USDT", mode="DEMO")
    flt.filter(line)
    flt.filter(line)
    assert line.getMessage() == f"[DEMO ETH/USDT {CID_DEMO}] placing"


def test_other_lines_are_untouched() -> None:
    flt = OrderContextFilter()
    line = record("market data: SIMULATED (%s)", "no network")
    assert flt.filter(line)
    assert line.getMessage() == "market data: SIMULATED (no network)"
    failing_lookup = OrderContextFilter()

    def broken(cid: str) -> str | None:
        raise RuntimeError("store down")

    failing_lookup.set_lookup(broken)
    line = record("order %s", CID_REAL)
    assert failing_lookup.filter(line)  # never drops or raises
    assert line.getMessage().startswith(f"[REAL ? {CID_REAL}]")


@pytest.mark.prefect
def test_kestrel_lines_reach_the_run_logs(prefect_api: str) -> None:
    from prefect import flow, get_run_logger, task

    flt = install_order_logging()
    assert install_order_logging() is flt  # idempotent

    @task
    def inside_a_task() -> None:
        logging.getLogger("kestrel.execution.orders").warning(
            "order %s rejected: min notional", CID_REAL
        )

    @flow
    def order_lines() -> str:
        flt.set_lookup(lambda cid: "BTC/USDT")
        try:
            logging.getLogger("kestrel.execution.sync").info("order %s not confirmed yet", CID_REAL)
            get_run_logger().info("order %s is now FILLED", CID_REAL)
            logging.getLogger("kestrel.market").info("no order here")
            inside_a_task()
        finally:
            flt.set_lookup(None)
        from prefect.runtime import flow_run

        return str(flow_run.get_id())

    run_id = order_lines()
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    lines = run_logs(UUID(run_id))
    prefix = f"[REAL BTC/USDT {CID_REAL}]"
    assert f"{prefix} order {CID_REAL} not confirmed yet" in lines
    assert f"{prefix} order {CID_REAL} is now FILLED" in lines
    assert f"{prefix} order {CID_REAL} rejected: min notional" in lines
    assert "no order here" in lines


def test_an_exchange_down_past_the_retries_is_one_line(prefect_api: str) -> None:
    """Prefect's ERROR-with-traceback for a step whose exchange stayed unavailable becomes
    one line: what failed, after how many attempts, what happens to the order now."""
    import ccxt
    from prefect import flow, task
    from prefect.logging.handlers import APILogWorker
    from prefect.states import State

    from tasks.retry import RETRY_OPTIONS

    install_order_logging()
    options = {**RETRY_OPTIONS, "retries": 1, "retry_delay_seconds": 0}

    @task(name="execute", **options)
    def execute() -> None:
        raise ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order timed out")

    @flow(name="exchange-down")
    def exchange_down() -> State[None]:
        return execute(return_state=True)

    state = exchange_down(return_state=True)
    assert isinstance(state, State) and state.is_failed()
    APILogWorker.drain_all(timeout=10)
    lines = run_logs(UUID(str(state.state_details.flow_run_id)))
    failed = [line for line in lines if "exchange unavailable" in line]
    assert len(failed) == 1, lines
    [line] = failed
    assert line.startswith("execute")
    assert "after 2 attempt(s) (RequestTimeout: binance POST" in line
    assert "the next order sync looks its client order id up" in line
    assert not any("Traceback" in entry for entry in lines), lines


def test_other_failures_keep_their_traceback() -> None:
    flt_record = record("Task run failed with exception: %r", ValueError("a defect"))
    flt_record.levelno = logging.ERROR
    try:
        raise ValueError("a defect")
    except ValueError:
        import sys

        flt_record.exc_info = sys.exc_info()
    from flows.logs import ExchangeTroubleFilter

    assert ExchangeTroubleFilter().filter(flt_record)
    assert flt_record.exc_info is not None
    assert flt_record.getMessage().startswith("Task run failed")
