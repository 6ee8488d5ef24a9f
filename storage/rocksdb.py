"""RocksDB engine (via rocksdict in raw-bytes mode): embedded, persistent, ordered.

``RocksDBEngine.open(path, **options)`` creates ``path`` if needed. The database is opened
with ``Options(raw_mode=True)``, so keys and values are stored as plain bytes and the
directory is readable by any other RocksDB client. Options (unknown names raise TypeError):

=======================  =======  ==========================================================
option                   default  meaning
=======================  =======  ==========================================================
``write_buffer_mb``       64      memtable size in MiB
``max_write_buffers``     3       memtables kept in memory (while flushing)
``cache_mb``              256     shared LRU block cache in MiB
``bloom_bits``            10      full bloom filter bits per key (``0`` disables it)
``block_size``            65536   uncompressed bytes per block
``max_open_files``        -1      table files kept open (``-1`` = unlimited)
``parallelism``           CPUs    background flush/compaction threads
=======================  =======  ==========================================================

Facts about rocksdict 0.3.x this module relies on (checked by the conformance suite):

* ``ReadOptions.set_iterate_upper_bound`` works as documented, but
  ``set_iterate_lower_bound`` behaves like a second *upper* bound, so it is never used; the
  start of a forward scan is a ``from_key`` seek instead.
* ``db.close()`` does not release the LOCK file while an iterator or snapshot is alive, so
  scans drop their iterator as soon as they finish.
* A loop of ``db.get`` is faster than the list form ``db.get([...])`` for multi-gets.

Batches are RocksDB write batches (atomic). Scans read an implicit snapshot taken when the
scan is called. ``delete_range`` counts the keys and then writes one range tombstone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import rocksdict

from storage.base import GuardedWriteBatch, KeyRange
from storage.embedded import EmbeddedEngine
from storage.registry import register_engine

_MiB = 1 << 20
_DEFAULTS: dict[str, Any] = {
    "write_buffer_mb": 64,
    "max_write_buffers": 3,
    "cache_mb": 256,
    "bloom_bits": 10,
    "block_size": 64 * 1024,
    "max_open_files": -1,
    "parallelism": os.cpu_count() or 2,
}


def _make_options(opts: dict[str, Any]) -> rocksdict.Options:
    o = rocksdict.Options(raw_mode=True)
    o.create_if_missing(True)
    o.set_write_buffer_size(int(opts["write_buffer_mb"] * _MiB))
    o.set_max_write_buffer_number(int(opts["max_write_buffers"]))
    o.set_max_open_files(int(opts["max_open_files"]))
    o.increase_parallelism(int(opts["parallelism"]))
    table = rocksdict.BlockBasedOptions()
    table.set_block_size(int(opts["block_size"]))
    if opts["cache_mb"]:
        table.set_block_cache(rocksdict.Cache(int(opts["cache_mb"] * _MiB)))
    if opts["bloom_bits"]:
        table.set_bloom_filter(float(opts["bloom_bits"]), False)  # full (not block) filter
    o.set_block_based_table_factory(table)
    return o


class RocksDBWriteBatch(GuardedWriteBatch):
    """A rocksdict raw-mode write batch; ``commit`` writes it atomically."""

    def __init__(self, db: rocksdict.Rdict) -> None:
        super().__init__()
        self._db = db
        self._wb = rocksdict.WriteBatch(raw_mode=True)

    def _put(self, key: bytes, value: bytes) -> None:
        self._wb.put(key, value)

    def _delete(self, key: bytes) -> None:
        self._wb.delete(key)

    def _write(self) -> None:
        self._db.write(self._wb)


@register_engine
class RocksDBEngine(EmbeddedEngine):
    """Persistent ordered store in a RocksDB directory.

    ``close()`` flushes; the directory lock is only released once no scan iterator is
    alive any more.
    """

    name = "rocksdb"
    defaults = _DEFAULTS

    @classmethod
    def open(cls, location: str, **options: Any) -> RocksDBEngine:
        """Open (creating if needed) the RocksDB directory ``location``.

        Raises TypeError for unknown options and ``Exception`` (from rocksdict, "lock hold
        by current process") when the directory is already open.
        """
        opts = cls.prepare(location, options)
        db = rocksdict.Rdict(location, options=_make_options(opts))
        return cls(db, location, opts)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order (not from a single snapshot)."""
        get = self._db.get
        return [get(k) for k in keys]

    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over ``rng`` from a snapshot taken at call time.

        An empty or inverted range yields nothing. Forward scans seek to ``start`` and let
        RocksDB stop at the exclusive upper bound; reverse scans start at the last key below
        ``end`` (or the last key) and stop below ``start``.
        """
        if rng.is_empty():
            return iter(())
        ro = rocksdict.ReadOptions()
        if rng.end is not None:
            ro.set_iterate_upper_bound(rng.end)
        source = self._db.keys if keys_only else self._db.items
        if reverse:
            it = source(backwards=True, read_opt=ro)
        else:
            it = source(from_key=rng.start, read_opt=ro)
        return _bounded(it, rng.start, rng.end, keys_only, reverse)

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every key in ``rng`` with one range tombstone; returns how many existed.

        The count comes from a key scan just before the delete, so keys written into the
        range concurrently are deleted but may not be counted.
        """
        if rng.is_empty():
            return 0
        n = 0
        last = b""
        for key, _ in self.scan(rng, keys_only=True):
            n += 1
            last = key
        if n:
            # An unbounded range ends just after its last key (last + 0x00 is the successor).
            end = rng.end if rng.end is not None else last + b"\x00"
            self._db.delete_range(rng.start, end)
        return n

    def batch(self) -> RocksDBWriteBatch:
        """A new atomic write batch."""
        return RocksDBWriteBatch(self._db)


def _bounded(
    it: Iterator[Any], start: bytes, end: bytes | None, keys_only: bool, reverse: bool
) -> Iterator[tuple[bytes, bytes]]:
    """Apply the range bounds exactly (the native bounds are an optimisation only)."""
    if reverse:
        for item in it:
            key = item if keys_only else item[0]
            if end is not None and key >= end:
                continue
            if key < start:
                break
            yield (key, b"") if keys_only else item
    else:
        for item in it:
            key = item if keys_only else item[0]
            if end is not None and key >= end:
                break
            if key < start:  # cannot happen after a seek; kept for exactness
                continue
            yield (key, b"") if keys_only else item
