"""The annotation datatype class: element writes, queries and denormalizations."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from starlette.responses import Response

from datatypes.annotation.elements import (
    KINDS,
    RELS,
    Element,
    ElemList,
    element_from_json,
    parse_element,
    parse_elements,
)
from datatypes.annotation.store import (
    BLOCK_CLASS,
    LABEL_CLASS,
    TAG_CLASS,
    Txn,
    block_tkey,
    class_range,
    decode_block_tkey,
    decode_label_tkey,
    decode_list,
    group_rows,
    label_tkey,
    tag_tkey,
)
from datatypes.annotation.sync import LABEL_EVENT, LABELMAP_EVENTS, Deltas, LabelSource, SyncMixin
from datatypes.common.blockscan import BoxRegion, Region, SpanRegion, scan_region
from datatypes.common.geometry import check_int32_box, parse_xyz
from dvidpy import jsonio
from dvidpy.datatype import Call, Datatype, endpoint, register_datatype
from dvidpy.errors import BadRequest
from dvidpy.http.spec import JSON, TEXT, Body, Param, Q
from dvidpy.http.streams import StreamingResponse
from dvidpy.versioned import VersionedCtx

DEFAULT_BLOCK_SIZE = (64, 64, 64)
_INT3 = {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3}
_ELEMENT = {"type": "object", "required": ["Pos"], "properties": {
    "Pos": _INT3, "Kind": {"type": "string", "enum": list(KINDS)},
    "Tags": {"type": ["array", "null"], "items": {"type": "string"}},
    "Prop": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
    "Rels": {"type": ["array", "null"], "items": {
        "type": "object", "required": ["To"],
        "properties": {"Rel": {"type": "string", "enum": list(RELS)}, "To": _INT3}}}}}
_POS = Param("pos", "coord", "x_y_z voxel position of the element")
_BOX = (Param("size", "size3", "nx_ny_nz voxels"),
        Param("offset", "coord", "x_y_z of the box's first voxel"))
_RELS = Q("relationships", "str", "true: with Rels; verbose: Rels also carry the partner's "
                                  "Kind, Tags and Prop; default: without Rels")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _rel_mode(call: Call) -> str:
    mode = (call.params["relationships"] or "").lower()
    if mode in ("", "false"):
        return ""
    if mode not in ("true", "verbose"):
        raise BadRequest(f"relationships must be true, false or verbose, not {mode!r}")
    return mode


def nr_of(lst: ElemList, idx: np.ndarray | None = None) -> ElemList:
    """The elements of a block list (at ``idx``) in their NR form."""
    sel = lst if idx is None else lst.select(idx)
    return ElemList.build(sel.pos, sel.kind, list(sel.iter_json(nr=True)), sel.cut)


def denormalize(elems: ElemList, bodies: np.ndarray | None) -> dict[bytes, ElemList]:
    """The label and tag lists (TKey -> NR list) of the elements ``elems`` (with Rels):
    one list per non-zero body of ``bodies`` (one per element; None: no label lists,
    the instance is not synced) and one per tag. Elements keep their order in ``elems``;
    an element naming a tag twice is listed once under it."""
    nr = nr_of(elems)
    out: dict[bytes, ElemList] = {}
    if bodies is not None:
        uniq, groups = group_rows(np.asarray(bodies, np.uint64))
        for b, idx in zip(uniq.tolist(), groups, strict=True):
            if b:
                out[label_tkey(b)] = nr.select(idx)
    tags: dict[str, list[int]] = {}
    for i in range(len(elems)):
        j = elems.json_at(i)
        if b'"Tags":null' in j or b'"Tags":[]' in j:
            continue
        for t in dict.fromkeys(element_from_json(j).tags or ()):
            tags.setdefault(t, []).append(i)
    for t, idx in tags.items():
        out[tag_tkey(t)] = nr.select(np.array(idx))
    return out


@register_datatype
class Annotation(SyncMixin, Datatype):
    """The annotation datatype (see the package docstring)."""

    type_name = "annotation"
    type_url = "github.com/janelia-flyem/dvid/datatype/annotation"
    type_version = "0.1"
    default_compression = "none"
    publishes = frozenset({LABEL_EVENT})
    subscribes = {"labelmap": LABELMAP_EVENTS}
    one_sync_of = frozenset({"labelmap"})
    tkey_classes = {
        BLOCK_CLASS: "block (ZYX, offset u32 BE) -> packed elements with Rels",
        LABEL_CLASS: "body (u64 BE) -> packed elements without Rels",
        TAG_CLASS: "tag (UTF-8 + 0x00) -> packed elements without Rels",
        254: "mutation log: version + mutation id -> JSON record",
    }

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.lock = self.instance_lock()  # across servers when coordinated
        self.labels = LabelSource(self)

    # ----- settings -----------------------------------------------------------------------

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        """No type-specific settings; the block size is 64³ until a labelmap is synced."""
        return {"BlockSize": list(DEFAULT_BLOCK_SIZE)}

    def update_settings(self, settings: Mapping[str, str]) -> None:
        """``POST info`` is accepted and ignored (DVID has no annotation properties)."""

    @property
    def block_size(self) -> tuple[int, int, int]:
        """Block size (x, y, z) used to group elements (the synced labelmap's)."""
        b = self.meta.config.get("BlockSize", DEFAULT_BLOCK_SIZE)
        return (int(b[0]), int(b[1]), int(b[2]))

    def check_syncs(self, names: list[str]) -> None:
        """Only labelmap instances, at most one (:attr:`one_sync_of`), with the same block
        size unless no element has been stored yet (then the annotation adopts the
        labelmap's)."""
        super().check_syncs(names)
        insts = self.repo.instances
        lms = [n for n in names if n in insts and insts[n].type_name == "labelmap"]
        if lms:
            bs = tuple(self.repo.instances[lms[0]].block_size)  # type: ignore[attr-defined]
            if bs != self.block_size:
                if self._has_blocks():
                    raise BadRequest(
                        f"labelmap {lms[0]!r} has block size {list(bs)} but annotation "
                        f"{self.meta.name!r} already stores elements in "
                        f"{list(self.block_size)} blocks")
                self.meta.config["BlockSize"] = list(bs)

    def _has_blocks(self) -> bool:
        from dvidpy.keys import instance_prefix
        from storage.base import KeyRange
        pre = instance_prefix(self.meta.instance_id) + bytes((BLOCK_CLASS, 1))
        for _ in self.store.engine.scan(KeyRange.prefix(pre), keys_only=True):
            return True
        return False

    # ----- helpers ------------------------------------------------------------------------

    def block_of(self, pos: np.ndarray) -> np.ndarray:
        """Block coordinates of (N, 3) positions."""
        return np.floor_divide(np.asarray(pos, np.int64).reshape(-1, 3),
                               np.array(self.block_size, np.int64))

    def btk(self, pos: tuple[int, int, int] | np.ndarray) -> bytes:
        """Block TKey holding position ``pos``."""
        b = self.block_of(np.asarray(pos))[0]
        return block_tkey(int(b[0]), int(b[1]), int(b[2]))

    # ----- ROI-filtered transfers (dvidpy push --roi) --------------------------------------

    def tkey_voxel_box(self, tk: bytes) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
        """Voxel box of a block list's block; ``None`` for label/tag lists, the mutation
        log and properties (kept by the key filter, see :meth:`roi_filter_value`)."""
        if len(tk) != 14 or tk[0] != BLOCK_CLASS:
            return None
        x, y, z = decode_block_tkey(tk)
        bx, by, bz = self.block_size
        return (x * bx, y * by, z * bz), ((x + 1) * bx, (y + 1) * by, (z + 1) * bz)

    def describe_key(self, tk: bytes) -> Any:
        """Block lists show as ``{"block": [x, y, z]}``, label lists as ``{"label": id}``,
        tag lists as ``{"tag": name}``."""
        c = tk[:1]
        if c == bytes((BLOCK_CLASS,)):
            return {"block": list(decode_block_tkey(tk))}
        if c == bytes((LABEL_CLASS,)):
            return {"label": decode_label_tkey(tk)}
        if c == bytes((TAG_CLASS,)):
            return {"tag": tk[2:-1].decode("utf-8", "replace")}
        return super().describe_key(tk)

    def diff_summary(self, ctx_from: VersionedCtx, ctx_to: VersionedCtx,
                     changes: list[tuple[bytes, Any, Any]]) -> dict[str, Any]:
        """Elements added, deleted and changed (by position, from the changed block
        lists), and moved (an ``element-move`` on the way to ``to`` whose old position is
        gone and whose new one appeared); label lists whose elements changed."""
        old: dict[tuple[int, ...], bytes] = {}
        new: dict[tuple[int, ...], bytes] = {}
        labels = []
        for tk, a, b in changes:
            if tk[:1] == bytes((LABEL_CLASS,)):
                labels.append(decode_label_tkey(tk))
            if tk[:1] != bytes((BLOCK_CLASS,)):
                continue
            for raw, side in ((a, old), (b, new)):
                if isinstance(raw, bytes):
                    lst = decode_list(raw, "block list")
                    side.update((tuple(int(x) for x in lst.pos[i]), lst.json_at(i))
                                for i in range(len(lst)))
        added = {p for p in new if p not in old}
        deleted = {p for p in old if p not in new}
        changed = sorted(p for p in new if p in old and new[p] != old[p])
        moved = []
        for rec in self.mutations_between(changes)["to"]:
            if rec.get("Action") == "element-move":
                f, t = tuple(rec.get("From", ())), tuple(rec.get("To", ()))
                if f in deleted and t in added:
                    moved.append([list(f), list(t)])
                    deleted.discard(f)
                    added.discard(t)
        return {"elements_added": [list(p) for p in sorted(added)],
                "elements_deleted": [list(p) for p in sorted(deleted)],
                "elements_changed": [list(p) for p in changed],
                "elements_moved": moved, "labels_changed": sorted(labels)}

    def roi_filter_value(self, tk: bytes, value: bytes,
                         inside: Callable[[Any], np.ndarray]) -> bytes | None:
        """Block, label and tag lists keep only the elements whose position is ``inside``
        (an element keeps its Rels even when they point outside); ``None`` when none is.
        Other keys, and lists that can't be decoded, pass unchanged."""
        if not tk or tk[0] not in (BLOCK_CLASS, LABEL_CLASS, TAG_CLASS):
            return value
        try:
            lst = ElemList.decode(value)
        except (ValueError, struct.error):
            return value
        keep = inside(lst.pos)
        if keep.all():
            return value
        if not keep.any():
            return None
        return lst.select(keep).encode()

    def _commit(self, ctx: VersionedCtx, txn: Txn, d: Deltas, action: str,
                fields: dict[str, Any]) -> None:
        with self.store.batch(ctx) as b:
            txn.write(b)
            mid = self.log_mutation(ctx, action, fields, b)
        if d:
            self.publish(ctx, d.event(mid))

    def _rewrite_rels(self, txn: Txn, tk: bytes, frm: tuple[int, int, int],
                      to: tuple[int, int, int] | None) -> None:
        """In block ``tk``, retarget (or drop when ``to`` is None) relationships to ``frm``."""
        lst = txn.get(tk)
        needle = f'"To":[{frm[0]},{frm[1]},{frm[2]}]'.encode()
        hits = [i for i in range(len(lst)) if needle in lst.json_at(i)]
        if not hits:
            return
        changed = []
        for i in hits:
            e = lst.element(i)
            if e.rels is None:
                continue
            if to is None:
                e.rels = [r for r in e.rels if r[1] != frm]
            else:
                e.rels = [(r[0], to) if r[1] == frm else r for r in e.rels]
            changed.append(e)
        keep = np.ones(len(lst), bool)
        keep[hits] = False
        txn.set(tk, ElemList.concat([lst.select(keep), ElemList.of(changed)]))

    # ----- element writes -------------------------------------------------------------

    def store_elements(self, ctx: VersionedCtx, elems: list[Element],
                       fields: dict[str, Any]) -> None:
        """Insert or replace ``elems`` with block, label and tag lists in one batch."""
        if not elems:
            return
        new = ElemList.of(elems)
        with self.lock:
            txn = Txn(self.store, ctx)
            d = Deltas()
            ublocks, groups = group_rows(self.block_of(new.pos))
            tks = [block_tkey(*b) for b in ublocks.tolist()]
            txn.load(tks)
            old_tags: dict[str, list[tuple[int, int, int]]] = {}
            for tk, idx in zip(tks, groups, strict=True):
                cur = txn.get(tk)
                sub = new.select(idx)
                m = cur.mask_of(sub.pos)
                for i in np.flatnonzero(m).tolist():
                    j = cur.json_at(i)
                    if b'"Tags":null' not in j and b'"Tags":[]' not in j:
                        old = element_from_json(j)
                        for t in old.tags or ():
                            old_tags.setdefault(t, []).append(old.pos)
                txn.set(tk, ElemList.concat([cur.select(~m), sub]))
            nr = nr_of(new)
            bodies = self.labels.bodies_at(ctx, new.pos)
            if bodies is not None:
                self._add_to_labels(txn, d, nr, bodies)
            new_tags: dict[str, list[int]] = {}
            for i, e in enumerate(elems):
                for t in e.tags or ():
                    new_tags.setdefault(t, []).append(i)
            for t in set(old_tags) | set(new_tags):
                tk = tag_tkey(t)
                lst = txn.get(tk)
                if t in old_tags:
                    lst = lst.without(np.array(old_tags[t], np.int32))
                if t in new_tags:
                    lst = lst.upsert(nr.select(np.array(new_tags[t])))
                txn.set(tk, lst)
            self._commit(ctx, txn, d, "element-post", {**fields, "NumElements": len(elems)})

    def delete_element(self, ctx: VersionedCtx, pt: tuple[int, int, int]) -> None:
        """Delete the element at ``pt`` and relationships pointing to it (in its own block
        and its partners' blocks); 400 when there is none."""
        with self.lock:
            txn = Txn(self.store, ctx)
            d = Deltas()
            tk = self.btk(pt)
            blk = txn.get(tk)
            i = blk.find(pt)
            if i < 0:
                raise BadRequest(f"Did not find element {list(pt)} in datastore")
            e = blk.element(i)
            keep = np.ones(len(blk), bool)
            keep[i] = False
            txn.set(tk, blk.select(keep))
            for btk in dict.fromkeys([tk, *(self.btk(r[1]) for r in e.rels or ())]):
                self._rewrite_rels(txn, btk, pt, None)
            arr = np.array([pt], np.int32)
            bodies = self.labels.bodies_at(ctx, arr)
            if bodies is not None:
                self._remove_from_labels(txn, d, arr, bodies)
            for t in dict.fromkeys(e.tags or ()):
                ttk = tag_tkey(t)
                txn.set(ttk, txn.get(ttk).without(arr))
            self._commit(ctx, txn, d, "element-delete", {"Point": list(pt)})

    def move_element(self, ctx: VersionedCtx, frm: tuple[int, int, int],
                     to: tuple[int, int, int]) -> None:
        """Move the element at ``frm`` to ``to``, retargeting relationships that point to
        it; 400 when there is no element at ``frm`` or another one already at ``to``."""
        with self.lock:
            txn = Txn(self.store, ctx)
            d = Deltas()
            ftk, ttk = self.btk(frm), self.btk(to)
            fb = txn.get(ftk)
            i = fb.find(frm)
            if i < 0:
                raise BadRequest(f"Did not find moved element {list(frm)} in datastore")
            if to == frm:
                return
            if txn.get(ttk).find(to) >= 0:
                raise BadRequest(f"can't move element {list(frm)} to {list(to)}: "
                                 "another element is already there")
            e = fb.element(i)
            e.pos = to
            keep = np.ones(len(fb), bool)
            keep[i] = False
            txn.set(ftk, fb.select(keep))
            moved = ElemList.of([e])
            txn.set(ttk, ElemList.concat([txn.get(ttk), moved]))
            for btk in dict.fromkeys([ftk, ttk, *(self.btk(r[1]) for r in e.rels or ())]):
                self._rewrite_rels(txn, btk, frm, to)
            pts = np.array([frm, to], np.int32)
            bodies = self.labels.bodies_at(ctx, pts)
            nr = nr_of(moved)
            if bodies is not None:
                self._remove_from_labels(txn, d, pts[:1], bodies[:1])
                self._add_to_labels(txn, d, nr, bodies[1:])
            for t in dict.fromkeys(e.tags or ()):
                tk = tag_tkey(t)
                txn.set(tk, ElemList.concat([txn.get(tk).without(pts[:1]), nr]))
            self._commit(ctx, txn, d, "element-move", {"From": list(frm), "To": list(to)})

    # ----- reads --------------------------------------------------------------------------

    def full_elements(self, ctx: VersionedCtx, pos: np.ndarray) -> list[bytes | None]:
        """Stored JSON (with Rels) of the elements at (N, 3) ``pos``, None when absent."""
        out: list[bytes | None] = [None] * len(pos)
        ublocks, groups = group_rows(self.block_of(pos))
        tks = [block_tkey(*b) for b in ublocks.tolist()]
        raws = self.store.get_many(ctx, tks)
        for raw, idx in zip(raws, groups, strict=True):
            blk = decode_list(raw, "element block")
            if not len(blk):
                continue
            where = {p: k for k, p in enumerate(map(tuple, blk.pos.tolist()))}
            for j, p in zip(idx.tolist(), map(tuple, pos[idx].tolist()), strict=True):
                k = where.get(p)
                if k is not None:
                    out[j] = blk.json_at(k)
        return out

    def list_json(self, ctx: VersionedCtx, lst: ElemList, mode: str) -> bytes:
        """A label/tag list as a JSON array; ``mode`` "", "true" or "verbose"."""
        if not mode:
            return lst.json_array()
        full = [f for f in self.full_elements(ctx, lst.pos) if f is not None]
        if mode == "true":
            return b"[" + b",".join(full) + b"]"
        elems = [element_from_json(f) for f in full]
        partners = sorted({r[1] for e in elems for r in e.rels or ()})
        pj = self.full_elements(ctx, np.array(partners, np.int32).reshape(-1, 3))
        info = {p: element_from_json(j) for p, j in zip(partners, pj, strict=True)
                if j is not None}
        out = []
        for e in elems:
            doc = e.to_json()
            if e.rels is not None:
                rels = []
                for r, t in e.rels:
                    rd: dict[str, Any] = {"Rel": r, "To": list(t)}
                    pe = info.get(t)
                    if pe is not None:
                        rd["Kind"] = pe.kind
                        if pe.tags:
                            rd["Tags"] = pe.tags
                        if pe.prop:
                            rd["Prop"] = dict(sorted(pe.prop.items()))
                    rels.append(rd)
                doc["Rels"] = rels
            out.append(doc)
        return _dumps(out).encode()

    def iter_blocks(self, ctx: VersionedCtx, region: Region | None = None,
                    ) -> Iterator[tuple[tuple[int, int, int], ElemList]]:
        """Non-empty blocks in key (ZYX) order: all, or those of ``region`` (a
        :class:`~datatypes.common.blockscan.BoxRegion` or ``SpanRegion`` of block
        coordinates), found by scanning the stored blocks, never by walking the region."""
        if region is None:
            start, end = class_range(BLOCK_CLASS)
            for tk, v in self.store.scan(ctx, start, end):
                lst = decode_list(v, "element block")
                if len(lst):
                    yield decode_block_tkey(tk), lst
            return
        for b, v in scan_region(self.store, ctx, BLOCK_CLASS, region):
            lst = decode_list(v, "element block")
            if len(lst):
                yield b, lst

    def _box(self, call: Call) -> tuple[np.ndarray, np.ndarray, BoxRegion]:
        """``(lo, hi, blocks)``: the request's voxel box ``[lo, hi)`` and its blocks; 400
        when the box leaves the int32 coordinate range."""
        size, off = call.params["size"], call.params["offset"]
        try:
            check_int32_box(off, size)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        lo = np.array(off, np.int64)
        hi = lo + np.array(size, np.int64)
        bs = np.array(self.block_size, np.int64)
        return lo, hi, BoxRegion(lo // bs, (hi - 1) // bs)

    # ----- endpoints ----------------------------------------------------------------------

    @endpoint("POST", "elements", "Insert or replace elements (by position)", returns=TEXT,
              body=Body(JSON, "array of elements", schema={"type": "array",
                                                           "items": _ELEMENT}),
              query=(Q("kafkalog", "str", "off: no DataRef blob in the mutation record"),))
    def _post_elements(self, call: Call) -> Response:
        elems = parse_elements(call.json())
        fields: dict[str, Any] = {}
        if call.params["kafkalog"] != "off" and elems:
            fields["DataRef"] = self.put_blob(call.ctx, call.body)
        self.store_elements(call.ctx, elems, fields)
        return Response(b"", media_type="text/plain")

    @endpoint("GET", "elements/{size}/{offset}", "Elements whose Pos lies in a box (null if "
              "none)", params=_BOX)
    def _get_elements(self, call: Call) -> Response:
        lo, hi, blocks = self._box(call)
        parts = []
        for _, lst in self.iter_blocks(call.ctx, blocks):
            p = lst.pos
            inside = np.flatnonzero(((p >= lo) & (p < hi)).all(axis=1))
            parts.extend(lst.iter_json(inside.tolist()))
        body = b"[" + b",".join(parts) + b"]" if parts else b"null"
        return Response(body, media_type=JSON)

    @endpoint("DELETE", "element/{pos}", "Delete an element and relationships pointing to it",
              params=(_POS,), returns=TEXT)
    def _delete_element(self, call: Call) -> Response:
        self.delete_element(call.ctx, call.params["pos"])
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "move/{from}/{to}", "Move an element, retargeting relationships to it",
              params=(Param("from", "coord", "x_y_z of the element"),
                      Param("to", "coord", "x_y_z it moves to")), returns=TEXT)
    def _move(self, call: Call) -> Response:
        self.move_element(call.ctx, call.params["from"], call.params["to"])
        return Response(b"", media_type="text/plain")

    @endpoint("GET", "label/{label}", "Elements of a body (needs a synced labelmap)",
              params=(Param("label", "label", "body id (not 0)"),), query=(_RELS,))
    def _get_label(self, call: Call) -> Response:
        label = call.params["label"]
        if label == 0:
            raise BadRequest("Label 0 is protected background value and cannot be used for "
                             "query.")
        mode = _rel_mode(call)
        lst = decode_list(self.store.get(call.ctx, label_tkey(label)), "label list")
        return Response(self.list_json(call.ctx, lst, mode), media_type=JSON)

    @endpoint("GET", "labels", "Elements of each body listed in the body, in order",
              query=(_RELS,), body=Body(JSON, "array of nonzero labels", schema={
                  "type": "array", "items": {"type": "integer", "minimum": 1,
                                             "maximum": 2**64 - 1}}))
    def _get_labels(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and 0 < x < 2**64 for x in body):
            raise BadRequest("GET labels expects a JSON array of nonzero labels")
        mode = _rel_mode(call)
        raws = self.store.get_many(call.ctx, [label_tkey(x) for x in body])
        parts = [self.list_json(call.ctx, decode_list(r, "label list"), mode) for r in raws]
        return Response(b"[" + b",".join(parts) + b"]", media_type=JSON)

    @endpoint("POST", "labels", "Low-level ingest of label lists", returns=TEXT,
              body=Body(JSON, '{"<label>": "<JSON array of elements, as a string>"}',
                        schema={"type": "object", "additionalProperties": {"type": "string"}}))
    def _post_labels(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict):
            raise BadRequest('POST labels expects {"<label>": "<JSON array of elements>"}')
        lists = {}
        for k, v in body.items():
            if not k.isdigit() or int(k) >= 2**64 or not isinstance(v, str):
                raise BadRequest(f"bad label entry {k!r} in POST labels")
            arr = jsonio.loads(v.encode(), f"elements of label {k}")
            if int(k) != 0:
                lists[int(k)] = nr_of(ElemList.of(parse_elements(arr)))
        with self.lock, self.store.batch(call.ctx) as b:
            for label, lst in lists.items():
                if len(lst):
                    b.put(label_tkey(label), lst.encode())
                else:
                    b.delete(label_tkey(label))
            self.log_mutation(call.ctx, "labels-post", {"NumLabels": len(lists)}, b)
        return Response(b"", media_type="text/plain")

    @endpoint("GET", "tag/{tag}", "Elements with a tag", params=(Param("tag", "str"),),
              query=(_RELS,))
    def _get_tag(self, call: Call) -> Response:
        mode = _rel_mode(call)
        lst = decode_list(self.store.get(call.ctx, tag_tkey(call.params["tag"])), "tag list")
        return Response(self.list_json(call.ctx, lst, mode), media_type=JSON)

    @endpoint("GET", "roi/{roi}", "Elements in the blocks of an ROI (null if none)",
              params=(Param("roi", "str", "roiname, or roiname,uuid to read the ROI at "
                                          "another version"),))
    def _get_roi(self, call: Call) -> Response:
        from datatypes.roi import find_roi
        text = call.params["roi"]
        spec = text.split(",")
        if len(spec) > 2 or not spec[0]:
            raise BadRequest(f"Bad ROI specification: {text!r}")
        roi = find_roi(self.repo, spec[0], self.manager)
        node = call.ctx.node
        if len(spec) == 2:
            repo, node = self.manager.resolve(spec[1])
            if repo is not self.repo:
                raise BadRequest(f"ROI version {spec[1]!r} is not in this repo")
        if tuple(roi.block_size) != self.block_size:
            raise BadRequest(f"/roi endpoint currently requires ROI {spec[0]!r} to have same "
                             f"block size as annotation {self.meta.name!r}")
        spans = roi.normalized_spans_at(self.manager.context(roi, node))
        parts = []
        for _, lst in self.iter_blocks(call.ctx, SpanRegion(spans)):
            parts.extend(lst.iter_json())
        body = b"[" + b",".join(parts) + b"]" if parts else b"null"
        return Response(body, media_type=JSON)

    def _stream(self, blocks: Iterator[tuple[tuple[int, int, int], ElemList]]) -> Response:
        def gen() -> Iterator[bytes]:
            yield b"{"
            first = True
            for (x, y, z), lst in blocks:
                yield (b"" if first else b",") + f'"{x},{y},{z}":'.encode() + lst.json_array()
                first = False
            yield b"}"

        return StreamingResponse(gen(), media_type=JSON)

    @endpoint("GET", "blocks/{size}/{offset}", 'Streamed {"x,y,z": [elements]} of the blocks '
              "intersecting a box", params=_BOX)
    def _get_blocks(self, call: Call) -> Response:
        return self._stream(self.iter_blocks(call.ctx, self._box(call)[2]))

    @endpoint("GET", "all-elements", 'Streamed {"x,y,z": [elements]} of every block')
    def _get_all(self, call: Call) -> Response:
        return self._stream(self.iter_blocks(call.ctx))

    @endpoint("POST", "blocks", "Replace block lists wholesale (POST reload after)",
              returns=TEXT, body=Body(JSON, '{"x,y,z": [elements], ...}', schema={
                  "type": "object", "additionalProperties": {"type": "array",
                                                             "items": _ELEMENT}}))
    def _post_blocks(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict):
            raise BadRequest('POST blocks expects {"x,y,z": [elements], ...}')
        bs = np.array(self.block_size, np.int64)
        lists = {}
        for k, v in body.items():
            try:
                coord = parse_xyz(k, sep=",")
            except ValueError as e:
                raise BadRequest(f"bad block key {k!r}: {e}") from None
            elems = parse_elements(v)
            for e in elems:
                if tuple((np.array(e.pos) // bs).tolist()) != coord:
                    raise BadRequest(f"element at {list(e.pos)} is not in block {k!r} "
                                     f"(block size {bs.tolist()})")
            lists[block_tkey(*coord)] = ElemList.of(elems)
        with self.lock, self.store.batch(call.ctx) as b:
            for tk, lst in lists.items():
                if len(lst):
                    b.put(tk, lst.encode())
                else:
                    b.delete(tk)
            self.log_mutation(call.ctx, "blocks-post", {"NumBlocks": len(lists)}, b)
        return Response(b"", media_type="text/plain")

    @endpoint("GET", "scan", "Counts of stored block lists and empty ones")
    def _scan(self, call: Call) -> Any:
        start, end = class_range(BLOCK_CLASS)
        n = empty = 0
        for _, v in self.store.scan(call.ctx, start, end):
            n += 1
            if len(decode_list(v, "element block")) == 0:
                empty += 1
        return {"num kv pairs": n, "num empty blocks": empty}

    @endpoint("POST", "reload", "Rebuild the label and tag lists from the blocks",
              returns=TEXT)
    def _reload(self, call: Call) -> Response:
        self.reload(call.ctx)
        return Response(f"Rebuilt label and tag denormalizations of {self.meta.name!r}\n",
                        media_type="text/plain")

    def reload(self, ctx: VersionedCtx) -> None:
        """Rebuild the label and tag lists at ``ctx`` from the block lists (synchronously;
        synced ``labelsz`` instances are not notified: reload them afterwards)."""
        with self.lock:
            allb = ElemList.concat([lst for _, lst in self.iter_blocks(ctx)])
            new = denormalize(allb, self.labels.bodies_at(ctx, allb.pos))
            old = []
            for cls in (LABEL_CLASS, TAG_CLASS):
                old.extend(tk for tk, _ in self.store.scan(ctx, *class_range(cls),
                                                           keys_only=True))
            with self.store.batch(ctx) as b:
                for tk in old:
                    if tk not in new:
                        b.delete(tk)
                for tk, lst in new.items():
                    b.put(tk, lst.encode())
                self.log_mutation(ctx, "reload", {"NumElements": len(allb)}, b)

    def label_lists(self, ctx: VersionedCtx) -> Iterator[tuple[int, ElemList]]:
        """Every non-empty label list at ``ctx`` (for ``labelsz`` reloads)."""
        for tk, v in self.store.scan(ctx, *class_range(LABEL_CLASS)):
            lst = decode_list(v, "label list")
            if len(lst):
                yield decode_label_tkey(tk), lst


__all__ = ["Annotation", "denormalize", "parse_element"]
