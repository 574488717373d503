"""One-time confirmation tokens for REAL-mode manual orders and closes.

- A token is 80 random bits shown once (16 base32 characters); the store keeps only its
  SHA-256, so reading the database does not let anyone confirm anything. A plain hash is
  enough: the secret is random, not a password, and lives for a minute.
- It is bound to the exact action (the request's fingerprint), the request id, and what the
  preview showed (the plan fingerprint and reference prices): the confirming call must ask
  for the same action, and the action is re-planned at confirmation and compared.
- It works once. Using it marks it used, in a compare-and-set write, before anything is
  sent, so two confirmations racing cannot both act. An attempt with the right token but
  other parameters burns it too: the operator previews again.
- Every refusal (unknown, used, expired, mismatch) is a SECURITY event, written with the
  state change, and raises ConfirmationRefused; nothing is placed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field

from kestrel.errors import ConcurrentUpdate, ConfirmationRefused
from kestrel.models import Event, EventType, utcnow
from kestrel.models.manual import AnyRequest
from kestrel.store.base import Store
from kestrel.store.cas import retry_on_conflict

CONFIRMATIONS_KEY = "manual_confirmations"
DEFAULT_TTL_S = 60.0
MAX_TTL_S = 600.0
RETENTION = timedelta(days=1)  # used/expired records kept this long, for clear refusals
CAS_ATTEMPTS = 20

Clock = Callable[[], datetime]


class Confirmable(Protocol):
    """What a token can be bound to: a manual request, or a REAL settings change
    (kestrel.operator.risk_changes.SettingsRequest)."""

    def fingerprint(self) -> str: ...

    def model_dump(self, *, mode: str = ..., exclude: Any = ...) -> dict[str, Any]: ...


class TokenRecord(BaseModel):
    action: dict[str, Any]
    fingerprint: str
    request_id: str
    plan: str = Field(description="fingerprint of the legs the preview showed")
    prices: dict[str, str] = Field(default_factory=dict, description="symbol -> preview price")
    issued_by: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = None
    outcome: str | None = None


class _Book(BaseModel):
    tokens: dict[str, TokenRecord] = Field(default_factory=dict)


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(10)).decode()


def normalise_token(token: str) -> str:
    """Tolerate what people type: spaces, dashes, lower case."""
    return "".join(ch for ch in token.upper() if ch.isalnum())


def token_hash(token: str) -> str:
    return hashlib.sha256(normalise_token(token).encode()).hexdigest()


def _load(store: Store) -> tuple[_Book, int]:
    found = store.get_state(CONFIRMATIONS_KEY)
    if found is None:
        return _Book(), 0
    return _Book.model_validate(found[0]), found[1]


def issue_token(
    store: Store,
    request: AnyRequest | Confirmable,
    *,
    request_id: str,
    plan: str,
    prices: Mapping[str, str],
    by: str,
    ttl_s: float = DEFAULT_TTL_S,
    now: Clock = utcnow,
) -> tuple[str, TokenRecord]:
    """Store a new token's hash bound to `request`; returns (token, record)."""
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be in (0, {MAX_TTL_S:g}] seconds, got {ttl_s}")
    token = new_token()
    moment = now()
    record = TokenRecord(
        action=request.model_dump(mode="json", exclude={"request_id"}),
        fingerprint=request.fingerprint(),
        request_id=request_id,
        plan=plan,
        prices=dict(prices),
        issued_by=by,
        issued_at=moment,
        expires_at=moment + timedelta(seconds=ttl_s),
    )

    def attempt() -> tuple[str, TokenRecord]:
        book, version = _load(store)
        book.tokens = {
            key: rec for key, rec in book.tokens.items() if rec.expires_at + RETENTION > moment
        }
        book.tokens[token_hash(token)] = record
        _save(store, book, version)
        return token, record

    return retry_on_conflict(attempt, what="confirmation tokens", attempts=CAS_ATTEMPTS)


def consume_token(
    store: Store,
    token: str,
    request: AnyRequest | Confirmable | None,
    *,
    request_id: str | None,
    by: str,
    now: Clock = utcnow,
) -> TokenRecord:
    """Mark the token used and return its record, or refuse (ConfirmationRefused).

    `request` None confirms whatever the token was issued for (Telegram's /confirm TOKEN);
    otherwise it must be the same action, and `request_id`, if given, the same id."""
    key = token_hash(token)

    def attempt() -> TokenRecord:
        book, version = _load(store)
        moment = now()
        record = book.tokens.get(key)
        refusal: tuple[str, str] | None = None
        if record is None:
            refusal = ("unknown", "unknown confirmation token: nothing was placed; preview again")
        elif record.used_at is not None:
            refusal = (
                "used",
                f"this confirmation token was already used at {record.used_at:%H:%M:%S} UTC "
                f"({record.outcome}); nothing was placed; preview again",
            )
        elif moment >= record.expires_at:
            refusal = (
                "expired",
                f"this confirmation token expired at {record.expires_at:%H:%M:%S} UTC: nothing "
                "was placed; preview again",
            )
        elif (request is not None and request.fingerprint() != record.fingerprint) or (
            request_id is not None and request_id != record.request_id
        ):
            refusal = (
                "mismatch",
                "this confirmation token was issued for a different action "
                f"({_describe(record)}); nothing was placed and the token is void; preview again",
            )
        if refusal is not None and refusal[0] in ("unknown", "used", "expired"):
            _security(store, key, refusal, by, moment)
            raise ConfirmationRefused(*refusal)
        assert record is not None
        record.used_at, record.used_by = moment, by
        record.outcome = "confirmed" if refusal is None else f"refused: {refusal[0]}"
        with store.atomic():
            _save(store, book, version)
            if refusal is not None:
                store.append_events([_security_event(store, key, refusal, by, moment)])
        if refusal is not None:
            raise ConfirmationRefused(*refusal)
        return record

    return retry_on_conflict(attempt, what="confirmation tokens", attempts=CAS_ATTEMPTS)


def peek_token(store: Store, token: str) -> TokenRecord | None:
    """The record `token` was issued with, without using it (to route `/confirm TOKEN` to
    the kind of action it confirms); None if unknown."""
    book, _ = _load(store)
    return book.tokens.get(token_hash(token))


def void_token(store: Store, token: str, outcome: str, now: Clock = utcnow) -> None:
    """Record why a consumed token's action did not run (e.g. the plan changed)."""
    key = token_hash(token)

    def attempt() -> None:
        book, version = _load(store)
        record = book.tokens.get(key)
        if record is None:
            return
        record.outcome = outcome
        _save(store, book, version)

    # Best effort, as before: endless contention only leaves the outcome less precise.
    with suppress(ConcurrentUpdate):
        retry_on_conflict(attempt, what="confirmation tokens", attempts=CAS_ATTEMPTS)


def _save(store: Store, book: _Book, version: int) -> None:
    store.put_state(CONFIRMATIONS_KEY, book.model_dump(mode="json"), expected_version=version)


def _describe(record: TokenRecord) -> str:
    action = record.action
    if action.get("kind") == "place":
        return (
            f"{action.get('type')} {action.get('side')} {action.get('amount')} "
            f"{action.get('amount_in')} {action.get('symbol')}"
        )
    if action.get("kind") == "close":
        return f"close {action.get('symbol')}"
    return str(action.get("kind"))


def _security_event(
    store: Store, key: str, refusal: tuple[str, str], by: str, moment: datetime
) -> Event:
    return Event(
        event_id=f"security:manual-confirm:{key[:16]}:{refusal[0]}:{moment.isoformat()}",
        type=EventType.SECURITY,
        mode=store.mode,
        reasons=[f"CONFIRMATION_{refusal[0].upper()}"],
        message=f"manual confirmation refused ({refusal[0]}) for {by}",
        data={"by": by, "reason": refusal[0], "token_hash_prefix": key[:16]},
        created_at=moment,
    )


def _security(store: Store, key: str, refusal: tuple[str, str], by: str, moment: datetime) -> None:
    store.append_events([_security_event(store, key, refusal, by, moment)])
