"""labelsz: per-body counts of annotation elements, ranked (dvid-api.md §13.2-13.3).

Sync a labelsz to an annotation instance (``POST sync {"sync": "synapses"}``; only
annotation instances are accepted, 400 otherwise). Every change of the annotation's label
lists arrives as a ``label-elements`` event and updates the counts in the same request,
at the same version. Index types (case-sensitive): ``PostSyn``, ``PreSyn``, ``Gap``,
``Note`` and ``AllSyn`` (= PostSyn + PreSyn + Gap); anything else → 400.

Creation setting ``ROI`` = ``"roiname,uuid"`` (optional, static): only elements inside
that ROI (read at that version) are counted. The ROI must exist when the instance is
created (400 otherwise). ``Extended`` in ``info`` is ``{"StaticROI": "roiname,uuid"}``.

Endpoints under ``/api/node/{uuid}/{data}/``:

``GET count/{label}/{index}`` → ``{"Label": 21847, "PreSyn": 81}`` (0 when none).
``GET counts/{index}`` with body ``[l1, l2, ...]`` → ``[{"Label": l1, "PreSyn": n1}, ...]``.
``GET top/{n}/{index}`` → ``[{"Label": 188, "Size": 81}, ...]`` by count descending, ties by
    label ascending; ``n`` ≥ 0.
``GET threshold/{t}/{index}[?offset=k&n=m]`` → labels with count ≥ ``t`` in the same order
    and shape, skipping the first ``offset`` (default 0) and returning at most ``n``
    (default and maximum 10,000).
``POST reload`` → recounts this version from the synced annotation's label lists.
``GET mutations`` → ``sync-counts`` and ``reload`` records of this version.

Storage (versioned): class 98 = ``(index u8, label u64 BE)`` → count u32 BE, and class 97 =
``(index u8, 2**32-1-count u32 BE, label u64 BE)`` → empty, so ``top``/``threshold`` read
the first keys of one range scan instead of scanning every label.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from dvidpy.datatype import Call, Datatype, SyncEvent, endpoint, register_datatype
from dvidpy.errors import BadRequest
from dvidpy.http.spec import JSON, Body, Param, Q
from dvidpy.keys import tkey
from dvidpy.versioned import VersionedCtx

COUNT_CLASS = 98
SORT_CLASS = 97
#: index type name -> code; kinds (annotation codes) counted by each.
INDEX_TYPES = {"PostSyn": 1, "PreSyn": 2, "Gap": 3, "Note": 4, "AllSyn": 5}
_KIND_INDEXES = {1: (1, 5), 2: (2, 5), 3: (3, 5), 4: (4,)}
INDEX_NAMES = {v: k for k, v in INDEX_TYPES.items()}
MAX_N = 10_000
_U32 = 2**32 - 1
_HELP = __doc__ or ""


def count_tkey(index: int, label: int) -> bytes:
    """TKey of the count of ``label`` for index type code ``index``."""
    return tkey(COUNT_CLASS, bytes((index,)) + int(label).to_bytes(8, "big"))


def sort_tkey(index: int, count: int, label: int) -> bytes:
    """TKey of the rank entry (largest counts first, then smallest labels)."""
    return tkey(SORT_CLASS, bytes((index,)) + (_U32 - count).to_bytes(4, "big")
                + int(label).to_bytes(8, "big"))


def decode_sort_tkey(tk: bytes) -> tuple[int, int]:
    """``(count, label)`` of a rank entry."""
    return _U32 - int.from_bytes(tk[3:7], "big"), int.from_bytes(tk[7:15], "big")


def counts_by_index(labels: np.ndarray, kinds: np.ndarray) -> dict[tuple[int, int], int]:
    """``{(index code, label): n}`` for elements of given labels and kinds (vectorized)."""
    out: dict[tuple[int, int], int] = {}
    if not labels.size:
        return out
    for kind, idxs in _KIND_INDEXES.items():
        sel = kinds == kind
        if not sel.any():
            continue
        u, n = np.unique(labels[sel], return_counts=True)
        for ix in idxs:
            for lab, c in zip(u.tolist(), n.tolist(), strict=True):
                out[(ix, lab)] = out.get((ix, lab), 0) + c
    return out


_INDEX = Param("index", "str", "index type (case-sensitive)", enum=tuple(INDEX_TYPES))


@register_datatype
class Labelsz(Datatype):
    """The labelsz datatype."""

    type_name = "labelsz"
    type_url = "github.com/janelia-flyem/dvid/datatype/labelsz"
    type_version = "0.1"
    help_text = _HELP
    default_compression = "none"
    subscribes = {"annotation": frozenset({"label-elements"})}
    tkey_classes = {COUNT_CLASS: "(index u8, label u64 BE) -> count u32 BE",
                    SORT_CLASS: "(index u8, MaxUint32-count u32 BE, label u64 BE) -> empty",
                    254: "mutation log: version + mutation id -> JSON record"}

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.lock = self.instance_lock()  # across servers when coordinated

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        """``ROI`` = ``"name,uuid"`` (validated in :meth:`on_create`)."""
        roi = settings.get("roi", "").strip()
        if roi and len([p for p in roi.split(",") if p.strip()]) != 2:
            raise BadRequest(f'labelsz ROI setting must be "roiname,uuid", got {roi!r}')
        return {"ROI": roi}

    def on_create(self) -> None:
        """Check that the static ROI exists (400 if not; the repo manager then drops the
        half-made instance)."""
        if self.meta.config.get("ROI"):
            self._roi()

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        """``{"StaticROI": "name,uuid" or ""}``."""
        return {"StaticROI": self.meta.config.get("ROI", "")}

    def _roi(self) -> tuple[Any, VersionedCtx] | None:
        spec = self.meta.config.get("ROI", "")
        if not spec:
            return None
        from datatypes.roi import find_roi
        name, uuid = (p.strip() for p in spec.split(","))
        roi = find_roi(self.repo, name, self.manager)
        repo, node = self.manager.resolve(uuid)
        if repo is not self.repo:
            raise BadRequest(f"ROI version {uuid!r} is not in this repo")
        return roi, self.manager.context(roi, node)

    def _in_roi(self, pos: np.ndarray) -> np.ndarray | None:
        r = self._roi()
        return None if r is None else r[0].points_in(r[1], pos)

    # ----- updates ------------------------------------------------------------------------

    def on_event(self, source: Datatype, ctx: VersionedCtx, event: SyncEvent) -> None:
        """Apply an annotation's ``label-elements`` deltas at ``ctx``'s version."""
        if event.kind != "label-elements":
            return
        delta: dict[tuple[int, int], int] = {}
        for key, sign in (("Add", 1), ("Del", -1)):
            labels, kinds, pos = event.payload[key]
            keep = self._in_roi(pos) if len(labels) else None
            if keep is not None:
                labels, kinds = labels[keep], kinds[keep]
            for k, n in counts_by_index(labels, kinds).items():
                delta[k] = delta.get(k, 0) + sign * n
        delta = {k: v for k, v in delta.items() if v}
        if not delta:
            return
        with self.lock:
            keys = list(delta)
            olds = self.store.get_many(ctx, [count_tkey(ix, lab) for ix, lab in keys])
            with self.store.batch(ctx) as b:
                for (ix, lab), raw in zip(keys, olds, strict=True):
                    old = 0 if raw is None else int.from_bytes(raw, "big")
                    self._set(b, ix, lab, old, max(0, old + delta[(ix, lab)]))
                self.log_mutation(ctx, "sync-counts", {"Source": source.meta.name,
                                                       "Changes": len(keys)}, b,
                                  mutation_id=event.mutation_id or None)

    @staticmethod
    def _set(b: Any, ix: int, lab: int, old: int, new: int) -> None:
        if old == new:
            return
        if old:
            b.delete(sort_tkey(ix, old, lab))
        if new:
            b.put(sort_tkey(ix, new, lab), b"")
            b.put(count_tkey(ix, lab), new.to_bytes(4, "big"))
        else:
            b.delete(count_tkey(ix, lab))

    def reload(self, ctx: VersionedCtx) -> int:
        """Recount everything at ``ctx`` from the synced annotation; returns #labels."""
        ann = next((self.repo.instances[n] for n in self.meta.syncs
                    if n in self.repo.instances
                    and self.repo.instances[n].type_name == "annotation"), None)
        with self.lock:
            new: dict[tuple[int, int], int] = {}
            if ann is not None:
                actx = self.manager.context(ann, ctx.node, ctx.user, ctx.app)
                for label, lst in ann.label_lists(actx):  # type: ignore[attr-defined]
                    kinds = lst.kind
                    keep = self._in_roi(lst.pos)
                    if keep is not None:
                        kinds = kinds[keep]
                    new.update(counts_by_index(np.full(len(kinds), label, np.uint64), kinds))
            old = {}
            for tk, v in self.store.scan(ctx, bytes((COUNT_CLASS, 1)), bytes((COUNT_CLASS, 2))):
                old[(tk[2], int.from_bytes(tk[3:11], "big"))] = int.from_bytes(v, "big")
            with self.store.batch(ctx) as b:
                for k in set(old) | set(new):
                    self._set(b, k[0], k[1], old.get(k, 0), new.get(k, 0))
                self.log_mutation(ctx, "reload", {"Labels": len({k[1] for k in new})}, b)
            return len({k[1] for k in new})

    # ----- queries ------------------------------------------------------------------------

    def count(self, ctx: VersionedCtx, index: int, labels: list[int]) -> list[int]:
        """Counts of ``labels`` for one index type (0 when none)."""
        raws = self.store.get_many(ctx, [count_tkey(index, lab) for lab in labels])
        return [0 if r is None else int.from_bytes(r, "big") for r in raws]

    def ranked(self, ctx: VersionedCtx, index: int) -> Iterator[tuple[int, int]]:
        """``(label, count)`` by count descending, then label ascending (lazy scan)."""
        pre = bytes((SORT_CLASS, 1, index))
        for tk, _ in self.store.scan(ctx, pre, pre[:-1] + bytes((index + 1,)),
                                     keys_only=True):
            c, lab = decode_sort_tkey(tk)
            yield lab, c

    @endpoint("GET", "count/{label}/{index}", "Number of elements of one label",
              params=(Param("label", "label"), _INDEX), inline=True)
    def _count(self, call: Call) -> Any:
        label, name = call.params["label"], call.params["index"]
        return {"Label": label, name: self.count(call.ctx, INDEX_TYPES[name], [label])[0]}

    @endpoint("GET", "counts/{index}", "Numbers of elements of the labels in the body",
              params=(_INDEX,), body=Body(JSON, "array of labels", schema={
                  "type": "array", "items": {"type": "integer", "minimum": 0,
                                             "maximum": 2**64 - 1}}))
    def _counts(self, call: Call) -> Any:
        name = call.params["index"]
        body = call.json()
        if not isinstance(body, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**64 for x in body):
            raise BadRequest("GET counts expects a JSON array of labels")
        return [{"Label": lab, name: n} for lab, n in
                zip(body, self.count(call.ctx, INDEX_TYPES[name], body), strict=True)]

    @endpoint("GET", "top/{n}/{index}", "The n labels with the most elements",
              params=(Param("n", "uint64", "how many labels"), _INDEX))
    def _top(self, call: Call) -> Any:
        n = call.params["n"]
        out = []
        if n:  # a lazy scan of the rank keys: the work is min(n, stored labels)
            for lab, c in self.ranked(call.ctx, INDEX_TYPES[call.params["index"]]):
                out.append({"Label": lab, "Size": c})
                if len(out) >= n:
                    break
        return out

    @endpoint("GET", "threshold/{t}/{index}", "Labels with at least t elements",
              params=(Param("t", "uint64", "the least count"), _INDEX),
              query=(Q("offset", "count", "ranks to skip", 0),
                     Q("n", "count", f"most labels to answer (at most {MAX_N})", MAX_N)))
    def _threshold(self, call: Call) -> Any:
        p = call.params
        t, offset, n = p["t"], p["offset"], min(p["n"], MAX_N)
        out = []
        for rank, (lab, c) in enumerate(self.ranked(call.ctx, INDEX_TYPES[p["index"]])):
            if c < t or len(out) >= n:
                break
            if rank >= offset:
                out.append({"Label": lab, "Size": c})
        return out

    @endpoint("POST", "reload", "Recount this version from the synced annotation")
    def _reload(self, call: Call) -> Any:
        n = self.reload(call.ctx)
        return {"Labels": n}


__all__ = ["INDEX_TYPES", "Labelsz", "count_tkey", "sort_tkey"]
