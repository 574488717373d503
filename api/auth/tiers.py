"""Tiers and the authenticated caller.

Why trade tiers are split by mode rather than one TRADE tier plus a mode flag: a key made for
trying things on DEMO must never be one setting away from real money. ADMIN (settings, key
management) does not imply any trade tier either; it implies READ only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kestrel.errors import KestrelError
from kestrel.mode import TradingMode


class Tier(StrEnum):
    READ = "READ"
    DEMO_TRADE = "DEMO_TRADE"
    REAL_TRADE = "REAL_TRADE"
    ADMIN = "ADMIN"


class AuthError(KestrelError):
    """Authentication or authorisation refused; `status` is the HTTP status to answer with
    (401: who are you, 403: not allowed, 429: slow down). The message never holds a secret."""

    def __init__(self, status: int, code: str, message: str, retry_after: float = 0) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


def required_trade_tier(mode: TradingMode) -> Tier:
    """The tier a trading action needs in `mode`."""
    return Tier.REAL_TRADE if mode is TradingMode.REAL else Tier.DEMO_TRADE


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, its tiers, and the mode its token is bound to."""

    key_id: str
    name: str
    tiers: frozenset[Tier]
    mode: TradingMode
    client: str = ""

    @property
    def actor(self) -> str:
        """How the audit trail names this caller (`by` in Kestrel's events)."""
        return f"api:{self.name}"

    def has(self, tier: Tier) -> bool:
        if tier is Tier.READ:
            return bool(self.tiers)  # every tier may read
        return tier in self.tiers

    def require(self, tier: Tier, action: str) -> None:
        if not self.has(tier):
            raise AuthError(
                403,
                "forbidden",
                f"{action} needs the {tier.value} tier; key {self.name!r} has "
                f"{', '.join(sorted(t.value for t in self.tiers)) or 'none'}",
            )

    def require_trade(self, mode: TradingMode, action: str) -> None:
        """A trading action in `mode`: the token must be bound to that mode (a DEMO token can
        never act on REAL) and the key must hold that mode's trade tier."""
        if self.mode is not mode:
            raise AuthError(
                403,
                "wrong_mode",
                f"{action}: this token is bound to {self.mode.value}, the API trades "
                f"{mode.value}; get a {mode.value} token",
            )
        self.require(required_trade_tier(mode), action)
