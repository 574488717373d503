"""One security model for every face of the API (REST, WebSocket, MCP).

- `tiers`: what a credential may do (READ, DEMO_TRADE, REAL_TRADE, ADMIN).
- `keys`: API keys, stored only as argon2 hashes in the mode's store.
- `tokens`: short-lived JWT access tokens bound to the trading mode, and single-use
  refresh tokens (a reused one revokes its whole family).
- `limits`: a per-key token bucket.
"""

from api.auth.keys import ApiKey, KeyBook, NewKey
from api.auth.limits import RateLimiter
from api.auth.tiers import AuthError, Principal, Tier, required_trade_tier
from api.auth.tokens import TokenPair, TokenService

__all__ = [
    "ApiKey",
    "AuthError",
    "KeyBook",
    "NewKey",
    "Principal",
    "RateLimiter",
    "Tier",
    "TokenPair",
    "TokenService",
    "required_trade_tier",
]
