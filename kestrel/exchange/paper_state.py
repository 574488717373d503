"""The paper account in the Store: one small account document plus a row per order and fill.

Why this shape: a DEMO account runs for months and the backtest places tens of thousands of
orders, so no write may grow with history. The account document ("paper_account") holds only
what every step needs: balances, the id counters, the OPEN orders and a short journal. Closed
orders, fills and the clientOrderId index are rows of their own, written once and never
changed (state keys `paper:<epoch>:order:<id>`, `paper:<epoch>:fill:<symbol>:<trade id>`,
`paper:<epoch>:cid:<clientOrderId>`).

How a step stays all-or-nothing without multi-document transactions (MongoDB standalone): the
account document is the only thing a step changes with compare-and-set. The rows a step
creates go into the document's journal in that same write; after it commits they are written
as rows, and every later step first writes the journal it finds (again: creating a row that
exists is a no-op). So a row exists only once the step that made it has committed, and a kill
between the two writes loses nothing. A reset starts a new `epoch`: the old rows stay, as the
archive, and are no longer seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from kestrel.errors import ConcurrentUpdate
from kestrel.models import KestrelModel, Money
from kestrel.money import ZERO
from kestrel.store.base import Store
from kestrel.store.cas import retry_on_conflict

STATE_KEY = "paper_account"
ROW_PREFIX = "paper:"
CAS_ATTEMPTS = 50

PaperType = Literal["market", "limit", "stop_market", "stop_loss_limit"]
PaperSide = Literal["buy", "sell"]
PaperStatus = Literal["open", "closed", "canceled", "rejected"]
Doc = dict[str, Any]


class PaperOrder(KestrelModel):
    id: str
    client_order_id: str
    symbol: str
    type: PaperType
    side: PaperSide
    amount: Money
    price: Money | None = None  # limit price
    stop_price: Money | None = None
    triggered: bool = Field(default=False, description="a stop order whose stop was hit")
    taking: bool = Field(
        default=False, description="a marketable limit the volume cap left unfinished"
    )
    status: PaperStatus = "open"
    timestamp: int = Field(description="market time of creation (the feed's now)")
    watch_from: int = Field(description="candles opening at/after this are still to be matched")
    candles_seen: int = 0
    filled: Money = ZERO
    cost: Money = ZERO  # quote value of the fills, before fees
    fees: dict[str, Money] = Field(default_factory=dict, description="currency -> fee paid")
    reserved_currency: str
    reserve_price: Money = Field(
        description="held back per unit still to fill: quote per base for buys, 1 for sells"
    )
    trade_ids: list[str] = Field(default_factory=list)
    last_trade_timestamp: int | None = None
    last_update_timestamp: int
    reason: str | None = Field(default=None, description="why the exchange canceled it")

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def reserved(self) -> Decimal:
        """Held back from `free` while open; shrinks as the order fills."""
        return self.remaining * self.reserve_price if self.is_open else ZERO

    @property
    def sort_key(self) -> tuple[int, int]:
        return self.timestamp, int(self.id)


class PaperTrade(KestrelModel):
    id: str
    order_id: str
    client_order_id: str
    symbol: str
    type: PaperType
    side: PaperSide
    taker_or_maker: Literal["taker", "maker"]
    price: Money
    amount: Money
    cost: Money
    fee_cost: Money
    fee_currency: str
    fee_rate: Money
    bnb_price: Money | None = Field(default=None, description="quote per BNB of a BNB fee")
    timestamp: int

    @property
    def sort_key(self) -> tuple[int, int]:
        return self.timestamp, int(self.id)


class PaperAccount(KestrelModel):
    balances: dict[str, Money] = Field(default_factory=dict, description="currency -> total")
    orders: dict[str, PaperOrder] = Field(default_factory=dict, description="OPEN orders")
    next_order_id: int = 1
    next_trade_id: int = 1
    epoch: int = Field(default=1, description="bumped by a reset; rows are per epoch")
    journal: dict[str, Doc] = Field(
        default_factory=dict, description="rows made by the last step, until written"
    )

    @classmethod
    def load(cls, doc: Doc) -> PaperAccount:
        """The stored document, including one written before rows existed (everything in it)."""
        if "trades" in doc or "client_ids" in doc:
            return _from_single_document(doc)
        return cls.model_validate(doc)

    def total(self, currency: str) -> Decimal:
        return self.balances.get(currency, ZERO)

    def used(self, currency: str, *, excluding: str | None = None) -> Decimal:
        """Reserved by open orders; computed, never stored, so it cannot drift."""
        return sum(
            (
                o.reserved
                for o in self.orders.values()
                if o.reserved_currency == currency and o.id != excluding
            ),
            ZERO,
        )

    def free(self, currency: str, *, excluding: str | None = None) -> Decimal:
        return self.total(currency) - self.used(currency, excluding=excluding)

    def currencies(self) -> list[str]:
        found = set(self.balances) | {o.reserved_currency for o in self.orders.values()}
        return sorted(found)

    def open_orders(self) -> list[PaperOrder]:
        return sorted((o for o in self.orders.values() if o.is_open), key=lambda o: o.sort_key)

    def add(self, currency: str, delta: Decimal) -> None:
        self.balances[currency] = self.total(currency) + delta

    # -- rows -----------------------------------------------------------------------------------
    def order_key(self, order_id: str) -> str:
        return f"{ROW_PREFIX}{self.epoch}:order:{int(order_id):012d}"

    def fill_prefix(self, symbol: str | None = None) -> str:
        return f"{ROW_PREFIX}{self.epoch}:fill:" + (f"{symbol}:" if symbol else "")

    def fill_key(self, symbol: str, trade_id: str) -> str:
        return f"{self.fill_prefix(symbol)}{int(trade_id):012d}"

    def client_key(self, client_order_id: str) -> str:
        return f"{ROW_PREFIX}{self.epoch}:cid:{client_order_id}"

    def record_order(self, order: PaperOrder) -> None:
        """A new order: open in the document, its clientOrderId a row for good."""
        self.orders[order.id] = order
        self.journal[self.client_key(order.client_order_id)] = {"id": order.id}

    def record_trade(self, trade: PaperTrade) -> None:
        self.journal[self.fill_key(trade.symbol, trade.id)] = trade.model_dump(mode="json")

    def retire(self, order: PaperOrder) -> None:
        """A closed or canceled order leaves the document and becomes a row."""
        self.orders.pop(order.id, None)
        self.journal[self.order_key(order.id)] = order.model_dump(mode="json")


def _from_single_document(doc: Doc) -> PaperAccount:
    """Split an account stored as one document (orders and trades inside) into rows."""
    legacy = dict(doc)
    trades = [PaperTrade.model_validate(t) for t in legacy.pop("trades", [])]
    legacy.pop("client_ids", None)
    orders = []
    for raw in legacy.pop("orders", {}).values():
        raw = dict(raw)
        fee_cost, currency = Decimal(str(raw.pop("fee_cost", "0"))), raw.pop("fee_currency", "")
        raw["fees"] = {currency: str(fee_cost)} if currency and fee_cost else {}
        reserved = Decimal(str(raw.pop("reserved", "0")))
        amount = Decimal(str(raw["amount"]))
        raw["reserve_price"] = str(reserved / amount if amount else ZERO)
        orders.append(PaperOrder.model_validate(raw))
    account = PaperAccount.model_validate(legacy)
    for order in orders:
        account.record_order(order)
        if not order.is_open:
            account.retire(order)
    for trade in trades:
        account.record_trade(trade)
    return account


def write_rows(store: Store, rows: Mapping[str, Doc]) -> None:
    """Create each row unless it exists (rows never change, so existing means written)."""
    for key, doc in rows.items():
        if store.get_state(key) is not None:
            continue
        try:
            store.put_state(key, doc, expected_version=0)
        except ConcurrentUpdate:
            continue  # another process wrote the same row first


def transact[T](
    store: Store,
    starting_balances: Mapping[str, Decimal],
    work: Callable[[PaperAccount], tuple[T, bool]],
) -> T:
    """Run `work` on the freshest account and save it if `work` says it changed anything.

    On a lost compare-and-set (another process wrote first) the whole step reruns on the
    new document, so two processes can never both fill, create or cancel the same order.
    `work` raising leaves the stored account untouched.
    """

    def attempt() -> T:
        found = store.get_state(STATE_KEY)
        if found is None:
            account, version = PaperAccount(balances=dict(starting_balances)), 0
        else:
            account, version = PaperAccount.load(found[0]), found[1]
        write_rows(store, account.journal)
        had_journal = bool(account.journal)
        account.journal = {}
        result, changed = work(account)
        if not changed and version > 0 and not had_journal:
            return result
        store.put_state(STATE_KEY, account.model_dump(mode="json"), expected_version=version)
        write_rows(store, account.journal)
        return result

    return retry_on_conflict(attempt, what=STATE_KEY, attempts=CAS_ATTEMPTS)


class PaperBook:
    """Reading orders and fills of one account snapshot: its document, the journal of the
    step under way, then the rows."""

    def __init__(self, store: Store, account: PaperAccount) -> None:
        self.store = store
        self.account = account

    def _row(self, key: str) -> Doc | None:
        if key in self.account.journal:
            return self.account.journal[key]
        found = self.store.get_state(key)
        return None if found is None else found[0]

    def order(self, order_id: str) -> PaperOrder | None:
        if order_id in self.account.orders:
            return self.account.orders[order_id]
        if not order_id.isdigit():
            return None
        row = self._row(self.account.order_key(order_id))
        return None if row is None else PaperOrder.model_validate(row)

    def order_id_of(self, client_order_id: str) -> str | None:
        row = self._row(self.account.client_key(client_order_id))
        return None if row is None else str(row["id"])

    def trades_of(self, order: PaperOrder) -> list[PaperTrade]:
        rows = (self._row(self.account.fill_key(order.symbol, t)) for t in order.trade_ids)
        return [PaperTrade.model_validate(r) for r in rows if r is not None]

    def _rows(self, prefix: str, limit: int | None = None) -> Iterator[Doc]:
        """Rows under `prefix` plus the journal's; the newest `limit` by key when given."""
        stored = self.store.list_state(prefix, limit=limit, reverse=limit is not None)
        found = {key: doc for key, doc, _ in stored}
        found.update({k: d for k, d in self.account.journal.items() if k.startswith(prefix)})
        keys = sorted(found)
        yield from (found[k] for k in (keys[-limit:] if limit is not None else keys))

    def orders(self) -> list[PaperOrder]:
        """Every order of the account, open or not, oldest first."""
        prefix = f"{ROW_PREFIX}{self.account.epoch}:order:"
        done = [PaperOrder.model_validate(doc) for doc in self._rows(prefix)]
        return sorted([*done, *self.account.orders.values()], key=lambda o: o.sort_key)

    def trades(self, symbol: str | None, newest: int | None = None) -> list[PaperTrade]:
        """The fills of `symbol` (all symbols: None), oldest first; only the newest ones
        when `newest` is given, which costs that many rows, not the history."""
        rows = self._rows(self.account.fill_prefix(symbol), newest)
        return sorted((PaperTrade.model_validate(doc) for doc in rows), key=lambda t: t.sort_key)
