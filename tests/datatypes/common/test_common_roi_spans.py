"""Tests for datatypes.common.roi_spans against brute-force, test-only oracles."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datatypes.common.roi_spans import (
    INT32_MAX,
    INT32_MIN,
    blocks_to_spans,
    normalize_spans,
    num_blocks,
    partition,
    points_in_roi,
    roi_mask,
    spans_to_blocks,
    spans_to_list,
    stored_spans,
    validate_spans,
    z_extent,
)

SETTINGS = settings(max_examples=80, deadline=None)

coord = st.integers(-6, 6)


@st.composite
def span_lists(draw, max_size=12):
    n = draw(st.integers(0, max_size))
    out = []
    for _ in range(n):
        z, y, x0 = draw(coord), draw(coord), draw(coord)
        out.append([z, y, x0, x0 + draw(st.integers(0, 6))])
    return out


block_sizes = st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5))


def oracle_blocks(spans) -> set[tuple[int, int, int]]:
    """Set of (x, y, z) blocks, by explicit enumeration (test-only loop)."""
    return {(x, y, z) for z, y, x0, x1 in spans for x in range(x0, x1 + 1)}


def zyx_sorted(blocks) -> list[tuple[int, int, int]]:
    return sorted(blocks, key=lambda b: (b[2], b[1], b[0]))


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad",
    [
        [[1, 2, 3]],
        [[1, 2, 3, 4, 5]],
        [[1, 2, 5, 4]],  # x1 < x0
        [[1, 2, 3, 4.0]],
        [[1, 2, 3, True]],
        [[1, 2, "3", 4]],
        [[1, 2, None, 4]],
        [[0, 0, 0, 2**31]],
        [[-(2**31) - 1, 0, 0, 0]],
        [[0, 0, 0, 2**70]],
        [1, 2, 3, 4],
        "[[1,2,3,4]]",
        {"a": 1},
        [[[1, 2, 3, 4]]],
        [[]],
        None,
        5,
        np.zeros((2, 3), np.int64),
        np.zeros((2, 4), np.float64),
        np.zeros((2, 4), bool),
    ],
)
def test_validate_rejects(bad):
    with pytest.raises(ValueError):
        validate_spans(bad)


def test_validate_accepts():
    assert validate_spans([]).shape == (0, 4)
    arr = validate_spans([[1, 2, 3, 3], [0, 0, -5, 10]])
    assert arr.dtype == np.int64 and arr.tolist() == [[1, 2, 3, 3], [0, 0, -5, 10]]
    assert validate_spans(np.array([[1, 2, 3, 4]], np.int32)).tolist() == [[1, 2, 3, 4]]
    assert validate_spans([[INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX]]).shape == (1, 4)
    with pytest.raises(ValueError, match="x1 < x0"):
        validate_spans([[0, 0, 0, 0], [1, 2, 5, 4]])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=20,
)


@SETTINGS
@given(json_values)
def test_validate_garbage_only_valueerror(value):
    try:
        arr = validate_spans(value)
    except ValueError:
        return
    assert arr.ndim == 2 and arr.shape[1] == 4
    assert (arr[:, 3] >= arr[:, 2]).all()


# ---------------------------------------------------------------------------- canonical forms


@SETTINGS
@given(span_lists())
def test_spans_to_blocks_and_back(spans):
    expected = zyx_sorted(oracle_blocks(spans))
    blocks = spans_to_blocks(spans)
    assert blocks.shape == (len(expected), 3)
    assert [tuple(b) for b in blocks.tolist()] == expected
    norm = normalize_spans(spans)
    np.testing.assert_array_equal(blocks_to_spans(blocks), norm)
    np.testing.assert_array_equal(normalize_spans(norm), norm)  # idempotent
    assert num_blocks(spans) == len(expected)
    # canonical: sorted and, within a row, separated by at least one missing block
    rows = norm.tolist()
    assert rows == sorted(rows)
    for a, b in itertools.pairwise(rows):
        if a[:2] == b[:2]:
            assert b[2] > a[3] + 1
    assert oracle_blocks(rows) == oracle_blocks(spans)


@SETTINGS
@given(st.lists(st.tuples(coord, coord, coord), max_size=40))
def test_blocks_to_spans_any_order(blocks):
    spans = blocks_to_spans(np.array(blocks, dtype=np.int64).reshape(-1, 3))
    assert oracle_blocks(spans.tolist()) == set(blocks)
    np.testing.assert_array_equal(spans, normalize_spans(spans))


def test_blocks_to_spans_errors():
    with pytest.raises(ValueError):
        blocks_to_spans(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError):
        blocks_to_spans(np.array([[0.5, 0, 0]]))
    with pytest.raises(ValueError):
        blocks_to_spans(np.array([[2**31, 0, 0]]))
    assert blocks_to_spans([]).shape == (0, 4)


def test_normalize_merges_adjacent_and_overlapping():
    spans = [[0, 0, 5, 6], [0, 0, 0, 2], [0, 0, 3, 4], [0, 1, 0, 0], [0, 0, 10, 12], [0, 0, 11, 11]]
    assert normalize_spans(spans).tolist() == [[0, 0, 0, 6], [0, 0, 10, 12], [0, 1, 0, 0]]


@SETTINGS
@given(span_lists())
def test_stored_spans_last_wins(spans):
    last = {}
    for s in spans:
        last[tuple(s[:3])] = s
    expected = [last[k] for k in sorted(last)]
    assert stored_spans(spans).tolist() == expected


def test_stored_spans_example_and_json():
    spans = [[1, 0, 0, 5], [0, 0, 0, 1], [1, 0, 0, 2]]
    out = stored_spans(spans)
    assert spans_to_list(out) == [[0, 0, 0, 1], [1, 0, 0, 2]]
    assert json.dumps(spans_to_list(out)) == "[[0, 0, 0, 1], [1, 0, 0, 2]]"


def test_z_extent():
    assert z_extent([]) == (INT32_MAX, INT32_MIN)
    assert z_extent([[3, 0, 0, 0], [-2, 5, 1, 1]]) == (-2, 3)


# ---------------------------------------------------------------------------- queries


@SETTINGS
@given(span_lists(), block_sizes, st.data())
def test_points_in_roi_oracle(spans, bs, data):
    pts = data.draw(
        st.lists(
            st.tuples(*(st.integers(-8 * b, 8 * b) for b in bs)),
            max_size=60,
        )
    )
    blocks = oracle_blocks(spans)
    expected = [(p[0] // bs[0], p[1] // bs[1], p[2] // bs[2]) in blocks for p in pts]
    got = points_in_roi(np.array(pts, dtype=np.int64).reshape(-1, 3), spans, bs)
    assert got.dtype == bool
    assert got.tolist() == expected


def test_points_in_roi_extremes():
    spans = [[0, 0, INT32_MAX - 1, INT32_MAX], [-1, -1, INT32_MIN, INT32_MIN]]
    pts = np.array(
        [
            [INT32_MAX, 0, 0],
            [2**40, 0, 0],  # block outside int32: outside
            [-1, -1, -1],  # right row, wrong x
            [INT32_MIN, -1, -1],
            [-(2**62), -1, -1],
        ],
        dtype=np.int64,
    )
    assert points_in_roi(pts, spans, 1).tolist() == [True, False, False, True, False]
    assert points_in_roi(np.zeros((0, 3), np.int64), spans, 1).shape == (0,)
    assert points_in_roi([[0, 0, 0]], [], 1).tolist() == [False]
    with pytest.raises(ValueError):
        points_in_roi([[0.5, 0, 0]], spans, 1)
    with pytest.raises(ValueError):
        points_in_roi([[0, 0]], spans, 1)


@SETTINGS
@given(
    span_lists(),
    block_sizes,
    st.tuples(*(st.integers(-25, 25),) * 3),
    st.tuples(*(st.integers(0, 14),) * 3),
)
def test_roi_mask_oracle(spans, bs, offset, size):
    blocks = oracle_blocks(spans)
    expected = np.zeros((size[2], size[1], size[0]), np.uint8)
    for z, y, x in itertools.product(range(size[2]), range(size[1]), range(size[0])):
        vx, vy, vz = offset[0] + x, offset[1] + y, offset[2] + z
        if (vx // bs[0], vy // bs[1], vz // bs[2]) in blocks:
            expected[z, y, x] = 1
    got = roi_mask(spans, offset, size, bs)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_roi_mask_errors():
    with pytest.raises(ValueError):
        roi_mask([[0, 0, 0, 0]], (0, 0, 0), (-1, 2, 2), 4)
    with pytest.raises(ValueError):
        roi_mask([[0, 0, 1, 0]], (0, 0, 0), (2, 2, 2), 4)


def test_roi_mask_large_is_fast_enough():
    spans = [[z, y, 0, 7] for z in range(8) for y in range(8) if (y + z) % 2 == 0]
    mask = roi_mask(spans, (0, 0, 0), (256, 256, 256), 32)
    assert mask.shape == (256, 256, 256)
    assert int(mask.sum()) == 32 * 8 * 32**3 and mask[0, 0, 0] == 1 and mask[0, 32, 0] == 0


# ---------------------------------------------------------------------------- partition


@SETTINGS
@given(span_lists(), st.integers(1, 5), block_sizes)
def test_partition_counts(spans, batch, bs):
    result = partition(spans, batch, bs)
    blocks = oracle_blocks(spans)
    subs = result["Subvolumes"]
    assert result["NumSubvolumes"] == len(subs)
    assert result["NumActiveBlocks"] == len(blocks)
    assert sum(s["ActiveBlocks"] for s in subs) == len(blocks)
    assert result["NumTotalBlocks"] == sum(s["TotalBlocks"] for s in subs) == len(subs) * batch**3
    json.dumps(result)  # plain JSON types
    seen: set[tuple[int, int, int]] = set()
    for s in subs:
        lo, hi = s["MinChunk"], s["MaxChunk"]
        assert [h - low + 1 for low, h in zip(lo, hi, strict=True)] == [batch] * 3
        assert s["MinPoint"] == [c * b for c, b in zip(lo, bs, strict=True)]
        assert s["MaxPoint"] == [(c + 1) * b - 1 for c, b in zip(hi, bs, strict=True)]
        inside = {b for b in blocks if all(lo[i] <= b[i] <= hi[i] for i in range(3))}
        assert s["ActiveBlocks"] == len(inside) > 0
        assert not (inside & seen)
        seen |= inside
        assert list(s) == [
            "MinPoint",
            "MaxPoint",
            "MinChunk",
            "MaxChunk",
            "TotalBlocks",
            "ActiveBlocks",
        ]
    assert seen == blocks
    order = [(s["MinChunk"][2], s["MinChunk"][1], s["MinChunk"][0]) for s in subs]
    assert order == sorted(order)
    if blocks:
        arr = np.array(sorted(blocks))
        assert result["ROI"]["MinChunk"] == arr.min(axis=0).tolist()
        assert result["ROI"]["MaxChunk"] == arr.max(axis=0).tolist()
        # the grid is anchored at ROI.MinChunk
        for s in subs:
            assert all(
                (c - m) % batch == 0
                for c, m in zip(s["MinChunk"], result["ROI"]["MinChunk"], strict=True)
            )


def test_partition_empty_and_errors():
    assert partition([], 8, 32) == {
        "NumTotalBlocks": 0,
        "NumActiveBlocks": 0,
        "NumSubvolumes": 0,
        "ROI": {"MinChunk": [0, 0, INT32_MAX], "MaxChunk": [0, 0, INT32_MIN]},
        "Subvolumes": [],
    }
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            partition([[0, 0, 0, 0]], bad, 32)  # type: ignore[arg-type]


def test_partition_example():
    result = partition([[0, 0, 0, 9]], 8, 32)
    assert result["NumSubvolumes"] == 2
    assert [s["ActiveBlocks"] for s in result["Subvolumes"]] == [8, 2]
    assert result["Subvolumes"][1]["MinChunk"] == [8, 0, 0]
    assert result["Subvolumes"][1]["MaxPoint"] == [16 * 32 - 1, 8 * 32 - 1, 8 * 32 - 1]
