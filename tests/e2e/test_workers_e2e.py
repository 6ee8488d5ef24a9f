"""``dvidpy serve`` with its default: one process per core over the LMDB data folder.

Real servers on loopback; each request that must reach a particular worker goes on a
fresh connection (the kernel spreads connections over the workers' ``SO_REUSEPORT``
sockets) and ``/api/server/info`` says which process answered. Tried: a downres started
in one worker, watched and re-started from the others; a pull job started in one worker,
watched from every worker; a push whose every request opens a new connection (so the
receive protocol's begin, chunks and finish land on different workers); a second server
on a port the workers hold (refused, not joined); the supervisor SIGKILLed (no worker
outlives it); a live mutation stream on one worker while another takes the writes; a Boss
channel made through one worker and read at once through another.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from servers import ServerProcess, alive, children

from dvidpy.transfer.client import HttpSink, HttpSource, run_transfer

CORES = min(8, len(os.sched_getaffinity(0)))
pytestmark = pytest.mark.skipif(CORES < 2, reason="one core: the default is one process")


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r


def each_worker(url: str, n: int, fn: Callable[[httpx.Client, int], Any]) -> dict[int, Any]:
    """``fn(client, pid)`` once on a connection to each of the ``n`` workers."""
    seen: dict[int, Any] = {}
    for _ in range(400):
        with httpx.Client(base_url=url, timeout=60) as c:
            pid = int(_ok(c.get("/api/server/info")).json()["Server process"])
            if pid not in seen:
                seen[pid] = fn(c, pid)
        if len(seen) == n:
            return seen
    raise AssertionError(f"only workers {sorted(seen)} answered 400 fresh connections")


@pytest.fixture
def workers(tmp_path: Path) -> Any:
    srv = ServerProcess(["--data", str(tmp_path / "db"), "--quiet"], tmp_path / "w.log",
                        workers=None)
    yield srv
    srv.stop()


def test_default_is_one_process_per_core(workers: ServerProcess, tmp_path: Path) -> None:
    assert workers.proc is not None
    kids = children(workers.proc.pid)
    assert len(kids) == CORES
    assert sorted(each_worker(workers.url, CORES, lambda c, pid: pid)) == sorted(kids)
    # a second server on the port the workers hold is refused, not let in beside them
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dvidpy.cli", "serve", "--port",
                        str(workers.port), "--data", str(tmp_path / "other")],
                       capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{workers.port}" in r.stderr, \
        r.stdout + r.stderr
    assert not (tmp_path / "other").exists()
    # SIGKILL of the supervisor takes its workers with it
    workers.proc.send_signal(signal.SIGKILL)
    workers.proc.wait()
    t0 = time.monotonic()
    while any(alive(k) for k in kids):
        assert time.monotonic() - t0 < 20, "a worker outlived its supervisor"
        time.sleep(0.05)
    workers.logf.close()
    workers.start()  # the folder and the port are free again at once
    assert len(children(workers.proc.pid)) == CORES


def until_done(url: str, path: str, key: str, done: str = "done") -> dict[int, Any]:
    """Poll ``path`` on every worker until each says ``key`` = ``done`` (within 120 s;
    meanwhile each must say running or done); the last answers, by worker."""
    t0 = time.monotonic()
    while True:
        seen = each_worker(url, CORES, lambda c, pid: _ok(c.get(path)).json())
        if all(s[key] == done for s in seen.values()):
            return seen
        assert {s[key] for s in seen.values()} <= {"running", done}, seen
        assert time.monotonic() - t0 < 120, seen
        time.sleep(0.2)


def _repo_with_volume(c: httpx.Client, shape: tuple[int, int, int]) -> tuple[str, np.ndarray]:
    root = _ok(c.post("/api/repos", json={"alias": "w"})).json()["root"]
    _ok(c.post(f"/api/repo/{root}/instance", json={"typename": "uint8blk", "dataname": "g"}))
    _ok(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"}))
    vol = np.random.default_rng(7).integers(0, 256, shape[::-1], dtype=np.uint8)
    sx, sy, sz = shape
    _ok(c.post(f"/api/node/{root}/g/raw/0_1_2/{sx}_{sy}_{sz}/0_0_0", content=vol.tobytes()))
    for i in range(20):
        _ok(c.post(f"/api/node/{root}/kv/key/k{i:02d}", content=b"v%d" % i))
    return root, vol


def test_downres_job_is_the_same_from_every_worker(workers: ServerProcess) -> None:
    with httpx.Client(base_url=workers.url, timeout=120) as c:
        root, vol = _repo_with_volume(c, (256, 256, 128))
        st = _ok(c.post(f"/api/node/{root}/g/downres?levels=2")).json()
        assert st["State"] == "running"

        def refused_or_done(c2: httpx.Client, pid: int) -> Any:
            r = c2.post(f"/api/node/{root}/g/downres?levels=2")
            # while the job runs, any worker refuses a second one; after, it may start
            return r.status_code, r.text

        first = each_worker(workers.url, CORES, refused_or_done)
        for code, text in first.values():
            assert code == 202 or (code == 400 and "already running" in text), (code, text)
        states = until_done(workers.url, f"/api/node/{root}/g/downres-status", "State")
        starts = {s["Started"] for s in states.values()}
        assert len(starts) == 1  # the same (last) job, whichever worker answers
        # (a second downres started above, after the first, found no dirty blocks)
        assert all(s["Levels"] == 2 and s["BlocksDone"] == s["BlocksTotal"]
                   and s["UUID"] == root for s in states.values()), states
        want = vol.reshape(64, 2, 128, 2, 128, 2).mean(axis=(1, 3, 5))
        got = np.frombuffer(_ok(c.get(f"/api/node/{root}/g_1/raw/0_1_2/128_128_64/0_0_0"))
                            .content, np.uint8).reshape(64, 128, 128)
        assert np.abs(got.astype(int) - np.floor(want + 0.5).astype(int)).max() == 0


def test_pull_job_and_push_spread_over_workers(workers: ServerProcess, tmp_path: Path) -> None:
    src = ServerProcess(["--data", str(tmp_path / "src"), "--quiet"], tmp_path / "src.log")
    try:
        with httpx.Client(base_url=src.url, timeout=120) as s:
            root, vol = _repo_with_volume(s, (128, 128, 64))
            _ok(s.post(f"/api/node/{root}/commit", json={"note": "v1"}))
            child = _ok(s.post(f"/api/node/{root}/newversion", json={})).json()["child"]
            _ok(s.post(f"/api/node/{child}/kv/key/new", content=b"child"))
        # a pull job started in one worker, watched from every worker
        with httpx.Client(base_url=workers.url, timeout=120) as c:
            jid = _ok(c.post("/api/transfer/pull", json={"uuid": root, "src": src.url,
                                                         "data": ["kv"]})).json()["id"]
        seen = until_done(workers.url, f"/api/transfer/{jid}", "state")
        assert len({(j["records"], j["bytes"]) for j in seen.values()}) == 1
        listed = each_worker(workers.url, CORES, lambda c2, pid: [
            j["id"] for j in _ok(c2.get("/api/transfer/jobs")).json()])
        assert all(ids == [jid] for ids in listed.values())

        # a push whose every request takes a new connection: begin, chunks and finish
        # reach different workers; then every worker serves what arrived
        class FreshSink:
            def __getattr__(self, name: str) -> Any:
                return getattr(HttpSink(workers.url), name)

        out = run_transfer(HttpSource(src.url), FreshSink(), child)
        assert out["records"] > 0

        def check(c2: httpx.Client, pid: int) -> None:
            assert _ok(c2.get(f"/api/node/{child}/kv/key/new")).content == b"child"
            assert _ok(c2.get(f"/api/node/{root}/kv/key/k03")).content == b"v3"
            got = _ok(c2.get(f"/api/node/{child}/g/raw/0_1_2/128_128_64/0_0_0")).content
            assert got == vol.tobytes()

        each_worker(workers.url, CORES, check)
    finally:
        src.stop()


def test_live_mutation_stream_sees_every_workers_writes(workers: ServerProcess) -> None:
    import threading

    with httpx.Client(base_url=workers.url, timeout=60) as c:
        root = _ok(c.post("/api/repos", json={})).json()["root"]
        _ok(c.post(f"/api/repo/{root}/instance",
                   json={"typename": "keyvalue", "dataname": "kv"}))
    got: list[str] = []
    ready = threading.Event()
    follower: dict[str, int] = {}

    def follow() -> None:
        with httpx.Client(base_url=workers.url, timeout=60) as c2:
            follower["pid"] = int(_ok(c2.get("/api/server/info")).json()["Server process"])
            with c2.stream("GET", "/api/mutations/stream",
                           headers={"Accept": "text/event-stream"}) as r:
                for line in r.iter_lines():
                    if line.startswith(": dvidpy"):
                        ready.set()
                    if line.startswith("data: ") and '"key"' in line.lower():
                        got.append(line)
                        if len(got) == 6:
                            return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    assert ready.wait(30)
    others = 0
    t0 = time.monotonic()
    for i in range(40):  # writes through fresh connections, some on the other worker
        with httpx.Client(base_url=workers.url, timeout=60) as c3:
            pid = int(_ok(c3.get("/api/server/info")).json()["Server process"])
            if pid == follower["pid"]:
                continue
            _ok(c3.post(f"/api/node/{root}/kv/key/w{i}", content=b"x"))
            others += 1
            if others == 6:
                break
    assert others == 6
    t.join(10)  # the follower's worker learns of them within its poll (0.2 s), not 15 s
    assert len(got) == 6, (got, time.monotonic() - t0)


def _client_on(url: str, pid: int | None, other: bool) -> tuple[httpx.Client, int]:
    """A client connected to worker ``pid`` (``other``: to any other worker)."""
    for _ in range(400):
        c = httpx.Client(base_url=url, timeout=60)
        got = int(_ok(c.get("/api/server/info")).json()["Server process"])
        if pid is None or (got != pid) == other:
            return c, got
        c.close()
    raise AssertionError("no such worker answered 400 fresh connections")


def test_boss_channel_made_in_one_worker_is_read_at_once_in_another(
        workers: ServerProcess) -> None:
    a, pid = _client_on(workers.url, None, False)
    _ok(a.post("/v1/collection/lab/", json={"description": "d"}))
    _ok(a.post("/v1/coord/frame/", json={
        "x_start": 0, "x_stop": 64, "y_start": 0, "y_stop": 64, "z_start": 0, "z_stop": 64,
        "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 40, "voxel_unit": "nanometers"}))
    repo = _ok(a.post("/v1/collection/lab/experiment/em/",
                      json={"coord_frame": "frame"})).json()["dvid_repo"]
    for i in range(5):  # each channel read through the other worker right after it is made
        _ok(a.post(f"/v1/collection/lab/experiment/em/channel/c{i}/",
                   json={"type": "image", "datatype": "uint8"}))
        vol = np.full((32, 32, 32), i + 1, np.uint8)
        _ok(a.post(f"/api/node/{repo}/c{i}/raw/0_1_2/32_32_32/0_0_0", content=vol.tobytes()))
        b, _ = _client_on(workers.url, pid, True)
        try:
            r = _ok(b.get(f"/v1/cutout/lab/em/c{i}/0/0:32/0:32/0:32/",
                          headers={"Accept": "application/npygz"}))
            import io
            import zlib

            got = np.load(io.BytesIO(zlib.decompress(r.content)))
            assert got.shape == (32, 32, 32) and (got == i + 1).all()
        finally:
            b.close()
    a.close()


def test_roi_made_in_one_worker_filters_reads_at_once_in_another(
        workers: ServerProcess) -> None:
    """An ROI named in a query (``GET raw?roi=``) that another worker has just made is
    found (looked up again after a refresh), not refused as unknown."""
    a, pid = _client_on(workers.url, None, False)
    root = _ok(a.post("/api/repos", json={})).json()["root"]
    _ok(a.post(f"/api/repo/{root}/instance", json={"typename": "uint8blk", "dataname": "g"}))
    vol = np.arange(64 ** 3, dtype=np.uint32).astype(np.uint8).reshape(64, 64, 64) | 1
    _ok(a.post(f"/api/node/{root}/g/raw/0_1_2/64_64_64/0_0_0", content=vol.tobytes()))
    try:
        for i in range(5):
            _ok(a.post(f"/api/repo/{root}/instance",
                       json={"typename": "roi", "dataname": f"r{i}"}))
            _ok(a.post(f"/api/node/{root}/r{i}/roi", json=[[0, 0, 0, 0]]))  # block 0,0,0
            b, _ = _client_on(workers.url, pid, True)
            try:
                r = _ok(b.get(f"/api/node/{root}/g/raw/0_1_2/64_64_64/0_0_0",
                              params={"roi": f"r{i}"}))
                got = np.frombuffer(r.content, np.uint8).reshape(64, 64, 64)
                assert np.array_equal(got[:32, :32, :32], vol[:32, :32, :32])
                assert not got[32:].any() and not got[:, 32:].any() and not got[..., 32:].any()
            finally:
                b.close()
    finally:
        a.close()


def test_branch_head_and_lock_made_in_one_worker_hold_at_once_in_another(
        workers: ServerProcess) -> None:
    """A version made or committed through one worker is what the next request through
    the other worker sees at once, without waiting for its metadata poll: ``PREFIX:master``
    names the new HEAD (the README walk-through once read the old one), the version's
    status says it is locked, and a write to the
    version just committed is refused as locked (bad inputs tried: POST to a committed
    version of keyvalue, POST raw of uint8blk and a node log line, each through the worker
    that did not commit it)."""
    a, pid = _client_on(workers.url, None, False)
    b, _ = _client_on(workers.url, pid, True)
    try:
        root = _ok(a.post("/api/repos", json={})).json()["root"]
        _ok(a.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"}))
        _ok(a.post(f"/api/repo/{root}/instance", json={"typename": "uint8blk", "dataname": "g"}))
        _ok(b.get(f"/api/node/{root}/kv/keys"))  # b knows the repo before the changes below
        node = root
        for i in range(6):
            _ok(a.post(f"/api/node/{node}/kv/key/k", content=f"v{i}".encode()))
            _ok(a.post(f"/api/node/{node}/commit", json={"note": str(i)}))
            assert _ok(b.get(f"/api/node/{node}/status")).json() == {"Locked": True}
            r = b.post(f"/api/node/{node}/log", json={"log": ["late"]})
            assert r.status_code == 400 and "locked" in r.text, (i, r.status_code, r.text)
            r = b.post(f"/api/node/{node}/kv/key/k", content=b"late")
            assert r.status_code == 400 and "locked" in r.text, (i, r.status_code, r.text)
            r = b.post(f"/api/node/{node}/g/raw/0_1_2/32_32_32/0_0_0", content=bytes(32 ** 3))
            assert r.status_code == 400 and "locked" in r.text, (i, r.status_code, r.text)
            node = _ok(a.post(f"/api/node/{node}/newversion", json={})).json()["child"]
            _ok(a.post(f"/api/node/{node}/kv/key/k", content=f"head{i}".encode()))
            got = _ok(b.get(f"/api/node/{root[:8]}:master/kv/key/k")).content
            assert got == f"head{i}".encode(), (i, got)
            assert _ok(b.get(f"/api/node/{node}/kv/key/k")).content == f"head{i}".encode()
            got = _ok(b.get(f"/api/node/{root[:8]}:master~1/kv/key/k")).content
            assert got == f"v{i}".encode(), (i, got)
    finally:
        a.close()
        b.close()


def test_big_writes_sharing_blocks_through_two_workers_lose_nothing(tmp_path: Path) -> None:
    """Two workers write at the same time, slab after slab, boxes that share every edge
    block with the other's (x 0..39 and 40..79 with 32³ blocks: block x=1 holds both),
    each write committed in several batches (``writeBatchBytes`` = 64 KiB, so a commit
    thread commits while the writer encodes, under the instance lock the writer holds
    across both workers). Every slab of both is then read whole through both workers: a
    lost read-modify-write of a shared block would show zeros where the other wrote."""
    import threading

    toml = tmp_path / "dvid.toml"
    toml.write_text(f'[server]\nwriteBatchBytes = 65536\n[store.main]\nengine = "lmdb"\n'
                    f'path = "{tmp_path / "db"}"\nshared = true\n')
    srv = ServerProcess(["--config", str(toml), "--quiet"], tmp_path / "w.log", workers=2)
    a, pid = _client_on(srv.url, None, False)
    b, _ = _client_on(srv.url, pid, True)
    slabs, nz = 24, 32
    try:
        root = _ok(a.post("/api/repos", json={})).json()["root"]
        _ok(a.post(f"/api/repo/{root}/instance",
                   json={"typename": "uint8blk", "dataname": "g", "BlockSize": "32,32,32"}))
        _ok(b.get(f"/api/node/{root}/g/info"))
        want = np.zeros((slabs * nz, 96, 80), np.uint8)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def writer(c: httpx.Client, x0: int, seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                start.wait()
                for k in range(slabs):  # 40 x 96 x 32 voxels: 6 blocks, 3 batches
                    vol = rng.integers(1, 256, (nz, 96, 40), dtype=np.uint8)
                    want[k * nz:(k + 1) * nz, :, x0:x0 + 40] = vol
                    _ok(c.post(f"/api/node/{root}/g/raw/0_1_2/40_96_{nz}/{x0}_0_{k * nz}",
                               content=vol.tobytes()))
            except BaseException as e:  # reported below
                errors.append(e)

        ts = [threading.Thread(target=writer, args=(a, 0, 1)),
              threading.Thread(target=writer, args=(b, 40, 2))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        for c in (a, b):
            got = np.frombuffer(_ok(c.get(f"/api/node/{root}/g/raw/0_1_2/80_96_{slabs * nz}/"
                                          "0_0_0")).content, np.uint8).reshape(want.shape)
            lost = np.argwhere((got != want).any(axis=(1, 2)))
            assert not len(lost), f"voxels lost in z planes {lost.ravel().tolist()[:10]}"
    finally:
        a.close()
        b.close()
        srv.stop()
