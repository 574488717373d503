"""A paper exchange with ccxt's method names and return shapes, priced by a MarketFeed.

Why it looks exactly like ccxt: the order, sync, risk and protection code above it must not
be able to tell paper from Binance, so a DEMO run exercises the very code paths REAL will use.
And why it is no kinder than Binance spot: DEMO is where users decide to trust Kestrel, and the
backtest runs on it. The fill rules (FillRules, kestrel.exchange.paper_rules) are documented
in one place, docs/paper-exchange.md.

Decisions worth knowing:
- State: an account document with balances and the OPEN orders, plus a row per closed order,
  fill and clientOrderId (paper_state), every step a compare-and-set of the document, so
  several processes sharing one store never double-fill or lose an order, and no call costs
  more as the history grows. No account state is kept in memory.
- Matching is lazy: every account call first matches open orders against the candles the feed
  has closed since they were last looked at (paper_matching). A market order is therefore
  'open' when created and fills from the open of the next candle.
- Fees as on Binance: a buy pays in the base asset, a sell in the quote (or in BNB with the
  BNB discount). Fee rates come from PaperSettings and override the MarketSpecs'.
- Funds are reserved while an order is open: buys reserve quote (remaining x limit, or the
  expected price for market and stop orders), sells the base amount. As on Binance spot, a
  stop-loss and a take-profit for the same holding each reserve it, so the second is refused
  for insufficient funds.
- A market buy that, at its fill price, costs more than the free quote is canceled (reason
  in info.reason) rather than overdrawing the account.
- Stop-loss orders rest here as on Binance: "market" (STOP_LOSS) or "limit" (STOP_LOSS_LIMIT)
  with params stopLossPrice / stopPrice / triggerPrice, or the types stop_market and
  stop_loss_limit. The markets list them (info.orderTypes), so protection places them natively.
- Orders can be found by clientOrderId: fetch_order / cancel_order with `id` empty or None and
  params {"clientOrderId": x} (or Binance's {"origClientOrderId": x}). With both, the id is
  looked up and the client id must match it (Binance's rule).
- A second create with a clientOrderId already used raises PaperDuplicateOrder ("Duplicate
  order sent.") and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from kestrel.config.settings import PaperSettings
from kestrel.errors import InvalidMarketData
from kestrel.exchange.base import CcxtDict, OHLCVRow
from kestrel.exchange.paper_ccxt import (
    balance_dict,
    iso8601,
    order_dict,
    since_limit,
    trade_dict,
)
from kestrel.exchange.paper_errors import (
    PaperBadSymbol,
    PaperDuplicateOrder,
    PaperInsufficientFunds,
    PaperOrderNotFound,
    PaperOrderRejected,
)
from kestrel.exchange.paper_markets import ccxt_market
from kestrel.exchange.paper_matching import match_open_orders
from kestrel.exchange.paper_orders import validate_request
from kestrel.exchange.paper_rules import FillRules, Side, on_tick
from kestrel.exchange.paper_state import PaperAccount, PaperBook, PaperOrder, transact
from kestrel.market.base import DEFAULT_LIMIT, MarketFeed
from kestrel.models import Candle, MarketSpec, timeframe_ms
from kestrel.money import Rounding, to_decimal
from kestrel.store.base import Store

HOUR_MS = 3_600_000
# Windows searched for the latest price: a live feed answers from the first, a replay of
# daily candles (or one with gaps) from a later one.
_PRICE_WINDOWS_MS = (HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS)


class PaperExchange:
    """ExchangeClient (kestrel.exchange.base) backed by a Store document and a MarketFeed."""

    id = "paper"
    name = "Paper"

    def __init__(
        self,
        store: Store,
        feed: MarketFeed,
        markets: Mapping[str, MarketSpec],
        settings: PaperSettings,
        starting_balances: Mapping[str, Decimal] | None = None,
    ) -> None:
        """`starting_balances` (default: `settings.starting_balances()`, the starting balance in
        the quote currency plus extra_balances) only seed a store that has no paper account."""
        self.store = store
        self.feed = feed
        self.settings = settings
        self.rules = FillRules.from_settings(settings)
        self.specs = {
            symbol: spec.model_copy(
                update={"maker_fee": settings.maker_fee, "taker_fee": settings.taker_fee}
            )
            for symbol, spec in markets.items()
        }
        self.markets: dict[str, CcxtDict] = {s: ccxt_market(spec) for s, spec in self.specs.items()}
        self.symbols = sorted(self.markets)
        if starting_balances is None:
            starting_balances = settings.starting_balances()
        self.starting_balances = {c: to_decimal(v) for c, v in starting_balances.items()}
        self.has = {
            "fetchOHLCV": True,
            "fetchTicker": True,
            "fetchBalance": True,
            "createOrder": True,
            "cancelOrder": True,
            "fetchOrder": True,
            "fetchOrders": True,
            "fetchOpenOrders": True,
            "fetchClosedOrders": True,
            "fetchCanceledOrders": True,
            "fetchMyTrades": True,
            "createStopMarketOrder": True,  # "market" + params stopPrice (stop_market)
            "createStopLimitOrder": True,  # "limit" + params stopPrice (stop_loss_limit)
            "createStopLossOrder": True,
        }

    # -- markets ------------------------------------------------------------------------------
    def load_markets(self, reload: bool = False) -> dict[str, CcxtDict]:
        return self.markets

    def market(self, symbol: str) -> CcxtDict:
        self._spec(symbol)
        return self.markets[symbol]

    def _spec(self, symbol: str) -> MarketSpec:
        try:
            return self.specs[symbol]
        except KeyError:
            raise PaperBadSymbol(
                f"paper does not have market symbol {symbol}; it has {', '.join(self.symbols)}"
            ) from None

    def amount_to_precision(self, symbol: str, amount: float | Decimal | str) -> str:
        return str(self._spec(symbol).amount_to_precision(to_decimal(amount)))

    def price_to_precision(self, symbol: str, price: float | Decimal | str) -> str:
        return str(self._spec(symbol).price_to_precision(to_decimal(price), Rounding.NEAREST))

    # -- market data --------------------------------------------------------------------------
    def _recent_candles(self, symbol: str) -> list[Candle]:
        now = self.feed.now_ms(symbol)
        for window in _PRICE_WINDOWS_MS:
            candles = self.feed.candles_between(symbol, now - window, now)
            if candles:
                return candles
        raise InvalidMarketData(f"{self.feed.label}: no {symbol} candle in the last 7 days")

    def last_price(self, symbol: str) -> Decimal:
        """The close of the latest closed candle: what the paper exchange calls the price."""
        self._spec(symbol)
        return to_decimal(self._recent_candles(symbol)[-1].close)

    def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[OHLCVRow]:
        self._spec(symbol)
        if since is None:
            candles = self.feed.candles(symbol, timeframe, limit or DEFAULT_LIMIT).candles
        else:
            span = (self.feed.now_ms(symbol) - since) // timeframe_ms(timeframe) + 1
            found = self.feed.candles(symbol, timeframe, max(span, 1)).candles
            candles = [c for c in found if c.timestamp >= since][: limit or DEFAULT_LIMIT]
        return [[c.timestamp, c.open, c.high, c.low, c.close, c.volume] for c in candles]

    def fetch_ticker(self, symbol: str, params: CcxtDict | None = None) -> CcxtDict:
        """last = the latest closed candle's close; bid/ask = last -/+ the slippage; open, high,
        low and volume over the recent candles used (the last hour for live data)."""
        spec = self._spec(symbol)
        candles = self._recent_candles(symbol)
        last = to_decimal(candles[-1].close)
        first = to_decimal(candles[0].open)
        now = self.feed.now_ms(symbol)
        return {
            "symbol": symbol,
            "timestamp": now,
            "datetime": iso8601(now),
            "high": max(c.high for c in candles),
            "low": min(c.low for c in candles),
            "bid": float(self._quote(last, "sell", spec)),
            "bidVolume": None,
            "ask": float(self._quote(last, "buy", spec)),
            "askVolume": None,
            "vwap": None,
            "open": float(first),
            "close": float(last),
            "last": float(last),
            "previousClose": None,
            "change": float(last - first),
            "percentage": float((last - first) / first * 100),
            "average": float((last + first) / 2),
            "baseVolume": sum(c.volume for c in candles),
            "quoteVolume": None,
            "info": {"source": self.feed.label, "candles": len(candles)},
        }

    def _quote(self, last: Decimal, side: Side, spec: MarketSpec) -> Decimal:
        return on_tick(self.rules.slippage.estimate(side, last), spec.price_tick, side)

    # -- the account --------------------------------------------------------------------------
    def _transact[T](self, work: Callable[[PaperAccount], tuple[T, bool]]) -> T:
        return transact(self.store, self.starting_balances, work)

    def _read[T](self, view: Callable[[PaperAccount], T]) -> T:
        """Catch up matching, then answer from the same (saved) snapshot."""

        def work(account: PaperAccount) -> tuple[T, bool]:
            changed = self._match_open_orders(account)
            return view(account), changed

        return self._transact(work)

    def sync(self) -> None:
        """Match open orders against the candles closed so far (every call does this too)."""
        self._read(lambda account: None)

    def _match_open_orders(self, account: PaperAccount) -> bool:
        return match_open_orders(account, self.feed, self.specs, self.rules)

    def _book(self, account: PaperAccount) -> PaperBook:
        return PaperBook(self.store, account)

    def _order_dict(self, account: PaperAccount, order: PaperOrder) -> CcxtDict:
        return order_dict(order, self._book(account).trades_of(order))

    # -- orders -------------------------------------------------------------------------------
    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: CcxtDict | None = None,
    ) -> CcxtDict:
        """Types: "market", "limit", "stop_market" / "stop_loss_limit" (or "market" / "limit"
        with params stopLossPrice, stopPrice or triggerPrice). params clientOrderId (or
        newClientOrderId) makes the request idempotent."""
        spec = self._spec(symbol)
        request = validate_request(
            spec,
            self.rules,
            type=type,
            side=side,
            amount=amount,
            price=price,
            params=dict(params or {}),
            last=self.last_price(symbol),
        )
        client_id = request.client_order_id
        now = self.feed.now_ms(symbol)

        def work(account: PaperAccount) -> tuple[CcxtDict, bool]:
            self._match_open_orders(account)
            book = self._book(account)
            existing_id = book.order_id_of(client_id)
            if existing_id is not None:
                existing = book.order(existing_id)
                status = existing.status if existing is not None else "unknown"
                raise PaperDuplicateOrder(
                    f"Duplicate order sent. (clientOrderId {client_id} is order {existing_id}, "
                    f"{status})"
                )
            currency = request.reserve_currency
            free = account.free(currency)
            reserve = request.amount * request.reserve_price
            if reserve > free:
                raise PaperInsufficientFunds(
                    f"{symbol} {request.side} {request.amount}: needs {reserve} "
                    f"{currency} but only {free} {currency} is free"
                )
            order = PaperOrder(
                id=str(account.next_order_id),
                client_order_id=client_id,
                symbol=symbol,
                type=request.kind,
                side=request.side,
                amount=request.amount,
                price=request.limit,
                stop_price=request.stop,
                timestamp=now,
                watch_from=now,
                reserved_currency=currency,
                reserve_price=request.reserve_price,
                last_update_timestamp=now,
            )
            account.next_order_id += 1
            account.record_order(order)
            return self._order_dict(account, order), True

        return self._transact(work)

    def _find(
        self, account: PaperAccount, id: str | None, symbol: str | None, params: CcxtDict | None
    ) -> PaperOrder:
        params = params or {}
        client_id = params.get("clientOrderId") or params.get("origClientOrderId")
        book = self._book(account)
        order: PaperOrder | None = None
        if id:
            order = book.order(str(id))
            if order is not None and client_id and order.client_order_id != client_id:
                order = None
        elif client_id:
            found = book.order_id_of(str(client_id))
            order = book.order(found) if found is not None else None
        else:
            raise PaperOrderRejected("an order id or params clientOrderId is required")
        if order is None or (symbol is not None and order.symbol != symbol):
            raise PaperOrderNotFound(
                f"Order does not exist. (id {id!r}, clientOrderId {client_id!r}, symbol {symbol})"
            )
        return order

    def fetch_order(
        self, id: str | None, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict:
        return self._read(
            lambda account: self._order_dict(account, self._find(account, id, symbol, params))
        )

    def cancel_order(
        self, id: str | None, symbol: str | None = None, params: CcxtDict | None = None
    ) -> CcxtDict:
        """Cancels an OPEN order; a filled or canceled one raises PaperOrderNotFound (Binance:
        "Unknown order sent.")."""

        def work(account: PaperAccount) -> tuple[CcxtDict, bool]:
            self._match_open_orders(account)
            order = self._find(account, id, symbol, params)
            if not order.is_open:
                raise PaperOrderNotFound(
                    f"Unknown order sent. (order {order.id} is {order.status}; "
                    "only open orders can be canceled)"
                )
            order.status = "canceled"
            order.last_update_timestamp = self.feed.now_ms(order.symbol)
            account.retire(order)
            return self._order_dict(account, order), True

        return self._transact(work)

    def _orders(
        self,
        statuses: set[str] | None,
        symbol: str | None,
        since: int | None,
        limit: int | None,
    ) -> list[CcxtDict]:
        if symbol is not None:
            self._spec(symbol)

        def view(account: PaperAccount) -> list[CcxtDict]:
            every = account.open_orders() if statuses == {"open"} else self._book(account).orders()
            chosen = [
                o
                for o in every
                if (statuses is None or o.status in statuses)
                and (symbol is None or o.symbol == symbol)
            ]
            chosen = since_limit(chosen, since, limit, lambda o: o.timestamp)
            return [self._order_dict(account, o) for o in chosen]

        return self._read(view)

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        return self._orders({"open"}, symbol, since, limit)

    def fetch_closed_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        """Filled orders only, as ccxt's Binance (canceled ones: fetch_canceled_orders)."""
        return self._orders({"closed"}, symbol, since, limit)

    def fetch_canceled_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        return self._orders({"canceled"}, symbol, since, limit)

    def fetch_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        return self._orders(None, symbol, since, limit)

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: CcxtDict | None = None,
    ) -> list[CcxtDict]:
        """params {"orderId": id} narrows to one order's trades (as on Binance). The last
        `limit` trades of a symbol cost `limit` rows, not the whole history."""
        if symbol is not None:
            self._spec(symbol)
        order_id = (params or {}).get("orderId")

        def view(account: PaperAccount) -> list[CcxtDict]:
            book = self._book(account)
            if order_id is not None:
                order = book.order(str(order_id))
                chosen = book.trades_of(order) if order is not None else []
                chosen = [t for t in chosen if symbol is None or t.symbol == symbol]
            else:
                newest = limit if symbol is not None and since is None else None
                chosen = book.trades(symbol, newest)
            chosen = since_limit(chosen, since, limit, lambda t: t.timestamp)
            return [trade_dict(t) for t in chosen]

        return self._read(view)

    def fetch_balance(self, params: CcxtDict | None = None) -> CcxtDict:
        return self._read(lambda account: balance_dict(account, None))


__all__ = ["PaperExchange"]
