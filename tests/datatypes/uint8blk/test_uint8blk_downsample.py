"""Property tests of the uint8 2x2x2 mean downsampler against an integer oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from datatypes.common.downsample import downsample_mean2, downsample_mean2_reference


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9)))
def test_matches_reference(vol: np.ndarray) -> None:
    assert np.array_equal(downsample_mean2(vol), downsample_mean2_reference(vol))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 255))
def test_constant_volume_is_fixed_point(v: int) -> None:
    vol = np.full((4, 6, 8), v, dtype=np.uint8)
    out = downsample_mean2(vol)
    assert out.shape == (2, 3, 4)
    assert (out == v).all()


def test_rounding_half_up() -> None:
    cube = np.zeros((2, 2, 2), dtype=np.uint8)
    cube.reshape(-1)[:4] = 1  # mean 0.5 -> 1
    assert downsample_mean2(cube)[0, 0, 0] == 1
    cube.reshape(-1)[:] = 0
    cube.reshape(-1)[:3] = 1  # mean 0.375 -> 0
    assert downsample_mean2(cube)[0, 0, 0] == 0
    assert downsample_mean2(np.full((2, 2, 2), 255, np.uint8))[0, 0, 0] == 255


def test_stack_of_blocks() -> None:
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 256, (5, 8, 8, 8), dtype=np.uint8)
    out = downsample_mean2(stack)
    for i in range(5):
        assert np.array_equal(out[i], downsample_mean2_reference(stack[i]))


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        downsample_mean2(np.zeros((2, 2, 2), dtype=np.uint16))
    with pytest.raises(ValueError):
        downsample_mean2(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError):
        downsample_mean2(np.zeros((0, 2, 2), dtype=np.uint8))
