"""DEMO only: start the paper account again from a chosen balance, keeping the old books.

Nothing is deleted. In one transaction:
- the whole previous paper account document (balances, every paper order and trade) plus the
  live orders and open positions as they were go into a new archive document
  `paper_archive:<stamp>` (listed in `paper_archives`);
- every live order is marked CANCELED (ORDER_CANCELED events, reason "paper account reset");
- every open position is closed out: status CLOSED, the amount written off to 0 at the last
  known price, realized PnL untouched (no trade happened), with a POSITION_CLOSED event that
  carries what was written off and the unrealized PnL at that price;
- the paper account restarts with the new balances, continuing the order and trade id
  counters (ids are never reused: positions and fills are keyed by them);
- one SETTINGS_CHANGED event (field paper.account, old and new balances, the archive key).

In REAL mode it is refused with a SECURITY event: there is no paper account to reset, and a
command that reached this far in REAL mode is worth knowing about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ManualError, SecurityError
from kestrel.exchange.paper_state import STATE_KEY as PAPER_ACCOUNT_KEY
from kestrel.exchange.paper_state import PaperAccount, write_rows
from kestrel.execution.orders import mark
from kestrel.mode import TradingMode, current_mode
from kestrel.models import (
    Event,
    EventType,
    OrderStatus,
    Position,
    PositionStatus,
    StatusSource,
    utcnow,
)
from kestrel.models.manual import ResetOutcome
from kestrel.money import to_decimal
from kestrel.store.base import Store
from kestrel.store.cas import retry_on_conflict

log = logging.getLogger(__name__)

ARCHIVE_PREFIX = "paper_archive:"
ARCHIVE_INDEX_KEY = "paper_archives"
CAS_ATTEMPTS = 10

PriceOf = Callable[[str], Decimal | None]


class ArchiveIndex(BaseModel):
    archives: list[dict[str, Any]] = Field(default_factory=list)


def reset_paper_account(
    store: Store,
    settings: KestrelSettings,
    *,
    balance: Decimal,
    actor: str,
    extra_balances: Mapping[str, Decimal] | None = None,
    reason: str = "",
    price_of: PriceOf | None = None,
    now: Callable[[], datetime] = utcnow,
) -> ResetOutcome:
    """Archive the paper books and restart the account with `balance` of the quote currency
    (plus `extra_balances`, default the configured ones; pass {} for none)."""
    if (
        settings.mode is not TradingMode.DEMO
        or current_mode() is not TradingMode.DEMO
        or (store.mode is not TradingMode.DEMO)
    ):
        message = f"paper account reset refused in {current_mode()} mode (DEMO only), by {actor}"
        store.append_events(
            [
                Event(
                    event_id=f"security:paper-reset:{now().isoformat()}",
                    type=EventType.SECURITY,
                    mode=store.mode,
                    reasons=["PAPER_RESET_REFUSED"],
                    message=message,
                    data={"by": actor},
                )
            ]
        )
        raise SecurityError(message)
    balances = _new_balances(settings, balance, extra_balances)
    # A fill or the cycle moving something meanwhile makes the reset archive the fresh state.
    return retry_on_conflict(
        lambda: _reset_once(store, balances, actor, reason, price_of, now),
        what="the paper account (reset)",
        attempts=CAS_ATTEMPTS,
    )


def _new_balances(
    settings: KestrelSettings, balance: Decimal, extra: Mapping[str, Decimal] | None
) -> dict[str, Decimal]:
    amount = to_decimal(balance)
    if amount <= 0:
        raise ManualError(f"balance: got {balance}; the starting balance must be > 0")
    chosen = dict(settings.paper.extra_balances if extra is None else extra)
    balances: dict[str, Decimal] = {}
    for currency, value in chosen.items():
        value = to_decimal(value)
        if value < 0:
            raise ManualError(f"extra balance {currency}: got {value}; must be >= 0")
        balances[currency.upper()] = value
    balances[settings.paper.quote_currency] = amount
    return balances


def _reset_once(
    store: Store,
    balances: dict[str, Decimal],
    actor: str,
    reason: str,
    price_of: PriceOf | None,
    now: Callable[[], datetime],
) -> ResetOutcome:
    moment = now()
    stamp = moment.strftime("%Y%m%dT%H%M%S%fZ")
    archive_key = ARCHIVE_PREFIX + stamp
    found = store.get_state(PAPER_ACCOUNT_KEY)
    account_doc, account_version = (found[0], found[1]) if found else (None, 0)
    previous = PaperAccount.load(account_doc) if account_doc else PaperAccount()
    write_rows(store, previous.journal)  # the old epoch's rows stay, whole, as the archive
    live = list(store.iter_live_orders())
    positions = store.list_positions(status=PositionStatus.OPEN)
    prices = {p.symbol: _price(price_of, p) for p in positions}
    why = f"paper account reset by {actor}" + (f": {reason}" if reason else "")
    archive = {
        "archived_at": moment.isoformat(),
        "by": actor,
        "reason": reason,
        "paper_account": account_doc,
        "live_orders": [o.model_dump(mode="json") for o in live],
        "open_positions": [p.model_dump(mode="json") for p in positions],
        "new_balances": {c: str(v) for c, v in balances.items()},
    }
    fresh = PaperAccount(
        epoch=previous.epoch + 1,
        balances=balances,
        next_order_id=previous.next_order_id,
        next_trade_id=previous.next_trade_id,
    )
    index_found = store.get_state(ARCHIVE_INDEX_KEY)
    index = ArchiveIndex.model_validate(index_found[0]) if index_found else ArchiveIndex()
    index.archives.append(
        {
            "key": archive_key,
            "at": moment.isoformat(),
            "by": actor,
            "orders": len(live),
            "positions": len(positions),
        }
    )
    event = Event(
        event_id=f"paper_reset:{stamp}",
        type=EventType.SETTINGS_CHANGED,
        mode=store.mode,
        reasons=["PAPER_ACCOUNT_RESET"],
        message=(
            f"{why}; {len(live)} live order(s) canceled, {len(positions)} position(s) closed "
            f"out; books archived in {archive_key}"
        ),
        data={
            "by": actor,
            "field": "paper.account",
            "old": {c: str(v) for c, v in previous.balances.items()},
            "new": {c: str(v) for c, v in balances.items()},
            "archive": archive_key,
            "orders_canceled": [o.client_order_id for o in live],
            "positions_closed": [p.position_id for p in positions],
        },
        created_at=moment,
    )
    with store.atomic():
        store.put_state(archive_key, archive, expected_version=0)
        store.put_state(
            ARCHIVE_INDEX_KEY,
            index.model_dump(mode="json"),
            expected_version=index_found[1] if index_found else 0,
        )
        for order in live:
            mark(store, order, OrderStatus.CANCELED, StatusSource.PAPER_RESET, why)
        for position in positions:
            _close_out(store, position, prices[position.symbol], archive_key, why, moment)
        store.put_state(
            PAPER_ACCOUNT_KEY, fresh.model_dump(mode="json"), expected_version=account_version
        )
        store.append_events([event])
    log.warning(event.message)
    return ResetOutcome(
        archive_key=archive_key,
        balances=balances,
        previous_balances=dict(previous.balances),
        orders_canceled=[o.client_order_id for o in live],
        positions_closed=[p.position_id for p in positions],
        event_id=event.event_id,
    )


def _price(price_of: PriceOf | None, position: Position) -> Decimal | None:
    if price_of is not None:
        try:
            price = price_of(position.symbol)
            if price is not None and price > 0:
                return price
        except Exception as exc:  # a feed problem must not block the reset
            log.warning("no price for %s at reset: %s", position.symbol, exc)
    return position.last_price


def _close_out(
    store: Store,
    position: Position,
    price: Decimal | None,
    archive_key: str,
    why: str,
    moment: datetime,
) -> None:
    unrealized = position.unrealized_pnl(price) if price is not None else None
    closed = position.model_copy(
        update={
            "status": PositionStatus.CLOSED,
            "amount": Decimal("0"),
            "last_price": price if price is not None else position.last_price,
            "closed_at": moment,
            "updated_at": moment,
        }
    )
    event = Event(
        event_id=f"{position.position_id}:reset:{archive_key}",
        type=EventType.POSITION_CLOSED,
        mode=store.mode,
        symbol=position.symbol,
        reasons=["PAPER_ACCOUNT_RESET"],
        message=(
            f"{position.symbol} position closed out by the reset: {position.amount} written off"
            + (f" at {price}" if price is not None else "")
        ),
        data={
            "amount": "0",
            "written_off": str(position.amount),
            "avg_entry_price": str(position.avg_entry_price),
            "mark_price": str(price) if price is not None else None,
            "unrealized_pnl_at_reset": str(unrealized) if unrealized is not None else None,
            "realized_pnl": str(position.realized_pnl),
            "fees_paid": str(position.fees_paid),
            "archive": archive_key,
            "reason": why,
        },
        created_at=moment,
    )
    store.save_position(closed, expected_version=position.version, events=[event])


def list_archives(store: Store) -> list[dict[str, Any]]:
    found = store.get_state(ARCHIVE_INDEX_KEY)
    return ArchiveIndex.model_validate(found[0]).archives if found else []
