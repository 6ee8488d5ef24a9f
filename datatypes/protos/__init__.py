"""DVID protobuf messages (proto3, package ``proto``), wire-compatible with DVID.

keyvalue (spec §12): :class:`KeyValue`, :class:`KeyRange`, :class:`Keys`,
:class:`KeyValues`. labelmap (spec §9.16.9-10): :class:`SVCount`, :class:`LabelIndex`,
:class:`LabelIndices`, :class:`MappingOp`, :class:`MappingOps`.

The schemas are in ``keyvalue.proto`` and ``labelmap.proto`` next to this file; the
classes are built at import time from equivalent descriptors (see
:mod:`datatypes.protos._schema` for why no protoc-generated code is used). They are
ordinary protobuf message classes: ``SerializeToString()``, ``ParseFromString()``,
``FromString()``, map fields as dicts (``idx.blocks[key].counts[sv] = n``), etc. They live
in the private :data:`POOL`, not protobuf's default pool.
"""

from __future__ import annotations

from typing import Any

from datatypes.protos._schema import build_classes

POOL: Any
_classes: dict[str, type]
POOL, _classes = build_classes(__name__)

KeyValue: Any = _classes["KeyValue"]
KeyRange: Any = _classes["KeyRange"]
Keys: Any = _classes["Keys"]
KeyValues: Any = _classes["KeyValues"]
SVCount: Any = _classes["SVCount"]
LabelIndex: Any = _classes["LabelIndex"]
LabelIndices: Any = _classes["LabelIndices"]
MappingOp: Any = _classes["MappingOp"]
MappingOps: Any = _classes["MappingOps"]

del _classes


def parse(message_cls: Any, body: bytes) -> Any:
    """Decode ``body`` as ``message_cls``; a malformed body is a 400 naming the message."""
    from google.protobuf.message import DecodeError

    from dvidpy.errors import BadRequest

    try:
        return message_cls.FromString(body)
    except DecodeError as e:
        raise BadRequest(f"malformed protobuf {message_cls.DESCRIPTOR.name} body: {e}") from None

#: varints of 0..16383 (one or two bytes): every key length and most value lengths
_SMALL_VARINTS = tuple(bytes((n,)) if n < 0x80 else bytes(((n & 0x7F) | 0x80, n >> 7))
                       for n in range(1 << 14))


def _varint(n: int) -> bytes:
    if n < 16384:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def keyvalue_head(key: bytes, value_len: int) -> bytes:
    """Wire bytes of a ``KeyValues`` message holding one ``KeyValue(key, value)``, all but
    the ``value_len`` value bytes that follow them. Concatenated messages are one
    ``KeyValues`` (repeated fields concatenate), so a stream of ``head + value`` pieces is
    a valid answer without building message objects or copying values. ``key`` is written
    as given (a non-UTF-8 key stays its bytes; strict proto3 readers reject those)."""
    k = len(key)
    if 0 < k < 16384 and 0 < value_len < 16384:  # the usual case, in one concatenation
        kv, vv = _SMALL_VARINTS[k], _SMALL_VARINTS[value_len]
        return b"".join((b"\x0a", _varint(2 + len(kv) + k + len(vv) + value_len),
                         b"\x0a", kv, key, b"\x12", vv))
    head = b"\x0a" + _varint(k) + key if key else b""  # proto3 omits empty fields
    if value_len:
        head += b"\x12" + _varint(value_len)
    return b"\x0a" + _varint(len(head) + value_len) + head


__all__ = [
    "POOL",
    "KeyRange",
    "KeyValue",
    "KeyValues",
    "Keys",
    "LabelIndex",
    "LabelIndices",
    "MappingOp",
    "MappingOps",
    "SVCount",
    "keyvalue_head",
    "parse",
]
