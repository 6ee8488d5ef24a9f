"""Tests for labelmap sparse-volume encodings (spec §9.16.3-§9.16.6, §9.16.9 keys)."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from datatypes.labelmap.rle import (
    block_coords_to_spans,
    decode_binary_blocks,
    decode_block_coord,
    decode_block_coords,
    decode_rles,
    decode_sparsevol_coarse,
    decode_srles,
    encode_binary_block,
    encode_binary_blocks,
    encode_block_coord,
    encode_block_coords,
    encode_rles,
    encode_sparsevol_coarse,
    encode_sparsevols_coarse_record,
    encode_srles,
    mask_to_spans,
    normalize_spans,
    spans_to_coords,
    spans_to_mask,
    spans_voxel_count,
)

masks = hnp.arrays(
    dtype=bool,
    shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=12),
    elements=st.booleans(),
)
offsets = st.tuples(*(st.integers(-1000, 1000) for _ in range(3)))


def reference_spans(mask: np.ndarray, off: tuple[int, int, int]) -> list[list[int]]:
    out = []
    nz, ny, nx = mask.shape
    for z in range(nz):
        for y in range(ny):
            x = 0
            while x < nx:
                if mask[z, y, x]:
                    s = x
                    while x < nx and mask[z, y, x]:
                        x += 1
                    out.append([s + off[0], y + off[1], z + off[2], x - s])
                else:
                    x += 1
    return out


# ---------------------------------------------------------------------------------------------
# mask <-> spans <-> coords
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(masks, offsets)
def test_mask_to_spans_matches_reference(mask: np.ndarray, off: tuple[int, int, int]) -> None:
    spans = mask_to_spans(mask, off)
    assert spans.dtype == np.int32 and spans.shape[1] == 4
    assert spans.tolist() == reference_spans(mask, off)
    np.testing.assert_array_equal(spans_to_mask(spans, mask.shape, off), mask)
    assert spans_voxel_count(spans) == int(mask.sum())
    coords = spans_to_coords(spans)
    expected = np.argwhere(mask)[:, ::-1] + np.array(off)  # z,y,x → x,y,z, already sorted zyx
    np.testing.assert_array_equal(coords, expected)
    np.testing.assert_array_equal(normalize_spans(spans), spans)


def test_mask_to_spans_runs_do_not_wrap_rows() -> None:
    mask = np.zeros((1, 2, 4), dtype=bool)
    mask[0, 0, 2:] = True
    mask[0, 1, :2] = True
    assert mask_to_spans(mask).tolist() == [[2, 0, 0, 2], [0, 1, 0, 2]]
    assert mask_to_spans(np.zeros((2, 2, 2), bool)).shape == (0, 4)
    assert mask_to_spans(np.ones((1, 1, 5), bool), (10, 20, 30)).tolist() == [[10, 20, 30, 5]]


def test_spans_to_mask_clips_and_handles_overlap() -> None:
    spans = np.array([[-3, 0, 0, 5], [2, 0, 0, 10], [0, 5, 0, 3], [1, 1, 1, 0], [1, 1, 1, -2]])
    m = spans_to_mask(spans, (2, 2, 4))
    exp = np.zeros((2, 2, 4), bool)
    exp[0, 0, :] = True
    np.testing.assert_array_equal(m, exp)


def test_normalize_spans_merges_overlaps_and_adjacency() -> None:
    spans = np.array(
        [[5, 0, 0, 2], [0, 0, 0, 3], [3, 0, 0, 1], [1, 0, 0, 10], [20, 0, 0, 1], [0, 0, 1, 1]]
    )
    assert normalize_spans(spans).tolist() == [[0, 0, 0, 11], [20, 0, 0, 1], [0, 0, 1, 1]]
    assert normalize_spans(np.zeros((0, 4), np.int32)).shape == (0, 4)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-20, 20), st.integers(0, 3), st.integers(0, 3), st.integers(0, 8)),
        max_size=30,
    )
)
def test_normalize_spans_preserves_voxels(raw: list[tuple[int, int, int, int]]) -> None:
    spans = np.array(raw, dtype=np.int64).reshape(-1, 4)
    norm = normalize_spans(spans)
    off = (-20, 0, 0)
    np.testing.assert_array_equal(
        spans_to_mask(norm, (4, 4, 50), off), spans_to_mask(spans, (4, 4, 50), off)
    )
    # maximal: no two spans on one row touch or overlap
    for a, b in itertools.pairwise(norm):
        if a[1] == b[1] and a[2] == b[2]:
            assert a[0] + a[3] < b[0]


def test_spans_to_coords_order() -> None:
    spans = np.array([[5, 1, 2, 3], [0, 0, 0, 1]], dtype=np.int32)
    assert spans_to_coords(spans).tolist() == [[5, 1, 2], [6, 1, 2], [7, 1, 2], [0, 0, 0]]
    assert spans_to_coords(np.zeros((0, 4), np.int32)).shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# rles / srles
# ---------------------------------------------------------------------------------------------


def test_rles_fixture_bytes() -> None:
    spans = np.array([[1, 2, 3, 4], [-5, 6, -7, 8]], dtype=np.int32)
    enc = encode_rles(spans)
    assert enc == bytes([0, 3, 0, 0]) + struct.pack("<II", 0, 2) + struct.pack(
        "<8i", 1, 2, 3, 4, -5, 6, -7, 8
    )
    np.testing.assert_array_equal(decode_rles(enc), spans)
    assert encode_srles(spans) == enc[12:]
    np.testing.assert_array_equal(decode_srles(enc[12:]), spans)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.int32, st.tuples(st.integers(0, 20), st.just(4))))
def test_rles_roundtrip(spans: np.ndarray) -> None:
    np.testing.assert_array_equal(decode_rles(encode_rles(spans)), spans.reshape(-1, 4))
    np.testing.assert_array_equal(decode_srles(encode_srles(spans)), spans.reshape(-1, 4))


def test_decode_rles_neuclease_style_payload() -> None:
    spans = np.array([[10, 20, 30, 2]], dtype=np.int32)
    body = np.array([0, 3, 0, 0], np.uint8).tobytes() + np.array([0, 1], "<u4").tobytes()
    body += spans.astype("<i4").tobytes()
    np.testing.assert_array_equal(decode_rles(body), spans)
    # bytes 1-7 are not checked (as in DVID): a non-zero voxel count is tolerated
    np.testing.assert_array_equal(decode_rles(body[:4] + b"\x05\x00\x00\x00" + body[8:]), spans)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\x03\x00\x00\x00\x00\x00\x00\x01\x00\x00",  # 11 bytes
        bytes([1, 3, 0, 0]) + struct.pack("<II", 0, 0),  # descriptor != 0
        bytes([0, 3, 0, 0]) + struct.pack("<II", 0, 2) + bytes(16),  # one span short
        bytes([0, 3, 0, 0]) + struct.pack("<II", 0, 1) + bytes(20),  # trailing bytes
        bytes([0, 3, 0, 0]) + struct.pack("<II", 0, 2**32 - 1),  # huge count, no data
    ],
)
def test_decode_rles_rejects(payload: bytes) -> None:
    with pytest.raises(ValueError):
        decode_rles(payload)


def test_decode_srles_rejects_partial_record() -> None:
    with pytest.raises(ValueError):
        decode_srles(bytes(17))


# ---------------------------------------------------------------------------------------------
# coarse sparsevol
# ---------------------------------------------------------------------------------------------


def test_sparsevol_coarse_merges_sorted() -> None:
    coords = np.array(
        [[3, 0, 0], [1, 0, 0], [2, 0, 0], [2, 0, 0], [0, 1, 0], [5, 0, 0], [-1, 0, 1], [0, 0, 1]]
    )
    spans = block_coords_to_spans(coords)
    assert spans.tolist() == [[1, 0, 0, 3], [5, 0, 0, 1], [0, 1, 0, 1], [-1, 0, 1, 2]]
    enc = encode_sparsevol_coarse(coords)
    assert enc[:12] == bytes([0, 3, 0, 0]) + struct.pack("<II", 0, 4)
    np.testing.assert_array_equal(decode_sparsevol_coarse(enc), spans)
    rec = encode_sparsevols_coarse_record(2**40 + 1, coords)
    assert rec[:12] == struct.pack("<Qi", 2**40 + 1, 4)
    assert rec[12:] == enc[12:]


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(bool, (4, 4, 6)))
def test_sparsevol_coarse_equals_mask_spans(m: np.ndarray) -> None:
    coords = np.argwhere(m)[:, ::-1]
    rng = np.random.default_rng(int(m.sum()))
    shuffled = coords[rng.permutation(len(coords))]
    np.testing.assert_array_equal(block_coords_to_spans(shuffled), mask_to_spans(m))


# ---------------------------------------------------------------------------------------------
# binary block masks
# ---------------------------------------------------------------------------------------------


def test_binary_block_fixture_lsb_first() -> None:
    mask = np.zeros((16, 16, 16), dtype=bool)
    mask[:8, :8, 8:] = True  # sub-block 1 all foreground
    mask[0, 0, 0] = True  # sub-block 0: voxel 0 → byte 0 bit 0
    mask[0, 1, 1] = True  # voxel 9 → byte 1 bit 1
    enc = encode_binary_block((64, -64, 128), mask)
    sb0 = bytes([2, 0b00000001, 0b00000010]) + bytes(62)
    expected = struct.pack("<iii", 64, -64, 128) + b"\x02" + sb0 + b"\x01" + b"\x00" * 6
    assert enc == expected
    assert encode_binary_block((0, 0, 0), np.zeros((8, 8, 8), bool)) == bytes(12) + b"\x00"
    assert encode_binary_block((0, 0, 0), np.ones((8, 8, 8), bool)) == bytes(12) + b"\x01"


def test_binary_blocks_stream() -> None:
    rng = np.random.default_rng(5)
    a = rng.random((16, 8, 24)) < 0.3
    b = np.ones((16, 8, 24), bool)
    empty = np.zeros((16, 8, 24), bool)
    blocks = [((24, 0, 16), a), ((0, 0, 16), b), ((0, 8, 0), empty), ((48, 8, 0), a)]
    enc = encode_binary_blocks(7, blocks)
    assert enc[:20] == struct.pack("<IIIQ", 3, 1, 2, 7)
    grid, label, got = decode_binary_blocks(enc)
    assert grid == (3, 1, 2) and label == 7
    assert [o for o, _ in got] == [(48, 8, 0), (0, 0, 16), (24, 0, 16)]  # sorted z,y,x
    for (_, m), exp in zip(got, [a, b, a], strict=True):
        np.testing.assert_array_equal(m, exp)
    assert encode_binary_blocks(7, [((0, 0, 0), empty)]) == b""
    with pytest.raises(ValueError):
        encode_binary_blocks(7, [((0, 0, 0), a), ((0, 0, 0), np.ones((8, 8, 8), bool))])
    with pytest.raises(ValueError):
        decode_binary_blocks(enc[:-1])


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(bool, (16, 16, 16)), st.integers(0, 3))
def test_binary_block_roundtrip(mask: np.ndarray, fill: int) -> None:
    mask = mask.copy()
    if fill == 1:
        mask[:8] = True
    elif fill == 2:
        mask[8:] = False
    enc = encode_binary_block((1, 2, 3), mask)
    head = struct.pack("<IIIQ", 2, 2, 2, 9)
    _, _, got = decode_binary_blocks(head + enc)
    np.testing.assert_array_equal(got[0][1], mask)


# ---------------------------------------------------------------------------------------------
# label-index block keys
# ---------------------------------------------------------------------------------------------


def test_block_coord_fixtures() -> None:
    assert encode_block_coord(0, 0, 0) == 0
    assert encode_block_coord(1, 0, 0) == 1
    assert encode_block_coord(-1, 0, 0) == 0x100001
    assert encode_block_coord(0, 1, 0) == 1 << 21
    assert encode_block_coord(0, -1, 0) == 0x100001 << 21
    assert encode_block_coord(0, 0, 1) == 1 << 42
    assert encode_block_coord(0, 0, -2) == 0x100002 << 42
    assert encode_block_coord(2**20 - 1, -(2**20 - 1), 5) == (
        0xFFFFF | (0x1FFFFF << 21) | (5 << 42)
    )
    assert decode_block_coord(0x100001 | (3 << 21) | (0x100007 << 42)) == (-1, 3, -7)
    assert decode_block_coord(0x100000) == (0, 0, 0)  # "negative zero"
    with pytest.raises(ValueError):
        encode_block_coord(2**20, 0, 0)
    with pytest.raises(ValueError):
        encode_block_coords(np.array([[0, -(2**20), 0]]))


coords3 = st.tuples(*(st.integers(-(2**20) + 1, 2**20 - 1) for _ in range(3)))


@settings(max_examples=100, deadline=None)
@given(st.lists(coords3, min_size=0, max_size=20))
def test_block_coord_roundtrip(coords: list[tuple[int, int, int]]) -> None:
    arr = np.array(coords, dtype=np.int32).reshape(-1, 3)
    keys = encode_block_coords(arr)
    assert keys.dtype == np.uint64
    assert keys.tolist() == [encode_block_coord(*c) for c in coords]
    np.testing.assert_array_equal(decode_block_coords(keys), arr)
    assert [decode_block_coord(int(k)) for k in keys] == [tuple(c) for c in coords]
