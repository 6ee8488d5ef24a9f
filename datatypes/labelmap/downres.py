"""2x label downsampling with DVID's multiscale rule (spec §9.17).

Per 2x2x2 cell the most frequent **non-zero** label wins; ties go to the **smaller** id;
a cell whose eight voxels are all 0 becomes 0.

Implementation: view the volume as (cells, 8) and take each row's mode with
:func:`datatypes.common.downsample.mode_of_rows` (sorted rows, runs of equal values counted
across the columns) — no Python loops over voxels.
"""

from __future__ import annotations

import numpy as np

from datatypes.common.downsample import mode_of_rows
from datatypes.labelmap.block_codec import _as_label_volume

__all__ = ["downres_labels", "downres_octants"]


def _cells(a: np.ndarray) -> np.ndarray:
    """(nz, ny, nx) with even dims → (nz/2·ny/2·nx/2, 8) rows of 2x2x2 cells."""
    nz, ny, nx = a.shape
    t = a.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).transpose(0, 2, 4, 1, 3, 5)
    return t.reshape(-1, 8)


def downres_labels(arr: np.ndarray) -> np.ndarray:
    """Downsample a (nz, ny, nx) label volume by 2 in every dimension.

    Odd dimensions are padded with 0 at the high end (so the output shape is
    ``ceil(n/2)``); because 0 never wins over a non-zero label, padding only affects which
    cells can become 0.  Empty dimensions give an empty result.  Any non-negative integer
    dtype is accepted; the result is uint64.
    """
    a = _as_label_volume(arr, "volume")
    nz, ny, nx = a.shape
    oz, oy, ox = (nz + 1) // 2, (ny + 1) // 2, (nx + 1) // 2
    if a.size == 0:
        return np.zeros((oz, oy, ox), dtype=np.uint64)
    if nz % 2 or ny % 2 or nx % 2:
        p = np.zeros((2 * oz, 2 * oy, 2 * ox), dtype=np.uint64)
        p[:nz, :ny, :nx] = a
        a = p
    out = mode_of_rows(_cells(a))
    return out.reshape(oz, oy, ox)


def downres_octants(octants: list[np.ndarray | None]) -> np.ndarray:
    """Build a parent block from its eight children (octant ``(z&1)<<2 | (y&1)<<1 | (x&1)``).

    Each octant is a (nz, ny, nx) label array of the same even shape, or ``None`` for a
    missing child (treated as all 0).  Returns the (nz, ny, nx) uint64 parent: the 2x
    downsample of the 2nzx2nyx2nx volume formed by the children.
    """
    if len(octants) != 8:
        raise ValueError(f"need exactly 8 octants, got {len(octants)}")
    shapes = {np.asarray(o).shape for o in octants if o is not None}
    if not shapes:
        raise ValueError("at least one octant must be given to know the block shape")
    if len(shapes) != 1:
        raise ValueError(f"octants must share one shape, got {sorted(shapes)}")
    (shape,) = shapes
    if len(shape) != 3 or any(d % 2 for d in shape):
        raise ValueError(f"octant shape must be 3-D with even dims, got {shape}")
    nz, ny, nx = shape
    out = np.empty(shape, dtype=np.uint64)
    hz, hy, hx = nz // 2, ny // 2, nx // 2
    for i, o in enumerate(octants):
        z, y, x = (i >> 2) & 1, (i >> 1) & 1, i & 1
        dst = out[z * hz : (z + 1) * hz, y * hy : (y + 1) * hy, x * hx : (x + 1) * hx]
        if o is None:
            dst[...] = 0
        else:
            dst[...] = downres_labels(o)
    return out
