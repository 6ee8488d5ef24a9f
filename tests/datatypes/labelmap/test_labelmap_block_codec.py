"""Tests for the DVID compressed label Block codec (spec §9.16.1)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.labelmap.block_codec import (
    bits_for,
    block_labels,
    block_shape,
    decode_block,
    encode_block,
    encode_solid_block,
)

U64_MAX = 2**64 - 1


# ---------------------------------------------------------------------------------------------
# Slow, obviously-correct reference decoder (test only): walks the spec bit by bit.
# ---------------------------------------------------------------------------------------------


def reference_decode(data: bytes) -> np.ndarray:
    gx, gy, gz, n = struct.unpack_from("<IIII", data, 0)
    labels = struct.unpack_from(f"<{n}Q", data, 16)
    shape = (gz * 8, gy * 8, gx * 8)
    out = np.zeros(shape, dtype=np.uint64)
    if n == 1:
        out[...] = labels[0]
        return out
    pos = 16 + 8 * n
    nsb = gx * gy * gz
    ns = struct.unpack_from(f"<{nsb}H", data, pos)
    pos += 2 * nsb
    idx = struct.unpack_from(f"<{sum(ns)}I", data, pos)
    pos += 4 * sum(ns)
    bitpos = pos * 8
    ipos = 0
    sb = 0
    for sz in range(gz):
        for sy in range(gy):
            for sx in range(gx):
                k = ns[sb]
                table = [labels[i] for i in idx[ipos : ipos + k]]
                ipos += k
                bits = bits_for(k)
                for z in range(8):
                    for y in range(8):
                        for x in range(8):
                            if k == 0:
                                v = 0
                            elif k == 1:
                                v = table[0]
                            else:
                                val = 0
                                for _ in range(bits):
                                    byte = data[bitpos >> 3]
                                    val = (val << 1) | ((byte >> (7 - (bitpos & 7))) & 1)
                                    bitpos += 1
                                v = table[val]
                            out[sz * 8 + z, sy * 8 + y, sx * 8 + x] = v
                if bitpos % 8:
                    bitpos += 8 - bitpos % 8
                sb += 1
    return out


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

interesting_ids = st.sampled_from(
    [0, 1, 2, 255, 256, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**53 + 1, 2**63, U64_MAX - 1, U64_MAX]
)
any_id = st.one_of(interesting_ids, st.integers(0, U64_MAX))


@st.composite
def label_blocks(draw, max_grid: int = 4) -> np.ndarray:
    gz = draw(st.integers(1, max_grid))
    gy = draw(st.integers(1, max_grid))
    gx = draw(st.integers(1, max_grid))
    shape = (8 * gz, 8 * gy, 8 * gx)
    palette = np.array(draw(st.lists(any_id, min_size=1, max_size=40, unique=True)), np.uint64)
    seed = draw(st.integers(0, 2**32 - 1))
    mode = draw(st.sampled_from(["noise", "blobs", "slabs", "solid", "sparse"]))
    rng = np.random.default_rng(seed)
    if mode == "noise":
        idx = rng.integers(0, palette.size, size=shape)
    elif mode == "blobs":  # piecewise-constant coarse cells of random size
        f = int(rng.choice([1, 2, 4, 8]))
        coarse = rng.integers(0, palette.size, size=tuple(-(-s // f) for s in shape))
        idx = np.repeat(np.repeat(np.repeat(coarse, f, 0), f, 1), f, 2)[
            : shape[0], : shape[1], : shape[2]
        ]
    elif mode == "slabs":
        idx = (np.arange(shape[2])[None, None, :] // int(rng.integers(1, 9))) % palette.size
        idx = np.broadcast_to(idx, shape)
    elif mode == "solid":
        idx = np.zeros(shape, dtype=np.int64)
    else:  # mostly first label with a few specks
        idx = np.zeros(shape, dtype=np.int64)
        k = int(rng.integers(1, 20))
        pts = tuple(rng.integers(0, s, size=k) for s in shape)
        idx[pts] = rng.integers(0, palette.size, size=k)
    return palette[idx]


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_blocks())
def test_roundtrip_random_blocks(arr: np.ndarray) -> None:
    enc = encode_block(arr)
    dec = decode_block(enc)
    assert dec.dtype == np.uint64
    assert dec.shape == arr.shape
    np.testing.assert_array_equal(dec, arr)
    np.testing.assert_array_equal(block_labels(enc), np.unique(arr))
    np.testing.assert_array_equal(block_labels(enc, exact=True), np.unique(arr))
    assert block_shape(enc) == arr.shape


@settings(max_examples=25, deadline=None)
@given(label_blocks(max_grid=2))
def test_encoder_matches_reference_decoder(arr: np.ndarray) -> None:
    np.testing.assert_array_equal(reference_decode(encode_block(arr)), arr)


def test_512_labels_in_one_subblock_and_high_ids() -> None:
    rng = np.random.default_rng(7)
    arr = np.full((16, 16, 16), 2**40, dtype=np.uint64)
    ids = np.unique(rng.integers(2**32, U64_MAX, size=600, dtype=np.uint64, endpoint=True))[:511]
    sub = np.concatenate([ids, [np.uint64(U64_MAX)]])
    assert np.unique(sub).size == 512
    arr[8:, :8, 8:] = rng.permutation(sub).reshape(8, 8, 8)  # sub-block 5: 512 labels, 9 bits
    arr[:8, 8:, :8] = sub[rng.permutation(np.arange(512) % 257)].reshape(8, 8, 8)  # 257 → 9
    arr[:8, :8, 8:] = sub[np.arange(512) % 256].reshape(8, 8, 8)  # 256 labels → 8 bits
    enc = encode_block(arr)
    ns = np.frombuffer(enc, "<u2", count=8, offset=16 + 8 * struct.unpack_from("<I", enc, 12)[0])
    assert ns.tolist() == [1, 256, 257, 1, 1, 512, 1, 1]
    np.testing.assert_array_equal(decode_block(enc), arr)
    np.testing.assert_array_equal(reference_decode(enc), arr)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 65, 100, 128, 129, 255])
def test_every_bit_width(k: int) -> None:
    rng = np.random.default_rng(k)
    arr = np.zeros((8, 8, 16), dtype=np.uint64)
    vals = rng.integers(0, U64_MAX, size=k, dtype=np.uint64, endpoint=True)
    while np.unique(vals).size < k:
        vals = rng.integers(0, U64_MAX, size=k, dtype=np.uint64, endpoint=True)
    arr[:, :, :8] = vals[rng.permutation(np.arange(512) % k)].reshape(8, 8, 8)
    enc = encode_block(arr)
    np.testing.assert_array_equal(decode_block(enc), arr)
    np.testing.assert_array_equal(reference_decode(enc), arr)


@pytest.mark.parametrize(
    "shape", [(16, 32, 64), (64, 8, 16), (8, 8, 8), (8, 16, 128), (64, 64, 64), (24, 40, 56)]
)
def test_non_cubic_blocks(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    coarse = rng.integers(0, 2**63, size=tuple(s // 4 for s in shape), dtype=np.uint64)
    arr = coarse.repeat(4, 0).repeat(4, 1).repeat(4, 2)
    arr[0, 0, 0] = U64_MAX
    enc = encode_block(arr)
    gx, gy, gz = struct.unpack_from("<III", enc, 0)
    assert (gz * 8, gy * 8, gx * 8) == shape
    np.testing.assert_array_equal(decode_block(enc), arr)


@pytest.mark.parametrize("label", [0, 1, 2**32, U64_MAX])
def test_solid_block_is_24_bytes(label: int) -> None:
    arr = np.full((64, 64, 64), label, dtype=np.uint64)
    enc = encode_block(arr)
    assert len(enc) == 24
    assert enc == struct.pack("<IIIIQ", 8, 8, 8, 1, label)
    assert enc == encode_solid_block(label, (64, 64, 64))
    np.testing.assert_array_equal(decode_block(enc), arr)
    assert block_labels(enc).tolist() == [label]


def test_solid_block_non_cubic_header() -> None:
    enc = encode_solid_block(5, (16, 32, 64))  # (nz, ny, nx)
    assert struct.unpack("<IIIIQ", enc) == (8, 4, 2, 1, 5)
    assert decode_block(enc).shape == (16, 32, 64)


def test_solid_block_with_trailing_bytes_is_still_solid() -> None:
    # DVID's Go encoder can emit N == 1 followed by sub-block data; decoders ignore it.
    enc = struct.pack("<IIIIQ", 2, 2, 2, 1, 42) + struct.pack("<8H", *([1] * 8)) + bytes(32)
    np.testing.assert_array_equal(decode_block(enc), np.full((16, 16, 16), 42, np.uint64))


def test_other_integer_dtypes_accepted() -> None:
    arr = np.arange(16 * 16 * 16, dtype=np.int32).reshape(16, 16, 16) % 7
    np.testing.assert_array_equal(decode_block(encode_block(arr)), arr.astype(np.uint64))
    with pytest.raises(ValueError, match="negative"):
        encode_block(-arr - 1)
    with pytest.raises(ValueError, match="integer"):
        encode_block(arr.astype(np.float64))


@pytest.mark.parametrize("shape", [(8, 8), (12, 16, 16), (0, 8, 8), (8, 8, 1032), (16, 16, 4)])
def test_encode_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        encode_block(np.zeros(shape, dtype=np.uint64))


# ---------------------------------------------------------------------------------------------
# Hand-built byte fixtures pinning the exact layout
# ---------------------------------------------------------------------------------------------

A = 5
B = 2**40 + 7


def test_fixture_two_label_subblock_msb_first() -> None:
    arr = np.full((16, 16, 16), A, dtype=np.uint64)
    arr[0, 0, 0] = B  # sub-block 0, voxel 0 → value 1 in the MSB of the first byte
    arr[0, 0, 6] = B  # voxel 6 → bit 1 of the first byte
    arr[0, 1, 1] = B  # voxel 9 → second byte, bit 6
    expected = b"".join(
        [
            struct.pack("<IIII", 2, 2, 2, 2),
            struct.pack("<QQ", A, B),
            struct.pack("<8H", 2, 1, 1, 1, 1, 1, 1, 1),
            struct.pack("<9I", 0, 1, 0, 0, 0, 0, 0, 0, 0),
            bytes([0b10000010, 0b01000000]) + bytes(62),
        ]
    )
    assert encode_block(arr) == expected
    np.testing.assert_array_equal(decode_block(expected), arr)


def test_fixture_three_bit_values_straddle_bytes() -> None:
    labels = [10, 20, 30, 40, 50]
    arr = np.full((16, 16, 16), 10, dtype=np.uint64)
    first = [0, 1, 2, 3, 4, 0, 1, 2]  # voxels 0..7 of sub-block 0 (x = 0..7, y = z = 0)
    arr[0, 0, :8] = [labels[i] for i in first]
    # 000 001 010 011 100 000 001 010 → 00000101 00111000 00001010
    packed = bytes([0x05, 0x38, 0x0A]) + bytes(64 * 3 - 3)
    expected = b"".join(
        [
            struct.pack("<IIII", 2, 2, 2, 5),
            struct.pack("<5Q", *labels),
            struct.pack("<8H", 5, 1, 1, 1, 1, 1, 1, 1),
            struct.pack("<12I", 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0),
            packed,
        ]
    )
    assert encode_block(arr) == expected
    np.testing.assert_array_equal(decode_block(expected), arr)


def _pack_msb(values: list[int], bits: int) -> bytes:
    s = "".join(format(v, f"0{bits}b") for v in values)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def test_fixture_handcrafted_decode_ns0_duplicates_stale_labels() -> None:
    # Label list with a stale 0-entry, a duplicate (7 twice) and the max id.
    labels = [99, 7, 7, U64_MAX, 0]
    ns = [0, 1, 2, 0, 3, 1, 1, 2]
    idx = [2, 1, 3, 3, 0, 2, 0, 3, 1, 2]  # per sub-block: 1, 2, 3, 1, 1, 2 entries
    rng = np.random.default_rng(3)
    v2 = rng.integers(0, 2, 512).tolist()
    v4 = rng.integers(0, 3, 512).tolist()  # 3 labels → 2 bits, values 0..2
    v7 = rng.integers(0, 2, 512).tolist()
    data = b"".join(
        [
            struct.pack("<IIII", 2, 2, 2, len(labels)),
            struct.pack(f"<{len(labels)}Q", *labels),
            struct.pack("<8H", *ns),
            struct.pack(f"<{len(idx)}I", *idx),
            _pack_msb(v2, 1),
            _pack_msb(v4, 2),
            _pack_msb(v7, 1),
        ]
    )
    exp = np.zeros((16, 16, 16), dtype=np.uint64)

    def put(sb: int, vals: np.ndarray) -> None:
        sz, sy, sx = sb // 4, (sb // 2) % 2, sb % 2
        exp[sz * 8 : sz * 8 + 8, sy * 8 : sy * 8 + 8, sx * 8 : sx * 8 + 8] = vals.reshape(8, 8, 8)

    lab = np.array(labels, dtype=np.uint64)
    put(1, np.full(512, 7, np.uint64))
    put(2, lab[[1, 3]][v2])
    put(4, lab[[3, 0, 2]][v4])
    put(5, np.full(512, 99, np.uint64))
    put(6, np.full(512, U64_MAX, np.uint64))
    put(7, lab[[1, 2]][v7])  # both entries are 7
    np.testing.assert_array_equal(decode_block(data), exp)
    np.testing.assert_array_equal(reference_decode(data), exp)
    np.testing.assert_array_equal(block_labels(data), np.unique(exp))
    np.testing.assert_array_equal(block_labels(data, exact=True), np.unique(exp))
    # Trailing garbage after the packed values is ignored (as in DVID).
    np.testing.assert_array_equal(decode_block(data + b"\xff" * 5), exp)
    np.testing.assert_array_equal(decode_block(bytearray(data)), exp)
    np.testing.assert_array_equal(decode_block(memoryview(data)), exp)


def test_fixture_all_ns0_subblocks() -> None:
    data = struct.pack("<IIII", 1, 1, 1, 2) + struct.pack("<QQ", 3, 4) + struct.pack("<H", 0)
    np.testing.assert_array_equal(decode_block(data), np.zeros((8, 8, 8), np.uint64))
    assert block_labels(data).tolist() == [0]


def test_bits_for() -> None:
    assert [bits_for(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 256, 257, 512)] == [
        0,
        0,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        8,
        9,
        9,
    ]


# ---------------------------------------------------------------------------------------------
# Corrupt input → ValueError only
# ---------------------------------------------------------------------------------------------


def _sample_encoding() -> bytes:
    rng = np.random.default_rng(11)
    arr = rng.integers(0, 6, size=(16, 16, 16)).astype(np.uint64) * np.uint64(2**33)
    arr[8:, 8:, 8:] = 1  # one Ns=1 sub-block
    return encode_block(arr)


def test_every_truncation_raises_value_error() -> None:
    enc = _sample_encoding()
    for n in range(len(enc)):
        with pytest.raises(ValueError):
            decode_block(enc[:n])
        with pytest.raises(ValueError):
            block_labels(enc[:n])


def _with(enc: bytes, offset: int, fmt: str, *vals: int) -> bytes:
    b = bytearray(enc)
    struct.pack_into(fmt, b, offset, *vals)
    return bytes(b)


@pytest.mark.parametrize(
    ("mutation", "match"),
    [
        (lambda e: _with(e, 0, "<I", 0), "gx"),
        (lambda e: _with(e, 4, "<I", 129), "gy"),
        (lambda e: _with(e, 8, "<I", 2**32 - 1), "gz"),
        (lambda e: _with(e, 12, "<I", 0), "0 labels"),
        (lambda e: _with(e, 12, "<I", 2**32 - 1), "truncated"),
        (lambda e: _with(e, 0, "<III", 128, 128, 128), "truncated"),
        (lambda e: _with(e, 16 + 7 * 8, "<H", 513), "513 labels"),
        (lambda e: _with(e, 16 + 7 * 8 + 16, "<I", 7), "out of range"),
        (lambda e: _with(e, 16 + 7 * 8 + 16, "<I", 2**32 - 1), "out of range"),
    ],
)
def test_corrupt_headers(mutation, match: str) -> None:
    enc = _sample_encoding()
    assert struct.unpack_from("<I", enc, 12)[0] == 7
    with pytest.raises(ValueError, match=match):
        decode_block(mutation(enc))


def test_packed_value_beyond_ns_raises() -> None:
    # Ns = 3 → 2 bits; value 3 is unrepresentable.
    data = b"".join(
        [
            struct.pack("<IIII", 1, 1, 1, 3),
            struct.pack("<3Q", 1, 2, 3),
            struct.pack("<H", 3),
            struct.pack("<3I", 0, 1, 2),
            bytes([0b11000000]) + bytes(127),
        ]
    )
    with pytest.raises(ValueError, match="packed value 3"):
        decode_block(data)


def test_non_bytes_garbage() -> None:
    with pytest.raises(ValueError):
        decode_block(b"")
    with pytest.raises(ValueError):
        decode_block(b"\x00" * 15)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_mutations_only_raise_value_error(data: st.DataObject) -> None:
    enc = bytearray(_sample_encoding())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(enc) - 1))
        enc[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(enc)))
    try:
        out = decode_block(bytes(enc[:cut]))
    except ValueError:
        return
    assert out.dtype == np.uint64 and out.ndim == 3


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_only_raise_value_error(blob: bytes) -> None:
    try:
        decode_block(blob)
    except ValueError:
        pass


def test_expected_shape_guard() -> None:
    huge = struct.pack("<IIIIQ", 128, 128, 128, 1, 9)  # 24 bytes claiming 1024³ voxels
    with pytest.raises(ValueError, match="expected"):
        decode_block(huge, expected_shape=(64, 64, 64))
    ok = encode_solid_block(9, (64, 64, 64))
    assert decode_block(ok, expected_shape=(64, 64, 64)).shape == (64, 64, 64)


def test_non_contiguous_and_big_endian_inputs() -> None:
    rng = np.random.default_rng(4)
    big = rng.integers(0, 9, size=(40, 40, 40)).astype(np.uint64) * np.uint64(2**35)
    view = big[3:35, 5:21, 1:33]  # strided view, shape (32, 16, 32)
    np.testing.assert_array_equal(decode_block(encode_block(view)), view)
    fortran = np.asfortranarray(view)
    assert encode_block(fortran) == encode_block(view)
    be = view.astype(">u8")
    assert encode_block(be) == encode_block(view)
    words = np.frombuffer(encode_block(view), np.uint8)
    np.testing.assert_array_equal(decode_block(memoryview(words)), view)
