"""Mutating labelmap endpoints: voxel/block writes, proofreading edits, bulk ingestion.

Every handler validates its whole input first, then takes the instance lock, checks the
preconditions that depend on stored state, and writes everything in **one** versioned
batch (blocks, indices, mapping entries, counters, the mutation-log record), so a
rejected request changes nothing. The in-memory mapping cache and counters are updated
only after the batch commits; events are published last.

Bulk block writes (``POST raw``, ``POST blocks``, ``ingest-supervoxels``) are the
exception to one batch: after the whole request is validated they commit in batches of
about ``[server] writeBatchBytes`` (of uint64 voxels), in Morton order so that the blocks
sharing a lower-scale parent mostly commit together, under the instance lock. Memory is
then the body plus one batch; a reader may see the first batches before the last one
lands, and a crash mid-request keeps the batches already committed.

Work is bounded by the data touched: RLE bodies are checked against the bounding box and
voxel count of the label they edit before any per-span or per-block loop, and posted
blocks decompress no further than the largest valid block of the instance's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.responses import Response

from datatypes import protos
from datatypes.common.blockstream import decode_records
from datatypes.common.geometry import blocks_in_box, is_block_aligned, iter_block_pieces
from datatypes.labelmap import layout as L
from datatypes.labelmap.block_codec import (
    decode_block,
    encode_block_counts,
    max_serialization_size,
)
from datatypes.labelmap.core import LabelmapCore, label_list_json
from datatypes.labelmap.mapping import MappingCache
from datatypes.labelmap.params import (
    BLOCKS_BODY,
    DIMS,
    LABEL,
    OFFSET,
    RLE_BODY,
    ROI,
    SCALE,
    SIZE,
    SUPERVOXEL,
    flag,
    labels_schema,
    nonzero,
)
from datatypes.labelmap.rle import (
    decode_block_coords,
    decode_rles,
    encode_srles,
    normalize_spans,
    spans_to_mask,
)
from dvidpy.codec import CodecError, lz4_decompress
from dvidpy.datatype import Call, endpoint
from dvidpy.errors import BadRequest
from dvidpy.http.spec import JSON, OCTET, PROTOBUF, TEXT, Body, Param, Q
from dvidpy.versioned import VersionedCtx

Coord = tuple[int, int, int]


def _spans(call: Call, lo: np.ndarray, hi: np.ndarray, voxels: int, what: str) -> np.ndarray:
    """The RLE body's spans, normalized (sorted, overlaps merged), after checking them
    against the edited label's voxel bounding box ``lo..hi`` (inclusive, x, y, z) and its
    voxel count: a span leaving the box, or more voxels than the label has, can't lie in
    it (400). These vectorized checks run before any loop whose length depends on the
    spans, so a 28-byte body can't ask for 2**31 voxels of work."""
    try:
        spans = decode_rles(call.body)
    except ValueError as e:
        raise BadRequest(f"bad RLE body: {e}") from None
    s = spans.astype(np.int64)
    s = s[s[:, 3] > 0]
    if s.shape[0] == 0:
        raise BadRequest("RLE body has no voxels")
    first = s[:, :3]
    last = first.copy()
    last[:, 0] += s[:, 3] - 1
    out = ((first < lo) | (last > hi)).any(axis=1)
    if out.any():
        x, y, z, n = (int(v) for v in s[int(np.argmax(out))])
        raise BadRequest(f"split RLE span (x={x}, y={y}, z={z}, length {n}) leaves the "
                         f"bounding box {lo.tolist()}..{hi.tolist()} of {what}")
    spans = normalize_spans(s)
    total = int(spans[:, 3].astype(np.int64).sum())
    if total > voxels:
        raise BadRequest(f"split RLE covers {total} voxels, more than the {voxels} of {what}")
    return spans


def _voxel_box(coords: np.ndarray, bs: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive voxel bounding box (x, y, z) of scale-0 block coordinates."""
    b = np.array(bs, dtype=np.int64)
    c = coords.astype(np.int64)
    return c.min(axis=0) * b, (c.max(axis=0) + 1) * b - 1


def _span_pieces(spans: np.ndarray, bs: tuple[int, int, int],
                 ) -> tuple[np.ndarray, dict[Coord, np.ndarray]]:
    """Spans cut at block boundaries: ``(unique block coords (B, 3), {block: its span
    pieces (P, 4)})``. Vectorized; the number of pieces is at most the number of spans
    plus the voxels they cover divided by the block width."""
    s = spans.astype(np.int64)
    bx0 = s[:, 0] // bs[0]
    bx1 = (s[:, 0] + s[:, 3] - 1) // bs[0]
    n = bx1 - bx0 + 1
    rep = np.repeat(np.arange(s.shape[0]), n)
    bx = bx0[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n))
    x0 = np.maximum(s[rep, 0], bx * bs[0])
    x1 = np.minimum(s[rep, 0] + s[rep, 3], (bx + 1) * bs[0])
    coords = np.stack([bx, s[rep, 1] // bs[1], s[rep, 2] // bs[2]], axis=1)
    pieces = np.stack([x0, s[rep, 1], s[rep, 2], x1 - x0], axis=1)
    # x-major order, as np.unique sorts rows, so each block's pieces are one slice
    order = np.lexsort((coords[:, 2], coords[:, 1], coords[:, 0]))
    coords, pieces = coords[order], pieces[order]
    ub, starts = np.unique(coords, axis=0, return_index=True)
    ends = np.append(starts[1:], coords.shape[0])
    by_block = {(int(c[0]), int(c[1]), int(c[2])): pieces[a:b]
                for c, a, b in zip(ub, starts.tolist(), ends.tolist(), strict=True)}
    return ub, by_block


def morton_order(coords: np.ndarray) -> np.ndarray:
    """Indices sorting ``(N, 3)`` block coordinates in Morton (Z-curve) order, so that
    blocks sharing a parent at every lower scale are contiguous (at every scale when the
    coordinates span under 2**20 blocks per axis; wider sets are ordered by their top 21
    bits)."""
    c = coords.astype(np.int64)
    lo = c.min(axis=0)
    k = max(1, int((c.max(axis=0) - lo).max()).bit_length())
    c = c - ((lo >> k) << k)  # a multiple of 2**k: parents stay aligned; 0 <= c < 2**(k+1)
    drop = max(0, k + 1 - 21)  # 3 x 21 bits fill the code; coarser order beyond that
    c >>= drop
    code = np.zeros(c.shape[0], dtype=np.uint64)
    for b in range(k + 1 - drop):
        for axis in range(3):
            bit = ((c[:, axis] >> b) & 1).astype(np.uint64)
            code |= bit << np.uint64(3 * b + axis)
    return np.argsort(code, kind="stable")


class WritesMixin(LabelmapCore):
    """POST endpoints of labelmap."""

    # ----- block writes -----------------------------------------------------------------

    def write_blocks(self, ctx: VersionedCtx, scale: int, blocks: dict[Coord, Any],
                     *, index: bool, downres: bool,
                     values: dict[Coord, bytes] | None = None,
                     mutid: int | None = None,
                     old: dict[Coord, np.ndarray] | None = None) -> int:
        """Store supervoxel blocks at ``scale`` in one batch; at scale 0 also update
        label indices (``index``), max labels, extents and (``downres``) lower scales,
        and publish ``block-ingested`` / ``block-mutated``. ``values`` are already encoded
        stored values of some blocks (at scale > 0 the array of such a block is not read
        and may be None), ``old`` the stored blocks they replace when the caller has read
        them. Returns the mutation id (a new one unless given)."""
        values = values or {}
        with self.lock:
            coords = np.array(list(blocks), dtype=np.int64).reshape(-1, 3)
            if old is None:
                old = self.read_blocks(ctx, scale, coords, False) if scale == 0 else {}
            if mutid is None:
                mutid = self.manager.next_mutation_id(self.repo)
            stored, counts = self._encode_blocks(blocks, values, counts=scale == 0)
            with self.label_batch(ctx) as b:
                for c, v in stored.items():
                    b.put(L.block_tkey(scale, *c), v)
                if scale == 0:
                    if index and self.indexed:
                        self.index_block_changes(
                            ctx, b, ((c, self.label_counts(old.get(c)), counts[c])
                                     for c in blocks), mutid)
                    top = max((int(lab[-1]) for lab, _ in counts.values()), default=0)
                    self.note_labels(ctx, b, top)
                    bs = self.block_size
                    lo = [int(coords[:, i].min()) * bs[i] for i in range(3)]
                    hi = [(int(coords[:, i].max()) + 1) * bs[i] - 1 for i in range(3)]
                    self.grow_extents(ctx, b, lo, hi)
                    if downres:
                        for (s, c), arr in self.downres(ctx, blocks).items():
                            b.put(L.block_tkey(s, *c), self.encode_value(arr))
        if scale == 0:
            ing = [{"coord": c, "prev": None, "data": a} for c, a in blocks.items()
                   if c not in old]
            mut = [{"coord": c, "prev": old[c], "data": a} for c, a in blocks.items()
                   if c in old]
            if ing:
                self.emit(ctx, "block-ingested", {"scale": 0, "blocks": ing}, mutid)
            if mut:
                self.emit(ctx, "block-mutated", {"scale": 0, "blocks": mut}, mutid)
        return mutid

    def _encode_blocks(self, blocks: dict[Coord, np.ndarray], values: dict[Coord, bytes],
                       counts: bool) -> tuple[dict[Coord, bytes],
                                              dict[Coord, tuple[np.ndarray, np.ndarray]]]:
        """Stored values of ``blocks`` (``values`` holds those already encoded) and, when
        ``counts``, each block's (labels, voxel counts), from the same encoding pass."""
        stored: dict[Coord, bytes] = {}
        tables: dict[Coord, tuple[np.ndarray, np.ndarray]] = {}
        for c, arr in blocks.items():
            v = values.get(c)
            if v is not None:
                stored[c] = v
                if counts:
                    tables[c] = self.label_counts(arr)
            elif counts:
                ser, labels, cnt = encode_block_counts(arr)
                stored[c] = self.stored_value(ser)
                tables[c] = (labels, cnt)
            else:
                stored[c] = self.encode_value(arr)
        return stored, tables

    def batch_blocks(self) -> int:
        """Blocks per bulk-write batch: ``writeBatchBytes`` of uint64 voxels (at least 1)."""
        per_block = 8 * self.block_size[0] * self.block_size[1] * self.block_size[2]
        return max(1, self.manager.settings.write_batch_bytes // per_block)

    def write_blocks_batched(self, ctx: VersionedCtx, scale: int, coords: np.ndarray,
                             make: Any, *, index: bool, downres: bool) -> None:
        """Write the blocks at ``coords`` in batches of :meth:`batch_blocks`, in Morton
        order, under the instance lock, with one mutation id for all of them.

        ``make(batch_coords, old)`` builds one batch: ``(blocks, stored values)`` as for
        :meth:`write_blocks` (``old``: the stored scale-0 blocks of the batch, read once
        here; empty at other scales). Blocks it leaves out are not written. Everything
        that can be rejected must be checked before this is called.
        """
        if coords.shape[0] == 0:
            return
        coords = coords[morton_order(coords)]
        n = self.batch_blocks()
        with self.lock:
            mutid = self.manager.next_mutation_id(self.repo)
            for i in range(0, coords.shape[0], n):
                chunk = coords[i:i + n]
                old = self.read_blocks(ctx, scale, chunk, False) if scale == 0 else {}
                blocks, values = make(chunk, old)
                if blocks:
                    self.write_blocks(ctx, scale, blocks, index=index, downres=downres,
                                      values=values, mutid=mutid, old=old)

    def write_subvolume(self, ctx: VersionedCtx, offset: tuple[int, int, int],
                        vol: np.ndarray) -> None:
        """Write the ``(nz, ny, nx)`` uint64 supervoxel ids of a box at scale 0, aligned or
        not (edge blocks are read-modify-written from the stored blocks the batch reads),
        with indices, extents, max label and lower scales as ``POST raw`` does; 400 when
        the box leaves the block-key space. Used by the Boss API's cutouts."""
        nz, ny, nx = vol.shape
        size = (nx, ny, nz)
        self.check_box(offset, size, "write")
        bs = self.block_size
        pieces = {p.coord: p for p in iter_block_pieces(offset, size, bs)}
        coords = np.array(list(pieces), dtype=np.int64).reshape(-1, 3)
        self.check_block_coords(coords, 0)
        arr = np.asarray(vol, dtype=np.uint64)

        def make(chunk: np.ndarray, old: dict[Coord, np.ndarray],
                 ) -> tuple[dict[Coord, np.ndarray], dict[Coord, bytes]]:
            blocks: dict[Coord, np.ndarray] = {}
            for c in chunk.tolist():
                c = (c[0], c[1], c[2])
                p = pieces[c]
                if p.full:
                    blocks[c] = np.ascontiguousarray(arr[p.volume_slices])
                    continue
                prev = old.get(c)
                new = np.zeros(self.block_shape, np.uint64) if prev is None else prev.copy()
                new[p.block_slices] = arr[p.volume_slices]
                blocks[c] = new
            return blocks, {}

        self.write_blocks_batched(ctx, 0, coords, make, index=True, downres=True)

    def reserve_labels(self, ctx: VersionedCtx, n: int) -> int:
        """Reserve ``n`` (1..2^32) new label ids; the first (``POST nextlabel``)."""
        self.require_indexed("nextlabel")
        if not 1 <= n <= 2**32:
            raise BadRequest("nextlabel count must be 1..2^32")
        with self.lock, self.label_batch(ctx) as b:
            return self.allocate(ctx, b, n)

    @endpoint("POST", "raw/{dims}/{size}/{offset}", "Write block-aligned supervoxel ids",
              params=(DIMS, SIZE, OFFSET), returns=TEXT,
              body=Body(OCTET, "uint64 LE supervoxel ids in ZYX order (nx*ny*nz*8 bytes "
                               "before compression)"),
              query=(Q("compression", "str", "body encoding: none (default), lz4 (one raw "
                                             "LZ4 block) or gzip",
                       enum=("none", "lz4", "gzip")),
                     Q(ROI.name, "str", "name of an roi instance: only voxels inside it "
                                        "change (400 when it does not exist)")))
    def _post_raw(self, call: Call) -> Response:
        """Updates label indices, extents, max label and every lower scale. The whole body
        is validated (size, alignment, block-key limits, decompression, ``roi=``) before
        the first of the bounded batches is written."""
        if call.params["dims"] != "0_1_2":
            raise BadRequest("labelmap POST raw only accepts 3-D 0_1_2 subvolumes")
        size, offset = self.box3(call, "POST raw")
        bs = self.block_size
        if not is_block_aligned(offset, size, bs):
            raise BadRequest(f"POST raw subvolume {size} at {offset} must be non-empty and "
                             f"aligned to the block size {bs}")
        coords = blocks_in_box(offset, size, bs)
        self.check_block_coords(coords, 0)
        n = size[0] * size[1] * size[2]
        comp = call.params["compression"] or "none"
        data: bytes | bytearray = call.body
        try:
            if comp == "lz4":
                data = lz4_decompress(call.body, n * 8)
            elif comp == "gzip":
                data = L.gunzip(call.body, n * 8 + 1)
        except (CodecError, ValueError) as e:
            raise BadRequest(f"bad {comp} body: {e}") from None
        if len(data) != n * 8:
            raise BadRequest(f"POST raw body has {len(data)} bytes, expected {n * 8} "
                             f"(uint64 voxels of {size})")
        mask = self.roi_mask(call, 0, offset, size)
        vol = np.frombuffer(data, dtype="<u8").reshape(size[2], size[1], size[0])
        o = np.array(offset, dtype=np.int64)
        b = np.array(bs, dtype=np.int64)

        def make(chunk: np.ndarray, old: dict[Coord, np.ndarray],
                 ) -> tuple[dict[Coord, np.ndarray], dict[Coord, bytes]]:
            blocks: dict[Coord, np.ndarray] = {}
            for c, (x0, y0, z0) in zip(chunk.tolist(), (chunk * b - o).tolist(), strict=True):
                sl = (slice(z0, z0 + bs[2]), slice(y0, y0 + bs[1]), slice(x0, x0 + bs[0]))
                c = (c[0], c[1], c[2])
                if mask is None:
                    blocks[c] = vol[sl]
                    continue
                m = mask[sl]
                if not m.any():
                    continue
                if m.all():
                    blocks[c] = vol[sl]
                    continue
                prev = old.get(c)
                new = np.zeros(self.block_shape, np.uint64) if prev is None else prev.copy()
                new[m] = vol[sl][m]
                blocks[c] = new
            return blocks, {}

        self.write_blocks_batched(call.ctx, 0, coords, make, index=True, downres=True)
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "blocks", "Write gzip'd DVID label blocks", body=BLOCKS_BODY,
              returns=TEXT, query=(
                  SCALE, Q("downres", "bool", "recompute lower scales (scale 0 only)"),
                  Q("noindexing", "bool", "leave label indices alone"),
                  Q("compression", "str", "the only accepted payload encoding",
                    enum=("blocks",))))
    def _post_blocks(self, call: Call) -> Response:
        """At scale 0 also updates label indices (unless ``noindexing``), extents and the
        max label, and publishes ingest/mutate events; with ``downres=true`` lower scales
        are recomputed. The whole stream is validated before the first batch is written."""
        scale = self.scale_arg(call)
        downres = flag(call, "downres")
        if downres and scale != 0:
            raise BadRequest("downres=true is only allowed with scale=0")
        recs = self.parse_block_stream(call, scale, self.batch_blocks())
        self.write_records(call.ctx, scale, recs, index=not flag(call, "noindexing"),
                           downres=downres)
        return Response(b"", media_type="text/plain")

    def _decode_posted(self, c: Coord, payload: memoryview) -> np.ndarray:
        """The voxels of one posted gzip'd label block; 400 naming it when bad."""
        if len(payload) == 0:
            raise BadRequest(f"block {c} has a zero-length payload")
        try:
            ser = L.gunzip(payload, max_serialization_size(self.block_shape))
            return decode_block(ser, self.block_shape)
        except ValueError as e:
            raise BadRequest(f"block {c}: bad gzipped label block: {e}") from None

    def parse_block_stream(self, call: Call, scale: int, keep: int,
                           ) -> dict[Coord, tuple[memoryview, np.ndarray | None]]:
        """Decode and validate a ``POST blocks`` body completely: ``{coord: (gzip payload,
        voxels or None)}`` in stream order; 400 for a bad stream, a block coordinate the
        keys can't hold at ``scale``, an empty payload, bad gzip or a bad block (wrong
        size, corrupt serialization), 413 when the blocks hold more than
        :attr:`voxel_limit` voxels. A repeated coordinate keeps its last record. The
        voxels of only the first ``keep`` blocks are kept (the others are decoded again
        when written), so memory stays at one batch whatever the compression ratio."""
        try:
            recs = decode_records(call.body)
        except ValueError as e:
            raise BadRequest(f"bad block stream: {e}") from None
        if recs:
            coords = [(r.x, r.y, r.z) for r in recs]
            self.check_block_coords(coords, scale)
            bx, by, bz = self.block_size
            self.check_voxels(len(set(coords)) * bx * by * bz, "block stream")
        out: dict[Coord, tuple[memoryview, np.ndarray | None]] = {}
        for r in recs:
            c = (r.x, r.y, r.z)
            arr = self._decode_posted(c, r.payload)
            out.pop(c, None)
            out[c] = (r.payload, arr if len(out) < keep else None)
        return out

    def write_records(self, ctx: VersionedCtx, scale: int,
                      recs: dict[Coord, tuple[memoryview, np.ndarray | None]], *,
                      index: bool, downres: bool) -> None:
        """Store validated posted blocks (:meth:`parse_block_stream`) in bounded batches,
        their gzip payloads as posted."""
        if not recs:
            return
        coords = np.array(list(recs), dtype=np.int64).reshape(-1, 3)
        crc = self.meta.checksum == "crc32"

        def make(chunk: np.ndarray, old: dict[Coord, np.ndarray],
                 ) -> tuple[dict[Coord, np.ndarray], dict[Coord, bytes]]:
            blocks, values = {}, {}
            for x, y, z in chunk.tolist():
                c = (x, y, z)
                payload, arr = recs[c]
                if arr is None and scale == 0:  # voxels are needed for indices and downres
                    arr = self._decode_posted(c, payload)
                blocks[c] = arr
                values[c] = L.frame_gzip_payload(payload, crc)
            return blocks, values

        self.write_blocks_batched(ctx, scale, coords, make, index=index, downres=downres)

    # ----- merge / cleave ---------------------------------------------------------------

    @endpoint("POST", "merge", "Merge bodies into the first", body=Body(
        JSON, "[target, merged1, merged2, ...] body ids", schema=labels_schema([1, 2], 2)))
    def _merge(self, call: Call) -> Any:
        self.require_indexed("merge")
        labels = label_list_json(call.json(), "labels to merge")
        if len(labels) < 2:
            raise BadRequest("merge needs [target, merged1, ...] with at least 2 labels")
        target, merged = labels[0], list(dict.fromkeys(labels[1:]))
        if 0 in labels:
            raise BadRequest("label 0 (background) can't be merged")
        if target in merged:
            raise BadRequest(f"merge target {target} also appears among the merged labels")
        ctx = call.ctx
        with self.lock:
            tidx = self.get_index(ctx, target)
            if tidx is None or not len(tidx.blocks):
                raise BadRequest(f"merge target label {target} does not exist")
            midx = []
            for m in merged:
                idx = self.get_index(ctx, m)
                if idx is None or not len(idx.blocks):
                    raise BadRequest(f"merged label {m} does not exist")
                midx.append(idx)
            mutid = self.manager.next_mutation_id(self.repo)
            changes: dict[int, int] = {}
            sv_by_label: dict[int, list[int]] = {}
            blocks: set[int] = set()
            b = self.store.batch(ctx)
            enc = MappingCache.encode(target)
            for m, idx in zip(merged, midx, strict=True):
                svs: set[int] = set()
                for bk, svc in idx.blocks.items():
                    svs.update(svc.counts.keys())
                    blocks.add(bk)
                    tidx.blocks[bk].counts.update(svc.counts)
                sv_by_label[m] = sorted(svs)
                for sv in svs:
                    b.put(L.mapping_tkey(sv), enc)
                    changes[sv] = target
                b.delete(L.index_tkey(m))
            self.put_index(ctx, b, tidx, mutid)
            self.log_mutation(ctx, b, mutid, {"Action": "merge", "Target": target,
                                              "Labels": merged})
            b.commit()
            self.mapping.update(ctx.version, changes)
        self.emit(ctx, "merge", {"target": target, "merged": merged,
                                 "supervoxels": sv_by_label,
                                 "block_keys": sorted(blocks)}, mutid)
        return {"MutationID": mutid}

    @endpoint("POST", "cleave/{label}", "Move some supervoxels of a body to a new body",
              params=(LABEL,), body=Body(JSON, "[sv1, sv2, ...] supervoxels of the body",
                                         schema=labels_schema([1])))
    def _cleave(self, call: Call) -> Any:
        self.require_indexed("cleave")
        label = nonzero(call.params["label"])
        cleaved = list(dict.fromkeys(label_list_json(call.json(), "supervoxels to cleave")))
        if not cleaved:
            raise BadRequest("cleave needs a non-empty list of supervoxels")
        if 0 in cleaved:
            raise BadRequest("supervoxel 0 (background) can't be cleaved")
        ctx = call.ctx
        with self.lock:
            idx = self.require_index(ctx, label, "cleave")
            bk, sv, cn = L.index_arrays(idx)
            body_svs = np.unique(sv)
            want = np.array(cleaved, dtype=np.uint64)
            missing = want[~np.isin(want, body_svs)]
            if missing.size:
                raise BadRequest(f"supervoxels {missing[:10].tolist()} are not part of "
                                 f"label {label}")
            if np.isin(body_svs, want).all():
                raise BadRequest(f"cleave would remove every supervoxel of label {label}")
            mutid = self.manager.next_mutation_id(self.repo)
            with self.label_batch(ctx) as b:
                new = self.allocate(ctx, b, 1)
                move = np.isin(sv, want)
                nidx = protos.LabelIndex(label=new)
                for k, v, c in zip(bk[move].tolist(), sv[move].tolist(), cn[move].tolist(),
                                   strict=True):
                    nidx.blocks[k].counts[v] = c
                    counts = idx.blocks[k].counts
                    del counts[v]
                    if not len(counts):
                        del idx.blocks[k]
                self.put_index(ctx, b, idx, mutid)
                self.put_index(ctx, b, nidx, mutid)
                enc = MappingCache.encode(new)
                for v in cleaved:
                    b.put(L.mapping_tkey(v), enc)
                csize = int(cn[move].sum())
                self.log_mutation(ctx, b, mutid, {
                    "Action": "cleave", "OrigLabel": label, "CleavedLabel": new,
                    "CleavedSupervoxels": cleaved, "CleavedSize": csize,
                    "RemainSize": int(cn.sum()) - csize})
            self.mapping.update(ctx.version, dict.fromkeys(cleaved, new))
        self.emit(ctx, "cleave", {"orig": label, "cleaved": new, "supervoxels": cleaved,
                                  "block_keys": np.unique(bk[move]).tolist()}, mutid)
        return {"CleavedLabel": new, "MutationID": mutid}

    # ----- splits -----------------------------------------------------------------------

    def _given_id(self, call: Call, name: str, ctx: VersionedCtx) -> int | None:
        v = call.params.get(name)
        if v is None:
            return None
        nonzero(v, name)
        if self.get_index(ctx, v) is not None or self.mapping.lookup(ctx, [v])[v] != v:
            raise BadRequest(f"{name} id {v} is already in use")
        return v

    def _split_masks(self, ctx: VersionedCtx, pieces: dict[Coord, np.ndarray],
                     coords: np.ndarray, labels: np.ndarray, total: int,
                     ) -> tuple[dict[Coord, np.ndarray], dict[Coord, np.ndarray], int]:
        """For each block at ``coords``: its supervoxels and the mask of split voxels
        inside ``labels`` (``pieces``: the RLE cut per block, :func:`_span_pieces`); plus
        how many of the ``total`` RLE voxels fall outside ``labels``."""
        bs = self.block_size
        arrs = self.read_blocks(ctx, 0, coords, False)
        masks: dict[Coord, np.ndarray] = {}
        inside = 0
        for c, arr in arrs.items():
            sp = pieces.get(c)
            if sp is None:
                continue
            m = spans_to_mask(sp, self.block_shape, (c[0] * bs[0], c[1] * bs[1], c[2] * bs[2]))
            m &= np.isin(arr, labels)
            n = int(m.sum())
            if n:
                masks[c] = m
                inside += n
        return arrs, masks, total - inside

    @endpoint("POST", "split-supervoxel/{supervoxel}", "Split a supervoxel in two along an "
              "RLE", params=(SUPERVOXEL,), body=RLE_BODY, query=(
                  Q("split", "label", "id for the split part (default: newly allocated)"),
                  Q("remain", "label", "id for the remainder (default: newly allocated)"),
                  Q("downres", "str", "false skips recomputing lower scales",
                    default="true")))
    def _split_supervoxel(self, call: Call) -> Any:
        """Every RLE voxel must lie in the supervoxel (400 otherwise, checked against its
        bounding box and size before any per-span work)."""
        self.require_indexed("split-supervoxel")
        sv = nonzero(call.params["supervoxel"], "supervoxel")
        downres = call.params["downres"].lower() != "false"
        ctx = call.ctx
        with self.lock:
            split_id = self._given_id(call, "split", ctx)
            remain_id = self._given_id(call, "remain", ctx)
            if split_id is not None and split_id == remain_id:
                raise BadRequest("split and remain ids must differ")
            body = self.mapping.lookup(ctx, [sv])[sv]
            idx = self.get_index(ctx, body) if body else None
            if idx is None:
                raise BadRequest(f"supervoxel {sv} does not exist")
            bk, svs, cn = L.index_arrays(idx)
            rows = svs == sv
            if not rows.any():
                raise BadRequest(f"supervoxel {sv} does not exist")
            coords = decode_block_coords(bk[rows]).astype(np.int64)
            lo, hi = _voxel_box(coords, self.block_size)
            spans = _spans(call, lo, hi, int(cn[rows].sum()), f"supervoxel {sv}")
            _, pieces = _span_pieces(spans, self.block_size)
            arrs, masks, outside = self._split_masks(
                ctx, pieces, coords, np.array([sv], dtype=np.uint64),
                int(spans[:, 3].astype(np.int64).sum()))
            if outside:
                raise BadRequest(f"split RLE has {outside} voxels outside supervoxel {sv}")
            if not masks:
                raise BadRequest(f"split RLE covers no voxel of supervoxel {sv}")
            mutid = self.manager.next_mutation_id(self.repo)
            with self.label_batch(ctx) as b:
                if split_id is None or remain_id is None:
                    start = self.allocate(ctx, b, 2)
                    split_id = split_id if split_id is not None else start
                    remain_id = remain_id if remain_id is not None else start + 1
                    if split_id == remain_id:
                        remain_id = start
                self.note_labels(ctx, b, max(split_id, remain_id))
                new_blocks: dict[Coord, np.ndarray] = {}
                split_size = remain_size = 0
                for k, c in zip(bk[rows].tolist(), coords.tolist(), strict=True):
                    c = tuple(c)
                    arr = arrs[c]
                    is_sv = arr == sv
                    sm = masks.get(c)
                    new = arr.copy()
                    if sm is None:
                        new[is_sv] = remain_id
                        ns, nr = 0, int(is_sv.sum())
                    else:
                        new[sm] = split_id
                        rm = is_sv & ~sm
                        new[rm] = remain_id
                        ns, nr = int(sm.sum()), int(rm.sum())
                    new_blocks[c] = new
                    counts = idx.blocks[k].counts
                    del counts[sv]
                    if ns:
                        counts[split_id] = ns
                    if nr:
                        counts[remain_id] = nr
                    split_size += ns
                    remain_size += nr
                for c, arr in new_blocks.items():
                    b.put(L.block_tkey(0, *c), self.encode_value(arr))
                if downres:
                    for (s, c), arr in self.downres(ctx, new_blocks).items():
                        b.put(L.block_tkey(s, *c), self.encode_value(arr))
                self.put_index(ctx, b, idx, mutid)
                changes = {split_id: body, remain_id: body, sv: 0}
                for k2, v2 in changes.items():
                    b.put(L.mapping_tkey(k2), MappingCache.encode(v2))
                ref = self.put_blob(ctx, encode_srles(spans), b)
                self.log_mutation(ctx, b, mutid, {
                    "Action": "split-supervoxel", "Supervoxel": sv, "Body": body,
                    "SplitSupervoxel": split_id, "RemainSupervoxel": remain_id,
                    "Split": ref, "SplitSize": split_size, "RemainSize": remain_size})
            self.mapping.update(ctx.version, changes)
        self.emit(ctx, "split-supervoxel", {
            "supervoxel": sv, "body": body, "split": split_id, "remain": remain_id,
            "blocks": sorted(new_blocks)}, mutid)
        return {"SplitSupervoxel": split_id, "RemainSupervoxel": remain_id,
                "MutationID": mutid}

    @endpoint("POST", "split/{label}", "Split the voxels of an RLE off a body into a new "
              "body", params=(LABEL,), body=RLE_BODY)
    def _split(self, call: Call) -> Any:
        """The RLE must be a strict, non-empty subset of the body (checked against its
        bounding box and size before any per-span work)."""
        self.require_indexed("split")
        label = nonzero(call.params["label"])
        ctx = call.ctx
        bs = self.block_size
        with self.lock:
            idx = self.require_index(ctx, label, "split")
            bk, svs, cn = L.index_arrays(idx)
            body_svs = np.unique(svs)
            body_blocks = decode_block_coords(np.unique(bk)).astype(np.int64)
            lo, hi = _voxel_box(body_blocks, bs)
            spans = _spans(call, lo, hi, int(cn.sum()), f"label {label}")
            sb, pieces = _span_pieces(spans, bs)
            bset = {tuple(c) for c in body_blocks.tolist()}
            coords = np.array([c for c in sb.tolist() if tuple(c) in bset],
                              dtype=np.int64).reshape(-1, 3)
            arrs, masks, outside = self._split_masks(
                ctx, pieces, coords, body_svs, int(spans[:, 3].astype(np.int64).sum()))
            if outside:
                raise BadRequest(f"split RLE has {outside} voxels outside label {label}")
            split_total = sum(int(m.sum()) for m in masks.values())
            if split_total == 0:
                raise BadRequest(f"split RLE covers no voxel of label {label}")
            if split_total >= int(cn.sum()):
                raise BadRequest("split must leave some voxels in the original label")
            # split voxels per supervoxel
            sv_split: dict[int, int] = {}
            for c, m in masks.items():
                u, k = np.unique(arrs[c][m], return_counts=True)
                for a, n in zip(u.tolist(), k.tolist(), strict=True):
                    sv_split[a] = sv_split.get(a, 0) + n
            u_sv, inv = np.unique(svs, return_inverse=True)
            tot = np.zeros(u_sv.size, dtype=np.uint64)
            np.add.at(tot, inv, cn)
            sizes = dict(zip(u_sv.tolist(), tot.tolist(), strict=True))
            whole = [s for s, n in sv_split.items() if n == sizes[s]]
            partial = [s for s, n in sv_split.items() if n < sizes[s]]
            mutid = self.manager.next_mutation_id(self.repo)
            with self.label_batch(ctx) as b:
                start = self.allocate(ctx, b, 1 + 2 * len(partial))
                new = start
                smap = {s: start + 1 + 2 * i for i, s in enumerate(partial)}
                rmap = {s: start + 2 + 2 * i for i, s in enumerate(partial)}
                # rewrite blocks holding partially split supervoxels
                new_blocks: dict[Coord, np.ndarray] = {}
                pset = np.array(partial, dtype=np.uint64)
                if partial:
                    pcoords = decode_block_coords(
                        np.unique(bk[np.isin(svs, pset)])).astype(np.int64)
                    have = {tuple(c) for c in pcoords.tolist()}
                    missing = [c for c in have if c not in arrs]
                    if missing:
                        arrs.update(self.read_blocks(ctx, 0, np.array(missing), False))
                    for c in have:
                        arr = arrs[c]
                        u, inv = np.unique(arr, return_inverse=True)
                        inv = inv.reshape(arr.shape)
                        sm_tab = u.copy()
                        rm_tab = u.copy()
                        for i, a in enumerate(u.tolist()):
                            if a in smap:
                                sm_tab[i] = smap[a]
                                rm_tab[i] = rmap[a]
                        m = masks.get(c)
                        nb = rm_tab[inv] if m is None else np.where(m, sm_tab[inv], rm_tab[inv])
                        new_blocks[c] = nb
                # new index rows
                keep = ~np.isin(svs, np.array(whole + partial, dtype=np.uint64))
                old_rows = [(bk[keep], svs[keep], cn[keep])]
                wrows = np.isin(svs, np.array(whole, dtype=np.uint64))
                new_rows = [(bk[wrows], svs[wrows], cn[wrows])]
                for c, nb in new_blocks.items():
                    key = L.block_key(*c)
                    u, k = np.unique(nb, return_counts=True)
                    for a, n in zip(u.tolist(), k.tolist(), strict=True):
                        row = (np.array([key], np.uint64), np.array([a], np.uint64),
                               np.array([n], np.uint64))
                        if a in smap.values():
                            new_rows.append(row)
                        elif a in rmap.values():
                            old_rows.append(row)
                oidx = self._index_from_rows(label, old_rows, idx)
                nidx = self._index_from_rows(new, new_rows, None)
                self.put_index(ctx, b, oidx, mutid)
                self.put_index(ctx, b, nidx, mutid)
                for c, nb in new_blocks.items():
                    b.put(L.block_tkey(0, *c), self.encode_value(nb))
                for (s, c), arr in self.downres(ctx, new_blocks).items():
                    b.put(L.block_tkey(s, *c), self.encode_value(arr))
                changes: dict[int, int] = dict.fromkeys(whole, new)
                for s in partial:
                    changes[smap[s]] = new
                    changes[rmap[s]] = label
                    changes[s] = 0
                for k2, v2 in changes.items():
                    b.put(L.mapping_tkey(k2), MappingCache.encode(v2))
                ref = self.put_blob(ctx, encode_srles(spans), b)
                self.log_mutation(ctx, b, mutid, {
                    "Action": "split", "Target": label, "NewLabel": new, "Split": ref,
                    "SVSplits": {str(s): {"Split": smap[s], "Remain": rmap[s]}
                                 for s in partial}})
            self.mapping.update(ctx.version, changes)
        self.emit(ctx, "split", {"target": label, "new": new, "whole": whole,
                                 "svsplits": {s: (smap[s], rmap[s]) for s in partial},
                                 "blocks": sorted(new_blocks)}, mutid)
        return {"label": new, "MutationID": mutid}

    @staticmethod
    def _index_from_rows(label: int, rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                         like: Any) -> Any:
        idx = protos.LabelIndex(label=label)
        for bks, svs, cns in rows:
            for k, v, c in zip(bks.tolist(), svs.tolist(), cns.tolist(), strict=True):
                if c:
                    idx.blocks[k].counts[v] = c
        return idx

    # ----- labels, mappings, indices ----------------------------------------------------

    @endpoint("POST", "nextlabel/{count}", "Reserve count new label ids: {start, end}",
              params=(Param("count", "uint64", "ids to reserve (1..2^32)"),))
    def _post_nextlabel(self, call: Call) -> Any:
        n = call.params["count"]
        start = self.reserve_labels(call.ctx, n)
        return {"start": start, "end": start + n - 1}

    @endpoint("POST", "maxlabel/{maxlabel}", "Raise this version's max label",
              params=(Param("maxlabel", "label", "the new max label (ignored if not larger; "
                                                 "not 0)"),), returns=TEXT)
    def _post_maxlabel(self, call: Call) -> Response:
        v = nonzero(call.params["maxlabel"], "max label")
        with self.lock, self.label_batch(call.ctx) as b:
            self.note_labels(call.ctx, b, v)
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "mappings", "Set supervoxel -> body mappings", returns=TEXT,
              body=Body(PROTOBUF, "protobuf MappingOps"))
    def _post_mappings(self, call: Call) -> Response:
        ops = protos.parse(protos.MappingOps, call.body)
        changes: dict[int, int] = {}
        for op in ops.mappings:
            for sv in op.original:
                if sv == 0:
                    raise BadRequest("supervoxel 0 can't be mapped")
                changes[sv] = op.mapped
        with self.lock:
            b = self.store.batch(call.ctx)
            for sv, body in changes.items():
                b.put(L.mapping_tkey(sv), MappingCache.encode(body))
            b.commit()
            self.mapping.update(call.ctx.version, changes)
        return Response(b"", media_type="text/plain")

    def _put_indices(self, ctx: VersionedCtx, indices: list[Any]) -> None:
        with self.lock:
            mutid = self.manager.next_mutation_id(self.repo)
            with self.label_batch(ctx) as b:
                top = 0
                for idx in indices:
                    if idx.label == 0:
                        raise BadRequest("label index for label 0 is not allowed")
                    if not len(idx.blocks):
                        b.delete(L.index_tkey(idx.label))
                        continue
                    top = max(top, idx.label)
                    b.put(L.index_tkey(idx.label), L.serialize_index(idx))
                self.note_labels(ctx, b, top)
        del mutid

    @endpoint("POST", "index/{label}", "Store a body's LabelIndex (no blocks: delete it)",
              params=(LABEL,), returns=TEXT,
              body=Body(PROTOBUF, "protobuf LabelIndex whose label is {label}"))
    def _post_index(self, call: Call) -> Response:
        label = nonzero(call.params["label"])
        idx = protos.parse(protos.LabelIndex, call.body)
        if idx.label != label:
            raise BadRequest(f"LabelIndex label {idx.label} does not match URL label {label}")
        self._put_indices(call.ctx, [idx])
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "indices", "Store LabelIndex entries (no blocks: delete)",
              returns=TEXT, body=Body(PROTOBUF, "protobuf LabelIndices"))
    def _post_indices(self, call: Call) -> Response:
        idxs = protos.parse(protos.LabelIndices, call.body)
        self._put_indices(call.ctx, list(idxs.indices))
        return Response(b"", media_type="text/plain")
