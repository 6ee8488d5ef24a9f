"""2-D images of label planes: DVID's 64-bit "RGBA" PNG slices and pseudocolor PNGs.

* DVID answers a 2-D labelmap ``raw`` request with a Go ``image.NRGBA64`` whose pixel
  bytes are the little-endian label bytes. PNG stores 16-bit samples big-endian, so the
  PNG's raw scanline bytes are exactly the labels' little-endian bytes: a client gets the
  labels back with ``np.frombuffer(rows, "<u8")``.
* ``pseudocolor`` hashes every label to an opaque RGB color (label 0 stays transparent
  black). The hash is splitmix64's finalizer, so colors are stable across requests and
  servers; DVID's exact colors are not part of any client contract.

Both encoders are vectorized (no per-pixel Python) and write unfiltered scanlines.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["encode_png_rgba", "pseudocolor"]

_SIG = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png_rgba(pixels: np.ndarray, bit_depth: int, level: int = 6) -> bytes:
    """A PNG (color type 6, RGBA) of ``pixels``: a ``(h, w * 4 * bit_depth / 8)`` uint8
    array of the scanline bytes (16-bit samples big-endian, as PNG stores them).

    Edge cases: ``h`` or ``w`` of 0 is rejected by PNG itself, so callers must not ask for
    empty images (sizes are validated > 0 upstream).

    Raises:
        ValueError: bad bit depth or a row length that is not whole pixels.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    px = np.ascontiguousarray(pixels, dtype=np.uint8)
    if px.ndim != 2:
        raise ValueError("pixels must be a 2-D (rows, bytes) array")
    bpp = 4 * bit_depth // 8
    h, rowbytes = px.shape
    if rowbytes % bpp:
        raise ValueError(f"row of {rowbytes} bytes is not whole {bpp}-byte pixels")
    w = rowbytes // bpp
    raw = np.zeros((h, rowbytes + 1), dtype=np.uint8)  # filter byte 0 (None) per row
    raw[:, 1:] = px
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, 6, 0, 0, 0)
    return b"".join((_SIG, _chunk(b"IHDR", ihdr),
                     _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
                     _chunk(b"IEND", b"")))


def label_colors(labels: np.ndarray) -> np.ndarray:
    """``(..., 4)`` uint8 RGBA of uint64 labels: hashed opaque colors, 0 → (0, 0, 0, 0)."""
    z = np.asarray(labels, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = z + np.uint64(0x9E3779B97F4A7C15)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(31))
    out = np.empty((*z.shape, 4), dtype=np.uint8)
    out[..., 0] = (h & np.uint64(0xFF)).astype(np.uint8)
    out[..., 1] = ((h >> np.uint64(8)) & np.uint64(0xFF)).astype(np.uint8)
    out[..., 2] = ((h >> np.uint64(16)) & np.uint64(0xFF)).astype(np.uint8)
    out[..., 3] = 255
    out[z == 0] = 0
    return out


def pseudocolor(img: np.ndarray) -> np.ndarray:
    """``(h, w * 4)`` RGBA8 scanline bytes of a ``(h, w)`` label plane (for
    :func:`encode_png_rgba` with ``bit_depth=8``)."""
    h, w = img.shape
    return label_colors(img).reshape(h, w * 4)
