"""What the engines over an embedded database directory share (LevelDB, RocksDB).

A subclass sets ``name`` and ``defaults`` (every known option with its default), opens its
database in ``open`` after :meth:`EmbeddedEngine.prepare` has checked the location and the
options and created the directory, and passes the handle to ``__init__``. The handle must
have ``get``, ``put``, ``delete`` and ``close``.
"""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

from storage.base import KVEngine


def prepare_directory(name: str, defaults: dict[str, Any], location: str,
                      options: dict[str, Any]) -> dict[str, Any]:
    """``options`` merged over ``defaults`` for engine ``name``, after creating the
    directory ``location`` (also used by engines that are not :class:`EmbeddedEngine`).

    Raises ValueError for an empty location and TypeError for unknown options.
    """
    if not location:
        raise ValueError(f"{name} engine needs a directory path")
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(
            f"unknown {name} options {sorted(unknown)}; known: {sorted(defaults)}"
        )
    os.makedirs(location, exist_ok=True)
    return {**defaults, **options}


class EmbeddedEngine(KVEngine):
    """A persistent engine over one database handle in a local directory ``path``."""

    atomic_batches = True
    persistent = True
    local = True
    local_path = True
    #: Every known option with its default; ``open`` rejects any other name.
    defaults: ClassVar[dict[str, Any]]

    def __init__(self, db: Any, path: str, options: dict[str, Any]) -> None:
        self._db = db
        self.path = path
        self.options = options
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def prepare(cls, location: str, options: dict[str, Any]) -> dict[str, Any]:
        """The options merged over ``defaults``, after creating the directory ``location``.

        Raises ValueError for an empty location and TypeError for unknown options.
        """
        return prepare_directory(cls.name, cls.defaults, location, options)

    def get(self, key: bytes) -> bytes | None:
        """The stored value or ``None``."""
        return self._db.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key``."""
        self._db.put(key, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key``; a missing key is not an error."""
        self._db.delete(key)

    def close(self) -> None:
        """Close the database. Idempotent; a second caller waits until it is closed."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def describe(self) -> str:
        return f"{self.name} @ {self.path}"
