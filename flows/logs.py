"""Order-related log lines carry the mode, the symbol and the client order id, and Kestrel's
own loggers reach Prefect's run logs.

Kestrel's domain code logs with plain `logging` (it never imports Prefect) and mentions an
order by its client order id. `OrderContextFilter` finds that id in any record, on Prefect's
run loggers and on the `kestrel` logger, and prefixes the line with `[MODE SYMBOL ID]`: the
mode comes from the id itself (k<d|r>...), the symbol from orders the flow layer has seen or,
failing that, from the store (`set_symbol_lookup`). `install_order_logging` wires it up once
per process; it does not change any module of kestrel/. `ExchangeTroubleFilter` turns a
step that failed on an exchange outage past its retries into one readable line.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

from kestrel.exchange.errors import is_transient
from kestrel.ids import CLIENT_ORDER_ID
from kestrel.mode import TradingMode
from kestrel.models import Order

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
KESTREL_LOGGER = "kestrel"
_MODE_OF = {"d": TradingMode.DEMO.value, "r": TradingMode.REAL.value}

SymbolLookup = Callable[[str], str | None]


class OrderContextFilter(logging.Filter):
    """Prefix order-related records with `[MODE SYMBOL CLIENT_ORDER_ID]`; never drops one."""

    def __init__(self) -> None:
        super().__init__()
        self._symbols: dict[str, str] = {}
        self._lookup: SymbolLookup | None = None
        self._lock = threading.Lock()

    def remember(self, orders: Iterable[Order]) -> None:
        with self._lock:
            for order in orders:
                self._symbols[order.client_order_id] = order.symbol

    def set_lookup(self, lookup: SymbolLookup | None) -> None:
        with self._lock:
            self._lookup = lookup

    def symbol_of(self, client_order_id: str) -> str | None:
        with self._lock:
            known = self._symbols.get(client_order_id)
            lookup = self._lookup
        if known is not None or lookup is None:
            return known
        try:
            found = lookup(client_order_id)
        except Exception:  # a log line must never fail because the store did
            return None
        if found:
            with self._lock:
                self._symbols[client_order_id] = found
        return found

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "kestrel_order_context", None):
            return True
        explicit = getattr(record, "client_order_id", None)
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken format string is the logging module's to report
        match = CLIENT_ORDER_ID.search(explicit or message)
        if match is None:
            return True
        cid = match.group(0)
        mode = getattr(record, "mode", None) or _MODE_OF[match.group(1)]
        symbol = getattr(record, "symbol", None) or self.symbol_of(cid) or "?"
        record.msg = f"[{mode} {symbol} {cid}] {message}"
        record.args = ()
        record.kestrel_order_context = (str(mode), symbol, cid)
        return True


class RunLogHandler(APILogHandler):
    """Prefect's API log handler, silent outside a flow or task run (no warnings)."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "flow_run_id", None) is None and not (
            FlowRunContext.get() or TaskRunContext.get()
        ):
            return
        super().emit(record)


# What happens after a step's retries are exhausted, by task name (the next run's recovery).
AFTERWARDS = {
    "execute": "the order was not confirmed: the next order sync looks its client order id "
    "up on the exchange and books what happened (it is never sent twice)",
    "fetch": "this symbol sits this cycle out; the next cycle tries again",
    "risk": "no order for this symbol this cycle; the next cycle tries again",
    "decide": "no order for this symbol this cycle; the next cycle tries again",
    "sync-orders": "no record changed; the next sync pass tries again",
    "monitor-positions": "the next monitor pass tries again; exchange-side stops stay in place",
}


class ExchangeTroubleFilter(logging.Filter):
    """Prefect's task-failure record for an exchange that stayed unavailable past the
    retries becomes one line (what failed, after how many attempts, what happens now); the
    traceback goes to the `kestrel.flows` logger at DEBUG. Other failures keep Prefect's
    record and traceback: they are defects to read in full."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not record.exc_info:
            return True
        exc = record.exc_info[1]
        if exc is None or not is_transient(exc):
            return True
        task = str(getattr(record, "task_name", "") or "")
        run = str(getattr(record, "task_run_name", "") or task or "a step")
        context = TaskRunContext.get()
        attempts = context.task_run.run_count if context is not None else 0
        tried = f"after {attempts} attempt(s)" if attempts else "after its retries"
        afterwards = AFTERWARDS.get(task, "the next run tries again")
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        logging.getLogger("kestrel.flows").debug("%s: traceback", run, exc_info=record.exc_info)
        record.msg = f"{run}: exchange unavailable {tried} ({type(exc).__name__}: {detail}); "
        record.msg += afterwards
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        return True


ORDER_FILTER = OrderContextFilter()
EXCHANGE_TROUBLE = ExchangeTroubleFilter()
_installed = False
_install_lock = threading.Lock()


def install_order_logging(level: int = logging.INFO) -> OrderContextFilter:
    """Idempotent: the filter on Prefect's run loggers and on Kestrel's loggers, and
    Kestrel's records (INFO and up) sent to the current run's logs."""
    global _installed
    with _install_lock:
        if not _installed:
            for name in RUN_LOGGERS:
                logging.getLogger(name).addFilter(EXCHANGE_TROUBLE)
                logging.getLogger(name).addFilter(ORDER_FILTER)
            kestrel_logger = logging.getLogger(KESTREL_LOGGER)
            if kestrel_logger.level == logging.NOTSET or kestrel_logger.level > level:
                kestrel_logger.setLevel(level)
            handler = RunLogHandler()
            handler.setLevel(level)
            # Filters on a handler see records propagated from kestrel.* children; the
            # rewrite happens before root's handlers, so the console shows the prefix too.
            handler.addFilter(ORDER_FILTER)
            kestrel_logger.addHandler(handler)
            _installed = True
    return ORDER_FILTER


def order_extra(order: Order) -> dict[str, Any]:
    """`extra=` for a line about `order` written by the flow layer."""
    return {
        "mode": order.mode.value,
        "symbol": order.symbol,
        "client_order_id": order.client_order_id,
    }
