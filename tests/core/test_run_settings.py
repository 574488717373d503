"""A flow run's `config` parameter may not widen the installation's mode or REAL whitelist.

Anyone who can start a custom run (Prefect UI, `prefect deployment run --param`) types that
parameter; the mode and the whitelist come only from kestrel.toml, KESTREL_* and blocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.config.settings import load_settings
from kestrel.errors import SecurityError
from kestrel.mode import TradingMode
from kestrel.models import EventType
from kestrel.operator.run import URL_ENV, settings_for_run
from kestrel.store import open_store


@pytest.fixture
def installation(tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DEMO installation (environment only) whose books live in `tmp_data_dir`."""
    for name in ("KESTREL_MODE", "KESTREL_REAL_EXCHANGE_WHITELIST", "KESTREL_CONFIG", URL_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_data_dir.parent)  # no ./kestrel.toml
    monkeypatch.setenv("KESTREL_DATA_DIR", str(tmp_data_dir))
    return tmp_data_dir


def security_events(mode: TradingMode) -> list[str]:
    settings = load_settings()
    store = open_store(settings, mode)
    try:
        return [e.message for e in store.list_events(types=[EventType.SECURITY])]
    finally:
        store.close()


def test_config_cannot_switch_a_demo_installation_to_real(installation: Path) -> None:
    with pytest.raises(SecurityError, match="mode 'DEMO' -> 'REAL'"):
        settings_for_run({"mode": "REAL"}, run="trading-cycle")
    [message] = security_events(TradingMode.DEMO)
    assert "trading-cycle" in message and "mode 'DEMO' -> 'REAL'" in message


def test_config_cannot_widen_the_real_whitelist(
    installation: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_MODE", "REAL")
    with pytest.raises(SecurityError, match="real_exchange_whitelist"):
        settings_for_run(
            {"real_exchange_whitelist": ["binance", "kraken"], "exchange": "kraken"},
            run="manual-order",
        )
    [message] = security_events(TradingMode.REAL)
    assert "kraken" in message and "manual-order" in message


def test_config_cannot_move_the_real_endpoint(
    installation: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pointing the signed REAL client elsewhere would hand that host the API key."""
    monkeypatch.setenv("KESTREL_MODE", "REAL")
    with pytest.raises(SecurityError, match=r"exchange_api\.url None -> 'http://evil\.example'"):
        settings_for_run({"exchange_api": {"url": "http://evil.example"}})
    with pytest.raises(SecurityError, match=r"exchange_api\.ws_url None -> 'ws://evil\.example'"):
        settings_for_run({"exchange_api": {"ws_url": "ws://evil.example"}})
    demo = settings_for_run({"mode": "DEMO", "exchange_api": {"url": "http://127.0.0.1:9"}})
    assert demo.exchange_api.url == "http://127.0.0.1:9"  # DEMO: it only feeds prices


def test_narrowing_and_other_fields_apply(
    installation: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KESTREL_MODE", "REAL")
    monkeypatch.setenv("KESTREL_REAL_EXCHANGE_WHITELIST", '["binance", "kraken"]')
    same = settings_for_run({"mode": "REAL", "real_exchange_whitelist": ["kraken", "binance"]})
    assert same.mode is TradingMode.REAL
    narrowed = settings_for_run(
        {"mode": "DEMO", "real_exchange_whitelist": ["binance"], "risk": {"min_confidence": 0.7}}
    )
    assert narrowed.mode is TradingMode.DEMO
    assert narrowed.real_exchange_whitelist == ["binance"]
    assert narrowed.risk.min_confidence == 0.7
    assert security_events(TradingMode.REAL) == []
    assert security_events(TradingMode.DEMO) == []


def test_blocks_are_installation_configuration(installation: Path) -> None:
    """A trading-config block may set REAL; the run's config on top of it may not widen it."""
    installed = {"mode": "REAL"}
    assert settings_for_run(None, installed_overrides=installed).mode is TradingMode.REAL
    assert settings_for_run({"mode": "REAL"}, installed_overrides=installed).mode is (
        TradingMode.REAL
    )
    with pytest.raises(SecurityError):
        settings_for_run(
            {"real_exchange_whitelist": ["binance", "ftx"]}, installed_overrides=installed
        )


def test_deployment_parameters_and_subflows(installation: Path) -> None:
    """The Prefect layer: a deployment run's `config` is guarded; what a parent hands its
    subflow carries neither field, which reaches it through the exported environment."""
    from blocks.settings import exported, resolve_settings, subflow_config
    from kestrel.operator.run import installation_env

    with pytest.raises(SecurityError):
        resolve_settings(None, {"mode": "REAL"}, run="kestrel-order-sync")
    resolved = resolve_settings(None, {"risk": {"min_confidence": 0.8}})
    handed = subflow_config(resolved.settings)
    assert "mode" not in handed and "real_exchange_whitelist" not in handed
    with exported(resolved.secret_env):
        assert settings_for_run(handed) == resolved.settings

    real = settings_for_run(None, installed_overrides={"mode": "REAL"})  # from a block
    with exported(installation_env(real)):
        assert settings_for_run(subflow_config(real)).mode is TradingMode.REAL
