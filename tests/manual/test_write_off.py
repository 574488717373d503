"""`kestrel order write-off`: an UNKNOWN order the operator verified by hand is written off as
FAILED (via written_off), recorded as an event, never deleted; REAL takes a preview and a
one-time token. REAL runs against the Binance emulator through real ccxt."""

from __future__ import annotations

import re
from pathlib import Path

import ccxt
import pytest
from typer.testing import CliRunner

from cli import app
from emulator import BinanceEmulator
from kestrel.config.settings import load_settings
from kestrel.errors import ConfirmationRefused, ManualError
from kestrel.execution.orders import place
from kestrel.execution.sync import sync_orders
from kestrel.manual.write_off import WriteOffRequest, write_off
from kestrel.mode import TradingMode, trading_mode
from kestrel.models import EventType, Order, OrderStatus, StatusSource
from kestrel.runtime import Runtime
from kestrel.store import open_store
from kestrel.store.base import Store
from tests.lifecycle.intents import intent
from tests.manual.conftest import KEY, SECRET

ACTOR = "pytest"
CHECKED = "not in Binance's order history for this client id (checked 14:02 UTC)"


def unknown_on_the_exchange(rt: Runtime, emulator: BinanceEmulator) -> Order:
    """Sent, the connection dropped before the exchange took it, and the grace has passed:
    UNKNOWN, which order sync alone can never end."""
    emulator.faults.drop(path="/api/v3/order", method="POST")
    buy = intent("lost", "0.001", symbol="BTC/USDT", reference="20000")
    with pytest.raises(ccxt.NetworkError):
        place(rt.store, rt.exchange, buy)
    sync_orders(rt.store, rt.exchange, intent_grace_s=0)
    order = rt.store.get_order(buy.client_order_id)
    assert order is not None and order.status is OrderStatus.UNKNOWN
    return order


def unknown_in(store: Store, mode: TradingMode) -> Order:
    order = intent("by-hand", "0.01", symbol="BTC/USDT", mode=mode).model_copy(
        update={
            "status": OrderStatus.UNKNOWN,
            "status_source": StatusSource.SYNC_GRACE,
            "send_attempts": 1,
        }
    )
    return store.insert_order(order)


def test_real_write_off_takes_a_preview_then_its_token(
    real_rt: Runtime, emulator: BinanceEmulator
) -> None:
    order = unknown_on_the_exchange(real_rt, emulator)
    cid = order.client_order_id
    request = WriteOffRequest(client_order_id=order.client_order_id, reason=CHECKED)
    preview = write_off(real_rt, request, actor=ACTOR)
    assert preview.status == "needs_confirmation" and preview.token is not None
    still = real_rt.store.get_order(order.client_order_id)
    assert still is not None and still.status is OrderStatus.UNKNOWN  # nothing yet

    done = write_off(real_rt, request, actor=ACTOR, confirm=preview.token)
    assert done.order is not None
    assert (done.order.status, done.order.status_source) == (
        OrderStatus.FAILED,
        StatusSource.WRITTEN_OFF,
    )
    kept = real_rt.store.get_order(order.client_order_id)
    assert kept is not None and kept.status is OrderStatus.FAILED  # the record stays
    assert f"written off by {ACTOR}: {CHECKED}" in (kept.reason or "")
    [event] = real_rt.store.list_events(types=[EventType.ORDER_FAILED])
    assert event.client_order_id == order.client_order_id and "WRITTEN_OFF" in event.reasons
    assert event.data["written_off_by"] == ACTOR and event.data["write_off_reason"] == CHECKED
    assert sync_orders(real_rt.store, real_rt.exchange).checked == 0  # no longer live
    with pytest.raises(ConfirmationRefused):  # a token works once
        write_off(real_rt, request, actor=ACTOR, confirm=preview.token)
    with emulator.engine.lock:  # what the operator checked: the exchange never had it
        assert [o for o in emulator.engine.orders.values() if o.client_order_id == cid] == []


def test_a_token_for_another_reason_or_a_changed_order_writes_nothing_off(
    real_rt: Runtime,
) -> None:
    order = unknown_in(real_rt.store, TradingMode.REAL)
    request = WriteOffRequest(client_order_id=order.client_order_id, reason=CHECKED)
    token = write_off(real_rt, request, actor=ACTOR).token
    other = request.model_copy(update={"reason": "because"})
    with pytest.raises(ConfirmationRefused, match="different action"):
        write_off(real_rt, other, actor=ACTOR, confirm=token)
    token = write_off(real_rt, request, actor=ACTOR).token
    touched = real_rt.store.get_order(order.client_order_id)
    assert touched is not None
    real_rt.store.update_order(touched, expected_version=touched.version)  # sync looked again
    with pytest.raises(ConfirmationRefused, match="changed since the preview"):
        write_off(real_rt, request, actor=ACTOR, confirm=token)
    still = real_rt.store.get_order(order.client_order_id)
    assert still is not None and still.status is OrderStatus.UNKNOWN
    assert real_rt.store.list_events(types=[EventType.ORDER_FAILED]) == []


def test_only_unknown_orders_can_be_written_off(demo_rt: Runtime) -> None:
    with pytest.raises(ManualError, match="no order nope"):
        write_off(demo_rt, WriteOffRequest(client_order_id="nope", reason=CHECKED), actor=ACTOR)
    order = unknown_in(demo_rt.store, TradingMode.DEMO)
    request = WriteOffRequest(client_order_id=order.client_order_id, reason=CHECKED)
    done = write_off(demo_rt, request, actor=ACTOR)  # DEMO: at once
    assert done.status == "written_off" and done.token is None
    with pytest.raises(ManualError, match="only an UNKNOWN order"):
        write_off(demo_rt, request, actor=ACTOR)


def test_the_cli_previews_and_confirms_in_real(
    tmp_path: Path, tmp_data_dir: Path, emulator: BinanceEmulator
) -> None:
    config = tmp_path / "kestrel.toml"
    config.write_text(
        f'mode = "REAL"\ndata_dir = "{tmp_data_dir}"\n\n[exchange_api]\nurl = "{emulator.url}"\n'
        'rate_limit = false\n\n[[watchlist]]\nsymbol = "BTC/USDT"\ntimeframe = "1h"\n'
    )
    env = {
        "KESTREL_CONFIG": str(config),
        "KESTREL_BINANCE_API_KEY": KEY,
        "KESTREL_BINANCE_API_SECRET": SECRET,
    }
    settings = load_settings(mode="REAL", data_dir=tmp_data_dir)
    with trading_mode(TradingMode.REAL):
        store = open_store(settings, TradingMode.REAL)
        order = unknown_in(store, TradingMode.REAL)
        store.close()
    runner = CliRunner()
    cid = order.client_order_id
    short = runner.invoke(app, ["order", "write-off", cid, "--reason", " x "], env=env)
    assert short.exit_code == 2 and "at least 3 characters" in short.output
    first = runner.invoke(app, ["order", "write-off", cid, "--reason", CHECKED], env=env)
    assert first.exit_code == 0, first.output
    found = re.search(r"token: ([A-Z2-7]{16})", first.output)
    assert found, first.output
    args = ["order", "write-off", cid, "--reason", CHECKED, "--confirm", found.group(1)]
    second = runner.invoke(app, args, env=env)
    assert second.exit_code == 0 and "FAILED, via written_off" in second.output, second.output
    with trading_mode(TradingMode.REAL):
        store = open_store(settings, TradingMode.REAL)
        kept = store.get_order(cid)
        store.close()
    assert kept is not None and kept.status_source is StatusSource.WRITTEN_OFF
