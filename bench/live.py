"""The live engine against the emulator (a subprocess, so this process's CPU is the engine's):
candle close -> order sent, tick crossing a stop -> exit order sent, idle cost next to today's
scheduled polling measured the same way, and (--soak N) resident memory over N cycles.

    .venv/bin/python bench/live.py --csv /work/shared/data/ohlcv/BTC_USDT-1h.csv \
        [--candles 20] [--ticks 20] [--idle 60] [--phases latency,ticks,idle] [--soak 1000]

Trading: the watchlist trades `bench.flip:FlipStrategy` (bench/flip.py, through the normal
`trading.default_strategy` setting): BUY on even hours, SELL on odd ones, so every measured
close sends an order for every symbol. "Order sent" is the moment the engine hands the order
to ccxt's create_order (timed in this process, as is the candle close: just before the
emulator is told to advance). Cycles run in process through kestrel.live.direct.DirectHooks
(no Prefect): bench/cycle.py measures what Prefect adds.

Idle: two open positions (BTC with a stop-loss resting on the exchange, ETH watched by the
monitor alone), the engine with streams up and nothing happening, vs the order-sync (every
2 s) and position-monitor (every 5 s) passes the per-job deployments poll with; CPU is this
process's, requests are what the emulator counted per endpoint (REST) plus WebSocket
messages both ways. The engine's clock is the emulator's (frozen while idle), as a live
engine's wall clock is the exchange's.

Soak: the engine WITH its Prefect hooks (flows/live.py `live_engine`: cycles as subflows,
sync and monitor as tasks) against a temporary Prefect server, ending itself at N cycles
(its recycle bound); RSS after each candle, growth measured from the first 10% (warm-up).
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
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
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
        repo = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=repo)
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


def settings_for(emu: Emulator, data_dir: Path, symbols: int, protection: str = "monitor") -> Any:
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
            "protection": protection,
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


async def run_engine(
    settings: Any, emu: Emulator, body: Any, now_ms: Callable[[], int] | None = None
) -> Any:
    """now_ms: the engine's clock (default the wall clock; the idle run reads the emulator's
    frozen one, as a live engine's wall clock is the exchange's)."""
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
        **({"now_ms": now_ms} if now_ms is not None else {}),
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
        done = time.perf_counter() - t0
        # Candles are an hour apart: let the consumers watch again (and the order sync the
        # fills ask for finish) before the next close. A kline that arrives while its consumer
        # is still busy waits for the stream's next message (ccxt.pro), which Binance sends
        # within 2 s but the emulator only on the next advance.
        while engine.sync.busy or engine.monitor.busy:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        if i == 0:
            continue
        to_cycle_end.append(done)
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


def open_positions(rt: Any, emu: Emulator) -> None:
    """Two open positions for the idle runs: BTC with a stop-loss resting on the exchange
    (native protection; its take-profit watched), ETH with only a take-profit, which nothing
    on the exchange covers: the position monitor alone protects it."""
    from kestrel.execution.orders import place
    from tests.lifecycle.intents import intent

    btc = intent("idle-btc", "0.01", stop_loss="5000", take_profit="20000", reference=None)
    eth = intent("idle-eth", "0.01", take_profit="20000", reference=None, symbol="ETH/USDT")
    for entry in (btc, eth):
        place(rt.store, rt.exchange, entry)


class Idle:
    """One idle measurement: CPU s/min, REST requests by endpoint, WebSocket messages."""

    def __init__(self, seconds: float, cpu: float, rest: dict[str, int], ws: int) -> None:
        self.seconds, self.cpu, self.rest, self.ws = seconds, cpu, rest, ws

    def cpu_per_min(self) -> float:
        return self.cpu / self.seconds * 60

    def per_min(self, count: int) -> float:
        return count / self.seconds * 60

    def line(self) -> str:
        cpu = self.cpu_per_min()
        rest = sum(self.rest.values())
        return (
            f"{cpu:.3f} CPU s/min ({cpu / 60 * 100:.3f}% of a core), "
            f"{self.per_min(rest):.1f} REST requests/min + {self.per_min(self.ws):.1f} WS "
            "messages/min (both ways)"
        )

    def endpoints(self) -> str:
        ranked = sorted(self.rest.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {self.per_min(v):.1f}/min" for k, v in ranked) or "none"


def idle_engine(settings: Any, emu: Emulator, seconds: float) -> Idle:
    async def body(engine: Any, hooks: Any, rt: Any) -> Idle:
        await asyncio.to_thread(open_positions, rt, emu)
        for _ in range(3):  # the fills, then the stop order placed, then acknowledged
            await engine.sync.request("bench positions")
        # A price for each symbol reaches the engine the way it always does: the stream.
        for symbol, price in (("BTC/USDT", "8300"), ("ETH/USDT", "180")):
            await asyncio.to_thread(emu.admin, "POST", "tick", {"symbol": symbol, "price": price})
            while hooks.prices.price(symbol) is None:
                await asyncio.sleep(0.01)
        await engine.monitor.request("bench warm-up")  # its first pass imports what it uses
        levels = await asyncio.to_thread(hooks.levels)
        print(f"idle positions: {[(lv.symbol, lv.stop_loss, lv.native_stop) for lv in levels]}")
        emu.admin("DELETE", "requests")
        ws0 = emu.admin("GET", "ws/counts")
        cpu0 = time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        rest = emu.admin("GET", "requests")
        ws1 = emu.admin("GET", "ws/counts")
        ws = ws1["sent"] - ws0["sent"] + ws1["received"] - ws0["received"]
        return Idle(seconds, cpu, rest, ws)

    now = int(emu.admin("GET", "state")["now"])
    return asyncio.run(run_engine(settings, emu, body, now_ms=lambda: now))


def idle_polling(settings: Any, emu: Emulator, seconds: float) -> Idle:
    """The per-job loops' passes (sync every 2 s, monitor every 5 s), in this process, on the
    positions the engine's idle run left open."""
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
        rest = emu.admin("GET", "requests")
        store.close()
    return Idle(seconds, cpu, rest, 0)


def latency_phase(args: argparse.Namespace) -> None:
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


def ticks_phase(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(args.csv, 1, Path(tmp), start=300)
        try:
            settings = settings_for(emu, Path(tmp), 1)

            async def ticks(engine: Any, hooks: Any, rt: Any) -> Any:
                return await tick_latency(engine, hooks, rt, emu, args.ticks)

            exits = asyncio.run(run_engine(settings, emu, ticks))
            print(f"tick crossing a stop -> exit order sent: {ms(exits)}")
        finally:
            emu.stop()


def idle_phase(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(args.csv, 2, Path(tmp), start=300)
        try:
            settings = settings_for(emu, Path(tmp), 2, protection="native")
            engine = idle_engine(settings, emu, args.idle)
            polling = idle_polling(settings, emu, args.idle)
            print(
                f"idle over {args.idle:.0f} s, 2 symbols, 2 open positions (one resting "
                f"stop, one monitor-only): engine {engine.line()}; scheduled polling "
                f"{polling.line()} (without the per-run process start of deployments)"
            )
            print(f"  engine requests while idle: {engine.endpoints()}")
            print(f"  polling requests while idle: {polling.endpoints()}")
        finally:
            emu.stop()


def soak_phase(args: argparse.Namespace) -> None:
    """`--soak N` cycles in ONE engine process, with its Prefect hooks (flows/live.py: every
    cycle a subflow, every sync / monitor pass a task of the kestrel-live-engine flow run)
    against a temporary Prefect server; resident memory sampled after each candle. The flow
    ends itself at N cycles (its recycle bound), Completed."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.live import live_engine
    from kestrel.live.claims import last_claimed
    from kestrel.live.recycle import RecycleBound, rss_mb
    from kestrel.store.router import open_store

    n = args.soak_symbols
    candles = -(-args.soak // n)
    root = Path(os.environ["PREFECT_HOME"]).parent
    os.environ.update(
        {
            "KESTREL_MODE": "REAL",
            "KESTREL_REAL_EXCHANGE_WHITELIST": '["binance"]',
            "KESTREL_BINANCE_API_KEY": KEY,
            "KESTREL_BINANCE_API_SECRET": SECRET,
        }
    )
    emu = Emulator(args.csv, n, root, start=300)
    # Where the exchange is belongs to the installation, never to a run's parameters.
    os.environ["KESTREL_EXCHANGE_API__URL"] = emu.url
    os.environ["KESTREL_EXCHANGE_API__WS_URL"] = emu.ws_url
    try:
        settings = settings_for(emu, root / "data", n)
        config = settings.model_dump(mode="json")
        result: list[Any] = []
        with prefect_test_harness(server_startup_timeout=180):
            bound = RecycleBound(after_cycles=args.soak)

            def engine() -> None:
                result.append(live_engine(config=config, recycle=bound, return_state=True))

            thread = threading.Thread(target=engine, name="soak-engine", daemon=True)
            thread.start()
            while sum(len(c["streams"]) for c in emu.admin("GET", "ws/clients")) < 2 * n:
                if not thread.is_alive():
                    raise SystemExit(f"the engine flow ended before streaming: {result}")
                time.sleep(0.1)
            store = open_store(settings, settings.mode)  # the engine's own store
            symbols = [i.symbol for i in settings.watchlist]
            samples: list[float] = []
            late = 0
            t0 = time.perf_counter()
            k = -1
            # Past `candles` while the engine has not reached its bound (a kline it missed is
            # recorded as missed, not run), as far as the data goes.
            while (k := k + 1) < candles or (thread.is_alive() and k < candles + 50):
                before = Counter(o.symbol for o in store.list_orders())
                now = emu.admin("POST", "advance", {"candles": 1})["now"]
                deadline = time.monotonic() + 20
                # Every symbol's cycle for this candle has claimed it and sent its order (the
                # first candle may be a SELL with nothing to sell: no order).
                while thread.is_alive() and time.monotonic() < deadline:
                    claimed = [last_claimed(store, "binance", s, "1h") for s in symbols]
                    orders = Counter(o.symbol for o in store.list_orders())
                    sent = [orders[s] > before[s] or k == 0 for s in symbols]
                    if all(sent) and all(c is not None and c + 3_600_000 >= now for c in claimed):
                        # The last symbol's cycle returns after its order: a kline that
                        # arrives before its consumer watches again waits for the next message
                        # (ccxt.pro; Binance sends one every 2 s, the emulator only on advance).
                        time.sleep(5 if k == 0 else 2)
                        break
                    time.sleep(0.02)
                else:
                    late += thread.is_alive()
                    print(
                        f"  soak: candle {k} timed out: orders {dict(orders)} (before "
                        f"{dict(before)}), claimed {claimed} (now {now})",
                        flush=True,
                    )
                samples.append(rss_mb())
                if k % max(1, candles // 10) == 0:
                    print(f"  soak: {(k + 1) * n} cycles, RSS {samples[-1]:.1f} MiB", flush=True)
            thread.join(120)
            elapsed = time.perf_counter() - t0
            store.close()
        state = result[0] if result else None
        warm = samples[len(samples) // 10]
        growth = (samples[-1] - warm) / warm * 100
        print(
            f"soak: {len(samples)} candles x {n} symbols (Prefect hooks) in "
            f"{elapsed:.0f} s; RSS after warm-up ({len(samples) // 10 * n} cycles) {warm:.1f} "
            f"MiB, at the end {samples[-1]:.1f} MiB (max {max(samples):.1f}): growth "
            f"{growth:+.1f}% (target <= 5%); candles that timed out: {late}; engine flow "
            f"run: {state.type.value if state else 'did not end'}: "
            f"{state.result() if state else ''}"
        )
    finally:
        emu.stop()


PHASES = {
    "latency": latency_phase,
    "ticks": ticks_phase,
    "idle": idle_phase,
    "soak": soak_phase,
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--candles", type=int, default=20)
    p.add_argument("--ticks", type=int, default=20)
    p.add_argument("--idle", type=float, default=60.0, help="seconds per idle measurement")
    p.add_argument(
        "--phases", default="latency,ticks,idle", help=f"comma-separated, of {', '.join(PHASES)}"
    )
    p.add_argument("--soak", type=int, default=0, help="also run the soak phase: N cycles")
    p.add_argument("--soak-symbols", type=int, default=10)
    args = p.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    phases = list(dict.fromkeys(args.phases.split(",") + (["soak"] if args.soak else [])))
    with tempfile.TemporaryDirectory() as home:
        if "soak" in phases:
            from kestrel.config.prefect_env import configure_prefect_env

            configure_prefect_env(Path(home))  # before anything imports prefect
        from kestrel.mode import TradingMode, trading_mode

        with trading_mode(TradingMode.REAL):
            for name in phases:
                PHASES[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
