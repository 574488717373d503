"""The dashboards' rows from a real SQLite store: what each table shows and leaves out."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.mode import TradingMode, trading_mode
from kestrel.models import (
    Event,
    EventType,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Side,
    StatusSource,
)
from kestrel.reporting.dashboards import (
    Snapshot,
    audit_rows,
    equity,
    executed_order_rows,
    last_event_seq,
    monitoring_markdown,
    open_order_rows,
    portfolio_rows,
    signal_rows,
    take_snapshot,
    unpriced_assets,
)
from kestrel.risk.controls import set_emergency_stop
from kestrel.store import SQLiteStore, Store

D = Decimal


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with trading_mode(TradingMode.REAL):
        opened = SQLiteStore(tmp_path / "real.sqlite3", TradingMode.REAL)
        try:
            yield opened
        finally:
            opened.close()


def order(cid: str, symbol: str, status: OrderStatus, **fields: object) -> Order:
    values: dict[str, object] = {
        "client_order_id": cid,
        "mode": TradingMode.REAL,
        "exchange": "binance",
        "symbol": symbol,
        "side": Side.BUY,
        "type": OrderType.MARKET,
        "amount": D("0.01"),
        "status": status,
        **fields,
    }
    return Order.model_validate(values)


def decision(symbol: str, action: str, reasons: list[str], n: int) -> Event:
    return Event(
        event_id=f"decision:{symbol}:{n}",
        type=EventType.TRADE_DECIDED if action != "HOLD" else EventType.TRADE_HELD,
        mode=TradingMode.REAL,
        symbol=symbol,
        reasons=reasons,
        message="; ".join(reasons),
        data={"action": action, "signal": action, "confidence": 0.71, "price": "30000"},
    )


def fill_store(store: Store) -> None:
    store.insert_order(order("krp-buy", "BTC/USDT", OrderStatus.NEW))
    filled = store.get_order("krp-buy")
    assert filled is not None
    store.update_order(
        filled.model_copy(
            update={
                "status": OrderStatus.FILLED,
                "status_source": StatusSource.CREATE_RESPONSE,
                "filled": D("0.01"),
                "average_price": D("30000"),
                "fee_cost": D("0.3"),
                "fee_currency": "USDT",
            }
        ),
        expected_version=filled.version,
    )
    store.insert_order(
        order(
            "krs-stop",
            "BTC/USDT",
            OrderStatus.NEW,
            role=OrderRole.STOP_LOSS,
            side=Side.SELL,
            type=OrderType.STOP_MARKET,
            stop_price=D("29000"),
            stop_loss=D("29000"),
            parent_client_order_id="krp-buy",
        )
    )
    store.insert_order(order("krp-eth", "ETH/USDT", OrderStatus.NEW, take_profit=D("2200")))
    store.save_position(
        Position(
            position_id="pos-btc",
            symbol="BTC/USDT",
            amount=D("0.01"),
            avg_entry_price=D("30000"),
            fees_paid=D("0.3"),
            stop_loss=D("29000"),
        ),
        expected_version=0,
    )
    store.save_position(
        Position(
            position_id="pos-sol",
            symbol="SOL/USDT",
            status=PositionStatus.CLOSED,
            realized_pnl=D("12.5"),
            fees_paid=D("0.2"),
        ),
        expected_version=0,
    )
    store.append_events(
        [
            decision("BTC/USDT", "BUY", ["SIGNAL_BUY", "APPROVED"], 1),
            decision("ETH/USDT", "HOLD", ["SKIP_NO_SIGNAL"], 2),
        ]
    )


class FakeWallet:
    """An exchange as the dashboards see it: a balance and last prices. (Kestrel's own paper
    exchange is exercised end to end in test_e2e; this one pins exact numbers.)"""

    def __init__(self, prices: dict[str, str], fail: frozenset[str] = frozenset()) -> None:
        self.prices = prices
        self.fail = fail

    def fetch_balance(self) -> dict[str, object]:
        return {
            "USDT": {"free": 9000, "used": 0, "total": 9000},
            "BTC": {"free": 0.01, "used": 0, "total": 0.01},
            "DOGE": {"free": 5, "used": 0, "total": 5},
            "total": {"USDT": 9000, "BTC": 0.01},
        }

    def fetch_ticker(self, symbol: str) -> dict[str, str]:
        if symbol in self.fail:
            raise TimeoutError("exchange slow")
        return {"last": self.prices[symbol]}


def test_tables_from_the_store(store: Store) -> None:
    fill_store(store)
    set_emergency_stop(store, active=True, reason="drill", by="test")
    wallet = FakeWallet({"BTC/USDT": "31000", "ETH/USDT": "2000"}, fail=frozenset({"ETH/USDT"}))
    snapshot = take_snapshot(store, exchange=wallet, watchlist=["BTC/USDT", "ETH/USDT"])

    live = {row["client_order_id"]: row for row in open_order_rows(snapshot)}
    assert set(live) == {"krs-stop", "krp-eth"}
    assert live["krs-stop"]["role"] == "STOP_LOSS"
    assert live["krs-stop"]["stop_price"] == "29000"
    assert live["krs-stop"]["parent"] == "krp-buy"
    assert live["krp-eth"]["take_profit"] == "2200"

    executed = executed_order_rows(snapshot)
    assert [row["client_order_id"] for row in executed] == ["krp-buy"]
    assert executed[0]["status_source"] == "create_response"
    assert executed[0]["fee"] == "0.3 USDT"

    audit = audit_rows(snapshot)
    assert audit[0]["type"] == "EMERGENCY_STOP_SET"  # newest first
    buy = next(row for row in audit if row["symbol"] == "BTC/USDT")
    assert buy["reasons"] == "SIGNAL_BUY, APPROVED"
    assert len(audit) == last_event_seq(store)

    portfolio = {row["symbol"]: row for row in portfolio_rows(snapshot)}
    assert portfolio["BTC/USDT"]["unrealized_pnl"] == "10"  # (31000 - 30000) * 0.01
    assert portfolio["BTC/USDT"]["value"] == "310"
    assert portfolio["SOL/USDT"]["status"] == "CLOSED"
    assert portfolio["TOTAL USDT"]["realized_pnl"] == "12.5"
    assert portfolio["TOTAL USDT"]["fees"] == "0.5"

    assert equity(snapshot) == {"USDT": D("9310")}  # 9000 + 0.01 BTC at 31000
    assert unpriced_assets(snapshot) == ["DOGE"]
    text = monitoring_markdown(snapshot)
    assert "| Mode | **REAL** |" in text
    assert "**ACTIVE**" in text and "drill" in text
    assert "| Equity (USDT) | 9310 |" in text
    assert "realized 12.5, unrealized 10, fees 0.5" in text
    assert "| BTC/USDT |" in text and "SIGNAL_BUY, APPROVED" in text
    assert "ETH/USDT price unavailable: TimeoutError" in text
    assert "Not priced in equity | DOGE" in text


def test_an_order_shows_every_fee_in_its_own_currency(store: Store) -> None:
    """An order whose fills were charged in BTC and in BNB shows both, never only the first
    fill's currency, and never added together."""
    store.insert_order(
        order(
            "krp-two-fees",
            "BTC/USDT",
            OrderStatus.FILLED,
            filled=D("0.01"),
            average_price=D("30000"),
            fee_cost=D("0.001"),
            fee_currency="BTC",
            fees={"BTC": D("0.001"), "BNB": D("0.05")},
        )
    )

    (row,) = executed_order_rows(take_snapshot(store))

    assert row["fee"] == "0.001 BTC + 0.05 BNB"


def test_empty_store_and_no_exchange(store: Store) -> None:
    snapshot = take_snapshot(store, watchlist=["BTC/USDT"])
    assert open_order_rows(snapshot) == []
    assert executed_order_rows(snapshot) == []
    assert audit_rows(snapshot) == []
    assert portfolio_rows(snapshot) == []
    assert equity(snapshot) == {}
    text = monitoring_markdown(snapshot)
    assert "Emergency stop | off" in text
    assert "| BTC/USDT |  | no cycle yet |" in text


def test_last_event_seq_and_row_limits(store: Store) -> None:
    events = [decision("BTC/USDT", "HOLD", ["SKIP_NO_SIGNAL"], n) for n in range(37)]
    store.append_events(events)
    assert last_event_seq(store) == 37
    snapshot = take_snapshot(store, max_events=10)
    assert len(snapshot.events) == 10
    assert [row["seq"] for row in audit_rows(snapshot, limit=3)] == ["37", "36", "35"]


def test_markdown_cells_stay_in_their_table() -> None:
    from kestrel.models import utcnow
    from kestrel.risk.controls import EmergencyStop

    snapshot = Snapshot(
        mode=TradingMode.DEMO,
        taken_at=utcnow(),
        emergency_stop=EmergencyStop(),
        breaker={"tripped": True, "reason": "3 losses"},
        orders=[],
        positions=[],
        events=[],
        latest_decisions={},
        notes=["a | b\nc"],
    )
    text = monitoring_markdown(snapshot)
    assert "TRIPPED: 3 losses" in text
    assert "- a \\| b c" in text


def test_dashboards_name_the_market_data(store: Store) -> None:
    """Paper trades on invented prices can never pass for real ones on a dashboard."""
    event = decision("BTC/USDT", "BUY", ["SIGNAL_BUY", "APPROVED"], 1)
    store.append_events(
        [event.model_copy(update={"data": {**event.data, "data_source": "SIMULATED (seed 7)"}})]
    )
    snapshot = take_snapshot(store, watchlist=["BTC/USDT"], data_source="SIMULATED (seed 7)")
    text = monitoring_markdown(snapshot)
    assert "| Market data | **SIMULATED (seed 7)**: invented prices, not a market |" in text
    assert "| data |" in text and "| SIMULATED (seed 7) |" in text
    assert [row["data"] for row in signal_rows(snapshot)] == ["SIMULATED (seed 7)"]
    unknown = monitoring_markdown(take_snapshot(store, watchlist=["BTC/USDT"]))
    assert "| Market data | unknown (not read for this dashboard) |" in unknown
