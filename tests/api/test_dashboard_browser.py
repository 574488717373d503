"""The dashboard in a real browser: Playwright driving the system Chromium (Debian's
`chromium` package). Logs in with a key, sees the DEMO position and the decision arrive
over /ws, closes the position from the page, and writes a screenshot.

Skips, saying why, when no Chromium binary is installed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kestrel.runtime import Runtime
from tests.manual.conftest import advance

from .conftest import Served

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium binary on PATH (looked for " + ", ".join(CANDIDATES) + "); install "
        "Debian's `chromium` package (apt-get install -y chromium) to run the browser test"
    )


def test_dashboard_live_and_close_a_demo_position(
    demo_api: Served, demo_rt: Runtime, tmp_path: Path
) -> None:
    binary = chromium_binary()
    from playwright.sync_api import expect, sync_playwright

    secret = demo_api.key("dashboard", "READ", "DEMO_TRADE")
    with demo_api.client(secret) as http:
        placed = http.post(
            "/api/manual",
            json={
                "request": {
                    "kind": "place",
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "amount": "0.01",
                    "stop_loss": "19000",
                    "take_profit": "22000",
                }
            },
        ).json()
        assert placed["status"] == "PLACED", placed
    shot = Path(os.environ.get("KESTREL_SCREENSHOT_DIR", tmp_path)) / "dashboard.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(demo_api.url + "/")
            page.fill("#api-key", secret)
            page.click("button[type=submit]")
            expect(page.locator("#conn")).to_have_text("live")
            expect(page.locator("#mode")).to_have_text("DEMO")
            expect(page.locator("#decisions li").first).to_contain_text("TRADE_DECIDED")
            expect(page.locator("#orders tbody tr")).to_have_count(1)
            advance(demo_rt)  # the buy fills: the position arrives over /ws
            row = page.locator("#positions tbody tr")
            expect(row).to_have_count(1)
            expect(row.first).to_contain_text("BTC/USDT")
            expect(page.locator("#orders tbody tr")).to_have_count(0)  # the buy filled
            page.screenshot(path=str(shot), full_page=True)
            page.click("button.close-position[data-symbol='BTC/USDT']")
            expect(page.locator("#message")).to_contain_text("PLACED")
            advance(demo_rt)  # the market exit fills
            expect(page.locator("#positions tbody tr")).to_have_count(0)
            page.click("#pause")
            expect(page.locator("#stop")).to_contain_text("STOPPED")
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert demo_api.ctx.service.store.list_positions(status=None)[0].status.value == "CLOSED"
    actions = [
        e.data["action"]
        for e in demo_api.ctx.service.store.list_events()
        if "API_AUDIT" in e.reasons
    ]
    assert actions == ["manual.place", "manual.close", "pause"]
