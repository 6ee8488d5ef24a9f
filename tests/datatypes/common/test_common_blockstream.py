"""Tests for datatypes.common.blockstream (spec §8.5 record stream)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datatypes.common.blockstream import (
    HEADER_SIZE,
    BlockRecord,
    decode_records,
    encode_header,
    encode_record,
    encode_stream,
    fixed_size_records,
    index_records,
    iter_records,
)

SETTINGS = settings(max_examples=80, deadline=None)
i32 = st.integers(-(2**31), 2**31 - 1)
records_st = st.lists(st.tuples(i32, i32, i32, st.binary(max_size=40)), max_size=8)


def test_header_layout_is_little_endian_int32():
    assert encode_header(1, -2, 3, 4) == bytes.fromhex("01000000feffffff0300000004000000")
    assert HEADER_SIZE == 16
    rec = encode_record(5, 6, 7, b"abc")
    assert rec == struct.pack("<iiii", 5, 6, 7, 3) + b"abc"


@SETTINGS
@given(records_st)
def test_roundtrip(records):
    stream = encode_stream(records)
    assert stream == b"".join(encode_record(*r) for r in records)
    decoded = decode_records(stream)
    assert all(isinstance(r, BlockRecord) for r in decoded)
    assert [(r.x, r.y, r.z, bytes(r.payload)) for r in decoded] == records
    assert [(x, y, z, bytes(p)) for x, y, z, p in iter_records(memoryview(stream))] == records
    coords, offsets, lengths = index_records(stream)
    assert coords.shape == (len(records), 3) and coords.dtype == np.int32
    assert coords.tolist() == [[x, y, z] for x, y, z, _ in records]
    assert [stream[o : o + n] for o, n in zip(offsets, lengths, strict=True)] == [
        r[3] for r in records
    ]


@SETTINGS
@given(records_st.filter(bool), st.data())
def test_truncation_raises(records, data):
    stream = encode_stream(records)
    boundaries = {0}
    pos = 0
    for r in records:
        pos += HEADER_SIZE + len(r[3])
        boundaries.add(pos)
    cut = data.draw(st.integers(0, len(stream) - 1))
    prefix = stream[:cut]
    if cut in boundaries:
        n = sorted(boundaries).index(cut)
        assert [bytes(r.payload) for r in decode_records(prefix)] == [r[3] for r in records[:n]]
    else:
        with pytest.raises(ValueError, match="truncated"):
            decode_records(prefix)
        with pytest.raises(ValueError):
            index_records(prefix)


def test_negative_length_and_bad_header_values():
    bad = struct.pack("<iiii", 0, 0, 0, -1)
    with pytest.raises(ValueError, match="negative"):
        decode_records(bad)
    with pytest.raises(ValueError):
        encode_header(2**31, 0, 0, 0)
    with pytest.raises(ValueError):
        encode_header(0, 0, -(2**31) - 1, 0)
    with pytest.raises(ValueError):
        encode_header(0, 0, 0, -1)


def test_iter_is_lazy_and_zero_copy():
    stream = bytearray(encode_record(1, 2, 3, b"xyz") + b"\x00" * 5)
    it = iter_records(stream)
    first = next(it)
    assert bytes(first.payload) == b"xyz"
    stream[HEADER_SIZE] = ord("X")
    assert bytes(first.payload) == b"Xyz"  # a view, not a copy
    first.payload.release()
    with pytest.raises(ValueError):
        next(it)


def test_empty_stream_and_numpy_payloads():
    assert decode_records(b"") == []
    coords, offsets, lengths = index_records(b"")
    assert coords.shape == (0, 3) and offsets.shape == (0,) and lengths.shape == (0,)
    arr = np.arange(6, dtype=np.uint16)
    rec = encode_record(0, 0, 0, arr)
    assert rec[12:16] == struct.pack("<i", 12) and rec[16:] == arr.tobytes()


@SETTINGS
@given(
    st.integers(0, 6),
    st.integers(0, 10),
    st.sampled_from([np.uint8, np.uint64]),
    st.integers(0, 2**32 - 1),
)
def test_fixed_size_records_matches_encode_stream(n, width, dtype, seed):
    rng = np.random.default_rng(seed)
    coords = rng.integers(-(2**31), 2**31, size=(n, 3))
    payloads = rng.integers(0, 200, size=(n, width)).astype(dtype)
    expected = encode_stream(
        [
            (int(c[0]), int(c[1]), int(c[2]), p.tobytes())
            for c, p in zip(coords, payloads, strict=True)
        ]
    )
    assert fixed_size_records(coords, payloads) == expected


def test_fixed_size_records_errors():
    with pytest.raises(ValueError):
        fixed_size_records(np.zeros((2, 2)), np.zeros((2, 4), np.uint8))
    with pytest.raises(ValueError):
        fixed_size_records(np.zeros((2, 3)), np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError):
        fixed_size_records(np.array([[2**31, 0, 0]]), np.zeros((1, 4), np.uint8))
