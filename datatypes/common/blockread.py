"""Stored blocks decoded straight into their place in one output array (imageblk reads).

A box read knows, for every block it touches, which part of the block it wants and where
that part goes in the answer (:func:`block_places`). :func:`decode_into` then writes every
piece: a stored value is decoded (DVID's one-byte frame, dvid-api.md §3.1) and its piece
copied; a block that is not stored (``None``) gets the fill voxel.

Two implementations write the same voxels and accept the same values: the compiled kernel
``datatypes/common/_blockread_c.c`` (built by ``pip install`` when Debian's ``liblz4-dev``
is present), used whenever it is importable, and the numpy reference
(:func:`decode_into_numpy`). The kernel handles unchecksummed LZ4 and uncompressed values
(what imageblk stores by default) over several threads with the GIL released: a value that
holds its voxels as they are (uncompressed, or LZ4 of literals only, which is what LZ4 makes
of noisy data such as EM grayscale) is copied from the value itself, any other is
decompressed with liblz4 into a per-thread scratch block first, and the pieces of one row of
blocks are copied output row by output row. Every other value (gzip, JPEG, CRC32-checked)
and every value the kernel finds corrupt is handed to the caller's ``decode`` function, so
decoding rules and error messages live in one place
(:meth:`datatypes.imageblk.ImageBlk.decode_block`). Setting the environment variable
``DVIDPY_NO_EXTENSION=1`` before the import selects the numpy path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    if os.environ.get("DVIDPY_NO_EXTENSION") or sys.byteorder != "little":
        raise ImportError("compiled block reader disabled")
    from datatypes.common import _blockread_c as _ext
except ImportError:  # not built (no compiler or liblz4-dev at install time) or disabled
    _ext = None

HAVE_EXTENSION = _ext is not None
"""True when the compiled kernel is in use (see the module docstring)."""

#: threads the kernel may use (the calling one included)
THREADS = os.cpu_count() or 1

Buffer = Any  # bytes, memoryview or any object with the buffer protocol


def block_places(offset: Sequence[int], size: Sequence[int], block_size: Sequence[int],
                 coords: np.ndarray) -> np.ndarray:
    """``(n, 9)`` int64 rows, one per block coordinate ``(x, y, z)`` of ``coords``: where
    the block's piece of the box goes in a ``(nz, ny, nx)`` output (z, y, x), where it
    starts in the ``(bz, by, bx)`` block (z, y, x) and its extent (z, y, x).

    ``offset``/``size``/``block_size`` are x, y, z. Blocks outside the box get an extent
    with a zero (nothing to copy). Vectorized: no Python loop over blocks.
    """
    # (few numpy calls, each straight to a ufunc: this runs for every box read, and a
    # one-block read is mostly this constant cost)
    c = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
    if len(c) == 1:  # one block (a small read): plain integers cost less than ufuncs
        return np.array([_one_place(offset, size, block_size, c[0].tolist())],
                        dtype=np.int64)
    o = np.array(offset, dtype=np.int64)
    b = np.array(block_size, dtype=np.int64)
    start = c * b
    lo = np.maximum(start, o)
    ext = np.minimum(start + b, o + np.array(size, dtype=np.int64))
    ext -= lo
    np.maximum(ext, 0, out=ext)
    out = np.empty((len(c), 9), dtype=np.int64)
    out[:, 0:3] = (lo - o)[:, ::-1]
    lo -= start
    out[:, 3:6] = lo[:, ::-1]
    out[:, 6:9] = ext[:, ::-1]
    empty = np.logical_or.reduce(ext == 0, axis=1)
    if empty.any():
        out[empty, 0:6] = 0  # an empty piece: keep every index in range
    return out


def _one_place(offset: Sequence[int], size: Sequence[int], block_size: Sequence[int],
               c: Sequence[int]) -> list[int]:
    """The row of :func:`block_places` for the one block ``c`` (x, y, z)."""
    lo = [max(int(c[i]) * int(block_size[i]), int(offset[i])) for i in range(3)]
    ext = [max(0, min((int(c[i]) + 1) * int(block_size[i]), int(offset[i]) + int(size[i]))
               - lo[i]) for i in range(3)]
    if 0 in ext:
        return [0, 0, 0, 0, 0, 0, ext[2], ext[1], ext[0]]
    return [lo[2] - int(offset[2]), lo[1] - int(offset[1]), lo[0] - int(offset[0]),
            lo[2] - int(c[2]) * int(block_size[2]), lo[1] - int(c[1]) * int(block_size[1]),
            lo[0] - int(c[0]) * int(block_size[0]), ext[2], ext[1], ext[0]]


def _fill_bytes(out: np.ndarray, fill: Any) -> bytes:
    return np.asarray(fill, dtype=out.dtype).tobytes()


def decode_into(out: np.ndarray, values: list[Buffer | None], places: np.ndarray,
                block_shape: Sequence[int], fill: Any,
                decode: Callable[[Buffer], np.ndarray], threads: int | None = None,
                group: int = 1) -> None:
    """Write each piece ``places[i]`` of ``values[i]`` into ``out`` (see the module
    docstring); ``decode(value)`` returns a block's ``block_shape`` (z, y, x) voxels of
    ``out``'s type or raises for a corrupt value (that exception propagates; pieces
    already written stay written).

    ``out`` must be a writable array (C-contiguous for the kernel; any other layout takes
    the numpy path). ``values`` may be buffers valid only during this call (e.g. views
    into an LMDB read transaction): nothing keeps them. ``group``: a kernel thread takes
    this many consecutive values at a time (pass the blocks per row along x, so that no
    two threads write parts of one cache line). Raises ``ValueError`` when a place lies
    outside ``out`` or the block.
    """
    pl = np.ascontiguousarray(places, dtype=np.int64).reshape(-1, 9)
    if len(pl) != len(values):
        raise ValueError(f"{len(values)} values but {len(pl)} places")
    if _ext is None or not out.flags.c_contiguous or not out.flags.writeable or out.ndim != 3:
        decode_into_numpy(out, values, pl, block_shape, fill, decode)
        return
    status = _ext.decode_into(out, out.shape, values, pl, tuple(block_shape), out.itemsize,
                              _fill_bytes(out, fill), THREADS if threads is None else threads,
                              group)
    rest = np.flatnonzero(np.frombuffer(status, dtype=np.uint8))
    for i in rest.tolist():
        _piece(out, values[i], pl[i], fill, decode)


def decode_into_numpy(out: np.ndarray, values: list[Buffer | None], places: np.ndarray,
                      block_shape: Sequence[int], fill: Any,
                      decode: Callable[[Buffer], np.ndarray]) -> None:
    """The reference of :func:`decode_into`: each value through ``decode``, one numpy
    slice copy per piece."""
    pl = np.asarray(places, dtype=np.int64).reshape(-1, 9)
    od, bd = out.shape, tuple(block_shape)
    if len(pl) and ((pl < 0).any() or (pl[:, 0:3] + pl[:, 6:9] > np.asarray(od)).any()
                    or (pl[:, 3:6] + pl[:, 6:9] > np.asarray(bd)).any()):
        raise ValueError("a place lies outside the output or block")
    for v, q in zip(values, pl, strict=True):
        _piece(out, v, q, fill, decode)


def _piece(out: np.ndarray, value: Buffer | None, q: np.ndarray, fill: Any,
           decode: Callable[[Buffer], np.ndarray]) -> None:
    dz, dy, dx, sz, sy, sx, ez, ey, ex = q.tolist()
    if min(ez, ey, ex) == 0:
        return
    dst = out[dz:dz + ez, dy:dy + ey, dx:dx + ex]
    if value is None:
        dst[...] = fill
    else:
        dst[...] = decode(value)[sz:sz + ez, sy:sy + ey, sx:sx + ex]
