from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kestrel.config.settings import load_settings
from kestrel.errors import ConfigError
from kestrel.mode import TradingMode, current_mode, trading_mode


def test_defaults_are_demo() -> None:
    settings = load_settings()
    assert settings.mode is TradingMode.DEMO
    assert current_mode() is TradingMode.DEMO


def test_mode_context_restores_after_error() -> None:
    with pytest.raises(RuntimeError), trading_mode("real"):
        assert current_mode() is TradingMode.REAL
        raise RuntimeError
    assert current_mode() is TradingMode.DEMO


@pytest.mark.parametrize(
    ("override", "field", "fragment"),
    [
        ({"watchlist": [{"symbol": "BTCUSDT"}]}, "watchlist.0.symbol", "BASE/QUOTE"),
        ({"watchlist": [{"symbol": "BTC/USDT", "timeframe": "7m"}]}, "watchlist.0.timeframe", "1h"),
        (
            {"watchlist": [{"symbol": "BTC/USDT", "trade_amount_usd": -5}]},
            "watchlist.0.trade_amount_usd",
            "greater than or equal to 0",
        ),
        ({"mode": "PAPER"}, "mode", "DEMO"),
        ({"store_uri": "postgres://x"}, "store_uri", "mongodb://"),
        ({"paper": {"taker_fee": "0.5"}}, "paper.taker_fee", "less than 0.05"),
        ({"watchlist": [{"symbol": "BTC/USDT"}, {"symbol": "btc/usdt"}]}, "watchlist", "twice"),
    ],
)
def test_invalid_settings_name_field_value_and_rule(
    override: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**override)
    message = str(caught.value)
    assert field in message
    assert fragment in message


def test_environment_and_toml_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "k.toml"
    config.write_text('exchange = "Kraken"\n[[watchlist]]\nsymbol = "eth/usdt"\ntimeframe = "4h"\n')
    monkeypatch.setenv("KESTREL_CONFIG", str(config))
    monkeypatch.setenv("KESTREL_PAPER__STARTING_BALANCE", "2500.50")
    settings = load_settings()
    assert settings.exchange == "kraken"
    assert [(w.symbol, w.timeframe) for w in settings.watchlist] == [("ETH/USDT", "4h")]
    assert settings.paper.starting_balance == Decimal("2500.50")


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KESTREL_CONFIG", "/nonexistent/kestrel.toml")
    with pytest.raises(ConfigError, match="no such file"):
        load_settings()
