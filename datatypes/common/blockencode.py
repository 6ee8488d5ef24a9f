"""Whole blocks of a volume framed for storage in one call (imageblk writes).

:func:`encode_blocks` takes a C-contiguous ``(nz, ny, nx)`` volume and the voxel origins of
whole blocks inside it and returns each block's stored value: DVID's one-byte frame
(dvid-api.md §3.1), then an LZ4 block with its uint32 length, or the raw voxels. Two
implementations make values that decode to the same voxels: the compiled kernel
``datatypes/common/_blockencode_c.c`` (built by ``pip install`` when Debian's ``liblz4-dev``
is present), used whenever it is importable, with the GIL released (the caller's thread pool
spreads the blocks over its threads), each block's rows gathered into a scratch block that
stays in cache and LZ4 writing straight into the value; and the numpy reference
(:func:`encode_blocks_numpy`: :func:`dvidpy.codec.serialize` of each block). Checksummed,
gzip and JPEG values are not made here (:func:`encode_blocks` returns None: the caller
encodes them). Setting ``DVIDPY_NO_EXTENSION=1`` before the import selects the reference.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from dvidpy.codec import COMP_LZ4, COMP_NONE, compression_code, serialize

try:
    if os.environ.get("DVIDPY_NO_EXTENSION") or sys.byteorder != "little":
        raise ImportError("compiled block encoder disabled")
    from datatypes.common import _blockencode_c as _ext
except ImportError:  # not built (no compiler or liblz4-dev at install time) or disabled
    _ext = None

HAVE_EXTENSION = _ext is not None
"""True when the compiled kernel is in use (see the module docstring)."""

def encode_blocks(vol: np.ndarray, origins: np.ndarray, block_shape: Sequence[int],
                  compression: str, pool: Executor | None = None,
                  parts: int = 2) -> list[bytes] | None:
    """Stored values of the ``block_shape`` (z, y, x) blocks of ``vol`` whose first voxels
    are the rows (z, y, x) of ``origins``, by the kernel; None when it cannot make them
    (not built, ``vol`` not C-contiguous, a codec other than lz4 / snappy (stored as
    LZ4) / none). With ``pool``, 8 blocks or more are split into ``parts`` consecutive
    parts encoded in its threads (the kernel releases the GIL). Raises ``ValueError`` when
    a block reaches outside ``vol``."""
    if _ext is None or not vol.flags.c_contiguous or vol.ndim != 3:
        return None
    try:
        code = compression_code(compression)
    except ValueError:
        return None
    if code not in (COMP_LZ4, COMP_NONE):
        return None
    o = np.ascontiguousarray(origins, dtype=np.int64).reshape(-1, 3)
    bs = tuple(int(b) for b in block_shape)
    lz4 = code == COMP_LZ4

    def run(part: np.ndarray) -> list[bytes]:
        return _ext.encode_blocks(vol, vol.shape, part, bs, vol.itemsize, lz4)

    if pool is None or parts < 2 or len(o) < 8:
        return run(o)
    step = -(-len(o) // parts)
    out: list[bytes] = []
    for values in pool.map(run, [o[i:i + step] for i in range(0, len(o), step)]):
        out += values
    return out


def encode_blocks_numpy(vol: np.ndarray, origins: np.ndarray, block_shape: Sequence[int],
                        compression: str) -> list[bytes]:
    """The reference of :func:`encode_blocks` (any codec :func:`serialize` knows but
    JPEG, unchecksummed)."""
    bz, by, bx = (int(b) for b in block_shape)
    out = []
    for z, y, x in np.asarray(origins, dtype=np.int64).reshape(-1, 3).tolist():
        if min(z, y, x) < 0 or z + bz > vol.shape[0] or y + by > vol.shape[1] \
                or x + bx > vol.shape[2]:
            raise ValueError("a block lies outside the volume")
        blk = np.ascontiguousarray(vol[z:z + bz, y:y + by, x:x + bx])
        out.append(serialize(memoryview(blk.reshape(-1).view(np.uint8)), compression))
    return out
