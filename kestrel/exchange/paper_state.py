"""The paper account as one Store document ("paper_account"), read and written with CAS.

One document, not rows: a fill changes an order, a trade and two balances together, and a
single compare-and-set write makes that all-or-nothing without asking the Store for more
than `get_state`/`put_state`. Money is Decimal here and a string in the stored JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Literal

from pydantic import Field

from kestrel.errors import ConcurrentUpdate
from kestrel.models import KestrelModel, Money
from kestrel.money import ZERO
from kestrel.store.base import Store

STATE_KEY = "paper_account"
CAS_ATTEMPTS = 50

PaperType = Literal["market", "limit", "stop_market"]
PaperSide = Literal["buy", "sell"]
PaperStatus = Literal["open", "closed", "canceled", "rejected"]


class PaperOrder(KestrelModel):
    id: str
    client_order_id: str
    symbol: str
    type: PaperType
    side: PaperSide
    amount: Money
    price: Money | None = None  # limit price
    stop_price: Money | None = None
    status: PaperStatus = "open"
    timestamp: int = Field(description="market time of creation (the feed's now)")
    watch_from: int = Field(description="candles opening at/after this are still to be matched")
    candles_seen: int = 0
    filled: Money = ZERO
    cost: Money = ZERO  # quote value of the fills, before fees
    fee_cost: Money = ZERO
    fee_currency: str
    reserved_currency: str
    reserved: Money = Field(description="held back from `free` while the order is open")
    trade_ids: list[str] = Field(default_factory=list)
    last_trade_timestamp: int | None = None
    last_update_timestamp: int
    reason: str | None = Field(default=None, description="why the exchange canceled it")

    @property
    def is_open(self) -> bool:
        return self.status == "open"

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
    timestamp: int


class PaperAccount(KestrelModel):
    balances: dict[str, Money] = Field(default_factory=dict, description="currency -> total")
    orders: dict[str, PaperOrder] = Field(default_factory=dict)
    client_ids: dict[str, str] = Field(default_factory=dict, description="clientOrderId -> id")
    trades: list[PaperTrade] = Field(default_factory=list)
    next_order_id: int = 1
    next_trade_id: int = 1

    def total(self, currency: str) -> Decimal:
        return self.balances.get(currency, ZERO)

    def used(self, currency: str, *, excluding: str | None = None) -> Decimal:
        """Reserved by open orders; computed, never stored, so it cannot drift."""
        return sum(
            (
                o.reserved
                for o in self.orders.values()
                if o.is_open and o.reserved_currency == currency and o.id != excluding
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
    for _ in range(CAS_ATTEMPTS):
        found = store.get_state(STATE_KEY)
        if found is None:
            account, version = PaperAccount(balances=dict(starting_balances)), 0
        else:
            account, version = PaperAccount.model_validate(found[0]), found[1]
        result, changed = work(account)
        if not changed and version > 0:
            return result
        try:
            store.put_state(STATE_KEY, account.model_dump(mode="json"), expected_version=version)
            return result
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"{STATE_KEY}: gave up after {CAS_ATTEMPTS} concurrent updates")
