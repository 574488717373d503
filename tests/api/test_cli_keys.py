"""`kestrel api key create / list / revoke` through typer's CliRunner on a DEMO config."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from kestrel.config.settings import load_settings
from kestrel.mode import TradingMode
from kestrel.store import open_store

TOML = """
mode = "DEMO"
data_dir = "{data_dir}"

[paper]
market_data = "simulated"
seed = 3

[[watchlist]]
symbol = "BTC/USDT"
timeframe = "1h"
"""


def test_create_list_revoke(tmp_path: Path, tmp_data_dir: Path) -> None:
    config = tmp_path / "kestrel.toml"
    config.write_text(TOML.format(data_dir=tmp_data_dir))
    env = {"KESTREL_CONFIG": str(config)}
    runner = CliRunner()

    made = runner.invoke(
        app,
        ["api", "key", "create", "dash", "--tier", "read", "--tier", "DEMO_TRADE", "--days", "30"],
        env=env,
    )
    assert made.exit_code == 0, made.output
    secret = re.search(r"secret \(shown once, store it now\): (\S+)", made.output)
    assert secret is not None and secret.group(1).startswith("kst_")

    listed = runner.invoke(app, ["api", "key", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    [key] = json.loads(listed.output)
    assert key["name"] == "dash" and key["tiers"] == ["DEMO_TRADE", "READ"]
    assert "secret_hash" not in key and secret.group(1) not in listed.output

    bad = runner.invoke(app, ["api", "key", "create", "x", "--tier", "GOD"], env=env)
    assert bad.exit_code == 2
    again = runner.invoke(app, ["api", "key", "create", "dash", "--tier", "READ"], env=env)
    assert again.exit_code == 2 and "exists" in again.output

    revoked = runner.invoke(app, ["api", "key", "revoke", "dash"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in runner.invoke(app, ["api", "key", "list"], env=env).output

    settings = load_settings(mode="DEMO", data_dir=tmp_data_dir)
    store = open_store(settings, TradingMode.DEMO)
    try:
        text = str([e.model_dump() for e in store.list_events()])
    finally:
        store.close()
    assert "API_KEY_CREATED" in text and "API_KEY_REVOKED" in text
    assert secret.group(1) not in text
