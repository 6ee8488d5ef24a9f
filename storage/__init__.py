"""Ordered byte key-value engines (LMDB, LevelDB, RocksDB, PostgreSQL, GCS, S3, memory).

This package knows nothing of versions or datatypes; see :mod:`storage.base` for the
contract and :mod:`storage.testing` for the conformance suite every engine passes.
"""

from storage.base import KeyRange, KVEngine, WriteBatch, prefix_successor
from storage.registry import (
    EngineUnavailable,
    available_engines,
    engine_class,
    open_engine,
    register_engine,
)

__all__ = [
    "EngineUnavailable",
    "KVEngine",
    "KeyRange",
    "WriteBatch",
    "available_engines",
    "engine_class",
    "open_engine",
    "prefix_successor",
    "register_engine",
]
