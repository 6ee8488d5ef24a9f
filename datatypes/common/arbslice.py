"""Geometry and resampling of DVID's arbitrary-plane images (``GET .../arb/...``).

Behaviour follows DVID's ``datatype/imageblk/arb_image.go`` (only the behaviour; no code):

* The three corners ``top left`` / ``top right`` / ``bottom left`` are *physical*
  coordinates (e.g. nanometres); a point ``p`` is at voxel coordinate ``p / VoxelSize``
  (VoxelSize held as float32 in DVID, so it is rounded to float32 here too). Voxel ``i``
  sits exactly at integer coordinate ``i`` (no half-voxel offset).
* ``nx = floor(|TR - TL| / res)`` and ``ny = floor(|BL - TL| / res)``; the image is
  ``(nx + 1) x (ny + 1)`` pixels and the sample step is ``(TR - TL) / nx`` across and
  ``(BL - TL) / ny`` down, so the first and last columns/rows sit exactly on the corners
  (the real pixel spacing is ``>= res``). A zero-length edge gives one column/row.
* Sample ``(x, y)`` is found by repeated addition, as DVID does: the row start is ``TL``
  plus ``incrY`` added ``y`` times, then ``incrX`` is added ``x`` times
  (:func:`sample_points` reproduces the float rounding with sequential cumulative sums).
* Each sample is a trilinear interpolation (uint8blk is "interpolable") of the 8 lattice
  voxels ``floor``/``ceil`` of its voxel coordinate; an axis whose coordinate is an
  integer uses weight 0 (one voxel). The value is ``floor(v + 0.5)`` capped at 255.
* Unwritten voxels read as the instance's Background (DVID's ``BackgroundBlock``).

DVID does not check that the plane is a rectangle: non-perpendicular edges sample the
parallelogram, and coincident corners give a line or a single pixel.

Everything here is vectorized; callers read voxel values block by block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_ARB_PIXELS = 1 << 26
"""Largest image (pixels) an ``arb`` request may ask for."""

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1


class PlaneTooLarge(ValueError):
    """The requested image has more pixels than allowed."""


@dataclass(frozen=True)
class ArbPlane:
    """A sampled plane: ``width x height`` samples from ``top_left`` by ``incr_x``/``incr_y``."""

    top_left: tuple[float, float, float]
    incr_x: tuple[float, float, float]
    incr_y: tuple[float, float, float]
    width: int
    height: int

    @property
    def num_pixels(self) -> int:
        """``width * height``."""
        return self.width * self.height


def parse_point(text: str, what: str) -> tuple[float, float, float]:
    """``"x_y_z"`` floats -> tuple; ``ValueError`` naming ``what`` when malformed."""
    parts = text.split("_")
    if len(parts) != 3:
        raise ValueError(f"bad {what} {text!r}: expected x_y_z (3 numbers separated by '_')")
    vals = []
    for p in parts:
        try:
            v = float(p.strip())
        except ValueError:
            raise ValueError(f"bad {what} {text!r}: {p!r} is not a number") from None
        if not math.isfinite(v):
            raise ValueError(f"bad {what} {text!r}: coordinates must be finite")
        vals.append(v)
    return vals[0], vals[1], vals[2]


def parse_res(text: str) -> float:
    """The output pixel size: a positive finite number."""
    try:
        v = float(text.strip())
    except ValueError:
        raise ValueError(f"bad res {text!r}: expected a positive number") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"bad res {text!r}: must be a positive finite number")
    return v


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    dx, dy, dz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    return math.sqrt(dx * dx + dy * dy + dz * dz)


def make_plane(top_left: Sequence[float], top_right: Sequence[float],
               bottom_left: Sequence[float], res: float,
               max_pixels: int = MAX_ARB_PIXELS) -> ArbPlane:
    """DVID's image size and sample steps for the corners and pixel size ``res``.

    Raises:
        PlaneTooLarge: more than ``max_pixels`` pixels.
        ValueError: a size that is not finite.
    """
    if not (res > 0 and math.isfinite(res)):
        raise ValueError(f"res must be a positive finite number, got {res!r}")
    fx = _distance(top_right, top_left) / res
    fy = _distance(bottom_left, top_left) / res
    if not (math.isfinite(fx) and math.isfinite(fy)):
        raise ValueError("arb image size is not finite (corners too far apart for res)")
    nx, ny = math.floor(fx), math.floor(fy)
    if (nx + 1) * (ny + 1) > max_pixels:
        raise PlaneTooLarge(f"arb image of {nx + 1} x {ny + 1} pixels is over the limit "
                            f"of {max_pixels} pixels")
    tl = (float(top_left[0]), float(top_left[1]), float(top_left[2]))

    def step(end: Sequence[float], n: int) -> tuple[float, float, float]:
        if n == 0:  # DVID divides by zero here, but the step is never used
            return (0.0, 0.0, 0.0)
        return ((float(end[0]) - tl[0]) / n, (float(end[1]) - tl[1]) / n,
                (float(end[2]) - tl[2]) / n)

    return ArbPlane(tl, step(top_right, nx), step(bottom_left, ny), nx + 1, ny + 1)


def plane_voxel_bounds(plane: ArbPlane, voxel_size: Sequence[float],
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive (lo, hi) voxel-coordinate bounds of the plane's 4 corners, one voxel wide
    margin (float rounding of the repeated additions)."""
    o = np.asarray(plane.top_left)
    ex = np.asarray(plane.incr_x) * (plane.width - 1)
    ey = np.asarray(plane.incr_y) * (plane.height - 1)
    corners = np.stack([o, o + ex, o + ey, o + ex + ey]) / voxel_size_f64(voxel_size)
    return np.floor(corners.min(axis=0)) - 1, np.ceil(corners.max(axis=0)) + 1


def check_int32(plane: ArbPlane, voxel_size: Sequence[float]) -> None:
    """``ValueError`` when a sample's voxel coordinate could leave the int32 range."""
    lo, hi = plane_voxel_bounds(plane, voxel_size)
    if lo.min() < _INT32_MIN or hi.max() > _INT32_MAX:
        raise ValueError("arb plane reaches voxel coordinates outside the int32 range")


def voxel_size_f64(voxel_size: Sequence[float]) -> np.ndarray:
    """VoxelSize as DVID uses it: float32 values widened to float64."""
    return np.asarray(voxel_size, dtype=np.float32).astype(np.float64)


def row_starts(plane: ArbPlane) -> np.ndarray:
    """``(height, 3)`` physical start of every row: ``TL`` then ``+ incrY`` sequentially."""
    a = np.empty((plane.height, 3), dtype=np.float64)
    a[0] = plane.top_left
    a[1:] = plane.incr_y
    return np.cumsum(a, axis=0, out=a)  # accumulate is sequential: DVID's rounding


def sample_points(plane: ArbPlane, starts: np.ndarray, row0: int, row1: int) -> np.ndarray:
    """``(3, (row1 - row0) * width)`` physical x, y, z of the samples of rows
    ``row0..row1-1`` in row-major order; ``starts`` is :func:`row_starts`."""
    a = np.empty((3, row1 - row0, plane.width), dtype=np.float64)
    a[:, :, 0] = starts[row0:row1].T
    a[:, :, 1:] = np.asarray(plane.incr_x)[:, None, None]
    np.cumsum(a, axis=2, out=a)
    return a.reshape(3, -1)


def lattice(points: np.ndarray, voxel_size: Sequence[float],
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``(3, N)`` physical points: ``(lo, hi, frac)``, the floor and ceil voxel
    coordinates (int64, ``(3, N)``) and the interpolation weight of ``hi`` per axis
    (0 where ``lo == hi``), computed the way DVID does (in physical units)."""
    vs = voxel_size_f64(voxel_size)[:, None]
    vc = points / vs
    f0 = np.floor(vc)
    f1 = np.ceil(vc)
    r0 = f0 * vs
    den = f1 * vs - r0
    same = f0 == f1
    den[same] = 1.0
    frac = (points - r0) / den
    frac[same] = 0.0
    return f0.astype(np.int64), f1.astype(np.int64), frac


def corners(lo_hi: Sequence[np.ndarray], scale: Sequence[int] = (1, 1)) -> np.ndarray:
    """Combine per-axis ``(2, N)`` lo/hi values into ``(8, N)`` values of the 8 corners
    ``k = z*4 + y*2 + x`` (bit set: ``hi``): ``(z * scale[1] + y) * scale[0] + x``."""
    x, y, z = lo_hi
    v = (z[:, None, None, :] * scale[1] + y[None, :, None, :]) * scale[0] + x[None, None, :, :]
    return v.reshape(8, -1)


def trilinear_uint8(values: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """DVID's uint8 trilinear interpolation.

    ``values`` is ``(8, N)`` with corner ``k = z*4 + y*2 + x``; ``frac`` is ``(3, N)``.
    Result: ``floor(v + 0.5)`` capped at 255, as uint8.
    """
    c = values.astype(np.float64)
    xd, yd, zd = frac
    c00 = c[0] * (1.0 - xd) + c[1] * xd
    c10 = c[2] * (1.0 - xd) + c[3] * xd
    c01 = c[4] * (1.0 - xd) + c[5] * xd
    c11 = c[6] * (1.0 - xd) + c[7] * xd
    c0 = c00 * (1.0 - yd) + c10 * yd
    c1 = c01 * (1.0 - yd) + c11 * yd
    v = np.floor(c0 * (1.0 - zd) + c1 * zd + 0.5)
    return np.clip(v, 0, 255).astype(np.uint8)


def corner_blocks(blocks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct blocks of the 8 lattice corners of ``N`` samples.

    ``blocks[a]`` is the ``(2, N)`` block coordinate along axis ``a`` of the lo/hi
    lattice voxels. Returns ``(coords (U, 3) x,y,z, slot (8, N))`` where ``slot[k, i]``
    indexes ``coords`` for corner ``k`` of sample ``i``. Sort-free (a dense table over the
    bounding box) unless the blocks are spread thinly, then per-axis ranks and a 1-D
    ``np.unique``.
    """
    n = blocks[0].shape[1]
    rel, dims, decode = [], [], []
    for b in blocks:
        mn, mx = int(b.min()), int(b.max())
        if mx - mn + 1 <= 4 * n + 64:
            rel.append(b - mn)
            dims.append(mx - mn + 1)
            decode.append(mn)
        else:  # rank-compress a thinly spread axis
            vals, inv = np.unique(b, return_inverse=True)
            rel.append(inv.reshape(b.shape))
            dims.append(len(vals))
            decode.append(vals)
    lin = corners(rel, (dims[0], dims[1]))
    vol = dims[0] * dims[1] * dims[2]
    if vol <= max(32 * n, 1 << 16):
        present = np.zeros(vol, dtype=bool)
        present[lin] = True
        u = np.flatnonzero(present)
        table = np.empty(vol, dtype=np.int64)
        table[u] = np.arange(len(u), dtype=np.int64)
        slot = table[lin]
    else:
        u, inv = np.unique(lin, return_inverse=True)
        slot = inv.reshape(lin.shape)
    rest, ux = np.divmod(u, dims[0])
    uz, uy = np.divmod(rest, dims[1])
    cols = [r + d if isinstance(d, int) else d[r] for r, d in zip((ux, uy, uz), decode,
                                                                   strict=True)]
    return np.stack(cols, axis=1).astype(np.int64), slot


__all__ = [
    "MAX_ARB_PIXELS",
    "ArbPlane",
    "PlaneTooLarge",
    "check_int32",
    "corner_blocks",
    "corners",
    "lattice",
    "make_plane",
    "parse_point",
    "parse_res",
    "plane_voxel_bounds",
    "row_starts",
    "sample_points",
    "trilinear_uint8",
    "voxel_size_f64",
]
