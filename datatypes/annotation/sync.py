"""Following a labelmap: label lookups and the reaction to labelmap events (§10.3).

The label lists (TKey class 211) hold, per body, the elements whose position carries that
body in the synced labelmap at the same version. They change when elements are posted,
moved or deleted (see :mod:`datatypes.annotation.datatype`) and when the labelmap
publishes an event; every change is sent on as a ``label-elements`` event whose payload
is ``{"Add": (labels, kinds, pos), "Del": (labels, kinds, pos)}`` — ``labels`` (N,)
uint64, ``kinds`` (N,) uint8 (:data:`~datatypes.annotation.elements.KINDS`), ``pos``
(N, 3) int32 — consumed by ``labelsz``.

Label lookups go through :class:`LabelSource`, a thin adapter over the labelmap's
``labels_at(ctx, points, scale, mapped)`` and ``mapping.map_array(ctx, svs)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from datatypes.annotation.elements import ElemList
from datatypes.annotation.store import Txn, block_tkey, group_rows, label_tkey
from dvidpy.datatype import Datatype, SyncEvent
from dvidpy.versioned import VersionedCtx

if TYPE_CHECKING:
    from datatypes.annotation.datatype import Annotation

LABEL_EVENT = "label-elements"
LABELMAP_EVENTS = frozenset({"merge", "cleave", "split", "split-supervoxel",
                             "block-ingested", "block-mutated"})


class LabelSource:
    """Body lookups in the labelmap an annotation instance is synced to."""

    def __init__(self, ann: Annotation) -> None:
        self.ann = ann

    def labelmap(self) -> Datatype | None:
        """The synced labelmap instance (the first one named in ``Syncs``), or None."""
        for n in self.ann.meta.syncs:
            inst = self.ann.manager.find_instance(self.ann.repo, n)
            if inst is not None and inst.type_name == "labelmap":
                return inst
        return None

    def _ctx(self, lm: Datatype, ctx: VersionedCtx) -> VersionedCtx:
        return self.ann.manager.context(lm, ctx.node, ctx.user, ctx.app)

    def bodies_at(self, ctx: VersionedCtx, pts: np.ndarray) -> np.ndarray | None:
        """Bodies (uint64) at (N, 3) x,y,z points at ``ctx``'s node; None when unsynced.
        One labelmap block read per distinct block touched."""
        lm = self.labelmap()
        if lm is None:
            return None
        p = np.asarray(pts, dtype=np.int64).reshape(-1, 3)
        return lm.labels_at(self._ctx(lm, ctx), p, 0, True)  # type: ignore[attr-defined]

    def map_supervoxels(self, ctx: VersionedCtx, svs: np.ndarray) -> np.ndarray:
        """Bodies of supervoxels at ``ctx``'s node (0 unknown)."""
        lm = self.labelmap()
        if lm is None or not svs.size:
            return np.zeros(svs.shape, np.uint64)
        return lm.mapping.map_array(self._ctx(lm, ctx), svs)  # type: ignore[attr-defined]

    def block_size(self) -> tuple[int, int, int] | None:
        """Block size of the synced labelmap."""
        lm = self.labelmap()
        return None if lm is None else tuple(lm.block_size)  # type: ignore[attr-defined]


class Deltas:
    """Element count changes of labels, published as one ``label-elements`` event."""

    def __init__(self) -> None:
        self.add: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.rem: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def added(self, label: int | np.ndarray, lst: ElemList) -> None:
        """Elements of ``lst`` joined ``label`` (a scalar or one label per element)."""
        if len(lst):
            self.add.append((np.broadcast_to(np.asarray(label, np.uint64), (len(lst),)),
                             lst.kind, lst.pos))

    def removed(self, label: int | np.ndarray, lst: ElemList) -> None:
        """Elements of ``lst`` left ``label``."""
        if len(lst):
            self.rem.append((np.broadcast_to(np.asarray(label, np.uint64), (len(lst),)),
                             lst.kind, lst.pos))

    @staticmethod
    def _cat(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not parts:
            return (np.zeros(0, np.uint64), np.zeros(0, np.uint8), np.zeros((0, 3), np.int32))
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]))

    def __bool__(self) -> bool:
        return bool(self.add or self.rem)

    def count(self) -> int:
        """Number of element moves recorded (adds + removals)."""
        return sum(len(p[1]) for p in self.add) + sum(len(p[1]) for p in self.rem)

    def event(self, mutation_id: int) -> SyncEvent:
        """The event to publish."""
        return SyncEvent(LABEL_EVENT, {"Add": self._cat(self.add), "Del": self._cat(self.rem)},
                         mutation_id)


class SyncMixin:
    """Reaction of an annotation instance to its labelmap's events."""

    def on_event(self: Annotation, source: Datatype, ctx: VersionedCtx,  # type: ignore[misc]
                 event: SyncEvent) -> None:
        """Update label lists at ``ctx``'s version for one labelmap event."""
        if source.meta.name not in self.meta.syncs or event.kind == "split-supervoxel":
            return  # supervoxel splits keep body ids
        p: dict[str, Any] = event.payload
        with self.lock:
            txn = Txn(self.store, ctx)
            d = Deltas()
            if event.kind == "merge":
                self._merge_labels(txn, d, int(p["target"]), [int(m) for m in p["merged"]])
            elif event.kind == "cleave":
                self._relabel(ctx, txn, d, int(p["orig"]))
            elif event.kind == "split":
                self._relabel(ctx, txn, d, int(p["target"]))
            elif event.kind in ("block-ingested", "block-mutated"):
                self._blocks_changed(ctx, txn, d, p["blocks"])
            if not txn.dirty:
                return
            with self.store.batch(ctx) as b:
                txn.write(b)
                self.log_mutation(ctx, f"sync-{event.kind}",
                                  {"Source": source.meta.name, "Moved": d.count()}, b,
                                  mutation_id=event.mutation_id or None)
            if d:
                self.publish(ctx, d.event(event.mutation_id))

    def _merge_labels(self: Annotation, txn: Txn, d: Deltas,  # type: ignore[misc]
                      target: int, merged: list[int]) -> None:
        """Lists of ``merged`` appended to ``target``'s; theirs deleted."""
        tks = [label_tkey(m) for m in merged]
        txn.load([label_tkey(target), *tks])
        moved = []
        for m, tk in zip(merged, tks, strict=True):
            lst = txn.get(tk)
            if len(lst):
                moved.append(lst)
                d.removed(m, lst)
                d.added(target, lst)
                txn.set(tk, ElemList.empty())
        if moved:
            ttk = label_tkey(target)
            txn.set(ttk, txn.get(ttk).upsert(ElemList.concat(moved)))

    def _relabel(self: Annotation, ctx: VersionedCtx, txn: Txn, d: Deltas,  # type: ignore[misc]
                 label: int) -> None:
        """Move elements of ``label`` whose position now carries another body."""
        tk = label_tkey(label)
        lst = txn.get(tk)
        if not len(lst):
            return
        bodies = self.labels.bodies_at(ctx, lst.pos)
        if bodies is None:
            return
        away = bodies != np.uint64(label)
        if not away.any():
            return
        txn.set(tk, lst.select(~away))
        self._add_to_labels(txn, d, lst.select(away), bodies[away])
        d.removed(label, lst.select(away))

    def _add_to_labels(self: Annotation, txn: Txn, d: Deltas,  # type: ignore[misc]
                       nr: ElemList, bodies: np.ndarray) -> None:
        """Add NR elements to the lists of their (nonzero) bodies, replacing same-position
        entries; records the adds (and the replaced entries as removals)."""
        uniq, groups = group_rows(bodies)
        txn.load(label_tkey(int(b)) for b in uniq.tolist() if b)
        for b, idx in zip(uniq.tolist(), groups, strict=True):
            if not b:
                continue
            sub = nr.select(idx)
            tk = label_tkey(b)
            cur = txn.get(tk)
            m = cur.mask_of(sub.pos)
            if m.any():
                d.removed(b, cur.select(m))
            txn.set(tk, ElemList.concat([cur.select(~m) if m.any() else cur, sub]))
            d.added(b, sub)

    def _remove_from_labels(self: Annotation, txn: Txn, d: Deltas,  # type: ignore[misc]
                            pos: np.ndarray, bodies: np.ndarray) -> None:
        """Drop elements at ``pos`` from the lists of ``bodies`` (parallel arrays)."""
        uniq, groups = group_rows(bodies)
        txn.load(label_tkey(int(b)) for b in uniq.tolist() if b)
        for b, idx in zip(uniq.tolist(), groups, strict=True):
            if not b:
                continue
            tk = label_tkey(b)
            cur = txn.get(tk)
            m = cur.mask_of(pos[idx])
            if m.any():
                d.removed(b, cur.select(m))
                txn.set(tk, cur.select(~m))

    def _blocks_changed(self: Annotation, ctx: VersionedCtx, txn: Txn,  # type: ignore[misc]
                        d: Deltas, blocks: list[dict[str, Any]]) -> None:
        """Re-label elements in labelmap blocks that were written (old vs new voxels)."""
        bs = np.array(self.block_size, np.int64)
        tks = [block_tkey(*map(int, blk["coord"])) for blk in blocks]
        txn.load(tks)
        for blk, tk in zip(blocks, tks, strict=True):
            lst = txn.get(tk)
            if not len(lst):
                continue
            local = lst.pos.astype(np.int64) - np.asarray(blk["coord"], np.int64) * bs
            data = blk["data"]
            new_sv = data[local[:, 2], local[:, 1], local[:, 0]]
            prev = blk.get("prev")
            old_sv = (np.zeros_like(new_sv) if prev is None
                      else prev[local[:, 2], local[:, 1], local[:, 0]])
            both = self.labels.map_supervoxels(ctx, np.concatenate([old_sv, new_sv]))
            old_b, new_b = both[:len(new_sv)], both[len(new_sv):]
            old_b = np.where(old_sv == 0, np.uint64(0), old_b)
            ch = old_b != new_b
            if not ch.any():
                continue
            sel = lst.select(ch)
            self._remove_from_labels(txn, d, sel.pos, old_b[ch])
            nr = ElemList.build(sel.pos, sel.kind, list(sel.iter_json(nr=True)), sel.cut)
            self._add_to_labels(txn, d, nr, new_b[ch])


__all__ = ["LABELMAP_EVENTS", "LABEL_EVENT", "Deltas", "LabelSource", "SyncMixin"]
