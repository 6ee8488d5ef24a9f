"""ROI span algebra (spec §11).

An ROI is a set of blocks (block coordinates, ROI ``BlockSize``) written as **spans**
``[z, y, x0, x1]``: the blocks ``(x0..x1, y, z)``, ``x1`` **inclusive**. Spans are held
as ``(N, 4)`` int64 arrays with columns ``z, y, x0, x1``; block lists as ``(N, 3)`` int64
arrays with columns ``x, y, z`` (the order used everywhere else in dvidpy).

Vocabulary:

* *validated* spans (:func:`validate_spans`): each row is 4 int32 integers with
  ``x0 <= x1``; order, overlaps and duplicates are kept.
* *normalized* spans (:func:`normalize_spans`): sorted by ``(z, y, x0)``, with
  overlapping **and adjacent** spans of a row merged -- the canonical form; two ROIs cover
  the same blocks iff their normalized spans are equal.
* *stored* spans (:func:`stored_spans`): what DVID's ``GET roi`` returns after a
  ``POST roi``: sorted by ``(z, y, x0)``, not merged, and when two spans share
  ``(z, y, x0)`` the later one wins (DVID keys each span by its start block).

All functions are vectorized (no Python loop over blocks, voxels or points), apart from
the input validation of Python lists and building the partition JSON.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from datatypes.common.geometry import as_block_size, as_point3, block_range, zyx_shape

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_EMPTY_SPANS = np.zeros((0, 4), dtype=np.int64)
_EMPTY_BLOCKS = np.zeros((0, 3), dtype=np.int64)


# --------------------------------------------------------------------------------------
# Validation and canonical forms
# --------------------------------------------------------------------------------------


_INT_TYPES = (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


def _fast_list_to_array(spans: Sequence[Any]) -> np.ndarray | None:
    """C-speed conversion of a list of 4-int rows; None if anything looks wrong."""
    try:
        arr = np.array(spans)
    except (ValueError, TypeError, OverflowError):
        return None
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.dtype.kind not in "iu":
        return None
    # np.array silently turns True into 1 when mixed with ints: reject bools explicitly.
    types = set(map(type, itertools.chain.from_iterable(spans)))
    if not types.issubset(_INT_TYPES):
        return None
    return arr


def _diagnose_list(spans: Sequence[Any]) -> None:
    """Raise ValueError naming the first malformed span (slow path, errors only)."""
    for i, span in enumerate(spans):
        if (
            isinstance(span, str | bytes)
            or not isinstance(span, Sequence | np.ndarray)
            or len(span) != 4
        ):
            raise ValueError(f"span #{i} {span!r} is not a list of 4 integers [z,y,x0,x1]")
        for v in span:
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
                raise ValueError(f"span #{i} {span!r} has a non-integer value {v!r}")
            if not INT32_MIN <= int(v) <= INT32_MAX:
                raise ValueError(f"span #{i} {span!r} has a value outside the int32 range")


def validate_spans(spans: Any) -> np.ndarray:
    """Check spans and return them as an ``(N, 4)`` int64 array (order kept).

    Accepts parsed JSON (a list of 4-element lists) or an integer array of shape
    ``(N, 4)``. ``[]`` is a valid empty ROI.

    Raises:
        ValueError: not a list of 4-integer lists (bools, floats and strings are not
            integers), a value outside int32, or a span with ``x1 < x0`` (DVID answers
            400 for these).
    """
    if isinstance(spans, np.ndarray):
        arr = spans
    else:
        if isinstance(spans, str | bytes) or not isinstance(spans, Sequence):
            raise ValueError("ROI spans must be a list of [z, y, x0, x1] lists")
        if len(spans) == 0:
            return _EMPTY_SPANS.copy()
        arr = _fast_list_to_array(spans)
        if arr is None:
            _diagnose_list(spans)  # raises with a span-specific message if malformed
            arr = np.array([[int(v) for v in span] for span in spans], dtype=np.int64)
    if arr.size == 0 and arr.ndim >= 1 and (arr.ndim == 1 or arr.shape[-1] == 4):
        return _EMPTY_SPANS.copy()
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"ROI spans must have shape (N, 4), got {arr.shape}")
    if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise ValueError(f"ROI spans must be integers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > INT32_MAX:
        raise ValueError("ROI span value outside the int32 range")
    arr = arr.astype(np.int64, copy=True)
    if arr.size:
        bad = (arr < INT32_MIN) | (arr > INT32_MAX)
        if bad.any():
            i = int(np.flatnonzero(bad.any(axis=1))[0])
            raise ValueError(f"span #{i} {arr[i].tolist()} has a value outside the int32 range")
        inverted = arr[:, 3] < arr[:, 2]
        if inverted.any():
            i = int(np.flatnonzero(inverted)[0])
            raise ValueError(f"span #{i} {arr[i].tolist()} has x1 < x0")
    return arr


def _row_keys(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """int64 key ordered like ``(z, y)`` for int32-range z, y."""
    return z.astype(np.int64) * (1 << 32) + (y.astype(np.int64) - INT32_MIN)


def _sorted(arr: np.ndarray) -> np.ndarray:
    order = np.lexsort((arr[:, 3], arr[:, 2], arr[:, 1], arr[:, 0]))
    return arr[order]


def normalize_spans(spans: Any) -> np.ndarray:
    """Canonical form: sorted by ``(z, y, x0)``; overlapping/adjacent spans merged.

    The result has no duplicates, and within a row consecutive spans are separated by at
    least one missing block. ``[]`` gives a ``(0, 4)`` array.

    Raises:
        ValueError: as for :func:`validate_spans`.
    """
    arr = validate_spans(spans)
    if len(arr) == 0:
        return arr
    arr = _sorted(arr)
    rk = _row_keys(arr[:, 0], arr[:, 1])
    x0 = arr[:, 2]
    x1 = arr[:, 3]
    # Running max of x1 within each row: shift x1 into a per-row-increasing key space.
    row_id = np.concatenate(([0], np.cumsum(rk[1:] != rk[:-1])))
    shifted = row_id * (1 << 33) + (x1 - INT32_MIN)
    run_max = np.maximum.accumulate(shifted) - row_id * (1 << 33) + INT32_MIN
    starts = np.ones(len(arr), dtype=bool)
    starts[1:] = (row_id[1:] != row_id[:-1]) | (x0[1:] > run_max[:-1] + 1)
    idx = np.flatnonzero(starts)
    ends = np.append(idx[1:], len(arr)) - 1
    out = np.empty((len(idx), 4), dtype=np.int64)
    out[:, 0] = arr[idx, 0]
    out[:, 1] = arr[idx, 1]
    out[:, 2] = x0[idx]
    out[:, 3] = run_max[ends]
    return out


def stored_spans(spans: Any) -> np.ndarray:
    """What DVID's ``GET roi`` returns after ``POST roi`` with these spans.

    Sorted by ``(z, y, x0)``; not merged; of spans sharing ``(z, y, x0)`` the one posted
    **last** is kept (DVID stores one key per span start).

    Raises:
        ValueError: as for :func:`validate_spans`.
    """
    arr = validate_spans(spans)
    if len(arr) == 0:
        return arr
    pos = np.arange(len(arr))
    order = np.lexsort((pos, arr[:, 2], arr[:, 1], arr[:, 0]))
    s = arr[order]
    same_next = np.zeros(len(s), dtype=bool)
    same_next[:-1] = (s[1:, :3] == s[:-1, :3]).all(axis=1)
    return s[~same_next]


def spans_to_list(spans: np.ndarray) -> list[list[int]]:
    """Spans as JSON-ready Python lists ``[[z, y, x0, x1], ...]``."""
    return np.asarray(spans, dtype=np.int64).reshape(-1, 4).tolist()


def num_blocks(spans: Any) -> int:
    """Number of distinct blocks covered (overlaps counted once).

    Raises:
        ValueError: as for :func:`validate_spans`.
    """
    n = normalize_spans(spans)
    return int((n[:, 3] - n[:, 2] + 1).sum())


def z_extent(spans: Any) -> tuple[int, int]:
    """``(MinZ, MaxZ)`` block-Z extent as in the ROI ``Extended`` info.

    An empty ROI gives DVID's sentinels ``(2147483647, -2147483648)``.

    Raises:
        ValueError: as for :func:`validate_spans`.
    """
    arr = validate_spans(spans)
    if len(arr) == 0:
        return INT32_MAX, INT32_MIN
    return int(arr[:, 0].min()), int(arr[:, 0].max())


# --------------------------------------------------------------------------------------
# Spans <-> blocks
# --------------------------------------------------------------------------------------


def spans_to_blocks(spans: Any) -> np.ndarray:
    """Expand spans to the sorted, unique ``(N, 3)`` (x, y, z) block coordinates.

    Rows are in ZYX scan order. Memory is proportional to the block count, so this is
    meant for ROIs of up to tens of millions of blocks.

    Raises:
        ValueError: as for :func:`validate_spans`.
    """
    n = normalize_spans(spans)
    if len(n) == 0:
        return _EMPTY_BLOCKS.copy()
    lengths = n[:, 3] - n[:, 2] + 1
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    out = np.empty((total, 3), dtype=np.int64)
    out[:, 0] = np.repeat(n[:, 2], lengths) + within
    out[:, 1] = np.repeat(n[:, 1], lengths)
    out[:, 2] = np.repeat(n[:, 0], lengths)
    return out


def blocks_to_spans(blocks: ArrayLike) -> np.ndarray:
    """Normalized spans covering an ``(N, 3)`` (x, y, z) list of block coordinates.

    Order and duplicates in ``blocks`` do not matter. An empty list gives ``(0, 4)``.

    Raises:
        ValueError: not an integer ``(N, 3)`` array or values outside int32.
    """
    b = np.asarray(blocks)
    if b.size == 0:
        return _EMPTY_SPANS.copy()
    if b.ndim != 2 or b.shape[1] != 3 or b.dtype.kind not in "iu" or b.dtype == np.bool_:
        raise ValueError(f"blocks must be an integer (N, 3) array, got {b.dtype} {b.shape}")
    b = b.astype(np.int64)
    if b.min() < INT32_MIN or b.max() > INT32_MAX:
        raise ValueError("block coordinates outside the int32 range")
    order = np.lexsort((b[:, 0], b[:, 1], b[:, 2]))
    b = b[order]
    keep = np.ones(len(b), dtype=bool)
    keep[1:] = (b[1:] != b[:-1]).any(axis=1)
    b = b[keep]
    x, y, z = b[:, 0], b[:, 1], b[:, 2]
    starts = np.ones(len(b), dtype=bool)
    starts[1:] = (z[1:] != z[:-1]) | (y[1:] != y[:-1]) | (x[1:] != x[:-1] + 1)
    idx = np.flatnonzero(starts)
    ends = np.append(idx[1:], len(b)) - 1
    return np.stack([z[idx], y[idx], x[idx], x[ends]], axis=1)


# --------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------


def points_in_roi(points_xyz: ArrayLike, spans: Any, block_size: int | Sequence[int]) -> np.ndarray:
    """Which voxel points lie in the ROI (DVID ``POST ptquery``), as a bool ``(N,)`` array.

    ``points_xyz`` is ``(N, 3)`` integer voxel coordinates (any int range; points whose
    block falls outside int32 are simply outside). Block = ``floor(voxel / block_size)``,
    so negative voxels work. Cost is ``O((N + S) log S)`` via ``np.searchsorted`` on
    encoded (row, x) keys of the normalized spans. To test many batches of points against
    one ROI, build the span index once with :func:`roi_point_tester`.

    Raises:
        ValueError: bad points shape/dtype, bad spans or bad block size.
    """
    pts = np.asarray(points_xyz)
    if pts.size == 0:
        return np.zeros(0 if pts.ndim < 2 else pts.shape[0], dtype=bool)
    return roi_point_tester(spans, block_size)(pts)


def roi_point_tester(spans: Any,
                     block_size: int | Sequence[int]) -> Callable[[ArrayLike], np.ndarray]:
    """:func:`points_in_roi` with the spans indexed once: ``test(points_xyz) -> bool (N,)``.

    Building costs ``O(S log S)``; each call ``O(N log S)``, vectorized.

    Raises:
        ValueError: bad spans or block size (now); bad points (at call time).
    """
    bs = np.asarray(as_block_size(block_size), dtype=np.int64)
    n = normalize_spans(spans)
    if len(n):
        span_rk = _row_keys(n[:, 0], n[:, 1])
        urk, row_rank = np.unique(span_rk, return_inverse=True)
        row_rank = row_rank.reshape(-1)
        span_key = row_rank.astype(np.int64) * (1 << 33) + (n[:, 2] - INT32_MIN)

    def test(points_xyz: ArrayLike) -> np.ndarray:
        pts = np.asarray(points_xyz)
        if pts.size == 0:
            return np.zeros(0 if pts.ndim < 2 else pts.shape[0], dtype=bool)
        if (pts.ndim != 2 or pts.shape[1] != 3 or pts.dtype.kind not in "iu"
                or pts.dtype == np.bool_):
            raise ValueError(
                f"points must be an integer (N, 3) array, got {pts.dtype} {pts.shape}")
        if len(n) == 0:
            return np.zeros(len(pts), dtype=bool)
        if pts.dtype == np.uint64:
            pts = np.minimum(pts, np.uint64(2**62)).astype(np.int64)
        blk = np.floor_divide(pts.astype(np.int64), bs)
        in_range = ((blk >= INT32_MIN) & (blk <= INT32_MAX)).all(axis=1)
        blk = np.clip(blk, INT32_MIN, INT32_MAX)
        prk = _row_keys(blk[:, 2], blk[:, 1])
        pos = np.searchsorted(urk, prk)
        pos_c = np.minimum(pos, len(urk) - 1)
        row_found = (pos < len(urk)) & (urk[pos_c] == prk) & in_range
        pkey = pos_c.astype(np.int64) * (1 << 33) + (blk[:, 0] - INT32_MIN)
        i = np.searchsorted(span_key, pkey, side="right") - 1
        i_c = np.maximum(i, 0)
        return row_found & (i >= 0) & (row_rank[i_c] == pos_c) & (n[i_c, 3] >= blk[:, 0])

    return test

def roi_mask(
    spans: Any,
    offset: Sequence[int],
    size: Sequence[int],
    block_size: int | Sequence[int],
) -> np.ndarray:
    """uint8 ``(nz, ny, nx)`` mask of a voxel box: 1 inside the ROI, 0 outside.

    This is DVID's ``GET mask/0_1_2/{size}/{offset}``. The box may be unaligned and have
    negative offsets (blocks use floor division). Vectorized: a block-resolution mask is
    built with a difference array, then expanded to voxels with ``np.take``.

    Raises:
        ValueError: bad spans, negative size or bad block size.
    """
    o = as_point3(offset, "offset")
    s = as_point3(size, "size")
    bs = as_block_size(block_size)
    if min(s) < 0:
        raise ValueError(f"bad size {s}: components must be >= 0")
    n = validate_spans(spans)
    shape = zyx_shape(s)
    if min(s) == 0:
        return np.zeros(shape, dtype=np.uint8)
    lo, hi = block_range(o, s, bs)
    nbx, nby, nbz = hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1
    sel = (
        (n[:, 0] >= lo[2])
        & (n[:, 0] <= hi[2])
        & (n[:, 1] >= lo[1])
        & (n[:, 1] <= hi[1])
        & (n[:, 3] >= lo[0])
        & (n[:, 2] <= hi[0])
    )
    n = n[sel]
    if len(n) == 0:
        return np.zeros(shape, dtype=np.uint8)
    zi = n[:, 0] - lo[2]
    yi = n[:, 1] - lo[1]
    x0 = np.maximum(n[:, 2], lo[0]) - lo[0]
    x1 = np.minimum(n[:, 3], hi[0]) - lo[0]
    row = (zi * nby + yi) * (nbx + 1)
    ncell = nbz * nby * (nbx + 1)
    diff = np.bincount(row + x0, minlength=ncell) - np.bincount(row + x1 + 1, minlength=ncell)
    blockmask = (np.cumsum(diff.reshape(nbz, nby, nbx + 1), axis=2)[:, :, :nbx] > 0).astype(
        np.uint8
    )
    iz = (o[2] + np.arange(s[2], dtype=np.int64)) // bs[2] - lo[2]
    iy = (o[1] + np.arange(s[1], dtype=np.int64)) // bs[1] - lo[1]
    ix = (o[0] + np.arange(s[0], dtype=np.int64)) // bs[0] - lo[0]
    return np.ascontiguousarray(blockmask.take(iz, axis=0).take(iy, axis=1).take(ix, axis=2))


# --------------------------------------------------------------------------------------
# Partition
# --------------------------------------------------------------------------------------


class TooManyPieces(ValueError):
    """:func:`partition` would split the spans into more pieces than allowed."""


def partition(spans: Any, batchsize: int, block_size: int | Sequence[int],
              max_pieces: int | None = None) -> dict[str, Any]:
    """Subvolumes of ``batchsize**3`` blocks covering the ROI (``GET partition``).

    A fixed grid of ``batchsize``-block cubes is anchored at the ROI's minimum block
    corner (``ROI.MinChunk``); every cube containing at least one ROI block becomes a
    subvolume, listed in ZYX scan order of the cubes. Each subvolume has
    ``MinPoint``/``MaxPoint`` (inclusive voxel corners), ``MinChunk``/``MaxChunk``
    (inclusive block corners), ``TotalBlocks = batchsize**3`` and ``ActiveBlocks`` (ROI
    blocks inside). ``NumActiveBlocks`` is the ROI's distinct block count (equal to the sum
    of ``ActiveBlocks``), ``NumTotalBlocks`` the sum of ``TotalBlocks``.

    Deliberate differences from DVID: DVID spreads the remainder of each Z layer / Y row
    by making some cubes one block larger, trims cubes at X holes, and starts its ``ROI``
    box at ``[0, 0, MinZ]`` so x/y always include 0 (a bug); here every cube is exactly
    ``batchsize**3`` blocks and ``ROI`` is the true block bounding box. An empty ROI
    gives no subvolumes and DVID's ``MinChunk [0, 0, 2147483647]`` /
    ``MaxChunk [0, 0, -2147483648]``. ``optimized=true`` is not modelled.

    The work (and the answer) grows with the number of (span, cube) pieces, which a few
    long spans and a small batchsize make huge; it is counted before anything is built.

    Raises:
        TooManyPieces: more than ``max_pieces`` pieces (when given).
        ValueError: ``batchsize < 1``, bad spans or bad block size.
    """
    if isinstance(batchsize, bool) or not isinstance(batchsize, int | np.integer):
        raise ValueError(f"batchsize must be a positive integer, got {batchsize!r}")
    b = int(batchsize)
    if b < 1:
        raise ValueError(f"batchsize must be >= 1, got {b}")
    bs = as_block_size(block_size)
    n = normalize_spans(spans)
    if len(n) == 0:
        return {
            "NumTotalBlocks": 0,
            "NumActiveBlocks": 0,
            "NumSubvolumes": 0,
            "ROI": {"MinChunk": [0, 0, INT32_MAX], "MaxChunk": [0, 0, INT32_MIN]},
            "Subvolumes": [],
        }
    z, y, x0, x1 = n[:, 0], n[:, 1], n[:, 2], n[:, 3]
    minc = (int(x0.min()), int(y.min()), int(z.min()))
    maxc = (int(x1.max()), int(y.max()), int(z.max()))

    # Split every span at cube boundaries along X (vectorized expansion).
    cz = (z - minc[2]) // b
    cy = (y - minc[1]) // b
    cx0 = (x0 - minc[0]) // b
    cx1 = (x1 - minc[0]) // b
    ncube = cx1 - cx0 + 1
    total = int(ncube.sum())
    if max_pieces is not None and total > max_pieces:
        raise TooManyPieces(f"partition into {batchsize}^3-block subvolumes has {total} "
                            f"span pieces, over the limit of {max_pieces}")
    first = np.cumsum(ncube) - ncube
    rep = np.repeat(np.arange(len(n)), ncube)
    cx = cx0[rep] + (np.arange(total, dtype=np.int64) - np.repeat(first, ncube))
    lo_x = np.maximum(x0[rep], minc[0] + cx * b)
    hi_x = np.minimum(x1[rep], minc[0] + cx * b + b - 1)
    counts = hi_x - lo_x + 1
    czr, cyr = cz[rep], cy[rep]

    # Group by cube in ZYX order and sum the active counts.
    order = np.lexsort((cx, cyr, czr))
    cx, cyr, czr, counts = cx[order], cyr[order], czr[order], counts[order]
    newcube = np.ones(total, dtype=bool)
    newcube[1:] = (cx[1:] != cx[:-1]) | (cyr[1:] != cyr[:-1]) | (czr[1:] != czr[:-1])
    starts = np.flatnonzero(newcube)
    active = np.add.reduceat(counts, starts)
    mins = np.stack(
        [minc[0] + cx[starts] * b, minc[1] + cyr[starts] * b, minc[2] + czr[starts] * b], axis=1
    )
    maxs = mins + (b - 1)
    bsa = np.asarray(bs, dtype=np.int64)
    minp = mins * bsa
    maxp = (maxs + 1) * bsa - 1
    per = b**3
    subvolumes = [
        {
            "MinPoint": mp,
            "MaxPoint": xp,
            "MinChunk": mc,
            "MaxChunk": xc,
            "TotalBlocks": per,
            "ActiveBlocks": a,
        }
        for mp, xp, mc, xc, a in zip(
            minp.tolist(), maxp.tolist(), mins.tolist(), maxs.tolist(), active.tolist(), strict=True
        )
    ]
    return {
        "NumTotalBlocks": per * len(subvolumes),
        "NumActiveBlocks": int(active.sum()),
        "NumSubvolumes": len(subvolumes),
        "ROI": {"MinChunk": list(minc), "MaxChunk": list(maxc)},
        "Subvolumes": subvolumes,
    }
