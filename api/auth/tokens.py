"""Access and refresh tokens.

- Access: a JWT (HS256) that lives minutes, bound to the trading mode twice over: a `mode`
  claim and the audience `kestrel-api:<MODE>`, so a DEMO token is refused by anything acting
  on REAL even if both servers share a signing secret. Expiry is checked against the
  injectable clock (not PyJWT's wall clock) so tests control time.
- Refresh: an opaque random string, stored only as its SHA-256 (`api_refresh:<hash>`), used
  once: refreshing marks it used (compare-and-set, so two racing refreshes cannot both win)
  and issues a new pair in the same family. Presenting a used one is a replay: the family
  is revoked (every refresh token descended from the same login) and a SECURITY event says so.
- Every use re-reads the key, so a revoked or expired key stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

import jwt
from pydantic import BaseModel

from api.auth.keys import ApiKey, KeyBook
from api.auth.tiers import AuthError, Principal, Tier
from kestrel.errors import ConcurrentUpdate
from kestrel.mode import TradingMode
from kestrel.models import Event, EventType, utcnow
from kestrel.store.cas import StateChange, update_state

REFRESH_PREFIX = "api_refresh:"
FAMILY_PREFIX = "api_refresh_family:"
ALGORITHM = "HS256"
ISSUER = "kestrel"

Clock = Callable[[], datetime]


def audience(mode: TradingMode) -> str:
    return f"kestrel-api:{mode.value}"


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    mode: TradingMode
    tiers: list[Tier]


class _Refresh(BaseModel):
    key_id: str
    family: str
    mode: TradingMode
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    """Issues and checks tokens for one mode's API."""

    def __init__(
        self,
        keys: KeyBook,
        secret: str,
        *,
        mode: TradingMode,
        access_ttl_s: int = 300,
        refresh_ttl_s: int = 8 * 3600,
        now: Clock = utcnow,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT signing secret must be at least 32 characters")
        self.keys = keys
        self._secret = secret
        self.mode = mode
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.now = now

    @property
    def store(self) -> Any:
        return self.keys.store

    # -- issuing -----------------------------------------------------------------------------
    def login(self, api_key: str, client: str) -> TokenPair:
        """Exchange an API key for a token pair in this API's mode. A refused key is a
        SECURITY event naming the client and the key id it claimed (never the secret)."""
        try:
            key = self.keys.verify(api_key, client)
        except AuthError as exc:
            self._refused_login(api_key, client, exc)
            raise
        return self._issue(key, family=secrets.token_hex(8))

    def _refused_login(self, api_key: str, client: str, exc: AuthError) -> None:
        from api.auth.keys import SECRET_PATTERN

        claimed = SECRET_PATTERN.match(api_key.strip())
        moment = self.now()
        self.store.append_events(
            [
                Event(
                    event_id=f"security:api-login:{client}:{moment.isoformat()}:{secrets.token_hex(4)}",
                    type=EventType.SECURITY,
                    mode=self.store.mode,
                    reasons=["API_LOGIN_REFUSED"],
                    message=f"API login refused ({exc.code}) from {client or 'unknown'}",
                    data={
                        "client": client,
                        "code": exc.code,
                        "key_id": claimed.group(1) if claimed else None,
                    },
                    created_at=moment,
                )
            ]
        )

    def refresh(self, refresh_token: str, client: str) -> TokenPair:
        digest = _digest(refresh_token)
        moment = self.now()

        def change(doc: dict[str, Any] | None) -> StateChange[tuple[_Refresh, bool]]:
            if doc is None:
                raise AuthError(401, "bad_refresh", "unknown refresh token; log in again")
            record = _Refresh.model_validate(doc)
            if record.used_at is not None:
                return StateChange(result=(record, True))  # a replay: handled below
            if moment >= record.expires_at:
                raise AuthError(401, "refresh_expired", "refresh token expired; log in again")
            record.used_at = moment
            return StateChange(result=(record, False), value=record.model_dump(mode="json"))

        record, replayed = update_state(
            self.store, REFRESH_PREFIX + digest, change, what="refresh token"
        )
        if replayed:
            self._revoke_family(record, client)
            raise AuthError(
                401,
                "refresh_replayed",
                "this refresh token was already used: every token of this login is revoked; "
                "log in again with the API key",
            )
        if self._family_revoked(record.family):
            raise AuthError(401, "refresh_revoked", "this login was revoked; log in again")
        if record.mode is not self.mode:
            raise AuthError(401, "wrong_mode", f"refresh token is for {record.mode.value}")
        key = self.keys.get(record.key_id)
        if key is None:
            raise AuthError(401, "bad_refresh", "unknown key; log in again")
        self.keys.check(key, client)
        return self._issue(key, family=record.family)

    def _issue(self, key: ApiKey, *, family: str) -> TokenPair:
        moment = self.now()
        claims = {
            "iss": ISSUER,
            "aud": audience(self.mode),
            "sub": key.key_id,
            "name": key.name,
            "tiers": [t.value for t in key.tiers],
            "mode": self.mode.value,
            "typ": "access",
            "iat": int(moment.timestamp()),
            "exp": int(moment.timestamp()) + self.access_ttl_s,
            "jti": secrets.token_hex(8),
        }
        access = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        refresh = secrets.token_urlsafe(32)
        record = _Refresh(
            key_id=key.key_id,
            family=family,
            mode=self.mode,
            issued_at=moment,
            expires_at=moment + timedelta(seconds=self.refresh_ttl_s),
        )
        self.store.put_state(
            REFRESH_PREFIX + _digest(refresh), record.model_dump(mode="json"), expected_version=0
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=self.access_ttl_s,
            mode=self.mode,
            tiers=list(key.tiers),
        )

    # -- checking ----------------------------------------------------------------------------
    def authenticate(self, access_token: str, client: str) -> Principal:
        """The caller behind a bearer token, or AuthError 401 saying what is wrong."""
        try:
            claims = jwt.decode(
                access_token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience(self.mode),
                issuer=ISSUER,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["exp", "sub", "aud", "iss", "mode"],
                },
            )
        except jwt.InvalidAudienceError:
            raise AuthError(
                401, "wrong_mode", f"this token is not for this API's mode ({self.mode.value})"
            ) from None
        except jwt.InvalidTokenError:
            raise AuthError(
                401, "bad_token", "invalid access token (malformed or tampered)"
            ) from None
        if claims.get("typ") != "access" or claims.get("mode") != self.mode.value:
            raise AuthError(401, "wrong_mode", "this token is not an access token for this mode")
        if self.now().timestamp() >= float(claims["exp"]):
            raise AuthError(401, "token_expired", "access token expired; refresh it")
        key = self.keys.get(str(claims["sub"]))
        if key is None:
            raise AuthError(401, "bad_token", "unknown key")
        self.keys.check(key, client)
        # the key's tiers now (a narrowed key narrows its live tokens), within the token's
        tiers = frozenset(key.tiers) & frozenset(Tier(t) for t in claims.get("tiers", []))
        return Principal(
            key_id=key.key_id, name=key.name, tiers=tiers, mode=self.mode, client=client
        )

    # -- replay ------------------------------------------------------------------------------
    def _family_revoked(self, family: str) -> bool:
        found = self.store.get_state(FAMILY_PREFIX + family)
        return bool(found and found[0].get("revoked"))

    def _revoke_family(self, record: _Refresh, client: str) -> None:
        moment = self.now()
        key = self.keys.get(record.key_id)
        name = key.name if key else record.key_id
        event = Event(
            event_id=f"security:api-refresh-replay:{record.family}:{moment.isoformat()}",
            type=EventType.SECURITY,
            mode=self.store.mode,
            reasons=["API_REFRESH_REPLAYED"],
            message=f"a used refresh token of API key {name!r} was presented again from "
            f"{client or 'unknown'}; that login is revoked",
            data={"key_id": record.key_id, "name": name, "family": record.family},
            created_at=moment,
        )

        def change(doc: dict[str, Any] | None) -> StateChange[None]:
            if doc and doc.get("revoked"):
                return StateChange(result=None)
            value = {"revoked": True, "at": moment.isoformat(), "key_id": record.key_id}
            return StateChange(result=None, value=value, events=[event])

        with suppress(ConcurrentUpdate):  # someone else revoked it meanwhile: the same outcome
            update_state(self.store, FAMILY_PREFIX + record.family, change, what="refresh family")
