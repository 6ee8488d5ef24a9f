"""RocksDB engine (real rocksdict databases in raw mode under tmp_path)."""

from __future__ import annotations

import gc
import itertools
from pathlib import Path

import pytest
import rocksdict

from storage import KeyRange, open_engine
from storage.rocksdb import RocksDBEngine
from storage.testing import KVEngineTests, run_engine_state_machine


class TestRocksDBEngine(KVEngineTests):
    engine_name = "rocksdb"


def test_rocksdb_matches_model(tmp_path: Path) -> None:
    n = itertools.count()
    run_engine_state_machine(
        lambda: RocksDBEngine.open(str(tmp_path / f"db{next(n)}"), cache_mb=8),
        max_examples=60,
        stateful_step_count=30,
    )


def test_stored_raw_and_readable_by_rocksdict(tmp_path: Path) -> None:
    path = str(tmp_path / "nested" / "db")
    with RocksDBEngine.open(path) as e:
        e.put(b"\x00\xff", b"raw")
        with e.batch() as wb:
            wb.put(b"b", b"")
    gc.collect()
    db = rocksdict.Rdict(path, options=rocksdict.Options(raw_mode=True))
    try:
        assert list(db.items()) == [(b"\x00\xff", b"raw"), (b"b", b"")]
    finally:
        db.close()


def test_options(tmp_path: Path) -> None:
    e = open_engine(
        "rocksdb",
        str(tmp_path / "db"),
        write_buffer_mb=8,
        max_write_buffers=2,
        cache_mb=0,
        bloom_bits=0,
        block_size=4096,
        max_open_files=64,
        parallelism=1,
    )
    assert isinstance(e, RocksDBEngine)
    e.put(b"k", b"v")
    assert e.get(b"k") == b"v"
    assert "rocksdb" in e.describe()
    e.close()
    with pytest.raises(TypeError, match="unknown rocksdb options"):
        RocksDBEngine.open(str(tmp_path / "db"), bogus=1)
    with pytest.raises(ValueError):
        RocksDBEngine.open("")


def test_delete_range_uses_exact_bounds(tmp_path: Path) -> None:
    with RocksDBEngine.open(str(tmp_path / "db")) as e:
        keys = [b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\xff"]
        for k in keys:
            e.put(k, b"v")
        assert e.delete_range(KeyRange(b"\xff\x00")) == 3
        assert [k for k, _ in e.scan(KeyRange())] == [b"\xff"]
        e.put(b"\xff\xff\xff\xff", b"v")  # past the synthetic end of the previous delete
        assert e.get(b"\xff\xff\xff\xff") == b"v"


def test_reopen_after_partially_consumed_scan_is_released(tmp_path: Path) -> None:
    e = RocksDBEngine.open(str(tmp_path / "db"))
    for i in range(10):
        e.put(bytes([i]), b"v")
    it = e.scan(KeyRange())
    next(it)
    del it  # dropping the scan releases the native iterator and with it the lock
    e.close()
    with RocksDBEngine.open(str(tmp_path / "db")) as e2:
        assert len(list(e2.scan(KeyRange()))) == 10
