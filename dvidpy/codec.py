"""Value framing: DVID's one-byte serialization header, compression and checksum.

Layout of a stored value (dvid-api.md §3.1)::

    byte 0      : bits 7-5 compression (0 none, 1 snappy, 2 gzip, 4 lz4, 5 jpeg),
                  bits 4-3 checksum (0 none, 1 CRC32), other bits 0
    [4 bytes]   : CRC32 (big-endian) of the payload that follows, when checksummed
    payload     : none  -> the data
                  lz4   -> uint32 little-endian uncompressed length + raw LZ4 block
                  gzip  -> a gzip stream
                  jpeg  -> a JPEG file (produced and decoded by the datatype itself)

Keeping DVID's framing lets endpoints that pass stored bytes straight through
(uint8blk ``subvolblocks``, labelmap ``compression=blocks``, ``indices-compressed``) strip
one header and send the payload. ``snappy`` is accepted at instance creation for
compatibility but stored as LZ4 (no snappy dependency).
"""

from __future__ import annotations

import gzip
import struct
import zlib

import lz4.block

COMP_NONE, COMP_SNAPPY, COMP_GZIP, COMP_LZ4, COMP_JPEG = 0, 1, 2, 4, 5
_CODES = {"none": COMP_NONE, "snappy": COMP_LZ4, "gzip": COMP_GZIP, "lz4": COMP_LZ4,
          "jpeg": COMP_JPEG}
_LEN = struct.Struct("<I")
_CRC = struct.Struct(">I")


class CodecError(ValueError):
    """A stored or posted value that cannot be decoded."""


def compression_code(name: str) -> int:
    """Numeric code of a compression name (``"lz4"`` → 4)."""
    try:
        return _CODES[name]
    except KeyError:
        raise CodecError(f"unknown compression {name!r}") from None


def lz4_compress(data: bytes | memoryview) -> bytes:
    """Raw LZ4 block, no size prefix (DVID's ``lz4`` wire format for raw volumes)."""
    return lz4.block.compress(data, store_size=False)


def lz4_decompress(data: bytes | memoryview, size: int) -> bytes:
    """Inverse of :func:`lz4_compress`; ``size`` is the exact uncompressed size.

    Raises :class:`CodecError` for corrupt data, also when ``size`` is more than LZ4 can
    expand ``data`` to (255 bytes per input byte), so a corrupt length never allocates."""
    if not 0 <= size <= 255 * len(data) + 16:
        raise CodecError(f"corrupt LZ4 data: {len(data)} bytes cannot hold {size}")
    try:
        return lz4.block.decompress(data, uncompressed_size=size)
    except (lz4.block.LZ4BlockError, OverflowError, ValueError) as e:
        raise CodecError(f"corrupt LZ4 data: {e}") from None


def serialize(data: bytes | memoryview, compression: str = "none", checksum: bool = False,
              gzip_level: int = 6) -> bytes:
    """Frame ``data`` for storage. ``compression="jpeg"`` expects ``data`` already JPEG."""
    code = compression_code(compression)
    if code == COMP_LZ4:
        # store_size=True prefixes exactly DVID's uint32 little-endian length (one copy
        # of the compressed bytes fewer than joining the two)
        payload = lz4.block.compress(data, store_size=True)
    elif code == COMP_GZIP:
        payload = gzip.compress(bytes(data), compresslevel=gzip_level if gzip_level > 0 else 6,
                                mtime=0)
    else:
        payload = bytes(data)
    head = (code << 5) | (8 if checksum else 0)
    if checksum:
        return bytes((head,)) + _CRC.pack(zlib.crc32(payload)) + payload
    return bytes((head,)) + payload


def split_frame(value: bytes) -> tuple[int, memoryview]:
    """``(compression code, payload)`` of a stored value, checking the CRC if present."""
    if not value:
        raise CodecError("empty stored value")
    head = value[0]
    mv = memoryview(value)
    if head & 0x18:
        if len(value) < 5:
            raise CodecError("stored value too short for its checksum")
        want = _CRC.unpack_from(value, 1)[0]
        payload = mv[5:]
        if zlib.crc32(payload) != want:
            raise CodecError("checksum mismatch in stored value")
        return head >> 5, payload
    return head >> 5, mv[1:]


def deserialize(value: bytes) -> bytes:
    """Inverse of :func:`serialize` for none/lz4/gzip (JPEG payloads are returned as is)."""
    code, payload = split_frame(value)
    if code == COMP_LZ4:
        if len(payload) < 4:
            raise CodecError("LZ4 value too short")
        n = _LEN.unpack_from(payload, 0)[0]
        return lz4_decompress(payload[4:], n)
    if code == COMP_GZIP:
        try:
            return gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as e:
            raise CodecError(f"corrupt gzip data: {e}") from None
    return bytes(payload)
