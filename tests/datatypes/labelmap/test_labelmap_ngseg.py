"""Tests for the neuroglancer compressed_segmentation codec (spec §9.16.8)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.labelmap.ngseg import (
    decode_compressed_segmentation,
    encode_compressed_segmentation,
)

U64_MAX = 2**64 - 1

try:  # independent oracle (neuroglancer's C++ encoder); optional
    import compressed_segmentation as cseg
except ImportError:  # pragma: no cover
    cseg = None

needs_cseg = pytest.mark.skipif(cseg is None, reason="compressed_segmentation not installed")


@st.composite
def volumes(draw) -> np.ndarray:
    shape = tuple(8 * draw(st.integers(1, 3)) for _ in range(3))
    n = draw(st.sampled_from([1, 2, 3, 5, 9, 17, 40, 300, 600]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, U64_MAX, size=n, dtype=np.uint64, endpoint=True)
    palette[0] = draw(st.sampled_from([0, 1, 2**32, U64_MAX]))
    f = draw(st.sampled_from([1, 2, 4, 8]))
    coarse = rng.integers(0, n, size=tuple(-(-s // f) for s in shape))
    idx = coarse.repeat(f, 0).repeat(f, 1).repeat(f, 2)[: shape[0], : shape[1], : shape[2]]
    if draw(st.booleans()):  # repeat identical blocks to exercise table sharing
        idx = np.tile(idx[:8, :8, :8], (shape[0] // 8, shape[1] // 8, shape[2] // 8))
    return palette[idx]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(volumes())
def test_roundtrip(vol: np.ndarray) -> None:
    enc = encode_compressed_segmentation(vol)
    assert struct.unpack_from("<I", enc, 0)[0] == 1  # channel offset word
    np.testing.assert_array_equal(decode_compressed_segmentation(enc, vol.shape), vol)


@needs_cseg
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(volumes())
def test_byte_identical_to_reference_package(vol: np.ndarray) -> None:
    assert cseg is not None
    ours = encode_compressed_segmentation(vol)
    # The package takes (x, y, z) axes; vol.T in Fortran order is the same memory layout.
    ref = cseg.compress(np.asfortranarray(vol.T), order="F")
    assert ours == ref
    back = cseg.decompress(ours, vol.shape[::-1], np.uint64, order="F").T
    np.testing.assert_array_equal(back, vol)
    np.testing.assert_array_equal(decode_compressed_segmentation(ref, vol.shape), vol)


@needs_cseg
def test_512_distinct_labels_uses_16_bits() -> None:
    assert cseg is not None
    rng = np.random.default_rng(0)
    vol = rng.permutation(np.arange(512, dtype=np.uint64) * np.uint64(2**40 + 3)).reshape(8, 8, 8)
    ours = encode_compressed_segmentation(vol)
    assert struct.unpack_from("<I", ours, 4)[0] >> 24 == 16
    assert ours == cseg.compress(np.asfortranarray(vol.T), order="F")
    np.testing.assert_array_equal(decode_compressed_segmentation(ours, vol.shape), vol)


def test_fixture_single_block_two_labels() -> None:
    vol = np.full((8, 8, 8), 7, dtype=np.uint64)
    vol[0, 0, 1] = 2**40 + 3  # voxel 1 → table index 1 (sorted table [7, 2**40+3])
    enc = encode_compressed_segmentation(vol)
    words = np.frombuffer(enc, "<u4")
    # word0 = 1; header: table at 2 + 16 = 18 with 1 bit, values at 2
    assert words[:3].tolist() == [1, 18 | (1 << 24), 2]
    assert words[3] == 0b10  # voxel 1 is bit 1 of the first value word (LSB-first)
    assert (words[4:19] == 0).all()
    assert words[19:23].tolist() == [7, 0, 3, 2**8]
    assert len(enc) == 4 * 23
    np.testing.assert_array_equal(decode_compressed_segmentation(enc, vol.shape), vol)


def test_fixture_solid_blocks_share_table() -> None:
    vol = np.full((8, 8, 16), 5, dtype=np.uint64)
    words = np.frombuffer(encode_compressed_segmentation(vol), "<u4")
    # two blocks, 0 bits each: both point at the one table at word 4 (relative to channel).
    assert words.tolist() == [1, 4, 4, 4, 6, 5, 0]


@pytest.mark.parametrize("shape", [(8, 8, 12), (4, 8, 8), (0, 8, 8), (8, 8)])
def test_rejects_non_multiple_of_8(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        encode_compressed_segmentation(np.zeros(shape, dtype=np.uint64))


def test_decoder_rejects_corrupt_data() -> None:
    vol = np.arange(16 * 16 * 16, dtype=np.uint64).reshape(16, 16, 16) % 5
    enc = encode_compressed_segmentation(vol)
    for n in (0, 3, 4, 12, len(enc) - 4, len(enc) - 1):
        with pytest.raises(ValueError):
            decode_compressed_segmentation(enc[:n], vol.shape)
    bad = bytearray(enc)
    struct.pack_into("<I", bad, 4, (3 << 24) | 2)  # bit width 3 is not allowed
    with pytest.raises(ValueError, match="bit width"):
        decode_compressed_segmentation(bytes(bad), vol.shape)
    with pytest.raises(ValueError):
        decode_compressed_segmentation(enc, (16, 16, 12))
