"""The matching engine: places, fills, cancels and looks up orders against the candle feed.

Fill model (deliberately simple and predictable, so tests can compute expected results):
- MARKET orders fill at once at the current price (last closed candle's close, +/- slippage).
- A LIMIT order marketable on arrival fills at once at the current price (taker); the rest
  rests and fills at its own limit price (maker) on a later candle whose range touches it.
- STOP_LOSS / TAKE_PROFIT trigger when a later candle's range reaches `stopPrice`, then fill
  like a market order at the stop price (or the candle's open if it gapped past the stop).
  The *_LIMIT variants become a limit order at `price` when triggered.
- Per-candle caps (FillPolicy) split fills across candles, each fill a separate trade.
Everything runs under one lock: HTTP handler threads and `advance()` never interleave.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from emulator.accounts import Account
from emulator.candles import Candle
from emulator.config import AccountConfig, DuplicateRule, FillPolicy, MarketConfig
from emulator.errors import (
    BinanceError,
    duplicate_order,
    invalid_symbol,
    market_closed,
    order_does_not_exist,
    stop_would_trigger,
    unknown_order,
    would_match_and_take,
)
from emulator.markets import Market
from emulator.orders import LIMIT_TYPES, ZERO, Order, Trade, q8

_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_UP_TRIGGER = {("STOP_LOSS", "BUY"), ("STOP_LOSS_LIMIT", "BUY")}
_UP_TRIGGER |= {("TAKE_PROFIT", "SELL"), ("TAKE_PROFIT_LIMIT", "SELL")}


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A validated-by-type POST /api/v3/order request."""

    symbol: str
    side: str
    type: str
    time_in_force: str | None
    quantity: Decimal | None
    quote_order_qty: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    client_order_id: str | None


@dataclass(frozen=True, slots=True)
class VisibilityLag:
    """Eventual consistency: how long a just-closed order is missing from order queries."""

    queries: int = 0
    seconds: float = 0.0


class MatchingEngine:
    """All exchange state: markets, accounts, orders, trades and the simulated clock."""

    def __init__(
        self,
        markets: Iterable[MarketConfig],
        accounts: Iterable[AccountConfig],
        fill_policy: FillPolicy | None = None,
        start_index: int = 0,
        duplicate_rule: DuplicateRule = "binance",
        first_order_id: int = 1,
        first_trade_id: int = 1,
    ) -> None:
        self.lock = threading.RLock()
        self.markets: dict[str, Market] = {}
        for cfg in markets:
            market = Market(cfg)
            if market.id in self.markets:
                raise ValueError(f"market {cfg.symbol} configured twice")
            self.markets[market.id] = market
        if not self.markets:
            raise ValueError("at least one market is needed")
        self.accounts: dict[str, Account] = {}
        for uid, acfg in enumerate(accounts, start=1):
            if acfg.api_key in self.accounts:
                raise ValueError(f"api key {acfg.api_key!r} configured twice")
            self.accounts[acfg.api_key] = Account(acfg, uid)
        self.policy = fill_policy or FillPolicy()
        self.duplicate_rule = duplicate_rule
        first = next(iter(self.markets.values())).feed
        if not 0 <= start_index < len(first.candles):
            raise ValueError(f"start_index {start_index} outside 0..{len(first.candles) - 1}")
        self.now_ms = first.close_time_of(start_index)
        self.orders: dict[int, Order] = {}
        self.trades: list[Trade] = []
        self._next_order_id = first_order_id
        self._next_trade_id = first_trade_id
        self._next_cancel_id = 1
        self.lag = VisibilityLag()
        self._query_seq: dict[str, int] = {}

    # -- clock ---------------------------------------------------------------------------------

    def advance(self, candles: int = 1) -> int:
        """Move to the next candle boundary `candles` times; returns how many steps were made."""
        with self.lock:
            done = 0
            for _ in range(candles):
                nxt = [m.feed.next_close_after(self.now_ms) for m in self.markets.values()]
                upcoming = [t for t in nxt if t is not None]
                if not upcoming:
                    break
                self._step_to(min(upcoming))
                done += 1
            return done

    def advance_to(self, timestamp_ms: int) -> int:
        """Process every candle closing up to `timestamp_ms`; returns the candles processed."""
        with self.lock:
            if timestamp_ms <= self.now_ms:
                return 0
            return self._step_to(timestamp_ms)

    def _step_to(self, target_ms: int) -> int:
        revealed: list[tuple[int, int, Market, Candle]] = []
        for order_key, market in enumerate(self.markets.values()):
            for candle in market.feed.closing_between(self.now_ms, target_ms):
                revealed.append((candle.close_time, order_key, market, candle))
        revealed.sort(key=lambda item: (item[0], item[1]))
        for close_time, _, market, candle in revealed:
            self.now_ms = close_time
            self._match_candle(market, candle)
        self.now_ms = target_ms
        return len(revealed)

    def price(self, market: Market) -> Decimal:
        candle = market.feed.current(self.now_ms)
        if candle is None:
            raise market_closed()
        return candle.close

    def quote_price(self, market: Market, side: str) -> Decimal:
        """What a market order on `side` would fill at now (ask for BUY, bid for SELL)."""
        with self.lock:
            return self._market_fill_price(market, side, self.price(market))

    def market(self, market_id: str) -> Market:
        try:
            return self.markets[market_id]
        except KeyError:
            raise invalid_symbol() from None

    def account(self, api_key: str) -> Account:
        return self.accounts[api_key]

    # -- placing -------------------------------------------------------------------------------

    def place(self, api_key: str, req: NewOrder) -> tuple[Order, list[Trade]]:
        """Validate, reserve funds, fill what is marketable now; returns the order and fills."""
        with self.lock:
            account = self.accounts[api_key]
            market = self.market(req.symbol)
            market.check_order_type(req.type)
            client_id = req.client_order_id or self._auto_client_id()
            if not _CLIENT_ID.match(client_id):
                raise BinanceError(
                    -1100, "Illegal characters found in parameter 'newClientOrderId'"
                )
            self._check_duplicate(api_key, market.id, client_id)
            current = self.price(market)
            order = self._build(api_key, market, req, client_id, current)
            self._check_trigger(order, current)
            self._reserve(account, market, order)
            self.orders[order.order_id] = order
            self._next_order_id += 1
            account.update_time = self.now_ms
            fills = self._fill_on_arrival(account, market, order, current)
            return order, fills

    def _auto_client_id(self) -> str:
        return f"emu{self._next_order_id:019d}"

    def _check_duplicate(self, api_key: str, market_id: str, client_id: str) -> None:
        for other in self.orders.values():
            same = other.api_key == api_key and other.symbol == market_id
            blocking = self.duplicate_rule == "always" or other.status != "FILLED"
            if same and other.client_order_id == client_id and blocking:
                raise duplicate_order()

    def _build(
        self, api_key: str, market: Market, req: NewOrder, client_id: str, current: Decimal
    ) -> Order:
        is_limit = req.type in LIMIT_TYPES
        price = req.price if is_limit else None
        if price is not None:
            market.check_price(price)
        if req.stop_price is not None:
            market.check_price(req.stop_price)
        quote_qty = ZERO
        if req.quantity is not None:
            qty = req.quantity
        else:
            assert req.quote_order_qty is not None
            quote_qty = req.quote_order_qty
            qty = market.floor_qty(quote_qty / self._market_fill_price(market, req.side, current))
        market.check_qty(qty)
        reference = price if price is not None else req.stop_price
        if req.quote_order_qty is not None:
            market.check_notional(quote_qty)
        else:
            market.check_notional(qty * (reference if reference is not None else current))
        return Order(
            order_id=self._next_order_id,
            api_key=api_key,
            symbol=market.id,
            client_order_id=client_id,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force or "GTC",
            price=price if price is not None else ZERO,
            stop_price=req.stop_price,
            orig_qty=qty,
            orig_quote_qty=quote_qty,
            time=self.now_ms,
            update_time=self.now_ms,
            working_time=-1 if req.stop_price is not None else self.now_ms,
            reserve_asset=market.quote if req.side == "BUY" else market.base,
        )

    def _check_trigger(self, order: Order, current: Decimal) -> None:
        if order.stop_price is None:
            return
        up = (order.type, order.side) in _UP_TRIGGER
        if (up and order.stop_price <= current) or (not up and order.stop_price >= current):
            raise stop_would_trigger()

    def _reserve(self, account: Account, market: Market, order: Order) -> None:
        """Lock what the order may spend: quote at its worst price for buys, base for sells."""
        if order.side == "SELL":
            amount = order.orig_qty
        elif order.type in LIMIT_TYPES:
            amount = q8(order.orig_qty * order.price)
        elif order.stop_price is not None:
            amount = q8(order.orig_qty * order.stop_price)
        else:
            fill_price = self._market_fill_price(market, "BUY", self.price(market))
            amount = q8(order.orig_qty * fill_price)
        account.lock(order.reserve_asset, amount)
        order.reserved = amount

    def _fill_on_arrival(
        self, account: Account, market: Market, order: Order, current: Decimal
    ) -> list[Trade]:
        if order.stop_price is not None:
            return []
        if order.type == "MARKET":
            return self._fill_market(account, market, order, market.feed.current(self.now_ms))
        marketable = order.price >= current if order.side == "BUY" else order.price <= current
        if order.type == "LIMIT_MAKER":
            if marketable:
                self._discard(account, order)
                raise would_match_and_take()
            return []
        fills: list[Trade] = []
        if marketable:
            candle = market.feed.current(self.now_ms)
            cap = self._cap(market, order, self._liquidity(candle))
            if order.time_in_force == "FOK" and cap < order.remaining:
                cap = ZERO
            if cap > 0:
                fills.append(self._fill(account, market, order, cap, current, maker=False))
        if order.is_open and order.time_in_force in {"IOC", "FOK"}:
            self._close(account, order, "EXPIRED")
        return fills

    def _discard(self, account: Account, order: Order) -> None:
        """Undo a placement the exchange rejects after checks (no order id is consumed)."""
        account.unlock(order.reserve_asset, order.reserved)
        del self.orders[order.order_id]
        self._next_order_id -= 1

    def _market_fill_price(self, market: Market, side: str, current: Decimal) -> Decimal:
        slip = self.policy.slippage_bps / Decimal(10_000)
        if side == "BUY":
            return market.round_price(current * (1 + slip), up=True)
        return market.round_price(current * (1 - slip), up=False)

    def _fill_market(
        self, account: Account, market: Market, order: Order, candle: Candle | None
    ) -> list[Trade]:
        qty = order.remaining
        if self.policy.cap_market_orders:
            qty = self._cap(market, order, self._liquidity(candle))
        price = self._market_fill_price(market, order.side, self.price(market))
        fills = []
        if qty > 0:
            fills.append(self._fill(account, market, order, qty, price, maker=False))
        if order.is_open:
            self._close(account, order, "EXPIRED")
        return fills

    # -- filling -------------------------------------------------------------------------------

    def _liquidity(self, candle: Candle | None) -> Decimal | None:
        if self.policy.volume_share is None:
            return None
        return ZERO if candle is None else candle.volume * self.policy.volume_share

    def _cap(self, market: Market, order: Order, liquidity: Decimal | None) -> Decimal:
        qty = order.remaining
        if self.policy.max_fill_qty_per_candle is not None:
            qty = min(qty, self.policy.max_fill_qty_per_candle)
        if liquidity is not None:
            qty = min(qty, liquidity)
        return market.floor_qty(qty) if qty < order.remaining else qty

    def _fill(
        self,
        account: Account,
        market: Market,
        order: Order,
        qty: Decimal,
        price: Decimal,
        maker: bool,
        at_ms: int | None = None,
    ) -> Trade:
        """Book one trade: move balances, update the order, release what it no longer needs."""
        when = self.now_ms if at_ms is None else at_ms
        quote_qty = q8(qty * price)
        rate = account.maker_fee if maker else account.taker_fee
        if order.side == "BUY":
            commission, fee_asset = q8(qty * rate), market.base
            from_locked = min(order.reserved, quote_qty)
            account.spend_locked(market.quote, from_locked)
            order.reserved -= from_locked
            account.spend_free(market.quote, quote_qty - from_locked)
            account.credit(market.base, qty - commission)
        else:
            commission, fee_asset = q8(quote_qty * rate), market.quote
            account.spend_locked(market.base, qty)
            order.reserved -= qty
            account.credit(market.quote, quote_qty - commission)
        trade = Trade(
            trade_id=self._next_trade_id,
            order_id=order.order_id,
            symbol=market.id,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=fee_asset,
            time=when,
            is_buyer=order.side == "BUY",
            is_maker=maker,
        )
        self._next_trade_id += 1
        self.trades.append(trade)
        order.trades.append(trade)
        order.executed_qty += qty
        order.cum_quote += quote_qty
        order.update_time = when
        account.update_time = when
        if order.remaining == 0:
            self._close(account, order, "FILLED", when)
        else:
            order.status = "PARTIALLY_FILLED"
            self._release_excess(account, order)
        return trade

    def _release_excess(self, account: Account, order: Order) -> None:
        """A buy filled below its limit keeps only remaining x limit locked, like Binance."""
        if order.side != "BUY":
            return
        per_unit = order.price if order.type in LIMIT_TYPES else (order.stop_price or ZERO)
        needed = q8(order.remaining * per_unit)
        if order.reserved > needed:
            account.unlock(order.reserve_asset, order.reserved - needed)
            order.reserved = needed

    def _close(self, account: Account, order: Order, status: str, at_ms: int | None = None) -> None:
        order.status = status
        order.update_time = self.now_ms if at_ms is None else at_ms
        if order.reserved > 0:
            account.unlock(order.reserve_asset, order.reserved)
            order.reserved = ZERO
        order.closed_seq = self._query_seq.get(order.api_key, 0) + self.lag.queries
        order.closed_wall = time.monotonic() + self.lag.seconds

    def _match_candle(self, market: Market, candle: Candle) -> None:
        liquidity = self._liquidity(candle)
        at = candle.close_time - 1
        book = [o for o in self.orders.values() if o.symbol == market.id and o.is_open]
        for order in sorted(book, key=lambda o: o.order_id):
            account = self.accounts[order.api_key]
            same_candle_trigger = False
            if order.stop_price is not None and not order.triggered:
                if not self._triggers(order, candle):
                    continue
                order.triggered = True
                order.working_time = at
                same_candle_trigger = True
                if order.type in {"STOP_LOSS", "TAKE_PROFIT"}:
                    self._fill_triggered_market(account, market, order, candle, liquidity, at)
                    continue
            buy = order.side == "BUY"
            if not (candle.low <= order.price if buy else candle.high >= order.price):
                continue
            qty = self._cap(market, order, liquidity)
            if qty <= 0:
                continue
            self._fill(account, market, order, qty, order.price, not same_candle_trigger, at)
            if liquidity is not None:
                liquidity -= qty

    def _triggers(self, order: Order, candle: Candle) -> bool:
        assert order.stop_price is not None
        if (order.type, order.side) in _UP_TRIGGER:
            return candle.high >= order.stop_price
        return candle.low <= order.stop_price

    def _fill_triggered_market(
        self,
        account: Account,
        market: Market,
        order: Order,
        candle: Candle,
        liquidity: Decimal | None,
        at: int,
    ) -> None:
        assert order.stop_price is not None
        if (order.type, order.side) in _UP_TRIGGER:
            base_price = max(order.stop_price, candle.open)
        else:
            base_price = min(order.stop_price, candle.open)
        price = self._market_fill_price(market, order.side, base_price)
        qty = self._cap(market, order, liquidity) if self.policy.cap_market_orders else None
        qty = order.remaining if qty is None else qty
        affordable = order.side == "SELL" or (
            q8(qty * price) <= order.reserved + account.free[market.quote]
        )
        if qty > 0 and affordable:
            self._fill(account, market, order, qty, price, maker=False, at_ms=at)
        if order.is_open:
            self._close(account, order, "EXPIRED", at)

    # -- cancel and queries --------------------------------------------------------------------

    def _lookup(
        self, api_key: str, market_id: str, order_id: int | None, client_id: str | None
    ) -> Order | None:
        """Binance's rule: by orderId (and then the client id must match), else newest by id."""
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.api_key != api_key or order.symbol != market_id:
                return None
            if client_id is not None and order.client_order_id != client_id:
                return None
            return order
        for order in sorted(self.orders.values(), key=lambda o: -o.order_id):
            mine = order.api_key == api_key and order.symbol == market_id
            if mine and order.client_order_id == client_id:
                return order
        return None

    def _begin_query(self, api_key: str) -> int:
        seq = self._query_seq.get(api_key, 0) + 1
        self._query_seq[api_key] = seq
        return seq

    def _visible(self, order: Order, seq: int) -> bool:
        if order.is_open or order.closed_seq is None or order.closed_wall is None:
            return True
        return seq > order.closed_seq and time.monotonic() >= order.closed_wall

    def get_order(
        self, api_key: str, market_id: str, order_id: int | None, client_id: str | None
    ) -> Order:
        with self.lock:
            market = self.market(market_id)
            seq = self._begin_query(api_key)
            order = self._lookup(api_key, market.id, order_id, client_id)
            if order is None or not self._visible(order, seq):
                raise order_does_not_exist()
            return order

    def cancel(
        self, api_key: str, market_id: str, order_id: int | None, client_id: str | None
    ) -> tuple[Order, str, int]:
        """Returns the canceled order, the cancel's own client id and its time."""
        with self.lock:
            market = self.market(market_id)
            order = self._lookup(api_key, market.id, order_id, client_id)
            if order is None or not order.is_open:
                raise unknown_order()
            return order, *self._cancel(order)

    def _cancel(self, order: Order) -> tuple[str, int]:
        account = self.accounts[order.api_key]
        self._close(account, order, "CANCELED")
        account.update_time = self.now_ms
        cancel_id = f"emucancel{self._next_cancel_id:013d}"
        self._next_cancel_id += 1
        return cancel_id, self.now_ms

    def cancel_all(self, api_key: str, market_id: str) -> list[tuple[Order, str, int]]:
        with self.lock:
            market = self.market(market_id)
            book = [o for o in self.open_orders(api_key, market.id)]
            if not book:
                raise unknown_order()
            return [(o, *self._cancel(o)) for o in book]

    def open_orders(self, api_key: str, market_id: str | None) -> list[Order]:
        with self.lock:
            if market_id is not None:
                market_id = self.market(market_id).id
            return [
                o
                for o in sorted(self.orders.values(), key=lambda o: o.order_id)
                if o.api_key == api_key and o.is_open and market_id in (None, o.symbol)
            ]

    def all_orders(
        self,
        api_key: str,
        market_id: str,
        from_order_id: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Order]:
        with self.lock:
            market = self.market(market_id)
            seq = self._begin_query(api_key)
            rows = [
                o
                for o in sorted(self.orders.values(), key=lambda o: o.order_id)
                if o.api_key == api_key and o.symbol == market.id and self._visible(o, seq)
            ]
            return _window(rows, from_order_id, start_ms, end_ms, limit, lambda o: o.order_id)

    def my_trades(
        self,
        api_key: str,
        market_id: str,
        order_id: int | None,
        from_id: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Trade]:
        with self.lock:
            market = self.market(market_id)
            rows = [
                t
                for t in self.trades
                if t.symbol == market.id
                and self.orders[t.order_id].api_key == api_key
                and order_id in (None, t.order_id)
            ]
            return _window(rows, from_id, start_ms, end_ms, limit, lambda t: t.trade_id)


def _window[T: (Order, Trade)](
    rows: list[T],
    from_id: int | None,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    key: Callable[[T], int],
) -> list[T]:
    """Binance paging: from an id, or a time range (oldest first), else the newest `limit`."""
    if from_id is not None:
        return [r for r in rows if key(r) >= from_id][:limit]
    if start_ms is not None or end_ms is not None:
        lo = start_ms if start_ms is not None else -1
        hi = end_ms if end_ms is not None else 2**63
        return [r for r in rows if lo <= r.time <= hi][:limit]
    return rows[-limit:]
