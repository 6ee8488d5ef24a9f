"""The DVID block-stream record format (spec §8.5).

A stream is a concatenation of records, each a 16-byte little-endian header followed by
the payload::

    int32 x, int32 y, int32 z   block coordinate (block units)
    int32 N                     payload length in bytes
    N bytes                     payload

It is used by uint8blk ``/subvolblocks`` and ``/specificblocks`` and by labelmap
``/blocks`` (GET and POST). Missing blocks are simply absent from a stream; an empty
stream (``b""``) is valid and has no records.

For streaming responses, send :func:`encode_header` followed by the payload instead of
concatenating with :func:`encode_record`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

HEADER = struct.Struct("<iiii")
"""``struct`` layout of a record header: x, y, z, N as little-endian int32."""

HEADER_SIZE = HEADER.size  # 16

_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1

_HEADER_DTYPE = np.dtype([("x", "<i4"), ("y", "<i4"), ("z", "<i4"), ("n", "<i4")])


class BlockRecord(NamedTuple):
    """One decoded record; ``payload`` is a zero-copy ``memoryview`` into the input."""

    x: int
    y: int
    z: int
    payload: memoryview


def encode_header(x: int, y: int, z: int, n: int) -> bytes:
    """The 16-byte header of a record with block coordinate ``(x, y, z)`` and ``n`` bytes.

    Raises:
        ValueError: a coordinate is outside int32, or ``n`` is negative or above int32.
    """
    for name, v in (("x", x), ("y", y), ("z", z)):
        if not _I32_MIN <= v <= _I32_MAX:
            raise ValueError(f"block coordinate {name}={v} is outside the int32 range")
    if not 0 <= n <= _I32_MAX:
        raise ValueError(f"payload length {n} must be in [0, 2**31-1]")
    return HEADER.pack(x, y, z, n)


def encode_record(x: int, y: int, z: int, payload: bytes | bytearray | memoryview) -> bytes:
    """A complete record (header + payload) as one ``bytes`` object.

    ``payload`` may be any C-contiguous buffer (bytes, memoryview, numpy array); its
    length is taken in bytes.

    Raises:
        ValueError: as for :func:`encode_header`.
    """
    mv = _as_bytes_view(payload)
    return encode_header(x, y, z, mv.nbytes) + mv.tobytes()


def _as_bytes_view(buf: bytes | bytearray | memoryview | np.ndarray) -> memoryview:
    mv = memoryview(buf)
    if mv.ndim != 1 or mv.format not in ("B", "b", "c"):
        mv = mv.cast("B")
    return mv


def _scan(mv: memoryview) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield ``(x, y, z, payload_offset, payload_length)`` validating as it goes."""
    total = mv.nbytes
    pos = 0
    while pos < total:
        if total - pos < HEADER_SIZE:
            raise ValueError(
                f"truncated block stream: {total - pos} trailing bytes at offset {pos}, "
                f"a record header needs {HEADER_SIZE}"
            )
        x, y, z, n = HEADER.unpack_from(mv, pos)
        pos += HEADER_SIZE
        if n < 0:
            raise ValueError(f"bad block stream: negative payload length {n} at offset {pos}")
        if n > total - pos:
            raise ValueError(
                f"truncated block stream: block ({x},{y},{z}) declares {n} payload bytes "
                f"but only {total - pos} remain"
            )
        yield x, y, z, pos, n
        pos += n


def iter_records(buf: bytes | bytearray | memoryview | np.ndarray) -> Iterator[BlockRecord]:
    """Decode a block stream lazily, yielding :class:`BlockRecord` in stream order.

    Payloads are zero-copy ``memoryview`` slices of ``buf`` (keep ``buf`` alive and
    unmodified while using them). Validation is incremental: records before a defect are
    yielded before the error is raised. Use :func:`decode_records` or :func:`index_records`
    to validate a whole stream before acting on it. Zero-length payloads are allowed.

    Raises:
        ValueError: a truncated header (1-15 trailing bytes), a negative length, or a
            payload extending past the end of ``buf``.
    """
    mv = _as_bytes_view(buf)
    for x, y, z, pos, n in _scan(mv):
        yield BlockRecord(x, y, z, mv[pos : pos + n])


def decode_records(buf: bytes | bytearray | memoryview | np.ndarray) -> list[BlockRecord]:
    """Decode and fully validate a block stream; nothing is returned if any part is bad.

    Raises:
        ValueError: as for :func:`iter_records`.
    """
    return list(iter_records(buf))


def index_records(
    buf: bytes | bytearray | memoryview | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a stream and return ``(coords, offsets, lengths)`` without copying payloads.

    ``coords`` is ``(N, 3)`` int32 (x, y, z columns), ``offsets`` the int64 byte offset
    of each payload in ``buf`` and ``lengths`` its int64 length, in stream order. An empty
    stream gives empty arrays.

    Raises:
        ValueError: as for :func:`iter_records`.
    """
    rows = list(_scan(_as_bytes_view(buf)))
    if not rows:
        return (
            np.zeros((0, 3), dtype=np.int32),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
        )
    arr = np.asarray(rows, dtype=np.int64)
    return arr[:, :3].astype(np.int32), arr[:, 3].copy(), arr[:, 4].copy()


def encode_stream(
    records: Iterable[tuple[int, int, int, bytes | bytearray | memoryview]],
) -> bytes:
    """Concatenate ``(x, y, z, payload)`` tuples into one stream (``b""`` for none).

    Raises:
        ValueError: as for :func:`encode_header`.
    """
    parts: list[bytes | memoryview] = []
    for x, y, z, payload in records:
        mv = _as_bytes_view(payload)
        parts.append(encode_header(x, y, z, mv.nbytes))
        parts.append(mv)
    return b"".join(parts)


def fixed_size_records(coords: np.ndarray, payloads: np.ndarray) -> bytes:
    """Vectorized stream for many equal-length payloads (e.g. uncompressed blocks).

    ``coords`` is ``(N, 3)`` (x, y, z) and ``payloads`` an ``(N, ...)`` array whose rows
    are the payloads (each row's bytes, C order). The whole stream is built with one
    structured-array copy, no per-record Python work.

    Raises:
        ValueError: shape mismatch or coordinates outside int32.
    """
    c = np.asarray(coords)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"coords must have shape (N, 3), got {c.shape}")
    p = np.ascontiguousarray(payloads)
    if p.shape[0] != c.shape[0]:
        raise ValueError(f"{c.shape[0]} coordinates but {p.shape[0]} payloads")
    n = c.shape[0]
    if n == 0:
        return b""
    if c.min() < _I32_MIN or c.max() > _I32_MAX:
        raise ValueError("block coordinates outside the int32 range")
    rowbytes = p.nbytes // n
    if rowbytes > _I32_MAX:
        raise ValueError(f"payload length {rowbytes} exceeds int32")
    rec_dtype = np.dtype([("h", _HEADER_DTYPE), ("p", np.uint8, (rowbytes,))])
    out = np.empty(n, dtype=rec_dtype)
    out["h"]["x"] = c[:, 0]
    out["h"]["y"] = c[:, 1]
    out["h"]["z"] = c[:, 2]
    out["h"]["n"] = rowbytes
    out["p"] = p.reshape(n, -1).view(np.uint8).reshape(n, rowbytes)
    return out.tobytes()
