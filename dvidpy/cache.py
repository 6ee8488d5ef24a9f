"""The cache tier: reads at committed versions, cached with no invalidation at all.

A value read at a *committed* (locked) version can never change: the version takes no more
writes and neither do its ancestors, and VersionIDs are never reused. So
:class:`CachedVersionedStore` caches such reads (present values and absences alike) keyed
by ``(store id, instance id, version, TKey)`` and never invalidates them. Everything
else bypasses the cache: reads at open versions, unversioned instances (they write at the
root version whatever its lock state) and every read on a server in ``fullwrite`` mode
(which may write committed versions; the manager then builds no cache at all).

Two levels, configured per store in the TOML (``[store.NAME]``):

* ``cache_mb = N``: an in-process LRU bounded in bytes (keys + values + ~100 bytes per
  entry), per server process;
* ``redis = "redis://HOST:PORT/DB"`` (``cache_ttl`` seconds, default 3600): a Redis shared
  by every server, consulted on an LRU miss with one ``MGET`` per batch of keys and filled
  with ``SET EX`` in one pipeline. A Redis that fails is treated as a miss (logged once
  per minute), never as an error of the read.

The store id is a random id recorded once in the store itself (:data:`STORE_ID_KEY`), so
several deployments can share one Redis without mixing their VersionIDs.
:func:`cache_stats` sums hit and miss counters for ``/api/load``.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from dvidpy.datatype import BLOB_CLASS
from dvidpy.keys import meta_key
from dvidpy.versioned import VersionedCtx, VersionedStore, VersionedViews
from storage.base import KVEngine

log = logging.getLogger("dvidpy.cache")

STORE_ID_KEY = meta_key("store-id")
_ENTRY_OVERHEAD = 100
_ABSENT = b"\x00"  # Redis encoding of "no value"; a value is b"\x01" + value
_MISS = object()
_BLOB = bytes((BLOB_CLASS,))


def store_id(engine: KVEngine) -> str:
    """The random id of the store behind ``engine`` (recorded on first use)."""
    while True:
        cur = engine.get(STORE_ID_KEY)
        if cur is not None:
            return cur.decode()
        engine.compare_and_swap(STORE_ID_KEY, None, uuid.uuid4().hex.encode())


class LRUBytes:
    """A thread-safe LRU of ``bytes | None`` values bounded by total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.size = 0
        self._d: OrderedDict[bytes, bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _cost(key: bytes, value: bytes | None) -> int:
        return len(key) + (len(value) if value is not None else 0) + _ENTRY_OVERHEAD

    def get(self, key: bytes) -> Any:
        """The cached value (``None`` is a cached absence) or the ``_MISS`` sentinel."""
        with self._lock:
            try:
                v = self._d[key]
            except KeyError:
                return _MISS
            self._d.move_to_end(key)
            return v

    def put(self, key: bytes, value: bytes | None) -> None:
        """Insert or refresh; evicts least recently used entries past the bound. A value
        larger than the whole bound is not cached."""
        cost = self._cost(key, value)
        if cost > self.max_bytes:
            return
        with self._lock:
            old = self._d.pop(key, _MISS)
            if old is not _MISS:
                self.size -= self._cost(key, old)  # type: ignore[arg-type]
            self._d[key] = value
            self.size += cost
            while self.size > self.max_bytes:
                k, v = self._d.popitem(last=False)
                self.size -= self._cost(k, v)

    def __len__(self) -> int:
        return len(self._d)


class CacheStats:
    """Counters of one cache (thread-safe enough: increments under a lock)."""

    def __init__(self) -> None:
        self.lru_hits = 0
        self.redis_hits = 0
        self.misses = 0
        self.bypassed = 0
        self._lock = threading.Lock()

    def add(self, lru: int = 0, redis: int = 0, miss: int = 0, bypass: int = 0) -> None:
        with self._lock:
            self.lru_hits += lru
            self.redis_hits += redis
            self.misses += miss
            self.bypassed += bypass


_ALL: list[CacheStats] = []
_ALL_LOCK = threading.Lock()


def cache_stats() -> dict[str, int]:
    """Hit and miss counts summed over every cache of this process, for ``/api/load``:
    ``cache hits`` (LRU + Redis), ``cache LRU hits``, ``cache Redis hits``,
    ``cache misses`` (read from the engine and then cached) and ``cache bypassed``
    (reads at open versions or of unversioned instances)."""
    with _ALL_LOCK:
        stats = list(_ALL)
    lru = sum(s.lru_hits for s in stats)
    red = sum(s.redis_hits for s in stats)
    return {"cache hits": lru + red, "cache LRU hits": lru, "cache Redis hits": red,
            "cache misses": sum(s.misses for s in stats),
            "cache bypassed": sum(s.bypassed for s in stats)}


class CachedVersionedStore(VersionedStore):
    """A :class:`VersionedStore` whose ``get``/``get_many`` at committed versions go
    through an LRU and/or Redis (see the module docstring)."""

    def __init__(self, engine: KVEngine, *, shared: bool = False, cache_mb: float = 0,
                 redis_url: str = "", ttl: int = 3600) -> None:
        super().__init__(engine, shared=shared)
        self.lru = LRUBytes(int(cache_mb * (1 << 20))) if cache_mb > 0 else None
        self.ttl = int(ttl)
        self.redis: Any = None
        if redis_url:
            import redis

            self.redis = redis.Redis.from_url(redis_url, socket_timeout=2,
                                              socket_connect_timeout=2)
        self.ns = f"dvidpy:{store_id(engine)}:".encode()
        self.stats = CacheStats()
        self._redis_failed_at = 0.0
        with _ALL_LOCK:
            _ALL.append(self.stats)

    @staticmethod
    def cacheable(ctx: VersionedCtx, tks: Sequence[bytes]) -> bool:
        """True when the reads at ``ctx`` can never change. Blob TKeys are excluded:
        blobs may be posted to committed versions (as DVID's blobstore allows)."""
        return ctx.versioned and ctx.node.locked and not ctx.allow_locked and \
            not any(t[:1] == _BLOB for t in tks)

    def _key(self, ctx: VersionedCtx, tk: bytes) -> bytes:
        return b"G" + ctx.prefix[1:] + ctx.vbytes + tk

    def _scan_key(self, ctx: VersionedCtx, start: bytes, end: bytes | None,
                  keys_only: bool) -> bytes:
        tail = b"\x00" if end is None else b"\x01" + end
        return (b"S" + ctx.prefix[1:] + ctx.vbytes + (b"k" if keys_only else b"v")
                + struct.pack("<I", len(start)) + start + tail)

    def _redis_error(self, e: Exception) -> None:
        now = time.monotonic()
        if now - self._redis_failed_at > 60:
            log.warning("redis cache unavailable (%s): reading from the store", e)
        self._redis_failed_at = now

    def get(self, ctx: VersionedCtx, tk: bytes) -> bytes | None:
        """Like :meth:`VersionedStore.get`, cached at committed versions."""
        if not self.cacheable(ctx, (tk,)):
            self.stats.add(bypass=1)
            return super().get(ctx, tk)
        return self._cached(ctx, [tk])[0]

    def get_many(self, ctx: VersionedCtx, tks: Sequence[bytes]) -> list[bytes | None]:
        """Like :meth:`VersionedStore.get_many`, cached at committed versions."""
        if not self.cacheable(ctx, tks):
            self.stats.add(bypass=len(tks))
            return super().get_many(ctx, tks)
        return self._cached(ctx, tks)

    def scan(self, ctx: VersionedCtx, start: bytes, end: bytes | None, *,
             keys_only: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Like :meth:`VersionedStore.scan`; at committed versions a range whose result
        holds at most 1/8 of the LRU's bytes (8 MiB with Redis only) is cached whole (a
        scan abandoned early is not cached). Ranges that may hold blob TKeys bypass."""
        may_hold_blobs = start[:1] <= _BLOB and (end is None or end > _BLOB)
        if not self.cacheable(ctx, ()) or may_hold_blobs:
            self.stats.add(bypass=1)
            yield from super().scan(ctx, start, end, keys_only=keys_only)
            return
        key = self._scan_key(ctx, start, end, keys_only)
        raw = self._lookup(key)
        if raw is not None:
            yield from _decode_items(raw)
            return
        limit = self.lru.max_bytes // 8 if self.lru is not None else 8 << 20
        parts: list[bytes] | None = []
        size = 0
        for tk, v in super().scan(ctx, start, end, keys_only=keys_only):
            if parts is not None:
                parts.append(struct.pack("<II", len(tk), len(v)) + tk + v)
                size += len(tk) + len(v) + 8
                if size > limit:
                    parts = None
            yield tk, v
        self.stats.add(miss=1)
        if parts is not None:
            self._store([(key, b"".join(parts))])

    @contextlib.contextmanager
    def read_views(self) -> Iterator[VersionedViews]:
        """As :meth:`VersionedStore.read_views`; with a cache configured, scans go through
        :meth:`scan` (bytes, cached at committed versions)."""
        if self.lru is None and self.redis is None:
            with super().read_views() as v:
                yield v
            return
        yield VersionedViews(lambda ctx, start, end: self.scan(ctx, start, end))

    def _lookup(self, key: bytes) -> bytes | None:
        """A cached present value from the LRU, then Redis (counted as a hit); else None."""
        if self.lru is not None:
            v = self.lru.get(key)
            if v is not _MISS and v is not None:
                self.stats.add(lru=1)
                return v
        if self.redis is not None:
            try:
                raw = self.redis.get(self.ns + key)
            except Exception as e:
                self._redis_error(e)
                raw = None
            if raw is not None and raw != _ABSENT:
                v = bytes(raw[1:])
                if self.lru is not None:
                    self.lru.put(key, v)
                self.stats.add(redis=1)
                return v
        return None

    def _store(self, items: list[tuple[bytes, bytes | None]]) -> None:
        """Put values (None: absent) into the LRU and Redis."""
        if self.lru is not None:
            for k, v in items:
                self.lru.put(k, v)
        if self.redis is not None:
            try:
                with self.redis.pipeline(transaction=False) as p:
                    for k, v in items:
                        p.set(self.ns + k, _ABSENT if v is None else b"\x01" + v, ex=self.ttl)
                    p.execute()
            except Exception as e:
                self._redis_error(e)

    def _cached(self, ctx: VersionedCtx, tks: Sequence[bytes]) -> list[bytes | None]:
        keys = [self._key(ctx, t) for t in tks]
        out: list[Any] = [_MISS] * len(keys)
        lru_hits = red_hits = 0
        if self.lru is not None:
            for i, k in enumerate(keys):
                out[i] = self.lru.get(k)
            lru_hits = sum(1 for v in out if v is not _MISS)
        todo = [i for i, v in enumerate(out) if v is _MISS]
        if todo and self.redis is not None:
            try:
                got = self.redis.mget([self.ns + keys[i] for i in todo])
            except Exception as e:  # redis down or slow: read the store
                self._redis_error(e)
                got = [None] * len(todo)
            left = []
            for i, raw in zip(todo, got, strict=True):
                if raw is None:
                    left.append(i)
                    continue
                val = None if raw == _ABSENT else bytes(raw[1:])
                out[i] = val
                red_hits += 1
                if self.lru is not None:
                    self.lru.put(keys[i], val)
            todo = left
        if todo:
            vals = super().get_many(ctx, [tks[i] for i in todo])
            for i, v in zip(todo, vals, strict=True):
                out[i] = v
            self._store([(keys[i], v) for i, v in zip(todo, vals, strict=True)])
        self.stats.add(lru=lru_hits, redis=red_hits, miss=len(todo))
        return out

    def close(self) -> None:
        """Drop this cache from :func:`cache_stats` and close the Redis connection."""
        with _ALL_LOCK:
            if self.stats in _ALL:
                _ALL.remove(self.stats)
        if self.redis is not None:
            self.redis.close()


def _decode_items(raw: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Inverse of the scan encoding: ``(u32 len tk, u32 len v, tk, v)*``."""
    mv = memoryview(raw)
    i = 0
    while i < len(raw):
        nk, nv = struct.unpack_from("<II", raw, i)
        i += 8
        yield bytes(mv[i:i + nk]), bytes(mv[i + nk:i + nk + nv])
        i += nk + nv
