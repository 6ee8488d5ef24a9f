"""Tests for 2x label downsampling (spec §9.17)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datatypes.labelmap.downres import downres_labels, downres_octants

U64_MAX = 2**64 - 1


def reference_downres(vol: np.ndarray) -> np.ndarray:
    """Slow, obviously-correct reference: np.unique per 2x2x2 cell (zero-padded)."""
    nz, ny, nx = vol.shape
    out = np.zeros(((nz + 1) // 2, (ny + 1) // 2, (nx + 1) // 2), dtype=np.uint64)
    for z in range(out.shape[0]):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                cell = vol[2 * z : 2 * z + 2, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2].ravel()
                cell = cell[cell != 0]
                if cell.size == 0:
                    continue
                vals, counts = np.unique(cell, return_counts=True)  # vals ascending
                out[z, y, x] = vals[np.argmax(counts)]  # first max → smallest id on ties
    return out


@st.composite
def small_volumes(draw) -> np.ndarray:
    shape = tuple(draw(st.integers(1, 7)) for _ in range(3))
    palette = draw(
        st.lists(
            st.one_of(st.sampled_from([0, 1, 2, 3, 2**32, U64_MAX]), st.integers(0, U64_MAX)),
            min_size=1,
            max_size=6,
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return np.array(palette, dtype=np.uint64)[rng.integers(0, len(palette), size=shape)]


@settings(max_examples=200, deadline=None)
@given(small_volumes())
def test_matches_reference(vol: np.ndarray) -> None:
    got = downres_labels(vol)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, reference_downres(vol))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ([0] * 8, 0),
        ([0] * 7 + [9], 9),  # a single non-zero beats seven zeros
        ([5, 5, 3, 3, 0, 0, 0, 0], 3),  # tie → smaller id
        ([7, 7, 7, 2, 2, 0, 0, 0], 7),  # majority wins over a smaller id
        ([1, 2, 3, 4, 5, 6, 7, 8], 1),
        ([U64_MAX, U64_MAX, 2**32, 2**32, 1, 0, 0, 0], 2**32),
        ([U64_MAX] * 8, U64_MAX),
        ([4, 4, 4, 4, 6, 6, 6, 6], 4),
        ([6, 4, 6, 4, 6, 4, 6, 9], 6),
    ],
)
def test_cell_rule(cell: list[int], expected: int) -> None:
    vol = np.array(cell, dtype=np.uint64).reshape(2, 2, 2)
    assert downres_labels(vol).tolist() == [[[expected]]]
    rng = np.random.default_rng(len(cell) + expected % 1000)
    shuffled = rng.permutation(np.array(cell, dtype=np.uint64)).reshape(2, 2, 2)
    assert downres_labels(shuffled).tolist() == [[[expected]]]


def test_realistic_block_against_reference() -> None:
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 2**40, size=(8, 8, 8), dtype=np.uint64)
    vol = coarse.repeat(3, 0).repeat(3, 1).repeat(3, 2)[:20, :22, :24]  # misaligned edges
    vol[rng.random(vol.shape) < 0.1] = 0
    np.testing.assert_array_equal(downres_labels(vol), reference_downres(vol))


def test_odd_and_empty_shapes() -> None:
    vol = np.full((3, 1, 5), 4, dtype=np.uint64)
    assert downres_labels(vol).shape == (2, 1, 3)
    assert (downres_labels(vol) == 4).all()
    assert downres_labels(np.zeros((0, 4, 4), np.uint64)).shape == (0, 2, 2)
    with pytest.raises(ValueError):
        downres_labels(np.zeros((4, 4), np.uint64))


def test_octants() -> None:
    rng = np.random.default_rng(2)
    full = rng.integers(0, 4, size=(16, 16, 16)).astype(np.uint64)
    octs: list[np.ndarray | None] = []
    for i in range(8):
        z, y, x = (i >> 2) & 1, (i >> 1) & 1, i & 1
        octs.append(full[z * 8 : z * 8 + 8, y * 8 : y * 8 + 8, x * 8 : x * 8 + 8])
    np.testing.assert_array_equal(downres_octants(octs), downres_labels(full))
    octs[3] = None  # missing child == all zeros
    full[:8, 8:, 8:] = 0
    np.testing.assert_array_equal(downres_octants(octs), downres_labels(full))
    with pytest.raises(ValueError):
        downres_octants(octs[:7])
    with pytest.raises(ValueError):
        downres_octants([None] * 8)
