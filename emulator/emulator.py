"""`BinanceEmulator`: the object tests and demos hold. Starts the server, builds a real
`ccxt.binance` (or async `ccxt.pro.binance`, WebSocket streams included) pointed at it, moves
the candle clock, and exposes faults and request counts.

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
from emulator.candles import Candle
from emulator.config import AccountConfig, DuplicateRule, FillPolicy, MarketConfig
from emulator.faults import FaultPlan, FaultRule
from emulator.local_server import StartStop
from emulator.market_events import book_ticker_event, interval_name, kline_event, trade_event
from emulator.markets import Market
from emulator.matching import MatchingEngine, VisibilityLag
from emulator.server import ADMIN_PREFIX, EmulatorHTTPServer
from emulator.user_events import UserEventTracker
from emulator.ws import WS_API_PATH, StreamServer

if TYPE_CHECKING:
    import ccxt
    import ccxt.pro

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

    return _point_at(ccxt.binance, url, api_key, secret, timeout_ms, options, config)


def ccxt_pro_client_for(
    url: str,
    ws_url: str,
    api_key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_SECRET,
    *,
    timeout_ms: int = 10_000,
    options: Mapping[str, Any] | None = None,
    **config: Any,
) -> ccxt.pro.binance:
    """A real `ccxt.pro.binance` (async REST + WebSocket) whose REST URLs point at `url` and
    whose market streams and WebSocket API point at the emulator's `ws_url`."""
    import ccxt.pro

    exchange: ccxt.pro.binance = _point_at(
        ccxt.pro.binance, url, api_key, secret, timeout_ms, options, config
    )
    base = ws_url.rstrip("/")
    ws = dict(exchange.urls["api"]["ws"])
    for kind in ("spot", "margin"):
        ws[kind] = base + "/ws"
    ws["ws-api"] = {**ws.get("ws-api", {}), "spot": base + WS_API_PATH}
    exchange.urls["api"]["ws"] = ws
    return exchange


def _point_at(
    cls: Any,
    url: str,
    api_key: str,
    secret: str,
    timeout_ms: int,
    options: Mapping[str, Any] | None,
    config: Mapping[str, Any],
) -> Any:
    client_options: dict[str, Any] = {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "adjustForTimeDifference": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    }
    client_options.update(options or {})
    exchange = cls(
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
        self._ws: StreamServer | None = None
        self._user_events = UserEventTracker(self.engine)
        self._book_updates = 0
        self.api.on_change = self.publish_user_events
        self.api.on_listen_key_closed = self._listen_key_closed

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> BinanceEmulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = EmulatorHTTPServer(self.api, self.faults, self._admin, self._host, self._port)
        self._server = server.start()
        self._ws = StreamServer(
            lambda: dict(self.api.listen_keys),
            lambda: {a.api_key: a.secret for a in self._accounts},
            self._host,
        ).start()
        return self

    def stop(self) -> None:
        if self._ws is not None:
            self._ws.stop()
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
    def streams(self) -> StreamServer:
        """The WebSocket server (market streams, user data stream, WebSocket API)."""
        if self._ws is None:
            raise RuntimeError("emulator not started: use `with BinanceEmulator(...)` or start()")
        return self._ws

    @property
    def ws_url(self) -> str:
        """e.g. ws://127.0.0.1:54322: market streams under /ws, the WebSocket API at /ws-api/v3."""
        return self.streams.url

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

    def ccxt_pro_client(
        self,
        api_key: str | None = None,
        secret: str | None = None,
        *,
        timeout_ms: int = 10_000,
        options: Mapping[str, Any] | None = None,
        **config: Any,
    ) -> ccxt.pro.binance:
        """A real async `ccxt.pro.binance` pointed here (REST and WebSocket); close it with
        `await client.close()`."""
        if api_key is None:
            api_key = self._accounts[0].api_key
        if secret is None:
            known = {a.api_key: a.secret for a in self._accounts}
            secret = known.get(api_key, "")
        return ccxt_pro_client_for(
            self.url, self.ws_url, api_key, secret, timeout_ms=timeout_ms, options=options, **config
        )

    # -- clock ---------------------------------------------------------------------------------

    def advance(self, candles: int = 1) -> int:
        """Move to the next candle(s); resting orders fill against each. Returns steps made.
        Streams get each closed kline (the feed's interval, and every coarser one it closes),
        a trade and the book at its close, then the account's order and balance events."""
        before = self.engine.now_ms
        steps = self.engine.advance(candles)
        self._publish_step(before)
        return steps

    def advance_to(self, timestamp_ms: int) -> int:
        before = self.engine.now_ms
        steps = self.engine.advance_to(timestamp_ms)
        self._publish_step(before)
        return steps

    # -- streams -------------------------------------------------------------------------------

    def _publish_step(self, before_ms: int) -> None:
        if self._ws is None:
            return
        with self.engine.lock:
            after = self.engine.now_ms
            closed: list[tuple[int, Market, Candle]] = []
            for market in self.engine.markets.values():
                for candle in market.feed.closing_between(before_ms, after):
                    closed.append((candle.close_time, market, candle))
        closed.sort(key=lambda item: item[0])
        wall = self.server_time_ms()
        for _, market, candle in closed:
            interval = interval_name(market.feed.timeframe_ms)
            stream = market.id.lower()
            if interval is not None:
                event = kline_event(market.id, interval, candle, wall)
                self._ws.publish_market(f"{stream}@kline_{interval}", event)
            self._publish_coarser(market, candle, wall)
            self._publish_price(market, candle.close, candle.volume, candle.close_time - 1, wall)
        self.publish_user_events()

    def _publish_coarser(self, market: Market, candle: Candle, wall_ms: int) -> None:
        """The klines of every coarser interval this candle closes (Binance streams every
        interval, not only the feed's): a 1h kline when the 60th 1m candle of the hour closes.
        Built only for streams someone listens to."""
        assert self._ws is not None
        feed, stream = market.feed, market.id.lower()
        for interval_ms in feed.served_intervals():
            name = interval_name(interval_ms)
            if interval_ms == feed.timeframe_ms or name is None:
                continue
            channel = f"{stream}@kline_{name}"
            if candle.close_time % interval_ms or not self._ws.subscribers(channel):
                continue
            window = (candle.close_time - 1, candle.close_time)
            for kline in feed.closed_klines(interval_ms, *window):
                self._ws.publish_market(channel, kline_event(market.id, name, kline, wall_ms))

    def _publish_price(
        self, market: Market, price: Decimal, qty: Decimal, at_ms: int, wall_ms: int
    ) -> None:
        assert self._ws is not None
        stream = market.id.lower()
        trade = trade_event(market.id, price, qty, at_ms, wall_ms)
        self._ws.publish_market(f"{stream}@trade", trade)
        self._book_updates += 1
        book = book_ticker_event(market.id, price, price, qty, self._book_updates)
        self._ws.publish_market(f"{stream}@bookTicker", book)

    def publish_tick(self, symbol: str, price: Decimal, qty: Decimal = Decimal("1")) -> None:
        """A trade and a book update at `price` on the streams only (the engine's price, and
        so fills, stay at the candle close): a price move between candles."""
        market = self.engine.market(symbol.replace("/", ""))
        self._publish_price(market, price, qty, self.now_ms, self.server_time_ms())

    def publish_user_events(self) -> None:
        """Send each account's executionReport / outboundAccountPosition events for whatever
        changed since the last call (the REST side calls this after every order request)."""
        events = self._user_events.collect(self.server_time_ms())
        if self._ws is None:
            return
        for api_key, event in events:
            self._ws.publish_user(api_key, event)

    def _listen_key_closed(self, listen_key: str) -> None:
        if self._ws is not None:
            self._ws.close_listen_key(listen_key)

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
        if (method, route) == ("POST", "tick"):
            self.publish_tick(str(body["symbol"]), Decimal(str(body["price"])))
            return 200, {}
        if (method, route) == ("POST", "ws/drop"):
            self.streams.drop_connections()
            return 200, {}
        if (method, route) == ("POST", "ws/silence"):
            self.streams.silenced = bool(body.get("on", True))
            return 200, {}
        if (method, route) == ("GET", "ws/counts"):
            return 200, self.streams.counter.snapshot()
        if (method, route) == ("GET", "ws/clients"):
            return 200, self.streams.describe()
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
                "ws_url": self.ws_url if self._ws is not None else None,
            }
