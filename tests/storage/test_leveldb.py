"""LevelDB engine (real plyvel databases under tmp_path)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import plyvel
import pytest

from storage import KeyRange, KVEngine, open_engine
from storage.leveldb import LevelDBEngine
from storage.testing import KVEngineTests, run_engine_state_machine


class TestLevelDBEngine(KVEngineTests):
    engine_name = "leveldb"


class TestLevelDBEngineOwnFixture(KVEngineTests):
    """The other way to plug in: override ``engine`` and ``reopen`` (small, uncompressed)."""

    @pytest.fixture
    def engine(self, tmp_path: Path) -> Iterator[LevelDBEngine]:
        e = LevelDBEngine.open(str(tmp_path / "db"), write_buffer_mb=1, compression=None)
        self.reopened: list[LevelDBEngine] = []
        yield e
        for x in [e, *self.reopened]:
            x.close()
        self.reopened.clear()

    def reopen(self, engine: KVEngine) -> KVEngine:
        assert isinstance(engine, LevelDBEngine)
        engine.close()
        e = LevelDBEngine.open(engine.path, **engine.options)
        self.reopened.append(e)
        return e


def test_leveldb_matches_model(tmp_path: Path) -> None:
    n = itertools.count()
    run_engine_state_machine(
        lambda: LevelDBEngine.open(str(tmp_path / f"db{next(n)}"), cache_mb=8),
        max_examples=60,
        stateful_step_count=30,
    )


def test_stored_raw_and_readable_by_plyvel(tmp_path: Path) -> None:
    path = str(tmp_path / "nested" / "db")  # parents are created
    with LevelDBEngine.open(path) as e:
        e.put(b"\x00\xff", b"raw")
        with e.batch() as wb:
            wb.put(b"b", b"")
    db = plyvel.DB(path)
    try:
        assert list(db) == [(b"\x00\xff", b"raw"), (b"b", b"")]
    finally:
        db.close()


def test_options(tmp_path: Path) -> None:
    e = open_engine(
        "leveldb",
        str(tmp_path / "db"),
        write_buffer_mb=8,
        cache_mb=0,
        bloom_bits=0,
        block_size=4096,
        max_open_files=64,
        compression=None,
    )
    assert isinstance(e, LevelDBEngine)
    assert e.options["write_buffer_mb"] == 8
    e.put(b"k", b"v")
    assert e.get(b"k") == b"v"
    assert "leveldb" in e.describe()
    e.close()
    with pytest.raises(TypeError, match="unknown leveldb options"):
        LevelDBEngine.open(str(tmp_path / "db"), WriteBufferSize=1)
    with pytest.raises(ValueError):
        LevelDBEngine.open("")


def test_second_open_of_same_directory_fails(tmp_path: Path) -> None:
    with LevelDBEngine.open(str(tmp_path / "db")), pytest.raises(plyvel.IOError):
        LevelDBEngine.open(str(tmp_path / "db"))


def test_close_with_open_scan(tmp_path: Path) -> None:
    e = LevelDBEngine.open(str(tmp_path / "db"))
    for i in range(10):
        e.put(bytes([i]), b"v")
    it = e.scan(KeyRange())
    next(it)
    e.close()  # closes the iterator too; the directory can be reopened
    with LevelDBEngine.open(str(tmp_path / "db")) as e2:
        assert len(list(e2.scan(KeyRange()))) == 10
