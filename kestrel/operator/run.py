"""Settings for one flow run: the installation's configuration, then the run's `config`.

Why a guard here: a flow's `config` parameter is typed by whoever starts a custom run (the
Prefect UI, `prefect deployment run --param`, an automation). That person must not be able to
switch the installation to REAL or add an exchange to the REAL whitelist; those two come only
from what the operator installed: kestrel.toml, KESTREL_* environment variables and the
Prefect blocks a deployment names. A run whose `config` asks for more is refused before
anything else runs, and the refusal is a SECURITY event in the installation's store.

The REAL exchange's endpoint (exchange_api.url) is the installation's too: pointing the signed
REAL client at another host would send it the API key, a whitelist bypass by other means.

Narrowing stays allowed, since it cannot move money: `mode = "DEMO"` under a REAL installation,
or a whitelist that is a subset of the installed one; in DEMO the endpoint only feeds prices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kestrel.config.settings import KestrelSettings, load_settings
from kestrel.mode import TradingMode, trading_mode

# The settings only the installation may widen (and that a subflow gets from the environment).
INSTALLATION_ONLY: tuple[str, ...] = ("mode", "real_exchange_whitelist")
URL_ENV = "KESTREL_EXCHANGE_API__URL"


def widened_fields(installed: KestrelSettings, asked: KestrelSettings) -> dict[str, Any]:
    """field -> (installed value, asked value) for each installation-only field that `asked`
    widens: REAL where the installation is DEMO, an exchange the installed whitelist lacks,
    another REAL endpoint."""
    widened: dict[str, Any] = {}
    if asked.mode is TradingMode.REAL and installed.mode is not TradingMode.REAL:
        widened["mode"] = (installed.mode.value, asked.mode.value)
    allowed = _whitelist(installed)
    if not _whitelist(asked) <= allowed:
        widened["real_exchange_whitelist"] = (
            list(installed.real_exchange_whitelist),
            list(asked.real_exchange_whitelist),
        )
    if asked.mode is TradingMode.REAL:
        # The REST and WebSocket endpoints alike: a stream can feed the prices REAL trades on.
        for field in ("url", "ws_url"):
            mine, theirs = (
                getattr(installed.exchange_api, field),
                getattr(asked.exchange_api, field),
            )
            if theirs != mine:
                widened[f"exchange_api.{field}"] = (mine, theirs)
    return widened


def guard_run_config(installed: KestrelSettings, asked: KestrelSettings, *, run: str) -> None:
    """Refuse (SecurityError, plus a SECURITY event in the installation's store) when the
    run's settings `asked` widen what the installation allows; `run` names the run."""
    widened = widened_fields(installed, asked)
    if not widened:
        return
    from kestrel.books.wallet import refuse
    from kestrel.store.router import open_store

    changes = "; ".join(f"{field} {old!r} -> {new!r}" for field, (old, new) in widened.items())
    asked_for = {field: {"installed": old, "asked": new} for field, (old, new) in widened.items()}
    message = (
        f"{run}: refused a run whose config parameter changes {changes}. The trading mode and "
        "the REAL exchange whitelist come only from the installation (kestrel.toml, KESTREL_* "
        "environment, blocks), never from a run's parameters"
    )
    with trading_mode(installed.mode):
        store = open_store(installed, installed.mode)
        try:
            error = refuse(
                store,
                message,
                run=run,
                fields=asked_for,
                reason="RUN_CONFIG_WIDENS_INSTALLATION",
            )
        finally:
            store.close()
    raise error


def settings_for_run(
    config: Mapping[str, Any] | None,
    *,
    installed_overrides: Mapping[str, Any] | None = None,
    run: str = "flow run",
) -> KestrelSettings:
    """The installation's settings (environment, kestrel.toml, `installed_overrides` from the
    blocks a deployment names) with the run's `config` on top, refused if `config` widens the
    mode or the REAL whitelist (see the module docstring)."""
    base = dict(installed_overrides or {})
    installed = load_settings(**base)
    if not config:
        return installed
    asked = load_settings(**deep_merge(base, config))
    guard_run_config(installed, asked, run=run)
    return asked


def _whitelist(settings: KestrelSettings) -> set[str]:
    return {name.strip().lower() for name in settings.real_exchange_whitelist}


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) in `top` replaces."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def installation_env(settings: KestrelSettings) -> dict[str, str]:
    """The installation-only fields as the KESTREL_* variables a subflow reads them from, so
    a mode or whitelist that came from a block reaches it without being a parameter."""
    env = {
        "KESTREL_MODE": settings.mode.value,
        "KESTREL_REAL_EXCHANGE_WHITELIST": json.dumps(list(settings.real_exchange_whitelist)),
    }
    if settings.exchange_api.url is not None:
        env[URL_ENV] = settings.exchange_api.url
    return env
