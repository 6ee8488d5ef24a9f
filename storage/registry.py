"""Engine registry: built-in engines register by name; third-party ones via entry points.

``open_engine("leveldb", "/data/db", write_buffer_mb=64)`` opens a store. Engines whose
optional dependency is missing raise :class:`EngineUnavailable` with the install hint.
Third-party engines declare an entry point in the ``dvidpy.storage`` group whose value is
the engine class (a :class:`~storage.base.KVEngine` subclass with a ``name``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from storage.base import KVEngine


class EngineUnavailable(RuntimeError):
    """The engine is unknown or its optional dependency is not installed."""


# name -> "module:Class" for lazy import, so a missing optional dependency only matters
# when that engine is actually used.
_BUILTIN: dict[str, tuple[str, str, str]] = {
    "memory": ("storage.memory", "MemoryEngine", ""),
    "leveldb": ("storage.leveldb", "LevelDBEngine", "plyvel"),
    "lmdb": ("storage.lmdbkv", "LMDBEngine", "lmdb"),
    "rocksdb": ("storage.rocksdb", "RocksDBEngine", "dvidpy[rocksdb]"),
    "gcs": ("storage.gcs", "GCSEngine", "dvidpy[gcs]"),
    "postgres": ("storage.postgres", "PostgresEngine", "dvidpy[postgres]"),
    "s3": ("storage.s3", "S3Engine", "dvidpy[s3]"),
}
_REGISTERED: dict[str, type[KVEngine]] = {}


def register_engine(cls: type[KVEngine]) -> type[KVEngine]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    _REGISTERED[cls.name] = cls
    return cls


def engine_class(name: str) -> type[KVEngine]:
    """The engine class registered as ``name`` (importing it on first use)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        module, attr, hint = _BUILTIN[name]
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            raise EngineUnavailable(
                f"storage engine {name!r} needs an extra package ({e}); pip install {hint}"
            ) from e
        cls = getattr(mod, attr)
        _REGISTERED[name] = cls
        return cls
    for ep in entry_points(group="dvidpy.storage"):
        if ep.name == name:
            cls = ep.load()
            _REGISTERED[name] = cls
            return cls
    raise EngineUnavailable(
        f"unknown storage engine {name!r}; known: {', '.join(sorted(available_engines()))}"
    )


def available_engines() -> list[str]:
    """Names of every engine that could be opened (built-ins, registered, entry points)."""
    names = set(_BUILTIN) | set(_REGISTERED)
    names |= {ep.name for ep in entry_points(group="dvidpy.storage")}
    return sorted(names)


def open_engine(name: str, location: str = "", **options: Any) -> KVEngine:
    """Open engine ``name`` at ``location`` with engine-specific ``options``."""
    return engine_class(name).open(location, **options)
