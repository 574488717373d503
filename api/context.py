"""What one running API holds: the service, the token service, the rate limiter, limits.

Built once by `create_app`'s caller (the CLI, or a test) so every face shares them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from api.auth.keys import KeyBook
from api.auth.limits import RateLimiter
from api.auth.tiers import Principal
from api.auth.tokens import TokenService
from api.service import ApiService, Backend


class ApiConfig(BaseModel):
    """Knobs of the API process. The JWT secret defaults to a fresh random one per process
    (tokens then end with the process: a client logs in again with its key)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    access_ttl_s: int = Field(default=300, ge=10, le=3600)
    refresh_ttl_s: int = Field(default=8 * 3600, ge=60, le=30 * 24 * 3600)
    rate_per_s: float = Field(default=10.0, gt=0)
    burst: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_ws_message_bytes: int = Field(default=16 * 1024, ge=256)
    ws_queue: int = Field(default=1000, ge=1, description="updates a slow client may lag")
    ws_poll_s: float = Field(default=0.25, gt=0, description="how often the store is tailed")
    ws_price_s: float = Field(default=5.0, gt=0, description="how often subscribed prices poll")
    ws_recheck_s: float = Field(
        default=30.0, gt=0, description="how often a connection's token is checked again"
    )


@dataclass
class ApiContext:
    service: ApiService
    tokens: TokenService
    limiter: RateLimiter
    config: ApiConfig = field(default_factory=ApiConfig)

    @property
    def keys(self) -> KeyBook:
        return self.tokens.keys

    def authenticate(self, bearer: str, client: str) -> Principal:
        """A request's caller, with the key's rate limit applied."""
        who = self.tokens.authenticate(bearer, client)
        self.limiter.hit(who.key_id)
        return who


def build_context(
    backend: Backend,
    config: ApiConfig | None = None,
    *,
    jwt_secret: str | None = None,
    keys: KeyBook | None = None,
    limiter: RateLimiter | None = None,
) -> ApiContext:
    config = config or ApiConfig()
    book = keys or KeyBook(backend.store)
    tokens = TokenService(
        book,
        jwt_secret or secrets.token_urlsafe(48),
        mode=backend.mode,
        access_ttl_s=config.access_ttl_s,
        refresh_ttl_s=config.refresh_ttl_s,
        now=book.now,
    )
    return ApiContext(
        service=ApiService(backend),
        tokens=tokens,
        limiter=limiter or RateLimiter(config.rate_per_s, config.burst),
        config=config,
    )
