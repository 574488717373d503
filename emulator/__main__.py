"""`python -m emulator --port N --market BTC/USDT=path.csv`: the emulator as a process.

Prints one JSON line (url, ws_url, api key, secret) when ready, then serves until SIGINT/SIGTERM.
Drive it over HTTP: POST /_emulator/advance {"candles": 1}, POST /_emulator/faults {...},
GET /_emulator/state. With --advance-every S it also steps one candle every S seconds (demos).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from decimal import Decimal
from pathlib import Path
from types import FrameType

from emulator.config import AccountConfig, FillPolicy, MarketConfig
from emulator.emulator import DEFAULT_API_KEY, DEFAULT_SECRET, BinanceEmulator


def _pair(text: str, sep: str, what: str) -> tuple[str, str]:
    left, found, right = text.partition(sep)
    if not found or not left or not right:
        raise argparse.ArgumentTypeError(f"{what} must look like A{sep}B, got {text!r}")
    return left, right


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument(
        "--market",
        action="append",
        required=True,
        type=lambda s: _pair(s, "=", "--market"),
        help="SYMBOL=CSV, e.g. BTC/USDT=../shared/data/ohlcv/BTC_USDT-1h.csv (repeatable)",
    )
    p.add_argument(
        "--account",
        default=f"{DEFAULT_API_KEY}:{DEFAULT_SECRET}",
        type=lambda s: _pair(s, ":", "--account"),
        help="API_KEY:SECRET",
    )
    p.add_argument(
        "--balance",
        action="append",
        default=[],
        type=lambda s: _pair(s, "=", "--balance"),
        help="ASSET=AMOUNT starting balance (repeatable; default 10000 of each quote asset)",
    )
    p.add_argument("--fee", type=Decimal, default=Decimal("0.001"), help="maker and taker rate")
    p.add_argument("--start", type=int, default=0, help="index of the first closed candle")
    p.add_argument("--max-fill-per-candle", type=Decimal, default=None)
    p.add_argument("--volume-share", type=Decimal, default=None)
    p.add_argument("--advance-every", type=float, default=0.0, help="seconds; 0 = manual")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> BinanceEmulator:
    markets = [MarketConfig(symbol=s, candles=Path(path)) for s, path in args.market]
    balances = {a: Decimal(v) for a, v in args.balance} or {
        m.quote: Decimal("10000") for m in markets
    }
    key, secret = args.account
    account = AccountConfig(
        api_key=key, secret=secret, balances=balances, maker_fee=args.fee, taker_fee=args.fee
    )
    policy = FillPolicy(
        max_fill_qty_per_candle=args.max_fill_per_candle, volume_share=args.volume_share
    )
    return BinanceEmulator(
        markets,
        [account],
        fill_policy=policy,
        start_index=args.start,
        host=args.host,
        port=args.port,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emu = build(args).start()
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    key, secret = args.account
    ready = {
        "url": emu.url,
        "ws_url": emu.ws_url,
        "api_key": key,
        "secret": secret,
        "now": emu.now_ms,
    }
    print(json.dumps(ready), flush=True)
    try:
        while not done.wait(args.advance_every or None):
            if args.advance_every and emu.advance() == 0:
                print(json.dumps({"event": "feed exhausted", "now": emu.now_ms}), flush=True)
                args.advance_every = 0.0
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
