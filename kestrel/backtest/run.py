"""One call for a whole backtest: load, run, compute the results, store them with charts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kestrel.backtest.charts import equity_png, prices_png, report_html
from kestrel.backtest.engine import BacktestRun, Progress, backtest_store, execute, prepare
from kestrel.backtest.results import BacktestResult, build_result
from kestrel.backtest.spec import BacktestSpec
from kestrel.backtest.storage import save, unused_id
from kestrel.config.settings import KestrelSettings


@dataclass
class Outcome:
    result: BacktestResult
    folder: Path | None
    charts: dict[str, Path]


def write_charts(run: BacktestRun, result: BacktestResult, folder: Path) -> dict[str, Path]:
    return {
        "equity": equity_png(result, folder / "equity.png"),
        "prices": prices_png(run, result, folder / "prices.png"),
        "html": report_html(run, result, folder / "report.html"),
    }


def run_backtest(
    settings: KestrelSettings,
    spec: BacktestSpec,
    *,
    results_root: Path | None = None,
    progress: Progress | None = None,
    charts: bool = True,
    store: bool = True,
    result_id: str | None = None,
) -> Outcome:
    """Run `spec` on `settings`; store the result under `results_root` (default: the
        settings' data dir) unless `store` is False, under `result_id` when given (the API names
    a run before it starts). Bad input raises before anything is stored."""
    with backtest_store() as books:
        run = prepare(settings, spec, books)
        execute(run, progress)
        result = build_result(run, result_id)
        if not store:
            return Outcome(result, None, {})
        root = results_root or settings.data_dir
        result = result.model_copy(update={"id": unused_id(root, result.id)})
        folder = save(root, result)
        made = write_charts(run, result, folder) if charts else {}
    return Outcome(result, folder, made)
