"""Backtest results through the API: real results written by a real small backtest
(kestrel.backtest.run_backtest on the synthetic sine CSV of tests/backtest) into the API's
data dir, read back with httpx (REST) and the MCP SDK client, the same service underneath.
Unknown ids answer 404 naming the id, ids with path characters are refused before any file
is touched, and nothing is served without a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from kestrel.backtest import BacktestResult, run_backtest
from kestrel.backtest.storage import load
from tests.backtest.fixtures import sine_candles, write_csv
from tests.backtest.helpers import btc_settings, sine_folder, spec

from .conftest import Served
from .test_mcp import data, error_text, with_mcp


@pytest.fixture
def stored(demo_api: Served, tmp_path: Path) -> tuple[BacktestResult, BacktestResult]:
    """Two real runs stored where the API looks (its settings' data dir): the first with
    charts, the second without (so its chart is honestly missing)."""
    folder = sine_folder(tmp_path / "candles")
    root = demo_api.ctx.service.backend.base.data_dir
    settings = btc_settings(tmp_path / "bt")
    first = run_backtest(settings, spec(folder, label="one"), results_root=root).result
    second = run_backtest(
        settings, spec(folder, label="two", stake_amount="0.1"), results_root=root, charts=False
    ).result
    assert first.id != second.id
    return first, second


def test_list_show_compare_and_chart_over_rest(
    demo_api: Served, stored: tuple[BacktestResult, BacktestResult]
) -> None:
    first, second = stored
    root = demo_api.ctx.service.backend.base.data_dir
    with demo_api.client(demo_api.key("viewer", "READ")) as http:
        listed = http.get("/api/backtests")
        assert listed.status_code == 200, listed.text
        rows = listed.json()
        assert [r["id"] for r in rows] == sorted([first.id, second.id])
        row = next(r for r in rows if r["id"] == first.id)
        assert row["label"] == "one" and row["trades"] == first.metrics.trade_count
        assert row["strategy_ids"] == first.strategy_ids and row["reconciled"] is True

        shown = http.get(f"/api/backtests/{first.id}")
        assert shown.status_code == 200, shown.text
        body = shown.json()
        assert body["metrics"] == first.metrics.model_dump(mode="json")
        assert len(body["trades"]) == first.metrics.trade_count >= 2
        assert body["trades"][0]["entry_price"] == str(first.trades[0].entry_price)
        assert body["by_symbol"] == first.by_symbol and body["books"] == first.books
        assert body["strategy_ids"] == first.strategy_ids and "#" in body["strategy_ids"]["ETH/BTC"]
        assert body["charts"] == ["equity", "prices"] and "equity" not in body
        # the same answer the CLI's storage gives: one implementation
        assert body["trades"] == load(root, first.id).model_dump(mode="json")["trades"]

        compared = http.get(f"/api/backtests/{first.id}/compare/{second.id}")
        assert compared.status_code == 200, compared.text
        table = {row["metric"]: row for row in compared.json()["metrics"]}
        a, b = first.metrics.trade_count, second.metrics.trade_count
        assert table["trade_count"] == {"metric": "trade_count", "a": a, "b": b, "diff": b - a}
        assert compared.json()["b"]["id"] == second.id

        png = http.get(f"/api/backtests/{first.id}/charts/equity.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content == (root / "backtests" / first.id / "equity.png").read_bytes()
        missing = http.get(f"/api/backtests/{second.id}/charts/equity.png")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        assert "no equity chart" in missing.json()["detail"]
        odd = http.get(f"/api/backtests/{first.id}/charts/secrets.png")
        assert odd.status_code == 404 and "one of equity, prices" in odd.json()["detail"]


def test_unknown_and_traversal_ids_and_no_token(
    demo_api: Served, stored: tuple[BacktestResult, BacktestResult]
) -> None:
    first, _ = stored
    root = demo_api.ctx.service.backend.base.data_dir
    # a result.json one level up, which a traversal would reach
    (root / "result.json").write_text(load(root, first.id).model_dump_json())
    with demo_api.client(demo_api.key("viewer", "READ")) as http:
        unknown = http.get("/api/backtests/20200101T000000-nope00")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "not_found"
        assert "no backtest '20200101T000000-nope00'" in unknown.json()["detail"]
        assert first.id in unknown.json()["detail"]  # the latest ids, to pick from
        for bad in ("%2E%2E", ".hidden", "a..b", "x%5C..%5Cy"):
            refused = http.get(f"/api/backtests/{bad}")
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["error"] == "bad_backtest_id", bad
            assert "no path" in refused.json()["detail"]
        refused = http.get(f"/api/backtests/{first.id}/compare/%2E%2E")
        assert refused.status_code == 422 and refused.json()["error"] == "bad_backtest_id"
        refused = http.get("/api/backtests/../charts/equity.png".replace("/../", "/%2E%2E/"))
        assert refused.status_code == 422, refused.text
    with demo_api.client() as anonymous:
        for path in ("/api/backtests", f"/api/backtests/{first.id}"):
            answer = anonymous.get(path)
            assert answer.status_code == 401 and answer.json()["error"] == "no_token"


def test_backtest_tools_over_mcp(
    demo_api: Served, stored: tuple[BacktestResult, BacktestResult]
) -> None:
    first, second = stored
    secret = demo_api.key("assistant", "READ")

    async def body(client: Client) -> None:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"list_backtests", "show_backtest", "compare_backtests"} <= names
        listed = data(await client.call_tool("list_backtests", {}))
        assert {r["id"] for r in listed} == {first.id, second.id}
        shown = data(await client.call_tool("show_backtest", {"backtest_id": first.id}))
        assert shown["metrics"] == first.metrics.model_dump(mode="json")
        assert shown["strategy_ids"] == first.strategy_ids
        compared = data(
            await client.call_tool("compare_backtests", {"a": first.id, "b": second.id})
        )
        assert [r["metric"] for r in compared["metrics"]][:2] == ["currency", "start_equity"]
        unknown = await client.call_tool("show_backtest", {"backtest_id": "nope"})
        assert "not_found: no backtest 'nope'" in error_text(unknown)
        traversal = await client.call_tool("show_backtest", {"backtest_id": "../backtests"})
        assert "bad_backtest_id" in error_text(traversal)
        traversal = await client.call_tool("compare_backtests", {"a": first.id, "b": "/etc"})
        assert "bad_backtest_id" in error_text(traversal)
        refused = await client.call_tool("run_backtest", {"spec": {"data_dir": "."}})
        assert "forbidden: backtest run needs the ADMIN tier" in error_text(refused)

    with_mcp(demo_api, secret, body)
    assert demo_api.ctx.service.backtest_jobs == {}


def test_mcp_backtests_need_a_token(demo_api: Served) -> None:
    async def body(client: Client) -> None:
        refused = await client.call_tool("list_backtests", {})
        assert "no_token" in error_text(refused)

    with_mcp(demo_api, None, body)


def test_admin_starts_a_backtest_in_a_worker_thread(demo_api: Served, tmp_path: Path) -> None:
    """POST /api/backtests runs kestrel.backtest.run_backtest on the API's own settings (its
    BTC/USDT watchlist) over synthetic candles; READ may not start one, nor may a bad spec."""
    candles = tmp_path / "candles"
    write_csv(candles, "BTC/USDT", "5m", sine_candles(160, "5m"))
    body = {"spec": {"data_dir": str(candles), "symbols": ["BTC/USDT"], "timeframe": "5m",
                     "warmup": 100, "label": "api"}, "charts": False}  # fmt: skip
    svc = demo_api.ctx.service
    with demo_api.client(demo_api.key("viewer", "READ")) as http:
        refused = http.post("/api/backtests", json=body)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        assert "ADMIN" in refused.json()["detail"]
    with demo_api.client() as anonymous:
        assert anonymous.post("/api/backtests", json=body).status_code == 401
    assert svc.backtest_jobs == {}
    with demo_api.client(demo_api.key("ops", "ADMIN")) as http:
        bad = http.post("/api/backtests", json={"spec": {**body["spec"], "timeframe": "7q"}})
        assert bad.status_code == 422 and "unknown timeframe '7q'" in bad.json()["detail"]
        nowhere = http.post("/api/backtests", json={"spec": {"data_dir": "no/such"}})
        assert nowhere.status_code == 422 and "no such folder" in nowhere.json()["detail"]
        started = http.post("/api/backtests", json=body)
        assert started.status_code == 202, started.text
        result_id = started.json()["id"]
        job = svc.backtest_jobs[result_id]
        job.thread.join()  # the run's end, not a timing assumption
        assert job.state == "done", job.error
        shown = http.get(f"/api/backtests/{result_id}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["id"] == result_id and shown.json()["label"] == "api"
        assert shown.json()["charts"] == [] and shown.json()["reconciled"] is True
        assert [r["id"] for r in http.get("/api/backtests").json()] == [result_id]
    audits = [e for e in svc.store.list_events() if e.data.get("action") == "backtest.run"]
    assert [e.data["result"] for e in audits] == [f"started {result_id}"]


def test_failed_run_is_reported_by_id(demo_api: Served, tmp_path: Path) -> None:
    """A run that fails after it started (no candles for the symbol) stores nothing and its
    id answers why, instead of a bare 404."""
    (tmp_path / "empty").mkdir()
    with demo_api.client(demo_api.key("ops", "ADMIN")) as http:
        started = http.post("/api/backtests", json={"spec": {"data_dir": str(tmp_path / "empty")}})
        assert started.status_code == 202, started.text
        result_id = started.json()["id"]
        demo_api.ctx.service.backtest_jobs[result_id].thread.join()
        answer = http.get(f"/api/backtests/{result_id}")
        assert answer.status_code == 422 and answer.json()["error"] == "backtest_failed"
        assert answer.json()["detail"].startswith(f"backtest {result_id!r} failed: ")
    assert not (demo_api.ctx.service.backend.base.data_dir / "backtests" / result_id).exists()
    assert demo_api.ctx.service.backtest_jobs[result_id].state == "failed"
