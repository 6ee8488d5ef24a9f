"""The ordered byte key-value engine interface every storage backend implements.

Engines know nothing about versions, instances or datatypes: they store opaque byte keys
and values, ordered by **unsigned lexicographic byte order** (``b"\\x7f" < b"\\x80"``).
Version semantics live one layer up, in :mod:`dvidpy.versioned`.

Conventions shared by every engine (checked by :mod:`storage.testing`):

* Keys are non-empty byte strings (the GCS engine rejects ``b""``); values may be empty.
* ``get`` of a missing key returns ``None``; an empty value ``b""`` is a real value.
* ``delete`` of a missing key is not an error.
* Ranges are ``[start, end)``: start inclusive, end exclusive, ``end=None`` unbounded.
* ``scan`` yields ``(key, value)`` pairs in key order (descending with ``reverse=True``);
  with ``keys_only=True`` the value is ``b""`` and engines avoid reading values.
* A :class:`WriteBatch` applies its operations in order on ``commit()`` (the last operation
  on a key wins). Engines with ``atomic_batches = True`` apply all or nothing; others
  (GCS) may apply part of the batch if they fail midway. Nothing is applied before
  ``commit()``.
* Engines are safe to call from several threads at once. ``close()`` may be called twice.
* ``compare_and_swap(key, expected, new)`` replaces the value only if it still equals
  ``expected`` (``None``: absent; ``new=None``: delete). Engines with ``shareable = True``
  (PostgreSQL, GCS, S3) do it atomically *across processes* and may be opened by several
  servers at once; the default implementation is atomic only within one process, which is
  all a non-shareable engine (LevelDB, RocksDB, memory) needs.
* ``with engine.read_views() as r:`` reads through ``r.scan(rng)`` and ``r.get_many(keys)``
  whose values may be *buffers* (e.g. memoryviews into LMDB's map) instead of bytes, valid
  only until the ``with`` block exits: the caller decodes or copies them inside it and
  keeps none. Keys are always bytes. Engines with ``zero_copy_reads = True`` (LMDB) hand
  out such views from one read transaction (one snapshot for every read of the block);
  the others fall back to their ordinary reads (bytes).
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


def prefix_successor(prefix: bytes) -> bytes | None:
    """Smallest key greater than every key starting with ``prefix``.

    Returns ``None`` when no such key exists (``prefix`` is empty or all ``0xFF``), meaning
    "unbounded".
    """
    p = prefix.rstrip(b"\xff")
    if not p:
        return None
    return p[:-1] + bytes([p[-1] + 1])


@dataclass(frozen=True, slots=True)
class KeyRange:
    """Half-open key range ``[start, end)``; ``end=None`` means no upper bound."""

    start: bytes = b""
    end: bytes | None = None

    @classmethod
    def prefix(cls, p: bytes) -> KeyRange:
        """All keys that start with ``p`` (the whole key space for ``p == b""``)."""
        return cls(p, prefix_successor(p))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes | bytearray):
            return False
        return key >= self.start and (self.end is None or key < self.end)

    def is_empty(self) -> bool:
        """True when no key can fall in the range."""
        return self.end is not None and self.end <= self.start


class WriteBatch(ABC):
    """Collects puts and deletes; ``commit()`` applies them.

    Used as a context manager, the batch commits on a clean exit and is discarded when the
    block raises. Committing twice raises ``RuntimeError``.
    """

    @abstractmethod
    def put(self, key: bytes, value: bytes) -> None:
        """Queue a put."""

    @abstractmethod
    def delete(self, key: bytes) -> None:
        """Queue a delete (a missing key is fine)."""

    @abstractmethod
    def commit(self) -> None:
        """Apply the queued operations in order (atomically iff the engine says so)."""

    def __len__(self) -> int:  # number of queued operations, where the engine knows it
        return 0

    def __enter__(self) -> WriteBatch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()


class GuardedWriteBatch(WriteBatch):
    """A :class:`WriteBatch` that counts its operations and refuses any use after ``commit()``.

    Subclasses implement ``_put``, ``_delete`` (queue one operation) and ``_write`` (apply
    the queue). An operation that raises is not counted; ``commit`` marks the batch done
    before writing, so a failed commit cannot be retried.
    """

    def __init__(self) -> None:
        self._n = 0
        self._done = False

    def _check(self) -> None:
        if self._done:
            raise RuntimeError("write batch already committed")

    @abstractmethod
    def _put(self, key: bytes, value: bytes) -> None:
        """Queue a put."""

    @abstractmethod
    def _delete(self, key: bytes) -> None:
        """Queue a delete."""

    @abstractmethod
    def _write(self) -> None:
        """Apply the queued operations."""

    def put(self, key: bytes, value: bytes) -> None:
        self._check()
        self._put(key, value)
        self._n += 1

    def delete(self, key: bytes) -> None:
        self._check()
        self._delete(key)
        self._n += 1

    def commit(self) -> None:
        """Apply the queued operations; raises ``RuntimeError`` if called twice."""
        self._check()
        self._done = True
        self._write()

    def __len__(self) -> int:
        return self._n


class ViewReader:
    """What :meth:`KVEngine.read_views` yields: ``scan`` and ``get_many`` whose values are
    buffers (anything with the buffer protocol: ``bytes(v)``, ``memoryview(v)``, lz4 and
    numpy accept them) valid only inside the ``with`` block. This default reads through
    the engine's own ``scan``/``get_many`` (bytes)."""

    def __init__(self, engine: KVEngine) -> None:
        self._engine = engine

    def scan(self, rng: KeyRange) -> Iterator[tuple[bytes, Any]]:
        """``(key, value)`` for keys in ``rng`` in unsigned byte order (as
        :meth:`KVEngine.scan`)."""
        return self._engine.scan(rng)

    def get_many(self, keys: Sequence[bytes]) -> list[Any]:
        """Values for ``keys`` in order, ``None`` for missing keys."""
        return self._engine.get_many(keys)


class KVEngine(ABC):
    """An ordered byte key-value store.

    Subclasses set the class attributes, implement the abstract methods and may override the
    concrete defaults (``get_many``, ``delete_range``) with faster native versions.
    """

    name: ClassVar[str]
    #: True when a committed batch is applied all-or-nothing.
    atomic_batches: ClassVar[bool] = True
    #: True when data survives ``close()`` and re-``open()`` of the same location.
    persistent: ClassVar[bool] = True
    #: True when several processes (servers) may open the same location at once and
    #: :meth:`compare_and_swap` is atomic across them. False: one process at a time.
    shareable: ClassVar[bool] = False
    #: True when servers share a store of this engine unless its configuration says
    #: ``shared = false`` (a database server); False: only when it says ``shared = true``
    shared_by_default: ClassVar[bool] = False
    #: True when ``location`` is a local directory that the engine itself locks against
    #: other processes (LevelDB, RocksDB).
    local_path: ClassVar[bool] = False
    #: True when point reads answer from this machine's memory or disk in microseconds
    #: (no network round trip): cheap requests may then run on the server's event loop.
    local: ClassVar[bool] = False
    #: True when :meth:`read_views` hands out values without copying them out of the store.
    zero_copy_reads: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def open(cls, location: str, **options: Any) -> KVEngine:
        """Open (creating if needed) the store at ``location`` (a path, bucket, ...)."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or ``None``."""

    @abstractmethod
    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""

    @abstractmethod
    def delete(self, key: bytes) -> None:
        """Remove ``key``; no error when it is missing."""

    @abstractmethod
    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` for keys in ``rng`` in (reverse) unsigned byte order.

        The iterator sees a consistent snapshot where the engine supports one (LevelDB,
        RocksDB, memory); GCS lists lazily page by page. Callers should exhaust or close
        the iterator promptly.
        """

    @abstractmethod
    def batch(self) -> WriteBatch:
        """A new, empty write batch."""

    @abstractmethod
    def close(self) -> None:
        """Release resources. Calling ``close()`` again is a no-op; other calls are undefined."""

    # ----- concrete defaults -------------------------------------------------------------

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in the same order (``None`` for missing keys)."""
        return [self.get(k) for k in keys]

    @contextlib.contextmanager
    def read_views(self) -> Iterator[ViewReader]:
        """Reads whose values may be buffers valid only until the ``with`` block exits
        (see the module docstring); the caller must not keep a value, nor use one after
        the block. Engines with ``zero_copy_reads`` override this; the default yields a
        :class:`ViewReader` over :meth:`scan` and :meth:`get_many` (bytes)."""
        yield ViewReader(self)

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every key in ``rng``; returns how many keys were deleted."""
        n = 0
        wb = self.batch()
        for k, _ in self.scan(rng, keys_only=True):
            wb.delete(k)
            n += 1
            if n % 10_000 == 0:
                wb.commit()
                wb = self.batch()
        wb.commit()
        return n

    def compare_and_swap(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        """Set ``key`` to ``new`` (``None`` deletes) iff its value equals ``expected``
        (``None``: the key is absent). Returns whether the swap happened.

        This default is atomic among threads of one process only (a per-engine lock around
        ``get`` and ``put``); shareable engines override it with a cross-process primitive.
        Writes through other methods do not take the lock, so callers use CAS only on keys
        that are written by CAS alone.
        """
        lock = self.__dict__.get("_cas_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_cas_lock", threading.Lock())
        with lock:
            if self.get(key) != expected:
                return False
            if new is None:
                self.delete(key)
            else:
                self.put(key, new)
            return True

    def describe(self) -> str:
        """Human-readable description, shown as ``KVStore`` in instance info."""
        return self.name

    def __enter__(self) -> KVEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
