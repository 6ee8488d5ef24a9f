"""Image codecs: uint8 grayscale JPEG blocks, 2-D PNG/JPEG slices, and PNGs of raw voxel
bytes (:func:`encode_png_raw`, the 2-D images of the wider imageblk types).

JPEG block layout (spec §8.6, quirk §19 #22): a ``(bz, by, bx)`` uint8 block is stored as
ONE 8-bit grayscale JPEG of width ``bx`` and height ``by * bz`` -- the Z slices stacked
vertically, i.e. image row ``z * by + y`` is block row ``[z][y]``. That is exactly the
C-order block reshaped to ``(bz * by, bx)``, and exactly what neuroglancer's DVID source
decodes from ``body[16:]`` of a one-block ``/subvolblocks`` response.

JPEG work uses `simplejpeg <https://pypi.org/project/simplejpeg/>`_ (libjpeg-turbo, releases
the GIL) when it is importable and Pillow otherwise; :data:`JPEG_BACKEND` says which.
Both produce baseline JFIF grayscale JPEGs that any decoder reads. PNG always uses Pillow.

All decode errors are raised as ``ValueError`` whichever backend is used.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

try:  # pragma: no cover - exercised whichever way the environment is set up
    import simplejpeg as _simplejpeg
except ImportError:
    _simplejpeg = None

JPEG_BACKEND: str = "simplejpeg" if _simplejpeg is not None else "pillow"
"""``"simplejpeg"`` or ``"pillow"``: the library used for JPEG encode/decode."""

DEFAULT_JPEG_QUALITY = 80
"""Quality used when a request does not specify one (DVID's ``jpg`` default)."""

DEFAULT_PNG_COMPRESS_LEVEL = 1
"""zlib level for PNG slices: fastest level; tiles are served interactively."""

_MAX_JPEG_DIM = 65535


def _check_quality(quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, int | np.integer):
        raise ValueError(f"JPEG quality must be an int in 1..100, got {quality!r}")
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {q}")
    return q


def _as_gray2d(image: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (height, width), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} must not be empty, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def encode_jpeg(image: np.ndarray, quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """Encode a 2-D ``(height, width)`` uint8 array as a grayscale JPEG.

    Raises:
        ValueError: not 2-D uint8, empty, a side above 65535 (JPEG limit), or a quality
            outside 1..100.
    """
    arr = _as_gray2d(image, "image")
    q = _check_quality(quality)
    h, w = arr.shape
    if h > _MAX_JPEG_DIM or w > _MAX_JPEG_DIM:
        raise ValueError(f"JPEG images are limited to 65535x65535, got {w}x{h}")
    if _simplejpeg is not None:
        return bytes(
            _simplejpeg.encode_jpeg(
                arr[:, :, None], quality=q, colorspace="GRAY", colorsubsampling="Gray"
            )
        )
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=q)
    return buf.getvalue()


def decode_jpeg(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode a JPEG to a 2-D ``(height, width)`` uint8 array (colour JPEGs are converted
    to luminance).

    Raises:
        ValueError: the bytes are not a decodable JPEG.
    """
    raw = bytes(data)
    if _simplejpeg is not None:
        try:
            out = _simplejpeg.decode_jpeg(raw, colorspace="GRAY")
        except Exception as exc:  # simplejpeg raises ValueError/RuntimeError variants
            raise ValueError(f"cannot decode JPEG: {exc}") from exc
        return np.ascontiguousarray(out.reshape(out.shape[0], out.shape[1]))
    return _pillow_decode(raw, "JPEG")


def _pillow_decode(raw: bytes, fmt: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw), formats=[fmt]) as im:
            if im.mode != "L":
                im = im.convert("L")
            return np.array(im, dtype=np.uint8)
    except Exception as exc:
        raise ValueError(f"cannot decode {fmt}: {exc}") from exc


def _block_shape(block_size: Sequence[int]) -> tuple[int, int, int]:
    if len(block_size) != 3:
        raise ValueError(f"block size must be (bx, by, bz), got {tuple(block_size)}")
    bx, by, bz = (int(v) for v in block_size)
    if min(bx, by, bz) <= 0:
        raise ValueError(f"block size components must be > 0, got {(bx, by, bz)}")
    return bz, by, bx


def encode_jpeg_block(block: np.ndarray, quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
    """Encode a ``(bz, by, bx)`` uint8 block as one grayscale JPEG of ``bx`` x ``by*bz``.

    The Z slices are stacked vertically (slice 0 on top). JPEG is lossy: decoding gives
    values close to, not equal to, the input (uniform blocks round-trip exactly at any
    reasonable quality).

    Raises:
        ValueError: not a 3-D uint8 array, empty, ``by*bz`` or ``bx`` above 65535, or a
            bad quality.
    """
    arr = np.asarray(block)
    if arr.ndim != 3:
        raise ValueError(f"block must be 3-D (bz, by, bx), got shape {arr.shape}")
    bz, by, bx = arr.shape
    return encode_jpeg(arr.reshape(bz * by, bx), quality)


def decode_jpeg_block(
    data: bytes | bytearray | memoryview, block_size: Sequence[int]
) -> np.ndarray:
    """Decode a JPEG block (see :func:`encode_jpeg_block`) to a ``(bz, by, bx)`` uint8 array.

    ``block_size`` is XYZ ``(bx, by, bz)``. The image must be exactly ``bx`` wide and
    ``by*bz`` high.

    Raises:
        ValueError: undecodable bytes or image dimensions that do not match the block.
    """
    bz, by, bx = _block_shape(block_size)
    img = decode_jpeg(data)
    if img.shape != (by * bz, bx):
        raise ValueError(
            f"JPEG block is {img.shape[1]}x{img.shape[0]} (w x h); expected "
            f"{bx}x{by * bz} for block size {bx}x{by}x{bz}"
        )
    return img.reshape(bz, by, bx)


def encode_png(image: np.ndarray, compress_level: int = DEFAULT_PNG_COMPRESS_LEVEL) -> bytes:
    """Encode a 2-D ``(height, width)`` uint8 array as an 8-bit grayscale PNG (lossless).

    ``compress_level`` is the zlib level 0..9 (default 1, the fastest that still
    compresses).

    Raises:
        ValueError: not 2-D uint8, empty, or a bad compress level.
    """
    arr = _as_gray2d(image, "image")
    if isinstance(compress_level, bool) or not 0 <= int(compress_level) <= 9:
        raise ValueError(f"PNG compress_level must be in 0..9, got {compress_level!r}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=int(compress_level))
    return buf.getvalue()


#: PNG colour types of :func:`encode_png_raw`
PNG_GRAY, PNG_RGBA = 0, 6


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png_raw(rows: np.ndarray, width: int, bit_depth: int, color_type: int,
                   compress_level: int = DEFAULT_PNG_COMPRESS_LEVEL) -> bytes:
    """A PNG whose samples are the bytes of ``rows`` as they are: ``rows`` is ``(height,
    row bytes)`` uint8, ``width`` pixels of ``bit_depth`` (8 or 16) bits per sample and
    ``color_type`` :data:`PNG_GRAY` or :data:`PNG_RGBA`. This is how DVID draws wider
    voxels (Go's ``image.Gray16``/``NRGBA``/``NRGBA64`` over the little-endian voxel
    bytes): a decoder reads 16-bit samples big-endian.

    Raises:
        ValueError: a row length that does not fit the width, depth and colour type, an
            empty image, or an unsupported depth or colour type.
    """
    import struct
    import zlib

    arr = np.ascontiguousarray(rows, dtype=np.uint8)
    if bit_depth not in (8, 16) or color_type not in (PNG_GRAY, PNG_RGBA):
        raise ValueError(f"unsupported PNG depth {bit_depth} / colour type {color_type}")
    spp = 1 if color_type == PNG_GRAY else 4
    if arr.ndim != 2 or arr.shape[0] == 0 or width <= 0 or \
            arr.shape[1] != width * spp * bit_depth // 8:
        raise ValueError(f"rows of shape {arr.shape} do not hold {width} pixels of "
                         f"{spp} x {bit_depth} bits")
    h = arr.shape[0]
    raw = np.zeros((h, arr.shape[1] + 1), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = arr
    ihdr = struct.pack(">IIBBBBB", width, h, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), compress_level))
            + _png_chunk(b"IEND", b""))


def decode_png(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Decode a PNG to a 2-D uint8 array (non-grayscale PNGs are converted to luminance).

    Raises:
        ValueError: the bytes are not a decodable PNG.
    """
    return _pillow_decode(bytes(data), "PNG")
