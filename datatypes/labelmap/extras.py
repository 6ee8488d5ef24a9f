"""Less common labelmap endpoints: bulk index streams, label listings, mutation history
across versions, renumbering, raw supervoxel ingestion, extents, and the spatial TKey hook.

Reads validate everything (labels, UUIDs, version order) before the first byte is sent.
Writes follow :mod:`datatypes.labelmap.writes`: validate, lock, check stored state, one
batch, then update caches and publish events.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
from starlette.responses import Response, StreamingResponse

from datatypes.labelmap import layout as L
from datatypes.labelmap.core import label_list_json
from datatypes.labelmap.mapping import MappingCache
from datatypes.labelmap.params import (
    BLOCKS_BODY,
    BOUNDS,
    LABEL,
    LABELS_BODY,
    SCALE,
    bounds,
    labels_schema,
    nonzero,
)
from datatypes.labelmap.reads import ReadsMixin
from datatypes.labelmap.rle import encode_sparsevols_coarse_record
from datatypes.labelmap.writes import WritesMixin
from dvidpy.datatype import Call, endpoint
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.spec import JSON, OCTET, TEXT, Body, Param
from dvidpy.versioned import VersionedCtx
from storage.base import prefix_successor

MAX_INDICES = 50_000
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
STREAM_CHUNK = 1 << 20
_FROM_TO = (Param("from", "uuid", "first version (an ancestor of to, or to itself)"),
            Param("to", "uuid", "last version"))
_POINT3 = {"type": "array", "minItems": 3, "maxItems": 3,
           "items": {"type": "integer", "minimum": I32_MIN, "maximum": I32_MAX}}


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class ExtrasMixin(WritesMixin, ReadsMixin):
    """Endpoints added on top of the core read/write set (see the class help)."""

    # ----- spatial hook (dvidpy push --roi) -------------------------------------------

    def tkey_voxel_box(self, tk: bytes) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
        """Scale-0 voxel box (max exclusive) of a block TKey: a scale-``s`` block covers
        ``2**s`` times its size at scale 0. ``None`` for every other key (indices,
        mapping, counters, mutation log, properties), which spatial filters keep."""
        if len(tk) != 15 or tk[0] != L.BLOCK_CLASS:
            return None
        s, x, y, z = L.decode_block_tkey(tk)
        f = 1 << s
        bx, by, bz = (b * f for b in self.block_size)
        return (x * bx, y * by, z * bz), ((x + 1) * bx, (y + 1) * by, (z + 1) * bz)

    def mutations(self, ctx: VersionedCtx, version: int | None = None) -> list[dict[str, Any]]:
        """The completed-mutation records written at ``version`` (default ``ctx``'s), as
        ``GET mutations`` and the base ``GET mutations-range`` read them."""
        return self.mutation_records(ctx, version)

    @endpoint("GET", "history/{label}/{from}/{to}", "The edits that built a label between "
              "two versions", params=(LABEL, *_FROM_TO))
    def _get_history(self, call: Call) -> Response:
        """``history/{label}/{from}/{to}``: concatenated JSON objects (no brackets) of the
        merges/cleaves/splits of the bodies that held ``label``'s supervoxels (as of
        ``{to}``) at ``{from}``, and of splits of those supervoxels, chronologically.
        Renumbers are followed (later edits of the new id count) but, as in DVID, not
        listed. 400 when ``{from}`` is not an ancestor of ``{to}``; 404 when ``label`` has
        no index at ``{to}``."""
        label = nonzero(call.params["label"])
        beg, end, chain = self.version_chain(call)
        idx = self.get_index(end, label)
        if idx is None or not len(idx.blocks):
            raise NotFound(f"label {label} not found in {self.meta.name!r} at {end.node.uuid}")
        svs = np.unique(L.index_arrays(idx)[1]).tolist()
        svset = set(svs)
        orig = set(self.mapping.lookup(beg, svs).values()) - {0}
        out: list[bytes] = []
        for v in chain:
            for r in self.mutation_records(end, v):
                a = str(r.get("Action", "")).removesuffix("-complete")
                o: dict[str, Any] | None = None
                if a == "renumber" and r.get("OrigLabel") in orig:
                    orig.add(r["NewLabel"])  # follow the body under its new id
                elif a == "merge" and r.get("Target") in orig:
                    o = {"Action": a, "Target": r["Target"], "Labels": r["Labels"]}
                elif a == "cleave" and r.get("OrigLabel") in orig:
                    o = {"Action": a, "OrigLabel": r["OrigLabel"],
                         "CleavedLabel": r["CleavedLabel"],
                         "CleavedSupervoxels": r["CleavedSupervoxels"]}
                elif a == "split" and r.get("Target") in orig:
                    o = {"Action": a, "Target": r["Target"], "NewLabel": r["NewLabel"],
                         "Coarse": False}
                elif a == "split-supervoxel" and svset & {
                        r.get("Supervoxel"), r.get("SplitSupervoxel"),
                        r.get("RemainSupervoxel")}:
                    o = {"Action": a, "Supervoxel": r["Supervoxel"],
                         "SplitSupervoxel": r["SplitSupervoxel"],
                         "RemainSupervoxel": r["RemainSupervoxel"]}
                if o is not None:
                    out.append(_compact(o))
        return Response(b"".join(out), media_type="application/json")

    @endpoint("GET", "supervoxel-splits", "Supervoxel splits from this version to the root")
    def _get_supervoxel_splits(self, call: Call) -> Response:
        """``["<uuid>", [[mutid, old sv, remain sv, split sv], ...], "<parent uuid>", ...]``
        from this version to the root, skipping versions without splits. Body splits
        contribute one entry per supervoxel they split."""
        ctx = call.ctx
        items: list[Any] = []
        for v in ctx.ancestry.order:
            ops = []
            for r in self.mutation_records(ctx, v):
                a = str(r.get("Action", "")).removesuffix("-complete")
                if a == "split-supervoxel":
                    ops.append([r["MutationID"], r["Supervoxel"], r["RemainSupervoxel"],
                                r["SplitSupervoxel"]])
                elif a == "split":
                    for sv, sp in sorted(r.get("SVSplits", {}).items(),
                                         key=lambda kv: int(kv[0])):
                        ops.append([r["MutationID"], int(sv), sp["Remain"], sp["Split"]])
            if ops:
                items += [self.repo.dag.node(v).uuid, ops]
        return Response(_compact(items), media_type="application/json")

    # ----- label listings and bulk index streams ---------------------------------------

    def _index_scan(self, ctx: VersionedCtx, start: int, end: int,
                    keys_only: bool) -> Iterator[tuple[int, bytes]]:
        """``(label, stored index value)`` of bodies ``start..end`` (inclusive), ascending."""
        stop = prefix_successor(L.index_tkey(end))
        for tk, v in self.store.scan(ctx, L.index_tkey(start), stop, keys_only=keys_only):
            yield int.from_bytes(tk[2:10], "big"), v

    @endpoint("GET", "existing-labels", "Every body with a label index, ascending")
    def _get_existing_labels(self, call: Call) -> Response:
        """Streamed JSON array of every body with a label index, ascending. A storage error
        mid-stream truncates the array (DVID can't report it either)."""
        ctx = call.ctx

        def gen() -> Iterator[bytes]:
            yield b"["
            buf: list[str] = []
            first = True
            for lab, _ in self._index_scan(ctx, 0, 2**64 - 1, True):
                buf.append(str(lab))
                if len(buf) >= 65536:
                    yield (b"" if first else b",") + ",".join(buf).encode()
                    first, buf = False, []
            if buf:
                yield (b"" if first else b",") + ",".join(buf).encode()
            yield b"]"

        return StreamingResponse(gen(), media_type="application/json")

    @endpoint("GET", "sparsevols-coarse/{start}/{end}", "Coarse sparse volumes of the bodies "
              "in a label range", returns=OCTET, query=BOUNDS, params=(
                  Param("start", "label", "first label (inclusive)"),
                  Param("end", "label", "last label (inclusive)")))
    def _get_sparsevols_coarse(self, call: Call) -> Response:
        """Stream, per body with an index in ``[start, end]``: ``uint64 label, int32 S``
        and S block-coordinate spans; bodies with no block inside the bounds are skipped."""
        self.require_indexed("sparsevols-coarse")
        start, end = call.params["start"], call.params["end"]
        if end < start:
            raise BadRequest(f"end label {end} is below start label {start}")
        bnd = bounds(call)
        bs = np.array(self.block_size)
        lo = hi = None
        if bnd is not None:
            lo = np.floor_divide(np.array(bnd[0]), bs)
            hi = np.floor_divide(np.array(bnd[1]), bs)
        ctx = call.ctx

        def gen() -> Iterator[bytes]:
            buf: list[bytes] = []
            n = 0
            for lab, v in self._index_scan(ctx, start, end, False):
                try:
                    c = L.index_block_coords(L.parse_index(v))
                except Exception:
                    return  # corrupt index: stop (the stream can't carry an error)
                if lo is not None:
                    c = c[((c >= lo) & (c <= hi)).all(axis=1)]
                if c.shape[0] == 0:
                    continue
                rec = encode_sparsevols_coarse_record(lab, c)
                buf.append(rec)
                n += len(rec)
                if n >= STREAM_CHUNK:
                    yield b"".join(buf)
                    buf, n = [], 0
            if buf:
                yield b"".join(buf)

        return StreamingResponse(gen(), media_type=OCTET)

    @endpoint("GET", "indices-compressed", "Stored label indices of the labels listed in the "
              "GET body (<= 50,000)", body=LABELS_BODY, returns=OCTET)
    def _get_indices_compressed(self, call: Call) -> Response:
        """GET body ``[l1, ...]`` (≤ 50,000) → per label in request order: ``uint64 size,
        uint64 label`` and ``size`` bytes of the stored (lz4-framed) LabelIndex; size 0
        for a missing label (and label 0). A storage error mid-stream ends the stream with
        a zero size + zero label record."""
        labels = label_list_json(call.json())
        if len(labels) > MAX_INDICES:
            raise BadRequest(f"at most {MAX_INDICES} labels per indices-compressed request")
        ctx = call.ctx

        def gen() -> Iterator[bytes]:
            try:
                for i in range(0, len(labels), 1024):
                    chunk = labels[i:i + 1024]
                    vals = self.store.get_many(ctx, [L.index_tkey(lab) for lab in chunk])
                    parts = []
                    for lab, v in zip(chunk, vals, strict=True):
                        if v is None or lab == 0:
                            parts.append(struct.pack("<QQ", 0, lab))
                        else:
                            parts.append(struct.pack("<QQ", len(v), lab))
                            parts.append(v)
                    yield b"".join(parts)
            except Exception:
                yield struct.pack("<QQ", 0, 0)

        return StreamingResponse(gen(), media_type=OCTET)

    # ----- writes -----------------------------------------------------------------------

    @endpoint("POST", "renumber", "Give bodies new ids", returns=TEXT, body=Body(
        JSON, "[new1, old1, new2, old2, ...] body ids", schema=labels_schema([1000, 3], 2)))
    def _renumber(self, call: Call) -> Response:
        """Body ``[new1, old1, new2, old2, ...]``: each old body becomes ``new`` (its
        supervoxels are remapped, its index moves). Every pair gets its own mutation id,
        log record and ``merge`` event (with ``"renumber": True``); all pairs are written
        in one batch. 400 (nothing written) for an odd/empty list, label 0, repeated ids,
        an id that is both old and new, a missing old body, or a new id that already
        names a body or a supervoxel mapped elsewhere / retired."""
        self.require_indexed("renumber")
        body = label_list_json(call.json(), "renumber pairs")
        if not body or len(body) % 2:
            raise BadRequest("renumber needs a non-empty, even-length list [new1, old1, ...]")
        if 0 in body:
            raise BadRequest("label 0 (background) can't be renumbered")
        news, olds = body[0::2], body[1::2]
        if len(set(news)) != len(news) or len(set(olds)) != len(olds):
            raise BadRequest("renumber lists a label twice")
        if set(news) & set(olds):
            raise BadRequest("a label can't be both renumbered and a renumber target")
        ctx = call.ctx
        with self.lock:
            idxs = []
            for new, old in zip(news, olds, strict=True):
                idx = self.get_index(ctx, old)
                if idx is None or not len(idx.blocks):
                    raise BadRequest(f"label {old} to renumber does not exist")
                nidx = self.get_index(ctx, new)
                if nidx is not None and len(nidx.blocks):
                    raise BadRequest(f"renumber target {new} already exists")
                idxs.append(idx)
            m = self.mapping.lookup(ctx, news)
            for new in news:
                if m[new] != new:
                    raise BadRequest(f"renumber target {new} is a supervoxel of body {m[new]}"
                                     if m[new] else f"renumber target {new} is retired")
            changes: dict[int, int] = {}
            events = []
            with self.label_batch(ctx) as b:
                for new, old, idx in zip(news, olds, idxs, strict=True):
                    mutid = self.manager.next_mutation_id(self.repo)
                    svs: set[int] = set()
                    for svc in idx.blocks.values():
                        svs.update(svc.counts.keys())
                    enc = MappingCache.encode(new)
                    for sv in svs:
                        b.put(L.mapping_tkey(sv), enc)
                        changes[sv] = new
                    b.delete(L.index_tkey(old))
                    keys = sorted(idx.blocks.keys())
                    idx.label = new
                    self.put_index(ctx, b, idx, mutid)
                    self.log_mutation(ctx, b, mutid, {"Action": "renumber", "NewLabel": new,
                                                      "OrigLabel": old})
                    events.append(({"target": new, "merged": [old],
                                    "supervoxels": {old: sorted(svs)}, "block_keys": keys,
                                    "renumber": True}, mutid))
                self.note_labels(ctx, b, max(news))
            self.mapping.update(ctx.version, changes)
        for payload, mutid in events:
            self.emit(ctx, "merge", payload, mutid)
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "ingest-supervoxels", "Store gzip'd label blocks as-is (no indexing, "
              "sync, extents, max label or downres)", body=BLOCKS_BODY, query=(SCALE,),
              returns=TEXT)
    def _post_ingest_supervoxels(self, call: Call) -> Response:
        """``POST blocks`` body stored as-is at ``scale``: no indexing, sync, extents,
        max-label or downres (bulk loads follow with ``POST indices``/``mappings``/
        ``extents``). The whole stream is validated first, then written in batches of
        about ``writeBatchBytes`` of stored bytes."""
        scale = self.scale_arg(call)
        recs = self.parse_block_stream(call, scale, 0)
        crc = self.meta.checksum == "crc32"
        limit = self.manager.settings.write_batch_bytes
        with self.lock:
            items = iter(recs.items())
            while True:
                b = self.store.batch(call.ctx)
                size = 0
                for c, (payload, _) in items:
                    b.put(L.block_tkey(scale, *c), L.frame_gzip_payload(payload, crc))
                    size += len(payload)
                    if size >= limit:
                        break
                if not size:
                    break
                b.commit()
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "extents", "Replace this version's extents", returns=TEXT, body=Body(
        JSON, '{"MinPoint": [x, y, z], "MaxPoint": [x, y, z]}', schema={
            "type": "object", "properties": {
                "MinPoint": _POINT3, "MaxPoint": _POINT3}}))
    def _post_extents(self, call: Call) -> Response:
        """Body ``{"MinPoint": [x, y, z], "MaxPoint": [x, y, z]}`` (either may be omitted
        when extents exist) replaces this version's extents. 400 for non-int32 values,
        wrong lengths, unknown shapes or MinPoint > MaxPoint on any axis."""
        body = call.json()
        if not isinstance(body, dict) or not ({"MinPoint", "MaxPoint"} & body.keys()):
            raise BadRequest('POST extents expects {"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}')
        pts = {}
        for k in ("MinPoint", "MaxPoint"):
            if k not in body:
                continue
            p = body[k]
            if (not isinstance(p, list) or len(p) != 3 or not all(
                    isinstance(v, int) and not isinstance(v, bool) and I32_MIN <= v <= I32_MAX
                    for v in p)):
                raise BadRequest(f"{k} must be 3 int32 integers, got {p!r}")
            pts[k] = p
        with self.lock:
            ext = self.extents(call.ctx)
            if len(pts) < 2 and ext is None:
                raise BadRequest("both MinPoint and MaxPoint are needed: no extents yet")
            lo = pts.get("MinPoint", ext[0] if ext else None)
            hi = pts.get("MaxPoint", ext[1] if ext else None)
            if any(a > c for a, c in zip(lo, hi, strict=True)):  # type: ignore[arg-type]
                raise BadRequest(f"MinPoint {lo} exceeds MaxPoint {hi}")
            self.put_property(call.ctx, "extents", [list(lo), list(hi)])  # type: ignore[arg-type]
        return Response(b"", media_type="text/plain")
