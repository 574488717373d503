"""The `kestrel` command as a user runs it: a real process, real Prefect, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KESTREL = [sys.executable, "-m", "cli"]


def run(
    args: list[str], tmp_path: Path, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("KESTREL_", "PREFECT_"))
    }
    environment.update(env)
    return subprocess.run(
        [*KESTREL, *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, runpy; sys.argv=['kestrel','--help']\n"
        "try:\n    runpy.run_module('cli', run_name='__main__')\nexcept SystemExit: pass\n"
        "heavy=[m for m in ('prefect','pandas','pandas_ta','ccxt') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout
    assert "HEAVY []" in out.stdout


def test_invalid_setting_exits_2_naming_field(tmp_path: Path) -> None:
    result = run(
        ["status"], tmp_path, KESTREL_WATCHLIST='[{"symbol": "BTC/USDT", "timeframe": "9m"}]'
    )
    assert result.returncode == 2
    assert "watchlist.0.timeframe" in result.stderr and "'9m'" in result.stderr


def test_bad_cli_argument_is_refused(tmp_path: Path) -> None:
    result = run(["demo", "--market", "moon"], tmp_path)
    assert result.returncode == 2
    assert "--market" in result.stderr


def test_stop_and_resume_persist(tmp_path: Path) -> None:
    assert "ON" in run(["stop", "--reason", "test"], tmp_path).stdout
    assert "emergency stop: ON (test)" in run(["status"], tmp_path).stdout
    assert "off" in run(["resume"], tmp_path).stdout
    assert "emergency stop: off" in run(["status"], tmp_path).stdout


@pytest.mark.prefect
def test_demo_on_real_candles_reconciles(tmp_path: Path, shared_data_dir: Path) -> None:
    result = run(["demo", "--cycles", "120", "--data-dir", str(tmp_path / "k")], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replay:BTC_USDT-1h.csv" in result.stdout
    assert "Books vs wallet: RECONCILED" in result.stdout
    assert "fills: 0" not in result.stdout
    assert (tmp_path / "k" / "prefect").is_dir()  # project-local Prefect home


@pytest.mark.prefect
def test_demo_without_shared_data_uses_labelled_simulation(tmp_path: Path) -> None:
    result = run(
        ["demo", "--cycles", "60", "--market", "simulated", "--data-dir", str(tmp_path / "k")],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SIMULATED" in result.stdout
    assert "Books vs wallet: RECONCILED" in result.stdout


def test_telegram_bot_answers_an_allowed_chat_and_refuses_others(tmp_path: Path) -> None:
    from fakes.telegram_server import FakeTelegramServer

    with FakeTelegramServer() as server:
        server.inject_message(4242, "/status")
        server.inject_message(999, "/stop")
        result = run(
            ["telegram", "--stop-after", "4"],
            tmp_path,
            timeout=120,
            KESTREL_TELEGRAM__BOT_TOKEN=server.token,
            KESTREL_TELEGRAM__API_BASE_URL=server.base_url,
            KESTREL_TELEGRAM__COMMAND_CHAT_IDS="[4242]",
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "commands handled: 1, refused: 1" in result.stdout
        answer = server.sent_messages(4242)
        assert answer and "DEMO" in answer[0].raw_text
        assert server.sent_messages(999)  # a refusal, nothing else
        assert server.token not in result.stdout + result.stderr
    assert "emergency stop: off" in run(["status"], tmp_path).stdout
