"""The in-memory reference engine against the conformance suite and the dict model."""

from __future__ import annotations

import pytest

from storage import KeyRange, open_engine
from storage.memory import MemoryEngine
from storage.testing import KVEngineTests, run_engine_state_machine


class TestMemoryEngine(KVEngineTests):
    engine_name = "memory"


def test_memory_matches_model() -> None:
    run_engine_state_machine(MemoryEngine.open, max_examples=100, stateful_step_count=30)


def test_location_ignored_and_options_rejected() -> None:
    a, b = open_engine("memory", "/nonexistent/path"), open_engine("memory")
    a.put(b"k", b"v")
    assert b.get(b"k") is None
    assert len(a) == 1
    with pytest.raises(TypeError):
        MemoryEngine.open("", cache_mb=1)


def test_scan_is_snapshot_at_call_time() -> None:
    e = MemoryEngine.open()
    for i in range(5):
        e.put(bytes([i]), b"old")
    it = e.scan(KeyRange())
    e.delete(b"\x00")
    e.put(b"\x01", b"new")
    e.put(b"\x09", b"new")
    assert list(it) == [(bytes([i]), b"old") for i in range(5)]


def test_values_are_copied() -> None:
    e = MemoryEngine.open()
    buf = bytearray(b"abc")
    e.put(b"k", buf)  # type: ignore[arg-type]
    buf[0] = ord("X")
    assert e.get(b"k") == b"abc"
