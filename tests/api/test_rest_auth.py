"""REST through a real uvicorn with httpx: keys, tokens, tiers, refresh replay, rate limits,
audit, and that no secret ever comes back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import jwt

from api.auth.keys import KEY_PREFIX
from kestrel.models import EventType

from .conftest import Served


def audit(api: Served) -> list[dict[str, object]]:
    events = api.ctx.service.store.list_events(types=[EventType.SECURITY])
    return [e.data for e in events if "API_AUDIT" in e.reasons]


def test_health_needs_no_key_but_everything_else_does(demo_api: Served) -> None:
    with demo_api.client() as http:
        assert http.get("/api/health").json() == {"status": "ok", "mode": "DEMO"}
        answer = http.get("/api/status")
        assert answer.status_code == 401
        assert answer.json()["error"] == "no_token"
        answer = http.get("/api/status", headers={"Authorization": "Bearer nonsense"})
        assert (answer.status_code, answer.json()["error"]) == (401, "bad_token")


def test_key_is_stored_only_as_an_argon2_hash(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    [(_, doc, _)] = demo_api.ctx.service.store.list_state(KEY_PREFIX)
    assert secret not in str(doc)
    assert doc["secret_hash"].startswith("$argon2")
    events = demo_api.ctx.service.store.list_events(types=[EventType.SECURITY])
    assert secret not in str([e.model_dump() for e in events])
    assert doc["secret_hash"] not in str([e.model_dump() for e in events])


def test_login_and_read_with_a_read_key(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    pair = demo_api.login(secret)
    assert pair["mode"] == "DEMO" and pair["tiers"] == ["READ"]
    claims = jwt.decode(str(pair["access_token"]), options={"verify_signature": False})
    assert claims["mode"] == "DEMO" and claims["aud"] == "kestrel-api:DEMO"
    with demo_api.client(secret) as http:
        status = http.get("/api/status").json()
        assert status["mode"] == "DEMO" and status["emergency_stop"]["active"] is False
        assert http.get("/api/positions").json() == []
        assert http.get("/api/orders/open").json() == []
        balances = http.get("/api/balances").json()["balances"]
        assert Decimal(balances["USDT"]["total"]) == Decimal("10000")
        assert secret not in str(status) + str(balances)


def test_wrong_secret_and_unknown_key_get_the_same_answer(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    with demo_api.client() as http:
        wrong = http.post("/api/auth/token", json={"api_key": secret[:-2] + "zz"})
        unknown = http.post("/api/auth/token", json={"api_key": "kst_000000000000_" + "a" * 43})
        garbage = http.post("/api/auth/token", json={"api_key": "hello"})
    assert wrong.status_code == unknown.status_code == garbage.status_code == 401
    assert wrong.json() == unknown.json() == garbage.json()
    assert secret not in wrong.text


def test_read_key_cannot_change_anything(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    with demo_api.client(secret) as http:
        answer = http.post("/api/control/pause", json={"reason": "x"})
        assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
        answer = http.post("/api/manual", json={"request": {"kind": "close_all"}})
        assert answer.status_code == 403
        answer = http.post(
            "/api/settings",
            json={"request": {"action": "set", "key": "risk.min_confidence", "value": "0.9"}},
        )
        assert answer.status_code == 403
        assert http.get("/api/status").json()["emergency_stop"]["active"] is False
    assert demo_api.ctx.service.store.list_orders() == []


def test_pause_resume_audited_with_the_key_name(demo_api: Served) -> None:
    secret = demo_api.key("operator", "READ", "DEMO_TRADE")
    with demo_api.client(secret) as http:
        assert http.post("/api/control/pause", json={"reason": "lunch"}).status_code == 200
        stop = http.get("/api/status").json()["emergency_stop"]
        assert stop["active"] is True and stop["set_by"] == "api:operator"
        assert http.post("/api/control/resume", json={}).json()["emergency_stop"]["active"] is False
    trail = audit(demo_api)
    assert [(a["key"], a["action"], a["result"]) for a in trail] == [
        ("operator", "pause", "done"),
        ("operator", "resume", "done"),
    ]
    assert secret not in str(trail)


def test_expired_access_token_is_refused(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    with demo_api.client(secret) as http:
        assert http.get("/api/status").status_code == 200
        demo_api.clock.tick(demo_api.ctx.config.access_ttl_s + 1)
        answer = http.get("/api/status")
    assert (answer.status_code, answer.json()["error"]) == (401, "token_expired")


def test_tampered_token_is_refused(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    token = str(demo_api.login(secret)["access_token"])
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["tiers"] = ["READ", "DEMO_TRADE", "ADMIN"]
    forged = jwt.encode(claims, "a-guessed-secret-that-is-long-enough-32", algorithm="HS256")
    head, body, sig = token.split(".")
    flipped = f"{head}.{body}.{sig[:-3]}{'AAA' if sig[-3:] != 'AAA' else 'BBB'}"
    with httpx.Client(base_url=demo_api.url) as http:
        for bad in (forged, flipped, token + "x"):
            answer = http.post(
                "/api/control/pause", headers={"Authorization": f"Bearer {bad}"}, json={}
            )
            assert (answer.status_code, answer.json()["error"]) == (401, "bad_token")
    assert demo_api.ctx.service.store.get_state("emergency_stop") is None


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_login(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    first = demo_api.login(secret)
    with httpx.Client(base_url=demo_api.url) as http:
        second = http.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        replay = http.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert (replay.status_code, replay.json()["error"]) == (401, "refresh_replayed")
        # the thief's replay also kills the legitimate newer refresh token of that login
        newer = second.json()["refresh_token"]
        after = http.post("/api/auth/refresh", json={"refresh_token": newer})
        assert (after.status_code, after.json()["error"]) == (401, "refresh_revoked")
        unknown = http.post("/api/auth/refresh", json={"refresh_token": "nope"})
        assert unknown.status_code == 401
    reasons = [
        r
        for e in demo_api.ctx.service.store.list_events(types=[EventType.SECURITY])
        for r in e.reasons
    ]
    assert "API_REFRESH_REPLAYED" in reasons


def test_revoked_key_stops_working_at_once(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    with demo_api.client(secret) as http:
        assert http.get("/api/status").status_code == 200
        demo_api.ctx.keys.revoke("reader", by="pytest")
        answer = http.get("/api/status")
    assert (answer.status_code, answer.json()["error"]) == (401, "key_revoked")


def test_expired_key_and_ip_allow_list(demo_api: Served) -> None:
    old = demo_api.key("old", "READ", expires_at=demo_api.clock.now + timedelta(minutes=1))
    elsewhere = demo_api.key("elsewhere", "READ", allowed_ips=["10.0.0.0/8"])
    here = demo_api.key("here", "READ", allowed_ips=["127.0.0.1/32"])
    demo_api.clock.tick(120)
    with httpx.Client(base_url=demo_api.url) as http:
        answer = http.post("/api/auth/token", json={"api_key": old})
        assert (answer.status_code, answer.json()["error"]) == (401, "key_expired")
        answer = http.post("/api/auth/token", json={"api_key": elsewhere})
        assert (answer.status_code, answer.json()["error"]) == (403, "ip_not_allowed")
        assert http.post("/api/auth/token", json={"api_key": here}).status_code == 200


def test_rate_limit_per_key(demo_api: Served) -> None:
    from api.auth.limits import RateLimiter

    ticks = [0.0]
    demo_api.ctx.limiter = RateLimiter(rate=1, burst=3, clock=lambda: ticks[0])
    fast = demo_api.key("fast", "READ")
    other = demo_api.key("other", "READ")
    with demo_api.client(fast) as http, demo_api.client(other) as calm:
        codes = [http.get("/api/health").status_code]  # no key: not counted
        codes += [http.get("/api/positions").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 200, 429]
        limited = http.get("/api/positions")
        assert limited.json()["error"] == "rate_limited" and "Retry-After" in limited.headers
        assert calm.get("/api/positions").status_code == 200  # another key has its own bucket
        ticks[0] += 1.0
        assert http.get("/api/positions").status_code == 200


def test_oversized_and_malformed_bodies_are_refused_before_any_action(demo_api: Served) -> None:
    secret = demo_api.key("operator", "READ", "DEMO_TRADE")
    with demo_api.client(secret) as http:
        big = http.post(
            "/api/control/pause",
            content=b'{"reason": "' + b"x" * 70_000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert (big.status_code, big.json()["error"]) == (413, "too_large")
        bad = http.post(
            "/api/control/pause", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert (bad.status_code, bad.json()["error"]) == (422, "bad_request")
        wrong = http.post(
            "/api/manual",
            json={
                "request": {"kind": "place", "symbol": "BTC/USDT", "side": "buy", "amount": "-1"}
            },
        )
        assert (wrong.status_code, wrong.json()["error"]) == (422, "bad_request")
        assert "amount" in wrong.json()["detail"]
    assert demo_api.ctx.service.store.get_state("emergency_stop") is None
    assert demo_api.ctx.service.store.list_orders() == []


def test_openapi_lists_the_operations(demo_api: Served) -> None:
    with demo_api.client() as http:
        paths = http.get("/openapi.json").json()["paths"]
    for path in (
        "/api/status",
        "/api/manual",
        "/api/manual/confirm",
        "/api/control/pause",
        "/api/settings",
        "/api/decisions",
        "/api/auth/refresh",
    ):
        assert path in paths


def test_refused_login_is_a_security_event_without_the_secret(demo_api: Served) -> None:
    secret = demo_api.key("reader", "READ")
    wrong = secret[:-4] + "abcd"
    with httpx.Client(base_url=demo_api.url) as http:
        assert http.post("/api/auth/token", json={"api_key": wrong}).status_code == 401
    events = demo_api.ctx.service.store.list_events(types=[EventType.SECURITY])
    [refused] = [e for e in events if "API_LOGIN_REFUSED" in e.reasons]
    assert refused.data["code"] == "bad_key" and refused.data["key_id"] == secret[4:16]
    text = str([e.model_dump() for e in events])
    assert wrong not in text and secret not in text and secret[17:] not in text
