"""Stored backtest ids name a folder directly under backtests/ and nothing else: an id with
path characters is refused before the file system is touched, with what an id looks like."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestrel.backtest.storage import BadResultId, chart_file, check_id, load
from kestrel.errors import ConfigError


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "a\\b", ".hidden", "a..b", "", "x" * 200])
def test_path_like_ids_are_refused(tmp_path: Path, bad: str) -> None:
    (tmp_path / "result.json").write_text("{}")  # what ../result.json would reach
    with pytest.raises(BadResultId, match="is not valid: letters, digits"):
        load(tmp_path / "data", bad)
    with pytest.raises(BadResultId):
        chart_file(tmp_path / "data", bad, "equity")


def test_ids_as_made_are_accepted_and_unknown_ones_named(tmp_path: Path) -> None:
    for good in ("20240131T120000-abc123", "20240131T120000-abc123-2", "api-x_1.v2"):
        assert check_id(good) == good
    with pytest.raises(ConfigError, match="no backtest '20240131T120000-abc123'"):
        load(tmp_path, "20240131T120000-abc123")
    with pytest.raises(ConfigError, match="chart 'x': one of equity, prices"):
        chart_file(tmp_path, "20240131T120000-abc123", "x")
