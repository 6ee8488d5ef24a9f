"""keyvalue: a versioned store of byte values under string keys (dvid-api.md §12).

Endpoints, under ``/api/node/{uuid}/{data}/``:

``GET key/{key}[?byte_start=a&byte_end=b]``
    The value (``application/octet-stream``); 404 when missing. ``byte_start``/``byte_end``
    select an inclusive byte range (both required). A ``Range: bytes=...`` header gives
    206 with ``Content-Range`` (416 when unsatisfiable; a malformed header is ignored).
``HEAD key/{key}``
    200 when present, 404 when not.
``POST key/{key}``
    Stores the raw body. ``DELETE key/{key}`` hides the key from this version on
    (tombstone); deleting a missing key is fine.
``GET keys`` / ``GET keyrange/{k1}/{k2}``
    Sorted JSON arrays of keys (the range is inclusive at both ends).
``GET keyrangevalues/{k1}/{k2}[?json=true[&check=true]|tar=true|jsontar=true]``
    Values in the inclusive range, streamed: protobuf ``KeyValues`` (default), a JSON object
    whose values are the stored JSON inserted verbatim (empty value → ``{}``), or a tar file.
``GET keyvalues[?json=true|tar=true|jsontar=true]``
    Batch read. Default: the body is protobuf ``Keys`` and the answer protobuf
    ``KeyValues`` in request order (keys, then key ranges; missing keys with empty values).
    With json/tar/jsontar the body is a JSON array of keys or of
    ``{"key": k, "byte_start": a, "byte_end": b}`` objects.
``POST keyvalues``
    Body: protobuf ``KeyValues``; stores every pair in one atomic batch.

Keys are any non-empty byte strings without NUL (the storage terminator), sent
percent-encoded in the path (``%2F`` is a ``/`` inside a key): the exact bytes of the path
segment are the key, so distinct byte strings are distinct keys. Keys that are not UTF-8
are listed in JSON with ``\\udcXX`` escapes for their non-UTF-8 bytes (Python's
``surrogateescape``: ``key.encode("utf-8", "surrogateescape")`` gives the bytes back) and
written as their raw bytes in protobuf and tar answers. Unversioned instances
(``versioned=false``) resolve every UUID to the repo root and are writable on committed
nodes.
"""

from __future__ import annotations

import json
import re
import tarfile
import time
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.responses import Response

from datatypes import protos
from dvidpy import jsonio
from dvidpy.codec import CodecError, deserialize, serialize
from dvidpy.datatype import Call, Datatype, endpoint, register_datatype
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.spec import EMPTY, JSON, OCTET, PROTOBUF, Body, Param, Q
from dvidpy.http.streams import StreamingResponse
from dvidpy.keys import prefix_successor, tkey
from dvidpy.versioned import VersionedCtx

KEY_CLASS = 177
_KEY_CLASS_BYTE = bytes((KEY_CLASS,))
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)\Z")


def encode_key(key: str) -> bytes:
    """TKey of a keyvalue key: class 177, key bytes, 0x00 terminator. ``key`` is text
    whose non-UTF-8 bytes are lone surrogates (``surrogateescape``), as path segments
    arrive; 400 when empty or holding NUL."""
    if not key:
        raise BadRequest("keyvalue keys must be non-empty")
    raw = key.encode("utf-8", "surrogateescape")
    if b"\x00" in raw:
        raise BadRequest("keyvalue keys can't contain NUL characters")
    return tkey(KEY_CLASS, raw + b"\x00")


def decode_key(tk: bytes) -> str:
    """Inverse of :func:`encode_key`."""
    return tk[2:-1].decode("utf-8", "surrogateescape")


def key_bytes(key: str) -> bytes:
    """The exact bytes of a key."""
    return key.encode("utf-8", "surrogateescape")


def _template() -> bytes:
    ti = tarfile.TarInfo("x")
    ti.mode = 0o755
    return ti.tobuf(format=tarfile.PAX_FORMAT)


_TEMPLATE = _template()
_HEAD_MID = _TEMPLATE[100:124]  # mode, uid, gid
_HEAD_TAIL = _TEMPLATE[156:]  # type flag onwards
#: checksum of the template with name, size and mtime zero and the checksum field blank
_SUM_BASE = sum(_HEAD_MID) + sum(_HEAD_TAIL) + 8 * 32


def tar_header(name: str, size: int, mtime: int) -> bytes:
    """The header of one tar member (mode 0755, as DVID writes them), byte-identical to
    :mod:`tarfile`'s PAX-format header; built by hand for plain names of at most 100
    bytes (every keyvalue key, in practice), else by :mod:`tarfile` (with a PAX record)."""
    raw = name.encode("utf-8", "surrogateescape")
    if (len(raw) > 100 or not name.isascii() or not name or not 0 <= size < 8**11
            or not 0 <= mtime < 8**11):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = size, 0o755, mtime
        return ti.tobuf(format=tarfile.PAX_FORMAT)
    fields = b"%011o\0%011o\0" % (size, mtime)
    chk = b"%06o\0 " % (_SUM_BASE + sum(raw) + sum(fields))
    return b"".join((raw.ljust(100, b"\0"), _HEAD_MID, fields, chk, _HEAD_TAIL))


def tar_entry(name: str, data: bytes) -> bytes:
    """One tar member (header, data, padding) with mode 0755, as DVID writes them."""
    return b"".join(tar_pieces(name, data))


def tar_pieces(name: str, data: bytes | memoryview) -> tuple[bytes, bytes | memoryview, bytes]:
    """Header, data and padding of one tar member, for streaming without copying data."""
    n = data.nbytes if isinstance(data, memoryview) else len(data)
    return (tar_header(name, n, int(time.time())), data,
            b"\0" * ((-n) % tarfile.BLOCKSIZE))


TAR_END = b"\0" * (2 * tarfile.BLOCKSIZE)
_KEY = Param("key", "key", "the key: any bytes but NUL, percent-encoded")
_RANGE = (Param("k1", "key", "first key (inclusive)"), Param("k2", "key", "last key (inclusive)"))
_FORMATS = (Q("json", "bool", "answer one JSON object key -> value (values inserted verbatim)"),
            Q("check", "bool", "with json: 400 unless every value is JSON"),
            Q("tar", "bool", "answer a tar file"), Q("jsontar", "bool", "answer a tar file"))
_PAIRS = {200: (OCTET, JSON, "application/tar")}


@register_datatype
class KeyValue(Datatype):
    """The keyvalue datatype."""

    type_name = "keyvalue"
    type_url = "github.com/janelia-flyem/dvid/datatype/keyvalue"
    type_version = "0.2"
    default_compression = "none"
    tkey_classes = {KEY_CLASS: "keyvalue key (key bytes + 0x00) -> value",
                    254: "mutation log: version + mutation id -> JSON record"}

    # ----- storage ----------------------------------------------------------------------

    def _encode(self, value: bytes) -> bytes:
        return serialize(value, self.meta.compression, self.meta.checksum == "crc32")

    def _decode(self, stored: bytes) -> bytes:
        try:
            return deserialize(stored)
        except CodecError as e:
            raise BadRequest(f"stored value of {self.meta.name!r} is corrupt: {e}") from None

    def get_value(self, ctx: VersionedCtx, key: str) -> bytes | None:
        """The value of ``key`` at ``ctx`` or None."""
        raw = self.store.get(ctx, encode_key(key))
        return None if raw is None else self._decode(raw)

    def put_value(self, ctx: VersionedCtx, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` at ``ctx``."""
        self.store.put(ctx, encode_key(key), self._encode(value))

    def _range(self, ctx: VersionedCtx, k1: str, k2: str,
               keys_only: bool = False) -> Iterator[tuple[str, bytes]]:
        start = encode_key(k1)
        end = prefix_successor(encode_key(k2))  # inclusive upper bound
        if end is None or end <= start:
            return
        for tk, v in self.store.scan(ctx, start, end, keys_only=keys_only):
            yield decode_key(tk), (b"" if keys_only else self._decode(v))

    def _all(self, ctx: VersionedCtx, keys_only: bool = False) -> Iterator[tuple[str, bytes]]:
        for tk, v in self.store.scan_prefix(ctx, bytes((KEY_CLASS, 1)), keys_only=keys_only):
            yield decode_key(tk), (b"" if keys_only else self._decode(v))

    def describe_key(self, tk: bytes) -> Any:
        """Keys show as their key strings."""
        return decode_key(tk) if tk[:1] == _KEY_CLASS_BYTE else super().describe_key(tk)

    def describe_keys(self, tks: list[bytes]) -> list[Any]:
        """:meth:`describe_key` of each of ``tks``, without a method call per key (unless a
        subclass redefines :meth:`describe_key`)."""
        if type(self).describe_key is not KeyValue.describe_key:
            return super().describe_keys(tks)
        other = super().describe_key
        return [decode_key(tk) if tk[:1] == _KEY_CLASS_BYTE else other(tk) for tk in tks]

    def diff_summary(self, ctx_from: VersionedCtx, ctx_to: VersionedCtx,
                     changes: list[tuple[bytes, Any, Any]]) -> dict[str, Any]:
        """Counts of keys added/changed/deleted and their stored bytes at each side (a
        side's bytes count only stored values, not absent or conflicting reads)."""
        olds = [old for tk, old, _ in changes if tk[0] == KEY_CLASS]  # TKeys are never empty
        news = [new for tk, _, new in changes if tk[0] == KEY_CLASS]
        added, deleted = olds.count(None), news.count(None)  # never both: they differ
        return {"added": added, "changed": len(olds) - added - deleted, "deleted": deleted,
                "bytes_from": sum(map(len, [v for v in olds if isinstance(v, bytes)])),
                "bytes_to": sum(map(len, [v for v in news if isinstance(v, bytes)])),
                "mutations": len(self.mutations_between(changes)["to"])}

    # ----- single keys ------------------------------------------------------------------

    @endpoint(("GET", "HEAD"), "key/{key}", "The value of a key", params=(_KEY,),
              returns={200: OCTET, 206: OCTET}, inline=True, query=(
                  Q("byte_start", "count", "first byte of a range (inclusive)"),
                  Q("byte_end", "count", "last byte of a range (inclusive)")))
    def _get_key(self, call: Call) -> Response:
        key = call.params["key"]
        value = self.get_value(call.ctx, key)
        if value is None:
            raise NotFound(f"key {key!r} not found in {self.meta.name!r}")
        headers = {"Accept-Ranges": "bytes"}
        if call.method == "HEAD":
            return Response(b"", headers=headers, media_type="application/octet-stream")
        a, b = call.params["byte_start"], call.params["byte_end"]
        if a is not None or b is not None:
            if a is None or b is None:
                raise BadRequest("byte_start and byte_end must be given together")
            if b < a or a >= len(value):
                raise BadRequest(f"bad byte range {a}-{b} for value of {len(value)} bytes")
            return Response(value[a:b + 1], headers=headers,
                            media_type="application/octet-stream")
        rng = call.headers.get("range")
        if rng:
            m = _RANGE_RE.match(rng.strip())
            if m and (m.group(1) or m.group(2)):
                n = len(value)
                if m.group(1):
                    a = int(m.group(1))
                    b = min(int(m.group(2)), n - 1) if m.group(2) else n - 1
                else:
                    a, b = max(0, n - int(m.group(2))), n - 1
                if a >= n or b < a:
                    return Response(b"", status_code=416,
                                    headers={"Content-Range": f"bytes */{n}"})
                headers["Content-Range"] = f"bytes {a}-{b}/{n}"
                return Response(value[a:b + 1], status_code=206, headers=headers,
                                media_type="application/octet-stream")
        return Response(value, headers=headers, media_type="application/octet-stream")

    @endpoint("POST", "key/{key}", "Store the body under a key", params=(_KEY,),
              body=Body(OCTET, "the value"), returns=EMPTY)
    def _post_key(self, call: Call) -> Response:
        key = call.params["key"]
        with self.store.batch(call.ctx) as b:
            b.put(encode_key(key), self._encode(call.body))
            self.log_mutation(call.ctx, "postkv", {"Key": key, "Bytes": len(call.body)}, b)
        return Response(b"")

    @endpoint("DELETE", "key/{key}", "Delete a key from this version on", params=(_KEY,),
              returns=EMPTY)
    def _delete_key(self, call: Call) -> Response:
        key = call.params["key"]
        with self.store.batch(call.ctx) as b:
            b.delete(encode_key(key))
            self.log_mutation(call.ctx, "delete", {"Key": key}, b)
        return Response(b"")

    # ----- listings ---------------------------------------------------------------------

    @endpoint("GET", "keys", "Every key at this version, sorted")
    def _keys(self, call: Call) -> Any:
        return [k for k, _ in self._all(call.ctx, keys_only=True)]

    @endpoint("GET", "keyrange/{k1}/{k2}", "Keys between k1 and k2 (inclusive), sorted",
              params=_RANGE)
    def _keyrange(self, call: Call) -> Any:
        k1, k2 = call.params["k1"], call.params["k2"]
        return [k for k, _ in self._range(call.ctx, k1, k2, keys_only=True)]

    @endpoint("GET", "keyrangevalues/{k1}/{k2}", "Keys and values between k1 and k2",
              params=_RANGE, query=_FORMATS, returns=_PAIRS)
    def _keyrangevalues(self, call: Call) -> Response:
        k1, k2 = call.params["k1"], call.params["k2"]
        encode_key(k1), encode_key(k2)
        pairs = self._range(call.ctx, k1, k2)
        return self._respond_pairs(call, pairs)

    def _respond_pairs(self, call: Call, pairs: Iterable[tuple[str, bytes]]) -> Response:
        return respond_pairs(call, pairs)

    # ----- batches ----------------------------------------------------------------------

    @endpoint("GET", "keyvalues", "Values of the keys listed in the body", query=_FORMATS,
              returns=_PAIRS, body=Body(PROTOBUF, "protobuf Keys; with json/tar/jsontar a "
                                        "JSON array of keys or {key, byte_start, byte_end}"))
    def _get_keyvalues(self, call: Call) -> Response:
        ctx = call.ctx
        wants: list[tuple[str, int | None, int | None]] = []
        if call.flag("json") or call.flag("tar") or call.flag("jsontar"):
            body = call.json()
            if not isinstance(body, list):
                raise BadRequest("keyvalues expects a JSON array of keys")
            for item in body:
                if isinstance(item, str):
                    wants.append((item, None, None))
                elif isinstance(item, dict) and isinstance(item.get("key"), str):
                    a, b = item.get("byte_start"), item.get("byte_end")
                    if (a is not None and not isinstance(a, int)) or \
                            (b is not None and not isinstance(b, int)):
                        raise BadRequest("byte_start/byte_end must be integers")
                    wants.append((item["key"], a, b))
                else:
                    raise BadRequest(f"bad keyvalues request item {item!r}")
        else:
            msg = protos.parse(protos.Keys, call.body)
            wants.extend((k, None, None) for k in msg.keys)
            wants.extend((kr.key, kr.byte_start, kr.byte_end or None) for kr in msg.key_ranges)
        for k, _, _ in wants:
            encode_key(k)

        def pairs() -> Iterator[tuple[str, bytes]]:
            for k, a, b in wants:
                v = self.get_value(ctx, k)
                if v is None:
                    yield k, b""
                    continue
                if a is not None or b is not None:
                    start = a or 0
                    v = v[start:] if b is None else v[start:b + 1]
                yield k, v

        if call.flag("json"):
            body_out = _json_object(pairs(), check=False)
            return Response(body_out, media_type="application/json")
        return self._respond_pairs(call, pairs())

    @endpoint("POST", "keyvalues", "Store every pair of a protobuf KeyValues, atomically",
              body=Body(PROTOBUF, "protobuf KeyValues"), returns=EMPTY)
    def _post_keyvalues(self, call: Call) -> Response:
        msg = protos.parse(protos.KeyValues, call.body)
        items = [(kv.key, encode_key(kv.key), self._encode(kv.value)) for kv in msg.kvs]
        with self.store.batch(call.ctx) as b:
            for key, tk, value in items:
                b.put(tk, value)
                self.log_mutation(call.ctx, "postkv", {"Key": key, "Bytes": len(value)}, b)
        return Response(b"")


def _json_object(pairs: Iterable[tuple[str, bytes]], check: bool) -> bytes:
    parts = []
    for k, v in pairs:
        if not v:
            v = b"{}"
        elif check:
            try:
                jsonio.loads(v, f"value of key {k!r}")
            except BadRequest:
                raise BadRequest(f"value of key {k!r} is not valid JSON") from None
        parts.append(json.dumps(k).encode() + b":" + v)
    return b"{" + b",".join(parts) + b"}"


def respond_pairs(call: Call, pairs: Iterable[tuple[str, bytes]]) -> Response:
    """``(key, value)`` pairs answered as ``json=true`` (one object, values inserted
    verbatim; ``check=true`` validates them), ``tar=true``/``jsontar=true`` (a streamed tar,
    one member per key) or, by default, a streamed protobuf ``KeyValues``. Shared by
    keyvalue and neuronjson."""
    if call.flag("json"):
        body = _json_object(pairs, check=call.query.get("check", "").lower() == "true")
        return Response(body, media_type="application/json")
    if call.flag("tar") or call.flag("jsontar"):
        def tar() -> Iterator[bytes | memoryview]:
            for k, v in pairs:
                yield from tar_pieces(k, v)
            yield TAR_END

        return StreamingResponse(tar(), media_type="application/tar")

    def pb() -> Iterator[bytes]:
        # A repeated field's entries concatenate: each chunk is a valid KeyValues.
        for k, v in pairs:
            yield protos.keyvalue_head(key_bytes(k), len(v))
            yield v

    return StreamingResponse(pb(), media_type="application/octet-stream")
