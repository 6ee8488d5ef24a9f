"""Key layout of everything dvidpy stores in an ordered key-value engine.

Modelled on DVID (dvid-api.md §3.1), without DVID's 4-byte client id (always 0 in DVID;
our metadata is not DVID's gob format anyway, so byte-compatibility with DVID stores is not
a goal and the 4 bytes per key buy nothing)::

    metadata  : 0x00 | name bytes
    data      : 0x01 | instance_id:u32be | tkey | version_id:u32be | marker
    marker    : 0x03 data, 0x4F tombstone
    tkey      : class:u8 | 0x01 | payload

**Invariant**: inside one TKey class, payloads are fixed-width or end with a terminator
byte that cannot occur inside them, so no TKey is a proper prefix of another. Then every
version of one TKey is one contiguous prefix scan over ``0x01|iid|tkey``, and a range scan
meets each TKey's versions next to each other. Class 1 is reserved (instance properties).
"""

from __future__ import annotations

import struct

from storage.base import prefix_successor  # noqa: F401  (re-exported for datatypes)

META_PREFIX = b"\x00"
DATA_PREFIX = b"\x01"
MARK_DATA = 0x03
MARK_TOMBSTONE = 0x4F
PROPERTY_CLASS = 1



_U32 = struct.Struct(">I")
#: bytes after the tkey in a data key: version (4) + marker (1)
SUFFIX_LEN = 5


def u32be(v: int) -> bytes:
    """Big-endian unsigned 32-bit encoding (raises ``struct.error`` outside range)."""
    return _U32.pack(v)


def tkey(cls: int, payload: bytes) -> bytes:
    """A type-specific key: class byte, the constant 0x01, then ``payload``."""
    if not 0 <= cls <= 255:
        raise ValueError(f"TKey class {cls} out of range 0..255")
    return bytes((cls, 1)) + payload


def tkey_class(tk: bytes) -> int:
    """The class byte of a TKey."""
    return tk[0]


def tkey_payload(tk: bytes) -> bytes:
    """The payload of a TKey (after class and 0x01)."""
    return tk[2:]


def instance_prefix(instance_id: int) -> bytes:
    """Prefix of every data key of one instance."""
    return DATA_PREFIX + _U32.pack(instance_id)


def data_key(instance_id: int, tk: bytes, version: int, tombstone: bool = False) -> bytes:
    """Full engine key of ``tk`` at ``version`` (a value, or the tombstone marker)."""
    return (
        DATA_PREFIX
        + _U32.pack(instance_id)
        + tk
        + _U32.pack(version)
        + (b"\x4f" if tombstone else b"\x03")
    )


def split_data_key(key: bytes) -> tuple[int, bytes, int, bool]:
    """Inverse of :func:`data_key`: ``(instance_id, tkey, version, is_tombstone)``."""
    if len(key) < 1 + 4 + 2 + SUFFIX_LEN or key[0] != DATA_PREFIX[0]:
        raise ValueError(f"not a data key: {key!r}")
    iid = _U32.unpack_from(key, 1)[0]
    version = _U32.unpack_from(key, len(key) - SUFFIX_LEN)[0]
    return iid, key[5 : len(key) - SUFFIX_LEN], version, key[-1] == MARK_TOMBSTONE


def meta_key(name: str | bytes) -> bytes:
    """Key of a metadata record (repos, counters, ...)."""
    if isinstance(name, str):
        name = name.encode()
    return META_PREFIX + name
