"""Paper-exchange benchmark: does an order cost more once the account has a long history?

    .venv/bin/python bench/paper.py [--probes 200] [--max-ratio 1.2] [--late 10000]

Two accounts, each on its own SQLite store and replayed BTC/USDT market, through the real
PaperExchange: one is given 99 orders of history, the other 9,999. An order is a market buy
placed with create_order, the feed closing the next candle, and fetch_order seeing the fill
(matching, booking it, writing its rows): its cost is the wall time of those three calls.
Then the two accounts take turns placing `probes` orders each, so the 100th order of the one
and the 10,000th of the other are timed side by side and a busy machine slows both alike.
Prints the median cost of each, their ratio (exit 1 when above --max-ratio), and the size of
each account document, which must not grow with the history.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kestrel.config.settings import PaperSettings  # noqa: E402
from kestrel.exchange.paper import PaperExchange  # noqa: E402
from kestrel.exchange.paper_markets import default_markets  # noqa: E402
from kestrel.exchange.paper_state import STATE_KEY  # noqa: E402
from kestrel.market import ReplayFeed  # noqa: E402
from kestrel.mode import TradingMode  # noqa: E402
from kestrel.store.sqlite import SQLiteStore  # noqa: E402

HOUR = 3_600_000
T0 = 1_699_999_200_000
WARMUP = 10
EARLY = 100  # "the 100th order"
LATE = 10_000  # "the 10,000th order"


def write_candles(folder: Path, count: int) -> Path:
    """A calm market around 20000 with plenty of volume, one hourly candle per order."""
    path = folder / "BTC_USDT-1h.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    for n in range(count):
        base = 20000 + (n % 50)
        lines.append(f"{T0 + n * HOUR},{base},{base + 30},{base - 30},{base + 5},500")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Account:
    store: SQLiteStore
    feed: ReplayFeed
    paper: PaperExchange
    placed: int = 0

    @classmethod
    def open(cls, folder: Path, orders: int) -> Account:
        folder.mkdir()
        store = SQLiteStore(folder / "demo.sqlite", TradingMode.DEMO)
        candles = write_candles(folder, orders + WARMUP + 2)
        feed = ReplayFeed({"BTC/USDT": candles}, store, warmup=WARMUP)
        markets = {"BTC/USDT": default_markets()["BTC/USDT"]}
        balances = {"USDT": Decimal("10000000")}
        return cls(store, feed, PaperExchange(store, feed, markets, PaperSettings(), balances))

    def order(self) -> float:
        """Place one market buy and see it filled; the seconds it took."""
        start = time.perf_counter()
        created = self.paper.create_order("BTC/USDT", "market", "buy", 0.001)
        self.feed.advance()
        filled = self.paper.fetch_order(created["id"], "BTC/USDT")
        elapsed = time.perf_counter() - start
        self.placed += 1
        if filled["status"] != "closed":
            raise SystemExit(f"order {self.placed} did not fill: {filled['status']}")
        return elapsed

    def document_bytes(self) -> int:
        found = self.store.get_state(STATE_KEY)
        return len(json.dumps(found[0])) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--max-ratio", type=float, default=1.2)
    parser.add_argument("--late", type=int, default=LATE, help="the order compared with #100")
    args = parser.parse_args()
    late_n: int = args.late
    with tempfile.TemporaryDirectory() as tmp:
        young = Account.open(Path(tmp) / "young", EARLY + args.probes)
        old = Account.open(Path(tmp) / "old", late_n + args.probes)
        try:
            for account in (young, old):
                while account.placed < (EARLY if account is young else late_n) - 1:
                    account.order()
            print(f"history: {young.placed} and {old.placed} orders placed and filled")
            early: list[float] = []
            late: list[float] = []
            for _ in range(args.probes):
                early.append(young.order())
                late.append(old.order())
            sizes = (young.document_bytes(), old.document_bytes())
        finally:
            young.store.close()
            old.store.close()
    first, last = statistics.median(early), statistics.median(late)
    ratio = last / first
    span = args.probes - 1
    print(f"orders #{EARLY}-#{EARLY + span}: median {first * 1000:.2f} ms")
    print(f"orders #{late_n}-#{late_n + span}: median {last * 1000:.2f} ms")
    print(f"account document: {sizes[0]} bytes (young), {sizes[1]} bytes (old)")
    verdict = "OK" if ratio <= args.max_ratio else "TOO SLOW"
    print(f"ratio #{late_n} / #{EARLY}: {ratio:.3f} (limit {args.max_ratio}) {verdict}")
    if ratio > args.max_ratio:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
