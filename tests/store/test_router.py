"""open_store's URI handling and StoreRouter's routing by the mode ContextVar."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mongomock
import pytest

from kestrel.config.settings import KestrelSettings
from kestrel.errors import ConfigError, StoreError
from kestrel.mode import TradingMode, current_mode, trading_mode
from kestrel.store import MongoStore, SQLiteStore, StoreRouter, open_store

from .factories import make_event, make_order


@pytest.fixture
def router(tmp_data_dir: Path) -> Iterator[StoreRouter]:
    router = StoreRouter(KestrelSettings(data_dir=tmp_data_dir, store_uri=None))
    yield router
    router.close()


def test_router_routes_every_call_by_the_current_mode(
    router: StoreRouter, tmp_data_dir: Path
) -> None:
    assert current_mode() is TradingMode.DEMO
    router.insert_order(make_order("o-1"), events=[make_event("o-1:CREATED")])
    with trading_mode(TradingMode.REAL):
        assert router.mode is TradingMode.REAL
        assert router.get_order("o-1") is None
        assert router.list_events() == []
        assert list(router.iter_live_orders()) == []
        router.put_state("kill_switch", {"on": True}, expected_version=0)
    assert router.get_order("o-1") is not None
    assert router.get_state("kill_switch") is None

    demo_file = tmp_data_dir / "kestrel_demo.sqlite3"
    real_file = tmp_data_dir / "kestrel_real.sqlite3"
    assert demo_file.is_file() and real_file.is_file()
    demo, real = router.backend(TradingMode.DEMO), router.backend(TradingMode.REAL)
    assert isinstance(demo, SQLiteStore) and demo.path == demo_file
    assert isinstance(real, SQLiteStore) and real.path == real_file


def test_router_atomic_belongs_to_the_current_mode(router: StoreRouter) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), trading_mode(TradingMode.REAL), router.atomic():
        router.insert_order(make_order("o-1", mode=TradingMode.REAL))
        raise Boom
    with trading_mode(TradingMode.REAL):
        assert router.get_order("o-1") is None


def test_router_reopens_after_close(router: StoreRouter) -> None:
    router.put_state("k", {"n": 1}, expected_version=0)
    first = router.backend()
    router.close()
    assert router.get_state("k") == ({"n": 1}, 1)
    assert router.backend() is not first
    with pytest.raises(StoreError, match="closed"):
        first.get_state("k")


def test_router_has_no_mode_of_its_own(router: StoreRouter) -> None:
    with pytest.raises(AttributeError):
        router.mode = TradingMode.REAL


def test_sqlite_uri_names_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = KestrelSettings(store_uri="sqlite:///stores/here")
    store = open_store(settings, TradingMode.REAL)
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == Path("stores/here/kestrel_real.sqlite3")
        assert (tmp_path / "stores/here/kestrel_real.sqlite3").is_file()
    finally:
        store.close()


def test_sqlite_location_must_be_a_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("")
    with pytest.raises(ConfigError, match="directory"):
        open_store(KestrelSettings(store_uri=f"sqlite:///{a_file}"), TradingMode.DEMO)


def test_a_sqlite_file_of_one_mode_cannot_be_opened_as_the_other(tmp_path: Path) -> None:
    path = tmp_path / "kestrel_demo.sqlite3"
    SQLiteStore(path, TradingMode.DEMO).close()
    with pytest.raises(StoreError, match="holds DEMO data"):
        SQLiteStore(path, TradingMode.REAL)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mongodb://localhost:27017", "kestrel"),
        ("mongodb://localhost:27017/mybot?retryWrites=true", "mybot"),
    ],
)
def test_mongodb_uri_gives_one_database_per_mode(uri: str, expected: str) -> None:
    with mongomock.patch(servers=(("localhost", 27017),)):
        router = StoreRouter(KestrelSettings(store_uri=uri))
        try:
            router.insert_order(make_order("o-1"))
            with trading_mode(TradingMode.REAL):
                assert router.get_order("o-1") is None
            demo, real = router.backend(TradingMode.DEMO), router.backend(TradingMode.REAL)
            assert isinstance(demo, MongoStore) and isinstance(real, MongoStore)
            assert demo.db.name == f"{expected}_demo"
            assert real.db.name == f"{expected}_real"
        finally:
            router.close()


def test_importing_the_store_package_does_not_import_pymongo() -> None:
    code = "import sys, kestrel.store; print('pymongo' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
