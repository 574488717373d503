"""The live engine against the emulator (a subprocess, so this process's CPU is the engine's):
candle close -> order sent, tick crossing a stop -> exit order sent, and idle cost next to
today's scheduled polling measured the same way, in one run.

    .venv/bin/python bench/live.py --csv /work/shared/data/ohlcv/BTC_USDT-1h.csv \
        [--candles 20] [--ticks 20] [--idle 60]

"Order sent" is the moment the engine hands the order to ccxt's create_order (timed in this
process, as is the candle close: just before the emulator is told to advance). Cycles run in
process through kestrel.live.direct.DirectHooks (no Prefect): bench/cycle.py measures what
Prefect adds. Idle: the engine with streams up and nothing happening, vs the order-sync
(every 2 s) and position-monitor (every 5 s) passes the per-job deployments poll with; CPU
is this process's, requests are what the emulator counted (REST) plus WebSocket messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kestrel.exchange.base import CcxtDict
from kestrel.live.ticks import StreamPricedExchange

SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LTC", "DOT", "LINK"]
KEY, SECRET = "bench-key", "bench-secret"


class TimedExchange(StreamPricedExchange):
    """Records when each order is handed to ccxt (the 'order sent' instant)."""

    sent: ClassVar[list[tuple[float, str, str]]] = []

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: CcxtDict | None = None,
    ) -> CcxtDict:
        TimedExchange.sent.append((time.perf_counter(), symbol, side))
        return super().create_order(symbol, type, side, amount, price, params)


class Emulator:
    def __init__(self, csv: Path, symbols: int, tmp: Path, start: int) -> None:
        args = [sys.executable, "-m", "emulator", "--start", str(start)]
        args += ["--account", f"{KEY}:{SECRET}", "--balance", "USDT=1000000"]
        for name in SYMBOLS[:symbols]:
            copy = tmp / f"{name}_USDT-1h.csv"
            shutil.copy(csv, copy)
            args += ["--market", f"{name}/USDT={copy}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready = json.loads(self.proc.stdout.readline())
        self.url, self.ws_url = ready["url"], ready["ws_url"]

    def admin(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        req = urllib.request.Request(f"{self.url}/_emulator/{route}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def settings_for(emu: Emulator, data_dir: Path, symbols: int) -> Any:
    from kestrel.config.settings import load_settings

    return load_settings(
        mode="REAL",
        data_dir=data_dir,
        exchange="binance",
        exchange_api={
            "url": emu.url,
            "ws_url": emu.ws_url,
            "rate_limit": False,
            "timeout_s": 5.0,
            "protection": "monitor",
        },
        watchlist=[{"symbol": f"{s}/USDT", "timeframe": "1h"} for s in SYMBOLS[:symbols]],
        # The emulator replays 2019 candles: "stale" would be measured against today's clock.
        risk={"min_confidence": 0.0, "stale_after_candles": 1e9},
        trading={
            "default_strategy": "bench.flip:FlipStrategy",
            # Every close trades: no same-side wait, and a losing round trip (fees) must not
            # trip the breaker before the bench has its samples.
            "gates": {
                "cooldown_candles": 0,
                "max_consecutive_losses": 1_000_000,
                "daily_loss_limit_pct": None,
            },
        },
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    if not values:
        return "n/a (no sample)"
    p50, p99 = pct(values, 0.5) * 1000, pct(values, 0.99) * 1000
    return f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  (n={len(values)})"


async def run_engine(settings: Any, emu: Emulator, body: Any) -> Any:
    from kestrel.books.wallet import build_exchange
    from kestrel.exchange.ccxt_exchange import ExchangeCredentials
    from kestrel.live import CcxtProSource, EngineConfig, LiveEngine
    from kestrel.live.client import build_pro_client
    from kestrel.live.direct import DirectHooks
    from kestrel.runtime import Runtime
    from kestrel.store.sqlite import SQLiteStore

    creds = ExchangeCredentials.model_validate({"api_key": KEY, "secret": SECRET})
    store = SQLiteStore(settings.data_dir / "real.sqlite3", settings.mode)
    exchange = TimedExchange(build_exchange(settings, store, credentials=creds))
    exchange.load_markets()
    rt = Runtime(settings=settings, store=store, exchange=exchange)
    hooks = DirectHooks(rt)
    client = build_pro_client("binance", settings.exchange_api, creds)
    await client.load_markets()
    watchlist = tuple((i.symbol, i.timeframe) for i in settings.watchlist)
    engine = LiveEngine(
        EngineConfig(watchlist=watchlist, exchange_id="binance"),
        store,
        CcxtProSource(client),
        hooks,
        on_price=hooks.price,
    )
    runner = asyncio.create_task(engine.run())
    try:
        n = len(watchlist)
        while len(engine.watchdogs) < 2 * n + 1 or emu.admin("GET", "ws/clients") == []:
            await asyncio.sleep(0.05)
        clients = []
        while sum(len(c["streams"]) for c in clients) < 2 * n:
            clients = emu.admin("GET", "ws/clients")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the start-up sync finishes
        return await body(engine, hooks, rt)
    finally:
        engine.stop_event.set()
        await runner
        await client.close()
        store.close()


def _settled(engine: Any) -> int:
    stats = engine.stats
    return int(stats.cycles_done + stats.missed + stats.claimed_elsewhere)


async def candle_latency(
    engine: Any, emu: Emulator, candles: int
) -> tuple[list[float], list[float]]:
    """The first candle is a warm-up (the first analysis imports pandas-ta): not counted.
    Per symbol and candle, the first order handed to ccxt (the bench strategy buys on even
    hours and sells on odd ones, so every close sends one)."""
    to_order: list[float] = []
    to_cycle_end: list[float] = []
    for i in range(candles + 1):
        TimedExchange.sent.clear()
        before, n = _settled(engine), len(engine.config.watchlist)
        t0 = time.perf_counter()
        await asyncio.to_thread(emu.admin, "POST", "advance", {"candles": 1})
        while _settled(engine) < before + n:
            await asyncio.sleep(0.001)
        if i == 0:
            continue
        to_cycle_end.append(time.perf_counter() - t0)
        first: dict[str, float] = {}
        for t, symbol, _ in TimedExchange.sent:
            first.setdefault(symbol, t - t0)
        to_order.extend(first.values())
    return to_order, to_cycle_end


async def tick_latency(engine: Any, hooks: Any, rt: Any, emu: Emulator, ticks: int) -> list[float]:
    from kestrel.execution.orders import place
    from tests.lifecycle.intents import intent

    out: list[float] = []
    for i in range(ticks):
        await asyncio.to_thread(emu.admin, "POST", "tick", {"symbol": "BTC/USDT", "price": "8300"})
        while hooks.prices.price("BTC/USDT") != Decimal("8300"):
            await asyncio.sleep(0.001)
        entry = intent(f"bench{i}", "0.01", stop_loss="7500", reference=None, symbol="BTC/USDT")
        await asyncio.to_thread(place, rt.store, rt.exchange, entry)
        await engine.sync.request("bench entry")
        TimedExchange.sent.clear()
        t0 = time.perf_counter()
        await asyncio.to_thread(emu.admin, "POST", "tick", {"symbol": "BTC/USDT", "price": "7000"})
        while not any(side == "sell" for _, _, side in TimedExchange.sent):
            await asyncio.sleep(0.0005)
        out.append(next(t for t, _, side in TimedExchange.sent if side == "sell") - t0)
        while engine.monitor.busy:
            await asyncio.sleep(0.001)
        await engine.sync.request("bench exit")
    return out


def idle_engine(settings: Any, emu: Emulator, seconds: float) -> tuple[float, float]:
    async def body(engine: Any, hooks: Any, rt: Any) -> tuple[float, float]:
        emu.admin("DELETE", "requests")
        ws0 = emu.admin("GET", "ws/counts")["received"]
        cpu0 = time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        rest = sum(emu.admin("GET", "requests").values())
        ws = emu.admin("GET", "ws/counts")["received"] - ws0
        return cpu / seconds * 60, (rest + ws) / seconds * 60

    return asyncio.run(run_engine(settings, emu, body))


def idle_polling(settings: Any, emu: Emulator, seconds: float) -> tuple[float, float]:
    """The per-job loops' passes (sync every 2 s, monitor every 5 s), in this process."""
    from kestrel.books.wallet import build_exchange
    from kestrel.exchange.ccxt_exchange import ExchangeCredentials
    from kestrel.execution.monitor import monitor_positions
    from kestrel.execution.protection import ProtectionPolicy, protect_positions
    from kestrel.execution.sync import sync_orders
    from kestrel.mode import trading_mode
    from kestrel.runtime import Runtime
    from kestrel.store.sqlite import SQLiteStore

    creds = ExchangeCredentials.model_validate({"api_key": KEY, "secret": SECRET})
    with trading_mode(settings.mode):
        store = SQLiteStore(settings.data_dir / "real.sqlite3", settings.mode)
        exchange = build_exchange(settings, store, credentials=creds)
        exchange.load_markets()
        rt = Runtime(settings=settings, store=store, exchange=exchange)
        policy = ProtectionPolicy.from_settings(settings.exchange_api)
        emu.admin("DELETE", "requests")
        cpu0, start = time.process_time(), time.monotonic()
        next_sync = next_monitor = start
        while (now := time.monotonic()) - start < seconds:
            if now >= next_sync:
                sync_orders(store, exchange)
                protect_positions(store, exchange, policy)
                next_sync += 2
            if now >= next_monitor:
                monitor_positions(rt)
                next_monitor += 5
            time.sleep(max(0.0, min(next_sync, next_monitor) - time.monotonic()))
        cpu = time.process_time() - cpu0
        rest = sum(emu.admin("GET", "requests").values())
        store.close()
    return cpu / seconds * 60, rest / seconds * 60


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--candles", type=int, default=20)
    p.add_argument("--ticks", type=int, default=20)
    p.add_argument("--idle", type=float, default=60.0, help="seconds per idle measurement")
    args = p.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from kestrel.mode import TradingMode, trading_mode

    with trading_mode(TradingMode.REAL):
        for n in (1, 10):
            with tempfile.TemporaryDirectory() as tmp:
                emu = Emulator(args.csv, n, Path(tmp), start=300)
                try:
                    settings = settings_for(emu, Path(tmp), n)

                    async def body(engine: Any, hooks: Any, rt: Any, e: Emulator = emu) -> Any:
                        got = await candle_latency(engine, e, args.candles)
                        actions = Counter(str(d.action.value) for d in hooks.decisions)
                        return (*got, dict(actions))

                    order, cycle_end, actions = asyncio.run(run_engine(settings, emu, body))
                    print(f"decisions, {n:2d} symbol(s): {actions}")
                    print(
                        f"candle close -> order sent, {n:2d} symbol(s): {ms(order)} "
                        f"of {args.candles * n} symbol-closes"
                    )
                    print(f"candle close -> all cycles done, {n:2d} symbol(s): {ms(cycle_end)}")
                finally:
                    emu.stop()
        with tempfile.TemporaryDirectory() as tmp:
            emu = Emulator(args.csv, 1, Path(tmp), start=300)
            try:
                settings = settings_for(emu, Path(tmp), 1)

                async def ticks(engine: Any, hooks: Any, rt: Any) -> Any:
                    return await tick_latency(engine, hooks, rt, emu, args.ticks)

                exits = asyncio.run(run_engine(settings, emu, ticks))
                print(f"tick crossing a stop -> exit order sent: {ms(exits)}")
                cpu_e, req_e = idle_engine(settings, emu, args.idle)
                cpu_p, req_p = idle_polling(settings, emu, args.idle)
                print(
                    f"idle over {args.idle:.0f} s, 1 symbol: engine {cpu_e:.2f} CPU s/min "
                    f"({cpu_e / 60 * 100:.2f}% of a core), {req_e:.1f} requests+messages/min; "
                    f"scheduled polling {cpu_p:.2f} CPU s/min, {req_p:.1f} requests/min "
                    "(without the per-run process start of deployments)"
                )
            finally:
                emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
