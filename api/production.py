"""Wiring for a real process (`kestrel api`): the configured mode's store, the runtime with
the live settings applied (rebuilt when they change, cached by kestrel.runtime), and the
JWT secret from KESTREL_API_JWT_SECRET (else a random one: tokens end with the process)."""

from __future__ import annotations

import os

from api.context import ApiConfig, ApiContext, build_context
from api.service import Backend
from kestrel.config.settings import KestrelSettings
from kestrel.mode import trading_mode
from kestrel.operator.live import effective_settings
from kestrel.runtime import Runtime, get_runtime
from kestrel.store import open_store

JWT_SECRET_ENV = "KESTREL_API_JWT_SECRET"


def production_backend(settings: KestrelSettings) -> Backend:
    store = open_store(settings, settings.mode)

    def runtime() -> Runtime:
        with trading_mode(settings.mode):
            return get_runtime(effective_settings(settings, store))

    return Backend(base=settings, store=store, runtime=runtime)


def production_context(settings: KestrelSettings, config: ApiConfig | None = None) -> ApiContext:
    return build_context(
        production_backend(settings), config, jwt_secret=os.environ.get(JWT_SECRET_ENV) or None
    )
