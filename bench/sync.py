"""Order-sync benchmark: 1,000 live orders over 20 symbols on the Binance emulator, through
Kestrel's REAL wallet (real ccxt), SQLite store.

    .venv/bin/python bench/sync.py [--orders 1000] [--symbols 20] [--poll 2.0]

ccxt's rate limiter is on (enableRateLimit, the exchange's real limit, as a deployment runs),
and the bench says so. Prints, for a pass where nothing changed and a pass where orders
filled: wall time, requests by endpoint, and the ratio of requests to (symbols with live
orders + vanished orders), next to what polling every order would cost. Then the delay from
a fill on the exchange to its record in the store, with the sync running as the deployment
does (a polling loop).

The scenario runs twice in one run, on two identical emulators: first the baseline, where
each order reads its own trades (one trade-history request per order that filled, as sync
did before `kestrel.execution.sync.SymbolTrades`), then sync as it is (one read of a symbol's trades
per pass); a table of both and their ratios closes the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import kestrel.execution.sync  # noqa: E402
from emulator import AccountConfig, BinanceEmulator, MarketConfig  # noqa: E402
from kestrel.books.wallet import build_exchange  # noqa: E402
from kestrel.config.settings import load_settings  # noqa: E402
from kestrel.execution.orders import place  # noqa: E402
from kestrel.execution.sync import (  # noqa: E402
    SymbolTrades,
    poll,
    sync_orders,
)
from kestrel.ids import client_order_id  # noqa: E402
from kestrel.mode import TradingMode, trading_mode  # noqa: E402
from kestrel.models import Order, OrderRole, OrderStatus, OrderType, Side  # noqa: E402
from kestrel.store.sqlite import SQLiteStore  # noqa: E402

HOUR = 3_600_000
T0 = 1_699_999_200_000
KEY, SECRET = "bench-key", "bench-secret"
BASES = [
    "BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK",
    "LTC", "ATOM", "UNI", "XLM", "ETC", "FIL", "APT", "ARB", "OP", "NEAR",
]  # fmt: skip
# price 100 x scale; every candle after the first dips a little lower, so resting buys placed
# at 99 - k fill one group per candle.
CANDLES = [(100, 101, 99.5, 100)] + [(100, 101, 99 - k - 0.5, 100) for k in range(40)]


def markets(count: int) -> list[MarketConfig]:
    out = []
    for i, base in enumerate(BASES[:count]):
        scale = Decimal(i + 1)
        rows: list[list[float | int | str]] = [
            [T0 + n * HOUR, *(str(Decimal(str(x)) * scale) for x in c), 1000]
            for n, c in enumerate(CANDLES)
        ]
        out.append(
            MarketConfig(
                symbol=f"{base}/USDT",
                candles=rows,
                tick_size=Decimal("0.01"),
                step_size=Decimal("0.001"),
                min_notional=Decimal("5"),
            )
        )
    return out


def intent(symbol: str, n: int, price: Decimal) -> Order:
    return Order(
        client_order_id=client_order_id(
            TradingMode.REAL, f"bench|{n}", symbol, OrderRole.PRIMARY, installation="bench001"
        ),
        mode=TradingMode.REAL,
        exchange="binance",
        symbol=symbol,
        side=Side.BUY,
        type=OrderType.LIMIT,
        amount=Decimal("0.2"),
        price=price,
    )


class PerOrderTrades(SymbolTrades):
    """The baseline: no trades read per symbol, so every order that needs its trades asks
    for them by its own exchange order id (`trades_for_order`), as sync did before."""

    def get(self) -> list[dict[str, Any]]:
        return []


@contextmanager
def trades_per_order(enabled: bool) -> Iterator[None]:
    """Sync with the baseline's trade reads for the block (bench only)."""
    if not enabled:
        yield
        return
    kestrel.execution.sync.SymbolTrades = PerOrderTrades  # type: ignore[misc]
    try:
        yield
    finally:
        kestrel.execution.sync.SymbolTrades = SymbolTrades  # type: ignore[misc]


def measure(label: str, emu: BinanceEmulator, run: object) -> tuple[float, dict[str, int], object]:
    emu.reset_request_counts()
    started = time.perf_counter()
    result = run()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    counts = emu.request_counts()
    print(f"{label}: {elapsed * 1000:.1f} ms, {sum(counts.values())} requests {counts}")
    return elapsed, counts, result


class Figures(BaseModel):
    quiet_s: float
    quiet_requests: int
    fills_s: float
    fills_requests: int
    vanished: int
    delay_mean_s: float | None
    delay_max_s: float | None


def scenario(args: argparse.Namespace, baseline: bool) -> Figures:
    label = "BASELINE (trades per order)" if baseline else "CURRENT (trades per symbol)"
    print(f"\n=== {label} ===")
    symbols = [f"{b}/USDT" for b in BASES[: args.symbols]]
    per_symbol = args.orders // len(symbols)
    account = AccountConfig(api_key=KEY, secret=SECRET, balances={"USDT": Decimal("1e9")})
    data_dir = Path(tempfile.mkdtemp(prefix="kestrel-bench-"))
    with (
        BinanceEmulator(markets(len(symbols)), [account]) as emu,
        trading_mode("REAL"),
        trades_per_order(baseline),
    ):
        settings = load_settings(
            mode="REAL",
            data_dir=data_dir,
            exchange_api={"url": emu.url, "rate_limit": True},  # as a deployment runs
        )
        store = SQLiteStore(data_dir / "bench.sqlite3", TradingMode.REAL)
        from kestrel.exchange.ccxt_exchange import ExchangeCredentials

        creds = ExchangeCredentials.model_validate({"api_key": KEY, "secret": SECRET})
        exchange = build_exchange(settings, store, credentials=creds)
        exchange.load_markets()
        client = exchange.client
        if not client.enableRateLimit:
            raise SystemExit("bench/sync.py measures with ccxt's rate limiter on; it is off")
        print(
            f"ccxt {client.id}: enableRateLimit on (the exchange's real rate limit as ccxt "
            f"applies it: {client.rateLimit} ms per unit of request weight)"
        )
        started = time.perf_counter()
        groups = max(1, min(args.fills + 2, 40))
        for i, symbol in enumerate(symbols):
            scale = Decimal(i + 1)
            for n in range(per_symbol):
                # group g fills on candle g + 1 (price 99 - g); the last groups rest far below
                group = n % (groups * 4)
                price = (Decimal(99) - group) * scale if group < groups else Decimal(30) * scale
                placed = place(store, exchange, intent(symbol, n, price))
                assert placed.status is OrderStatus.OPEN, placed
        live = len(store.list_orders(statuses=[OrderStatus.OPEN]))
        print(
            f"placed {live} live orders over {len(symbols)} symbols in "
            f"{time.perf_counter() - started:.1f}s ({per_symbol} per symbol)"
        )

        quiet_times = []
        for _ in range(5):
            elapsed, counts, _report = measure(
                "sync pass, nothing changed", emu, lambda: sync_orders(store, exchange)
            )
            quiet_times.append(elapsed)
        quiet_requests = sum(counts.values())
        print(
            f"  -> median {statistics.median(quiet_times) * 1000:.1f} ms; requests/symbol = "
            f"{quiet_requests / len(symbols):.2f}; per-order polling would need {live} "
            f"requests ({live / quiet_requests:.0f}x more)"
        )

        emu.advance()  # group 0 fills on every symbol
        fills_s, counts, report = measure(
            "sync pass after fills", emu, lambda: sync_orders(store, exchange)
        )
        vanished = len(report.changed)  # type: ignore[attr-defined]
        fills_requests = sum(counts.values())
        print(
            f"  -> {vanished} orders vanished (filled); requests = {fills_requests} = "
            f"{fills_requests / (len(symbols) + vanished):.2f} x (symbols + vanished); "
            f"{fills_s * 1000 / max(vanished, 1):.1f} ms per vanished order"
        )

        # Fill -> record delay with the deployment's shape: a loop polling every --poll s.
        fills: list[tuple[datetime, set[str]]] = []
        stop = threading.Event()

        def filler() -> None:
            for _ in range(args.fills):
                time.sleep(args.poll * 1.37)
                with emu.engine.lock:
                    emu.engine.advance()
                    filled_at = datetime.now(UTC)
                    newly = {
                        o.client_order_id
                        for o in emu.engine.orders.values()
                        if o.status == "FILLED" and o.update_time == emu.engine.now_ms - 1
                    }
                fills.append((filled_at, newly))
            time.sleep(args.poll * 2)
            stop.set()

        thread = threading.Thread(target=filler)
        thread.start()
        passes = poll(
            lambda: sync_orders(store, exchange),
            window_s=args.poll * 1.37 * (args.fills + 3),
            poll_s=args.poll,
            should_stop=stop.is_set,
        )
        thread.join()
        delays = []
        for filled_at, newly in fills:
            for cid in newly:
                order = store.get_order(cid)
                if order is not None and order.status is OrderStatus.FILLED:
                    delays.append((order.updated_at - filled_at).total_seconds())
        if delays:
            print(
                f"fill -> record delay (loop poll {args.poll}s, {len(passes)} passes, "
                f"{len(delays)} fills): mean {statistics.mean(delays):.2f}s, "
                f"median {statistics.median(delays):.2f}s, max {max(delays):.2f}s"
            )
        store.close()
    return Figures(
        quiet_s=statistics.median(quiet_times),
        quiet_requests=quiet_requests,
        fills_s=fills_s,
        fills_requests=fills_requests,
        vanished=vanished,
        delay_mean_s=statistics.mean(delays) if delays else None,
        delay_max_s=max(delays) if delays else None,
    )


def _ratio(before: float | None, after: float | None) -> str:
    if before is None or after is None or after == 0:
        return "-"
    return f"{before / after:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--poll", type=float, default=2.0, help="sync loop poll interval (s)")
    parser.add_argument("--fills", type=int, default=8, help="fill events for the delay")
    args = parser.parse_args()
    before = scenario(args, baseline=True)
    after = scenario(args, baseline=False)
    print("\n=== baseline (trades per order) -> current (trades per symbol) ===")
    rows = [
        ("idle pass, s (median)", before.quiet_s, after.quiet_s),
        ("idle pass, requests", before.quiet_requests, after.quiet_requests),
        (f"pass after {after.vanished} fills, s", before.fills_s, after.fills_s),
        ("pass after fills, requests", before.fills_requests, after.fills_requests),
        ("fill -> record, mean s", before.delay_mean_s, after.delay_mean_s),
        ("fill -> record, max s", before.delay_max_s, after.delay_max_s),
    ]
    for name, b, a in rows:
        shown = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in (b, a)]
        print(f"{name:<28} {shown[0]:>8} -> {shown[1]:>8}  ({_ratio(b, a)} baseline/current)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
