"""Tests for datatypes.common.blockscan: region scans against a plain model, and their cost.

The model is the brute-force answer: every stored block filtered by membership in the
region, sorted in ZYX key order. Regions and stored blocks are drawn near the corners of
the int32 range as well as near 0, so the key encoding's extremes are exercised. The cost
test counts the engine scans and the keys they read: both must be bounded by the stored
blocks, not by the region's volume.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.common import roi_spans as rs
from datatypes.common.blockscan import (
    BoxRegion,
    SpanRegion,
    block_tkey,
    decode_block_tkey,
    scan_region,
)
from datatypes.common.geometry import INT32_MAX, INT32_MIN
from dvidpy.dag import Node, VersionDAG
from dvidpy.versioned import VersionedCtx, VersionedStore
from storage import open_engine

CLS = 23
SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
# coordinates near 0 and near both ends of int32
coord = st.one_of(st.integers(-4, 4), st.integers(INT32_MIN, INT32_MIN + 3),
                  st.integers(INT32_MAX - 3, INT32_MAX))
block = st.tuples(coord, coord, coord)


class CountingEngine:
    """Wraps an engine, counting scans and the keys they yield."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.scans = 0
        self.keys = 0

    def scan(self, rng, keys_only=False):
        self.scans += 1
        for kv in self.inner.scan(rng, keys_only=keys_only):
            self.keys += 1
            yield kv

    def __getattr__(self, name):
        return getattr(self.inner, name)


def make_store(blocks, other_classes: bool = True) -> tuple[VersionedStore, VersionedCtx,
                                                             CountingEngine]:
    eng = CountingEngine(open_engine("memory", ""))
    store = VersionedStore(eng)  # type: ignore[arg-type]
    dag = VersionDAG(Node(uuid=f"{1:032x}", version=1))
    ctx = VersionedCtx(instance_id=3, version=1, ancestry=dag.ancestry(1), node=dag.node(1),
                       is_ancestor=dag.is_ancestor)
    with store.batch(ctx) as b:
        for x, y, z in blocks:
            b.put(block_tkey(CLS, x, y, z), f"{x},{y},{z}".encode())
            if other_classes:  # neighbours in key space that must never show up
                b.put(block_tkey(CLS - 1, x, y, z), b"no")
                b.put(block_tkey(CLS + 1, x, y, z), b"no")
    eng.scans = eng.keys = 0
    return store, ctx, eng


def zyx(b):
    return (b[2], b[1], b[0])


def test_key_roundtrip_and_order() -> None:
    pts = [(INT32_MIN, 0, 5), (INT32_MAX, INT32_MIN, INT32_MAX), (0, 0, 0), (-1, 2, -3)]
    for p in pts:
        assert decode_block_tkey(block_tkey(CLS, *p)) == p
    assert sorted(pts, key=zyx) == sorted(pts, key=lambda p: block_tkey(CLS, *p))


@SETTINGS
@given(st.sets(block, max_size=40), block, block)
def test_box_region_matches_model(stored, a, b) -> None:
    lo = tuple(min(u, v) for u, v in zip(a, b, strict=True))
    hi = tuple(max(u, v) for u, v in zip(a, b, strict=True))
    store, ctx, _ = make_store(stored)
    got = [(p, v) for p, v in scan_region(store, ctx, CLS, BoxRegion(lo, hi))]
    want = sorted((p for p in stored
                   if all(lo[i] <= p[i] <= hi[i] for i in range(3))), key=zyx)
    assert [p for p, _ in got] == want
    assert all(v == f"{p[0]},{p[1]},{p[2]}".encode() for p, v in got)


spans_strategy = st.lists(st.tuples(coord, coord, coord, st.integers(0, 3)), max_size=12)


@SETTINGS
@given(st.sets(block, max_size=40), spans_strategy)
def test_span_region_matches_model(stored, raw) -> None:
    spans = [[z, y, x0, min(INT32_MAX, x0 + n)] for z, y, x0, n in raw]
    norm = rs.normalize_spans(spans) if spans else np.zeros((0, 4), np.int64)
    store, ctx, _ = make_store(stored)
    got = [p for p, _ in scan_region(store, ctx, CLS, SpanRegion(norm))]
    inside = rs.points_in_roi(np.array(sorted(stored, key=zyx), np.int64).reshape(-1, 3),
                              norm, 1) if stored else np.zeros(0, bool)
    want = [p for p, ok in zip(sorted(stored, key=zyx), inside.tolist(), strict=True) if ok]
    assert got == want


def test_empty_regions() -> None:
    store, ctx, eng = make_store([(0, 0, 0)])
    assert list(scan_region(store, ctx, CLS, BoxRegion((1, 0, 0), (0, 5, 5)))) == []
    assert list(scan_region(store, ctx, CLS, SpanRegion(np.zeros((0, 4), np.int64)))) == []
    assert eng.scans == 0
    with pytest.raises(ValueError, match="int32"):
        BoxRegion((0, 0, 0), (INT32_MAX + 1, 0, 0))


def test_cost_is_bounded_by_stored_blocks() -> None:
    """The whole int32 block space (2**96 blocks) on an instance holding a few blocks
    along the diagonal, and a thin box across it: a handful of scans, each stored key read
    at most once (per restart), whatever the region's volume."""
    stored = [(i * 1000, i * 1000, i * 1000) for i in range(-5, 6)]
    store, ctx, eng = make_store(stored)
    whole = BoxRegion((INT32_MIN,) * 3, (INT32_MAX,) * 3)
    assert [p for p, _ in scan_region(store, ctx, CLS, whole)] == sorted(stored, key=zyx)
    assert eng.scans == 1
    eng.scans = eng.keys = 0
    # a box of one x column through every (y, z): 2**64 rows, holding no stored block
    thin = BoxRegion((1, INT32_MIN, INT32_MIN), (1, INT32_MAX, INT32_MAX))
    assert list(scan_region(store, ctx, CLS, thin)) == []
    assert eng.scans <= len(stored) + 1
    assert eng.keys <= 2 * len(stored) + 2
    # a big region of spans, one per row, holding one stored block
    rows = np.arange(-50_000, 50_000, dtype=np.int64)
    spans = np.stack([rows, rows, rows - 3, rows + 3], axis=1)
    eng.scans = eng.keys = 0
    got = [p for p, _ in scan_region(store, ctx, CLS, SpanRegion(spans))]
    assert got == sorted((p for p in stored if abs(p[0]) < 50_000), key=zyx)
    assert eng.scans <= 2 * len(stored) + 2
