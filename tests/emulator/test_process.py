"""`python -m emulator` as a separate process, driven over HTTP only (as a demo would)."""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest

from emulator import ccxt_client_for
from tests.emulator.scripted import ROWS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    candles = tmp_path / "BTC_USDT-1h.csv"
    with candles.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        writer.writerows(ROWS)
    port = free_port()
    cmd = [sys.executable, "-m", "emulator", "--port", str(port)]
    cmd += ["--market", f"BTC/USDT={candles}", "--account", "demo:shh", "--balance", "USDT=500"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["url"] == f"http://127.0.0.1:{port}"
        yield proc, ready
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_standalone_process_serves_ccxt_and_stops_cleanly(
    process: tuple[subprocess.Popen[str], dict[str, Any]],
) -> None:
    proc, ready = process
    ex = ccxt_client_for(ready["url"], ready["api_key"], ready["secret"], timeout_ms=2000)
    assert ex.load_markets()["BTC/USDT"]["id"] == "BTCUSDT"
    assert ex.fetch_balance()["USDT"]["free"] == 500.0
    order = ex.create_order("BTC/USDT", "limit", "buy", 1, 97)
    req = urllib.request.Request(
        ready["url"] + "/_emulator/advance", data=b'{"candles": 2}', method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["advanced"] == 2
    assert ex.fetch_order(order["id"], "BTC/USDT")["status"] == "closed"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    with pytest.raises(ccxt.NetworkError):
        ex.fetch_time()
