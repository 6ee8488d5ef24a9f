"""Engine names in a TOML: dvidpy's and DVID's names for the same engines pass; any other
name is an error naming the known engines, unless the store asks for a substitute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dvidpy.config import ConfigError, Settings
from storage import available_engines, register_engine, registry
from storage.memory import MemoryEngine


def store(**table: Any) -> dict[str, Any]:
    return {"store": {"s": table}}


@pytest.mark.parametrize("name", ["badger", "Leveldb", "rocks", "bolt", ""])
def test_unknown_engine_names_the_known_ones(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.from_dict(store(engine=name, path="db"), base_dir=tmp_path)
    msg = str(e.value)
    assert f"[store.s] engine {name!r}" in msg
    for known in available_engines():
        assert known in msg
    assert 'substitute = "leveldb"' in msg


def test_badger_is_not_silently_leveldb(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="badger"):
        Settings.from_dict(store(engine="badger", path="db"), base_dir=tmp_path)


def test_explicit_substitute(tmp_path: Path) -> None:
    s = Settings.from_dict(store(engine="badger", substitute="leveldb", path="db",
                                 write_buffer_mb=8), base_dir=tmp_path)
    spec = s.stores["s"]
    assert (spec.engine, spec.substitutes, spec.location) == (
        "leveldb", "badger", str(tmp_path / "db"))
    assert spec.options == {"write_buffer_mb": 8}  # engine and substitute are not options
    s = Settings.from_dict(store(engine="badger", substitute="basholeveldb", path="db"),
                           base_dir=tmp_path)
    assert s.stores["s"].engine == "leveldb"
    s = Settings.from_dict(store(engine="badger", substitute="memory"), base_dir=tmp_path)
    assert (s.stores["s"].engine, s.stores["s"].location) == ("memory", "")


def test_dvid_aliases_of_the_same_engine(tmp_path: Path) -> None:
    s = Settings.from_dict({"store": {"a": {"engine": "basholeveldb", "path": "db"},
                                      "b": {"engine": "gbucket", "bucket": "x"}},
                            "backend": {"default": {"store": "a"}}}, base_dir=tmp_path)
    assert [(x.engine, x.substitutes) for x in s.stores.values()] == [
        ("leveldb", ""), ("gcs", "")]


@pytest.mark.parametrize("table, match", [
    ({"engine": "leveldb", "substitute": "memory", "path": "db"}, "would never apply"),
    ({"engine": "basholeveldb", "substitute": "memory", "path": "db"}, "would never apply"),
    ({"engine": "badger", "substitute": "badger", "path": "db"}, "substitute = 'badger'"),
    ({"engine": "badger", "substitute": "nope", "path": "db"}, "known engines: "),
    ({"engine": "badger", "substitute": 3, "path": "db"}, "must be strings"),
    ({"engine": ["leveldb"], "path": "db"}, "must be strings"),
    ({"engine": "badger", "substitute": "rocksdb"}, "needs a path"),
])
def test_bad_substitutes(table: dict[str, Any], match: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.from_dict(store(**table), base_dir=tmp_path)


def test_registered_engine_is_known(tmp_path: Path) -> None:
    @register_engine
    class Scratch(MemoryEngine):
        name = "scratch-for-config-test"

    try:
        s = Settings.from_dict(store(engine="scratch-for-config-test"), base_dir=tmp_path)
        assert s.stores["s"].engine == "scratch-for-config-test"
    finally:
        registry._REGISTERED.pop(Scratch.name)


def test_serve_refuses_badger_at_startup(tmp_path: Path) -> None:
    cfg = tmp_path / "dvid.toml"
    cfg.write_text('[store.main]\nengine = "badger"\npath = "db"\n')
    r = subprocess.run([sys.executable, "-m", "dvidpy.cli", "serve", "--config", str(cfg),
                        "--port", "1"], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 2, r
    assert "'badger' is not a storage engine" in r.stderr and "leveldb" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "db").exists()  # nothing was opened


def test_shared_by_default_is_the_engine_classes_own_word() -> None:
    """The registry answers for built-ins without importing them; the answer must be
    what each engine class declares (every built-in whose package is installed)."""
    for name in registry._BUILTIN:
        try:
            cls = registry.engine_class(name)
        except registry.EngineUnavailable:
            continue
        assert registry.shared_by_default(name) is cls.shared_by_default, name
    assert registry.shared_by_default("postgres") is True
    assert registry.shared_by_default("leveldb") is False
    assert registry.shared_by_default("no-such-engine") is False


def test_a_store_is_shared_as_its_engine_says_unless_told(tmp_path: Path) -> None:
    class SharedMem(MemoryEngine):
        name = "sharedmem-test"
        shared_by_default = True

    register_engine(SharedMem)
    try:
        s = Settings.from_dict({"store": {
            "a": {"engine": "sharedmem-test", "path": str(tmp_path / "a")},
            "b": {"engine": "sharedmem-test", "path": str(tmp_path / "b"), "shared": False},
            "c": {"engine": "memory"}}, "backend": {"default": {"store": "c"}}},
            base_dir=tmp_path)
        assert [s.stores[k].is_shared() for k in "abc"] == [True, False, False]
    finally:
        registry._REGISTERED.pop(SharedMem.name)
