"""Conformance tests shared by every storage engine, shipped so third-party engines reuse them.

Usage from a test module (pytest and hypothesis must be installed)::

    from storage.testing import KVEngineTests, run_engine_state_machine

    class TestMyEngine(KVEngineTests):
        engine_name = "myengine"          # opened through storage.open_engine

        @pytest.fixture
        def engine_location(self, tmp_path):   # default: str(tmp_path / "kv")
            return str(tmp_path / "db")

    def test_my_engine_matches_model(tmp_path):
        n = itertools.count()
        run_engine_state_machine(lambda: open_engine("myengine", f"{tmp_path}/{next(n)}"))

The default ``engine`` fixture opens ``engine_name`` at ``engine_location`` with
``engine_options`` through the registry (so every test also exercises
:func:`storage.open_engine`) and closes everything it opened afterwards. A subclass may
instead override ``engine`` entirely; persistent engines then also override
:meth:`KVEngineTests.reopen`. Tests for capabilities an engine lacks (``atomic_batches``,
``persistent``) are skipped through :func:`require`. Class attributes scale the heavier tests
for slow backends (``many_keys``, ``threads``, ``ops_per_thread``).

:func:`make_engine_state_machine` builds a hypothesis ``RuleBasedStateMachine`` that
compares an engine with a ``dict`` model; :func:`gcs_emulator` runs the GCS emulator,
:func:`postgres_server` a throwaway PostgreSQL, :func:`moto_server` an S3-compatible server
and :func:`redis_server` a Redis, each on 127.0.0.1 (real processes, no mocks).
Call ``pytest.register_assert_rewrite("storage.testing")`` in a ``conftest.py`` to get
detailed assertion messages from the inherited tests.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from storage.base import KeyRange, KVEngine
from storage.registry import available_engines, engine_class, open_engine

__all__ = [
    "MOTO_CREDENTIALS",
    "KVEngineTests",
    "gcs_emulator",
    "make_engine_state_machine",
    "moto_server",
    "postgres_server",
    "redis_server",
    "require",
    "run_engine_state_machine",
]


def require(engine: KVEngine, **capabilities: bool) -> None:
    """Skip the calling test unless ``engine`` has the given capability flags.

    ``require(engine, persistent=True)`` skips for the memory engine.
    """
    for cap, wanted in capabilities.items():
        have = getattr(type(engine), cap)
        if have != wanted:
            pytest.skip(f"engine {engine.name!r} has {cap}={have}")


def _items(engine: KVEngine, rng: KeyRange | None = None, **kw: bool) -> list[tuple[bytes, bytes]]:
    return list(engine.scan(rng if rng is not None else KeyRange(), **kw))


def _keys(engine: KVEngine, rng: KeyRange | None = None, **kw: bool) -> list[bytes]:
    return [k for k, _ in _items(engine, rng, **kw)]


class _Abort(Exception):
    """Raised inside a batch block to check that the batch is discarded."""


class KVEngineTests:
    """Base class of the conformance suite; see the module docstring."""

    #: Registry name used by the default ``engine`` fixture.
    engine_name: ClassVar[str] = ""
    #: Keys written for the "more than one GCS list page" test (must stay > 1000).
    many_keys: ClassVar[int] = 1500
    #: Size of the large value round trip.
    large_value_size: ClassVar[int] = 1 << 20
    #: Threads and operations per thread for the concurrency test.
    threads: ClassVar[int] = 4
    ops_per_thread: ClassVar[int] = 200
    #: False where the server under test ignores conditional writes (gcp-storage-emulator):
    #: skips the test of compare_and_swap racing through two handles.
    cas_is_atomic: ClassVar[bool] = True

    # ----- fixtures and hooks --------------------------------------------------------------

    @pytest.fixture
    def engine_location(self, tmp_path: Any) -> str:
        """Where the default ``engine`` fixture opens the store (a fresh directory)."""
        return str(tmp_path / "kv")

    @pytest.fixture
    def engine_options(self) -> dict[str, Any]:
        """Options passed to ``open_engine`` by the default ``engine`` fixture."""
        return {}

    @pytest.fixture
    def engine(self, engine_location: str, engine_options: dict[str, Any]) -> Iterator[KVEngine]:
        """A fresh, empty engine; everything opened through it is closed afterwards."""
        if not self.engine_name:
            raise TypeError(f"{type(self).__name__} must set engine_name or override `engine`")
        self._open_args = (engine_location, engine_options)
        self._opened: list[KVEngine] = []
        yield self._open()
        for e in reversed(self._opened):
            e.close()
        # Drop the references: pytest keeps a failed test's instance until exit, and
        # native handles freed during interpreter shutdown print spurious errors.
        self._opened.clear()

    def _open(self) -> KVEngine:
        location, options = self._open_args
        e = open_engine(self.engine_name, location, **options)
        self._opened.append(e)
        return e

    def reopen(self, engine: KVEngine) -> KVEngine:
        """Close ``engine`` and open the same location again.

        The default works with the default ``engine`` fixture; subclasses that override
        ``engine`` override this too for persistent engines.
        """
        engine.close()
        return self._open()

    # ----- point operations ----------------------------------------------------------------

    def test_missing_key_is_none(self, engine: KVEngine) -> None:
        assert engine.get(b"missing") is None
        assert engine.get_many([b"missing"]) == [None]

    def test_put_get(self, engine: KVEngine) -> None:
        engine.put(b"k", b"v")
        assert engine.get(b"k") == b"v"
        assert engine.get(b"k\x00") is None

    def test_empty_value_round_trips(self, engine: KVEngine) -> None:
        engine.put(b"e", b"")
        assert engine.get(b"e") == b""
        assert engine.get_many([b"e", b"x"]) == [b"", None]
        assert _items(engine) == [(b"e", b"")]

    def test_keys_with_zero_and_ff_bytes(self, engine: KVEngine) -> None:
        keys = [b"\x00", b"\x00\x00", b"\xff", b"\xff\xff", b"a\x00b", b"a\xffb", b"\x00\xff"]
        for i, k in enumerate(keys):
            engine.put(k, bytes([i]))
        for i, k in enumerate(keys):
            assert engine.get(k) == bytes([i])
        assert _keys(engine) == sorted(keys)

    def test_values_are_byte_exact(self, engine: KVEngine) -> None:
        every_byte = bytes(range(256)) * 4
        gzip_like = b"\x1f\x8b\x08\x00" + bytes(100)  # must not be transcoded
        engine.put(b"all", every_byte)
        engine.put(b"gz", gzip_like)
        assert engine.get(b"all") == every_byte
        assert engine.get(b"gz") == gzip_like
        assert dict(_items(engine)) == {b"all": every_byte, b"gz": gzip_like}

    def test_large_value(self, engine: KVEngine) -> None:
        value = os.urandom(self.large_value_size)
        engine.put(b"big", value)
        assert engine.get(b"big") == value
        assert _items(engine) == [(b"big", value)]

    def test_overwrite(self, engine: KVEngine) -> None:
        engine.put(b"k", b"one")
        engine.put(b"k", b"two")
        engine.put(b"k", b"")
        engine.put(b"k", b"three")
        assert engine.get(b"k") == b"three"
        assert _items(engine) == [(b"k", b"three")]

    def test_delete(self, engine: KVEngine) -> None:
        engine.put(b"a", b"1")
        engine.put(b"b", b"2")
        engine.delete(b"a")
        assert engine.get(b"a") is None
        assert _items(engine) == [(b"b", b"2")]

    def test_delete_missing_is_fine(self, engine: KVEngine) -> None:
        engine.delete(b"never-written")
        engine.put(b"x", b"1")
        engine.delete(b"x")
        engine.delete(b"x")
        assert engine.get(b"x") is None

    def test_get_many_order_and_missing(self, engine: KVEngine) -> None:
        for k in (b"c", b"a", b"b"):
            engine.put(k, k * 2)
        assert engine.get_many([]) == []
        got = engine.get_many([b"b", b"zz", b"a", b"c", b"a", b"\x00"])
        assert got == [b"bb", None, b"aa", b"cc", b"aa", None]

    # ----- order and scans -----------------------------------------------------------------

    def test_unsigned_byte_order(self, engine: KVEngine) -> None:
        keys = [b"\x80", b"\xff", b"\x7f", b"\x00", b"\x01", b"\x7f\xff", b"\x80\x00", b"\xfe"]
        for k in keys:
            engine.put(k, b"v")
        expected = [b"\x00", b"\x01", b"\x7f", b"\x7f\xff", b"\x80", b"\x80\x00", b"\xfe", b"\xff"]
        assert _keys(engine) == expected
        assert _keys(engine, reverse=True) == expected[::-1]
        assert _keys(engine, KeyRange(b"\x7f", b"\x80")) == [b"\x7f", b"\x7f\xff"]

    def test_scan_bounds(self, engine: KVEngine) -> None:
        for k in (b"a", b"b", b"ba", b"c", b"d"):
            engine.put(k, k.upper())
        assert _items(engine, KeyRange(b"b", b"d")) == [(b"b", b"B"), (b"ba", b"BA"), (b"c", b"C")]
        assert _keys(engine, KeyRange(b"b", b"c")) == [b"b", b"ba"]  # end exclusive
        assert _keys(engine, KeyRange(b"b", b"ba")) == [b"b"]
        assert _keys(engine, KeyRange(b"b\x00", b"c\x00")) == [b"ba", b"c"]  # start inclusive
        assert _keys(engine, KeyRange(b"bb")) == [b"c", b"d"]  # end=None: unbounded
        assert _keys(engine, KeyRange()) == [b"a", b"b", b"ba", b"c", b"d"]
        assert _keys(engine, KeyRange(b"", b"b")) == [b"a"]
        assert _keys(engine, KeyRange(b"e")) == []
        assert _keys(engine, KeyRange(b"", b"a")) == []

    def test_empty_and_inverted_ranges_yield_nothing(self, engine: KVEngine) -> None:
        for k in (b"a", b"b", b"c"):
            engine.put(k, b"v")
        for rng in (KeyRange(b"b", b"b"), KeyRange(b"c", b"a"), KeyRange(b"b\x00", b"b")):
            for reverse in (False, True):
                assert _items(engine, rng, reverse=reverse) == []
                assert _items(engine, rng, reverse=reverse, keys_only=True) == []
            assert engine.delete_range(rng) == 0
        assert _keys(engine) == [b"a", b"b", b"c"]

    def test_prefix_ranges(self, engine: KVEngine) -> None:
        keys = [b"\x00", b"a", b"ab", b"ab\xff", b"ac", b"\xfe\xff"]
        keys += [b"\xff", b"\xff\x00", b"\xff\xff"]
        for k in keys:
            engine.put(k, k)
        prefixes = [b"", b"a", b"ab", b"ab\xff", b"\xfe", b"\xff", b"\xff\xff", b"\xff" * 3, b"z"]
        for p in prefixes:
            want = sorted(k for k in keys if k.startswith(p))
            assert _keys(engine, KeyRange.prefix(p)) == want, p
            assert _keys(engine, KeyRange.prefix(p), reverse=True) == want[::-1], p

    def test_keys_only(self, engine: KVEngine) -> None:
        engine.put(b"a", b"value-a")
        engine.put(b"b", b"")
        engine.put(b"c", b"value-c" * 100)
        assert _items(engine, keys_only=True) == [(b"a", b""), (b"b", b""), (b"c", b"")]
        assert _items(engine, KeyRange(b"b"), keys_only=True, reverse=True) == [
            (b"c", b""),
            (b"b", b""),
        ]

    def test_reverse_scan_bounds(self, engine: KVEngine) -> None:
        for k in (b"a", b"b", b"ba", b"c", b"d"):
            engine.put(k, k)
        assert _keys(engine, KeyRange(b"b", b"d"), reverse=True) == [b"c", b"ba", b"b"]
        assert _keys(engine, KeyRange(b"b", b"c"), reverse=True) == [b"ba", b"b"]
        assert _keys(engine, KeyRange(b"b\x00", b"d\x00"), reverse=True) == [b"d", b"c", b"ba"]
        assert _keys(engine, KeyRange(b"bb"), reverse=True) == [b"d", b"c"]
        assert _keys(engine, KeyRange(b"", b"b"), reverse=True) == [b"a"]
        assert _keys(engine, KeyRange(b"", b"a"), reverse=True) == []
        assert _keys(engine, KeyRange(b"e"), reverse=True) == []
        # The highest key in range equals start (plyvel 1.5.1 gets this wrong natively).
        assert _keys(engine, KeyRange(b"ba", b"c"), reverse=True) == [b"ba"]
        assert _keys(engine, KeyRange(b"c", b"c\x00"), reverse=True) == [b"c"]
        assert _keys(engine, KeyRange(b"d"), reverse=True) == [b"d"]
        assert _items(engine, KeyRange(b"c", b"z"), reverse=True) == [(b"d", b"d"), (b"c", b"c")]

    def test_interleaved_scans(self, engine: KVEngine) -> None:
        for i in range(20):
            engine.put(bytes([i]), bytes([i]))
        fwd = engine.scan(KeyRange())
        rev = engine.scan(KeyRange(), reverse=True)
        pairs = [(next(fwd)[0], next(rev)[0]) for _ in range(20)]
        assert pairs == [(bytes([i]), bytes([19 - i])) for i in range(20)]
        assert list(fwd) == []
        assert list(rev) == []

    def test_read_views(self, engine: KVEngine) -> None:
        """``read_views``: the same pairs as ``scan``/``get_many``, keys as bytes, values
        buffers that stay valid (and unchanged: one snapshot) until the block exits, even
        after the scans end and other writers overwrite and delete those keys."""
        old = {bytes([i]) + b"k": bytes([i]) * (1000 + i) for i in range(0, 40, 2)}
        for k, v in old.items():
            engine.put(k, v)
        engine.put(b"\x00", b"")
        want = _items(engine, KeyRange(b"\x01", b"\x20"))
        with engine.read_views() as r:
            got = list(r.scan(KeyRange(b"\x01", b"\x20")))
            assert list(r.scan(KeyRange(b"\x09", b"\x09"))) == []
            many = r.get_many([b"\x04k", b"\x05k", b"\x00", b"\x26k"])
            for k in old:
                engine.put(k, b"new")
            engine.delete(b"\x04k")
            assert all(type(k) is bytes for k, _ in got)
            assert [(k, bytes(v)) for k, v in got] == want
            assert [None if v is None else bytes(v) for v in many] == \
                [old[b"\x04k"], None, b"", old[b"\x26k"]]
            if type(engine).zero_copy_reads:
                assert any(not isinstance(v, bytes) for _, v in got)
        assert engine.get(b"\x04k") is None and engine.get(b"\x06k") == b"new"

    def test_delete_while_scanning(self, engine: KVEngine) -> None:
        keys = [bytes([i, j]) for i in range(3) for j in range(10)]
        for k in keys:
            engine.put(k, k)
        seen = []
        for k, v in engine.scan(KeyRange()):
            assert v == k
            seen.append(k)
            engine.delete(k)
        assert seen == keys
        assert _items(engine) == []

    @pytest.mark.slow
    def test_more_than_1000_keys_in_one_scan(self, engine: KVEngine) -> None:
        n = self.many_keys
        assert n > 1000
        keys = [i.to_bytes(2, "big") for i in range(n)]
        with engine.batch() as wb:
            for k in keys:
                wb.put(k, k[::-1])
        assert _items(engine) == [(k, k[::-1]) for k in keys]
        assert _keys(engine, reverse=True, keys_only=True) == keys[::-1]
        mid = KeyRange(keys[990], keys[1000])  # crosses nothing but ends at the 1001st key
        assert _keys(engine, mid) == keys[990:1000]
        assert _keys(engine, KeyRange(keys[998]), reverse=True) == keys[998:][::-1]
        assert engine.get_many(keys[995:]) == [k[::-1] for k in keys[995:]]
        assert engine.delete_range(KeyRange(keys[-5])) == 5
        assert _keys(engine, KeyRange(keys[-10])) == keys[-10:-5]

    # ----- delete_range ----------------------------------------------------------------------

    def test_delete_range(self, engine: KVEngine) -> None:
        keys = [b"a", b"b", b"b\x00", b"ba", b"bz", b"c", b"c\x00", b"d"]
        for k in keys:
            engine.put(k, k)
        assert engine.delete_range(KeyRange(b"b", b"c")) == 4
        assert _keys(engine) == [b"a", b"c", b"c\x00", b"d"]
        assert engine.delete_range(KeyRange(b"b", b"c")) == 0
        assert engine.delete_range(KeyRange.prefix(b"c")) == 2
        assert _keys(engine) == [b"a", b"d"]

    def test_delete_range_unbounded(self, engine: KVEngine) -> None:
        keys = [b"\x00", b"a", b"m", b"\xff", b"\xff\xff\xff"]
        for k in keys:
            engine.put(k, b"v")
        assert engine.delete_range(KeyRange(b"m")) == 3
        assert _keys(engine) == [b"\x00", b"a"]
        engine.put(b"\xff\xff", b"v")
        assert engine.delete_range(KeyRange.prefix(b"\xff")) == 1
        assert engine.delete_range(KeyRange()) == 2
        assert _items(engine) == []
        engine.put(b"new", b"v")  # the store stays usable after deleting everything
        assert _items(engine) == [(b"new", b"v")]

    # ----- batches ----------------------------------------------------------------------------

    def test_batch_last_operation_wins(self, engine: KVEngine) -> None:
        engine.put(b"gone", b"old")
        engine.put(b"back", b"old")
        with engine.batch() as wb:
            wb.put(b"k", b"1")
            wb.put(b"k", b"2")
            wb.put(b"del", b"x")
            wb.delete(b"del")
            wb.delete(b"gone")
            wb.delete(b"back")
            wb.put(b"back", b"new")
            wb.put(b"empty", b"")
        assert engine.get(b"k") == b"2"
        assert engine.get(b"del") is None
        assert engine.get(b"gone") is None
        assert engine.get(b"back") == b"new"
        assert _items(engine) == [(b"back", b"new"), (b"empty", b""), (b"k", b"2")]

    def test_batch_nothing_visible_before_commit(self, engine: KVEngine) -> None:
        engine.put(b"d", b"old")
        wb = engine.batch()
        wb.put(b"a", b"1")
        wb.delete(b"d")
        assert engine.get(b"a") is None
        assert engine.get(b"d") == b"old"
        assert _keys(engine) == [b"d"]
        wb.commit()
        assert _items(engine) == [(b"a", b"1")]

    def test_batch_discarded_when_block_raises(self, engine: KVEngine) -> None:
        engine.put(b"keep", b"v")
        with pytest.raises(_Abort), engine.batch() as wb:
            wb.put(b"a", b"1")
            wb.delete(b"keep")
            raise _Abort
        assert _items(engine) == [(b"keep", b"v")]

    def test_batch_commit_twice_raises(self, engine: KVEngine) -> None:
        wb = engine.batch()
        wb.put(b"a", b"1")
        wb.commit()
        with pytest.raises(RuntimeError):
            wb.commit()
        assert engine.get(b"a") == b"1"

    def test_empty_batch(self, engine: KVEngine) -> None:
        with engine.batch():
            pass
        assert _items(engine) == []

    def test_batch_atomic_for_concurrent_scans(self, engine: KVEngine) -> None:
        require(engine, atomic_batches=True)
        keys = [bytes([i]) for i in range(50)]
        with engine.batch() as wb:
            for k in keys:
                wb.put(k, b"0")
        stop = threading.Event()
        bad: list[set[bytes]] = []

        def reader() -> None:
            while not stop.is_set():
                values = {v for _, v in engine.scan(KeyRange())}
                if len(values) != 1:
                    bad.append(values)

        t = threading.Thread(target=reader)
        t.start()
        try:
            for gen in range(1, 60):
                with engine.batch() as wb:
                    for k in keys:
                        wb.put(k, str(gen).encode())
        finally:
            stop.set()
            t.join()
        assert bad == []

    # ----- capabilities, threads, registry --------------------------------------------------

    def test_persistence_across_reopen(self, engine: KVEngine) -> None:
        require(engine, persistent=True)
        engine.put(b"a", b"1")
        engine.put(b"\xff", b"")
        with engine.batch() as wb:
            wb.put(b"b", b"2")
            wb.delete(b"a")
        engine = self.reopen(engine)
        assert engine.get(b"a") is None
        assert _items(engine) == [(b"b", b"2"), (b"\xff", b"")]
        engine.put(b"c", b"3")
        engine = self.reopen(engine)
        assert _keys(engine) == [b"b", b"c", b"\xff"]

    def test_concurrent_puts_and_gets(self, engine: KVEngine) -> None:
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(self.ops_per_thread):
                    k = b"t%d-%05d" % (t, i)
                    engine.put(k, k)
                    if engine.get(k) != k:
                        raise AssertionError(f"read-your-write failed for {k!r}")
                    if i % 10 == 0:
                        engine.get_many([k, b"nope"])
                        list(engine.scan(KeyRange.prefix(b"t%d-" % t), keys_only=True))
            except BaseException as e:
                errors.append(e)

        ts = [threading.Thread(target=work, args=(t,)) for t in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        n = self.ops_per_thread
        expected = sorted(b"t%d-%05d" % (t, i) for t in range(self.threads) for i in range(n))
        assert _keys(engine, keys_only=True) == expected

    def test_compare_and_swap(self, engine: KVEngine) -> None:
        assert engine.compare_and_swap(b"c", None, None)  # absent stays absent
        assert engine.compare_and_swap(b"c", None, b"1")
        assert not engine.compare_and_swap(b"c", None, b"2")  # exists now
        assert not engine.compare_and_swap(b"c", b"0", b"2")  # wrong expectation
        assert not engine.compare_and_swap(b"c", None, None)
        assert engine.get(b"c") == b"1"
        assert engine.compare_and_swap(b"c", b"1", b"")
        assert engine.get(b"c") == b""
        assert not engine.compare_and_swap(b"c", b"1", None)
        assert engine.compare_and_swap(b"c", b"", None)  # delete if equal
        assert engine.get(b"c") is None
        assert not engine.compare_and_swap(b"c", b"", b"x")

    def test_compare_and_swap_counter_through_two_handles(self, engine: KVEngine) -> None:
        """Threads increment one counter by CAS through two handles on one location (two
        servers, for shareable engines): no increment is lost."""
        if not self.cas_is_atomic:
            pytest.skip("the server under test does not check conditional writes")
        handles = [engine, self._open()] if type(engine).shareable else [engine]
        per_thread = max(5, self.ops_per_thread // 10)

        def work(h: KVEngine) -> None:
            for _ in range(per_thread):
                while True:
                    cur = h.get(b"n")
                    nxt = str(int(cur or b"0") + 1).encode()
                    if h.compare_and_swap(b"n", cur, nxt):
                        break

        ts = [threading.Thread(target=work, args=(handles[t % len(handles)],))
              for t in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert engine.get(b"n") == str(per_thread * self.threads).encode()

    def test_registry_knows_engine(self, engine: KVEngine) -> None:
        assert engine.name in available_engines()
        assert engine_class(engine.name) is type(engine)
        assert isinstance(engine.describe(), str)

    def test_close_is_idempotent(self, engine: KVEngine) -> None:
        engine.put(b"a", b"1")
        engine.close()
        engine.close()


# ----- model-based testing -------------------------------------------------------------------

#: Bytes keys are built from: few enough that keys collide and prefix each other often.
KEY_ALPHABET = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
keys_strategy = st.lists(st.sampled_from(KEY_ALPHABET), min_size=1, max_size=3).map(bytes)
values_strategy = st.binary(max_size=6)
prefixes_strategy = st.lists(st.sampled_from(KEY_ALPHABET), max_size=2).map(bytes)
ops_strategy = st.lists(st.tuples(keys_strategy, st.one_of(st.none(), values_strategy)), max_size=8)


def make_engine_state_machine(
    engine_factory: Callable[[], KVEngine],
    keys: st.SearchStrategy[bytes] | None = None,
    prefixes: st.SearchStrategy[bytes] | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine comparing engines from ``engine_factory`` with a ``dict`` model.

    ``engine_factory`` must return a fresh, empty engine on every call (one per example);
    the machine closes it in ``teardown``. Rules: put, delete, get, get_many, batch
    (committed or aborted by an exception), scan (forward/reverse, keys_only), prefix scan
    and delete_range, with keys from :data:`KEY_ALPHABET` (or the strategies ``keys`` and
    ``prefixes``, e.g. keys around an engine's internal key-length limit).
    """
    keys_strategy = keys if keys is not None else globals()["keys_strategy"]
    prefixes_strategy = prefixes if prefixes is not None else globals()["prefixes_strategy"]
    ops_strategy = st.lists(st.tuples(keys_strategy, st.one_of(st.none(), values_strategy)),
                            max_size=8)

    class EngineStateMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.engine = engine_factory()
            self.model: dict[bytes, bytes] = {}

        def _key(self, data: st.DataObject) -> bytes:
            """A key that exists in the model about half of the time."""
            if self.model:
                return data.draw(st.one_of(keys_strategy, st.sampled_from(sorted(self.model))))
            return data.draw(keys_strategy)

        def _range(self, data: st.DataObject) -> KeyRange:
            """A range whose bounds often sit exactly on, or just after, stored keys."""
            bound = [st.just(b""), keys_strategy]
            if self.model:
                stored = st.sampled_from(sorted(self.model))
                bound += [stored, stored.map(lambda k: k + b"\x00")]
            start = data.draw(st.one_of(bound), label="start")
            end = data.draw(st.one_of([st.none(), *bound[1:]]), label="end")
            return KeyRange(start, end)

        def _expected(self, rng: KeyRange, keys_only: bool, reverse: bool) -> list[Any]:
            items = sorted((k, b"" if keys_only else v) for k, v in self.model.items() if k in rng)
            return items[::-1] if reverse else items

        @rule(key=keys_strategy, value=values_strategy)
        def put(self, key: bytes, value: bytes) -> None:
            self.engine.put(key, value)
            self.model[key] = value

        @rule(data=st.data())
        def delete(self, data: st.DataObject) -> None:
            key = self._key(data)
            self.engine.delete(key)
            self.model.pop(key, None)

        @rule(data=st.data())
        def get(self, data: st.DataObject) -> None:
            key = self._key(data)
            assert self.engine.get(key) == self.model.get(key)

        @rule(keys=st.lists(keys_strategy, max_size=6))
        def get_many(self, keys: list[bytes]) -> None:
            assert self.engine.get_many(keys) == [self.model.get(k) for k in keys]

        @rule(ops=ops_strategy, abort=st.booleans())
        def batch(self, ops: list[tuple[bytes, bytes | None]], abort: bool) -> None:
            with contextlib.suppress(_Abort), self.engine.batch() as wb:
                for key, value in ops:
                    if value is None:
                        wb.delete(key)
                    else:
                        wb.put(key, value)
                if abort:
                    raise _Abort
            if not abort:
                for key, value in ops:
                    if value is None:
                        self.model.pop(key, None)
                    else:
                        self.model[key] = value

        @rule(data=st.data(), keys_only=st.booleans(), reverse=st.booleans())
        def scan(self, data: st.DataObject, keys_only: bool, reverse: bool) -> None:
            rng = self._range(data)
            got = list(self.engine.scan(rng, keys_only=keys_only, reverse=reverse))
            assert got == self._expected(rng, keys_only, reverse)

        @rule(prefix=prefixes_strategy, reverse=st.booleans())
        def prefix_scan(self, prefix: bytes, reverse: bool) -> None:
            rng = KeyRange.prefix(prefix)
            got = list(self.engine.scan(rng, reverse=reverse))
            expected = sorted((k, v) for k, v in self.model.items() if k.startswith(prefix))
            assert got == (expected[::-1] if reverse else expected)

        @rule(data=st.data())
        def delete_range(self, data: st.DataObject) -> None:
            rng = self._range(data)
            doomed = [k for k in self.model if k in rng]
            assert self.engine.delete_range(rng) == len(doomed)
            for k in doomed:
                del self.model[k]

        def teardown(self) -> None:
            self.engine.close()

    return EngineStateMachine


def run_engine_state_machine(
    engine_factory: Callable[[], KVEngine],
    *,
    max_examples: int = 50,
    stateful_step_count: int = 30,
    keys: st.SearchStrategy[bytes] | None = None,
    prefixes: st.SearchStrategy[bytes] | None = None,
    **settings_kwargs: Any,
) -> None:
    """Run :func:`make_engine_state_machine` as a test with the given hypothesis settings
    (``keys``, ``prefixes``: see there).

    The deadline and the "too slow" health check are off by default: I/O latency varies.
    """
    machine = make_engine_state_machine(engine_factory, keys, prefixes)
    settings_kwargs.setdefault("deadline", None)
    settings_kwargs.setdefault("suppress_health_check", [HealthCheck.too_slow])
    run_state_machine_as_test(
        machine,
        settings=hsettings(
            max_examples=max_examples,
            stateful_step_count=stateful_step_count,
            **settings_kwargs,
        ),
    )


# ----- GCS emulator ----------------------------------------------------------------------------


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gcs_emulator(host: str = "127.0.0.1", *, timeout: float = 30.0) -> Iterator[str]:
    """Run ``gcp-storage-emulator`` in memory in a subprocess; yields its endpoint URL.

    The emulator process is stopped on exit. Emulator facts worth knowing: it serves one
    request at a time; it ignores ``startOffset``, ``endOffset`` and ``maxResults`` (every
    listing is a single, name-sorted page); and every write re-serialises the metadata of
    all objects it holds, so writes slow down as it fills up. Its ``GET /wipe`` endpoint
    deletes every bucket. Buckets get a 7-day soft-delete policy (deleted objects are
    kept) unless it is patched to 0.
    """
    last_error = ""
    for _attempt in range(3):
        port = _free_port(host)
        endpoint = f"http://{host}:{port}"
        with tempfile.TemporaryFile() as log:
            cmd = [sys.executable, "-m", "gcp_storage_emulator", "start"]
            cmd += ["--host", host, "--port", str(port), "--in-memory", "--quiet"]
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=log,
            )
            try:
                deadline = time.monotonic() + timeout
                while proc.poll() is None and time.monotonic() < deadline:
                    try:
                        with urllib.request.urlopen(endpoint + "/", timeout=2):
                            break
                    except OSError:
                        time.sleep(0.05)
                if proc.poll() is None and time.monotonic() < deadline:
                    yield endpoint
                    return
                log.seek(0)
                last_error = log.read().decode(errors="replace")[-2000:]
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    raise RuntimeError(f"the GCS emulator did not start: {last_error}")


# ----- PostgreSQL, S3 (moto) and Redis servers -------------------------------------------------


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes] | None,
               timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def postgres_bin_dir() -> str:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb`` (Debian's layout)."""
    import glob

    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not dirs:
        raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
    return os.path.dirname(dirs[-1])


@contextlib.contextmanager
def postgres_server(host: str = "127.0.0.1", *, timeout: float = 60.0) -> Iterator[str]:
    """Run a throwaway PostgreSQL from Debian's ``postgresql`` package; yields its DSN.

    ``initdb`` makes a cluster in a temporary directory (trust authentication, fsync off),
    ``pg_ctl`` starts it on ``host`` and a free port with its socket in that directory, and
    everything is removed on exit. PostgreSQL refuses to run as root, so as root the
    directory is given to the ``postgres`` user and the binaries run through
    ``runuser -u postgres --``. The DSN is ``postgresql://postgres@HOST:PORT/postgres``.
    """
    import pwd
    import shutil

    bindir = postgres_bin_dir()
    # as root, under /tmp: the postgres user must be able to reach the directory
    as_root = os.geteuid() == 0
    tmp = tempfile.mkdtemp(prefix="dvidpy-pg-", dir="/tmp" if as_root else None)
    prefix: list[str] = []
    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(tmp, "data")
    log = os.path.join(tmp, "log")
    port = _free_port(host)
    try:
        subprocess.run([*prefix, f"{bindir}/initdb", "-D", data, "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=timeout)
        opts = (f"-c listen_addresses={host} -p {port} -k {tmp} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", data, "-l", log, "-o", opts,
                        "-w", "-t", str(int(timeout)), "start"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=timeout + 5)
        if not _wait_port(host, port, None, timeout):
            raise RuntimeError("PostgreSQL did not open its port")
        yield f"postgresql://postgres@{host}:{port}/postgres"
    except subprocess.CalledProcessError as e:
        tail = ""
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                tail = f.read()[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {e.stderr!r} {tail}") from e
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate",
                            "-w", "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


#: Credentials the S3 fixture puts in the environment (moto accepts any).
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_server(host: str = "127.0.0.1", *, timeout: float = 60.0) -> Iterator[str]:
    """Run moto's standalone S3-compatible server (``python -m moto.server``) in a child
    process; yields its endpoint URL. State is in memory and gone on exit. Clients need
    credentials in the environment (any values: see :data:`MOTO_CREDENTIALS`)."""
    port = _free_port(host)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p",
                                 str(port)], stdout=log, stderr=log)
        try:
            if not _wait_port(host, port, proc, timeout):
                log.seek(0)
                raise RuntimeError(f"moto server did not start: {log.read()[-2000:]!r}")
            yield f"http://{host}:{port}"
        finally:
            _stop(proc)


@contextlib.contextmanager
def redis_server(host: str = "127.0.0.1", *, timeout: float = 30.0) -> Iterator[str]:
    """Run Debian's ``redis-server`` on ``host`` and a free port with its working directory
    in a temporary folder and persistence off; yields ``redis://HOST:PORT/0``."""
    import shutil

    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = _free_port(host)
    with tempfile.TemporaryDirectory(prefix="dvidpy-redis-") as tmp:
        proc = subprocess.Popen([exe, "--bind", host, "--port", str(port), "--dir", tmp,
                                 "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not _wait_port(host, port, proc, timeout):
                raise RuntimeError("redis-server did not start")
            yield f"redis://{host}:{port}/0"
        finally:
            _stop(proc)
