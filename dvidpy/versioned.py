"""Copy-on-write versioned storage on top of any ordered byte engine.

Every write at version V stores ``data_key(iid, tkey, V)`` and removes V's tombstone for that
TKey; every delete removes V's value and writes a tombstone. Ancestors are never touched.
A read at V resolves among the stored revisions of a TKey (dvid-api.md §3.2):

* **linear ancestry** (no merge node between V and the root): the nearest ancestor with a
  revision wins; a tombstone there means "not found". VersionIDs are assigned in creation
  order, so along a chain the nearest ancestor is the one with the largest VersionID ≤ V,
  which lets a read walk one *reverse* scan from V and stop at the first ancestor.
* **merge nodes**: among the revisions at ancestors of V, drop every revision that is an
  ancestor of another such revision (it was superseded on that path). If one survives, it
  wins. If several survive, the non-tombstone ones decide: none → not found, exactly one
  → it, more than one → :class:`~dvidpy.errors.Conflict` (DVID's "conflict-free merge"
  promise broken; resolve it with a new version).

Unversioned instances read and write everything at the repo root version and are writable
whatever the lock state of the requested node. Writes to a locked node of a versioned
instance raise :class:`~dvidpy.errors.LockedNodeError` here as well as at the HTTP layer.

:meth:`VersionedStore.resolve_plan` finds, for ``POST /api/repo/{uuid}/resolve``, the keys
whose winning revisions differ between priority-ordered merge parents and what to write in
new children of the losing parents so that a merge of them reads the winner's value
(see its docstring for the exact rule; :mod:`dvidpy.repo` creates the versions).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dvidpy.dag import Ancestry, Node
from dvidpy.errors import Conflict, LockedNodeError
from dvidpy.keys import MARK_TOMBSTONE, SUFFIX_LEN, instance_prefix, meta_key
from storage.base import KeyRange, KVEngine, WriteBatch


@dataclass
class VersionedCtx:
    """Where a request reads and writes: one instance at one resolved version.

    ``version`` is the version keys are written at (the root version for unversioned
    instances); ``node`` is the node the client named (its lock state decides writes);
    ``is_ancestor(a, b)`` answers DAG questions for merge resolution.
    """

    instance_id: int
    version: int
    ancestry: Ancestry
    node: Node
    versioned: bool = True
    is_ancestor: Callable[[int, int], bool] = field(default=lambda a, b: a == b)
    user: str = ""
    app: str = ""
    #: server ``rwmode = "fullwrite"``: writes allowed on committed nodes
    allow_locked: bool = False
    #: ``0x01 | instance_id`` (precomputed)
    prefix: bytes = field(init=False, repr=False)
    #: ``version`` as 4 big-endian bytes (precomputed)
    vbytes: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.prefix = instance_prefix(self.instance_id)
        self.vbytes = self.version.to_bytes(4, "big")

    def check_writable(self) -> None:
        """Raise :class:`LockedNodeError` when writes are not allowed at this context."""
        if self.versioned and self.node.locked and not self.allow_locked:
            raise LockedNodeError(
                f"Cannot write to locked node {self.node.uuid}: it has been committed"
            )


#: a read that conflicts (several live revisions reach a merge), in :meth:`VersionedStore.diff`
CONFLICT = object()
#: candidate keys a diff reads per batched get
DIFF_BATCH = 4096

#: Above this many ancestors holding keys of an instance, point reads scan the key's
#: revisions instead of probing each ancestor with a get.
MAX_PROBES = 4


def _version_of(key: bytes) -> int:
    return int.from_bytes(key[-SUFFIX_LEN:-1], "big")


class _DiffSide:
    """How one side of :meth:`VersionedStore.diff` reads the candidate TKeys.

    On a linear ancestry the versions between the sides that are ancestors of this side
    are nearer than every common ancestor, so for a TKey written at some of them the
    nearest one holds the winning revision: its value key, or (none there) a tombstone —
    one read, whose absence is final. Other TKeys, and every TKey on a merge ancestry, are
    read at the side's own version first and, when absent there, resolved among older
    revisions (:meth:`VersionedStore._get_older`).
    """

    __slots__ = ("ctx", "final", "near", "suffix")

    def __init__(self, ctx: VersionedCtx, written: dict[int, list[bytes]]) -> None:
        self.ctx = ctx
        #: the suffix (version + data mark) of every first read, unless ``near`` is set
        self.suffix = ctx.vbytes + b"\x03"
        #: whether absence at ``suffix`` is final (this side wrote every candidate there)
        self.final = False
        #: TKey → suffix of its nearest writer, when first reads differ by TKey
        self.near: dict[bytes, bytes] | None = None
        if not ctx.ancestry.linear:
            return
        pos = ctx.ancestry.pos
        mine = sorted((v for v in written if v in pos), key=pos.__getitem__, reverse=True)
        if not mine:
            return
        if len(mine) == len(written) == 1:  # e.g. a child against its parent
            self.suffix = mine[0].to_bytes(4, "big") + b"\x03"
            self.final = True
            return
        near: dict[bytes, bytes] = {}
        for v in mine:  # farthest first: nearer versions overwrite
            near.update(dict.fromkeys(written[v], v.to_bytes(4, "big") + b"\x03"))
        self.near = near

    def first_reads(self, tks: list[bytes], bases: list[bytes]
                    ) -> tuple[list[bytes], list[bool] | None]:
        """Engine keys to read first for ``tks`` (``bases``: instance prefix + TKey), and
        per key whether its absence is final (``None``: as :attr:`final` says)."""
        if self.near is None:
            sfx = self.suffix
            return [b + sfx for b in bases], None
        own = self.suffix
        per = [self.near.get(tk) for tk in tks]
        keys = [b + (s if s is not None else own) for b, s in zip(bases, per, strict=True)]
        return keys, [s is not None for s in per]

    def resolve_missed(self, store: VersionedStore, tks: list[bytes], vals: list[Any],
                       final: list[bool] | None) -> None:
        """Complete the first reads ``vals`` in place: a TKey absent there whose absence
        is not final is resolved among its older revisions (:data:`CONFLICT` where that
        read conflicts)."""
        if final is None and self.final:
            return
        pre = self.ctx.prefix
        for j in [j for j, v in enumerate(vals) if v is None]:
            if final is not None and final[j]:
                continue
            try:
                vals[j] = store._get_older(self.ctx, pre + tks[j])[0]
            except Conflict:
                vals[j] = CONFLICT


def _vset_key(instance_id: int) -> bytes:
    return meta_key(b"vset/" + instance_id.to_bytes(4, "big"))


def _unindexed_key(instance_id: int, version: int) -> bytes:
    """Marker of a version written behind a *shared* store's back (no in-memory index)."""
    return meta_key(b"vku/" + instance_id.to_bytes(4, "big") + version.to_bytes(4, "big"))


def written_prefix(instance_id: int, version: int | None = None) -> bytes:
    """Prefix of the *written-keys index*: ``0x00 | "vk/" | iid u32 | version u32 | batch id``
    → the TKeys one batch wrote or deleted at that version of a versioned instance
    (:func:`pack_tkeys`), written in that batch: one extra key per batch.
    :meth:`VersionedStore.diff` reads it to find what changed at a version without
    scanning the instance."""
    p = meta_key(b"vk/" + instance_id.to_bytes(4, "big"))
    return p if version is None else p + version.to_bytes(4, "big")


_batch_ids = itertools.count()


def _batch_id() -> bytes:
    """A key suffix unique to one batch of this process (ns time + counter + pid)."""
    return (time.time_ns().to_bytes(8, "big") + (next(_batch_ids) & 0xFFFFFFFF).to_bytes(4, "big")
            + (os.getpid() & 0xFFFFFFFF).to_bytes(4, "big"))


def pack_tkeys(tks: Sequence[bytes]) -> bytes:
    """TKeys as one index value: count (u32 BE), their lengths (u32 BE each), then the
    TKeys back to back (two C-level joins, whatever the count)."""
    lens = array("I", map(len, tks))
    if sys.byteorder == "little":
        lens.byteswap()
    return len(tks).to_bytes(4, "big") + lens.tobytes() + b"".join(tks)


def unpack_tkeys(value: bytes) -> list[bytes]:
    """Inverse of :func:`pack_tkeys`."""
    n = int.from_bytes(value[:4], "big")
    lens = array("I")
    lens.frombytes(value[4:4 + 4 * n])
    if sys.byteorder == "little":
        lens.byteswap()
    ends = list(itertools.accumulate(lens, initial=4 + 4 * n))
    return [value[i:j] for i, j in itertools.pairwise(ends)]


class _AnyVersion:
    """A set that holds every version: what a server sharing its store with others knows
    of which versions hold keys of an instance (others may write at any version)."""

    def __contains__(self, v: object) -> bool:
        return True

    def __or__(self, other: object) -> _AnyVersion:
        return self

    __ror__ = __or__

    def __and__(self, other: Iterable[int]) -> set[int]:
        return set(other)

    __rand__ = __and__


@dataclass
class _InstanceVersions:
    """Versions holding data keys / tombstones of one instance, and cached probe lists.

    ``unindexed``: versions whose keys may be missing from the written-keys index (data
    written behind the store's back, or before the index existed)."""

    data: set[int]
    tomb: set[int]
    cands: dict[int, tuple[int, ...]] = field(default_factory=dict)
    unindexed: set[int] = field(default_factory=set)

    def to_json(self) -> bytes:
        return json.dumps({"d": sorted(self.data), "t": sorted(self.tomb), "k": 1,
                           "u": sorted(self.unindexed)}).encode()


class VersionedViews:
    """What :meth:`VersionedStore.read_views` yields: :meth:`scan` as
    :meth:`VersionedStore.scan` and :meth:`get_own`, whose values may be buffers."""

    def __init__(self, scan: Callable[[VersionedCtx, bytes, bytes | None],
                                      Iterator[tuple[bytes, Any]]],
                 get_many: Callable[[Sequence[bytes]], list[Any]] | None = None) -> None:
        self._scan = scan
        self._get_many = get_many

    def scan(self, ctx: VersionedCtx, start: bytes, end: bytes | None,
             ) -> Iterator[tuple[bytes, Any]]:
        """Visible ``(tkey, value)`` pairs with ``start <= tkey < end`` in TKey order."""
        return self._scan(ctx, start, end)

    def get_own(self, ctx: VersionedCtx, tks: Sequence[bytes]) -> list[Any]:
        """Values of ``tks`` written at ``ctx``'s own version (what it reads, as point
        reads find first), in order; ``None`` for a TKey not written there, which an
        ancestor may still hold or a tombstone hide (:meth:`scan` resolves those). All
        ``None`` where the reader offers no point reads (a cached store)."""
        if self._get_many is None:
            return [None] * len(tks)
        suffix = ctx.vbytes + b"\x03"
        pre = ctx.prefix
        return self._get_many([pre + t + suffix for t in tks])


class VersionedStore:
    """Versioned reads and writes of TKeys for instances stored in one engine.

    ``shared=True`` (a store other servers write too): the in-memory index of which
    versions hold keys of an instance is not kept, since another server may add a version
    at any time; reads then probe or scan every ancestor and writes always clear a
    possible tombstone, which is always correct and costs a few extra reads.
    """

    def __init__(self, engine: KVEngine, shared: bool = False) -> None:
        self.engine = engine
        self.shared = shared
        self._iv: dict[int, _InstanceVersions] = {}
        self._iv_lock = threading.Lock()
        if shared:
            self._any = _InstanceVersions(_AnyVersion(), _AnyVersion())  # type: ignore[arg-type]

    # ----- resolution -------------------------------------------------------------------

    @staticmethod
    def _resolve(ctx: VersionedCtx, revs: Sequence[tuple[int, bool]]) -> tuple[int, bool] | None:
        """Pick the winning ``(version, is_tombstone)`` among revisions of one TKey."""
        pos = ctx.ancestry.pos
        cands = [r for r in revs if r[0] in pos]
        if not cands:
            return None
        if ctx.ancestry.linear or len(cands) == 1:
            return min(cands, key=lambda r: pos[r[0]])
        maximal = [
            c for c in cands
            if not any(d[0] != c[0] and ctx.is_ancestor(c[0], d[0]) for d in cands)
        ]
        if len(maximal) == 1:
            return maximal[0]
        live = [m for m in maximal if not m[1]]
        if not live:
            return maximal[0]
        if len(live) > 1:
            raise Conflict(
                "conflicting revisions at versions "
                f"{sorted(m[0] for m in live)} reach merge version {ctx.version}"
            )
        return live[0]

    # ----- which versions hold data of an instance ---------------------------------------

    def _versions(self, iid: int) -> _InstanceVersions:
        if self.shared:
            return self._any
        iv = self._iv.get(iid)
        if iv is None:
            with self._iv_lock:
                iv = self._iv.get(iid)
                if iv is None:
                    raw = self.engine.get(_vset_key(iid))
                    if raw is None:
                        iv = self._scan_versions(iid)
                        iv.unindexed = iv.data | iv.tomb  # keys from before the index
                    else:
                        d = json.loads(raw)
                        iv = _InstanceVersions(set(d["d"]), set(d["t"]))
                        iv.unindexed = (set(d.get("u", ())) if d.get("k")
                                        else iv.data | iv.tomb)
                    self._iv[iid] = iv
        return iv

    def _scan_versions(self, iid: int, reindex: bool = False) -> _InstanceVersions:
        iv = _InstanceVersions(set(), set())
        pre = instance_prefix(iid)
        per_version: dict[int, list[bytes]] = {}
        for k, _ in self.engine.scan(KeyRange.prefix(pre), keys_only=True):
            v = _version_of(k)
            (iv.tomb if k[-1] == MARK_TOMBSTONE else iv.data).add(v)
            if reindex:
                per_version.setdefault(v, []).append(k[len(pre):-SUFFIX_LEN])
        if reindex:
            self.engine.delete_range(KeyRange.prefix(written_prefix(iid)))
            wb = self.engine.batch()
            for v, tks in per_version.items():
                for i in range(0, len(tks), 65536):
                    wb.put(written_prefix(iid, v) + _batch_id(), pack_tkeys(tks[i:i + 65536]))
            wb.commit()
        return iv

    def rebuild_versions(self, instance_id: int) -> None:
        """Recompute which versions hold keys of an instance, and the written-keys index,
        from the keys themselves (one scan).

        Call after writing data keys behind the store's back (e.g. a repo transfer writing
        raw engine keys); ordinary puts and deletes keep both current by themselves.
        A no-op on a shared store (which keeps no index).
        """
        if self.shared:
            return
        with self._iv_lock:
            iv = self._scan_versions(instance_id, reindex=True)
            self.engine.put(_vset_key(instance_id), iv.to_json())
            self._iv[instance_id] = iv

    def add_versions(self, instance_id: int, versions: Iterable[int]) -> None:
        """Record that ``versions`` may hold keys (values or tombstones) of an instance.

        For writers that bypass the store (repo transfers writing raw engine keys). A
        superset is harmless: it only costs a few extra point probes on reads.
        """
        vs = set(versions)
        if self.shared:  # no in-memory index; mark the versions unindexed for diffs
            wb = self.engine.batch()
            for v in vs:
                wb.put(_unindexed_key(instance_id, v), b"")
            wb.commit()
            return
        iv = self._versions(instance_id)
        if vs <= iv.data and vs <= iv.tomb and vs <= iv.unindexed:
            return
        with self._iv_lock:
            iv = self._iv[instance_id]
            nxt = _InstanceVersions(iv.data | vs, iv.tomb | vs,
                                    unindexed=iv.unindexed | vs)
            self.engine.put(_vset_key(instance_id), nxt.to_json())
            self._iv[instance_id] = nxt

    def _ancestor_candidates(self, ctx: VersionedCtx, iv: _InstanceVersions) -> tuple[int, ...]:
        c = None if self.shared else iv.cands.get(ctx.version)
        if c is None:
            data, tomb = iv.data, iv.tomb
            c = tuple(v for v in ctx.ancestry.order[1:] if v in data or v in tomb)
            if not self.shared:
                iv.cands[ctx.version] = c
        return c

    # ----- point reads ------------------------------------------------------------------

    def get_with_version(self, ctx: VersionedCtx, tk: bytes) -> tuple[bytes | None, int | None]:
        """``(value, version it was written at)``; ``(None, None)`` when absent/deleted.

        Linear ancestry: the read version's own key first, then point gets at the few
        ancestors known to hold any key of this instance (nearest first), falling back to
        one scan of the key's revisions when more than :data:`MAX_PROBES` ancestors do.
        """
        base = ctx.prefix + tk
        val = self.engine.get(base + ctx.vbytes + b"\x03")
        if val is not None:
            return val, ctx.version
        return self._get_older(ctx, base)

    def _get_older(self, ctx: VersionedCtx, base: bytes) -> tuple[bytes | None, int | None]:
        """Resolve ``base`` (instance prefix + TKey) when the read version has no value."""
        eng = self.engine
        iv = self._versions(ctx.instance_id)
        if ctx.version in iv.tomb and eng.get(base + ctx.vbytes + b"\x4f") is not None:
            return None, None
        if ctx.ancestry.linear:
            cands = self._ancestor_candidates(ctx, iv)
            if len(cands) <= MAX_PROBES:
                tomb = iv.tomb
                for v in cands:
                    vb = v.to_bytes(4, "big")
                    val = eng.get(base + vb + b"\x03")
                    if val is not None:
                        return val, v
                    if v in tomb and eng.get(base + vb + b"\x4f") is not None:
                        return None, None
                return None, None
        revs = [
            (_version_of(k), k[-1] == MARK_TOMBSTONE)
            for k, _ in eng.scan(KeyRange.prefix(base), keys_only=True)
        ]
        win = self._resolve(ctx, revs)
        if win is None or win[1]:
            return None, None
        return eng.get(base + win[0].to_bytes(4, "big") + b"\x03"), win[0]

    def get(self, ctx: VersionedCtx, tk: bytes) -> bytes | None:
        """Value of ``tk`` visible at ``ctx`` (``None`` if absent or deleted)."""
        base = ctx.prefix + tk
        val = self.engine.get(base + ctx.vbytes + b"\x03")  # written at V
        if val is not None:
            return val
        return self._get_older(ctx, base)[0]

    def exists(self, ctx: VersionedCtx, tk: bytes) -> bool:
        """True when ``tk`` has a visible value at ``ctx``."""
        return self.get_with_version(ctx, tk)[1] is not None

    def get_many(self, ctx: VersionedCtx, tks: Sequence[bytes]) -> list[bytes | None]:
        """Values of ``tks`` in order. Uses the engine's batched get for the common case of
        keys written at the read version, then resolves the rest one by one."""
        suffix = ctx.vbytes + b"\x03"
        pre = ctx.prefix
        direct = self.engine.get_many([pre + t + suffix for t in tks])
        if None not in direct:
            return direct
        older = VersionedStore._get_older  # this class's read, also under a caching subclass
        return [d if d is not None else older(self, ctx, pre + t)[0]
                for d, t in zip(direct, tks, strict=True)]

    # ----- range reads ------------------------------------------------------------------

    def scan(
        self,
        ctx: VersionedCtx,
        start: bytes,
        end: bytes | None,
        *,
        keys_only: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Visible ``(tkey, value)`` pairs with ``start <= tkey < end`` in TKey order.

        ``end=None`` scans to the end of the instance; to include a TKey ``t`` as the last
        one, pass ``end=storage.prefix_successor(t)``. With ``keys_only`` values are
        ``b""``. One engine scan; revisions of each TKey are adjacent and resolved together.
        """
        return self._scan(ctx, start, end, keys_only, self.engine.scan)

    def _scan(self, ctx: VersionedCtx, start: bytes, end: bytes | None, keys_only: bool,
              engine_scan: Callable[..., Iterator[tuple[bytes, Any]]],
              ) -> Iterator[tuple[bytes, Any]]:
        pre = instance_prefix(ctx.instance_id)
        rng = KeyRange(pre + start, pre + end if end is not None else KeyRange.prefix(pre).end)
        plen = len(pre)
        pos = ctx.ancestry.pos
        linear = ctx.ancestry.linear
        cur: bytes | None = None
        revs: list[tuple[int, bool]] = []
        vals: dict[int, bytes] = {}
        best = -1  # linear fast path: best position so far (smaller = nearer)
        best_rev: tuple[int, bool] | None = None

        def emit() -> tuple[bytes, bytes] | None:
            win = best_rev if linear else self._resolve(ctx, revs)
            if win is None or win[1]:
                return None
            return cur, vals.get(win[0], b"")  # type: ignore[return-value]

        for k, value in (engine_scan(rng, keys_only=True) if keys_only else engine_scan(rng)):
            tk = k[plen:-SUFFIX_LEN]
            if tk != cur:
                if cur is not None:
                    out = emit()
                    if out is not None:
                        yield out
                cur, revs, vals, best, best_rev = tk, [], {}, -1, None
            ver = int.from_bytes(k[-SUFFIX_LEN:-1], "big")
            p = pos.get(ver)
            if p is None:
                continue
            rev = (ver, k[-1] == MARK_TOMBSTONE)
            if linear:
                if best_rev is None or p < best:
                    best, best_rev = p, rev
                    vals = {ver: value}
            else:
                revs.append(rev)
                vals[ver] = value
        if cur is not None:
            out = emit()
            if out is not None:
                yield out

    @contextlib.contextmanager
    def read_views(self) -> Iterator[VersionedViews]:
        """Range reads whose values may be buffers valid only until the ``with`` block
        exits (the engine's :meth:`~storage.base.KVEngine.read_views`: on LMDB views into
        one read transaction, no copy). Decode or copy every value inside the block."""
        with self.engine.read_views() as r:
            yield VersionedViews(lambda ctx, start, end: self._scan(ctx, start, end, False,
                                                                    r.scan), r.get_many)

    def scan_prefix(
        self, ctx: VersionedCtx, tkey_prefix: bytes, *, keys_only: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Visible pairs whose TKey starts with ``tkey_prefix``."""
        end = KeyRange.prefix(tkey_prefix).end
        return self.scan(ctx, tkey_prefix, end, keys_only=keys_only)

    # ----- version diff (GET /api/repo/{uuid}/diff/{from}/{to}) ------------------------

    def diff_written(self, a: VersionedCtx, b: VersionedCtx) -> dict[int, list[bytes]]:
        """The TKeys written or deleted at each version between ``a`` and ``b`` (one
        instance): ``{version: [tkey, ...]}`` for the versions that are ancestors of one
        context but not of the other and hold keys of the instance (per the version
        index). A TKey may be listed more than once for one version (once per batch).

        Only revisions at such versions can make the reads differ (revisions at common
        ancestors resolve the same from both sides), so these TKeys are the diff's
        candidates. They are read from the written-keys index of those versions: cost
        proportional to what was written between them. Versions marked unindexed fall back
        to one key-only scan of the instance (on a shared store, which keeps no version
        index, every version between them is probed for an unindexed marker). Empty for
        unversioned instances.
        """
        if not (a.versioned and b.versioned):
            return {}
        iid = a.instance_id
        iv = self._versions(iid)
        between = set(a.ancestry.pos).symmetric_difference(b.ancestry.pos)
        hot = between & (iv.data | iv.tomb)
        out: dict[int, list[bytes]] = {}
        if not hot:
            return out
        unindexed = ({v for v in hot if self.engine.get(_unindexed_key(iid, v)) is not None}
                     if self.shared else hot & iv.unindexed)
        if unindexed:
            pre = instance_prefix(iid)
            plen = len(pre)
            for k, _ in self.engine.scan(KeyRange.prefix(pre), keys_only=True):
                v = _version_of(k)
                if v in hot:
                    out.setdefault(v, []).append(k[plen:-SUFFIX_LEN])
            return out
        for v in sorted(hot):
            tks: list[bytes] = []
            for _, packed in self.engine.scan(KeyRange.prefix(written_prefix(iid, v))):
                tks += unpack_tkeys(packed)
            if tks:
                out[v] = tks
        return out

    def diff(self, a: VersionedCtx, b: VersionedCtx) -> Iterator[tuple[bytes, object, object]]:
        """``(tkey, value at a, value at b)`` for every TKey whose read differs between two
        contexts of one instance, in TKey order; a value is bytes, ``None`` (absent) or
        :data:`CONFLICT` (the read conflicts at that merge version; reported for keys
        written between the contexts). A key rewritten with the same bytes does not
        differ.

        Cost: :meth:`diff_written`, then for each candidate one point read per side, both
        sides' reads in one batched get in key order (the two revisions of a TKey are
        adjacent keys, so the second read finds the engine's path to it warm). A side with
        a linear ancestry reads a key written at versions between the sides at the nearest
        of them (its value key; none there means a tombstone); other keys are read at the
        side's own version and, when absent there, resolved among older revisions.
        """
        if a.instance_id != b.instance_id:
            raise ValueError("a diff compares one instance at two versions")
        written = self.diff_written(a, b)
        if not written:
            return
        if len(written) == 1:
            (only,) = written.values()
            tks = sorted(set(only))
        else:
            tks = sorted(set().union(*written.values()))
        side_a, side_b = _DiffSide(a, written), _DiffSide(b, written)
        pre = a.prefix
        for i in range(0, len(tks), DIFF_BATCH):
            chunk = tks[i:i + DIFF_BATCH]
            bases = [pre + tk for tk in chunk]
            ka, fa = side_a.first_reads(chunk, bases)
            kb, fb = side_b.first_reads(chunk, bases)
            keys = ka + kb
            keys[0::2], keys[1::2] = ka, kb
            got = self.engine.get_many(keys)
            va: list[Any] = got[0::2]  # bytes | None, and CONFLICT once resolved
            vb: list[Any] = got[1::2]
            side_a.resolve_missed(self, chunk, va, fa)
            side_b.resolve_missed(self, chunk, vb, fb)
            # CONFLICT != CONFLICT is False, hence the second test
            yield from [(tk, x, y) for tk, x, y in zip(chunk, va, vb, strict=True)
                        if x != y or x is CONFLICT]

    # ----- merge resolution (POST /api/repo/{uuid}/resolve) ------------------------------

    def resolve_plan(self, ctxs: Sequence[VersionedCtx]) -> Iterator[KeyResolution]:
        """What to write in new children of merge parents so that their merge reads, for
        every TKey, the value chosen by parent priority, and never conflicts.

        ``ctxs`` are one instance at each parent, in priority order (first wins). Rule, per
        TKey: take each parent's winning revision (the ordinary read rule). A parent's
        winning revision is *stale* when the ancestry of an earlier parent holds a newer
        revision of the key (written at a descendant version: the earlier parent
        overwrote or deleted that value). The first parent whose winning revision is a
        live value and not stale wins; if there is none the key is absent at the merge.
        So where parents hold different live values the earlier one wins, a deletion in
        an earlier parent beats the value it deleted, and a key only a later parent has
        stays visible. This is what DVID produces: ``FindConflicts``/``DeleteConflicts``
        in ``datastore/datastore.go`` take the first parent with a live value, delete the
        differing live values of later parents in new children, and its merge read walks
        parents in order, each found revision hiding older ones from later parents.

        Yields, in TKey order, a :class:`KeyResolution` for each TKey where the merge of
        the unchanged parents would not read that value: every later parent whose
        ancestry still contributes another live revision to the merge gets a tombstone
        in its new child; if the winner's revision is itself hidden at the merge (a later
        parent's newer revision or one of those tombstones descends from it), one of
        those children gets a copy of the winner's value instead.

        Only revisions at versions that are ancestors of some parent but not of all of them
        can make parents differ, so when no parent descends from a merge, an instance with
        no keys at such versions (per the version index) costs nothing; otherwise one
        key-only scan of the instance, and only keys with such revisions are examined.
        (Below a merge, keys written only in common ancestors are examined too: a parent
        may already conflict on them.)

        Raises :class:`Conflict` when a parent's read of a key conflicts and no parent
        before it wins that key: there is no value of higher priority to resolve it with.
        Unversioned instances yield nothing.
        """
        if len(ctxs) < 2:
            raise ValueError("resolve_plan needs at least two parent contexts")
        if not all(c.versioned for c in ctxs):
            return
        iid = ctxs[0].instance_id
        poss = [c.ancestry.pos for c in ctxs]
        union = set().union(*poss)
        common = set(poss[0]).intersection(*poss[1:])
        iv = self._versions(iid)
        if all(c.ancestry.linear for c in ctxs):
            hot = (iv.data | iv.tomb) & (union - common)
        else:  # a parent may already conflict on keys written only in common ancestors
            hot = (iv.data | iv.tomb) & union
        if not hot:
            return
        pre = instance_prefix(iid)
        plen = len(pre)
        cur: bytes | None = None
        revs: list[tuple[int, bool]] = []
        touched = False
        for k, _ in self.engine.scan(KeyRange.prefix(pre), keys_only=True):
            tk = k[plen:-SUFFIX_LEN]
            if tk != cur:
                if touched:
                    r = _plan_key(ctxs, cur, revs)  # type: ignore[arg-type]
                    if r is not None:
                        yield r
                cur, revs, touched = tk, [], False
            ver = int.from_bytes(k[-SUFFIX_LEN:-1], "big")
            if ver in union:
                revs.append((ver, k[-1] == MARK_TOMBSTONE))
                if ver in hot:
                    touched = True
        if touched:
            r = _plan_key(ctxs, cur, revs)  # type: ignore[arg-type]
            if r is not None:
                yield r

    # ----- writes -----------------------------------------------------------------------

    def batch(self, ctx: VersionedCtx) -> VersionedBatch:
        """A batch of versioned puts/deletes at ``ctx`` (checked writable now)."""
        ctx.check_writable()
        return VersionedBatch(self, ctx, self.engine.batch())

    def put(self, ctx: VersionedCtx, tk: bytes, value: bytes) -> None:
        """Write ``value`` for ``tk`` at the context's version."""
        with self.batch(ctx) as b:
            b.put(tk, value)

    def delete(self, ctx: VersionedCtx, tk: bytes) -> None:
        """Hide ``tk`` from the context's version and its descendants (tombstone)."""
        with self.batch(ctx) as b:
            b.delete(tk)

    def put_many(self, ctx: VersionedCtx, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Write many pairs in one batch."""
        with self.batch(ctx) as b:
            for tk, v in items:
                b.put(tk, v)

    def delete_range(self, ctx: VersionedCtx, start: bytes, end: bytes | None) -> int:
        """Tombstone every TKey visible in ``[start, end)``; returns how many."""
        keys = [tk for tk, _ in self.scan(ctx, start, end, keys_only=True)]
        with self.batch(ctx) as b:
            for tk in keys:
                b.delete(tk)
        return len(keys)

    def delete_all(self, instance_id: int) -> int:
        """Physically remove every key of an instance at every version."""
        with self._iv_lock:
            n = self.engine.delete_range(KeyRange.prefix(instance_prefix(instance_id)))
            self.engine.delete_range(KeyRange.prefix(written_prefix(instance_id)))
            self.engine.delete_range(KeyRange.prefix(
                meta_key(b"vku/" + instance_id.to_bytes(4, "big"))))
            self.engine.delete(_vset_key(instance_id))
            self._iv.pop(instance_id, None)
        return n

    def _commit(self, wb: WriteBatch, iid: int, new_data: bool, new_tomb: bool,
                version: int) -> None:
        """Commit ``wb``, first recording a version that newly holds keys of ``iid``."""
        if not (new_data or new_tomb):
            wb.commit()
            return
        with self._iv_lock:
            iv = self._iv[iid]
            data = iv.data | {version} if new_data else iv.data
            tomb = iv.tomb | {version} if new_tomb else iv.tomb
            nxt = _InstanceVersions(set(data), set(tomb), unindexed=iv.unindexed)
            wb.put(_vset_key(iid), nxt.to_json())
            wb.commit()
            self._iv[iid] = nxt


@dataclass(frozen=True, slots=True)
class KeyResolution:
    """The writes a resolve needs for one TKey.

    ``winner`` is the index of the parent whose value wins; ``ops`` maps the index of each
    parent that needs a new child to what that child stores for the key: ``None`` for a
    tombstone, or a VersionID whose value (the winner's revision) is copied.
    """

    tkey: bytes
    winner: int
    ops: dict[int, int | None]


_CONFLICTED = (-1, True)  # sentinel winner of a parent whose own read conflicts


def _plan_key(ctxs: Sequence[VersionedCtx], tk: bytes,
              revs: list[tuple[int, bool]]) -> KeyResolution | None:
    """:meth:`VersionedStore.resolve_plan` for one TKey (``revs``: its revisions at
    ancestors of any parent)."""
    n = len(ctxs)
    is_anc = ctxs[0].is_ancestor
    poss = [c.ancestry.pos for c in ctxs]
    winners: list[tuple[int, bool] | None] = []
    first: int | None = None
    for i, c in enumerate(ctxs):
        try:
            w = VersionedStore._resolve(c, revs)
        except Conflict:
            if first is None:
                raise Conflict(
                    f"key {tk!r} already has conflicting revisions at merge parent "
                    f"{c.node.uuid} and no parent of higher priority has a value for it; "
                    "resolve that version first"
                ) from None
            w = _CONFLICTED
        winners.append(w)
        if first is None and w is not None and not w[1] and not any(
            r[0] != w[0] and is_anc(w[0], r[0]) and any(r[0] in poss[k] for k in range(i))
            for r in revs
        ):
            first = i

    # Revisions that would be maximal at the merge of the unchanged parents.
    maximal = [
        r for r in revs if not any(d[0] != r[0] and is_anc(r[0], d[0]) for d in revs)
    ]

    def merged(ops: dict[int, int | None]) -> tuple[int | None, bool] | str | None:
        """Winner at the merge when parent ``i`` in ``ops`` gets a child holding ``ops[i]``
        (version None = a revision in one of those new children); "conflict" if several."""
        m: list[tuple[int | None, bool]] = [
            r for r in maximal if not any(r[0] in poss[i] for i in ops)
        ]
        m += [(None, op is None) for op in ops.values()]
        if len(m) == 1:
            return m[0]
        live = [r for r in m if not r[1]]
        if len(live) > 1:
            return "conflict"
        return live[0] if live else None

    if first is None:
        res = merged({})
        if res == "conflict" or (isinstance(res, tuple) and not res[1]):  # cannot happen
            raise RuntimeError(f"could not plan a resolution for key {tk!r}")
        return None
    rv = winners[first][0]  # type: ignore[index]
    # Later parents whose ancestry holds a live revision other than the winner's that
    # survives to the merge get a tombstone (DVID's deletion in a child of the loser).
    tomb = sorted({
        i for r in maximal if not r[1] and r[0] != rv
        for i in range(first + 1, n) if r[0] in poss[i]
    })
    ops: dict[int, int | None] = dict.fromkeys(tomb)
    if merged(ops) != (rv, False):
        # The winner's revision is hidden at the merge: carry a copy of its value in one
        # new child (a tombstone's, or that of a parent holding a newer revision).
        i = tomb[0] if tomb else next((
            i for i in range(first + 1, n)
            if any(r[0] != rv and is_anc(rv, r[0]) and r[0] in poss[i] for r in revs)
        ), None)
        if i is not None:
            ops[i] = rv
        if i is None or merged(ops) != (None, False):  # cannot happen; stay honest
            raise RuntimeError(f"could not plan a resolution for key {tk!r}")
    if not ops:
        return None
    return KeyResolution(tk, first, ops)


class VersionedBatch:
    """Put/delete at one version, applied by ``commit()`` (atomically iff the engine is)."""

    def __init__(self, store: VersionedStore, ctx: VersionedCtx, wb: WriteBatch) -> None:
        self.store = store
        self.ctx = ctx
        self.wb = wb
        self.n = 0
        self._iv = store._versions(ctx.instance_id)
        self._new_data = False
        self._new_tomb = False
        #: TKeys written (for the written-keys index); None: not indexed (unversioned)
        self._written: list[bytes] | None = [] if ctx.versioned else None

    def put(self, tk: bytes, value: bytes) -> None:
        """Queue a write of ``tk``."""
        c = self.ctx
        base = c.prefix + tk + c.vbytes
        self.wb.put(base + b"\x03", value)
        if self._written is not None:
            self._written.append(tk)
        if c.versioned and (self._new_tomb or c.version in self._iv.tomb):
            self.wb.delete(base + b"\x4f")
        if c.version not in self._iv.data:
            self._new_data = True
        self.n += 1

    def delete(self, tk: bytes) -> None:
        """Queue a delete of ``tk`` (a tombstone, or a physical delete when unversioned)."""
        c = self.ctx
        base = c.prefix + tk + c.vbytes
        self.wb.delete(base + b"\x03")
        if self._written is not None:
            self._written.append(tk)
        if c.versioned and c.ancestry.order[1:]:
            self.wb.put(base + b"\x4f", b"")
            if c.version not in self._iv.tomb:
                self._new_tomb = True
        self.n += 1

    def commit(self) -> None:
        """Apply the queued operations."""
        c = self.ctx
        if self._written:
            self.wb.put(written_prefix(c.instance_id, c.version) + _batch_id(),
                        pack_tkeys(self._written))
            self._written = []
        self.store._commit(self.wb, c.instance_id, self._new_data, self._new_tomb, c.version)

    def __enter__(self) -> VersionedBatch:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.commit()
