"""Engine registry: built-in engines register by name; third-party ones via entry points.

``open_engine("leveldb", "/data/db", write_buffer_mb=64)`` opens a store. Engines whose
optional dependency is missing raise :class:`EngineUnavailable` with the pip command that
installs it for this install of dvidpy (:func:`install_command`: a checkout or a wheel).
Third-party engines declare an entry point in the ``dvidpy.storage`` group whose value is
the engine class (a :class:`~storage.base.KVEngine` subclass with a ``name``).
"""

from __future__ import annotations

import importlib
import re
import shlex
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from storage.base import KVEngine


class EngineUnavailable(RuntimeError):
    """The engine is unknown or its optional dependency is not installed."""


# name -> (module, class, install hint) for lazy import, so a missing optional dependency
# only matters when that engine is actually used.
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
#: built-in engines whose stores servers share unless a store says ``shared = false`` (a
#: database is made to be shared; a folder or a bucket is shared only when said so)
_SHARED_BY_DEFAULT = frozenset({"postgres"})


def source_checkout() -> Path | None:
    """The source tree this code runs from (the folder holding dvidpy's pyproject.toml, as
    in a clone or an editable install), or None when it runs from an installed wheel
    (site-packages has no pyproject.toml beside the packages).

    Decided by where the running code is, not by the installed distribution's
    ``direct_url.json``: a second checkout run with ``python -m dvidpy.cli`` beside an
    editable install of the first would otherwise be told to change the first one.
    """
    root = Path(__file__).resolve().parents[1]
    try:
        text = (root / "pyproject.toml").read_text()
    except OSError:
        return None
    return root if re.search(r'(?m)^name\s*=\s*"dvidpy"\s*$', text) else None


def install_command(requirement: str) -> str:
    """The shell command that installs ``requirement`` for this install of dvidpy.

    ``dvidpy[x]`` (an extra of dvidpy) becomes ``pip install -e '.[x]'`` from a checkout
    (prefixed by ``cd CHECKOUT &&`` when the working directory is elsewhere) and
    ``pip install 'dvidpy[x]'`` from a wheel (pip keeps the installed dvidpy and adds the
    extra's packages). Any other requirement is ``pip install REQUIREMENT``.
    """
    m = re.fullmatch(r"dvidpy(\[[\w,-]+\])?", requirement)
    if m is None:
        return f"pip install {shlex.quote(requirement)}"
    extras = m.group(1) or ""
    root = source_checkout()
    if root is None:
        return f"pip install {shlex.quote('dvidpy' + extras)}"
    cmd = f"pip install -e {shlex.quote('.' + extras)}"
    try:
        here = Path.cwd().resolve() == root
    except OSError:  # the working directory was removed
        here = False
    return cmd if here else f"cd {shlex.quote(str(root))} && {cmd}"


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
                f"storage engine {name!r} needs an extra package ({e}): "
                f"{install_command(hint)}"
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


def shared_by_default(name: str) -> bool:
    """Whether a store of engine ``name`` is shared by servers when its configuration does
    not say (:attr:`~storage.base.KVEngine.shared_by_default`; built-ins answer without
    importing their module, so a missing optional package does not matter here)."""
    if name in _BUILTIN:
        return name in _SHARED_BY_DEFAULT
    try:
        return bool(engine_class(name).shared_by_default)
    except EngineUnavailable:
        return False


def available_engines() -> list[str]:
    """Names of every engine that could be opened (built-ins, registered, entry points)."""
    names = set(_BUILTIN) | set(_REGISTERED)
    names |= {ep.name for ep in entry_points(group="dvidpy.storage")}
    return sorted(names)


def open_engine(name: str, location: str = "", **options: Any) -> KVEngine:
    """Open engine ``name`` at ``location`` with engine-specific ``options``."""
    return engine_class(name).open(location, **options)
