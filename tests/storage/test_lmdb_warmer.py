"""The LMDB engine's warmer (the thread preparing the data file's next pages for the
commits): it only ever grows the file, within its bound; what is committed reads back the
same with it, without it (no fallocate) and after a ``kill -9`` in the middle of big
commits; queued bytes are given back when a batch commits, fails or is dropped."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lmdb
import pytest

import storage.lmdbkv as lk
from storage import open_engine

ROOT = Path(__file__).resolve().parents[2]
VALUE = 263_000  # about one LZ4 64³ uint8 block


def value(i: int) -> bytes:
    """A deterministic incompressible value of key ``i``."""
    h = hashlib.blake2b(str(i).encode()).digest()
    return (h * (VALUE // len(h) + 1))[:VALUE]


def lmdb_end(path: Path) -> int:
    env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    try:
        return (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    finally:
        env.close()


def lmdb_end_of(e) -> int:
    """LMDB's last page of an open engine, in bytes."""
    info = e._env.info()
    return (info["last_pgno"] + 1) * e._env.stat()["psize"]


def test_file_prepared_ahead_within_bound(tmp_path: Path) -> None:
    e = open_engine("lmdb", str(tmp_path / "db"))
    try:
        for b in range(3):  # 3 batches of ~13 MB
            wb = e.batch()
            for i in range(50):
                wb.put(b"k%03d%03d" % (b, i), value(b * 50 + i))
            if lk._FALLOCATE is not None:  # the warmer runs while the batch waits
                want = lmdb_end_of(e) + e._warmer.queued
                deadline = time.monotonic() + 30
                while e._warmer.upto < want and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert e._warmer.upto >= want
            wb.commit()
        assert e._warmer.queued == 0
        time.sleep(0.2)
        for b in range(3):
            for i in range(0, 50, 7):
                assert e.get(b"k%03d%03d" % (b, i)) == value(b * 50 + i)
    finally:
        e.close()
    size = (tmp_path / "db" / "data.mdb").stat().st_size
    end = lmdb_end(tmp_path / "db")
    if lk._FALLOCATE is not None:
        assert size > end  # prepared beyond LMDB's last page ...
    assert size <= end + lk._WARM_MAX + lk._WARM_STEP  # ... never further than the bound


def test_queued_bytes_given_back_on_failure_and_drop(tmp_path: Path) -> None:
    e = open_engine("lmdb", str(tmp_path / "db"), map_gb=4 / 1024)  # a 4 MiB map
    try:
        wb = e.batch()
        for i in range(30):  # ~7.9 MB: more than the map holds
            wb.put(b"k%03d" % i, value(i))
        assert e._warmer.queued > 0
        with pytest.raises(lmdb.MapFullError):
            wb.commit()
        assert e._warmer.queued == 0
        wb2 = e.batch()
        for i in range(10):
            wb2.put(b"d%03d" % i, value(i))
        assert e._warmer.queued > 0
        del wb2  # dropped without a commit
        assert e._warmer.queued == 0
        assert e.get(b"k000") is None  # the failed batch left nothing
    finally:
        e.close()


def test_without_fallocate_writes_are_unchanged(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def refuse(fd: int, mode: int, off: int, n: int) -> int:
        calls.append(off)
        return -1  # errno: whatever the last call left, not EINTR in practice

    monkeypatch.setattr(lk, "_FALLOCATE", refuse)
    e = open_engine("lmdb", str(tmp_path / "db"))
    try:
        wb = e.batch()
        for i in range(40):
            wb.put(b"k%03d" % i, value(i))
        # The bytes stay queued until the commit, so the warmer (a thread started by the
        # first put, which may run late on a loaded machine) has work until then: wait
        # for it before committing (after the commit nothing is queued and it would wait).
        deadline = time.monotonic() + 30
        while not e._warmer.disabled and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls and e._warmer.disabled  # tried once, then stopped preparing
        assert len(calls) == 1
        wb.commit()
        assert all(e.get(b"k%03d" % i) == value(i) for i in range(40))
    finally:
        e.close()
    assert (tmp_path / "db" / "data.mdb").stat().st_size == lmdb_end(tmp_path / "db")


def test_kill_9_during_big_commits_keeps_every_committed_batch(tmp_path: Path) -> None:
    """A writer process commits batches of 40 values (~10 MB) as fast as it can, printing
    each committed batch number; it is killed with SIGKILL mid-run. Every batch it
    reported is there whole, and no batch is there in part."""
    db = tmp_path / "db"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(ROOT / "tests" / "storage")!r})
        from storage import open_engine
        from test_lmdb_warmer import value
        e = open_engine("lmdb", {str(db)!r})
        b = 0
        while True:
            wb = e.batch()
            for i in range(40):
                wb.put(b"b%05d-%02d" % (b, i), value(b * 40 + i))
            wb.commit()
            print(b, flush=True)
            b += 1
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    seen = -1
    assert p.stdout is not None
    for line in p.stdout:
        seen = int(line)
        if seen >= 12:
            break
    time.sleep(0.05)  # into the next batches' filling and commit
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    e = open_engine("lmdb", str(db))
    try:
        present: dict[int, int] = {}
        for k, v in e.scan(lk.KeyRange(b"b", b"c")):
            b, i = int(k[1:6]), int(k[7:9])
            assert v == value(b * 40 + i), k
            present[b] = present.get(b, 0) + 1
        assert all(n == 40 for n in present.values()), present  # whole batches only
        assert set(range(seen + 1)) <= set(present), (seen, sorted(present))
        assert sorted(present) == list(range(len(present)))  # committed in order
    finally:
        e.close()
