"""Voxel-space geometry: points, boxes, DVID URL strings and block math.

Conventions (used everywhere in dvidpy):

* Points, sizes, offsets and block sizes are **X, Y, Z** tuples of Python ints, as in the
  DVID API (``/raw/0_1_2/{nx_ny_nz}/{x_y_z}``).
* Arrays are C-order **``[z][y][x]``** (X fastest), so a box of size ``(nx, ny, nz)`` has
  array shape ``(nz, ny, nx)`` and a block of size ``(bx, by, bz)`` has shape
  ``(bz, by, bx)``.
* Block coordinates are ``floor(voxel / block_size)`` per axis (true floor, also for
  negative voxels: voxel ``-1`` lies in block ``-1``).
* Coordinates are limited to the int32 range, as in DVID.

Nothing here does I/O. Block-level loops are plain Python (one numpy slice assignment per
block); nothing loops over voxels.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

Point3: TypeAlias = tuple[int, int, int]
"""An ``(x, y, z)`` triple of ints (voxel or block coordinates, or a size)."""

ZYXSlices: TypeAlias = tuple[slice, slice, slice]
"""Slices indexing a ``[z][y][x]`` array."""

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_INT_RE = re.compile(r"[+-]?[0-9]+")

_DIMS_ALIASES: dict[str, tuple[int, ...]] = {
    "0_1_2": (0, 1, 2),
    "0_1": (0, 1),
    "0_2": (0, 2),
    "1_2": (1, 2),
    "xy": (0, 1),
    "xz": (0, 2),
    "yz": (1, 2),
}


# --------------------------------------------------------------------------------------
# Parsing of DVID URL strings
# --------------------------------------------------------------------------------------


def _parse_int(token: str, what: str, text: str) -> int:
    if not _INT_RE.fullmatch(token):
        raise ValueError(f"bad {what} {text!r}: {token!r} is not an integer")
    value = int(token)
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"bad {what} {text!r}: {token} is outside the int32 range")
    return value


def parse_ints(
    text: str, ndim: int | None = None, *, sep: str = "_", what: str = "coordinate"
) -> tuple[int, ...]:
    """Parse ``"a<sep>b<sep>c"`` into a tuple of ints.

    Each component must be an ASCII decimal integer with an optional sign (``+5``,
    ``-3``); whitespace, empty components, floats and values outside int32 are rejected.
    ``ndim`` (if given) is the required number of components.

    Raises:
        ValueError: with a message naming ``what`` and the offending text.
    """
    if not isinstance(text, str):
        raise ValueError(f"bad {what}: expected a string, got {type(text).__name__}")
    if text == "":
        raise ValueError(f"bad {what}: empty string")
    tokens = text.split(sep)
    if ndim is not None and len(tokens) != ndim:
        raise ValueError(
            f"bad {what} {text!r}: expected {ndim} {sep!r}-separated integers, got {len(tokens)}"
        )
    return tuple(_parse_int(t, what, text) for t in tokens)


def parse_xyz(text: str, *, sep: str = "_") -> Point3:
    """Parse a 3-D point such as ``"10_20_30"`` into ``(10, 20, 30)``.

    Negative components are allowed (``"-64_0_5"``). Use ``sep=","`` for settings such as
    ``MinPoint="0,0,0"``.

    Raises:
        ValueError: not exactly three int32 integers.
    """
    x, y, z = parse_ints(text, 3, sep=sep, what="point")
    return (x, y, z)


def parse_size(text: str, ndim: int = 3, *, sep: str = "_") -> tuple[int, ...]:
    """Parse a size such as ``"64_64_64"`` (3-D) or ``"512_256"`` (``ndim=2``).

    Every component must be ``> 0``.

    Raises:
        ValueError: wrong number of components, non-integer, or a component ``<= 0``.
    """
    values = parse_ints(text, ndim, sep=sep, what="size")
    for v in values:
        if v <= 0:
            raise ValueError(f"bad size {text!r}: every component must be > 0, got {v}")
    return values


def parse_dims(text: str) -> tuple[int, ...]:
    """Parse a DVID dims string into axis indices (0=X, 1=Y, 2=Z).

    Accepted: ``0_1_2`` (3-D), ``0_1``/``xy``, ``0_2``/``xz``, ``1_2``/``yz`` (2-D planes).
    The letter aliases are case-insensitive (``XY`` works). Anything else -- reordered
    axes (``1_0``), repeats, ``0``, ``0_1_2_3`` -- raises.

    Raises:
        ValueError: unsupported dims string.
    """
    if not isinstance(text, str):
        raise ValueError(f"bad dims: expected a string, got {type(text).__name__}")
    dims = _DIMS_ALIASES.get(text.lower())
    if dims is None:
        raise ValueError(f"bad dims {text!r}: expected one of 0_1_2, 0_1, 0_2, 1_2, xy, xz, yz")
    return dims


def plane_size_to_3d(dims: Sequence[int], size: Sequence[int]) -> Point3:
    """Expand a size given along ``dims`` to a 3-D ``(nx, ny, nz)`` size.

    Axes not in ``dims`` get size 1: ``plane_size_to_3d((0, 2), (512, 256))`` is
    ``(512, 1, 256)``. For 3-D dims the size is returned unchanged.

    Raises:
        ValueError: ``len(dims) != len(size)``.
    """
    if len(dims) != len(size):
        raise ValueError(f"size {tuple(size)} does not match dims {tuple(dims)}")
    out = [1, 1, 1]
    for d, s in zip(dims, size, strict=True):
        out[d] = int(s)
    return (out[0], out[1], out[2])


def parse_block_list(text: str) -> np.ndarray:
    """Parse ``/specificblocks?blocks=x1,y1,z1,x2,y2,z2,...`` into an ``(N, 3)`` array.

    Columns are x, y, z (block coordinates, int32 range), rows keep the request order
    (duplicates are kept). An empty string gives a ``(0, 3)`` array.

    Raises:
        ValueError: a component is not an integer or the count is not a multiple of 3.
    """
    if text == "":
        return np.zeros((0, 3), dtype=np.int64)
    values = parse_ints(text, None, sep=",", what="block list")
    if len(values) % 3:
        raise ValueError(
            f"bad block list: {len(values)} integers given, need a multiple of 3 (x,y,z)"
        )
    return np.asarray(values, dtype=np.int64).reshape(-1, 3)


def format_xyz(point: Sequence[int], sep: str = "_") -> str:
    """Inverse of :func:`parse_xyz`: ``(1, -2, 3) -> "1_-2_3"``."""
    return sep.join(str(int(v)) for v in point)


# --------------------------------------------------------------------------------------
# Points and boxes
# --------------------------------------------------------------------------------------


def as_point3(value: Iterable[Any], what: str = "point") -> Point3:
    """Coerce a 3-sequence of integers (Python or numpy ints) to a :data:`Point3`.

    Raises:
        ValueError: not exactly three integral values (bools and floats are rejected).
    """
    if type(value) is tuple and len(value) == 3:  # the common case (every request)
        a, b, c = value
        if type(a) is int and type(b) is int and type(c) is int:
            return value
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"bad {what}: {value!r} is not a sequence of 3 ints") from None
    if len(items) != 3:
        raise ValueError(f"bad {what}: {value!r} does not have 3 components")
    out = []
    for v in items:
        if isinstance(v, _BOOLS) or not isinstance(v, _INTS):
            raise ValueError(f"bad {what}: {value!r} has a non-integer component {v!r}")
        out.append(int(v))
    return (out[0], out[1], out[2])


_BOOLS = (bool, np.bool_)
_INTS = (int, np.integer)


def as_block_size(value: int | Iterable[Any]) -> Point3:
    """Coerce a block size (an int for a cube, or ``(bx, by, bz)``) to a positive triple.

    Raises:
        ValueError: a component is not a positive integer.
    """
    if isinstance(value, _INTS) and not isinstance(value, _BOOLS):
        bs = (int(value),) * 3
        bs3: Point3 = (bs[0], bs[1], bs[2])
    else:
        bs3 = as_point3(value, "block size")  # type: ignore[arg-type]
    if min(bs3) <= 0:
        raise ValueError(f"bad block size {bs3}: every component must be > 0")
    return bs3


def zyx_shape(size: Sequence[int]) -> tuple[int, int, int]:
    """Array shape ``(nz, ny, nx)`` for an XYZ ``size``."""
    return (int(size[2]), int(size[1]), int(size[0]))


def xyz_size(shape: Sequence[int]) -> Point3:
    """XYZ size for a ``(nz, ny, nx)`` array shape.

    Raises:
        ValueError: the shape is not 3-D.
    """
    if len(shape) != 3:
        raise ValueError(f"expected a 3-D [z][y][x] shape, got {tuple(shape)}")
    return (int(shape[2]), int(shape[1]), int(shape[0]))


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned voxel box: ``offset`` (min corner, XYZ) and ``size`` (XYZ, ``>= 0``).

    The box covers ``offset <= p < offset + size`` on each axis. A box with any zero size
    component is empty. Construct with ints; use :meth:`from_bounds` for two corners.
    """

    offset: Point3
    size: Point3

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", as_point3(self.offset, "offset"))
        object.__setattr__(self, "size", as_point3(self.size, "size"))
        if min(self.size) < 0:
            raise ValueError(f"bad size {self.size}: components must be >= 0")

    @classmethod
    def from_bounds(cls, min_point: Sequence[int], end: Sequence[int]) -> Box:
        """Box from its min corner and **exclusive** max corner (empty if ``end <= min``)."""
        lo = as_point3(min_point, "min point")
        hi = as_point3(end, "end point")
        return cls(lo, (max(0, hi[0] - lo[0]), max(0, hi[1] - lo[1]), max(0, hi[2] - lo[2])))

    @property
    def end(self) -> Point3:
        """Exclusive max corner ``offset + size``."""
        o, s = self.offset, self.size
        return (o[0] + s[0], o[1] + s[1], o[2] + s[2])

    @property
    def max_point(self) -> Point3:
        """Inclusive max corner ``offset + size - 1`` (meaningless for empty boxes)."""
        e = self.end
        return (e[0] - 1, e[1] - 1, e[2] - 1)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``."""
        return zyx_shape(self.size)

    @property
    def num_voxels(self) -> int:
        """Number of voxels (0 for an empty box)."""
        return self.size[0] * self.size[1] * self.size[2]

    @property
    def is_empty(self) -> bool:
        """True when any size component is 0."""
        return self.num_voxels == 0

    def intersect(self, other: Box) -> Box:
        """Intersection with ``other``; an empty box (size 0) when they do not overlap."""
        lo = tuple(max(a, b) for a, b in zip(self.offset, other.offset, strict=True))
        hi = tuple(min(a, b) for a, b in zip(self.end, other.end, strict=True))
        return Box.from_bounds(lo, hi)

    def contains(self, point: Sequence[int]) -> bool:
        """True if the XYZ voxel ``point`` lies inside the box."""
        return all(o <= int(p) < e for o, p, e in zip(self.offset, point, self.end, strict=True))

    def slices(self, origin: Sequence[int] = (0, 0, 0)) -> ZYXSlices:
        """``[z][y][x]`` slices selecting this box inside an array whose voxel 0 is ``origin``.

        No clipping is done: negative starts are *not* valid numpy indexing, so callers
        must ensure the box lies inside the array (e.g. via :meth:`intersect`).
        """
        o, e = self.offset, self.end
        return (
            slice(o[2] - origin[2], e[2] - origin[2]),
            slice(o[1] - origin[1], e[1] - origin[1]),
            slice(o[0] - origin[0], e[0] - origin[0]),
        )

    def block_range(self, block_size: int | Sequence[int]) -> tuple[Point3, Point3]:
        """Inclusive ``(min_block, max_block)`` block coordinates touched by the box.

        Raises:
            ValueError: the box is empty.
        """
        return block_range(self.offset, self.size, block_size)


# --------------------------------------------------------------------------------------
# Block math
# --------------------------------------------------------------------------------------


def voxel_to_block(points: ArrayLike, block_size: int | Sequence[int]) -> np.ndarray:
    """Block coordinates (floor division) of XYZ voxel points.

    ``points`` is ``(3,)`` or ``(N, 3)``; the result has the same shape, dtype int64.
    Negative voxels map to negative blocks (``-1 -> -1``).

    Raises:
        ValueError: the last axis is not 3.
    """
    bs = np.asarray(as_block_size(block_size), dtype=np.int64)
    arr = np.asarray(points, dtype=np.int64)
    if arr.shape[-1:] != (3,):
        raise ValueError(f"points must have shape (..., 3), got {arr.shape}")
    return np.floor_divide(arr, bs)


def block_range(
    offset: Sequence[int], size: Sequence[int], block_size: int | Sequence[int]
) -> tuple[Point3, Point3]:
    """Inclusive ``(min_block, max_block)`` XYZ block coordinates covering a voxel box.

    Raises:
        ValueError: a size component is ``<= 0`` (an empty box touches no block).
    """
    o = as_point3(offset, "offset")
    s = as_point3(size, "size")
    bs = as_block_size(block_size)
    if min(s) <= 0:
        raise ValueError(f"empty box (size {s}) touches no block")
    lo = (o[0] // bs[0], o[1] // bs[1], o[2] // bs[2])
    hi = (
        (o[0] + s[0] - 1) // bs[0],
        (o[1] + s[1] - 1) // bs[1],
        (o[2] + s[2] - 1) // bs[2],
    )
    return lo, hi


def blocks_in_box(
    offset: Sequence[int], size: Sequence[int], block_size: int | Sequence[int]
) -> np.ndarray:
    """All block coordinates touched by a voxel box, as an ``(N, 3)`` int64 array.

    Columns are x, y, z; rows are in **ZYX scan order** (z slowest, x fastest), the order
    DVID streams ``/subvolblocks``. The box need not be block-aligned; partially covered
    edge blocks are included. A box with a zero size component gives ``(0, 3)``.

    Raises:
        ValueError: a negative size component.
    """
    s = as_point3(size, "size")
    if min(s) < 0:
        raise ValueError(f"bad size {s}: components must be >= 0")
    if min(s) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    lo, hi = block_range(offset, s, block_size)
    return blocks_between(lo, hi)


def blocks_between(lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
    """Block coordinates ``lo``..``hi`` (inclusive, x, y, z) as an ``(N, 3)`` int64 array
    in ZYX scan order (as :func:`blocks_in_box`); ``(0, 3)`` when ``hi < lo`` on an axis."""
    nx, ny, nz = (max(0, int(hi[i]) - int(lo[i]) + 1) for i in range(3))
    if nx * ny * nz == 1:
        return np.array([[int(lo[0]), int(lo[1]), int(lo[2])]], dtype=np.int64)
    i = np.arange(nx * ny * nz, dtype=np.int64)
    out = np.empty((len(i), 3), dtype=np.int64)
    out[:, 0] = i % nx if nx else 0
    i //= max(nx, 1)
    out[:, 1] = i % ny if ny else 0
    out[:, 2] = i // max(ny, 1)
    out += np.array([int(lo[0]), int(lo[1]), int(lo[2])], dtype=np.int64)
    return out


# --------------------------------------------------------------------------------------
# Limits of the coordinate space and of key encodings
# --------------------------------------------------------------------------------------


def check_int32_box(offset: Sequence[int], size: Sequence[int], what: str = "box") -> None:
    """Check that every voxel of a box lies in DVID's int32 coordinate space.

    ``offset`` is the min corner and ``size`` the (positive) extent; the last voxel
    ``offset + size - 1`` must not pass ``INT32_MAX`` on any axis (parsing already keeps
    the offset itself within int32). An empty box passes.

    Raises:
        ValueError: naming the axis, the box's last voxel and the int32 limit.
    """
    for axis, o, s in zip("xyz", offset, size, strict=True):
        last = int(o) + int(s) - 1
        if int(s) > 0 and not INT32_MIN <= last <= INT32_MAX:
            raise ValueError(
                f"{what} ends at {axis}={last}, beyond the int32 voxel coordinate limit "
                f"{INT32_MAX}"
            )


def int32_block_limits(block_size: int | Sequence[int]) -> tuple[Point3, Point3]:
    """Inclusive ``(lo, hi)`` block coordinates whose voxels all lie in the int32
    coordinate space (block ``c`` covers voxels ``c*b .. c*b + b - 1``)."""
    bs = as_block_size(block_size)
    lo = tuple(-(-INT32_MIN // b) for b in bs)
    hi = tuple((INT32_MAX + 1) // b - 1 for b in bs)
    return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


def check_block_coords(
    coords: ArrayLike, lo: Sequence[int], hi: Sequence[int], limit: str
) -> None:
    """Check that every block coordinate of ``coords`` (``(N, 3)`` or ``(3,)``, x, y, z)
    lies in the inclusive per-axis range ``lo..hi``; vectorized, no per-block loop.

    ``limit`` names what imposes the range (e.g. "the 21-bit fields of label-index block
    keys") and appears in the message, with the first offending coordinate.

    Raises:
        ValueError: a coordinate is outside the range.
    """
    c = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
    if c.shape[0] == 0:
        return
    lo_a = np.asarray(lo, dtype=np.int64)
    hi_a = np.asarray(hi, dtype=np.int64)
    bad = ((c < lo_a) | (c > hi_a)).any(axis=1)
    if bad.any():
        x, y, z = (int(v) for v in c[int(np.argmax(bad))])
        raise ValueError(
            f"block coordinate ({x}, {y}, {z}) is outside {tuple(lo)}..{tuple(hi)}, the "
            f"range {limit} can hold"
        )


def is_block_aligned(
    offset: Sequence[int], size: Sequence[int], block_size: int | Sequence[int]
) -> bool:
    """True if ``offset`` and ``size`` are both multiples of the block size on every axis.

    Negative offsets work (``-64`` is aligned to 64). A zero size counts as aligned.
    """
    o = as_point3(offset, "offset")
    s = as_point3(size, "size")
    bs = as_block_size(block_size)
    return all(oo % b == 0 and ss % b == 0 for oo, ss, b in zip(o, s, bs, strict=True))


class BlockPiece(NamedTuple):
    """How one block intersects a voxel box.

    ``volume[volume_slices]`` and ``block[block_slices]`` address the same voxels, where
    ``volume`` is the ``[z][y][x]`` array of the box and ``block`` the ``(bz, by, bx)``
    array of block ``coord``. ``full`` is True when the box covers the whole block (then
    ``block_slices`` selects everything and no read-modify-write is needed).
    """

    coord: Point3
    block_slices: ZYXSlices
    volume_slices: ZYXSlices
    full: bool


def _axis_pieces(o: int, n: int, b: int) -> list[tuple[int, slice, slice, bool]]:
    """Per-axis (block coord, block slice, volume slice, full) for [o, o+n) and block b."""
    out = []
    for c in range(o // b, (o + n - 1) // b + 1):
        start = max(o, c * b)
        stop = min(o + n, (c + 1) * b)
        out.append(
            (
                c,
                slice(start - c * b, stop - c * b),
                slice(start - o, stop - o),
                stop - start == b,
            )
        )
    return out


def iter_block_pieces(
    offset: Sequence[int], size: Sequence[int], block_size: int | Sequence[int]
) -> Iterator[BlockPiece]:
    """Yield a :class:`BlockPiece` for every block touched by a box, in ZYX scan order.

    Works for unaligned boxes and negative offsets. A box with a zero size component
    yields nothing.

    Raises:
        ValueError: bad offset/size/block size (negative size).
    """
    o = as_point3(offset, "offset")
    s = as_point3(size, "size")
    bs = as_block_size(block_size)
    if min(s) < 0:
        raise ValueError(f"bad size {s}: components must be >= 0")
    if min(s) == 0:
        return
    xs = _axis_pieces(o[0], s[0], bs[0])
    ys = _axis_pieces(o[1], s[1], bs[1])
    zs = _axis_pieces(o[2], s[2], bs[2])
    for (cz, bsz, vsz, fz), (cy, bsy, vsy, fy), (cx, bsx, vsx, fx) in itertools.product(zs, ys, xs):
        yield BlockPiece((cx, cy, cz), (bsz, bsy, bsx), (vsz, vsy, vsx), fx and fy and fz)


def block_pieces(
    offset: Sequence[int], size: Sequence[int], block_size: int | Sequence[int]
) -> list[BlockPiece]:
    """List form of :func:`iter_block_pieces`."""
    return list(iter_block_pieces(offset, size, block_size))


def split_into_blocks(
    volume: np.ndarray, offset: Sequence[int], block_size: int | Sequence[int]
) -> list[BlockPiece]:
    """Describe how a ``[z][y][x]`` volume placed at XYZ ``offset`` splits into blocks.

    Inverse of :func:`extract_subvolume`: for each touched block (ZYX scan order) the
    returned :class:`BlockPiece` gives the block's slices and the volume's slices. A writer
    stores ``volume[p.volume_slices]`` directly when ``p.full`` and otherwise merges it
    into the existing block (see :func:`assemble_block`). An empty volume gives ``[]``.

    Raises:
        ValueError: ``volume`` is not 3-D.
    """
    return block_pieces(offset, xyz_size(np.shape(volume)), block_size)


def assemble_block(
    volume: np.ndarray,
    piece: BlockPiece,
    block_size: int | Sequence[int],
    base: np.ndarray | None = None,
    fill: Any = 0,
) -> np.ndarray:
    """Build the full ``(bz, by, bx)`` block for ``piece`` from ``volume`` (read-modify-write).

    Full pieces return a C-contiguous copy of the volume's sub-array. Partial pieces start
    from a copy of ``base`` (the existing block, any shape-compatible array) or, when
    ``base`` is None, from a block filled with ``fill``, then overwrite the covered part.
    The result has ``volume``'s dtype and never aliases ``volume`` or ``base``.

    Raises:
        ValueError: ``base`` does not have the block's shape.
    """
    bs = as_block_size(block_size)
    shape = zyx_shape(bs)
    if piece.full:
        return np.array(volume[piece.volume_slices], dtype=volume.dtype, order="C", copy=True)
    if base is None:
        out = np.full(shape, fill, dtype=volume.dtype)
    else:
        out = _as_block(base, shape, volume.dtype).astype(volume.dtype, copy=True)
    out[piece.block_slices] = volume[piece.volume_slices]
    return out


BlockSource: TypeAlias = (
    Mapping[Any, Any]
    | Callable[[np.ndarray], Iterable[tuple[Any, Any]]]
    | Iterable[tuple[Any, Any]]
)
"""Blocks for :func:`extract_subvolume`: a mapping ``{(x, y, z): block}``, a callable
taking the ``(N, 3)`` array of wanted block coordinates and yielding ``(coord, block)``
pairs, or an iterable of ``(coord, block)`` pairs."""


def _as_block(block: Any, shape: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
    if isinstance(block, bytes | bytearray | memoryview):
        arr = np.frombuffer(block, dtype=dtype)
    else:
        arr = np.asarray(block)
    if arr.shape != shape:
        if arr.size != shape[0] * shape[1] * shape[2]:
            raise ValueError(
                f"block has {arr.size} elements (shape {arr.shape}); expected shape {shape}"
            )
        arr = arr.reshape(shape)
    return arr


def extract_subvolume(
    blocks: BlockSource,
    offset: Sequence[int],
    size: Sequence[int],
    block_size: int | Sequence[int],
    fill: Any = 0,
    dtype: DTypeLike = np.uint8,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Assemble the ``[z][y][x]`` voxels of a box from per-block arrays.

    ``blocks`` is a :data:`BlockSource`. Each block is a ``(bz, by, bx)`` array, or
    anything with ``bx*by*bz`` elements (flat arrays, or ``bytes``/``memoryview``
    interpreted with ``dtype``). Missing blocks leave ``fill``; blocks outside the box are
    ignored; if a coordinate repeats, the last block wins. Each present block costs one
    numpy slice assignment. The box may be unaligned and have negative offsets.

    ``out`` (optional) is a pre-allocated ``(nz, ny, nx)`` array to fill in place (it is
    first set to ``fill``); otherwise a new array of ``dtype`` is returned.

    Raises:
        ValueError: bad geometry, a wrongly sized block or ``out`` of the wrong shape.
    """
    o = as_point3(offset, "offset")
    s = as_point3(size, "size")
    bs = as_block_size(block_size)
    shape = zyx_shape(s)
    bshape = zyx_shape(bs)
    if out is None:
        if min(s) < 0:
            raise ValueError(f"bad size {s}: components must be >= 0")
        out = np.full(shape, fill, dtype=dtype)
    else:
        if out.shape != shape:
            raise ValueError(f"out has shape {out.shape}, expected {shape}")
        out[...] = fill
    if min(s) == 0:
        return out
    odt = out.dtype

    if isinstance(blocks, Mapping):
        for piece in iter_block_pieces(o, s, bs):
            blk = blocks.get(piece.coord)
            if blk is not None:
                out[piece.volume_slices] = _as_block(blk, bshape, odt)[piece.block_slices]
        return out

    # Per-axis lookup tables so a yielded coordinate maps to its slices in O(1).
    xs = _axis_pieces(o[0], s[0], bs[0])
    ys = _axis_pieces(o[1], s[1], bs[1])
    zs = _axis_pieces(o[2], s[2], bs[2])
    x0, y0, z0 = xs[0][0], ys[0][0], zs[0][0]
    pairs = blocks(blocks_in_box(o, s, bs)) if callable(blocks) else blocks
    for coord, blk in pairs:
        if blk is None:
            continue
        cx, cy, cz = (int(c) for c in coord)
        ix, iy, iz = cx - x0, cy - y0, cz - z0
        if not (0 <= ix < len(xs) and 0 <= iy < len(ys) and 0 <= iz < len(zs)):
            continue
        px, py, pz = xs[ix], ys[iy], zs[iz]
        arr = _as_block(blk, bshape, odt)
        out[pz[2], py[2], px[2]] = arr[pz[1], py[1], px[1]]
    return out
