"""Vectorized 2x2x2 mean downsampling of uint8 grayscale (the uint8blk pyramid).

Rounding rule (used by ``POST downres`` and documented in the uint8blk help): each output
voxel is the mean of its 8 source voxels rounded **half up**, i.e.
``(sum + 4) // 8`` computed exactly in integers (``sum`` fits in uint16). So
``[0,0,0,0,1,1,1,1]`` (mean 0.5) gives 1 and ``[0,0,0,0,0,1,1,1]`` (0.375) gives 0.

Arrays are C-order ``[z][y][x]``. Inputs with an odd size along an axis are padded by
repeating their last plane on that axis before averaging (so the output has
``ceil(n / 2)`` voxels on that axis and an edge voxel averages the available voxels twice).
"""

from __future__ import annotations

import numpy as np


def _pad_even(vol: np.ndarray) -> np.ndarray:
    pads = [(0, n % 2) for n in vol.shape]
    if any(p[1] for p in pads):
        return np.pad(vol, pads, mode="edge")
    return vol


def downsample_mean2(vol: np.ndarray) -> np.ndarray:
    """2x2x2 mean of a 3-D ``[z][y][x]`` uint8 volume, rounded half up (see module doc).

    Works on the last three axes, so a stack of blocks ``(n, bz, by, bx)`` is reduced to
    ``(n, bz/2, by/2, bx/2)`` in one call. Odd sizes are edge-padded first.

    Raises:
        ValueError: not uint8, fewer than 3 dimensions, or an empty axis.
    """
    arr = np.asarray(vol)
    if arr.dtype != np.uint8:
        raise ValueError(f"downsample_mean2 expects uint8, got {arr.dtype}")
    if arr.ndim < 3:
        raise ValueError(f"downsample_mean2 expects >= 3 dimensions, got shape {arr.shape}")
    if 0 in arr.shape[-3:]:
        raise ValueError(f"cannot downsample an empty volume of shape {arr.shape}")
    lead = arr.shape[:-3]
    if any(n % 2 for n in arr.shape[-3:]):
        pads = [(0, 0)] * len(lead) + [(0, n % 2) for n in arr.shape[-3:]]
        arr = np.pad(arr, pads, mode="edge")
    nz, ny, nx = arr.shape[-3:]
    a = arr.astype(np.uint16)
    # Pairwise sums along x, then y, then z (each a strided view add: no Python loops).
    s = a[..., 0::2] + a[..., 1::2]
    s = s[..., 0::2, :] + s[..., 1::2, :]
    s = s[..., 0::2, :, :] + s[..., 1::2, :, :]
    s += 4
    s >>= 3
    out = s.astype(np.uint8)
    assert out.shape == (*lead, nz // 2, ny // 2, nx // 2)
    return out


def downsample_mean2_reference(vol: np.ndarray) -> np.ndarray:
    """Slow, obviously-correct oracle for :func:`downsample_mean2` (tests only)."""
    arr = _pad_even(np.asarray(vol, dtype=np.uint8)).astype(np.int64)
    nz, ny, nx = arr.shape
    r = arr.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).sum(axis=(1, 3, 5))
    return ((r + 4) // 8).astype(np.uint8)


__all__ = ["downsample_mean2", "downsample_mean2_reference"]
