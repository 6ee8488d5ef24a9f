"""State and shared machinery of a labelmap instance (no HTTP endpoints here).

:class:`LabelmapCore` holds the settings, the block store, label-index maintenance,
label allocation, the mutation log, downres and event publishing. The endpoint mixins in
:mod:`datatypes.labelmap.reads` and :mod:`datatypes.labelmap.writes` build on it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from datatypes import protos
from datatypes.common.geometry import check_block_coords, check_int32_box, int32_block_limits
from datatypes.labelmap import block_codec
from datatypes.labelmap import layout as L
from datatypes.labelmap.block_codec import decode_block, decode_block_mask, encode_block
from datatypes.labelmap.downres import downres_octants
from datatypes.labelmap.mapping import MappingCache
from datatypes.labelmap.rle import INDEX_BLOCK_MAX, encode_block_coords
from dvidpy import jsonio
from dvidpy.codec import CodecError
from dvidpy.datatype import Call, Datatype, PyramidPlan, SyncEvent
from dvidpy.errors import BadRequest, NotFound, TooLarge
from dvidpy.keys import data_key, instance_prefix, tkey
from dvidpy.versioned import VersionedBatch, VersionedCtx
from storage.base import KeyRange

#: edits whose mutation-log record is DVID's completed-mutation message (``merge-complete``)
COMPLETED = frozenset({"merge", "cleave", "split", "split-supervoxel", "renumber"})

U64_MAX = 2**64 - 1
MAX_SCALE = 20
#: most voxels one request reads or writes (also bounded by maxRequestBytes / 8)
MAX_VOXELS = 1 << 28


def _parse_triple(text: str, what: str, cast: type = int) -> list[Any]:
    parts = [p.strip() for p in text.replace("_", ",").split(",") if p.strip()]
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3:
        raise BadRequest(f"{what} must have 3 comma-separated values, got {text!r}")
    try:
        return [cast(p) for p in parts]
    except ValueError:
        raise BadRequest(f"bad {what} {text!r}") from None


def label_list_json(body: Any, what: str = "labels") -> list[int]:
    """Validate a JSON array of uint64 labels."""
    if not isinstance(body, list):
        raise BadRequest(f"expected a JSON array of {what}")
    for v in body:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= U64_MAX:
            raise BadRequest(f"bad entry {v!r} in {what}: must be uint64 integers")
    return body


class LabelmapCore(Datatype):
    """Shared state of labelmap instances (see the package docstring for the design)."""

    default_compression = "gzip"

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        # serializes writes and edits of this instance (across servers when coordinated)
        self.lock = self.instance_lock(on_acquire=self._drop_shared_state)
        self.mapping = MappingCache(self.store, shared=self.shared_store)
        self._repo_max: int | None = None
        self._next_label: int | None = None
        self._pending_repo_max = 0
        self._pending_next: int | None = None

    # ----- settings ---------------------------------------------------------------------

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        """BlockSize (multiples of 16, ≤ 1024), VoxelSize, VoxelUnits, IndexedLabels,
        MaxDownresLevel (0..20)."""
        cfg: dict[str, Any] = {
            "block_size": [64, 64, 64], "voxel_size": [8.0, 8.0, 8.0],
            "voxel_units": ["nanometers"] * 3, "indexed": True, "max_scale": 0,
        }
        cls._apply_settings(cfg, settings, creating=True)
        return cfg

    @staticmethod
    def _apply_settings(cfg: dict[str, Any], s: Mapping[str, str], creating: bool) -> None:
        if "blocksize" in s:
            if not creating:
                raise BadRequest("BlockSize can't be changed after creation")
            bs = _parse_triple(s["blocksize"], "BlockSize")
            if any(b <= 0 or b % 16 or b > 1024 for b in bs):
                raise BadRequest(f"BlockSize {bs}: each must be a multiple of 16, <= 1024")
            cfg["block_size"] = bs
        if "voxelsize" in s:
            vs = _parse_triple(s["voxelsize"], "VoxelSize", float)
            if any(v <= 0 for v in vs):
                raise BadRequest("VoxelSize must be positive")
            cfg["voxel_size"] = vs
        if "voxelunits" in s:
            cfg["voxel_units"] = _parse_triple(s["voxelunits"], "VoxelUnits", str)
        if "indexedlabels" in s:
            cfg["indexed"] = s["indexedlabels"].strip().lower() not in ("false", "0", "off")
        if "maxdownreslevel" in s:
            try:
                lvl = int(s["maxdownreslevel"])
            except ValueError:
                raise BadRequest(f"bad MaxDownresLevel {s['maxdownreslevel']!r}") from None
            if not 0 <= lvl <= MAX_SCALE:
                raise BadRequest(f"MaxDownresLevel must be 0..{MAX_SCALE}")
            cfg["max_scale"] = lvl

    def on_create(self) -> None:
        # Blocks are always stored gzip-wrapped so compression=blocks passes them through.
        self.meta.compression = "gzip"

    def update_settings(self, settings: Mapping[str, str]) -> None:
        self._apply_settings(self.meta.config, settings, creating=False)

    @property
    def block_size(self) -> tuple[int, int, int]:
        """(bx, by, bz) voxels."""
        b = self.meta.config["block_size"]
        return (int(b[0]), int(b[1]), int(b[2]))

    @property
    def block_shape(self) -> tuple[int, int, int]:
        """(bz, by, bx) array shape of a block."""
        bx, by, bz = self.block_size
        return (bz, by, bx)

    @property
    def max_scale(self) -> int:
        return int(self.meta.config["max_scale"])

    @property
    def indexed(self) -> bool:
        return bool(self.meta.config["indexed"])

    def require_indexed(self, what: str) -> None:
        if not self.indexed:
            raise BadRequest(f"{what} requires IndexedLabels=true on {self.meta.name!r}")

    def scale_arg(self, call: Call) -> int:
        """The declared ``scale`` query parameter (0 when absent); 400 outside
        0..MaxDownresLevel."""
        s = call.params.get("scale") or 0
        if not 0 <= s <= self.max_scale:
            raise BadRequest(f"scale {s} is outside 0..MaxDownresLevel ({self.max_scale}) of "
                             f"{self.meta.name!r}")
        return s

    @property
    def voxel_limit(self) -> int:
        """Most voxels one request may read or write: :data:`MAX_VOXELS`, and no more than
        the server's ``maxRequestBytes`` holds as uint64 voxels (so a GET answers at most
        what a POST may send, and a decompressed POST body is no larger than a raw one)."""
        return max(1, min(MAX_VOXELS, self.manager.settings.max_request_bytes // 8))

    def check_voxels(self, n: int, what: str) -> None:
        """413 when ``n`` voxels exceed :attr:`voxel_limit`."""
        if n > self.voxel_limit:
            raise TooLarge(f"{what} of {n} voxels exceeds the limit of {self.voxel_limit} "
                           f"voxels (maxRequestBytes / 8, at most {MAX_VOXELS})")

    def check_box(self, offset: Sequence[int], size: Sequence[int], what: str) -> None:
        """400 when a voxel box leaves the int32 coordinate space; 413 when it holds more
        than :attr:`voxel_limit` voxels."""
        try:
            check_int32_box(offset, size, what)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        self.check_voxels(int(size[0]) * int(size[1]) * int(size[2]), what)

    def block_limits(self, scale: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """Inclusive ``(lo, hi)`` block coordinates storable at ``scale``: the block's
        voxels lie in the int32 space, and the scale-0 blocks it covers (``2**scale`` per
        axis) fit the 21-bit sign-magnitude fields of label-index block keys
        (``|c| <= 2**20 - 1``, §9.16.9)."""
        lo, hi = int32_block_limits(self.block_size)
        m = INDEX_BLOCK_MAX >> scale
        return ((max(lo[0], -m), max(lo[1], -m), max(lo[2], -m)),
                (min(hi[0], m), min(hi[1], m), min(hi[2], m)))

    def check_block_coords(self, coords: Any, scale: int) -> None:
        """400 naming the limit when a block coordinate at ``scale`` is outside
        :meth:`block_limits` (checked before anything is written)."""
        lo, hi = self.block_limits(scale)
        try:
            check_block_coords(coords, lo, hi, f"label-index block keys (|scale-0 block| <= "
                                               f"{INDEX_BLOCK_MAX}) and int32 voxels at "
                                               f"scale {scale}")
        except ValueError as e:
            raise BadRequest(str(e)) from None

    # ----- info -------------------------------------------------------------------------

    def extents(self, ctx: VersionedCtx) -> tuple[list[int], list[int]] | None:
        ext = self.get_property(ctx, "extents")
        return None if ext is None else (ext[0], ext[1])

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        cfg = self.meta.config
        ext = self.extents(ctx) if ctx is not None else None
        bs = self.block_size
        minp, maxp = ext if ext else (None, None)
        mini = [minp[i] // bs[i] for i in range(3)] if minp else None
        maxi = [maxp[i] // bs[i] for i in range(3)] if maxp else None
        return {
            "Values": [{"DataType": "uint64", "Label": "labelmap"}],
            "Interpolable": False,
            "BlockSize": list(bs),
            "VoxelSize": cfg["voxel_size"],
            "VoxelUnits": cfg["voxel_units"],
            "MinPoint": minp,
            "MaxPoint": maxp,
            "MinIndex": mini,
            "MaxIndex": maxi,
            "Background": 0,
            "GridStore": "",
            "ScaleLevel": 0,
            "MaxLabel": self.max_labels_by_version(),
            "MaxRepoLabel": self.repo_max_label(),
            "NextLabel": self.next_label_counter(),
            "IndexedLabels": self.indexed,
            "MaxDownresLevel": self.max_scale,
        }

    def info(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        out = super().info(ctx)
        ext = out["Extended"]
        out["Extents"] = {"MinPoint": ext["MinPoint"], "MaxPoint": ext["MaxPoint"]}
        return out

    def _drop_shared_state(self) -> None:
        """Forget counters that another server may have changed (the mapping cache of a
        shared store holds committed versions only, which cannot change)."""
        self._repo_max = None
        self._next_label = None

    # ----- counters ---------------------------------------------------------------------

    def _counter(self, name: str) -> int:
        raw = self.store.engine.get(data_key(self.meta.instance_id, L.counter_tkey(name), 0))
        return 0 if raw is None else int.from_bytes(raw, "little")

    def repo_max_label(self) -> int:
        if self._repo_max is None:
            self._repo_max = self._counter("maxrepolabel")
        return self._repo_max

    def next_label_counter(self) -> int:
        if self._next_label is None:
            self._next_label = self._counter("nextlabel")
        return self._next_label

    def max_labels_by_version(self) -> dict[str, int]:
        """``{VersionID: max label}`` for every version that recorded one."""
        base = instance_prefix(self.meta.instance_id) + tkey(L.MAXLABEL_CLASS, b"")
        out = {}
        for k, v in self.store.engine.scan(KeyRange.prefix(base)):
            if k[-1] != 0x03:
                continue
            out[str(int.from_bytes(k[-5:-1], "big"))] = int.from_bytes(v, "little")
        return out

    def version_max_label(self, ctx: VersionedCtx) -> int | None:
        raw = self.store.get(ctx, tkey(L.MAXLABEL_CLASS, b""))
        return None if raw is None else int.from_bytes(raw, "little")

    def note_labels(self, ctx: VersionedCtx, b: VersionedBatch, top: int) -> None:
        """Raise the version and repo max labels to ``top`` within batch ``b``."""
        if top <= 0:
            return
        cur = self.version_max_label(ctx)
        if cur is None or top > cur:
            b.put(tkey(L.MAXLABEL_CLASS, b""), top.to_bytes(8, "little"))
        if top > self.repo_max_label():
            b.wb.put(data_key(self.meta.instance_id, L.counter_tkey("maxrepolabel"), 0),
                     top.to_bytes(8, "little"))
            self._pending_repo_max = max(self._pending_repo_max, top)

    def allocate(self, ctx: VersionedCtx, b: VersionedBatch, n: int) -> int:
        """Reserve ``n`` new label ids within batch ``b`` (a :meth:`label_batch`, which
        publishes the counters once it commits); returns the first."""
        nxt = self._pending_next if self._pending_next is not None else \
            self.next_label_counter()
        if nxt:
            start = nxt
            new_next = nxt + n
            b.wb.put(data_key(self.meta.instance_id, L.counter_tkey("nextlabel"), 0),
                     new_next.to_bytes(8, "little"))
            self._pending_next = new_next
        else:
            start = max(self.repo_max_label(), self._pending_repo_max) + 1
        if start + n - 1 > U64_MAX:
            raise BadRequest("label ids exhausted")
        ceiling = self._counter("nextlabelceiling") if nxt else 0
        if ceiling and start + n - 1 > ceiling:
            raise BadRequest(f"allocating {n} label(s) from {start} would pass the ceiling "
                             f"{ceiling} set by set-nextlabel")
        self.note_labels(ctx, b, start + n - 1)
        return start

    @contextlib.contextmanager
    def label_batch(self, ctx: VersionedCtx) -> Iterator[VersionedBatch]:
        """A batch of ``ctx`` that commits when the block ends and then publishes the label
        counters it raised (:meth:`finish_batch`); when the block raises, nothing is written
        and the counters are dropped (:meth:`abort_batch`)."""
        b = self.store.batch(ctx)
        try:
            yield b
            b.commit()
        except BaseException:
            self.abort_batch()
            raise
        self.finish_batch()

    def finish_batch(self) -> None:
        """Publish in-memory counter changes recorded during a committed batch."""
        pm = self._pending_repo_max
        if pm and pm > self.repo_max_label():
            self._repo_max = pm
        self._pending_repo_max = 0
        pn = self._pending_next
        if pn is not None:
            self._next_label = pn
        self._pending_next = None

    def abort_batch(self) -> None:
        self._pending_repo_max = 0
        self._pending_next = None

    # ----- blocks -----------------------------------------------------------------------

    def block_values(self, ctx: VersionedCtx, scale: int,
                     coords: np.ndarray) -> list[bytes | None]:
        """Stored values of the blocks at ``coords`` ((N, 3) x, y, z) of ``scale``."""
        return self.store.get_many(
            ctx, [L.block_tkey(scale, int(x), int(y), int(z)) for x, y, z in coords.tolist()])

    def serialization(self, ctx: VersionedCtx, value: bytes, mapped: bool) -> bytes:
        """The block serialization of a stored value, with bodies when ``mapped``."""
        try:
            ser = L.gunzip_value(value)
        except CodecError as e:
            raise BadRequest(f"stored block of {self.meta.name!r} is corrupt: {e}") from None
        if mapped:
            labels = L.label_list(ser)
            bodies = self.mapping.map_array(ctx, labels)
            if not np.array_equal(bodies, labels):
                ser = L.relabel_serialization(ser, bodies)
        return ser

    def decode_value(self, ctx: VersionedCtx, value: bytes, mapped: bool) -> np.ndarray:
        """(bz, by, bx) uint64 voxels of a stored block (bodies when ``mapped``)."""
        ser = self.serialization(ctx, value, mapped)
        try:
            return decode_block(ser, self.block_shape)
        except ValueError as e:
            raise BadRequest(f"stored block of {self.meta.name!r} is corrupt: {e}") from None

    def decode_mask(self, value: bytes, supervoxels: np.ndarray) -> np.ndarray:
        """(bz, by, bx) bool mask of a stored block's voxels holding one of
        ``supervoxels`` (decodes only the sub-blocks that mix members and non-members)."""
        try:
            return decode_block_mask(L.gunzip_value(value), supervoxels, self.block_shape)
        except (CodecError, ValueError) as e:
            raise BadRequest(f"stored block of {self.meta.name!r} is corrupt: {e}") from None

    def encode_value(self, arr: np.ndarray) -> bytes:
        """Stored value of a (bz, by, bx) supervoxel block."""
        return self.stored_value(encode_block(arr))

    def stored_value(self, serialization: bytes) -> bytes:
        """Stored value (gzip-wrapped, framed) of a block serialization."""
        lvl = self.meta.compression_level
        return L.frame_gzip_payload(L.gzip_payload(serialization, lvl if lvl > 0 else 1),
                                    self.meta.checksum == "crc32")

    def read_blocks(self, ctx: VersionedCtx, scale: int, coords: np.ndarray,
                    mapped: bool) -> dict[tuple[int, int, int], np.ndarray]:
        """Decoded existing blocks among ``coords``."""
        out = {}
        for c, v in zip(coords.tolist(), self.block_values(ctx, scale, coords), strict=True):
            if v is not None:
                out[tuple(c)] = self.decode_value(ctx, v, mapped)
        return out

    # ----- label indices ----------------------------------------------------------------

    def get_index(self, ctx: VersionedCtx, label: int) -> Any:
        """The LabelIndex protobuf of body ``label`` at ``ctx`` or None."""
        raw = self.store.get(ctx, L.index_tkey(label))
        if raw is None:
            return None
        try:
            return L.parse_index(raw)
        except Exception as e:
            raise BadRequest(f"stored label index of {label} is corrupt: {e}") from None

    def label_blocks(self, ctx: VersionedCtx, label: int) -> np.ndarray:
        """``(B, 3)`` x, y, z scale-0 block coordinates holding body ``label`` at ``ctx``
        (from its label index; empty when it has none)."""
        idx = self.get_index(ctx, label) if label else None
        if idx is None:
            return np.zeros((0, 3), dtype=np.int64)
        return L.index_block_coords(idx)

    def require_index(self, ctx: VersionedCtx, label: int, action: str = "") -> Any:
        """The label index of ``label``: 404 when absent, or 400 naming ``action`` for an
        edit (DVID answers edits of unknown labels with 400)."""
        idx = self.get_index(ctx, label)
        if idx is None or not len(idx.blocks):
            if action:
                raise BadRequest(f"label {label} to {action} does not exist")
            raise NotFound(f"label {label} not found in {self.meta.name!r}")
        return idx

    def index_for(self, ctx: VersionedCtx, label: int, supervoxels: bool) -> Any:
        """Index of a body, or (supervoxels=True) of one supervoxel filtered from its
        body's index; None when absent."""
        if not supervoxels:
            return self.get_index(ctx, label)
        body = self.mapping.lookup(ctx, [label])[label]
        if body == 0:
            return None
        idx = self.get_index(ctx, body)
        if idx is None:
            return None
        out = protos.LabelIndex(label=label, last_mutid=idx.last_mutid,
                                last_mod_time=idx.last_mod_time,
                                last_mod_user=idx.last_mod_user,
                                last_mod_app=idx.last_mod_app)
        for bk, svc in idx.blocks.items():
            c = svc.counts.get(label)
            if c:
                out.blocks[bk].counts[label] = c
        return out if len(out.blocks) else None

    def index_before(self, ctx: VersionedCtx, label: int, mutid: int) -> Any:
        """The newest stored label index of ``label`` on ``ctx``'s branch (this version,
        then its ancestors) written before mutation ``mutid`` (``last_mutid < mutid``), or
        None. Each version keeps only its last revision of an index, so this is the state
        before ``mutid`` exactly when no later edit of the label in the same version
        overwrote it."""
        tk = L.index_tkey(label)
        iid = self.meta.instance_id
        for v in ctx.ancestry.order:
            raw = self.store.engine.get(data_key(iid, tk, v))
            if raw is None:
                continue
            try:
                idx = L.parse_index(raw)
            except Exception as e:
                raise BadRequest(f"stored label index of {label} is corrupt: {e}") from None
            if idx.last_mutid < mutid:
                return idx if len(idx.blocks) else None
        return None

    def put_index(self, ctx: VersionedCtx, b: VersionedBatch, idx: Any, mutid: int) -> None:
        """Write (or delete, when it has no blocks) a body's index in batch ``b``."""
        if not len(idx.blocks):
            b.delete(L.index_tkey(idx.label))
            return
        idx.last_mutid = mutid
        idx.last_mod_time = L.rfc3339_now()
        idx.last_mod_user = ctx.user
        idx.last_mod_app = ctx.app
        b.put(L.index_tkey(idx.label), L.serialize_index(idx))

    @staticmethod
    def label_counts(arr: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Labels of a block (sorted, 0 included when present) and their voxel counts
        (uint64); two empty arrays for ``None`` (no block)."""
        if arr is None:
            z = np.zeros(0, dtype=np.uint64)
            return z, z.copy()
        return block_codec.label_counts(arr)

    def index_block_changes(
        self, ctx: VersionedCtx, b: VersionedBatch,
        changes: Iterable[tuple[tuple[int, int, int], tuple[np.ndarray, np.ndarray],
                                tuple[np.ndarray, np.ndarray]]],
        mutid: int,
    ) -> set[int]:
        """Update label indices for scale-0 blocks replaced ``old → new``, each given as
        ``(coord, (old labels, old counts), (new labels, new counts))`` (see
        :meth:`label_counts`; label 0 is ignored, a coord must not repeat); returns bodies
        whose index changed. Vectorized over all (block, label) pairs."""
        coords, labs, olds, news = [], [], [], []
        for coord, (so, co), (sn, cn) in changes:
            coords += [coord, coord]
            labs += [so, sn]
            olds += [co, np.zeros(sn.size, np.uint64)]
            news += [np.zeros(so.size, np.uint64), cn]
        if not coords:
            return set()
        sizes = np.fromiter((a.size for a in labs), dtype=np.int64, count=len(labs))
        keys = encode_block_coords(np.array(coords, dtype=np.int64).reshape(-1, 3))
        bk = np.repeat(keys.astype(np.uint64), sizes)
        sv = np.concatenate(labs).astype(np.uint64, copy=False)
        oc = np.concatenate(olds).astype(np.uint64, copy=False)
        nc = np.concatenate(news).astype(np.uint64, copy=False)
        keep = sv != 0
        bk, sv, oc, nc = bk[keep], sv[keep], oc[keep], nc[keep]
        if not bk.size:
            return set()
        order = np.lexsort((sv, bk))
        bk, sv, oc, nc = bk[order], sv[order], oc[order], nc[order]
        first = np.ones(bk.size, dtype=bool)
        first[1:] = (bk[1:] != bk[:-1]) | (sv[1:] != sv[:-1])
        starts = np.flatnonzero(first)
        bk, sv = bk[starts], sv[starts]
        oc, nc = np.add.reduceat(oc, starts), np.add.reduceat(nc, starts)
        ch = oc != nc
        if not ch.any():
            return set()
        return self.apply_index_rows(ctx, b, bk[ch], sv[ch], nc[ch], mutid)

    def apply_index_rows(self, ctx: VersionedCtx, b: VersionedBatch, bk: np.ndarray,
                         sv: np.ndarray, cn: np.ndarray, mutid: int,
                         bodies: np.ndarray | None = None) -> set[int]:
        """Set index counts ``(block key, sv) = count`` (0 removes) grouped by body."""
        if bodies is None:
            bodies = self.mapping.map_array(ctx, sv)
        order = np.argsort(bodies, kind="stable")
        bodies, bk, sv, cn = bodies[order], bk[order], sv[order], cn[order]
        ub, starts = np.unique(bodies, return_index=True)
        ends = np.append(starts[1:], bodies.size)
        touched = set()
        for body, s, e in zip(ub.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if body == 0:
                continue
            idx = self.get_index(ctx, body) or protos.LabelIndex(label=body)
            blocks = idx.blocks
            for k, v, c in zip(bk[s:e].tolist(), sv[s:e].tolist(), cn[s:e].tolist(),
                               strict=True):
                if c:
                    blocks[k].counts[v] = c
                elif k in blocks:
                    counts = blocks[k].counts
                    if v in counts:
                        del counts[v]
                    if not len(counts):
                        del blocks[k]
            self.put_index(ctx, b, idx, mutid)
            touched.add(body)
        return touched

    # ----- extents ----------------------------------------------------------------------

    def grow_extents(self, ctx: VersionedCtx, b: VersionedBatch, lo: Sequence[int],
                     hi: Sequence[int]) -> None:
        """Union the scale-0 voxel box [lo, hi] (inclusive) into this version's extents."""
        ext = self.extents(ctx)
        if ext is not None:
            lo = [min(a, c) for a, c in zip(ext[0], lo, strict=True)]
            hi = [max(a, c) for a, c in zip(ext[1], hi, strict=True)]
            if [list(ext[0]), list(ext[1])] == [list(lo), list(hi)]:
                return
        b.put(tkey(1, b"extents\x00"), json.dumps([list(lo), list(hi)]).encode())

    # ----- mutation log and events ------------------------------------------------------

    def log_mutation(self, ctx: VersionedCtx, b: VersionedBatch, mutid: int,
                     record: dict[str, Any]) -> dict[str, Any]:
        """Append a completed-mutation record (``GET mutations``) in batch ``b``."""
        action = record.get("Action")
        if action in COMPLETED:
            record = {**record, "Action": f"{action}-complete"}
        rec = {**record, "UUID": ctx.node.uuid, "MutationID": mutid,
               "Timestamp": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        if ctx.user:
            rec["User"] = ctx.user
        if ctx.app:
            rec["App"] = ctx.app
        b.put(L.mutlog_tkey(ctx.version, mutid), json.dumps(rec).encode())
        self.manager.mutations.enqueue(self, rec, b.wb)
        return rec

    # ----- version diff -----------------------------------------------------------------

    def describe_key(self, tk: bytes) -> Any:
        """Blocks as ``{"block": [x, y, z], "scale": s}``, label indices as
        ``{"label": body}``, mappings as ``{"supervoxel": sv}``; counters and the
        mutation log are left out."""
        c = tk[0] if tk else -1
        if c == L.BLOCK_CLASS:
            s, x, y, z = L.decode_block_tkey(tk)
            return {"block": [x, y, z], "scale": s}
        if c == L.INDEX_CLASS:
            return {"label": int.from_bytes(tk[2:10], "big")}
        if c == L.MAPPING_CLASS:
            return {"supervoxel": int.from_bytes(tk[2:10], "big")}
        if c == L.MAXLABEL_CLASS:
            return "maxlabel"
        if c in (L.COUNTER_CLASS, L.MUTLOG_CLASS):
            return None
        return super().describe_key(tk)

    def diff_summary(self, ctx_from: VersionedCtx, ctx_to: VersionedCtx,
                     changes: list[tuple[bytes, Any, Any]]) -> dict[str, Any]:
        """Bodies added, changed and deleted (from their label indices), supervoxels whose
        mapping changed, blocks rewritten per scale, and the completed-mutation records on
        the way to ``to`` (``mutations``) and only on the way to ``from``
        (``mutations_from``)."""
        bodies: dict[str, list[int]] = {"added": [], "changed": [], "deleted": []}
        remapped = 0
        blocks: dict[int, int] = {}
        for tk, old, new in changes:
            c = tk[0]
            if c == L.INDEX_CLASS:
                kind = "added" if old is None else "deleted" if new is None else "changed"
                bodies[kind].append(int.from_bytes(tk[2:10], "big"))
            elif c == L.MAPPING_CLASS:
                remapped += 1
            elif c == L.BLOCK_CLASS:
                blocks[tk[2]] = blocks.get(tk[2], 0) + 1
        muts = self.mutations_between(changes, L.MUTLOG_CLASS)
        return {"bodies_added": bodies["added"], "bodies_changed": bodies["changed"],
                "bodies_deleted": bodies["deleted"], "supervoxels_remapped": remapped,
                "blocks_changed": {str(k): v for k, v in sorted(blocks.items())},
                "mutations": muts["to"], "mutations_from": muts["from"]}

    def mutation_records(self, ctx: VersionedCtx, version: int | None = None,
                         ) -> list[dict[str, Any]]:
        """Mutation-log records written at ``version`` (default: ``ctx``'s own; else an
        ancestor of it), in mutation order. A corrupt record is a 400 naming it."""
        v = ctx.version if version is None else version
        pre = tkey(L.MUTLOG_CLASS, v.to_bytes(4, "big"))
        return [jsonio.loads(raw, f"stored mutation record of {self.meta.name!r}")
                for _, raw in self.store.scan_prefix(ctx, pre)]

    def emit(self, ctx: VersionedCtx, kind: str, payload: dict[str, Any], mutid: int) -> None:
        """Publish a :class:`SyncEvent` to synced instances."""
        self.publish(ctx, SyncEvent(kind, payload, mutid))

    # ----- multiscale -------------------------------------------------------------------

    def pyramid_plan(self, ctx: VersionedCtx, box: Sequence[int]) -> PyramidPlan:
        """Nothing to build: every write at scale 0 recomputes scales 1..MaxDownresLevel
        above the blocks it changed (DVID's rule for ``POST raw``)."""
        return PyramidPlan(0, self.block_size, note=(
            f"labelmap levels 1..{self.max_scale} were built as the blocks were written"
            if self.max_scale else "labelmap has MaxDownresLevel 0: no levels"))

    def downres(self, ctx: VersionedCtx, scale0: Mapping[tuple[int, int, int], np.ndarray],
                ) -> dict[tuple[int, tuple[int, int, int]], np.ndarray]:
        """Recompute every lower-scale block above the given changed scale-0 blocks.

        ``scale0`` maps block coords to their new (supervoxel) contents; unchanged
        siblings are read from storage. Returns ``{(scale, coord): block}`` for scales
        1..MaxDownresLevel.
        """
        out: dict[tuple[int, tuple[int, int, int]], np.ndarray] = {}
        level: dict[tuple[int, int, int], np.ndarray] = dict(scale0)
        for s in range(1, self.max_scale + 1):
            parents = sorted({(x >> 1, y >> 1, z >> 1) for x, y, z in level})
            need = []
            for px, py, pz in parents:
                for i in range(8):
                    c = (2 * px + (i & 1), 2 * py + ((i >> 1) & 1), 2 * pz + ((i >> 2) & 1))
                    if c not in level:
                        need.append(c)
            if need:
                stored = self.read_blocks(ctx, s - 1, np.array(need, dtype=np.int64), False)
                level.update(stored)
            nxt = {}
            for px, py, pz in parents:
                octs = []
                for i in range(8):
                    c = (2 * px + (i & 1), 2 * py + ((i >> 1) & 1), 2 * pz + ((i >> 2) & 1))
                    octs.append(level.get(c))
                nxt[(px, py, pz)] = downres_octants(octs)
                out[(s, (px, py, pz))] = nxt[(px, py, pz)]
            level = nxt
        return out
