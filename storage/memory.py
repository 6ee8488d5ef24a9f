"""In-memory engine: the reference model every other engine is compared against.

Data lives in a ``dict`` plus a sorted list of its keys (kept sorted with :mod:`bisect`), all
guarded by one lock. It is not persistent: ``close()`` drops the data and ``open()`` always
starts empty (``location`` is ignored).

Cost model: ``get`` is O(1); inserting a *new* key is O(n) in the worst case (a list insert;
appending keys in ascending order is O(log n)); ``scan`` copies the matching slice under the
lock before yielding, so it is snapshot-consistent but holds O(range) memory.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from storage.base import GuardedWriteBatch, KeyRange, KVEngine
from storage.registry import register_engine

_DELETE = None  # marker for a queued delete in a batch


class MemoryWriteBatch(GuardedWriteBatch):
    """Queues operations; ``commit`` applies them under the engine lock (atomic)."""

    def __init__(self, engine: MemoryEngine) -> None:
        super().__init__()
        self._engine = engine
        self._ops: list[tuple[bytes, bytes | None]] = []

    def _put(self, key: bytes, value: bytes) -> None:
        self._ops.append((bytes(key), bytes(value)))

    def _delete(self, key: bytes) -> None:
        self._ops.append((bytes(key), _DELETE))

    def _write(self) -> None:
        ops, self._ops = self._ops, []
        self._engine._apply(ops)


@register_engine
class MemoryEngine(KVEngine):
    """Thread-safe, sorted, in-process key-value store (not persistent)."""

    name = "memory"
    atomic_batches = True
    persistent = False
    local = True

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []  # sorted; same key set as _data
        self._lock = threading.Lock()

    @classmethod
    def open(cls, location: str = "", **options: Any) -> MemoryEngine:
        """A new, empty store. ``location`` is ignored; unknown ``options`` raise TypeError."""
        if options:
            raise TypeError(f"memory engine takes no options, got {sorted(options)}")
        return cls()

    # ----- locked primitives -------------------------------------------------------------

    def _put_locked(self, key: bytes, value: bytes) -> None:
        if key not in self._data:
            keys = self._keys
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                bisect.insort(keys, key)
        self._data[key] = value

    def _delete_locked(self, key: bytes) -> bool:
        if self._data.pop(key, None) is None:
            return False
        i = bisect.bisect_left(self._keys, key)
        del self._keys[i]
        return True

    def _bounds_locked(self, rng: KeyRange) -> tuple[int, int]:
        lo = bisect.bisect_left(self._keys, rng.start)
        hi = len(self._keys) if rng.end is None else bisect.bisect_left(self._keys, rng.end)
        return lo, max(lo, hi)

    def _apply(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        with self._lock:
            for key, value in ops:
                if value is _DELETE:
                    self._delete_locked(key)
                else:
                    self._put_locked(key, value)

    # ----- KVEngine ----------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The stored value or ``None``."""
        return self._data.get(key)  # a single dict lookup is atomic under the GIL

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order, read under one lock (a consistent snapshot)."""
        with self._lock:
            return [self._data.get(k) for k in keys]

    def put(self, key: bytes, value: bytes) -> None:
        """Store a copy of ``value`` (bytes-like input is converted to ``bytes``)."""
        key, value = bytes(key), bytes(value)
        with self._lock:
            self._put_locked(key, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key``; a missing key is not an error."""
        with self._lock:
            self._delete_locked(key)

    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over a snapshot of ``rng`` taken at call time.

        An empty or inverted range (``end <= start``) yields nothing.
        """
        with self._lock:
            lo, hi = self._bounds_locked(rng)
            keys = self._keys[lo:hi]
            if keys_only:
                items = [(k, b"") for k in keys]
            else:
                data = self._data
                items = [(k, data[k]) for k in keys]
        if reverse:
            items.reverse()
        return iter(items)

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every key in ``rng`` atomically; returns the number deleted."""
        with self._lock:
            lo, hi = self._bounds_locked(rng)
            doomed = self._keys[lo:hi]
            del self._keys[lo:hi]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    def batch(self) -> MemoryWriteBatch:
        """A new atomic write batch."""
        return MemoryWriteBatch(self)

    def close(self) -> None:
        """Drop all data. Idempotent."""
        with self._lock:
            self._data = {}
            self._keys = []

    def __len__(self) -> int:
        return len(self._data)
