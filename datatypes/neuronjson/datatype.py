"""neuronjson: a JSON document per body, with per-field user/time stamps and queries
(DVID's ``datatype/neuronjson``, dvid-api.md §14).

Keys are body ids (decimal uint64, not 0); values are JSON objects whose ``bodyid`` equals
the key. Each field ``F`` carries ``F_user`` / ``F_time`` stamps, set when the field's
value changes (rules in :mod:`datatypes.neuronjson.records`). Versioned like keyvalue,
with a mutation log (``GET mutations``: ``postneuronjson``, ``ingestneuronjson``,
``delete`` records).

Query options of the reads: ``show=user|time|all`` also shows ``F_user`` / ``F_time``
fields (default: neither); ``fields=a,b`` limits the answer to those fields (``bodyid``
always included, stamps per ``show``).

Endpoints under ``/api/node/{uuid}/{data}/``:

``GET|HEAD key/{bodyid}[?show&fields]``
    The record (JSON, keys sorted); 404 when absent. ``key/schema`` and
    ``key/schema_batch`` read the neutu/neu3 schemas (as DVID allows).
``POST key/{bodyid}?u=USER[&replace=true&conditional=a,b]``
    Updates the record with the posted fields (``null`` removes a field); ``u=`` is
    required. ``replace=true`` drops fields not posted; ``conditional`` (or
    ``conditionals``) lists fields not overwritten when already set. With a stored
    ``json_schema`` the record is validated (string values of integer fields are
    converted, as DVID does). ``DELETE key/{bodyid}`` removes the record.
``GET keys`` / ``GET keyrange/{k1}/{k2}``
    Keys in ascending body-id order; range bounds are inclusive, a bound starting above
    ``9`` means the largest id and below ``0`` the smallest.
``GET keyrangevalues/{k1}/{k2}[?json=true|tar=true|jsontar=true&show&fields]``
    Records in the range: protobuf ``KeyValues`` (default), one JSON object, or a tar.
``GET keyvalues[?json=true|tar=true|jsontar=true&show&fields]``
    Batch read. Default body protobuf ``Keys`` → protobuf ``KeyValues`` (missing: empty
    value). With ``json=true`` a JSON array of ids (numbers or strings) → object of the
    records found; with ``tar``/``jsontar`` a JSON array of string keys → tar (missing:
    empty members).
``POST keyvalues?u=USER[&replace&conditional]``
    Protobuf ``KeyValues``: every pair posted as by ``POST key``, all or nothing.
``GET all[?show&fields]``
    Every record (records left with only ``bodyid`` are omitted unless ``fields``
    names ``bodyid``).
``GET fields[?counts=true]`` / ``GET fieldtimes``
    Field names in use (or ``{field: count}``) / the latest ``F_time`` of each field.
``GET|POST query[?onlyid=true&show&fields]``
    Body: a query object or a list of them (rules in :mod:`datatypes.neuronjson.query`);
    answers the matching records (or ids) in ascending body id. Not a mutation.
``GET|HEAD|POST|DELETE json_schema|schema|schema_batch``
    The JSON validation schema and the neutu/neu3 schemas, stored per version.

Storage: TKey class 179 + body id (u64 BE), so key ranges are single scans in id order;
classes 180/181/182 hold the schemas. A query or ``all`` is one scan of the version's
records; a query naming only body ids is answered by point reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import jsonschema
from starlette.responses import Response

from datatypes import protos
from datatypes.keyvalue import respond_pairs
from datatypes.neuronjson import query as Q_
from datatypes.neuronjson import records as R
from dvidpy import jsonio
from dvidpy.codec import CodecError, deserialize, serialize
from dvidpy.datatype import Call, Datatype, endpoint, register_datatype
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.spec import EMPTY, JSON, OCTET, PROTOBUF, Body, Param, Q
from dvidpy.http.streams import StreamingResponse
from dvidpy.keys import prefix_successor, tkey
from dvidpy.versioned import VersionedBatch, VersionedCtx

RECORD_CLASS = 179
SCHEMA_CLASSES = {"schema": 180, "schema_batch": 181, "json_schema": 182}
#: tries at DVID's string → integer conversion of fields a JSON schema declares integer
MAX_CONVERSIONS = 64
_KEY = Param("key", "str", "a body id (decimal uint64), or schema / schema_batch")
_RANGE = (Param("k1", "str", "first body id (inclusive)"),
          Param("k2", "str", "last body id (inclusive)"))
_VIEW = (Q("show", "str", "also show F_user (user), F_time (time) or both (all) fields",
           enum=("user", "time", "all")),
         Q("fields", "str", "comma-separated fields to answer (bodyid always included)"))
_FORMATS = (Q("json", "bool", "answer one JSON object key -> record"),
            Q("tar", "bool", "answer a tar file"), Q("jsontar", "bool", "answer a tar file"),
            Q("check", "bool", "with json: (records are always valid JSON)"),
            Q("protobuf", "bool", "answer protobuf KeyValues (the default)"))
_WRITE = (Q("u", "str", "the user making the change (required)"),
          Q("replace", "bool", "drop stored fields that are not posted"),
          Q("conditional", "str", "comma-separated fields not overwritten when set"),
          Q("conditionals", "str", "legacy alias of conditional"))
_PAIRS = {200: (OCTET, JSON, "application/tar")}
_OBJECT = {"type": "object"}


def record_tkey(body: int) -> bytes:
    """TKey of a body's record."""
    return tkey(RECORD_CLASS, body.to_bytes(8, "big"))


def body_of(tk: bytes) -> int:
    """Inverse of :func:`record_tkey`."""
    return int.from_bytes(tk[2:10], "big")


@register_datatype
class NeuronJSON(Datatype):
    """The neuronjson datatype."""

    type_name = "neuronjson"
    type_url = "github.com/janelia-flyem/dvid/datatype/neuronjson"
    type_version = "0.1"
    default_compression = "none"
    tkey_classes = {
        RECORD_CLASS: "neuron annotation: body id (u64 BE) -> JSON record",
        180: "neutu/neu3 schema", 181: "neutu/neu3 schema for batches",
        182: "JSON schema validating the records",
        254: "mutation log: version + mutation id -> JSON record",
    }

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._write_lock = threading.Lock()

    def describe_key(self, tk: bytes) -> Any:
        """Records show as body ids, schemas by name."""
        if tk[:1] == bytes((RECORD_CLASS,)):
            return body_of(tk)
        names = {v: k for k, v in SCHEMA_CLASSES.items()}
        return names.get(tk[0]) or super().describe_key(tk)

    # ----- storage ----------------------------------------------------------------------

    def _decode(self, stored: bytes) -> dict[str, Any]:
        try:
            return jsonio.loads(deserialize(stored), f"stored record of {self.meta.name!r}")
        except (CodecError, BadRequest) as e:
            msg = e.message if isinstance(e, BadRequest) else str(e)
            raise BadRequest(f"stored record of {self.meta.name!r} is corrupt: {msg}") from None

    def _encode(self, record: dict[str, Any]) -> bytes:
        return serialize(R.dumps(record), self.meta.compression, self.meta.checksum == "crc32")

    def get_record(self, ctx: VersionedCtx, body: int) -> dict[str, Any] | None:
        """The stored record of ``body`` at ``ctx`` (stamps included) or None."""
        raw = self.store.get(ctx, record_tkey(body))
        return None if raw is None else self._decode(raw)

    def records(self, ctx: VersionedCtx, lo: int = 0,
                hi: int = R.UINT64_MAX) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(body, record)`` with ``lo <= body <= hi`` at ``ctx``, in body order (one
        scan)."""
        start = record_tkey(lo)
        end = prefix_successor(record_tkey(hi))
        for tk, v in self.store.scan(ctx, start, end):
            yield body_of(tk), self._decode(v)

    def _bodies(self, ctx: VersionedCtx, lo: int = 0, hi: int = R.UINT64_MAX) -> list[int]:
        end = prefix_successor(record_tkey(hi))
        return [body_of(tk) for tk, _ in self.store.scan(ctx, record_tkey(lo), end,
                                                         keys_only=True)]

    # ----- schemas ----------------------------------------------------------------------

    def get_schema(self, ctx: VersionedCtx, name: str) -> bytes | None:
        """The stored schema ``name`` (json_schema, schema, schema_batch) or None."""
        return self.store.get(ctx, tkey(SCHEMA_CLASSES[name], b""))

    def _validator(self, ctx: VersionedCtx) -> Any:
        raw = self.get_schema(ctx, "json_schema")
        if raw is None:
            return None
        schema = jsonio.loads(raw, "stored json_schema")
        return jsonschema.validators.validator_for(schema)(schema)

    def _validate(self, validator: Any, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` checked against the JSON schema, converting top-level string values
        of fields the schema declares integer (DVID's rule); 400 when it does not fit."""
        for _ in range(MAX_CONVERSIONS):
            err = jsonschema.exceptions.best_match(validator.iter_errors(record))
            if err is None:
                return record
            field = err.path[0] if len(err.path) == 1 else None
            want = err.validator_value if err.validator == "type" else None
            wants_int = want == "integer" or (isinstance(want, list) and "integer" in want)
            if (isinstance(field, str) and wants_int and isinstance(record.get(field), str)
                    and record[field].lstrip("-").isdigit()):
                record[field] = int(record[field])
                continue
            where = "/".join(str(p) for p in err.path) or "(record)"
            raise BadRequest(f"record does not match the json_schema at {where}: "
                             f"{err.message}")
        raise BadRequest("record needs too many string-to-integer conversions")

    def _schema_endpoint(self, call: Call, name: str) -> Response:
        ctx = call.ctx
        tk = tkey(SCHEMA_CLASSES[name], b"")
        if call.method in ("GET", "HEAD"):
            raw = self.store.get(ctx, tk)
            if raw is None:
                raise NotFound(f"no {name} stored in {self.meta.name!r}")
            return Response(b"" if call.method == "HEAD" else raw,
                            media_type="application/json")
        with self.store.batch(ctx) as b:
            if call.method == "DELETE":
                b.delete(tk)
                self.log_mutation(ctx, "delete", {"Key": name}, b)
                return Response(b"")
            doc = jsonio.loads(call.body, f"{name} body")
            if name == "json_schema":
                if not isinstance(doc, dict | bool):
                    raise BadRequest("json_schema must be a JSON Schema object")
                try:
                    jsonschema.validators.validator_for(doc).check_schema(doc)
                except jsonschema.exceptions.SchemaError as e:
                    raise BadRequest(f"invalid json_schema: {e.message}") from None
            b.put(tk, bytes(call.body))
            self.log_mutation(ctx, "postneuronjson", {"Key": name, "Bytes": len(call.body)}, b)
        return Response(b"")

    @endpoint("GET", "json_schema", "The JSON schema validating records", returns=JSON)
    @endpoint("POST", "json_schema", "Store the JSON schema validating records",
              body=Body(JSON, "a JSON Schema", schema=_OBJECT), returns=EMPTY)
    @endpoint("DELETE", "json_schema", "Remove the JSON schema", returns=EMPTY)
    def _json_schema(self, call: Call) -> Response:
        return self._schema_endpoint(call, "json_schema")

    @endpoint("GET", "schema", "The neutu/neu3 schema", returns=JSON)
    @endpoint("POST", "schema", "Store the neutu/neu3 schema", body=Body(JSON, "JSON"),
              returns=EMPTY)
    @endpoint("DELETE", "schema", "Remove the neutu/neu3 schema", returns=EMPTY)
    def _neu_schema(self, call: Call) -> Response:
        return self._schema_endpoint(call, "schema")

    @endpoint("GET", "schema_batch", "The neutu/neu3 batch schema", returns=JSON)
    @endpoint("POST", "schema_batch", "Store the neutu/neu3 batch schema",
              body=Body(JSON, "JSON"), returns=EMPTY)
    @endpoint("DELETE", "schema_batch", "Remove the neutu/neu3 batch schema", returns=EMPTY)
    def _neu_schema_batch(self, call: Call) -> Response:
        return self._schema_endpoint(call, "schema_batch")

    # ----- single records ---------------------------------------------------------------

    def _view(self, call: Call, record: dict[str, Any]) -> bytes:
        return R.dumps(R.select(record, R.parse_fields(call.params.get("fields")),
                                call.params.get("show") or ""))

    @endpoint(("GET", "HEAD"), "key/{key}", "A body's record", params=(_KEY,), query=_VIEW,
              returns={200: (JSON,)}, inline=True)
    def _get_key(self, call: Call) -> Response:
        key = call.params["key"]
        if key in ("schema", "schema_batch"):
            return self._schema_endpoint(call, key)
        rec = self.get_record(call.ctx, R.parse_body_id(key))
        if rec is None:
            raise NotFound(f"Key {key!r} not found in {self.meta.name!r}")
        if call.method == "HEAD":
            return Response(b"", media_type="application/json")
        return Response(self._view(call, rec), media_type="application/json")

    def _write_options(self, call: Call) -> tuple[str, list[str], bool]:
        user = call.ctx.user
        if not user:
            raise BadRequest("cannot alter neuronjson data without a valid user (u=...)")
        cond = call.params.get("conditional") or call.params.get("conditionals") or ""
        return user, [c for c in cond.split(",") if c], bool(call.params.get("replace"))

    def _prepare(self, ctx: VersionedCtx, key: str, body: bytes | bytearray | Any,
                 validator: Any) -> tuple[int, dict[str, Any]]:
        """Parse (unless already parsed), check and validate one posted record; nothing is
        written."""
        body_id = R.parse_body_id(key)
        rec = (jsonio.loads(body, f"neuronjson value of key {key}")
               if isinstance(body, bytes | bytearray) else body)
        if isinstance(rec, dict) and validator is not None:
            rec = self._validate(validator, rec)
        return body_id, R.check_post(body_id, rec)

    def _put(self, ctx: VersionedCtx, b: VersionedBatch, items: list[tuple[int, dict[str, Any]]],
             user: str, cond: list[str], replace: bool, action: str) -> None:
        """Stamp and write records in ``b`` (a body posted twice sees its first post)."""
        when = R.stamp_time()
        pending: dict[int, dict[str, Any] | None] = {}
        for body_id, new in items:
            orig = pending[body_id] if body_id in pending else self.get_record(ctx, body_id)
            rec = R.update_record(orig, new, user, cond, replace, when)
            pending[body_id] = rec
            raw = self._encode(rec)
            b.put(record_tkey(body_id), raw)
            self.log_mutation(ctx, action, {"Key": str(body_id), "Bytes": len(raw)}, b)

    @endpoint("POST", "key/{key}", "Update (or with replace=true set) a body's record",
              params=(_KEY,), query=_WRITE, returns=EMPTY,
              body=Body(JSON, "JSON object with bodyid equal to the key", schema=_OBJECT))
    def _post_key(self, call: Call) -> Response:
        key = call.params["key"]
        doc = call.json()  # malformed JSON is the first thing reported
        user, cond, replace = self._write_options(call)
        if key in ("schema", "schema_batch"):
            return self._schema_endpoint(call, key)
        ctx = call.ctx
        with self._write_lock:
            item = self._prepare(ctx, key, doc, self._validator(ctx))
            with self.store.batch(ctx) as b:
                self._put(ctx, b, [item], user, cond, replace, "postneuronjson")
        return Response(b"")

    @endpoint("DELETE", "key/{key}", "Delete a body's record from this version on",
              params=(_KEY,), returns=EMPTY)
    def _delete_key(self, call: Call) -> Response:
        key = call.params["key"]
        if key in ("schema", "schema_batch"):
            return self._schema_endpoint(call, key)
        body_id = R.parse_body_id(key)
        with self._write_lock, self.store.batch(call.ctx) as b:
            b.delete(record_tkey(body_id))
            self.log_mutation(call.ctx, "delete", {"Key": str(body_id)}, b)
        return Response(b"")

    # ----- listings ---------------------------------------------------------------------

    @endpoint("GET", "keys", "Every body id with a record, ascending")
    def _keys(self, call: Call) -> Any:
        return [str(b) for b in self._bodies(call.ctx)]

    @endpoint("GET", "keyrange/{k1}/{k2}", "Body ids between k1 and k2 (inclusive)",
              params=_RANGE)
    def _keyrange(self, call: Call) -> Any:
        lo, hi = R.range_bound(call.params["k1"]), R.range_bound(call.params["k2"])
        return [str(b) for b in self._bodies(call.ctx, lo, hi)] if lo <= hi else []

    def _check_formats(self, call: Call) -> None:
        if (call.flag("tar") or call.flag("jsontar")) and call.flag("json"):
            raise BadRequest("can only specify tar or json output, not both")

    @endpoint("GET", "keyrangevalues/{k1}/{k2}", "Records between k1 and k2 (inclusive)",
              params=_RANGE, query=(*_FORMATS, *_VIEW), returns=_PAIRS)
    def _keyrangevalues(self, call: Call) -> Response:
        self._check_formats(call)
        lo, hi = R.range_bound(call.params["k1"]), R.range_bound(call.params["k2"])
        pairs = ((str(b), self._view(call, rec)) for b, rec in
                 (self.records(call.ctx, lo, hi) if lo <= hi else ()))
        return respond_pairs(call, pairs)

    def _value_of(self, call: Call, key: str) -> bytes | None:
        if key in ("schema", "schema_batch"):
            return self.get_schema(call.ctx, key)
        rec = self.get_record(call.ctx, R.parse_body_id(key))
        return None if rec is None else self._view(call, rec)

    @endpoint("GET", "keyvalues", "Records of the keys listed in the body",
              query=(*_FORMATS, *_VIEW), returns=_PAIRS,
              body=Body(PROTOBUF, "protobuf Keys; with json=true a JSON array of ids, with "
                        "tar/jsontar a JSON array of string keys"))
    def _get_keyvalues(self, call: Call) -> Response:
        self._check_formats(call)
        if call.flag("json") or call.flag("tar") or call.flag("jsontar"):
            body = call.json()
            if not isinstance(body, list) or not all(
                    isinstance(k, str) or R.is_uint64(k) for k in body):
                raise BadRequest("keyvalues expects a JSON array of body ids")
            keys = [str(k) for k in body]
        else:
            keys = list(protos.parse(protos.Keys, call.body).keys)
        for k in keys:
            if k not in ("schema", "schema_batch"):
                R.parse_body_id(k)
        if call.flag("json"):  # only the records found
            found = ((k, v) for k in keys if (v := self._value_of(call, k)) is not None)
            return respond_pairs(call, found)
        return respond_pairs(call, ((k, self._value_of(call, k) or b"") for k in keys))

    @endpoint("POST", "keyvalues", "Post every record of a protobuf KeyValues, atomically",
              query=_WRITE, body=Body(PROTOBUF, "protobuf KeyValues"), returns=EMPTY)
    def _post_keyvalues(self, call: Call) -> Response:
        user, cond, replace = self._write_options(call)
        msg = protos.parse(protos.KeyValues, call.body)
        ctx = call.ctx
        with self._write_lock:
            validator = self._validator(ctx)
            items = [self._prepare(ctx, kv.key, kv.value, validator) for kv in msg.kvs]
            with self.store.batch(ctx) as b:
                self._put(ctx, b, items, user, cond, replace, "ingestneuronjson")
        return Response(b"")

    def _stream_list(self, parts: Iterator[bytes]) -> StreamingResponse:
        def gen() -> Iterator[bytes]:
            yield b"["
            first = True
            for p in parts:
                yield p if first else b"," + p
                first = False
            yield b"]"

        return StreamingResponse(gen(), media_type="application/json")

    @endpoint("GET", "all", "Every record", query=_VIEW)
    def _all(self, call: Call) -> Response:
        fields = R.parse_fields(call.params.get("fields"))
        show = call.params.get("show") or ""
        ctx = call.ctx

        def parts() -> Iterator[bytes]:
            for _, rec in self.records(ctx):
                out = R.select(rec, fields, show)
                if len(out) > 1 or "bodyid" in fields:
                    yield R.dumps(out)

        return self._stream_list(parts())

    @endpoint("GET", "fields", "Field names in use (counts=true: with counts)",
              query=(Q("counts", "bool", "answer {field: number of records}"),))
    def _fields(self, call: Call) -> Any:
        counts: dict[str, int] = {}
        for _, rec in self.records(call.ctx):
            for f in rec:
                counts[f] = counts.get(f, 0) + 1
        return dict(sorted(counts.items())) if call.params["counts"] else sorted(counts)

    @endpoint("GET", "fieldtimes", "The latest F_time of each field F")
    def _fieldtimes(self, call: Call) -> Any:
        times: dict[str, str] = {}
        for _, rec in self.records(call.ctx):
            for f, v in rec.items():
                if f.endswith("_time") and isinstance(v, str) and v > times.get(f[:-5], ""):
                    times[f[:-5]] = v
        return dict(sorted(times.items()))

    # ----- queries ----------------------------------------------------------------------

    @endpoint(("GET", "POST"), "query", "Records matching a query (POST is not a mutation)",
              mutates=False, access="read",
              query=(Q("onlyid", "bool", "answer the matching body ids only"), *_VIEW),
              body=Body(JSON, "a query object or a list of them", schema={
                  "anyOf": [_OBJECT, {"type": "array", "items": _OBJECT}]}))
    def _query(self, call: Call) -> Response:
        queries = Q_.parse_query(call.json())
        fields = R.parse_fields(call.params.get("fields"))
        show = call.params.get("show") or ""
        onlyid = bool(call.params["onlyid"])
        ctx = call.ctx

        def out(body: int, rec: dict[str, Any]) -> bytes:
            return str(body).encode() if onlyid else R.dumps(R.select(rec, fields, show))

        ids = Q_.only_body_ids(queries)
        if ids is not None:
            def by_id() -> Iterator[bytes]:
                for body in dict.fromkeys(ids):
                    rec = self.get_record(ctx, body) if 0 <= body <= R.UINT64_MAX else None
                    if rec is not None:
                        yield out(body, rec)

            return self._stream_list(by_id())
        return self._stream_list(out(b, rec) for b, rec in self.records(ctx)
                                 if Q_.matches(queries, rec))
