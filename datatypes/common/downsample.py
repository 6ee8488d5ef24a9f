"""Vectorized 2x downsampling of image volumes (the imageblk pyramids).

:func:`downsample_mean` averages cells of 2x2x2 voxels (or 2x2x1 with ``factors=(2, 2,
1)``: x and y halved, z kept, the Boss's anisotropic hierarchy) for every integer voxel
type up to 32 bits and for floats; :func:`downsample_mode` keeps the most frequent
non-zero value of each cell (labels: ``uint64blk``), DVID's labelmap rule.
:func:`downsample_mean2` is the uint8 2x2x2 case (``POST downres`` of uint8blk).

Rounding rule (used by ``POST downres`` and documented in the uint8blk help): each output
voxel is the mean of its 8 source voxels rounded **half up**, i.e.
``(sum + 4) // 8`` computed exactly in integers (``sum`` fits in uint16). So
``[0,0,0,0,1,1,1,1]`` (mean 0.5) gives 1 and ``[0,0,0,0,0,1,1,1]`` (0.375) gives 0.

Integer means round half up: ``(sum + n // 2) // n`` over the ``n`` voxels of a cell (for
uint8 and 2x2x2 that is ``(sum + 4) // 8``); float means are computed in float64 and
stored in the input's type.

Arrays are C-order ``[z][y][x]``. Inputs with an odd size along a halved axis are padded by
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


def _factors(factors: tuple[int, int, int]) -> tuple[int, int, int]:
    fx, fy, fz = (int(f) for f in factors)
    if any(f not in (1, 2) for f in (fx, fy, fz)):
        raise ValueError(f"downsampling factors must each be 1 or 2, got {factors}")
    return fx, fy, fz


def _pad_axes(arr: np.ndarray, factors: tuple[int, int, int], mode: str) -> np.ndarray:
    fx, fy, fz = factors
    pads = [(0, 0)] * (arr.ndim - 3) + [
        (0, arr.shape[-3] % 2 if fz == 2 else 0), (0, arr.shape[-2] % 2 if fy == 2 else 0),
        (0, arr.shape[-1] % 2 if fx == 2 else 0)]
    if any(p[1] for p in pads):
        return np.pad(arr, pads, mode=mode)  # type: ignore[call-overload]
    return arr


def downsample_mean(vol: np.ndarray, factors: tuple[int, int, int] = (2, 2, 2)) -> np.ndarray:
    """Mean of the cells of ``factors`` (x, y, z; each 1 or 2) voxels over the last three
    axes of ``vol``, in ``vol``'s dtype (see the module doc for rounding and padding).

    Raises:
        ValueError: fewer than 3 dimensions, an empty axis, a factor other than 1 or 2, or
            an integer type wider than 32 bits (their sums could overflow).
    """
    arr = np.asarray(vol)
    fx, fy, fz = _factors(factors)
    if arr.ndim < 3:
        raise ValueError(f"downsample_mean expects >= 3 dimensions, got shape {arr.shape}")
    if 0 in arr.shape[-3:]:
        raise ValueError(f"cannot downsample an empty volume of shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "ui" and arr.dtype.itemsize > 4:
        raise ValueError(f"downsample_mean does not average {arr.dtype} (use the mode)")
    if kind not in "uif":
        raise ValueError(f"downsample_mean expects numbers, got {arr.dtype}")
    arr = _pad_axes(arr, (fx, fy, fz), "edge")
    acc = np.float64 if kind == "f" else (np.uint64 if kind == "u" else np.int64)
    s = arr.astype(acc)
    if fx == 2:
        s = s[..., 0::2] + s[..., 1::2]
    if fy == 2:
        s = s[..., 0::2, :] + s[..., 1::2, :]
    if fz == 2:
        s = s[..., 0::2, :, :] + s[..., 1::2, :, :]
    n = fx * fy * fz
    if kind == "f":
        s /= n
    else:
        s += n // 2
        s //= n
    return s.astype(arr.dtype)


def mode_of_rows(rows: np.ndarray) -> np.ndarray:
    """The most frequent non-zero value of each row of ``rows`` (``(N, k)``); ties go to
    the smaller value; a row of zeros gives 0. Vectorized: rows are sorted and runs of
    equal values counted across the ``k`` columns."""
    s = np.sort(rows, axis=1)  # ascending: zeros first, equal labels adjacent
    k = s.shape[1]
    # run_len[:, j] = length of the run of equal values ending at column j.
    eq = s[:, 1:] == s[:, :-1]
    run_len = np.ones(s.shape, dtype=np.int8)
    for j in range(1, k):
        run_len[:, j] += eq[:, j - 1] * run_len[:, j - 1]
    # Zero never wins; longer runs win; among equal run lengths the leftmost (smallest
    # value, rows being sorted) wins -- argmax returns the first maximum, and a run's
    # count is largest at its last column.
    score = np.where(s != 0, run_len, 0)
    col = np.argmax(score, axis=1)
    return s[np.arange(s.shape[0]), col]  # all scores 0: an all-zero row -> 0


def downsample_mode(vol: np.ndarray, factors: tuple[int, int, int] = (2, 2, 2)) -> np.ndarray:
    """Most frequent non-zero value of each cell of ``factors`` voxels (x, y, z; each 1 or
    2) of a 3-D ``[z][y][x]`` volume (ties: the smaller value; all zero: 0). Odd sizes
    along a halved axis are padded with 0, which never wins.

    Raises:
        ValueError: not 3-D, or a factor other than 1 or 2.
    """
    arr = np.asarray(vol)
    fx, fy, fz = _factors(factors)
    if arr.ndim != 3:
        raise ValueError(f"downsample_mode expects a 3-D volume, got shape {arr.shape}")
    arr = _pad_axes(arr, (fx, fy, fz), "constant")
    nz, ny, nx = arr.shape
    oz, oy, ox = nz // fz, ny // fy, nx // fx
    if arr.size == 0:
        return np.zeros((oz, oy, ox), dtype=arr.dtype)
    cells = arr.reshape(oz, fz, oy, fy, ox, fx).transpose(0, 2, 4, 1, 3, 5)
    return mode_of_rows(cells.reshape(-1, fx * fy * fz)).reshape(oz, oy, ox)


def downsample_mean2_reference(vol: np.ndarray) -> np.ndarray:
    """Slow, obviously-correct oracle for :func:`downsample_mean2` (tests only)."""
    arr = _pad_even(np.asarray(vol, dtype=np.uint8)).astype(np.int64)
    nz, ny, nx = arr.shape
    r = arr.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).sum(axis=(1, 3, 5))
    return ((r + 4) // 8).astype(np.uint8)


__all__ = ["downsample_mean", "downsample_mean2", "downsample_mean2_reference",
           "downsample_mode", "mode_of_rows"]
