"""`kestrel order ...` and `kestrel settings ...` through typer's CliRunner, on the settings a
user would have: a kestrel.toml (KESTREL_CONFIG) and, for REAL, credentials in the
environment and the exchange URL pointed at the emulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app
from emulator import BinanceEmulator
from kestrel.config.settings import load_settings
from kestrel.mode import TradingMode
from kestrel.models import EventType, OrderStatus
from kestrel.store import open_store
from tests.manual.conftest import KEY, SECRET

DEMO_TOML = """
mode = "DEMO"
data_dir = "{data_dir}"

[paper]
market_data = "simulated"
seed = 3
slippage_bps = 0

[[watchlist]]
symbol = "BTC/USDT"
timeframe = "1h"
strategy = "SCALP/CONSERVATIVE"

[[watchlist]]
symbol = "ETH/USDT"
timeframe = "1h"
strategy = "SCALP/CONSERVATIVE"
"""

REAL_TOML = """
mode = "REAL"
data_dir = "{data_dir}"

[exchange_api]
url = "{url}"
rate_limit = false

[[watchlist]]
symbol = "BTC/USDT"
timeframe = "1h"
strategy = "SCALP/CONSERVATIVE"
"""


class Kestrel:
    """`kestrel` with one config file and environment."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.runner = CliRunner()
        self.env = {"KESTREL_CONFIG": str(config), **(env or {})}
        self.config = config

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture
def demo(tmp_path: Path, tmp_data_dir: Path) -> Kestrel:
    config = tmp_path / "kestrel.toml"
    config.write_text(DEMO_TOML.format(data_dir=tmp_data_dir))
    return Kestrel(config)


@pytest.fixture
def real(tmp_path: Path, tmp_data_dir: Path, emulator: BinanceEmulator) -> Kestrel:
    config = tmp_path / "kestrel.toml"
    config.write_text(REAL_TOML.format(data_dir=tmp_data_dir, url=emulator.url))
    return Kestrel(config, {"KESTREL_BINANCE_API_KEY": KEY, "KESTREL_BINANCE_API_SECRET": SECRET})


def token_in(output: str) -> str:
    found = re.search(r"confirmation token: ([A-Z2-7]{16})", output)
    assert found, output
    return found.group(1)


# -- DEMO ---------------------------------------------------------------------------------------


def test_place_shows_the_verdict_and_places(demo: Kestrel) -> None:
    out = demo.ok("order", "place", "BTC/USDT", "buy", "100", "--quote", "--request-id", "r1")
    assert "PLACED" in out and "request id r1" in out
    assert "[APPROVED]" in out and "- APPROVED" in out and "stop-loss" in out
    again = demo.ok("order", "place", "BTC/USDT", "buy", "100", "--quote", "--request-id", "r1")
    assert "ALREADY_DONE" in again
    conflict = demo("order", "place", "BTC/USDT", "buy", "200", "--quote", "--request-id", "r1")
    assert conflict.exit_code == 1 and "different action" in conflict.output


def test_blocked_orders_exit_1_with_the_reasons(demo: Kestrel) -> None:
    result = demo("order", "place", "BTC/USDT", "buy", "1", "--quote")
    assert result.exit_code == 1
    assert "BLOCKED" in result.output and "BELOW_MIN_NOTIONAL" in result.output


def test_dry_run_and_json(demo: Kestrel) -> None:
    out = demo.ok("order", "place", "ETH/USDT", "buy", "0.05", "--dry-run", "--json")
    assert '"status": "PREVIEW"' in out and '"approved": true' in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["place", "BTC/USDT", "hold", "1"], "side must be buy or sell"),
        (["place", "BTC/USDT", "buy", "lots"], "amount: 'lots' is not a number"),
        (["place", "BTC/USDT", "buy", "0"], "amount: must be a number > 0"),
        (["place", "BTC/USDT", "buy", "1", "--limit", "0"], "--limit: must be a number > 0"),
        (["place", "BTC/USDT", "sell", "1", "--sl", "5"], "give them on the buy"),
        (["place", "btc-usdt", "buy", "1"], "symbol: must be a spot symbol BASE/QUOTE"),
        (["place", "BTC/USDT", "buy", "1", "--request-id", "a b"], "request_id: must be 1-64"),
        (["close", "BTC/USDT", "--percent", "150"], "--percent must be in (0, 100]"),
        (["close", "BTC/USDT", "--percent", "5", "--amount", "1"], "not both"),
        (["reset", "--balance", "100"], "add --yes"),
        (["reset", "--balance", "100", "--extra", "BTC", "--yes"], "CURRENCY=AMOUNT"),
    ],
)
def test_bad_arguments_exit_2_and_say_why(demo: Kestrel, args: list[str], message: str) -> None:
    result = demo("order", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_refusals_exit_1(demo: Kestrel) -> None:
    not_listed = demo("order", "place", "SOL/USDT", "buy", "1")
    assert not_listed.exit_code == 1 and "not on the watchlist" in not_listed.output
    no_position = demo("order", "close", "BTC/USDT")
    assert no_position.exit_code == 1 and "no open BTC/USDT position" in no_position.output
    unknown = demo("order", "cancel", "nope")
    assert unknown.exit_code == 1 and "no order 'nope'" in unknown.output
    assert "NOTHING_TO_DO" in demo.ok("order", "close-all")


def test_limit_order_then_cancel(demo: Kestrel) -> None:
    out = demo.ok(
        "order", "place", "BTC/USDT", "buy", "0.01", "--limit", "1000", "--sl", "900", "--json"
    )
    client_id = re.search(r'"client_order_id": "(k[^"]+)"', out)
    assert client_id, out
    assert "canceled" in demo.ok("order", "cancel", client_id.group(1))


def test_reset_in_demo(demo: Kestrel, tmp_data_dir: Path) -> None:
    demo.ok("order", "place", "BTC/USDT", "buy", "100", "--quote")
    out = demo.ok("order", "reset", "--balance", "500", "--reason", "again", "--yes")
    assert "paper account reset to 500 USDT" in out and "archived as paper_archive:" in out


def test_settings_commands(demo: Kestrel) -> None:
    assert "risk.min_confidence: 0.55 -> 0.7" in demo.ok(
        "settings", "set", "risk.min_confidence", "0.7"
    )
    demo.ok("settings", "set", "trade_enabled", "off", "--symbol", "BTC/USDT")
    demo.ok("settings", "set", "signal_interval", "4h", "-s", "ETH/USDT")
    refused = demo("settings", "set", "risk.min_confidence", "2")
    assert refused.exit_code == 2
    assert "refused: risk.min_confidence: got '2'; Input should be less than or equal to 1" in (
        refused.output
    )
    missing = demo("settings", "set", "trade_enabled", "off")
    assert missing.exit_code == 2 and "is per symbol" in missing.output

    shown = demo.ok("settings", "show")
    assert "BTC/USDT" in shown and "trading OFF" in shown
    assert " * risk.min_confidence = 0.7" in shown
    assert "4h" in shown

    added = demo.ok("settings", "watch-add", "SOL/USDT", "--timeframe", "1h", "--amount", "50")
    assert "SOL/USDT" in added
    bogus = demo("settings", "watch-add", "NOPE/USDT")
    assert bogus.exit_code == 2 and "not a spot market on the paper exchange" in bogus.output
    demo.ok("settings", "watch-remove", "SOL/USDT")
    history = demo.ok("settings", "history")
    assert history.count(" by cli") == 5
    assert "nothing changed" not in demo.ok("settings", "reset", "--all")
    # the order path uses the settings in force: ETH/USDT now on 4h
    assert "ALREADY" not in demo.ok("order", "place", "ETH/USDT", "buy", "0.05", "--dry-run")


def test_live_settings_reach_the_order_path(demo: Kestrel) -> None:
    demo.ok("settings", "set", "trade_enabled", "false", "-s", "BTC/USDT")
    blocked = demo("order", "place", "BTC/USDT", "buy", "100", "--quote")
    assert blocked.exit_code == 1 and "SKIP_DISABLED_TRADE" in blocked.output


# -- REAL -------------------------------------------------------------------------------------


def test_real_place_needs_the_token(
    real: Kestrel, emulator: BinanceEmulator, tmp_data_dir: Path
) -> None:
    args = ("order", "place", "BTC/USDT", "buy", "0.01", "--request-id", "cli-1")
    preview = real.ok(*args)
    assert "NEEDS_CONFIRMATION" in preview and "--confirm" in preview
    token = token_in(preview)
    assert emulator.request_count("/api/v3/order", "POST") == 0

    wrong = real(*args, "--confirm", "AAAABBBBCCCCDDDD")
    assert wrong.exit_code == 1 and "unknown confirmation token" in wrong.output
    mismatch = real("order", "place", "BTC/USDT", "buy", "0.02", "--confirm", token)
    assert mismatch.exit_code == 1 and "different action" in mismatch.output
    token = token_in(real.ok(*args))  # the mismatch voided that token: preview again

    done = real.ok(*args, "--confirm", token)
    assert "PLACED" in done and "FILLED" in done
    reused = real(*args, "--confirm", token)
    assert reused.exit_code == 1 and "already used" in reused.output
    assert emulator.request_count("/api/v3/order", "POST") == 1

    settings = load_settings(mode="REAL", data_dir=tmp_data_dir)
    store = open_store(settings, TradingMode.REAL)
    try:
        [order] = store.list_orders()
        assert order.status is OrderStatus.FILLED
        assert store.list_events(types=[EventType.SECURITY])
    finally:
        store.close()


def test_real_close_and_confirm_command(real: Kestrel, emulator: BinanceEmulator) -> None:
    token = token_in(real.ok("order", "place", "BTC/USDT", "buy", "0.01", "--sl", "19000"))
    real.ok("order", "confirm", token)
    preview = real.ok("order", "close", "BTC/USDT", "--percent", "50")
    assert "NEEDS_CONFIRMATION" in preview
    assert "PLACED" in real.ok("order", "confirm", token_in(preview))
    close_all = real.ok("order", "close-all", "--request-id", "flat")
    assert "NEEDS_CONFIRMATION" in close_all
    done = real.ok("order", "close-all", "--request-id", "flat", "--confirm", token_in(close_all))
    assert "PLACED" in done and "FILLED" in done
    assert emulator.request_count("/api/v3/order", "POST") == 3


def test_real_reset_is_refused(real: Kestrel) -> None:
    result = real("order", "reset", "--balance", "100", "--yes")
    assert result.exit_code == 1 and "DEMO only" in result.output


def test_real_riskier_settings_need_the_token(real: Kestrel) -> None:
    """`kestrel settings set` in REAL: removing the daily loss limit prints a token and
    changes nothing; --confirm (or `settings confirm`) applies it; lowering applies at once."""
    preview = real.ok("settings", "set", "trading.gates.daily_loss_limit_pct", "none")
    assert "raises risk: trading.gates.daily_loss_limit_pct: 5 -> none" in preview
    assert "nothing changed yet" in preview
    assert "daily_loss_limit_pct = 5" in real.ok("settings", "show")
    wrong = real("settings", "set", "trading.gates.daily_loss_limit_pct", "9", "--confirm",
                 token_in(preview))  # fmt: skip
    assert wrong.exit_code == 1 and "different action" in wrong.output
    token = token_in(real.ok("settings", "set", "trading.gates.daily_loss_limit_pct", "none"))
    done = real.ok("settings", "confirm", token)
    assert "daily_loss_limit_pct: '5' -> None" in done
    assert "daily_loss_limit_pct = None" in real.ok("settings", "show")
    lowered = real.ok("settings", "set", "risk.max_open_positions", "2")
    assert "-> 2 (revision" in lowered
