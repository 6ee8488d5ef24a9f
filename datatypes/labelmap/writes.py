"""Mutating labelmap endpoints: voxel/block writes, proofreading edits, bulk ingestion.

Every handler validates its whole input first, then takes the instance lock, checks the
preconditions that depend on stored state, and writes everything in **one** versioned
batch (blocks, indices, mapping entries, counters, the mutation-log record), so a
rejected request changes nothing. The in-memory mapping cache and counters are updated
only after the batch commits; events are published last.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.responses import Response

from datatypes import protos
from datatypes.common.blockstream import decode_records
from datatypes.common.geometry import is_block_aligned, parse_size, parse_xyz
from datatypes.labelmap import layout as L
from datatypes.labelmap.block_codec import decode_block, encode_block_counts
from datatypes.labelmap.core import LabelmapCore, label_list_json, parse_label
from datatypes.labelmap.mapping import MappingCache
from datatypes.labelmap.rle import (
    decode_block_coords,
    decode_rles,
    encode_srles,
    normalize_spans,
    spans_to_mask,
)
from dvidpy.codec import CodecError, lz4_decompress
from dvidpy.datatype import Call, endpoint
from dvidpy.errors import BadRequest, TooLarge
from dvidpy.versioned import VersionedCtx

Coord = tuple[int, int, int]
MAX_POST_VOXELS = 1 << 28


def _spans(call: Call) -> np.ndarray:
    try:
        spans = decode_rles(call.body)
    except ValueError as e:
        raise BadRequest(f"bad RLE body: {e}") from None
    spans = normalize_spans(spans)
    if spans.shape[0] == 0:
        raise BadRequest("RLE body has no voxels")
    return spans


def _block_spans(spans: np.ndarray, coord: Coord, bs: tuple[int, int, int]) -> np.ndarray:
    """The spans that can intersect block ``coord``."""
    x0, y0, z0 = coord[0] * bs[0], coord[1] * bs[1], coord[2] * bs[2]
    x = spans[:, 0].astype(np.int64)
    keep = ((spans[:, 2] >= z0) & (spans[:, 2] < z0 + bs[2]) & (spans[:, 1] >= y0)
            & (spans[:, 1] < y0 + bs[1]) & (x < x0 + bs[0]) & (x + spans[:, 3] > x0))
    return spans[keep]


def _span_blocks(spans: np.ndarray, bs: tuple[int, int, int]) -> np.ndarray:
    """(B, 3) unique block coords touched by spans (spans may cross X block boundaries)."""
    s = spans.astype(np.int64)
    bx0 = s[:, 0] // bs[0]
    bx1 = (s[:, 0] + s[:, 3] - 1) // bs[0]
    n = bx1 - bx0 + 1
    rep = np.repeat(np.arange(s.shape[0]), n)
    step = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
    c = np.stack([bx0[rep] + step, s[rep, 1] // bs[1], s[rep, 2] // bs[2]], axis=1)
    return np.unique(c, axis=0)


class WritesMixin(LabelmapCore):
    """POST endpoints of labelmap."""

    # ----- block writes -----------------------------------------------------------------

    def write_blocks(self, ctx: VersionedCtx, scale: int, blocks: dict[Coord, np.ndarray],
                     *, index: bool, downres: bool,
                     values: dict[Coord, bytes] | None = None) -> int:
        """Store supervoxel blocks at ``scale`` in one batch; at scale 0 also update
        label indices (``index``), max labels, extents and (``downres``) lower scales,
        and publish ``block-ingested`` / ``block-mutated``. Returns the mutation id."""
        values = values or {}
        with self.lock:
            coords = np.array(list(blocks), dtype=np.int64).reshape(-1, 3)
            old = self.read_blocks(ctx, scale, coords, False) if scale == 0 else {}
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

    @endpoint("POST", "raw/{args*}")
    def _post_raw(self, call: Call) -> Response:
        if call.arg(0, "dims") != "0_1_2":
            raise BadRequest("labelmap POST raw only accepts 3-D 0_1_2 subvolumes")
        try:
            size = parse_size(call.arg(1, "size"))
            offset = parse_xyz(call.arg(2, "offset"))
        except ValueError as e:
            raise BadRequest(str(e)) from None
        bs = self.block_size
        if min(size) <= 0 or not is_block_aligned(offset, size, bs):
            raise BadRequest(f"POST raw subvolume {size} at {offset} must be non-empty and "
                             f"aligned to the block size {bs}")
        n = size[0] * size[1] * size[2]
        if n > MAX_POST_VOXELS:
            raise TooLarge(f"POST raw of {n} voxels exceeds {MAX_POST_VOXELS}")
        comp = call.query.get("compression", "")
        data: bytes | memoryview = call.body
        try:
            if comp == "lz4":
                data = lz4_decompress(call.body, n * 8)
            elif comp == "gzip":
                data = L.gunzip(call.body, n * 8 + 1)
            elif comp not in ("", "none"):
                raise BadRequest(f"unknown compression {comp!r} for POST raw (lz4, gzip)")
        except (CodecError, ValueError) as e:
            raise BadRequest(f"bad {comp} body: {e}") from None
        if len(data) != n * 8:
            raise BadRequest(f"POST raw body has {len(data)} bytes, expected {n * 8} "
                             f"(uint64 voxels of {size})")
        vol = np.frombuffer(data, dtype="<u8").reshape(size[2], size[1], size[0])
        # Blocks are read-only views of the body (the codec reads any strides): no copies.
        nb = [size[i] // bs[i] for i in range(3)]
        grid = vol.reshape(nb[2], bs[2], nb[1], bs[1], nb[0], bs[0]).transpose(0, 2, 4, 1, 3, 5)
        o = [offset[i] // bs[i] for i in range(3)]
        blocks: dict[Coord, np.ndarray] = {
            (o[0] + bx, o[1] + by, o[2] + bz): grid[bz, by, bx]
            for bz in range(nb[2]) for by in range(nb[1]) for bx in range(nb[0])}
        self.write_blocks(call.ctx, 0, blocks, index=True, downres=True)
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "blocks/{args*}")
    def _post_blocks(self, call: Call) -> Response:
        scale = self.scale_arg(call)
        comp = call.query.get("compression", "")
        if comp not in ("", "blocks"):
            raise BadRequest(f"POST blocks only accepts compression=blocks, not {comp!r}")
        downres = call.flag("downres")
        if downres and scale != 0:
            raise BadRequest("downres=true is only allowed with scale=0")
        blocks, values = self.parse_block_stream(call)
        if blocks:
            self.write_blocks(call.ctx, scale, blocks, index=not call.flag("noindexing"),
                              downres=downres, values=values)
        return Response(b"", media_type="text/plain")

    def parse_block_stream(self, call: Call) -> tuple[dict[Coord, np.ndarray],
                                                      dict[Coord, bytes]]:
        """Decode and validate a ``POST blocks`` body completely: ``(blocks, stored
        values)``; 400 for a bad stream, an empty payload, bad gzip or a bad block (wrong
        size, corrupt serialization). A repeated coordinate keeps its last record."""
        try:
            recs = decode_records(call.body)
        except ValueError as e:
            raise BadRequest(f"bad block stream: {e}") from None
        blocks: dict[Coord, np.ndarray] = {}
        values: dict[Coord, bytes] = {}
        crc = self.meta.checksum == "crc32"
        for r in recs:
            c = (r.x, r.y, r.z)
            if len(r.payload) == 0:
                raise BadRequest(f"block {c} has a zero-length payload")
            try:
                ser = L.gunzip(r.payload, 1 << 27)
                arr = decode_block(ser, self.block_shape)
            except ValueError as e:
                raise BadRequest(f"block {c}: bad gzipped label block: {e}") from None
            blocks[c] = arr
            values[c] = L.frame_gzip_payload(r.payload, crc)
        return blocks, values

    # ----- merge / cleave ---------------------------------------------------------------

    @endpoint("POST", "merge/{args*}")
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

    @endpoint("POST", "cleave/{args*}")
    def _cleave(self, call: Call) -> Any:
        self.require_indexed("cleave")
        label = parse_label(call.arg(0, "label"))
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
        if name not in call.query:
            return None
        v = parse_label(call.query[name], name)
        if self.get_index(ctx, v) is not None or self.mapping.lookup(ctx, [v])[v] != v:
            raise BadRequest(f"{name} id {v} is already in use")
        return v

    def _split_masks(self, ctx: VersionedCtx, spans: np.ndarray, coords: np.ndarray,
                     labels: np.ndarray) -> tuple[dict[Coord, np.ndarray], dict[Coord, np.ndarray],
                                                   int]:
        """For each block: its supervoxels and the mask of split voxels inside ``labels``;
        plus how many RLE voxels fall outside ``labels``."""
        bs = self.block_size
        arrs = self.read_blocks(ctx, 0, coords, False)
        masks: dict[Coord, np.ndarray] = {}
        inside = 0
        for c, arr in arrs.items():
            sp = _block_spans(spans, c, bs)
            if sp.shape[0] == 0:
                continue
            m = spans_to_mask(sp, self.block_shape, (c[0] * bs[0], c[1] * bs[1], c[2] * bs[2]))
            m &= np.isin(arr, labels)
            n = int(m.sum())
            if n:
                masks[c] = m
                inside += n
        total = int(spans[:, 3].astype(np.int64).sum())
        return arrs, masks, total - inside

    @endpoint("POST", "split-supervoxel/{args*}")
    def _split_supervoxel(self, call: Call) -> Any:
        self.require_indexed("split-supervoxel")
        sv = parse_label(call.arg(0, "supervoxel"), "supervoxel")
        spans = _spans(call)
        downres = call.query.get("downres", "true").lower() != "false"
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
            bk, svs, _cn = L.index_arrays(idx)
            rows = svs == sv
            if not rows.any():
                raise BadRequest(f"supervoxel {sv} does not exist")
            coords = decode_block_coords(bk[rows]).astype(np.int64)
            arrs, masks, outside = self._split_masks(
                ctx, spans, coords, np.array([sv], dtype=np.uint64))
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

    @endpoint("POST", "split/{args*}")
    def _split(self, call: Call) -> Any:
        self.require_indexed("split")
        label = parse_label(call.arg(0, "label"))
        spans = _spans(call)
        ctx = call.ctx
        bs = self.block_size
        with self.lock:
            idx = self.require_index(ctx, label, "split")
            bk, svs, cn = L.index_arrays(idx)
            body_svs = np.unique(svs)
            sb = _span_blocks(spans, bs)
            body_blocks = decode_block_coords(np.unique(bk)).astype(np.int64)
            bset = {tuple(c) for c in body_blocks.tolist()}
            coords = np.array([c for c in sb.tolist() if tuple(c) in bset],
                              dtype=np.int64).reshape(-1, 3)
            arrs, masks, outside = self._split_masks(ctx, spans, coords, body_svs)
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

    @endpoint("POST", "nextlabel/{args*}")
    def _post_nextlabel(self, call: Call) -> Any:
        self.require_indexed("nextlabel")
        try:
            n = int(call.arg(0, "label count"))
        except ValueError:
            raise BadRequest("nextlabel/{count} needs an integer count") from None
        if not 1 <= n <= 2**32:
            raise BadRequest("nextlabel count must be 1..2^32")
        with self.lock, self.label_batch(call.ctx) as b:
            start = self.allocate(call.ctx, b, n)
        return {"start": start, "end": start + n - 1}

    @endpoint("POST", "maxlabel/{args*}")
    def _post_maxlabel(self, call: Call) -> Response:
        v = parse_label(call.arg(0, "max label"), "max label")
        with self.lock, self.label_batch(call.ctx) as b:
            self.note_labels(call.ctx, b, v)
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "mappings/{args*}")
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

    @endpoint("POST", "index/{args*}")
    def _post_index(self, call: Call) -> Response:
        label = parse_label(call.arg(0, "label"))
        idx = protos.parse(protos.LabelIndex, call.body)
        if idx.label != label:
            raise BadRequest(f"LabelIndex label {idx.label} does not match URL label {label}")
        self._put_indices(call.ctx, [idx])
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "indices/{args*}")
    def _post_indices(self, call: Call) -> Response:
        idxs = protos.parse(protos.LabelIndices, call.body)
        self._put_indices(call.ctx, list(idxs.indices))
        return Response(b"", media_type="text/plain")
