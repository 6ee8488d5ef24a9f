"""Block TKeys in ZYX raster order, and scans of the *stored* blocks inside a region.

uint8blk and annotation key their blocks as ``class, 0x01, Z, Y, X`` with each coordinate
a big-endian ``coord - INT32_MIN`` u32, so TKey order is ZYX raster order (z slowest).

A box of blocks is not one key range: walking it row by row costs one range scan per
``(z, y)`` row of the *requested* box, stored or not (a ``100000³`` voxel box is millions
of scans on an empty instance). :func:`scan_region` is driven by what is stored instead:
one range scan from the region's first block, and whenever it meets a stored key outside
the region it restarts at the region's next block after that key (one seek), skipping the
gap. Every stored key is met at most once and every restart is caused by a stored key, so
the cost is bounded by the stored keys between the region's first and last block (and by
the region's pieces that hold data), never by the region's volume.

Regions are :class:`BoxRegion` (an inclusive box of block coordinates) and
:class:`SpanRegion` (normalized ROI spans ``[z, y, x0, x1]``, see
:mod:`datatypes.common.roi_spans`). Both answer :meth:`~BoxRegion.next_inside`: the first
block of the region at or after a block in key order, or ``None`` past the end.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from datatypes.common.geometry import INT32_MAX, INT32_MIN, Point3
from dvidpy.keys import prefix_successor
from dvidpy.versioned import VersionedCtx, VersionedStore

_ZYX = struct.Struct(">III")
_OFF = -INT32_MIN


def block_tkey(cls: int, x: int, y: int, z: int) -> bytes:
    """TKey of block ``(x, y, z)`` of class ``cls``: class, 0x01, Z, Y, X (u32 BE of
    ``coord - INT32_MIN``); ``struct.error`` when a coordinate is outside int32."""
    return bytes((cls, 1)) + _ZYX.pack(z + _OFF, y + _OFF, x + _OFF)


def decode_block_tkey(tk: bytes) -> Point3:
    """Inverse of :func:`block_tkey` -> ``(x, y, z)`` (the class byte is not checked)."""
    z, y, x = _ZYX.unpack_from(tk, 2)
    return x - _OFF, y - _OFF, z - _OFF


class Region(Protocol):
    """A set of blocks walked in ZYX key order."""

    def first(self) -> Point3 | None:
        """The region's first block, or None when it is empty."""

    def last(self) -> Point3:
        """The region's last block (only called when :meth:`first` is not None)."""

    def next_inside(self, b: Point3) -> Point3 | None:
        """The first block of the region at or after ``b`` in key order (``b`` itself
        when it is inside), or None when there is none."""


class BoxRegion:
    """Every block of the inclusive box ``lo..hi`` (x, y, z block coordinates)."""

    def __init__(self, lo: Sequence[int], hi: Sequence[int]) -> None:
        self.lo = (int(lo[0]), int(lo[1]), int(lo[2]))
        self.hi = (int(hi[0]), int(hi[1]), int(hi[2]))
        for v in (*self.lo, *self.hi):
            if not INT32_MIN <= v <= INT32_MAX:
                raise ValueError(f"block coordinate {v} is outside the int32 range")
        self.empty = any(a > b for a, b in zip(self.lo, self.hi, strict=True))

    def first(self) -> Point3 | None:
        return None if self.empty else self.lo

    def last(self) -> Point3:
        return self.hi

    def next_inside(self, b: Point3) -> Point3 | None:
        (x, y, z), (lx, ly, lz), (hx, hy, hz) = b, self.lo, self.hi
        if z < lz:
            return self.lo
        if z > hz:
            return None
        if y < ly:
            return (lx, ly, z)
        if y > hy:
            return (lx, ly, z + 1) if z < hz else None
        if x < lx:
            return (lx, y, z)
        if x > hx:
            if y < hy:
                return (lx, y + 1, z)
            return (lx, ly, z + 1) if z < hz else None
        return b


class SpanRegion:
    """The blocks of normalized ROI spans (``(N, 4)`` ``z, y, x0, x1``, sorted by
    ``(z, y, x0)``, disjoint within a row: :func:`~datatypes.common.roi_spans.
    normalize_spans`). Each lookup is a binary search; consecutive blocks of one span
    are answered from the span found last."""

    def __init__(self, spans: np.ndarray) -> None:
        n = np.asarray(spans, dtype=np.int64).reshape(-1, 4)
        self.z, self.y, self.x0, self.x1 = (n[:, i] for i in range(4))
        self.rows = self.z * (1 << 32) + (self.y - INT32_MIN)
        self.n = len(n)
        self._cur: tuple[int, int, int, int] | None = None

    def first(self) -> Point3 | None:
        if not self.n:
            return None
        return int(self.x0[0]), int(self.y[0]), int(self.z[0])

    def last(self) -> Point3:
        return int(self.x1[-1]), int(self.y[-1]), int(self.z[-1])

    def next_inside(self, b: Point3) -> Point3 | None:
        x, y, z = b
        c = self._cur
        if c is not None and c[0] == z and c[1] == y and c[2] <= x <= c[3]:
            return b
        rk = z * (1 << 32) + (y - INT32_MIN)
        lo = int(np.searchsorted(self.rows, rk, "left"))
        hi = int(np.searchsorted(self.rows, rk, "right"))
        j = hi
        if lo < hi:
            j = lo + int(np.searchsorted(self.x1[lo:hi], x, "left"))
        if j >= self.n:
            return None
        sp = (int(self.z[j]), int(self.y[j]), int(self.x0[j]), int(self.x1[j]))
        self._cur = sp
        if j < hi:  # a span of b's own row ends at or after x
            return (max(x, sp[2]), y, z)
        return (sp[2], sp[1], sp[0])


def scan_region(store: VersionedStore, ctx: VersionedCtx, cls: int, region: Region,
                keys_only: bool = False, head: bytes | None = None,
                ) -> Iterator[tuple[Point3, bytes]]:
    """``((x, y, z), value)`` of every stored block of class ``cls`` visible at ``ctx``
    inside ``region``, in key (ZYX) order (see the module docstring for the cost). With
    ``keys_only`` values are ``b""``. ``head`` replaces the TKey's leading
    ``class, 0x01`` when the blocks' keys carry more before their ZYX (imageblk time
    samples: ``class, 0x01, t``)."""
    cur = region.first()
    if cur is None:
        return
    h = bytes((cls, 1)) if head is None else head
    n = len(h)

    def key(b: Point3) -> bytes:
        return h + _ZYX.pack(b[2] + _OFF, b[1] + _OFF, b[0] + _OFF)

    end = prefix_successor(key(region.last()))
    while cur is not None:
        restart = None
        for tk, v in store.scan(ctx, key(cur), end, keys_only=keys_only):
            z, y, x = _ZYX.unpack_from(tk, n)
            b = (x - _OFF, y - _OFF, z - _OFF)
            nxt = region.next_inside(b)
            if nxt == b:
                yield b, v
                continue
            restart = nxt
            break
        cur = restart


__all__ = ["BoxRegion", "Region", "SpanRegion", "block_tkey", "decode_block_tkey",
           "scan_region"]
