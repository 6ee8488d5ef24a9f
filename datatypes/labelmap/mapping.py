"""The versioned supervoxel → body mapping with a per-version lookup cache.

Each non-identity mapping entry is one versioned key ``MAPPING_CLASS | sv(u64 BE)`` whose
value is the body id (u64 LE; 0 marks a retired supervoxel, e.g. one replaced by a
supervoxel split). A supervoxel without a visible entry maps to itself. Reads at any
version resolve through the versioned store like any other key, so nothing is replayed at
startup and ancestors are never affected by writes at a child.

:class:`MappingCache` memoizes resolved entries per version. Only an open (uncommitted)
version can change, and only the instance's own edits change it: an edit calls
:meth:`MappingCache.update` after its batch commits, which also bumps the version's
generation so a concurrent reader that fetched before the commit does not insert stale
entries. Each version's cache is bounded (cleared when it exceeds ``max_entries``).

With ``shared=True`` (other servers edit the same store) only reads at committed versions
(not writable in ``fullwrite`` mode) are cached, since other servers' edits at open
versions are not seen here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from datatypes.labelmap.layout import mapping_tkey
from dvidpy.versioned import VersionedCtx, VersionedStore

__all__ = ["MappingCache"]


class MappingCache:
    """Supervoxel → body lookups at a version, cached in memory per version."""

    def __init__(self, store: VersionedStore, max_entries: int = 2_000_000,
                 shared: bool = False) -> None:
        self.store = store
        self.shared = shared
        self.max_entries = max_entries
        self._caches: dict[int, dict[int, int]] = {}
        self._gen: dict[int, int] = {}
        self._lock = threading.Lock()

    def lookup(self, ctx: VersionedCtx, svs: Iterable[int]) -> dict[int, int]:
        """``{sv: body}`` for the given supervoxels at ``ctx`` (identity when unmapped,
        0 for retired supervoxels, 0 → 0)."""
        wanted = {int(s) for s in svs}
        if self.shared and not (ctx.versioned and ctx.node.locked and not ctx.allow_locked):
            return self._fetch(ctx, wanted)
        v = ctx.version
        with self._lock:
            cache = self._caches.setdefault(v, {})
            gen = self._gen.get(v, 0)
            out = {s: cache[s] for s in wanted if s in cache}
        missing = [s for s in wanted if s not in out]
        out[0] = 0
        if not missing:
            return out
        fetched = self._fetch(ctx, set(missing))
        out.update(fetched)
        with self._lock:
            if self._gen.get(v, 0) == gen:
                cache = self._caches.setdefault(v, {})
                if len(cache) + len(fetched) > self.max_entries:
                    cache.clear()
                cache.update(fetched)
        return out

    def _fetch(self, ctx: VersionedCtx, wanted: set[int]) -> dict[int, int]:
        svs = [s for s in wanted if s != 0]
        vals = self.store.get_many(ctx, [mapping_tkey(s) for s in svs])
        out = {s: s if val is None else int.from_bytes(val, "little")
               for s, val in zip(svs, vals, strict=True)}
        out[0] = 0
        return out

    def map_array(self, ctx: VersionedCtx, labels: np.ndarray) -> np.ndarray:
        """Bodies of an array of supervoxels (same shape). Cost: one lookup per distinct
        value plus one vectorized searchsorted, so use it on label lists, not voxels."""
        arr = np.asarray(labels, dtype=np.uint64)
        if arr.size == 0:
            return arr.copy()
        uniq, inv = np.unique(arr, return_inverse=True)
        m = self.lookup(ctx, uniq.tolist())
        bodies = np.fromiter((m[int(u)] for u in uniq.tolist()), dtype=np.uint64,
                             count=uniq.size)
        return bodies[inv].reshape(arr.shape)

    def update(self, version: int, changes: dict[int, int]) -> None:
        """Record entries just written at ``version`` (call after the batch commits)."""
        if self.shared:
            self.invalidate(version)
            return
        with self._lock:
            self._gen[version] = self._gen.get(version, 0) + 1
            cache = self._caches.setdefault(version, {})
            if len(cache) + len(changes) > self.max_entries:
                cache.clear()
            cache.update(changes)

    def invalidate(self, version: int | None = None) -> None:
        """Drop cached entries of one version (or all)."""
        with self._lock:
            if version is None:
                for v in self._caches:
                    self._gen[v] = self._gen.get(v, 0) + 1
                self._caches.clear()
            else:
                self._gen[version] = self._gen.get(version, 0) + 1
                self._caches.pop(version, None)

    @staticmethod
    def encode(body: int) -> bytes:
        """Stored value of a mapping entry."""
        return int(body).to_bytes(8, "little")
