"""Store holders, shared-store configuration and cross-server coordination of repo metadata,
with two :class:`RepoManager` objects standing for two servers (real PostgreSQL, moto S3,
LevelDB; the e2e tests run real server processes)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import datatypes  # noqa: F401  (registers the built-in datatypes)
from dvidpy.config import ConfigError, Settings
from dvidpy.coord import HOLDER_FILE, HOLDER_KEY, Coordinator, StoreBusy
from dvidpy.errors import Conflict
from dvidpy.repo import RepoManager
from storage import open_engine


def settings(stores: dict[str, dict[str, Any]], **backend: str) -> Settings:
    data: dict[str, Any] = {"store": stores}
    if backend:
        data["backend"] = {k: {"store": v} for k, v in backend.items()}
    return Settings.from_dict(data)


def pg(dsn: str, table: str, **kw: Any) -> dict[str, Any]:
    return {"engine": "postgres", "dsn": dsn, "table": table, **kw}


# ----- exclusive stores ------------------------------------------------------------------


def test_second_server_on_one_leveldb_is_refused_naming_the_holder(tmp_path: Path) -> None:
    s = settings({"main": {"engine": "leveldb", "path": str(tmp_path / "db")}})
    a = RepoManager(s)
    try:
        root = a.create_repo("one").root
        with pytest.raises(StoreBusy) as e:
            RepoManager(s)
        msg = str(e.value)
        assert f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        assert "leveldb" in msg and "started" in msg
        assert json.loads((tmp_path / "db" / HOLDER_FILE).read_text())["pid"] == os.getpid()
    finally:
        a.close()
    assert not (tmp_path / "db" / HOLDER_FILE).exists()
    b = RepoManager(s)  # after the holder is gone
    try:
        assert list(b.repos) == [root]
    finally:
        b.close()


def _files(path: Path) -> list[tuple[str, int, int]]:
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir())


def test_lmdb_lone_and_sharing_servers_refuse_each_other(tmp_path: Path) -> None:
    """An LMDB folder is held alone (no ``shared``) or shared (``shared = true``, as the
    workers of ``--workers`` do): each kind refuses the other, naming the holder, before
    anything is written."""
    path = tmp_path / "db"
    lone = settings({"m": {"engine": "lmdb", "path": str(path)}})
    sharing = settings({"m": {"engine": "lmdb", "path": str(path), "shared": True}})
    assert not lone.coordinated() and sharing.coordinated()
    a = RepoManager(lone)
    try:
        root = a.create_repo("alone").root
        before = _files(path)
        for s in (lone, sharing):
            with pytest.raises(StoreBusy, match=rf"lmdb @ .*pid {os.getpid()} on host"):
                RepoManager(s)
        assert _files(path) == before  # nothing written by the refused servers
    finally:
        a.close()
    assert not (path / HOLDER_FILE).exists()
    b, c = RepoManager(sharing), RepoManager(sharing)
    try:
        assert list(b.repos) == list(c.repos) == [root]
        with pytest.raises(StoreBusy, match="and the servers sharing it"):
            RepoManager(lone)
        made = b.create_repo("shared").root
        assert c.resolve(made)[1].uuid == made
    finally:
        b.close()
        c.close()
    d = RepoManager(lone)  # every sharing server gone: it may be held alone again
    try:
        assert sorted(d.repos) == sorted([root, made])
    finally:
        d.close()


def test_unmanaged_bucket_refuses_a_second_server(s3_endpoint: str, s3_bucket: str) -> None:
    s = settings({"obj": {"engine": "s3", "bucket": f"{s3_bucket}/dvid",
                          "endpoint": s3_endpoint}})
    a = RepoManager(s)
    try:
        a.create_repo("first")
        with pytest.raises(StoreBusy, match=rf"pid {os.getpid()} on host .*shared = true"):
            RepoManager(s)
    finally:
        a.close()
    b = RepoManager(s)
    try:
        assert [r.alias for r in b.repos.values()] == ["first"]
    finally:
        b.close()


@pytest.mark.parametrize("kind", ["expired", "dead-pid"])
def test_stale_holder_is_replaced(s3_endpoint: str, s3_bucket: str, kind: str) -> None:
    """A crashed holder (lease expired, or its pid gone on this host) does not block."""
    eng = open_engine("s3", s3_bucket, endpoint=s3_endpoint)
    dead = 2 ** 22 + 12345  # above pid_max's default: no such process
    rec = {"owner": "crashed", "host": socket.gethostname(), "pid": os.getpid(),
           "started": 0, "expires": time.time() + 3600}
    if kind == "expired":
        rec.update(host="elsewhere", expires=time.time() - 1)
    else:
        rec["pid"] = dead
    eng.put(HOLDER_KEY, json.dumps(rec).encode())
    eng.close()
    m = RepoManager(settings({"obj": {"engine": "s3", "bucket": s3_bucket,
                                      "endpoint": s3_endpoint}}))
    try:
        m.create_repo("after crash")
    finally:
        m.close()


def test_live_foreign_holder_is_refused(s3_endpoint: str, s3_bucket: str) -> None:
    eng = open_engine("s3", s3_bucket, endpoint=s3_endpoint)
    eng.put(HOLDER_KEY, json.dumps({"owner": "x", "host": "other-host", "pid": 77,
                                    "started": 0, "expires": time.time() + 60}).encode())
    eng.close()
    with pytest.raises(StoreBusy, match="pid 77 on host other-host"):
        RepoManager(settings({"obj": {"engine": "s3", "bucket": s3_bucket,
                                      "endpoint": s3_endpoint}}))


# ----- configuration ---------------------------------------------------------------------


def test_sharing_configuration_errors(tmp_path: Path, postgres_dsn: str, pg_table: str,
                                      s3_endpoint: str) -> None:
    with pytest.raises(ConfigError, match="cannot be shared"):
        RepoManager(settings({"m": {"engine": "leveldb", "path": str(tmp_path / "a"),
                                    "shared": True}}))
    with pytest.raises(ConfigError, match="metadata store 'm' is not"):
        RepoManager(settings({
            "m": {"engine": "leveldb", "path": str(tmp_path / "b")},
            "obj": {"engine": "s3", "bucket": "bkt-cfg", "endpoint": s3_endpoint,
                    "shared": True}}, default="m"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(ConfigError, match="shared must be true or false"):
        settings({"m": {"engine": "memory", "shared": "yes"}})
    with pytest.raises(ConfigError, match="needs a dsn"):
        settings({"m": {"engine": "postgres"}})
    with pytest.raises(ConfigError, match="cache_mb"):
        settings({"m": {"engine": "memory", "cache_mb": -1}})
    with pytest.raises(ConfigError, match="redis must be a URL"):
        settings({"m": {"engine": "memory", "redis": "localhost"}})
    s = settings({"m": pg(postgres_dsn, pg_table, cache_mb=8, redis="redis://h:1/0",
                          cache_ttl=5)})
    spec = s.stores["m"]
    assert spec.location == postgres_dsn and spec.options == {"table": pg_table}
    assert (spec.cache_mb, spec.redis, spec.cache_ttl, spec.is_shared()) == \
        (8.0, "redis://h:1/0", 5, True)
    assert s.coordinated()
    # LevelDB's own cache_mb (its block cache) stays an engine option
    lv = settings({"m": {"engine": "leveldb", "path": str(tmp_path / "c"), "cache_mb": 64}})
    assert lv.stores["m"].options == {"cache_mb": 64} and lv.stores["m"].cache_mb == 0


def test_store_of_another_deployment_is_refused(postgres_dsn: str, pg_table: str,
                                                s3_endpoint: str, s3_bucket: str) -> None:
    obj = {"engine": "s3", "bucket": s3_bucket, "endpoint": s3_endpoint, "shared": True}
    a = RepoManager(settings({"m": pg(postgres_dsn, pg_table), "obj": obj}, default="m"))
    a.close()
    with pytest.raises(StoreBusy, match="belongs to another deployment"):
        RepoManager(settings({"m": pg(postgres_dsn, pg_table + "_other"), "obj": obj},
                             default="m"))


# ----- coordination ----------------------------------------------------------------------


@pytest.fixture(params=["postgres", "lmdb"])
def two(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Two servers over one shared metadata store: PostgreSQL, or one LMDB folder (as the
    workers of ``dvidpy serve --workers``)."""
    if request.param == "postgres":
        s = settings({"m": pg(request.getfixturevalue("postgres_dsn"),
                              request.getfixturevalue("pg_table"))})
    else:
        s = settings({"m": {"engine": "lmdb", "path": str(tmp_path / "lmdb"), "shared": True}})
    a, b = RepoManager(s), RepoManager(s)
    yield a, b
    a.close()
    b.close()


def test_changes_on_one_server_are_visible_on_the_other(two: Any) -> None:
    a, b = two
    repo = a.create_repo("shared")
    _, node = b.resolve(repo.root)  # a miss refreshes at once
    assert node.uuid == repo.root
    a.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    a.commit(repo, repo.dag.root, "locked on a")
    child = a.new_version(repo, repo.dag.root)
    t0 = time.monotonic()
    while not b.repos[repo.root].dag.root.locked or child.uuid not in b._by_uuid:
        assert time.monotonic() - t0 < 1.0, "not visible within 1 s"
        time.sleep(0.02)
    rb = b.repos[repo.root]
    assert b.instance(rb, "kv").meta.instance_id == a.instance(repo, "kv").meta.instance_id
    # b builds on what a made: the branch goes on b's fresh copy of the DAG
    br = b.new_branch(rb, rb.dag.root, "side")
    _, seen = a.resolve(br.uuid)
    assert seen.branch == "side"


def test_concurrent_ids_are_unique(two: Any) -> None:
    a, b = two
    repo = a.create_repo("ids")
    a.commit(repo, repo.dag.root)
    b.resolve(repo.root)
    made: list[Any] = []
    errors: list[BaseException] = []

    def work(m: RepoManager, k: int) -> None:
        try:
            r = m.repos[repo.root]
            for i in range(5):
                node = m.new_branch(r, r.dag.root, f"b{k}-{i}")
                inst = m.new_instance(r, node, {"typename": "keyvalue",
                                                "dataname": f"kv{k}-{i}"})
                made.append((node.version, inst.meta.instance_id,
                             m.next_mutation_id(r)))
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=work, args=(m, k)) for k, m in enumerate([a, b, a, b])]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    for col in range(3):
        vals = [m[col] for m in made]
        assert len(set(vals)) == len(vals) == 20
    for m in (a, b):
        m.refresh()
        r = m.repos[repo.root]
        assert len(r.dag.nodes) == 21 and len(r.instances) == 20


def test_save_of_a_stale_repo_is_refused(two: Any) -> None:
    a, b = two
    repo = a.create_repo("x")
    rb = b.resolve(repo.root)[0]
    repo.alias = "from a"
    a.save_repo(repo)
    rb.description = "from b, on a stale copy"
    with pytest.raises(Conflict, match="changed by another server"):
        b.save_repo(rb)
    assert rb.alias == "from a" and rb.description == ""  # reloaded, nothing saved
    rb.description = "now fresh"
    b.save_repo(rb)
    a.refresh()
    assert (repo.alias, repo.description) == ("from a", "now fresh")


def test_shared_lock_serializes_read_modify_write(postgres_dsn: str, pg_table: str) -> None:
    engines = [open_engine("postgres", postgres_dsn, table=pg_table) for _ in range(2)]
    coords = [Coordinator(e, shared=True) for e in engines]
    locks = [c.lock("counter") for c in coords]
    acquired: list[int] = []
    for lk in locks:
        lk.on_acquire = lambda lk=lk: acquired.append(id(lk))

    def work(i: int) -> None:
        eng, lk = engines[i % 2], locks[i % 2]
        for _ in range(15):
            with lk, lk:  # reentrant
                n = int(eng.get(b"n") or b"0")
                time.sleep(0.001)
                eng.put(b"n", str(n + 1).encode())

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert engines[0].get(b"n") == b"60"
    assert len(acquired) == 60  # on_acquire once per outermost acquisition
    for c in coords:
        c.close()
    for e in engines:
        e.close()
