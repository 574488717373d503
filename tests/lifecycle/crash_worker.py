"""A Kestrel process for the crash tests: `python -m tests.lifecycle.crash_worker '<json>'`.

It does what a deployment run does (place one order, one sync + protection pass, or one
monitor pass) against the emulator at `url` and the SQLite store at `db`; with
KESTREL_CRASH_AT=<step> in its environment it dies at that step (os._exit, no cleanup).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kestrel.books.wallet import build_exchange
from kestrel.execution.monitor import monitor_positions
from kestrel.execution.orders import place
from kestrel.execution.protection import ProtectionPolicy, protect_positions
from kestrel.execution.sync import sync_orders
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import OrderType
from kestrel.runtime import Runtime
from kestrel.store.sqlite import SQLiteStore
from tests.lifecycle.intents import intent
from tests.lifecycle.scenario import credentials, real_settings


def main(raw: str) -> int:
    args = json.loads(raw)
    with trading_mode(TradingMode.REAL):
        settings = real_settings(args["url"], Path(args["data_dir"]))
        store = SQLiteStore(Path(args["db"]), TradingMode.REAL)
        exchange = build_exchange(settings, store, credentials=credentials())
        action = args["action"]
        if action == "place":
            order = intent(
                args["tag"],
                args.get("amount", "0.5"),
                type=OrderType(args.get("type", "market")),
                price=args.get("price"),
                stop_loss=args.get("stop_loss"),
                take_profit=args.get("take_profit"),
            )
            place(store, exchange, order)
        elif action == "sync":
            sync_orders(store, exchange)
            report = protect_positions(store, exchange, ProtectionPolicy())
            if report.failed:
                print(json.dumps(report.failed), file=sys.stderr)
                return 3
        elif action == "monitor":
            rt = Runtime(settings=settings, store=store, exchange=exchange)
            monitored = monitor_positions(rt)
            if monitored.errors:
                print(json.dumps(monitored.errors), file=sys.stderr)
                return 3
        else:
            raise ValueError(f"unknown action {action}")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
