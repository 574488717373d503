"""Binance spot REST endpoints (the part ccxt's `binance` class uses), as plain functions of a
parsed request. No sockets here, so the server can wrap every reply in faults uniformly.

Parameter rules follow Binance: mandatory parameters give -1102, malformed numbers -1100,
unknown symbols -1121, SIGNED endpoints go through `signing.check_signed` first.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from emulator import errors
from emulator.candles import INTERVAL_MS, Candle
from emulator.errors import BinanceError
from emulator.markets import Market
from emulator.matching import MatchingEngine, NewOrder
from emulator.orders import ORDER_TYPES, Order, fmt, q8
from emulator.signing import check_signed

DAY_MS = 86_400_000
_NEEDS = {
    "LIMIT": ("timeInForce", "quantity", "price"),
    "MARKET": (),
    "STOP_LOSS": ("quantity", "stopPrice"),
    "TAKE_PROFIT": ("quantity", "stopPrice"),
    "STOP_LOSS_LIMIT": ("timeInForce", "quantity", "price", "stopPrice"),
    "TAKE_PROFIT_LIMIT": ("timeInForce", "quantity", "price", "stopPrice"),
    "LIMIT_MAKER": ("quantity", "price"),
}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    params: dict[str, str]
    raw_query: str = ""
    raw_body: str = ""
    api_key: str | None = None


@dataclass(slots=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request, str | None], Any]


class BinanceApi:
    """Routes requests to the matching engine and renders Binance's JSON."""

    def __init__(
        self,
        engine: MatchingEngine,
        server_time_ms: Callable[[], int],
        check_timestamps: bool = True,
    ) -> None:
        self.engine = engine
        self.server_time_ms = server_time_ms
        self.check_timestamps = check_timestamps
        v3 = "/api/v3/"
        self.public: dict[tuple[str, str], Handler] = {
            ("GET", v3 + "ping"): lambda r, k: {},
            ("GET", v3 + "time"): lambda r, k: {"serverTime": self.server_time_ms()},
            ("GET", v3 + "exchangeInfo"): self._exchange_info,
            ("GET", v3 + "klines"): self._klines,
            ("GET", v3 + "uiKlines"): self._klines,
            ("GET", v3 + "ticker/24hr"): self._ticker_24hr,
            ("GET", v3 + "ticker/price"): self._ticker_price,
            ("GET", v3 + "ticker/bookTicker"): self._book_ticker,
        }
        # The user data stream's listenKey life cycle: API key header, no signature (USER_STREAM).
        self.listen_keys: dict[str, str] = {}  # listenKey -> api key
        self.keyed: dict[tuple[str, str], Handler] = {
            ("POST", v3 + "userDataStream"): self._listen_key_create,
            ("PUT", v3 + "userDataStream"): self._listen_key_keepalive,
            ("DELETE", v3 + "userDataStream"): self._listen_key_close,
        }
        #: Called after every request that may change orders or balances (the streams' hook).
        self.on_change: Callable[[], None] | None = None
        #: Called with a listenKey that was closed, so its streams end.
        self.on_listen_key_closed: Callable[[str], None] | None = None
        self.signed: dict[tuple[str, str], Handler] = {
            ("POST", v3 + "order"): self._new_order,
            ("GET", v3 + "order"): self._get_order,
            ("DELETE", v3 + "order"): self._cancel_order,
            ("GET", v3 + "openOrders"): self._open_orders,
            ("DELETE", v3 + "openOrders"): self._cancel_all,
            ("GET", v3 + "allOrders"): self._all_orders,
            ("GET", v3 + "myTrades"): self._my_trades,
            ("GET", v3 + "account"): self._account,
        }

    def handle(self, req: Request) -> Response:
        key = (req.method, req.path)
        try:
            if key in self.public:
                return Response(200, self.public[key](req, None))
            if key in self.keyed:
                if not req.api_key:
                    raise errors.bad_api_key_format()
                if req.api_key not in self.engine.accounts:
                    raise errors.invalid_api_key()
                return Response(200, self.keyed[key](req, req.api_key))
            if key in self.signed:
                secrets = {k: a.secret for k, a in self.engine.accounts.items()}
                api_key = check_signed(
                    secrets,
                    req.api_key,
                    req.params,
                    req.raw_query,
                    req.raw_body,
                    self.server_time_ms(),
                    self.check_timestamps,
                )
                try:
                    return Response(200, self.signed[key](req, api_key))
                finally:
                    if req.method in {"POST", "DELETE"} and self.on_change is not None:
                        self.on_change()
            raise errors.not_emulated(f"{req.method} {req.path}")
        except BinanceError as exc:
            return Response(exc.status, exc.body())

    # -- user data stream (listenKey) ----------------------------------------------------------

    def _listen_key_create(self, req: Request, api_key: str | None) -> dict[str, Any]:
        """Binance returns the account's live key again if there is one."""
        for listen_key, owner in self.listen_keys.items():
            if owner == api_key:
                return {"listenKey": listen_key}
        listen_key = _secrets.token_hex(30)
        assert api_key is not None
        self.listen_keys[listen_key] = api_key
        return {"listenKey": listen_key}

    def _owned_listen_key(self, req: Request, api_key: str | None) -> str:
        listen_key = _required(req, "listenKey")
        if self.listen_keys.get(listen_key) != api_key:
            raise BinanceError(-1125, "This listenKey does not exist.")
        return listen_key

    def _listen_key_keepalive(self, req: Request, api_key: str | None) -> dict[str, Any]:
        self._owned_listen_key(req, api_key)
        return {}

    def _listen_key_close(self, req: Request, api_key: str | None) -> dict[str, Any]:
        listen_key = self._owned_listen_key(req, api_key)
        del self.listen_keys[listen_key]
        if self.on_listen_key_closed is not None:
            self.on_listen_key_closed(listen_key)
        return {}

    # -- public --------------------------------------------------------------------------------

    def _markets_for(self, req: Request) -> list[Market]:
        if "symbol" in req.params:
            return [self.engine.market(req.params["symbol"])]
        if "symbols" in req.params:
            ids = _json_list(req.params["symbols"])
            return [self.engine.market(i) for i in ids]
        return list(self.engine.markets.values())

    def _exchange_info(self, req: Request, _: str | None) -> dict[str, Any]:
        with self.engine.lock:
            symbols = [m.exchange_info() for m in self._markets_for(req)]
        return {
            "timezone": "UTC",
            "serverTime": self.server_time_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def _klines(self, req: Request, _: str | None) -> list[list[Any]]:
        market = self.engine.market(_required(req, "symbol"))
        interval = _required(req, "interval")
        interval_ms = INTERVAL_MS.get(interval)
        feed = market.feed
        if interval_ms is None or interval_ms % feed.timeframe_ms:
            raise BinanceError(
                -1120,
                f"Invalid interval. (emulator: {market.symbol} feed is "
                f"{feed.timeframe_ms // 60000}m; multiples of it are served)",
            )
        limit = min(_int(req, "limit") or 500, 1000)
        with self.engine.lock:
            rows = feed.klines(
                interval_ms, self.engine.now_ms, _int(req, "startTime"), _int(req, "endTime"), limit
            )
        return [_kline(c) for c in rows]

    def _ticker_24hr(self, req: Request, _: str | None) -> Any:
        single = "symbol" in req.params
        with self.engine.lock:
            now = self.engine.now_ms
            markets = [m for m in self._markets_for(req) if single or m.feed.current(now)]
            rows = [self._ticker(m) for m in markets]
        return rows[0] if single else rows

    def _ticker(self, market: Market) -> dict[str, Any]:
        now = self.engine.now_ms
        last = self.engine.price(market)
        window = [c for c in market.feed.visible(now) if c.close_time > now - DAY_MS]
        closed = market.feed.visible(now)
        prev_close = closed[-len(window) - 1].close if len(closed) > len(window) else window[0].open
        volume = sum((c.volume for c in window), Decimal(0))
        quote_volume = q8(sum((_quote_volume(c) for c in window), Decimal(0)))
        open_price = window[0].open
        change = last - open_price
        return {
            "symbol": market.id,
            "priceChange": fmt(change),
            "priceChangePercent": f"{(change / open_price * 100):.3f}",
            "weightedAvgPrice": fmt(quote_volume / volume if volume else last),
            "prevClosePrice": fmt(prev_close),
            "lastPrice": fmt(last),
            "lastQty": fmt(Decimal(0)),
            "bidPrice": fmt(self.engine.quote_price(market, "SELL")),
            "bidQty": fmt(window[-1].volume),
            "askPrice": fmt(self.engine.quote_price(market, "BUY")),
            "askQty": fmt(window[-1].volume),
            "openPrice": fmt(open_price),
            "highPrice": fmt(max(c.high for c in window)),
            "lowPrice": fmt(min(c.low for c in window)),
            "volume": fmt(volume),
            "quoteVolume": fmt(quote_volume),
            "openTime": now - DAY_MS,
            "closeTime": now - 1,
            "firstId": -1,
            "lastId": -1,
            "count": 0,
        }

    def _ticker_price(self, req: Request, _: str | None) -> Any:
        with self.engine.lock:
            rows = [
                {"symbol": m.id, "price": fmt(self.engine.price(m))} for m in self._markets_for(req)
            ]
        return rows[0] if "symbol" in req.params else rows

    def _book_ticker(self, req: Request, _: str | None) -> Any:
        with self.engine.lock:
            rows = []
            for m in self._markets_for(req):
                candle = m.feed.current(self.engine.now_ms)
                qty = fmt(candle.volume if candle else Decimal(0))
                rows.append(
                    {
                        "symbol": m.id,
                        "bidPrice": fmt(self.engine.quote_price(m, "SELL")),
                        "bidQty": qty,
                        "askPrice": fmt(self.engine.quote_price(m, "BUY")),
                        "askQty": qty,
                    }
                )
        return rows[0] if "symbol" in req.params else rows

    # -- signed --------------------------------------------------------------------------------

    def _new_order(self, req: Request, api_key: str | None) -> dict[str, Any]:
        assert api_key is not None
        new = _parse_new_order(req)
        order, fills = self.engine.place(api_key, new)
        default = "FULL" if order.type in {"MARKET", "LIMIT"} else "ACK"
        resp_type = req.params.get("newOrderRespType", default).upper()
        if resp_type not in {"ACK", "RESULT", "FULL"}:
            raise BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'")
        return order.new_order_json(resp_type, fills)

    def _order_ref(self, req: Request) -> tuple[str, int | None, str | None]:
        symbol = _required(req, "symbol")
        order_id = _int(req, "orderId")
        client_id = req.params.get("origClientOrderId") or None
        if order_id is None and client_id is None:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return symbol, order_id, client_id

    def _get_order(self, req: Request, api_key: str | None) -> dict[str, Any]:
        assert api_key is not None
        return self.engine.get_order(api_key, *self._order_ref(req)).query_json()

    def _cancel_order(self, req: Request, api_key: str | None) -> dict[str, Any]:
        assert api_key is not None
        order, cancel_id, when = self.engine.cancel(api_key, *self._order_ref(req))
        return order.cancel_json(req.params.get("newClientOrderId") or cancel_id, when)

    def _cancel_all(self, req: Request, api_key: str | None) -> list[dict[str, Any]]:
        assert api_key is not None
        done = self.engine.cancel_all(api_key, _required(req, "symbol"))
        return [order.cancel_json(cid, when) for order, cid, when in done]

    def _open_orders(self, req: Request, api_key: str | None) -> list[dict[str, Any]]:
        assert api_key is not None
        orders = self.engine.open_orders(api_key, req.params.get("symbol"))
        return [o.query_json() for o in orders]

    def _all_orders(self, req: Request, api_key: str | None) -> list[dict[str, Any]]:
        assert api_key is not None
        orders: list[Order] = self.engine.all_orders(
            api_key,
            _required(req, "symbol"),
            _int(req, "orderId"),
            _int(req, "startTime"),
            _int(req, "endTime"),
            min(_int(req, "limit") or 500, 1000),
        )
        return [o.query_json() for o in orders]

    def _my_trades(self, req: Request, api_key: str | None) -> list[dict[str, Any]]:
        assert api_key is not None
        trades = self.engine.my_trades(
            api_key,
            _required(req, "symbol"),
            _int(req, "orderId"),
            _int(req, "fromId"),
            _int(req, "startTime"),
            _int(req, "endTime"),
            min(_int(req, "limit") or 500, 1000),
        )
        return [t.my_trade_json() for t in trades]

    def _account(self, req: Request, api_key: str | None) -> dict[str, Any]:
        assert api_key is not None
        omit_zero = req.params.get("omitZeroBalances", "false").lower() == "true"
        with self.engine.lock:
            acct = self.engine.account(api_key)
            assets = set(acct.assets())
            for m in self.engine.markets.values():
                assets |= {m.base, m.quote}
            balances = [
                {"asset": a, "free": fmt(acct.free[a]), "locked": fmt(acct.locked[a])}
                for a in sorted(assets)
                if not (omit_zero and acct.total(a) == 0)
            ]
            return {
                "makerCommission": int(acct.maker_fee * 10_000),
                "takerCommission": int(acct.taker_fee * 10_000),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt(acct.maker_fee),
                    "taker": fmt(acct.taker_fee),
                    "buyer": fmt(Decimal(0)),
                    "seller": fmt(Decimal(0)),
                },
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": acct.update_time,
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": acct.uid,
            }


# -- parsing helpers ------------------------------------------------------------------------------


def _required(req: Request, name: str) -> str:
    value = req.params.get(name)
    if not value:
        raise errors.mandatory(name)
    return value


def _int(req: Request, name: str) -> int | None:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.illegal_number(name) from None


def _dec(req: Request, name: str) -> Decimal | None:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise errors.illegal_number(name) from None
    if not value.is_finite() or value < 0:
        raise errors.illegal_number(name)
    return value


def _json_list(raw: str) -> list[str]:
    """`symbols=["BTCUSDT","ETHUSDT"]` as Binance takes it."""
    inner = raw.strip().removeprefix("[").removesuffix("]")
    return [s.strip().strip('"') for s in inner.split(",") if s.strip()]


def _parse_new_order(req: Request) -> NewOrder:
    symbol = _required(req, "symbol")
    side = _required(req, "side").upper()
    if side not in {"BUY", "SELL"}:
        raise BinanceError(-1117, "Invalid side.")
    order_type = _required(req, "type").upper()
    if order_type not in ORDER_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    for unsupported in ("trailingDelta", "icebergQty", "pegPriceType"):
        if unsupported in req.params:
            raise errors.not_emulated(f"parameter {unsupported}")
    for name in _NEEDS[order_type]:
        _required(req, name)
    tif = req.params.get("timeInForce") or None
    if tif is not None:
        if "timeInForce" not in _NEEDS[order_type]:
            raise BinanceError(-1106, "Parameter 'timeInForce' sent when not required.")
        tif = tif.upper()
        if tif not in {"GTC", "IOC", "FOK"}:
            raise BinanceError(-1115, "Invalid timeInForce.")
    quantity, quote_qty = _dec(req, "quantity"), _dec(req, "quoteOrderQty")
    if order_type == "MARKET" and quantity is None and quote_qty is None:
        raise BinanceError(
            -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty!"
        )
    if quote_qty is not None and (order_type != "MARKET" or quantity is not None):
        raise BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
    price = _dec(req, "price")
    if price is not None and "price" not in _NEEDS[order_type]:
        raise BinanceError(-1106, "Parameter 'price' sent when not required.")
    stop = _dec(req, "stopPrice")
    if stop is not None and "stopPrice" not in _NEEDS[order_type]:
        raise BinanceError(-1106, "Parameter 'stopPrice' sent when not required.")
    return NewOrder(
        symbol=symbol,
        side=side,
        type=order_type,
        time_in_force=tif,
        quantity=quantity,
        quote_order_qty=quote_qty,
        price=price,
        stop_price=stop,
        client_order_id=req.params.get("newClientOrderId") or None,
    )


def _quote_volume(c: Candle) -> Decimal:
    """The feeds carry base volume only; quote volume is estimated at the typical price."""
    return c.volume * (c.high + c.low + c.close) / 3


def _kline(c: Candle) -> list[Any]:
    return [
        c.open_time,
        fmt(c.open),
        fmt(c.high),
        fmt(c.low),
        fmt(c.close),
        fmt(c.volume),
        c.close_time - 1,
        fmt(q8(_quote_volume(c))),
        0,
        fmt(Decimal(0)),
        fmt(Decimal(0)),
        "0",
    ]
