"""Manual trading, controls and settings through REST, on the same kestrel.manual /
kestrel.operator.live functions the CLI and Telegram call: DEMO acts at once, REAL only with
a preview's token on a second call; wrong tiers, wrong modes and reused tokens never reach
the exchange (counted at the Binance emulator's order endpoint)."""

from __future__ import annotations

from typing import Any

from api.auth.tokens import TokenService
from emulator import BinanceEmulator
from kestrel.mode import TradingMode
from kestrel.models import EventType
from kestrel.runtime import Runtime
from tests.manual.conftest import advance

from .conftest import SECRET, Served

BUY = {"kind": "place", "symbol": "BTC/USDT", "side": "buy", "amount": "0.01"}


def creations(emu: BinanceEmulator) -> int:
    return emu.request_count("/api/v3/order", "POST")


def audit_actions(api: Served) -> list[tuple[Any, Any, Any]]:
    events = api.ctx.service.store.list_events(types=[EventType.SECURITY])
    return [
        (e.data["key"], e.data["action"], e.data["result"])
        for e in events
        if "API_AUDIT" in e.reasons
    ]


def test_demo_buy_then_close_from_rest(demo_api: Served, demo_rt: Runtime) -> None:
    secret = demo_api.key("trader", "READ", "DEMO_TRADE")
    with demo_api.client(secret) as http:
        placed = http.post("/api/manual", json={"request": BUY}).json()
        assert placed["status"] == "PLACED", placed
        advance(demo_rt)
        [position] = http.get("/api/positions").json()
        assert position["symbol"] == "BTC/USDT" and position["amount"] == "0.00999"  # fee in BTC
        decisions = http.get("/api/decisions").json()
        assert decisions[-1]["type"] == "TRADE_DECIDED" and decisions[-1]["reasons"]
        closed = http.post(
            "/api/manual", json={"request": {"kind": "close", "symbol": "BTC/USDT"}}
        ).json()
        assert closed["status"] == "PLACED", closed
        advance(demo_rt)
        assert http.get("/api/positions").json() == []
        assert len(http.get("/api/orders/closed").json()) == 2
    assert audit_actions(demo_api) == [
        ("trader", "manual.place", "PLACED"),
        ("trader", "manual.close", "PLACED"),
    ]


def test_demo_cancel_a_limit_order(demo_api: Served) -> None:
    secret = demo_api.key("trader", "READ", "DEMO_TRADE")
    limit = {**BUY, "type": "limit", "price": "19000"}
    with demo_api.client(secret) as http:
        placed = http.post("/api/manual", json={"request": limit}).json()
        [order] = http.get("/api/orders/open").json()
        answer = http.delete(f"/api/orders/{order['client_order_id']}")
        assert answer.status_code == 200 and answer.json()["canceled"] is True
        again = http.delete(f"/api/orders/{order['client_order_id']}")
        assert (again.status_code, again.json()["error"]) == (409, "refused")
    assert placed["status"] == "PLACED"


def test_real_order_needs_preview_then_confirmation(
    real_api: Served, emulator: BinanceEmulator
) -> None:
    secret = demo_secret = real_api.key("real-trader", "READ", "REAL_TRADE")
    with real_api.client(secret) as http:
        preview = http.post("/api/manual", json={"request": BUY}).json()
        assert preview["status"] == "NEEDS_CONFIRMATION" and preview["token"]
        assert creations(emulator) == 0
        token = preview["token"]
        done = http.post("/api/manual", json={"request": BUY, "confirm": token}).json()
        assert done["status"] == "PLACED", done
        assert creations(emulator) == 1
        reused = http.post("/api/manual", json={"request": BUY, "confirm": token})
        assert (reused.status_code, reused.json()["error"]) == (403, "confirmation_used")
        reused = http.post("/api/manual/confirm", json={"token": token})
        assert (reused.status_code, reused.json()["error"]) == (403, "confirmation_used")
    assert creations(emulator) == 1
    assert demo_secret not in str(real_api.ctx.service.store.list_events())


def test_real_confirm_endpoint_and_another_keys_token(
    real_api: Served, emulator: BinanceEmulator
) -> None:
    alice = real_api.key("alice", "READ", "REAL_TRADE")
    bob = real_api.key("bob", "READ", "REAL_TRADE")
    with real_api.client(alice) as a, real_api.client(bob) as b:
        token = a.post("/api/manual", json={"request": BUY}).json()["token"]
        stolen = b.post("/api/manual/confirm", json={"token": token})
        assert (stolen.status_code, stolen.json()["error"]) == (403, "confirmation_not_yours")
        assert creations(emulator) == 0
        done = a.post("/api/manual/confirm", json={"token": token}).json()
        assert done["status"] == "PLACED"
    assert creations(emulator) == 1


def test_demo_tier_and_demo_token_never_act_on_real(
    real_api: Served, emulator: BinanceEmulator
) -> None:
    demo_only = real_api.key("demo-only", "READ", "DEMO_TRADE")
    both = real_api.key("both", "READ", "DEMO_TRADE", "REAL_TRADE", "ADMIN")
    with real_api.client(demo_only) as http:
        answer = http.post("/api/manual", json={"request": BUY})
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden")
        answer = http.post("/api/control/pause", json={})
        assert answer.status_code == 403
    # a token minted for DEMO (same signing secret, same key store) is refused by REAL
    demo_tokens = TokenService(real_api.ctx.keys, SECRET, mode=TradingMode.DEMO)
    demo_token = demo_tokens.login(both, "127.0.0.1").access_token
    with real_api.client() as http:
        answer = http.post(
            "/api/manual",
            json={"request": BUY},
            headers={"Authorization": f"Bearer {demo_token}"},
        )
        assert (answer.status_code, answer.json()["error"]) == (401, "wrong_mode")
    assert creations(emulator) == 0
    assert real_api.ctx.service.store.list_orders() == []


def test_real_riskier_setting_needs_confirmation(real_api: Served) -> None:
    admin = real_api.key("admin", "READ", "ADMIN")
    change = {"action": "set", "key": "risk.max_open_positions", "value": "20"}
    with real_api.client(admin) as http:
        [pending] = http.post("/api/settings", json={"request": change}).json()
        assert pending["needs_confirmation"] and pending["token"] and not pending["changed"]
        shown = http.get("/api/settings").json()["settings"]
        assert shown["risk.max_open_positions"] == 10
        [done] = http.post(
            "/api/settings", json={"request": change, "confirm": pending["token"]}
        ).json()
        assert done["changed"] and done["new"] == 20
        again = http.post("/api/settings", json={"request": change, "confirm": pending["token"]})
        assert again.status_code == 403 and again.json()["error"] == "confirmation_used"
        safer = {"action": "set", "key": "risk.max_open_positions", "value": "5"}
        [applied] = http.post("/api/settings", json={"request": safer}).json()
        assert applied["changed"] and not applied["needs_confirmation"]
        bad = http.post(
            "/api/settings", json={"request": {"action": "set", "key": "nope", "value": "1"}}
        )
        assert (bad.status_code, bad.json()["error"]) == (422, "bad_setting")
    actions = [a[1:] for a in audit_actions(real_api)]
    assert actions[:3] == [
        ("settings.set", ["needs_confirmation"]),
        ("settings.set", ["changed"]),
        ("settings.set", "refused: confirmation_used"),
    ]


def test_demo_move_stop_from_rest(demo_api: Served, demo_rt: Runtime) -> None:
    secret = demo_api.key("trader", "READ", "DEMO_TRADE")
    with demo_api.client(secret) as http:
        assert http.post("/api/manual", json={"request": BUY}).json()["status"] == "PLACED"
        advance(demo_rt)
        moved = http.post(
            "/api/manual",
            json={"request": {"kind": "move_levels", "symbol": "BTC/USDT", "stop_loss": "19500"}},
        ).json()
        assert moved["status"] == "APPLIED", moved
        [position] = http.get("/api/positions").json()
        assert position["stop_loss"] == "19500"
        wrong = http.post(
            "/api/manual", json={"request": {"kind": "move_levels", "symbol": "BTC/USDT"}}
        )
        assert (wrong.status_code, wrong.json()["error"]) == (422, "bad_request")
