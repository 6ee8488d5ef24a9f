"""Scale-out end to end: three ``dvidpy serve`` processes over one shared store.

Metadata and labelmap live in PostgreSQL, keyvalue and uint8blk in an object store (moto's
S3 server, or the GCS emulator), committed reads cached in an LRU and a shared Redis.
Writers on every server run at once: keyvalue keys, uint8blk boxes that share blocks (so
servers read-modify-write the same blocks), labelmap merges and cleaves on shared bodies;
one server is SIGKILLed mid-write and restarted; then the root is committed, a new version
and a branch are made on different servers and written through all of them. Afterwards
every acknowledged write reads back through every server, VersionIDs, InstanceIDs and
cleaved labels are unique, and each body's label index (sizes, supervoxels) equals the
voxels; the same with three processes sharing one LMDB folder. Also: the refusals of a
second server on one LevelDB or LMDB folder or one unmanaged bucket, and ``--workers``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from servers import ServerProcess
from servers import children as _children

pytestmark = pytest.mark.e2e

SHAPE = (32, 32, 64)  # z, y, x of the labelmap volume: 2 blocks of 32^3
BS = 32


def _toml(tmp: Path, name: str, body: str) -> Path:
    p = tmp / name
    p.write_text(body)
    return p


def _shared_toml(tmp: Path, dsn: str, table: str, obj: str, redis_url: str) -> Path:
    return _toml(tmp, "dvid.toml", f"""
[server]
note = "scale-out"
[store.pg]
engine = "postgres"
dsn = "{dsn}"
table = "{table}"
[store.obj]
{obj}
shared = true
cache_mb = 16
redis = "{redis_url}"
cache_ttl = 600
[backend.default]
store = "obj"
[backend.metadata]
store = "pg"
[backend.labelmap]
store = "pg"
""")


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r


class Writers:
    """Concurrent writers through several servers; records what was acknowledged."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.servers = servers
        self.kv: dict[str, bytes] = {}  # key -> value, acknowledged
        self.boxes: list[tuple[tuple[int, int, int], np.ndarray]] = []  # offset, vol
        self.failed = 0
        self.unexpected: list[str] = []  # asserted on by the test thread
        self.lock = threading.Lock()

    def post(self, i: int, path: str, **kw: Any) -> bool:
        try:
            r = httpx.post(self.servers[i % len(self.servers)].url + path, timeout=60, **kw)
        except httpx.HTTPError:
            with self.lock:
                self.failed += 1
            return False
        if r.status_code != 200:
            with self.lock:
                self.failed += 1
            if r.status_code < 500:  # a killed server may drop a request; not this
                self.unexpected.append(f"{r.status_code} {r.text}")
            return False
        return True

    def kv_writer(self, w: int, uuid_: str, n: int, tag: str) -> None:
        for j in range(n):
            key, val = f"{tag}-w{w}-{j}", f"{tag}:{w}:{j}".encode() * 5
            if self.post(w + j, f"/api/node/{uuid_}/kv/key/{key}", content=val):
                with self.lock:
                    self.kv[key] = val

    def gray_writer(self, w: int, uuid_: str, n: int, z0: int) -> None:
        """Boxes 8 voxels wide in x at x = 8 w: writers share every 32^3 block."""
        rng = np.random.default_rng(w + z0)
        for j in range(n):
            off = (8 * w, 5 * j, z0)  # x, y, z: not block aligned
            vol = rng.integers(1, 255, (6, 5, 8), dtype=np.uint8)  # z, y, x
            if self.post(w + j, f"/api/node/{uuid_}/gray/raw/0_1_2/8_5_6/"
                         f"{off[0]}_{off[1]}_{off[2]}", content=vol.tobytes()):
                with self.lock:
                    self.boxes.append((off, vol))


def _check_everywhere(servers: list[ServerProcess], uuid_: str, wr: Writers,
                      kv_prefix: str = "") -> None:
    for srv in servers:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            for key, val in wr.kv.items():
                if not key.startswith(kv_prefix):
                    continue
                assert _ok(c.get(f"/api/node/{uuid_}/kv/key/{key}")).content == val, key
            for (x, y, z), vol in wr.boxes:
                got = _ok(c.get(f"/api/node/{uuid_}/gray/raw/0_1_2/8_5_6/{x}_{y}_{z}"))
                assert np.array_equal(np.frombuffer(got.content, np.uint8).reshape(6, 5, 8),
                                      vol), (srv.url, x, y, z)


def _check_label_index(c: httpx.Client, uuid_: str) -> None:
    """Every body's stored index (sizes, supervoxels) equals what the voxels say."""
    nz, ny, nx = SHAPE
    base = f"/api/node/{uuid_}/seg"
    bodies = np.frombuffer(_ok(c.get(f"{base}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0")).content,
                           "<u8").reshape(SHAPE)
    svs = np.frombuffer(_ok(c.get(f"{base}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0?supervoxels=true")
                            ).content, "<u8").reshape(SHAPE)
    labels, counts = np.unique(bodies[bodies > 0], return_counts=True)
    assert _ok(c.request("GET", f"{base}/sizes", json=labels.tolist())).json() == \
        counts.tolist()
    for b in labels.tolist():
        want = sorted(int(s) for s in np.unique(svs[bodies == b]))
        assert sorted(_ok(c.get(f"{base}/supervoxels/{b}")).json()) == want, b


def _labelmap_edits(servers: list[ServerProcess], uuid_: str, svs: list[int],
                    cleaved: list[int], errors: list[str]) -> None:
    """Merges and cleaves of shared bodies, each through a different server."""

    def edit(k: int) -> None:
        c = httpx.Client(base_url=servers[k % len(servers)].url, timeout=60)
        try:
            target = svs[0] if k % 2 == 0 else svs[1]
            group = svs[2 + 3 * k: 5 + 3 * k]
            r = c.post(f"/api/node/{uuid_}/seg/merge", json=[target, *group])
            if r.status_code != 200:
                errors.append(r.text)
                return
            r = c.post(f"/api/node/{uuid_}/seg/cleave/{target}", json=group[:1])
            if r.status_code != 200:
                errors.append(r.text)
                return
            cleaved.append(r.json()["CleavedLabel"])
        finally:
            c.close()

    ts = [threading.Thread(target=edit, args=(k,)) for k in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _pg_instance_ids(dsn: str, table: str) -> Any:
    def ids(root: str) -> list[int]:
        import json

        import psycopg

        from dvidpy.keys import meta_key

        with psycopg.connect(dsn, autocommit=True) as pc:
            rec = pc.execute(f"SELECT v FROM {table} WHERE k = %s",
                             (meta_key(f"repo/{root}"),)).fetchone()
        return [m["instance_id"] for m in json.loads(bytes(rec[0]))["instances"]]

    return ids


def _run_scale_out(tmp_path: Path, toml: Path, instance_ids: Any,
                   cached: bool = True) -> None:
    """``instance_ids(root)``: the InstanceIDs in the stored repo record, read from the
    store directly; ``cached``: the TOML has the cache tier (LRU + Redis)."""
    servers = [ServerProcess(["--config", str(toml), "--quiet"], tmp_path / f"s{i}.log")
               for i in range(3)]
    a, b, c3 = servers
    try:
        ca = httpx.Client(base_url=a.url, timeout=60)
        root = _ok(ca.post("/api/repos", json={"alias": "scale"})).json()["root"]
        # instances made through different servers, used at once through the others
        _ok(httpx.post(f"{b.url}/api/repo/{root}/instance",
                       json={"typename": "keyvalue", "dataname": "kv"}))
        _ok(httpx.post(f"{c3.url}/api/repo/{root}/instance",
                       json={"typename": "uint8blk", "dataname": "gray"}))
        _ok(ca.post(f"/api/repo/{root}/instance", json={
            "typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}"}))
        z, y, x = np.indices(SHAPE)
        seg = (1 + (z // 8) * 16 + (y // 8) * 4 + (x // 16)).astype(np.uint64)  # 64 svs
        nz, ny, nx = SHAPE
        _ok(httpx.post(f"{c3.url}/api/node/{root}/seg/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0",
                       content=seg.tobytes()))
        svs = sorted(int(s) for s in np.unique(seg))

        # phase 1: concurrent writers at the root on all servers; C is SIGKILLed mid-way
        wr = Writers(servers)
        cleaved: list[int] = []
        errors: list[str] = []
        threads = [threading.Thread(target=wr.kv_writer, args=(w, root, 12, "p1"))
                   for w in range(3)]
        threads += [threading.Thread(target=wr.gray_writer, args=(w, root, 4, 0))
                    for w in range(4)]
        threads.append(threading.Thread(target=_labelmap_edits,
                                        args=(servers[:2], root, svs, cleaved, errors)))
        for t in threads:
            t.start()
        time.sleep(0.4)
        assert c3.proc is not None
        c3.proc.send_signal(signal.SIGKILL)
        c3.proc.wait()
        c3.logf.close()
        c3.start()  # same config, same port: no manual cleanup
        for t in threads:
            t.join()
        assert errors == [] and wr.unexpected == []
        assert len(wr.kv) >= 24 and len(wr.boxes) >= 10, (len(wr.kv), len(wr.boxes))
        _check_everywhere(servers, root, wr)
        assert len(set(cleaved)) == len(cleaved) == 6
        assert not set(cleaved) & set(svs)
        for srv in servers:
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                _check_label_index(c, root)

        # phase 2: commit on A, new version on B, branch on C; writes through all three
        _ok(ca.post(f"/api/node/{root}/commit", json={"note": "phase 1"}))
        child = _ok(httpx.post(f"{b.url}/api/node/{root}/newversion", json={})).json()["child"]
        side = _ok(httpx.post(f"{c3.url}/api/node/{root}/branch",
                              json={"branch": "side"})).json()["child"]
        r = ca.post(f"/api/node/{root}/kv/key/late", content=b"x")  # locked everywhere
        assert r.status_code == 400
        wr2 = Writers(servers)
        ts = [threading.Thread(target=wr2.kv_writer, args=(w, u, 6, f"p2{u[:4]}"))
              for w in range(3) for u in (child, side)]
        ts += [threading.Thread(target=wr2.gray_writer, args=(w, child, 2, 20))
               for w in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert wr2.failed == 0 and wr2.unexpected == []
        for srv in servers:
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                for key, val in wr2.kv.items():
                    u = child if key.startswith(f"p2{child[:4]}") else side
                    assert _ok(c.get(f"/api/node/{u}/kv/key/{key}")).content == val
                    other = side if u == child else child
                    assert c.get(f"/api/node/{other}/kv/key/{key}").status_code == 404
        _check_everywhere(servers, child, wr2, kv_prefix=f"p2{child[:4]}")
        # the committed root reads the same twice on every server (the second from cache)
        _check_everywhere(servers, root, wr)
        _check_everywhere(servers, root, wr)
        if cached:
            loads = [_ok(httpx.get(f"{s.url}/api/load")).json() for s in servers]
            assert loads[0]["cache misses"] > 0  # A read the root first, from the store
            assert loads[1]["cache Redis hits"] > 0  # B found A's reads in the shared Redis
            assert all(ld["cache LRU hits"] > 0 for ld in loads)  # second pass: in-process

        # ids: unique VersionIDs and InstanceIDs, the same DAG on every server
        infos = [_ok(httpx.get(f"{s.url}/api/repo/{root}/info")).json() for s in servers]
        dags = [i["DAG"] for i in infos]
        assert dags[0] == dags[1] == dags[2]
        vids = [n["VersionID"] for n in dags[0]["Nodes"].values()]
        assert len(set(vids)) == len(vids) == 3
        iids = instance_ids(root)
        assert len(set(iids)) == len(iids) == 3
    finally:
        for s in servers:
            s.stop()


def test_three_servers_on_postgres_and_s3(tmp_path: Path, postgres_dsn: str, pg_table: str,
                                           s3_endpoint: str, redis_url: str) -> None:
    bucket = f"scale-{uuid.uuid4().hex[:10]}"
    obj = f'engine = "s3"\nbucket = "{bucket}/dvid"\nendpoint = "{s3_endpoint}"'
    _run_scale_out(tmp_path, _shared_toml(tmp_path, postgres_dsn, pg_table, obj, redis_url),
                   _pg_instance_ids(postgres_dsn, pg_table))


def test_three_servers_on_postgres_and_gcs(tmp_path: Path, postgres_dsn: str, pg_table: str,
                                            gcs_emulator: str, redis_url: str) -> None:
    bucket = f"scale-{uuid.uuid4().hex[:10]}"
    obj = f'engine = "gcs"\nbucket = "{bucket}/dvid"\nendpoint = "{gcs_emulator}"'
    _run_scale_out(tmp_path, _shared_toml(tmp_path, postgres_dsn, pg_table, obj, redis_url),
                   _pg_instance_ids(postgres_dsn, pg_table))


def test_three_servers_on_one_lmdb_folder(tmp_path: Path) -> None:
    """The same run with every instance in one LMDB folder shared by three processes of
    this machine (what ``--workers`` does with the default folder); the SIGKILLed server
    may die inside a write transaction."""
    toml = _toml(tmp_path, "lmdb.toml", '[store.main]\nengine = "lmdb"\npath = "db"\n'
                 'shared = true\n')

    def ids(root: str) -> list[int]:
        import json

        from dvidpy.keys import meta_key
        from storage import open_engine

        with open_engine("lmdb", str(tmp_path / "db")) as e:  # a fourth process, reading
            raw = e.get(meta_key(f"repo/{root}"))
        assert raw is not None
        return [m["instance_id"] for m in json.loads(raw)["instances"]]

    _run_scale_out(tmp_path, toml, ids, cached=False)


# ----- refusals and --workers -----------------------------------------------------------------


def _refused(args: list[str], tmp: Path) -> str:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dvidpy.cli", "serve", "--port", "1", *args],
                       capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 2, r.stdout + r.stderr
    return r.stderr


@pytest.mark.parametrize("engine", ["leveldb", "lmdb"])
def test_second_server_on_one_folder_refuses(tmp_path: Path, engine: str) -> None:
    data = ["--data", str(tmp_path / "db")]
    a = ServerProcess([*data, "--engine", engine], tmp_path / "a.log")
    try:
        root = _ok(httpx.post(f"{a.url}/api/repos", json={})).json()["root"]
        marker = "CURRENT" if engine == "leveldb" else "data.mdb"
        assert (tmp_path / "db" / marker).exists()
        before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                        for p in (tmp_path / "db").iterdir())
        refusals = [data, [*data, "--workers", "2"]] if engine == "lmdb" else [data]
        for args in refusals:  # the folder's engine is found without --engine
            err = _refused(args, tmp_path)
            assert f"pid {a.proc.pid}" in err and "in use by dvidpy" in err, err
        after = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                       for p in (tmp_path / "db").iterdir())
        assert after == before  # nothing written
        assert _ok(httpx.get(f"{a.url}/api/repo/{root}/info")).json()["Root"] == root
        # SIGKILL: the OS drops the folder's lock, a restart needs no cleanup
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        a.logf.close()
        a.start()
        assert _ok(httpx.get(f"{a.url}/api/repo/{root}/info")).json()["Root"] == root
    finally:
        a.stop()


def test_second_server_on_one_unmanaged_bucket_refuses(tmp_path: Path,
                                                       s3_endpoint: str) -> None:
    bucket = f"solo-{uuid.uuid4().hex[:10]}"
    toml = _toml(tmp_path, "s3.toml", f"""
[store.obj]
engine = "s3"
bucket = "{bucket}"
endpoint = "{s3_endpoint}"
""")
    a = ServerProcess(["--config", str(toml)], tmp_path / "a.log")
    try:
        _ok(httpx.post(f"{a.url}/api/repos", json={"alias": "mine"}))
        err = _refused(["--config", str(toml)], tmp_path)
        assert f"pid {a.proc.pid}" in err and "shared = true" in err, err
        repos = _ok(httpx.get(f"{a.url}/api/repos/info")).json()
        assert [r["Alias"] for r in repos.values()] == ["mine"]
    finally:
        a.stop()
    # a clean stop releases the bucket
    b = ServerProcess(["--config", str(toml)], tmp_path / "b.log")
    b.stop()


def test_workers_refused_for_single_process_engines(tmp_path: Path) -> None:
    err = _refused(["--workers", "2", "--data", str(tmp_path / "lv"), "--engine", "leveldb"],
                   tmp_path)
    assert "is a leveldb folder, which serves one process at a time" in err, err
    assert "memory" in _refused(["--workers", "2", "--memory"], tmp_path)
    assert "holds lmdb data, not leveldb" in _refused(
        ["--data", str(_lmdb_folder(tmp_path / "m")), "--engine", "leveldb"], tmp_path)
    toml = _toml(tmp_path, "l.toml", '[store.main]\nengine = "leveldb"\npath = "db"\n')
    err = _refused(["--workers", "2", "--config", str(toml)], tmp_path)
    assert "store 'main' (leveldb) serves one process at a time" in err
    assert not (tmp_path / "db").exists()


def _lmdb_folder(path: Path) -> Path:
    from storage import open_engine

    open_engine("lmdb", str(path)).close()
    return path


@pytest.mark.parametrize("store", ["postgres", "default-lmdb"])
def test_workers_serve_one_shared_store(tmp_path: Path, request: pytest.FixtureRequest,
                                        store: str) -> None:
    if store == "postgres":
        toml = _toml(tmp_path, "pg.toml", f"""
[store.pg]
engine = "postgres"
dsn = "{request.getfixturevalue("postgres_dsn")}"
table = "{request.getfixturevalue("pg_table")}"
""")
        where = ["--config", str(toml)]
    else:  # dvidpy serve --workers 2 with no config: the workers share the LMDB folder
        where = ["--data", str(tmp_path / "db")]
    srv = ServerProcess([*where, "--workers", "2"], tmp_path / "w.log")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for i in range(5):  # new repos are readable whichever worker answers
                root = _ok(c.post("/api/repos", json={"alias": f"r{i}"})).json()["root"]
                _ok(c.post(f"/api/repo/{root}/instance",
                           json={"typename": "keyvalue", "dataname": "kv"}))
                for j in range(8):
                    _ok(c.post(f"/api/node/{root}/kv/key/k{j}", content=b"%d" % j))
                    with httpx.Client(base_url=srv.url, timeout=30) as fresh:  # new conn
                        assert _ok(fresh.get(f"/api/node/{root}/kv/key/k{j}")).content == \
                            b"%d" % j
        assert srv.proc is not None
        kids = _children(srv.proc.pid)
        assert len(kids) == 2
        os.kill(kids[0], signal.SIGKILL)  # the supervisor starts another
        t0 = time.monotonic()
        while len(set(_children(srv.proc.pid)) - {kids[0]}) < 2:
            assert time.monotonic() - t0 < 30
            time.sleep(0.1)
        for _ in range(10):
            with httpx.Client(base_url=srv.url, timeout=30) as fresh:
                assert _ok(fresh.get(f"/api/node/{root}/kv/key/k0")).content == b"0"
        kids = _children(srv.proc.pid)
        if store == "default-lmdb":  # a one-process server is refused while workers run
            err = _refused([*where, "--workers", "1"], tmp_path)
            assert "and the servers sharing it" in err, err
    finally:
        srv.stop()
    for pid in kids:  # SIGTERM to the supervisor stopped every worker
        t0 = time.monotonic()
        while os.path.exists(f"/proc/{pid}") and time.monotonic() - t0 < 30:
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{pid}")


