"""LMDB engine: real LMDB directories under tmp_path, real second processes for sharing."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from pathlib import Path

import lmdb
import pytest
from hypothesis import strategies as st

from storage import KeyRange, open_engine
from storage.lmdbkv import SHORT, LMDBEngine
from storage.testing import KEY_ALPHABET, KVEngineTests, run_engine_state_machine

ROOT = Path(__file__).resolve().parents[2]


class TestLMDBEngine(KVEngineTests):
    engine_name = "lmdb"


def test_lmdb_matches_model(tmp_path: Path) -> None:
    n = itertools.count()
    run_engine_state_machine(lambda: LMDBEngine.open(str(tmp_path / f"db{next(n)}")),
                             max_examples=60, stateful_step_count=30)


#: heads that put keys on both sides of the 510-byte limit and into shared buckets
_HEADS = [b"", b"\x7f" * (SHORT - 2), b"\x7f" * (SHORT - 1), b"\x7f" * SHORT,
          b"\x7f" * (SHORT - 1) + b"\x80", b"\x80" * SHORT]
_tail = st.lists(st.sampled_from(KEY_ALPHABET), min_size=0, max_size=3).map(bytes)
long_keys = st.builds(lambda h, t: h + t, st.sampled_from(_HEADS), _tail).filter(bool)


def test_lmdb_long_keys_match_model(tmp_path: Path) -> None:
    """Keys around LMDB's key-size limit (overflow buckets) behave like any others: order,
    prefixes, ranges bounded by long keys, batches and delete_range."""
    n = itertools.count()
    prefixes = st.builds(lambda h, t: h + t, st.sampled_from(_HEADS), _tail)
    run_engine_state_machine(lambda: LMDBEngine.open(str(tmp_path / f"db{next(n)}")),
                             max_examples=80, stateful_step_count=30, keys=long_keys,
                             prefixes=prefixes)


def test_long_keys_sort_between_short_ones(tmp_path: Path) -> None:
    p = b"k" * SHORT
    keys = [p[:-1], p, p + b"\x00", p + b"\x00\x00", p + b"a", p + b"a" * 300, p[:-1] + b"l",
            b"\xff" * 600, b"\xff" * 601, b"\xff" * SHORT]
    with LMDBEngine.open(str(tmp_path / "db")) as e:
        for i, k in enumerate(keys):
            e.put(k, bytes([i]) * (i + 1))
        want = sorted(keys)
        assert [k for k, _ in e.scan(KeyRange())] == want
        assert [k for k, _ in e.scan(KeyRange(), reverse=True)] == want[::-1]
        assert all(e.get(k) == bytes([i]) * (i + 1) for i, k in enumerate(keys))
        assert e.get(p + b"b") is None and e.get(p + b"\x00\x01") is None
        mid = KeyRange(p + b"\x00\x00", p + b"a" * 2)
        assert [k for k, _ in e.scan(mid)] == [p + b"\x00\x00", p + b"a"]
        assert [k for k, _ in e.scan(mid, reverse=True)] == [p + b"a", p + b"\x00\x00"]
        assert e.compare_and_swap(p + b"a", bytes([4]) * 5, b"new")
        assert not e.compare_and_swap(p + b"a", bytes([4]) * 5, b"again")
        assert e.delete_range(KeyRange.prefix(p)) == 5
        assert [k for k, _ in e.scan(KeyRange.prefix(b"k"))] == [p[:-1], p[:-1] + b"l"]
        e.delete(b"\xff" * 600)
        e.delete(b"\xff" * 600)
    with LMDBEngine.open(str(tmp_path / "db")) as e:  # persisted
        assert [k for k, _ in e.scan(KeyRange.prefix(b"\xff"))] == [b"\xff" * SHORT,
                                                                   b"\xff" * 601]


def test_empty_key_and_bad_options(tmp_path: Path) -> None:
    with LMDBEngine.open(str(tmp_path / "db")) as e:
        with pytest.raises(ValueError, match="empty key"):
            e.put(b"", b"v")
        with pytest.raises(ValueError, match="empty key"):
            e.batch().put(b"", b"v")
        assert e.get(b"") is None
    with pytest.raises(TypeError, match="unknown lmdb options"):
        LMDBEngine.open(str(tmp_path / "db"), mapsize=1)
    with pytest.raises(ValueError, match="directory path"):
        LMDBEngine.open("")


def test_buffer_values_and_options(tmp_path: Path) -> None:
    e = open_engine("lmdb", str(tmp_path / "db"), map_gb=1, sync=True, readahead=False,
                    max_readers=64)
    try:
        body = bytearray(b"0123456789")
        with e.batch() as wb:
            wb.put(b"mv", memoryview(body)[2:5])
            wb.put(b"ba", body)
        assert e.get(b"mv") == b"234" and e.get(b"ba") == bytes(body)
        assert "lmdb" in e.describe()
    finally:
        e.close()


def test_handles_in_one_process_share_the_environment(tmp_path: Path) -> None:
    a = LMDBEngine.open(str(tmp_path / "db"))
    b = open_engine("lmdb", str(tmp_path / "db"))  # LMDB itself forbids a second open
    a.put(b"k", b"1")
    assert b.get(b"k") == b"1"
    a.close()
    b.put(b"k", b"2")  # the other handle keeps working
    assert b.get(b"k") == b"2"
    b.close()
    env = lmdb.open(str(tmp_path / "db"))  # stored raw: plain LMDB reads it
    try:
        with env.begin() as txn:
            assert list(txn.cursor()) == [(b"k", b"2")]
    finally:
        env.close()


def test_close_with_open_scan(tmp_path: Path) -> None:
    e = LMDBEngine.open(str(tmp_path / "db"))
    for i in range(1, 11):
        e.put(bytes([i]), b"v")
    it = e.scan(KeyRange())
    next(it)
    e.close()
    with pytest.raises(lmdb.Error):
        list(it)
    with LMDBEngine.open(str(tmp_path / "db")) as e2:
        assert len(list(e2.scan(KeyRange()))) == 10


_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from storage import open_engine
    e = open_engine("lmdb", {path!r})
    for _ in range({n}):
        while True:
            cur = e.get(b"n")
            if e.compare_and_swap(b"n", cur, str(int(cur or b"0") + 1).encode()):
                break
    e.put(b"done-%d" % int(sys.argv[1]), b"")
    e.close()
""")


def test_compare_and_swap_across_processes(tmp_path: Path) -> None:
    """Two processes and this one increment one counter by CAS: no increment is lost, and
    each sees the others' writes (no reopen needed)."""
    path = str(tmp_path / "db")
    e = LMDBEngine.open(path)
    n = 300
    script = _CHILD.format(root=str(ROOT), path=path, n=n)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)]) for i in range(2)]
    try:
        for _ in range(n):
            while True:
                cur = e.get(b"n")
                if e.compare_and_swap(b"n", cur, str(int(cur or b"0") + 1).encode()):
                    break
        assert [p.wait(120) for p in procs] == [0, 0]
        assert e.get(b"n") == str(3 * n).encode()
        assert e.get_many([b"done-0", b"done-1"]) == [b"", b""]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        e.close()
