"""The operator API under load: 100 WebSocket clients while the engine runs 1,000 orders.

    .venv/bin/python bench/api.py [--clients 100] [--orders 1000] [--symbols 5] [--json out.json]

Everything real and local: `kestrel api` in its own process (as a user runs it) on a DEMO
config with the simulated market; the engine in this process on the same SQLite store:
limit orders placed and canceled through kestrel.manual (each a decision, an order created
and an order canceled: events in the outbox), with a trading cycle over the watchlist
(bench/cycle.py's direct cycle) after every 50 orders; the WebSocket clients and a REST
prober of GET /api/status in a second process (asyncio).

Printed, each against a baseline measured in the same run:
- every client got every update of `events` and `orders`, in order, no gap in seq, and the
  same event ids as the store holds (a mismatch fails the run);
- the engine: median cycle time and time per order with 0 clients vs with the clients
  (ratio; the target is <= 1.10);
- REST p50/p99 latency of /api/status idle vs under that load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LTC", "DOT", "LINK"]
DONE = "bench:done"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(root: Path, symbols: int) -> Path:
    lines = [
        'mode = "DEMO"',
        f'data_dir = "{root / "data"}"',
        "[risk]",
        "min_confidence = 0.0",
        "max_open_orders_per_symbol = 1000",
        "[paper]",
        'market_data = "simulated"',
        "seed = 3",
    ]
    for base in SYMBOLS[:symbols]:
        lines += [
            "[[watchlist]]",
            f'symbol = "{base}/USDT"',
            'timeframe = "1h"',
            'trade_amount_usd = "100"',
        ]
    config = root / "kestrel.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


# -- the engine (this process) -------------------------------------------------------------


class Engine:
    def __init__(self, config: Path) -> None:
        os.environ["KESTREL_CONFIG"] = str(config)
        from kestrel.config.settings import load_settings
        from kestrel.mode import trading_mode
        from kestrel.runtime import get_runtime

        self.settings = load_settings()
        self._mode = trading_mode
        with trading_mode(self.settings.mode):
            self.rt = get_runtime(self.settings)

    def cycle(self) -> float:
        from kestrel.trading import cycle

        started = time.perf_counter()
        with self._mode(self.settings.mode):
            for item in self.settings.watchlist:
                series = cycle.fetch_candles(self.rt, item)
                analysis = cycle.analyze_candles(series)
                verdict = cycle.assess_risk(self.rt, item, analysis)
                decision = cycle.make_decision(self.rt, item, analysis, verdict)
                cycle.execute(self.rt, decision)
        return time.perf_counter() - started

    def order(self, i: int) -> None:
        """One limit buy far below the market, then its cancel: a full order lifecycle."""
        from decimal import Decimal

        from kestrel.manual import PlaceOrderRequest, cancel_order, submit

        symbol = self.settings.watchlist[i % len(self.settings.watchlist)].symbol
        with self._mode(self.settings.mode):
            last = Decimal(str(self.rt.exchange.fetch_ticker(symbol)["last"]))
            price = (last / 2).quantize(Decimal("0.01"))
            request = PlaceOrderRequest.model_validate(
                {
                    "symbol": symbol,
                    "side": "buy",
                    "type": "limit",
                    "price": str(price),
                    "amount": "20",
                    "amount_in": "quote",
                }
            )
            outcome = submit(self.rt, request, actor="bench")
            if outcome.status.value != "PLACED":
                raise SystemExit(f"order {i} not placed: {outcome.status} {outcome.message}")
            cancel_order(self.rt, outcome.orders[0].client_order_id, actor="bench")

    def run(self, orders: int) -> dict[str, float]:
        cycles, per_order = [self.cycle()], []
        for i in range(orders):
            started = time.perf_counter()
            self.order(i)
            per_order.append(time.perf_counter() - started)
            if (i + 1) % 50 == 0:
                cycles.append(self.cycle())
        return {"cycle_s": statistics.median(cycles), "order_s": statistics.median(per_order)}

    def mark_done(self, phase: str) -> None:
        from kestrel.models import Event, EventType

        with self._mode(self.settings.mode):
            self.rt.store.append_events(
                [
                    Event(
                        event_id=f"{DONE}:{phase}",
                        type=EventType.CRITICAL,
                        mode=self.settings.mode,
                        message="bench phase done",
                    )
                ]
            )

    def events_after(self, seq: int) -> list[str]:
        with self._mode(self.settings.mode):
            return [e.event_id for e in self.rt.store.list_events(after_seq=seq)]


# -- the clients (a second process) --------------------------------------------------------


async def one_client(url: str, token: str, ready: asyncio.Queue[int]) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    got: dict[str, Any] = {"events": [], "orders": [], "ids": [], "base": {}}
    async with connect(url, max_size=2**24, max_queue=None) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await ws.recv())["type"] == "authed"
        await ws.send(json.dumps({"type": "subscribe", "channels": ["events", "orders"]}))
        snapshots = 0
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "snapshot":
                got["base"][message["channel"]] = message["seq"]
                snapshots += 1
                if snapshots == 2:
                    await ready.put(1)
                continue
            if message["type"] != "update":
                raise RuntimeError(f"unexpected {message}")
            got[message["channel"]].append(message["seq"])
            if message["channel"] == "events":
                got["ids"].append(message["data"]["event_id"])
                if message["data"]["event_id"].startswith(DONE):
                    return got


async def probe(base: str, token: str, stop: asyncio.Event | None, count: int) -> list[float]:
    import httpx

    took: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as h:
        while (stop is None and len(took) < count) or (stop is not None and not stop.is_set()):
            started = time.perf_counter()
            answer = await h.get("/api/status")
            took.append(time.perf_counter() - started)
            answer.raise_for_status()
            if stop is not None:
                await asyncio.sleep(0.1)  # ~10 status requests a second under load
    return took


async def clients_main(base: str, token: str, clients: int) -> None:
    url = base.replace("http://", "ws://") + "/ws"
    if clients == 0:
        print(json.dumps({"idle": await probe(base, token, None, 300)}), flush=True)
        return
    ready: asyncio.Queue[int] = asyncio.Queue()
    tasks = [asyncio.create_task(one_client(url, token, ready)) for _ in range(clients)]
    for _ in range(clients):
        await ready.get()
    print("READY", flush=True)
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(base, token, stop, 0))
    results = await asyncio.gather(*tasks)
    stop.set()
    print(json.dumps({"clients": results, "loaded": await prober}), flush=True)


# -- orchestration -------------------------------------------------------------------------


def login(base: str, secret: str) -> str:
    import httpx

    answer = httpx.post(f"{base}/api/auth/token", json={"api_key": secret}, timeout=30)
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def start_api(config: Path, port: int) -> subprocess.Popen[bytes]:
    import httpx

    env = {**os.environ, "KESTREL_CONFIG": str(config)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "api",
            "--port",
            str(port),
            "--rate",
            "1000000",
            "--burst",
            "1000000",
            "--access-ttl",
            "3600",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("kestrel api did not start")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def check(clients: list[dict[str, Any]], store_ids: list[str]) -> list[str]:
    """Every client: contiguous seqs on both channels, and exactly the store's events."""
    problems = []
    for n, got in enumerate(clients):
        for channel in ("events", "orders"):
            seqs = got[channel]
            want = list(range(got["base"][channel] + 1, got["base"][channel] + 1 + len(seqs)))
            if seqs != want:
                problems.append(f"client {n} {channel}: seq gap or disorder")
        start = store_ids.index(got["ids"][0]) if got["ids"] and got["ids"][0] in store_ids else -1
        if (
            start < 0
            or got["ids"] != store_ids[start : start + len(got["ids"])]
            or not got["ids"][-1].startswith(DONE)
        ):
            problems.append(f"client {n}: events differ from the store's")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", nargs=3, metavar=("BASE", "TOKEN", "CLIENTS"))
    args = parser.parse_args()
    if args.worker:
        base, token, clients = args.worker
        asyncio.run(clients_main(base, token, int(clients)))
        return

    root = Path(tempfile.mkdtemp(prefix="kestrel-bench-api-"))
    config = write_config(root, args.symbols)
    engine = Engine(config)
    from api.auth.keys import KeyBook

    secret = (
        KeyBook(engine.rt.store.backend(engine.settings.mode))
        .create("bench", ["READ"], by="bench")
        .secret
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = start_api(config, port)
    worker = [sys.executable, str(Path(__file__).resolve()), "--worker", base]
    try:
        token = login(base, secret)
        idle = json.loads(
            subprocess.run([*worker, token, "0"], capture_output=True, check=True, cwd=ROOT).stdout
        )["idle"]
        engine.run(min(50, args.orders))  # warm up caches, markets, analysis imports
        baseline = engine.run(args.orders)
        engine.mark_done("baseline")
        clients = subprocess.Popen(
            [*worker, token, str(args.clients)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert clients.stdout is not None
        if clients.stdout.readline().strip() != "READY":
            raise SystemExit("clients did not subscribe")
        loaded = engine.run(args.orders)
        engine.mark_done("loaded")
        out = json.loads(clients.stdout.read())
        clients.wait()
    finally:
        api.terminate()
        api.wait()
    store_ids = engine.events_after(0)
    problems = check(out["clients"], store_ids)
    updates = len(out["clients"][0]["ids"]) if out["clients"] else 0
    results = {
        "clients": args.clients,
        "orders": args.orders,
        "updates_per_client": updates,
        "delivery_problems": problems,
        "cycle_s": {
            "baseline": baseline["cycle_s"],
            "loaded": loaded["cycle_s"],
            "ratio": loaded["cycle_s"] / baseline["cycle_s"],
        },
        "order_s": {
            "baseline": baseline["order_s"],
            "loaded": loaded["order_s"],
            "ratio": loaded["order_s"] / baseline["order_s"],
        },
        "status_ms": {
            "idle_p50": pct(idle, 0.5),
            "idle_p99": pct(idle, 0.99),
            "loaded_p50": pct(out["loaded"], 0.5),
            "loaded_p99": pct(out["loaded"], 0.99),
            "loaded_n": len(out["loaded"]),
        },
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if problems:
        raise SystemExit(f"{len(problems)} delivery problems")


if __name__ == "__main__":
    main()
