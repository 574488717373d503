"""API keys: created once (the secret is shown once), stored only as an argon2 hash.

A key is one state document `api_key:<key_id>` in the store of the mode it serves, so a DEMO
database never grants anything on REAL. The secret reads `kst_<key_id>_<random>`: the id
lets verification load exactly one record, and the random part (256 bits) is what the hash
protects. Creating and revoking are SECURITY events (name, id, tiers; never the secret or
its hash). Nothing is deleted: a revoked key stays, marked, for the audit trail.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field, field_validator

from api.auth.tiers import AuthError, Tier
from kestrel.models import Event, EventType, utcnow
from kestrel.store.base import Store
from kestrel.store.cas import StateChange, update_state

KEY_PREFIX = "api_key:"
SECRET_PATTERN = re.compile(r"^kst_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

Clock = Callable[[], datetime]


class ApiKey(BaseModel):
    """A stored key: everything but the secret, which is only its argon2 hash."""

    key_id: str
    name: str
    secret_hash: str = Field(repr=False)
    tiers: list[Tier]
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    allowed_ips: list[str] = Field(default_factory=list, description="CIDRs; empty: any")
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @field_validator("allowed_ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR, e.g. 10.0.0.0/8") from (
                    None
                )
        return out

    def public(self) -> dict[str, object]:
        """What may be shown: no hash."""
        return self.model_dump(mode="json", exclude={"secret_hash"})

    def active(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or moment < self.expires_at)

    def allows_ip(self, client: str) -> bool:
        if not self.allowed_ips:
            return True
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net) for net in self.allowed_ips)


class NewKey(BaseModel):
    """What `create` answers: the record and the secret, the only time it is ever shown."""

    key: ApiKey
    secret: str = Field(repr=False)


class KeyBook:
    """Create, list, revoke and verify the API keys of one mode's store."""

    def __init__(
        self, store: Store, *, hasher: PasswordHasher | None = None, now: Clock = utcnow
    ) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self.now = now
        # verifying against this when the key id is unknown costs the same as a real check,
        # so the answer time does not tell which key ids exist
        self._decoy = self.hasher.hash(secrets.token_urlsafe(32))

    def create(
        self,
        name: str,
        tiers: Sequence[Tier | str],
        *,
        by: str,
        expires_at: datetime | None = None,
        allowed_ips: Sequence[str] = (),
    ) -> NewKey:
        if not NAME_PATTERN.match(name):
            raise ValueError("name: 1-64 letters, digits, _ . @ - (starting with a letter/digit)")
        chosen = sorted({Tier(str(t).upper()) for t in tiers})
        if not chosen:
            raise ValueError("tiers: give at least one of " + ", ".join(t.value for t in Tier))
        if any(k.name == name and k.revoked_at is None for k in self.list()):
            raise ValueError(f"name: an active key {name!r} exists; revoke it or pick another")
        moment = self.now()
        if expires_at is not None and expires_at <= moment:
            raise ValueError(f"expires_at {expires_at.isoformat()} is in the past")
        key_id = secrets.token_hex(6)
        secret = f"kst_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            key_id=key_id,
            name=name,
            secret_hash=self.hasher.hash(secret),
            tiers=chosen,
            created_at=moment,
            created_by=by,
            expires_at=expires_at,
            allowed_ips=list(allowed_ips),
        )
        event = self._event("created", key, by, moment)

        def change(doc: dict[str, object] | None) -> StateChange[None]:
            if doc is not None:  # 48 random bits collided: astronomically rare, refuse
                raise ValueError("key id collision; try again")
            return StateChange(result=None, value=key.model_dump(mode="json"), events=[event])

        update_state(self.store, KEY_PREFIX + key_id, change, what="api key")
        return NewKey(key=key, secret=secret)

    def list(self) -> list[ApiKey]:
        return [ApiKey.model_validate(doc) for _, doc, _ in self.store.list_state(KEY_PREFIX)]

    def get(self, key_id: str) -> ApiKey | None:
        found = self.store.get_state(KEY_PREFIX + key_id)
        return ApiKey.model_validate(found[0]) if found else None

    def find(self, ref: str) -> ApiKey:
        """By id or by name (the active one, else the newest)."""
        keys = self.list()
        matches = [k for k in keys if k.key_id == ref] or [k for k in keys if k.name == ref]
        if not matches:
            raise ValueError(f"no API key with id or name {ref!r}; see `kestrel api key list`")
        active = [k for k in matches if k.revoked_at is None]
        return (active or matches)[-1]

    def revoke(self, ref: str, *, by: str) -> ApiKey:
        target = self.find(ref)
        moment = self.now()

        def change(doc: dict[str, object] | None) -> StateChange[ApiKey]:
            key = ApiKey.model_validate(doc)
            if key.revoked_at is not None:
                return StateChange(result=key)
            key.revoked_at, key.revoked_by = moment, by
            event = self._event("revoked", key, by, moment)
            return StateChange(result=key, value=key.model_dump(mode="json"), events=[event])

        return update_state(self.store, KEY_PREFIX + target.key_id, change, what="api key")

    def verify(self, secret: str, client: str) -> ApiKey:
        """The key this secret belongs to, if it is active and allowed from `client`; else
        AuthError (401), with the same message for an unknown key and a wrong secret."""
        refused = AuthError(401, "bad_key", "invalid API key")
        match = SECRET_PATTERN.match(secret.strip())
        key = self.get(match.group(1)) if match else None
        try:
            self.hasher.verify(key.secret_hash if key else self._decoy, secret.strip())
        except (VerificationError, InvalidHashError):
            raise refused from None
        if key is None:
            raise refused
        self.check(key, client)
        return key

    def check(self, key: ApiKey, client: str) -> None:
        """Still usable now, from here (every request re-checks: revocation is immediate)."""
        moment = self.now()
        if key.revoked_at is not None:
            raise AuthError(401, "key_revoked", f"API key {key.name!r} was revoked")
        if key.expires_at is not None and moment >= key.expires_at:
            raise AuthError(401, "key_expired", f"API key {key.name!r} expired")
        if not key.allows_ip(client):
            raise AuthError(
                403, "ip_not_allowed", f"API key {key.name!r} is not allowed from {client}"
            )

    def _event(self, what: str, key: ApiKey, by: str, moment: datetime) -> Event:
        return Event(
            event_id=f"security:api-key:{key.key_id}:{what}",
            type=EventType.SECURITY,
            mode=self.store.mode,
            reasons=[f"API_KEY_{what.upper()}"],
            message=f"API key {key.name!r} ({key.key_id}) {what} by {by}",
            data={
                "key_id": key.key_id,
                "name": key.name,
                "tiers": [t.value for t in key.tiers],
                "by": by,
            },
            created_at=moment,
        )
