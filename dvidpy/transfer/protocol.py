"""Wire format of the transfer protocol: records, checksummed chunks, the end marker.

A *record* is one stored key-value pair of one instance, with its key made independent of
the sending server::

    record : klen:u32be | key | vlen:u32be | value
    key    : tkey | vindex:u32be | marker          (marker 0x03 value, 0x4F tombstone)

``vindex`` is the position of the record's version in the group's list of version UUIDs
(see :mod:`dvidpy.transfer`), so neither side needs the other's VersionIDs.

A *chunk* is a bounded run of records (payload at most ``max_chunk`` bytes, unless a single
record is larger) framed as::

    chunk  : b"DVXC" | n_records:u32be | payload_len:u32be | crc32(payload):u32be | payload
    end    : b"DVXE" | n_records_total:u32be | 0:u32be | crc32(b""):u32be

A stream is zero or more chunks followed by exactly one end frame; a stream that stops
before its end frame was cut off. Every chunk is checked on arrival; a chunk whose CRC,
length or record framing is wrong is rejected as a whole.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAGIC_CHUNK = b"DVXC"
MAGIC_END = b"DVXE"
HEADER = struct.Struct(">4sIII")
HEADER_LEN = HEADER.size  # 16
_U32 = struct.Struct(">I")
#: default bound on a chunk's payload
DEFAULT_MAX_CHUNK = 8 << 20
PROTOCOL_NAME = "dvidpy-transfer"
PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A malformed, truncated or corrupted chunk or stream."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A decoded frame: ``end`` is True for the end marker (``records`` then empty)."""

    end: bool
    n_records: int
    payload: bytes

    def records(self) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs of the payload (already checked by :func:`decode_chunk`)."""
        return iter_records(self.payload)


def encode_record(key: bytes, value: bytes) -> bytes:
    """One length-prefixed record."""
    return _U32.pack(len(key)) + key + _U32.pack(len(value)) + value


def frame(payload: bytes, n_records: int) -> bytes:
    """A chunk around an already encoded ``payload`` of ``n_records`` records."""
    return HEADER.pack(MAGIC_CHUNK, n_records, len(payload), zlib.crc32(payload)) + payload


def end_frame(total_records: int) -> bytes:
    """The end-of-stream marker."""
    return HEADER.pack(MAGIC_END, total_records, 0, zlib.crc32(b""))


def iter_records(payload: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Split a payload into records; :class:`ProtocolError` on bad framing."""
    mv = memoryview(payload)
    i, n = 0, len(payload)
    unpack = _U32.unpack_from
    while i < n:
        if i + 4 > n:
            raise ProtocolError("record key length runs past the chunk")
        kl = unpack(mv, i)[0]
        i += 4
        if i + kl + 4 > n:
            raise ProtocolError("record key runs past the chunk")
        key = bytes(mv[i:i + kl])
        i += kl
        vl = unpack(mv, i)[0]
        i += 4
        if i + vl > n:
            raise ProtocolError("record value runs past the chunk")
        yield key, bytes(mv[i:i + vl])
        i += vl


def decode_chunk(data: bytes) -> Chunk:
    """Check and decode one whole frame (header + payload).

    Raises :class:`ProtocolError` when the magic, length, CRC or record count is wrong, so a
    corrupted chunk is never partly applied.
    """
    if len(data) < HEADER_LEN:
        raise ProtocolError(f"chunk of {len(data)} bytes is shorter than its header")
    magic, n, plen, crc = HEADER.unpack_from(data, 0)
    if magic not in (MAGIC_CHUNK, MAGIC_END):
        raise ProtocolError(f"bad chunk magic {magic!r}")
    payload = data[HEADER_LEN:]
    if len(payload) != plen:
        raise ProtocolError(f"chunk payload is {len(payload)} bytes, header says {plen}")
    if zlib.crc32(payload) != crc:
        raise ProtocolError("chunk checksum mismatch (corrupted in transit?)")
    if magic == MAGIC_END:
        if plen:
            raise ProtocolError("end marker with a payload")
        return Chunk(True, n, b"")
    count = sum(1 for _ in iter_records(payload))
    if count != n:
        raise ProtocolError(f"chunk holds {count} records, header says {n}")
    return Chunk(False, n, payload)


def read_frames(stream: BinaryIO, max_payload: int) -> Iterator[bytes]:
    """Whole raw frames (header + payload) from a byte stream, up to and including the end.

    Raises :class:`ProtocolError` when the stream stops mid-frame or before the end marker,
    or announces a payload over ``max_payload`` bytes. Frames are not CRC-checked here.
    """
    while True:
        head = _read_exact(stream, HEADER_LEN)
        if not head:
            raise ProtocolError("stream ended before its end marker (connection dropped?)")
        magic, _n, plen, _crc = HEADER.unpack_from(head, 0)
        if magic not in (MAGIC_CHUNK, MAGIC_END):
            raise ProtocolError(f"bad chunk magic {magic!r} in stream")
        if plen > max_payload:
            raise ProtocolError(f"chunk of {plen} bytes exceeds the limit of {max_payload}")
        body = _read_exact(stream, plen) if plen else b""
        if len(body) != plen:
            raise ProtocolError("stream ended inside a chunk (connection dropped?)")
        yield head + body
        if magic == MAGIC_END:
            return


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    parts = []
    got = 0
    while got < n:
        b = stream.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    out = b"".join(parts)
    if 0 < len(out) < n and n == HEADER_LEN:
        raise ProtocolError("stream ended inside a chunk header (connection dropped?)")
    return out


class ChunkWriter:
    """Accumulates records and hands out chunks of at most ``max_chunk`` payload bytes.

    ``add`` returns a finished chunk when the pending payload reached the bound (a single
    record larger than the bound becomes a chunk of its own); ``flush`` returns the rest.
    """

    def __init__(self, max_chunk: int = DEFAULT_MAX_CHUNK) -> None:
        self.max_chunk = max(1, max_chunk)
        self.parts: list[bytes] = []
        self.size = 0
        self.n = 0
        self.total = 0

    def add(self, key: bytes, value: bytes) -> bytes | None:
        """Queue a record; returns a chunk when one is complete."""
        rec_len = 8 + len(key) + len(value)
        out = None
        if self.n and self.size + rec_len > self.max_chunk:
            out = self.flush()
        self.parts.append(_U32.pack(len(key)))
        self.parts.append(key)
        self.parts.append(_U32.pack(len(value)))
        self.parts.append(value)
        self.size += rec_len
        self.n += 1
        self.total += 1
        if out is None and self.size >= self.max_chunk:
            out = self.flush()
        return out

    def flush(self) -> bytes | None:
        """The pending records as a chunk (None when nothing is pending)."""
        if not self.n:
            return None
        out = frame(b"".join(self.parts), self.n)
        self.parts, self.size, self.n = [], 0, 0
        return out


def group_frames(recs: Iterable[tuple[bytes, bytes]],
                 max_chunk: int = DEFAULT_MAX_CHUNK) -> Iterator[bytes]:
    """The frames of one group: the records ``recs`` in chunks (see :class:`ChunkWriter`),
    then the end frame."""
    w = ChunkWriter(max_chunk)
    for k, v in recs:
        out = w.add(k, v)
        if out:
            yield out
    last = w.flush()
    if last:
        yield last
    yield end_frame(w.total)
