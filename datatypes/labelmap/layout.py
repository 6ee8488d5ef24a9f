"""Storage layout of the labelmap datatype: TKeys, stored block frames, label indices.

See the package docstring (:mod:`datatypes.labelmap`) for the design. Everything here is
pure (no instance state) so it can be unit-tested without a server.
"""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, timezone

import numpy as np

from datatypes import protos
from datatypes.labelmap.rle import decode_block_coords, encode_block_coords
from dvidpy.codec import COMP_GZIP, CodecError, serialize, split_frame
from dvidpy.keys import tkey

__all__ = [
    "BLOCK_CLASS",
    "COUNTER_CLASS",
    "INDEX_CLASS",
    "MAPPING_CLASS",
    "MAXLABEL_CLASS",
    "MUTLOG_CLASS",
    "block_tkey",
    "decode_block_tkey",
    "frame_gzip_payload",
    "gunzip_value",
    "gzip_payload",
    "index_arrays",
    "index_tkey",
    "label_list",
    "mapping_tkey",
    "parse_index",
    "relabel_serialization",
    "rfc3339_now",
    "serialize_index",
]

BLOCK_CLASS = 186  # scale(1) + ZYX block coord (3 x u32 BE of coord - INT32_MIN)
INDEX_CLASS = 187  # body id (u64 BE) -> LabelIndex protobuf (lz4-framed)
MAPPING_CLASS = 189  # supervoxel id (u64 BE) -> body id (u64 LE, 8 bytes; 0 = retired)
MAXLABEL_CLASS = 237  # (no payload) -> per-version max label (u64 LE)
COUNTER_CLASS = 238  # counter name + 0x00 -> u64 LE, stored unversioned at version 0
MUTLOG_CLASS = 242  # version (u32 BE) + mutation id (u64 BE) -> JSON mutation record

_OFF = 2**31
_ZYX = struct.Struct(">III")
_HEAD = struct.Struct("<IIII")


def block_tkey(scale: int, x: int, y: int, z: int) -> bytes:
    """TKey of the block at block coordinate (x, y, z) of ``scale``; ZYX order sorts."""
    return tkey(BLOCK_CLASS, bytes((scale,)) + _ZYX.pack(z + _OFF, y + _OFF, x + _OFF))


def block_prefix(scale: int) -> bytes:
    """TKey prefix of every block of one scale."""
    return tkey(BLOCK_CLASS, bytes((scale,)))


def decode_block_tkey(tk: bytes) -> tuple[int, int, int, int]:
    """Inverse of :func:`block_tkey`: ``(scale, x, y, z)``."""
    z, y, x = _ZYX.unpack_from(tk, 3)
    return tk[2], x - _OFF, y - _OFF, z - _OFF


def index_tkey(label: int) -> bytes:
    """TKey of a body's label index."""
    return tkey(INDEX_CLASS, int(label).to_bytes(8, "big"))


def mapping_tkey(sv: int) -> bytes:
    """TKey of a supervoxel's mapping entry."""
    return tkey(MAPPING_CLASS, int(sv).to_bytes(8, "big"))


def counter_tkey(name: str) -> bytes:
    """TKey of a repo-wide counter (``maxrepolabel``, ``nextlabel``)."""
    return tkey(COUNTER_CLASS, name.encode() + b"\x00")


def mutlog_tkey(version: int, mutid: int) -> bytes:
    """TKey of one mutation-log record; all records of a version share a prefix."""
    return tkey(MUTLOG_CLASS, version.to_bytes(4, "big") + mutid.to_bytes(8, "big"))


# ----- stored block values -------------------------------------------------------------

def gzip_payload(serialization: bytes, level: int = 1) -> bytes:
    """A gzip stream (RFC 1952, mtime 0) of a label block serialization."""
    co = zlib.compressobj(level, zlib.DEFLATED, 31)
    return co.compress(serialization) + co.flush()


def frame_gzip_payload(gz: bytes | memoryview, checksum: bool = False) -> bytes:
    """The stored value for an already-gzipped payload (DVID value framing, gzip code)."""
    head = (COMP_GZIP << 5) | (8 if checksum else 0)
    if checksum:
        return bytes((head,)) + struct.pack(">I", zlib.crc32(gz)) + bytes(gz)
    return bytes((head,)) + bytes(gz)


def stored_payload(value: bytes) -> memoryview:
    """The gzip payload of a stored block value (header and CRC stripped)."""
    code, payload = split_frame(value)
    if code != COMP_GZIP:
        raise CodecError(f"stored label block has compression code {code}, expected gzip")
    return payload


def gunzip_value(value: bytes) -> bytes:
    """The label block serialization held in a stored value."""
    try:
        return zlib.decompress(stored_payload(value), 31)
    except zlib.error as e:
        raise CodecError(f"corrupt stored label block: {e}") from None


def gunzip(payload: bytes | memoryview, limit: int = 1 << 30) -> bytes:
    """Decompress a posted gzip stream (ValueError when corrupt or over ``limit``)."""
    try:
        d = zlib.decompressobj(31)
        out = d.decompress(payload, limit)
        if d.unconsumed_tail:
            raise ValueError(f"gzip payload expands beyond {limit} bytes")
        if not d.eof:
            raise ValueError("truncated gzip stream")
        return out
    except zlib.error as e:
        raise ValueError(f"corrupt gzip data: {e}") from None


def label_list_from_payload(gz: bytes | memoryview) -> np.ndarray:
    """The block label list of a gzip-wrapped serialization, decompressing only its head."""
    d = zlib.decompressobj(31)
    head = d.decompress(gz, 16)
    if len(head) < 16:
        raise CodecError("stored label block truncated")
    n = _HEAD.unpack_from(head, 0)[3]
    need = 8 * n
    buf = d.decompress(d.unconsumed_tail, need)
    if len(buf) < need:
        raise CodecError("stored label block truncated in its label list")
    return np.frombuffer(buf, dtype="<u8")


def label_list(serialization: bytes) -> np.ndarray:
    """The block label list (may hold duplicates) of a serialization."""
    n = _HEAD.unpack_from(serialization, 0)[3]
    return np.frombuffer(serialization, dtype="<u8", count=n, offset=16)


def relabel_serialization(serialization: bytes, new_labels: np.ndarray) -> bytes:
    """The serialization with its block label list replaced by ``new_labels`` (same length).

    Because voxels index into that list, this applies a label mapping to every voxel of
    the block without decoding it.
    """
    n = _HEAD.unpack_from(serialization, 0)[3]
    if len(new_labels) != n:
        raise ValueError("relabel needs exactly one new label per list entry")
    return b"".join((serialization[:16], np.asarray(new_labels, dtype="<u8").tobytes(),
                     serialization[16 + 8 * n:]))


# ----- label indices --------------------------------------------------------------------

def rfc3339_now() -> str:
    """Current UTC time in RFC 3339 (DVID's ``last_mod_time``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def serialize_index(idx: object) -> bytes:
    """Stored value of a LabelIndex: the protobuf, lz4-framed (DVID's stored form)."""
    return serialize(idx.SerializeToString(), "lz4")  # type: ignore[attr-defined]


def parse_index(value: bytes) -> object:
    """Inverse of :func:`serialize_index`."""
    from dvidpy.codec import deserialize

    return protos.LabelIndex.FromString(deserialize(value))


def index_arrays(idx: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(block_keys, supervoxels, counts)`` parallel uint64 arrays of a LabelIndex.

    One row per (block, supervoxel) entry; loops over blocks only.
    """
    bks: list[np.ndarray] = []
    svs: list[np.ndarray] = []
    cnts: list[np.ndarray] = []
    for bk, svc in idx.blocks.items():  # type: ignore[attr-defined]
        # dict() copies the protobuf map with C-level lookups; iterating the map's
        # values() view would run a Python generator frame per entry (~10x slower).
        c = dict(svc.counts)
        n = len(c)
        if not n:
            continue
        bks.append(np.full(n, bk, dtype=np.uint64))
        svs.append(np.fromiter(c.keys(), dtype=np.uint64, count=n))
        cnts.append(np.fromiter(c.values(), dtype=np.uint64, count=n))
    if not bks:
        z = np.zeros(0, dtype=np.uint64)
        return z, z.copy(), z.copy()
    return np.concatenate(bks), np.concatenate(svs), np.concatenate(cnts)


def index_block_coords(idx: object, sv_filter: np.ndarray | None = None) -> np.ndarray:
    """(B, 3) x, y, z scale-0 block coords of an index, sorted ZYX; optionally only blocks
    holding one of ``sv_filter``."""
    if sv_filter is None:
        keys = np.fromiter(idx.blocks.keys(), dtype=np.uint64)  # type: ignore[attr-defined]
    else:
        bk, svs, _ = index_arrays(idx)
        keys = np.unique(bk[np.isin(svs, sv_filter)])
    if keys.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    c = decode_block_coords(keys).astype(np.int64)
    order = np.lexsort((c[:, 0], c[:, 1], c[:, 2]))
    return c[order]


def block_key(x: int, y: int, z: int) -> int:
    """Label-index block key of a scale-0 block coordinate (§9.16.9)."""
    return int(encode_block_coords(np.array([[x, y, z]], dtype=np.int64))[0])
