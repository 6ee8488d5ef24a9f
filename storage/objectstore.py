"""What the object-store engines (GCS, S3) share: one object per key under an order-keeping
name (:mod:`storage.hexnames`), parallel gets and puts on a thread pool, listing-based
scans, and write batches that apply the last operation per key, in parallel, without
atomicity (``atomic_batches = False``).

A subclass provides the single-object operations (:meth:`ObjectStoreEngine._get_name`,
``_put_name``, ``_delete_names``), the listing (``_list``), ``open`` and
``compare_and_swap``.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, ClassVar

from storage.base import GuardedWriteBatch, KeyRange, KVEngine
from storage.hexnames import HexNames, split_location


class ObjectWriteBatch(GuardedWriteBatch):
    """Collects operations; ``commit`` applies the last one per key, in parallel.

    Not atomic: a failure part-way leaves the operations applied so far."""

    def __init__(self, engine: ObjectStoreEngine) -> None:
        super().__init__()
        self._engine = engine
        self._ops: dict[bytes, bytes | None] = {}

    def _queue(self, key: bytes, value: bytes | None) -> None:
        key = bytes(key)
        self._engine._names.name(key)  # validate now rather than at commit
        self._ops.pop(key, None)  # keep insertion order = order of last operation
        self._ops[key] = value

    def _put(self, key: bytes, value: bytes) -> None:
        self._queue(key, bytes(value))

    def _delete(self, key: bytes) -> None:
        self._queue(key, None)

    def _write(self) -> None:
        ops, self._ops = self._ops, {}
        self._engine._apply(ops)


class ObjectStoreEngine(KVEngine):
    """Base of the engines over object stores (see the module docstring)."""

    atomic_batches = False
    persistent = True
    shareable = True
    #: objects listed or deleted per request
    page = 1000

    def __init__(self, prefix: str, threads: int, thread_name: str) -> None:
        self.prefix = prefix
        self._names = HexNames(prefix)
        self._threads = max(1, int(threads))
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix=thread_name)
        self._closed = False
        self._close_lock = threading.Lock()

    #: location scheme ``open`` strips (``"s3://"``) and the option names it accepts
    scheme: ClassVar[str] = ""
    known_options: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def parse_open(cls, location: str, options: dict[str, Any]) -> tuple[str, str, int]:
        """``(bucket, prefix, threads)`` of an ``open`` call (``threads`` defaults to 16).

        Raises ValueError for an empty bucket name and TypeError for unknown options.
        """
        unknown = set(options) - cls.known_options
        if unknown:
            raise TypeError(f"unknown {cls.name} options {sorted(unknown)}; "
                            f"known: {sorted(cls.known_options)}")
        bucket, prefix = split_location(location, cls.scheme)
        return bucket, prefix, int(options.get("threads", 16))

    # ----- what a subclass provides -----------------------------------------------------

    @abstractmethod
    def _get_name(self, name: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""

    @abstractmethod
    def _put_name(self, name: str, value: bytes) -> None:
        """Write (replace) one object."""

    @abstractmethod
    def _delete_names(self, names: Sequence[str]) -> int:
        """Delete up to :attr:`page` objects (missing ones are fine); how many were."""

    @abstractmethod
    def _list(self, rng: KeyRange) -> Iterator[tuple[bytes, str]]:
        """``(key, object name)`` for keys in ``rng``, ascending, listed lazily."""

    def _close_client(self) -> None:
        """Release the client when the engine owns it (default: nothing)."""

    # ----- KVEngine ------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The stored value, or ``None`` when the object does not exist."""
        return self._get_name(self._names.name(bytes(key)))

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order, fetched in parallel (not a snapshot)."""
        names = [self._names.name(bytes(k)) for k in keys]
        if len(names) < 2:
            return [self._get_name(n) for n in names]
        return list(self._pool.map(self._get_name, names))

    def put(self, key: bytes, value: bytes) -> None:
        """Upload ``value`` as the object for ``key`` (replacing it)."""
        self._put_name(self._names.name(bytes(key)), bytes(value))

    def delete(self, key: bytes) -> None:
        """Delete the object for ``key``; a missing object is not an error."""
        self._delete_names([self._names.name(bytes(key))])

    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` in ``rng``; lazy, not a snapshot: an object deleted after
        it was listed is skipped. An empty or inverted range yields nothing; reverse scans
        list the whole range before yielding."""
        if rng.is_empty():
            return iter(())
        listed: Iterable[tuple[bytes, str]] = self._list(rng)
        if reverse:
            listed = list(listed)
            listed.reverse()
        if keys_only:
            return ((k, b"") for k, _ in listed)
        return self._with_values(iter(listed))

    def _with_values(self, listed: Iterator[tuple[bytes, str]]) -> Iterator[tuple[bytes, bytes]]:
        page = max(64, 4 * self._threads)
        while chunk := list(islice(listed, page)):
            values = list(self._pool.map(self._get_name, [n for _, n in chunk]))
            for (key, _), value in zip(chunk, values, strict=True):
                if value is not None:  # deleted since it was listed
                    yield key, value

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every object in ``rng``; returns how many this call deleted."""
        if rng.is_empty():
            return 0
        n = 0
        listed = self._list(rng)
        while chunk := [name for _, name in islice(listed, self.page)]:
            n += self._delete_names(chunk)
        return n

    def _apply(self, ops: dict[bytes, bytes | None]) -> None:
        """Apply a batch's last operation per key: deletes by pages, puts in parallel."""
        dels = [self._names.name(k) for k, v in ops.items() if v is None]
        puts = [(self._names.name(k), v) for k, v in ops.items() if v is not None]
        for i in range(0, len(dels), self.page):
            self._delete_names(dels[i:i + self.page])
        if len(puts) == 1:
            self._put_name(*puts[0])
        elif puts:
            for _ in self._pool.map(lambda nv: self._put_name(*nv), puts):  # re-raises
                pass

    def batch(self) -> ObjectWriteBatch:
        """A new (non-atomic) write batch."""
        return ObjectWriteBatch(self)

    def close(self) -> None:
        """Stop the worker threads (and the client if the engine owns it); idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=True)
        self._close_client()
