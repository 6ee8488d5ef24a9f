"""LevelDB engine (via plyvel): an embedded, persistent, ordered store.

``LevelDBEngine.open(path, **options)`` creates ``path`` (and parents) if needed. The
defaults are tuned for DVID-style workloads (large values, bulk ingest) rather than
plyvel's small built-in defaults. Options (all optional, unknown names raise TypeError):

==================  ========  ==============================================================
option              default   meaning
==================  ========  ==============================================================
``write_buffer_mb``  64       memtable size in MiB (plyvel's 4 MiB makes bulk writes 3-4x
                              slower); memory use is about twice this while flushing
``cache_mb``         256      LRU block cache in MiB (``0`` = LevelDB's small default)
``bloom_bits``       10       bloom filter bits per key (``0`` disables the filter)
``block_size``       65536    uncompressed bytes per block
``max_open_files``   1000     table files kept open
``compression``      snappy   ``"snappy"`` or ``None``
==================  ========  ==============================================================

Batches are LevelDB write batches (atomic). Scans run on a LevelDB iterator, which reads an
implicit snapshot taken when the scan starts. LevelDB has no range delete, so
``delete_range`` walks the range and deletes in atomic chunks of 10,000 keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import plyvel

from storage.base import GuardedWriteBatch, KeyRange
from storage.embedded import EmbeddedEngine
from storage.registry import register_engine

_MiB = 1 << 20
_DEFAULTS: dict[str, Any] = {
    "write_buffer_mb": 64,
    "cache_mb": 256,
    "bloom_bits": 10,
    "block_size": 64 * 1024,
    "max_open_files": 1000,
    "compression": "snappy",
}
_DELETE_CHUNK = 10_000


class LevelDBWriteBatch(GuardedWriteBatch):
    """A plyvel write batch; ``commit`` writes it atomically."""

    def __init__(self, db: plyvel.DB) -> None:
        super().__init__()
        self._wb = db.write_batch()

    def _put(self, key: bytes, value: bytes) -> None:
        self._wb.put(key, value)

    def _delete(self, key: bytes) -> None:
        self._wb.delete(key)

    def _write(self) -> None:
        self._wb.write()
        self._wb.clear()


@register_engine
class LevelDBEngine(EmbeddedEngine):
    """Persistent ordered store in a LevelDB directory.

    ``close()`` closes open scan iterators too.
    """

    name = "leveldb"
    defaults = _DEFAULTS

    @classmethod
    def open(cls, location: str, **options: Any) -> LevelDBEngine:
        """Open (creating if needed) the LevelDB directory ``location``.

        Raises TypeError for unknown options and ``plyvel.IOError`` when the directory is
        locked by another open handle (in this or another process).
        """
        opts = cls.prepare(location, options)
        db = plyvel.DB(
            location,
            create_if_missing=True,
            write_buffer_size=int(opts["write_buffer_mb"] * _MiB),
            lru_cache_size=int(opts["cache_mb"] * _MiB) or None,
            bloom_filter_bits=int(opts["bloom_bits"]),
            block_size=int(opts["block_size"]),
            max_open_files=int(opts["max_open_files"]),
            compression=opts["compression"],
        )
        return cls(db, location, opts)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order, all read from one snapshot."""
        if len(keys) < 2:
            return [self._db.get(k) for k in keys]
        snap = self._db.snapshot()
        try:
            get = snap.get
            return [get(k) for k in keys]
        finally:
            snap.close()

    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over ``rng`` from a snapshot taken at call time.

        An empty or inverted range yields nothing. The underlying LevelDB iterator is closed
        when the generator is exhausted, closed or garbage collected.
        """
        if rng.is_empty():
            return iter(())
        if reverse:
            # plyvel 1.5.1 yields nothing for a reverse scan whose highest key in range equals
            # `start`; so the start bound is applied here instead of by plyvel.
            it = self._db.iterator(stop=rng.end, include_value=not keys_only, reverse=True)
            return _drain(it, keys_only, rng.start)
        it = self._db.iterator(start=rng.start or None, stop=rng.end, include_value=not keys_only)
        return _drain(it, keys_only, None)

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every key in ``rng``; returns how many were deleted.

        Deletes are written in atomic chunks of 10,000 keys, so the whole operation is not
        atomic. Keys written concurrently into the range may survive.
        """
        if rng.is_empty():
            return 0
        n = 0
        with self._db.iterator(start=rng.start or None, stop=rng.end, include_value=False) as it:
            wb = self._db.write_batch()
            for key in it:
                wb.delete(key)
                n += 1
                if n % _DELETE_CHUNK == 0:
                    wb.write()
                    wb = self._db.write_batch()
            wb.write()
        return n

    def batch(self) -> LevelDBWriteBatch:
        """A new atomic write batch."""
        return LevelDBWriteBatch(self._db)


def _drain(it: Any, keys_only: bool, lower: bytes | None) -> Iterator[tuple[bytes, bytes]]:
    """Adapt a plyvel iterator; stop below ``lower`` (for reverse scans)."""
    try:
        if lower:
            for item in it:
                key = item if keys_only else item[0]
                if key < lower:
                    break
                yield (key, b"") if keys_only else item
        elif keys_only:
            for key in it:
                yield key, b""
        else:
            yield from it
    finally:
        with contextlib.suppress(Exception):  # e.g. at interpreter shutdown
            it.close()
