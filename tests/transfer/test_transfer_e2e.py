"""End-to-end transfers between real server processes on different engines."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from dvidpy.transfer.client import HttpSink, HttpSource, TransferError, run_transfer
from dvidpy.transfer.protocol import encode_record, end_frame, frame

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``dvidpy`` as a user would."""
    return subprocess.run([sys.executable, "-m", "dvidpy.cli", *args, "--no-progress"],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code == 200, r.text
    return r


def import_in_process(url: str, uuid: str, **kw: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Import the repo of ``uuid`` from ``url`` through DVID's public API into a fresh
    in-memory :class:`RepoManager`: ``(settings, mgr, source, transfer status)``. Raises
    what :func:`run_transfer` raises; on success checks that no non-public endpoint was
    requested."""
    from dvidpy.config import Settings
    from dvidpy.repo import RepoManager
    from dvidpy.transfer import LocalSink, Receiver
    from dvidpy.transfer.dvid_import import DvidApiSource

    settings = Settings.memory()
    mgr = RepoManager(settings)
    source = DvidApiSource(url, mgr)
    try:
        st = run_transfer(source, LocalSink(Receiver(mgr, settings)), uuid, **kw)
    except TransferError:
        assert uuid not in mgr.repos  # nothing half-imported is visible
        raise
    assert source.calls and not [p for p in source.calls if "/api/transfer" in p]
    return settings, mgr, source, st


def records_per_version(mgr: Any, uuid: str, name: str) -> Counter[tuple[str, int]]:
    """``(version UUID, TKey class)`` -> stored records of instance ``name`` on an
    in-process server."""
    from dvidpy.keys import SUFFIX_LEN, instance_prefix
    from storage.base import KeyRange

    repo, _ = mgr.resolve(uuid)
    inst = repo.instances[name]
    pre = instance_prefix(inst.meta.instance_id)
    by_vid = {n.version: n.uuid for n in repo.dag.nodes.values()}
    out: Counter[tuple[str, int]] = Counter()
    for k, _ in mgr.engines[inst.meta.store].scan(KeyRange.prefix(pre), keys_only=True):
        out[(by_vid[int.from_bytes(k[-SUFFIX_LEN:-1], "big")], k[len(pre)])] += 1
    return out


def has_roi(c: httpx.Client) -> bool:
    return "roi" in c.get("/api/server/compiled-types").json()


def build_repo(c: httpx.Client, big: int = 0) -> dict[str, str]:
    """root -> v1 -> v2(open), root -> side (branch); kv, unversioned cfg, roi if any."""
    root = ok(c.post("/api/repos", json={"alias": "src", "description": "d"})).json()["root"]
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"}))
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "cfg",
                                                  "versioned": "false"}))
    roi = has_roi(c)
    if roi:
        ok(c.post(f"/api/repo/{root}/instance", json={"typename": "roi", "dataname": "region"}))
        ok(c.post(f"/api/node/{root}/region/roi", json=[[0, 0, 0, 3], [1, 2, 5, 9]]))
    for i in range(20):
        ok(c.post(f"/api/node/{root}/kv/key/k{i:02d}", content=b"root-%d" % i + b"x" * big))
    ok(c.post(f"/api/node/{root}/cfg/key/setting", content=b"one"))
    ok(c.post(f"/api/node/{root}/commit", json={"note": "root done"}))
    v1 = ok(c.post(f"/api/node/{root}/newversion", json={"note": "v1"})).json()["child"]
    ok(c.post(f"/api/node/{v1}/kv/key/k01", content=b"v1-changed"))
    ok(c.delete(f"/api/node/{v1}/kv/key/k02"))
    ok(c.post(f"/api/node/{v1}/kv/key/new", content=b"v1-new"))
    if roi:
        ok(c.post(f"/api/node/{v1}/region/roi", json=[[4, 4, 4, 4]]))
    ok(c.post(f"/api/node/{v1}/commit", json={}))
    side = ok(c.post(f"/api/node/{root}/branch", json={"branch": "side"})).json()["child"]
    ok(c.post(f"/api/node/{side}/kv/key/k03", content=b"side-3"))
    ok(c.delete(f"/api/node/{side}/kv/key/k04"))
    ok(c.post(f"/api/node/{side}/commit", json={}))
    v2 = ok(c.post(f"/api/node/{v1}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v2}/kv/key/k05", content=b"v2-5"))
    ok(c.post(f"/api/node/{v2}/cfg/key/setting", content=b"two"))
    return {"root": root, "v1": v1, "side": side, "v2": v2}


def snapshot(c: httpx.Client, uuid: str) -> dict[str, Any]:
    """Everything readable at ``uuid``: keyvalue keys and values, roi spans."""
    info = ok(c.get(f"/api/repo/{uuid}/info")).json()
    out: dict[str, Any] = {}
    for name, d in info["DataInstances"].items():
        t = d["Base"]["TypeName"]
        if t == "keyvalue":
            keys = ok(c.get(f"/api/node/{uuid}/{name}/keys")).json()
            out[name] = {k: ok(c.get(f"/api/node/{uuid}/{name}/key/{k}")).content
                         for k in keys}
        elif t == "roi":
            out[name] = ok(c.get(f"/api/node/{uuid}/{name}/roi")).json()
    return out


def dag_shape(c: httpx.Client, uuid: str) -> dict[str, tuple[Any, ...]]:
    """Nodes by UUID: (parent UUIDs, branch, note); VersionIDs are local and ignored."""
    nodes = ok(c.get(f"/api/repo/{uuid}/info")).json()["DAG"]["Nodes"]
    by_vid = {n["VersionID"]: u for u, n in nodes.items()}
    return {u: (sorted(by_vid[p] for p in n["Parents"]), n["Branch"], n["Note"])
            for u, n in nodes.items()}


def assert_same(a: httpx.Client, b: httpx.Client, uuids: list[str]) -> None:
    for u in uuids:
        assert snapshot(a, u) == snapshot(b, u), u


def job(c: httpx.Client, kind: str, **body: Any) -> dict[str, Any]:
    """Start a server-side job and wait for it."""
    import time

    jid = ok(c.post(f"/api/transfer/{kind}", json=body)).json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = ok(c.get(f"/api/transfer/{jid}")).json()
        if st["state"] != "running":
            return st
        time.sleep(0.05)
    raise AssertionError("transfer job did not finish")


def test_full_push_incremental_leveldb_to_rocksdb(make_server) -> None:
    src, dst = make_server("leveldb"), make_server("rocksdb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b:
        v = build_repo(a)
        r = cli("push", src.url, v["v1"][:8], dst.url)
        assert r.returncode == 0, r.stderr
        assert "push done" in r.stdout
        assert dag_shape(a, v["root"]) == dag_shape(b, v["root"])
        assert all(n["Locked"] for n in
                   b.get(f"/api/repo/{v['root']}/info").json()["DAG"]["Nodes"].values())
        assert_same(a, b, list(v.values()))
        assert b.get(f"/api/node/{v['root'][:6]}:side/kv/key/k03").content == b"side-3"
        # unchanged repo: nothing moves
        st = job(a, "push", uuid=v["root"], dst=dst.url)
        assert st["state"] == "done" and st["bytes"] == 0, st
        # one new version: about that version's data moves
        ok(a.post(f"/api/node/{v['v2']}/commit", json={}))
        v3 = ok(a.post(f"/api/node/{v['v2']}/newversion", json={})).json()["child"]
        ok(a.post(f"/api/node/{v3}/kv/key/k07", content=b"z" * 50_000))
        st = job(a, "push", uuid=v3, dst=dst.url)
        assert st["state"] == "done", st
        assert 50_000 < st["bytes"] < 51_000 and st["versions"] == [v3]
        assert_same(a, b, [v["v2"], v3])
        assert dag_shape(a, v3) == dag_shape(b, v3)
        # a version received after the receiver has served reads: its data is visible from
        # a later version too (the receiver's read index learns the received versions)
        ok(a.post(f"/api/node/{v3}/commit", json={}))
        v4 = ok(a.post(f"/api/node/{v3}/newversion", json={})).json()["child"]
        ok(a.post(f"/api/node/{v4}/kv/key/other", content=b"v4"))
        st = job(a, "push", uuid=v4, dst=dst.url)
        assert st["state"] == "done", st
        assert b.get(f"/api/node/{v4}/kv/key/k07").content == b"z" * 50_000
        assert_same(a, b, [v3, v4])


def test_flatten_to_gcs_and_instance_filter(make_server, gcs_emulator, gcs_bucket) -> None:
    src = make_server("rocksdb")
    gcs = make_server("gcs", bucket=gcs_bucket, endpoint=gcs_emulator)
    lvl = make_server("leveldb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=gcs.url, timeout=60) as g, \
            httpx.Client(base_url=lvl.url, timeout=60) as c:
        v = build_repo(a)
        r = cli("push", src.url, v["v1"], gcs.url, "--flatten")
        assert r.returncode == 0, r.stderr
        repos = g.get("/api/repos/info").json()
        assert list(repos) == [v["v1"]]
        nodes = repos[v["v1"]]["DAG"]["Nodes"]
        assert list(nodes) == [v["v1"]] and nodes[v["v1"]]["Parents"] == []
        assert snapshot(g, v["v1"]) == snapshot(a, v["v1"])
        assert g.get(f"/api/node/{v['root']}/kv/keys").status_code == 400
        # flattened again: unchanged, nothing moves
        st = job(a, "push", uuid=v["v1"], dst=gcs.url, flatten=True)
        assert st["state"] == "done" and st["bytes"] == 0, st
        # instance filter, pulled by the receiver
        st = job(c, "pull", uuid=v["root"], src=src.url, data=["kv"])
        assert st["state"] == "done", st
        for u in v.values():
            assert list(ok(c.get(f"/api/repo/{u}/info")).json()["DataInstances"]) == ["kv"]
            assert snapshot(c, u)["kv"] == snapshot(a, u)["kv"]
        st = job(c, "pull", uuid=v["root"], src=src.url, data=["cfg"])
        assert st["state"] == "done" and st["records"] > 0, st
        assert_same(a, c, [v["root"], v["v2"]]) if not has_roi(a) else None
        for u in v.values():
            assert snapshot(c, u)["cfg"] == snapshot(a, u)["cfg"]


class Boom(Exception):
    pass


def test_resume_after_killed_sender_and_receiver(make_server) -> None:
    src = make_server("leveldb")
    dst = make_server("rocksdb", maxRequestBytes=300_000)
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b:
        v = build_repo(a, big=100_000)  # ~2 MB, ~300 kB chunks
        root = v["root"]
        seen = {"chunks": 0}

        def kill_src_after_3(st: dict[str, Any]) -> None:
            if st["bytes"]:
                seen["chunks"] += 1
            if seen["chunks"] == 3:
                src.proc.kill()

        with pytest.raises(TransferError):
            run_transfer(HttpSource(src.url), HttpSink(dst.url), root,
                         progress=kill_src_after_3)
        src.proc.wait()
        # nothing visible on the receiver, but progress is recorded
        assert b.get("/api/repos/info").json() == {}
        assert b.get(f"/api/node/{root}/kv/keys").status_code == 400
        pend = ok(b.get(f"/api/transfer/receive/{root}")).json()
        assert pend["records"] > 0 and pend["groups_done"] < pend["groups"]
        src.restart()
        total = run_transfer(HttpSource(src.url), HttpSink(dst.url), root)
        # resumed: the second run sends what was left plus at most one replayed chunk
        assert 0 < total["bytes"] < 2_000_000 - pend["bytes"] + 400_000
        assert_same(a, b, list(v.values()))
        assert dag_shape(a, root) == dag_shape(b, root)
        assert b.get(f"/api/transfer/receive/{root}").status_code == 404
        # now kill the receiver during an incremental push
        ok(a.post(f"/api/node/{v['v2']}/commit", json={}))
        v3 = ok(a.post(f"/api/node/{v['v2']}/newversion", json={})).json()["child"]
        for i in range(12):
            ok(a.post(f"/api/node/{v3}/kv/key/n{i}", content=bytes([i]) * 100_000))
        seen["chunks"] = 0

        def kill_dst_after_2(st: dict[str, Any]) -> None:
            if st["bytes"]:
                seen["chunks"] += 1
            if seen["chunks"] == 2:
                dst.proc.kill()

        with pytest.raises(TransferError):
            run_transfer(HttpSource(src.url), HttpSink(dst.url), v3,
                         progress=kill_dst_after_2)
        dst.proc.wait()
        dst.restart()
        assert b.get(f"/api/node/{v3}/kv/keys").status_code == 400
        assert v3 not in b.get(f"/api/repo/{root}/info").json()["DAG"]["Nodes"]
        again = run_transfer(HttpSource(src.url), HttpSink(dst.url), v3)
        assert again["bytes"] < 12 * 100_000  # resumed, not restarted
        assert_same(a, b, [v["v2"], v3])


def test_faults_conflict_corruption_limits(make_server) -> None:
    src = make_server("leveldb")
    dst = make_server("rocksdb", maxRequestBytes=1_000_000)
    small = make_server("leveldb", transfer_max=100_000)
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b, \
            httpx.Client(base_url=small.url, timeout=60) as s:
        v = build_repo(a, big=10_000)
        root = v["root"]
        # a different repo with the same root UUID on the receiver
        ok(b.post("/api/repos", json={"root": root}))
        ok(b.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                      "dataname": "other"}))
        before = b.get("/api/repos/info").json()
        r = cli("push", src.url, root, dst.url)
        assert r.returncode == 1 and "different repo" in r.stderr, r.stderr
        assert b.get("/api/repos/info").json() == before
        assert b.get(f"/api/transfer/receive/{root}").status_code == 404
        # over the receiver's transfer limit: clear error, nothing kept
        st = job(a, "push", uuid=root, dst=small.url)
        assert st["state"] == "failed" and "maxBytes" in st["error"], st
        assert s.get("/api/repos/info").json() == {}
        assert s.get(f"/api/transfer/receive/{root}").status_code == 404
        # corrupted chunk rejected, good chunk accepted, oversize chunk -> 413 + abort
        fresh = make_server("rocksdb", maxRequestBytes=1_000_000)
        sink = HttpSink(fresh.url)
        plan = sink.begin(HttpSource(src.url).manifest(root, data=["cfg"]))
        tid, gid = plan["transfer"], plan["groups"][0]["gid"]
        good = frame(encode_record(b"\xb1\x01setting\x00" + bytes(4) + b"\x03",
                                   b"\x00hello"), 1)
        bad = bytearray(good)
        bad[-1] ^= 0xFF
        with pytest.raises(TransferError) as ei:
            sink.put_chunk(tid, gid, bytes(bad))
        assert ei.value.status == 400 and "checksum" in ei.value.message
        badidx = frame(encode_record(b"\xb1\x01x\x00" + (9).to_bytes(4, "big") + b"\x03",
                                     b""), 1)
        with pytest.raises(TransferError):
            sink.put_chunk(tid, gid, badidx)
        sink.put_chunk(tid, gid, good)
        with pytest.raises(TransferError):
            sink.finish(tid)  # group not ended yet
        with pytest.raises(TransferError) as ei:
            sink.put_chunk(tid, gid, frame(encode_record(b"k", b"x" * 1_100_000), 1))
        assert ei.value.status == 413
        with httpx.Client(base_url=fresh.url) as f:
            assert f.get(f"/api/transfer/receive/{tid}").status_code == 404
            assert f.get("/api/repos/info").json() == {}
            # the same steps through to the end publish the repo
            plan = sink.begin(HttpSource(src.url).manifest(root, data=["cfg"]))
            tid = plan["transfer"]
            for g in plan["groups"]:
                sink.put_chunk(tid, g["gid"], good)
                sink.put_chunk(tid, g["gid"], end_frame(1))
            sink.finish(tid)
            assert f.get(f"/api/node/{root}/cfg/key/setting").content == b"hello"


def test_import_from_dvid_public_api(make_server) -> None:
    from starlette.testclient import TestClient

    from server import create_app

    src, dst = make_server("leveldb"), make_server("rocksdb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b:
        v = build_repo(a)
        # in-process receiver: check the importer only touched DVID's public API
        settings, mgr, _, st = import_in_process(src.url, v["root"])
        assert st["records"] > 0
        with TestClient(create_app(settings, mgr)) as m:
            for u in v.values():
                assert snapshot(m, u) == snapshot(a, u), u  # type: ignore[arg-type]
        # the CLI path, into a real RocksDB server
        r = cli("pull", src.url, v["root"], dst.url, "--from-dvid")
        assert r.returncode == 0, r.stderr
        assert_same(a, b, list(v.values()))
        assert dag_shape(a, v["root"]) == dag_shape(b, v["root"])
        r = cli("pull", src.url, v["root"], dst.url, "--from-dvid")
        assert r.returncode == 0 and " 0 records" in r.stdout, r.stdout
