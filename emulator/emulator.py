"""`BinanceEmulator`: the object tests and demos hold. Starts the server, builds a real
`ccxt.binance` pointed at it, moves the candle clock, and exposes faults and request counts.

    with BinanceEmulator({"BTC/USDT": "BTC_USDT-1h.csv"}, accounts=[...]) as emu:
        ex = emu.ccxt_client()
        ex.create_order("BTC/USDT", "limit", "buy", 0.01, 8000)
        emu.advance()          # next candle: resting orders may fill
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from emulator.api import BinanceApi
from emulator.config import AccountConfig, DuplicateRule, FillPolicy, MarketConfig
from emulator.faults import FaultPlan, FaultRule
from emulator.local_server import StartStop
from emulator.matching import MatchingEngine, VisibilityLag
from emulator.server import ADMIN_PREFIX, EmulatorHTTPServer

if TYPE_CHECKING:
    import ccxt

CandleSource = Sequence[Sequence[float | int | str]] | str | Path
DEFAULT_API_KEY = "emulator-key"
DEFAULT_SECRET = "emulator-secret"


def _market_configs(
    markets: Mapping[str, CandleSource] | Sequence[MarketConfig],
) -> list[MarketConfig]:
    if isinstance(markets, Mapping):
        return [
            MarketConfig(
                symbol=symbol,
                candles=Path(src) if isinstance(src, str | Path) else [list(r) for r in src],
            )
            for symbol, src in markets.items()
        ]
    return list(markets)


def ccxt_client_for(
    url: str,
    api_key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_SECRET,
    *,
    timeout_ms: int = 10_000,
    options: Mapping[str, Any] | None = None,
    **config: Any,
) -> ccxt.binance:
    """A real `ccxt.binance` whose every API URL points at an emulator at `url` (also one
    started with `python -m emulator`), set up so load_markets only calls exchangeInfo:
    no currencies, margin or futures endpoints, no time sync, no client-side rate limiting."""
    import ccxt

    client_options: dict[str, Any] = {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "adjustForTimeDifference": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    }
    client_options.update(options or {})
    exchange = ccxt.binance(
        {
            "apiKey": api_key,
            "secret": secret,
            "timeout": timeout_ms,
            "enableRateLimit": False,
            "options": client_options,
            **config,
        }
    )
    base = url.rstrip("/")
    exchange.urls["api"] = {
        name: base + urlsplit(u).path if isinstance(u, str) else u
        for name, u in exchange.urls["api"].items()
    }
    return exchange


class BinanceEmulator(StartStop):
    """A local Binance spot REST server over a candle feed. Use as a context manager."""

    def __init__(
        self,
        markets: Mapping[str, CandleSource] | Sequence[MarketConfig],
        accounts: Sequence[AccountConfig] | None = None,
        *,
        fill_policy: FillPolicy | None = None,
        start_index: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        check_timestamps: bool = True,
        duplicate_rule: DuplicateRule = "binance",
    ) -> None:
        """
        markets: {"BTC/USDT": rows-or-CSV-path} or MarketConfig list (filters, timeframe).
        accounts: key pairs and balances; default one `emulator-key`/`emulator-secret`
            account holding 10000 of every quote asset.
        fill_policy: per-candle caps that make partial fills, and market slippage.
        start_index: the candle of the first market that has just closed at start; its
            close is the opening price and candles 0..start_index are history.
        port: 0 picks a free port (see `.url`).
        check_timestamps: enforce timestamp/recvWindow (-1021) against the wall clock.
        duplicate_rule: "binance" rejects a reused newClientOrderId unless the earlier order
            FILLED (Binance's documented rule); "always" rejects any reuse.
        """
        configs = _market_configs(markets)
        if accounts is None:
            quotes = {c.quote: Decimal("10000") for c in configs}
            accounts = [
                AccountConfig(api_key=DEFAULT_API_KEY, secret=DEFAULT_SECRET, balances=quotes)
            ]
        self.engine = MatchingEngine(
            configs,
            accounts,
            fill_policy=fill_policy,
            start_index=start_index,
            duplicate_rule=duplicate_rule,
        )
        self._accounts = list(accounts)
        self.faults = FaultPlan()
        self.clock_skew_ms = 0
        self.api = BinanceApi(self.engine, self.server_time_ms, check_timestamps)
        self._host, self._port = host, port
        self._server: EmulatorHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> BinanceEmulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = EmulatorHTTPServer(self.api, self.faults, self._admin, self._host, self._port)
        self._server = server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def _srv(self) -> EmulatorHTTPServer:
        if self._server is None:
            raise RuntimeError("emulator not started: use `with BinanceEmulator(...)` or start()")
        return self._server

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (spot REST lives under /api/v3)."""
        return self._srv.url

    @property
    def port(self) -> int:
        return self._srv.port

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of emulator bugs hit while serving (each also answered with HTTP 500)."""
        return list(self._srv.internal_errors)

    # -- clients -------------------------------------------------------------------------------

    def ccxt_client(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        *,
        timeout_ms: int = 10_000,
        options: Mapping[str, Any] | None = None,
        **config: Any,
    ) -> ccxt.binance:
        """A real `ccxt.binance` pointed here; defaults to the first account's key pair."""
        if api_key is None:
            api_key = self._accounts[0].api_key
        if secret is None:
            known = {a.api_key: a.secret for a in self._accounts}
            secret = known.get(api_key, "")
        return ccxt_client_for(
            self.url, api_key, secret, timeout_ms=timeout_ms, options=options, **config
        )

    # -- clock ---------------------------------------------------------------------------------

    def advance(self, candles: int = 1) -> int:
        """Move to the next candle(s); resting orders fill against each. Returns steps made."""
        return self.engine.advance(candles)

    def advance_to(self, timestamp_ms: int) -> int:
        return self.engine.advance_to(timestamp_ms)

    @property
    def now_ms(self) -> int:
        """Simulated time: the close of the last revealed candle (order/trade times use it)."""
        return self.engine.now_ms

    def server_time_ms(self) -> int:
        """Wall clock (+ injected skew): what /api/v3/time returns and signatures are checked
        against, because ccxt signs with its own wall clock."""
        return int(time.time() * 1000) + self.clock_skew_ms

    def price(self, symbol: str) -> Decimal:
        return self.engine.price(self.engine.market(symbol.replace("/", "")))

    def balance(self, asset: str, api_key: str | None = None) -> tuple[Decimal, Decimal]:
        """(free, locked) of one asset, straight from the engine (no HTTP, not counted)."""
        with self.engine.lock:
            acct = self.engine.account(api_key or self._accounts[0].api_key)
            return acct.free[asset], acct.locked[asset]

    # -- faults and counters -------------------------------------------------------------------

    def set_visibility_lag(self, queries: int = 0, seconds: float = 0.0) -> None:
        """Orders closing from now on stay out of GET order (-2013) and allOrders for the next
        `queries` order queries of their account and at least `seconds` of wall time, while
        already gone from openOrders: Binance's eventual consistency."""
        with self.engine.lock:
            self.engine.lag = VisibilityLag(queries=queries, seconds=seconds)

    def request_counts(self) -> dict[str, int]:
        """Requests per "METHOD /path" since start or the last reset (admin calls excluded)."""
        return self._srv.counter.snapshot()

    def request_count(self, path: str | None = None, method: str | None = None) -> int:
        return self._srv.counter.total(path, method)

    def reset_request_counts(self) -> None:
        self._srv.counter.reset()

    # -- admin HTTP API (for a standalone process) ----------------------------------------------

    def _admin(self, method: str, path: str, raw_body: str) -> tuple[int, Any]:
        route = path.removeprefix(ADMIN_PREFIX)
        try:
            body: dict[str, Any] = json.loads(raw_body) if raw_body.strip() else {}
            return self._admin_route(method, route, body)
        except (ValueError, ValidationError, TypeError, KeyError) as exc:
            return 400, {"error": str(exc)}

    def _admin_route(self, method: str, route: str, body: dict[str, Any]) -> tuple[int, Any]:
        if (method, route) == ("GET", "state"):
            return 200, self.state()
        if (method, route) == ("POST", "advance"):
            if "to" in body:
                steps = self.advance_to(int(body["to"]))
            else:
                steps = self.advance(int(body.get("candles", 1)))
            return 200, {"advanced": steps, "now": self.now_ms}
        if (method, route) == ("POST", "faults"):
            rule = self.faults.add(FaultRule.model_validate(body))
            return 200, rule.model_dump()
        if (method, route) == ("DELETE", "faults"):
            self.faults.clear()
            return 200, {}
        if (method, route) == ("POST", "lag"):
            self.set_visibility_lag(int(body.get("queries", 0)), float(body.get("seconds", 0)))
            return 200, {}
        if (method, route) == ("POST", "clock_skew"):
            self.clock_skew_ms = int(body["ms"])
            return 200, {}
        if (method, route) == ("GET", "requests"):
            return 200, self.request_counts()
        if (method, route) == ("DELETE", "requests"):
            self.reset_request_counts()
            return 200, {}
        return 404, {"error": f"unknown admin route {method} {ADMIN_PREFIX}{route}"}

    def state(self) -> dict[str, Any]:
        with self.engine.lock:
            markets = {}
            for m in self.engine.markets.values():
                candle = m.feed.current(self.now_ms)
                markets[m.symbol] = {
                    "price": str(candle.close) if candle else None,
                    "candle_open_time": candle.open_time if candle else None,
                    "candles_left": len(m.feed.candles) - m.feed.closed_count(self.now_ms),
                }
            return {
                "now": self.now_ms,
                "markets": markets,
                "pending_faults": [r.model_dump() for r in self.faults.pending()],
                "requests": self.request_counts(),
            }
