"""The server's ingest jobs in process: the chunk grid (property-based), the job store
against a plain model (hypothesis state machine), hostile requests to every route (4xx,
nothing stored), and a job record that survives reopening the store."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from starlette.testclient import TestClient

from dvidpy.config import Settings
from dvidpy.datatype import PyramidPlan
from dvidpy.errors import DvidError
from dvidpy.ingest.jobs import JobStore, chunk_box, chunk_grid, pyramid_task_box
from dvidpy.repo import RepoManager
from server import create_app

coord = st.integers(-300, 300)


@given(lo=st.tuples(coord, coord, coord), size=st.tuples(*[st.integers(1, 70)] * 3),
       chunk=st.tuples(*[st.integers(3, 64)] * 3))
@settings(max_examples=200, deadline=None)
def test_chunks_partition_the_box(lo: tuple[int, ...], size: tuple[int, ...],
                                  chunk: tuple[int, ...]) -> None:
    box = [*lo, *(a + s for a, s in zip(lo, size, strict=True))]
    origin, grid = chunk_grid(box, list(chunk))
    rec = {"box": box, "chunk": list(chunk), "origin": origin, "grid": grid}
    total = 0
    seen = set()
    for n in range(grid[0] * grid[1] * grid[2]):
        b = chunk_box(rec, n)
        for i in range(3):
            assert box[i] <= b[i] < b[i + 3] <= box[i + 3]  # inside, non-empty
            assert (b[i] - origin[i]) // chunk[i] == (b[i + 3] - 1 - origin[i]) // chunk[i]
        cell = tuple((b[i] - origin[i]) // chunk[i] for i in range(3))
        assert cell not in seen  # one chunk per grid cell
        seen.add(cell)
        total += (b[3] - b[0]) * (b[4] - b[1]) * (b[5] - b[2])
    assert total == size[0] * size[1] * size[2]  # disjoint cells covering the box


@given(lo=st.tuples(coord, coord, coord), size=st.tuples(*[st.integers(1, 300)] * 3),
       bs=st.tuples(*[st.integers(1, 16)] * 3), level=st.integers(1, 5),
       aniso=st.booleans(), per=st.tuples(*[st.integers(1, 4)] * 3))
@settings(max_examples=200, deadline=None)
def test_pyramid_tasks_partition_the_level_blocks_above_the_box(
        lo: tuple[int, ...], size: tuple[int, ...], bs: tuple[int, int, int], level: int,
        aniso: bool, per: tuple[int, ...]) -> None:
    factors = (2, 2, 1) if aniso else (2, 2, 2)
    plan = PyramidPlan(level, bs, factors)
    box = [*lo, *(a + s for a, s in zip(lo, size, strict=True))]
    blo, bhi = plan.block_range(box, level)
    for i in range(3):  # exactly the level's blocks holding a voxel above the box
        f = factors[i] ** level
        vlo, vhi = box[i] // f, -(-box[i + 3] // f) - 1  # level voxels, inclusive
        assert blo[i] * bs[i] <= vlo < (blo[i] + 1) * bs[i]
        assert bhi[i] * bs[i] <= vhi < (bhi[i] + 1) * bs[i]
    rec = {"lo": [list(blo)], "hi": [list(bhi)], "per": list(per)}
    ntasks = 1
    for i in range(3):
        ntasks *= -(-(bhi[i] - blo[i] + 1) // per[i])
    seen: set[tuple[int, int, int]] = set()
    for n in range(ntasks):
        a, b = pyramid_task_box(rec, 1, n)
        cells = {(x, y, z) for x in range(a[0], b[0] + 1) for y in range(a[1], b[1] + 1)
                 for z in range(a[2], b[2] + 1)}
        assert cells and not cells & seen  # non-empty, disjoint
        assert all(b[i] - a[i] < per[i] for i in range(3))
        seen |= cells
    assert len(seen) == math.prod(bhi[i] - blo[i] + 1 for i in range(3))  # covering


def _setup(mgr: RepoManager) -> tuple[str, Any]:
    repo = mgr.create_repo("t")
    _, node = mgr.resolve(repo.root)
    mgr.new_instance(repo, node, {"typename": "uint8blk", "dataname": "g",
                                  "blocksize": "8,8,8"})
    return repo.root, node


def job_body(root: str, **kw: Any) -> dict[str, Any]:
    return {"uuid": root, "instance": "g", "source": "test", "source_key": "k",
            "dtype": "uint8", "box": [0, 0, 0, 24, 16, 8], "chunk": [8, 8, 8], **kw}


class JobStoreMachine(RuleBasedStateMachine):
    """Acks, replacements, state requests and cancels against a dict model."""

    def __init__(self) -> None:
        super().__init__()
        self.mgr = RepoManager(Settings.memory())
        self.root, _ = _setup(self.mgr)
        self.js = JobStore(self.mgr)
        rec, resumed = self.js.open_job(job_body(self.root), None, lambda r, n: None)
        assert not resumed
        self.jid = rec["id"]
        self.total = rec["chunks_total"]
        self.acked: dict[int, int] = {}
        self.state = "PREPARING"
        self.tasks: dict[int, int] | None = None  # level -> pyramid tasks, once planned
        self.done: set[tuple[int, int]] = set()

    def _try(self, fn: Any) -> bool:
        try:
            fn()
        except DvidError:
            return False
        return True

    @rule(n=st.integers(0, 7), crc=st.integers(0, 3), replace=st.booleans())
    def ack(self, n: int, crc: int, replace: bool) -> None:
        ok = self._try(lambda: self.js.ack(self.jid, n, {"crc": crc, "bytes": 512,
                                                         "replace": replace}))
        in_range = n < self.total
        same = self.acked.get(n) == crc
        takes = self.state in ("PREPARING", "UPLOADING", "FAILED")
        expect = in_range and (same or (takes and (n not in self.acked or replace)))
        assert ok == expect, (n, crc, replace, self.state, self.acked)
        if ok:
            if self.acked.get(n) != crc:  # new voxels: the pyramid tasks are built again
                self.done.clear()
            self.acked[n] = crc

    @rule(state=st.sampled_from(["UPLOADING", "FAILED", "DOWNSAMPLING"]))
    def request(self, state: str) -> None:
        allowed = {"UPLOADING": ("PREPARING", "UPLOADING", "FAILED"),
                   "FAILED": ("PREPARING", "UPLOADING", "DOWNSAMPLING", "FAILED"),
                   "DOWNSAMPLING": ("PREPARING", "UPLOADING", "DOWNSAMPLING")}[state]
        ok = self._try(lambda: self.js.request_state(self.jid, {"state": state,
                                                                "error": "x"}))
        expect = self.state in allowed and (state != "DOWNSAMPLING" or len(
            self.acked) == self.total or self.state == "DOWNSAMPLING")
        assert ok == expect, (state, self.state)
        if ok:
            self.state = state
            if state == "DOWNSAMPLING" and self.tasks is None:
                # the plan of an 8^3-block uint8blk over 24x16x8 voxels: one level (the
                # extents are empty), level-1 blocks 0..1 x 0 x 0, a task per block
                self.tasks = {1: 2}

    @rule(level=st.integers(0, 2), n=st.integers(0, 2))
    def task(self, level: int, n: int) -> None:
        ok = self._try(lambda: self.js.run_task(self.jid, level, n))
        tasks = self.tasks or {}
        expect = self.state == "DOWNSAMPLING" and n < tasks.get(level, 0)
        assert ok == expect, (level, n, self.state, tasks)
        if ok:
            self.done.add((level, n))
            if len(self.done) == sum(tasks.values()):
                self.state = "COMPLETE"

    @precondition(lambda self: self.state not in ("COMPLETE", "CANCELLED"))
    @rule()
    def cancel(self) -> None:
        rec, _ = self.js.cancel(self.jid)
        assert rec is not None and rec["state"] == "CANCELLED"
        self.state = "CANCELLED"

    @invariant()
    def agrees(self) -> None:
        rec = self.js.view(self.js.get(self.jid))
        assert rec["state"] == self.state
        assert rec["chunks_done"] == len(self.acked)
        assert rec["bytes_done"] == 512 * len(self.acked)
        acks = self.js.acks(self.jid)
        assert dict(zip(acks["chunks"], acks["crc"], strict=True)) == self.acked
        fresh = JobStore(self.mgr)  # what another process (a restart) reads
        assert fresh.view(fresh.get(self.jid))["chunks_done"] == len(self.acked)
        pyr = self.js.pyramid_tasks(self.jid)
        assert {(k, n) for k, n in pyr["done"]} == self.done
        if self.tasks is not None:
            assert rec["pyramid_progress"]["tasks_done"] == len(self.done)


JobStoreMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25,
                                             deadline=None)
TestJobStore = JobStoreMachine.TestCase


@pytest.fixture
def http() -> Any:
    app = create_app(Settings.memory())
    with TestClient(app) as c:
        yield c


def test_hostile_requests_are_4xx_and_store_nothing(http: Any) -> None:
    root = http.post("/api/repos", json={}).json()["root"]
    for t, n in (("uint8blk", "g"), ("keyvalue", "kv"), ("labelmap", "seg")):
        extra = {"BlockSize": "8,8,8"} if t == "uint8blk" else {}
        assert http.post(f"/api/repo/{root}/instance", json={
            "typename": t, "dataname": n, **extra}).status_code == 200
    bad = [
        ([1, 2], "expects a JSON object"),
        ({**job_body(root), "uuid": ""}, "'uuid'"),
        ({k: v for k, v in job_body(root).items() if k != "box"}, "'box'"),
        (job_body(root, box=[0, 0, 0, 0, 8, 8]), "is empty"),
        (job_body(root, box=[0, 0, 0, 8, 8, 2**31]), "int32"),
        (job_body(root, box=[0, 0, 0, 8, 8, True, 1]), "'box'"),
        (job_body(root, chunk=[0, 8, 8]), "positive"),
        (job_body(root, chunk=[12, 8, 8]), "not a multiple of the block size"),
        (job_body(root, chunk=[8, 8, 8], box=[0, 0, 0, 2**20, 2**20, 2**10]), "over the limit"),
        (job_body(root, instance="nope"), "no data instance"),
        (job_body(root, instance="kv"), "has no POST raw"),
        (job_body(root, dtype="uint16"), "not 'uint16'"),
        (job_body(root, instance="seg"), "not 'uint8'"),
        (job_body(root, uuid="ffffffff"), ""),
        (job_body(root, pyramid="yes"), "true or false"),
        (job_body(root, source="x" * 3000), "longer than"),
    ]
    for body, msg in bad:
        r = http.post("/api/ingest", json=body)
        assert 400 <= r.status_code < 500 and msg in r.text, (body, r.status_code, r.text)
    assert http.get("/api/ingest").json() == []
    r = http.post("/api/ingest", json=job_body(root))
    assert r.status_code == 200, r.text
    job = r.json()
    jid, total = job["id"], job["chunks_total"]
    assert total == 6 and job["state"] == "PREPARING" and not job["resumed"]
    again = http.post("/api/ingest", json=job_body(root)).json()
    assert again["id"] == jid and again["resumed"]
    for n, body, msg in [
        (0, [1], "acknowledgement is"), (0, {"crc": -1, "bytes": 512}, "'crc'"),
        (0, {"crc": 2**32, "bytes": 512}, "'crc'"), (0, {"crc": 1, "bytes": 511}, "holds 512"),
        (0, {"crc": 1, "bytes": True}, "'bytes'"), (6, {"crc": 1, "bytes": 512}, "outside"),
        (0, {"crc": 1, "bytes": 512, "fp": "x" * 300}, "'fp'"),
    ]:
        r = http.post(f"/api/ingest/{jid}/chunks/{n}", json=body)
        assert r.status_code == 400 and msg in r.text, (n, body, r.text)
    assert http.post(f"/api/ingest/{jid}/chunks/-1", json={"crc": 1, "bytes": 512}
                     ).status_code == 400
    assert http.get(f"/api/ingest/{jid}").json()["chunks_done"] == 0
    assert http.post(f"/api/ingest/{jid}/chunks/0", json={"crc": 1, "bytes": 512}).is_success
    r = http.post(f"/api/ingest/{jid}/chunks/0", json={"crc": 2, "bytes": 512})
    assert r.status_code == 400 and "the source changed" in r.text
    for body, msg in [({"state": "COMPLETE"}, "can't be asked for"), ({}, "expected"),
                      ({"state": "FAILED"}, "needs an 'error'"),
                      ({"state": "DOWNSAMPLING"}, "1 of 6 chunks")]:
        r = http.post(f"/api/ingest/{jid}/state", json=body)
        assert r.status_code == 400 and msg in r.text, (body, r.text)
    # pyramid tasks before DOWNSAMPLING: refused, nothing recorded
    r = http.post(f"/api/ingest/{jid}/pyramid/1/0")
    assert r.status_code == 400 and "builds no pyramid now" in r.text, r.text
    assert http.get(f"/api/ingest/{jid}/pyramid").json() == {"levels": 0, "tasks": [],
                                                            "done": []}
    for n in range(1, 6):
        assert http.post(f"/api/ingest/{jid}/chunks/{n}", json={"crc": 1, "bytes": 512}
                         ).is_success
    # bad pyramid task shapes: 400 before anything is made (no level instance, no plan)
    for task, msg in [([12, 8, 8], "not a multiple of the block size"), ([0, 8, 8], "positive"),
                      ([8, 8], "'task'"), ([True, 8, 8], "'task'"), ("8,8,8", "'task'")]:
        r = http.post(f"/api/ingest/{jid}/state", json={"state": "DOWNSAMPLING", "task": task})
        assert r.status_code == 400 and msg in r.text, (task, r.text)
    assert "g_1" not in http.get(f"/api/repo/{root}/info").json()["DataInstances"]
    assert http.get(f"/api/ingest/{jid}").json()["state"] == "PREPARING"
    job = http.post(f"/api/ingest/{jid}/state", json={"state": "DOWNSAMPLING"}).json()
    assert job["state"] == "DOWNSAMPLING" and job["plan"]["tasks"] == [2], job
    assert "g_1" in http.get(f"/api/repo/{root}/info").json()["DataInstances"]
    for path, msg in [("0/0", "levels 1..1, not 0"), ("2/0", "levels 1..1, not 2"),
                      ("1/2", "tasks 0..1, not 2"), ("1/-1", ""), ("1/x", ""),
                      (f"1/{2**40}", "")]:
        r = http.post(f"/api/ingest/{jid}/pyramid/{path}")
        assert r.status_code == 400 and msg in r.text, (path, r.text)
    assert http.get(f"/api/ingest/{jid}/pyramid").json()["done"] == []
    r = http.post(f"/api/ingest/{jid}/chunks/0", json={"crc": 1, "bytes": 512})
    assert r.is_success and not r.json()["new"]  # the same ack again: harmless
    r = http.post(f"/api/ingest/{jid}/chunks/0", json={"crc": 5, "bytes": 512, "replace": True})
    assert r.status_code == 400 and "takes no more chunks" in r.text
    t = http.post(f"/api/ingest/{jid}/pyramid/1/1").json()
    assert t == {"level": 1, "task": 1, "blocks": 0, "new": True, "tasks_done": 1,
                 "tasks_total": 2}  # no voxels stored: no block written
    assert http.post(f"/api/ingest/{jid}/pyramid/1/1").json()["new"] is False
    assert http.get(f"/api/ingest/{jid}").json()["state"] == "DOWNSAMPLING"
    assert http.post(f"/api/ingest/{jid}/pyramid/1/0").is_success
    job = http.get(f"/api/ingest/{jid}").json()
    assert job["state"] == "COMPLETE" and job["pyramid_progress"]["tasks_done"] == 2
    r = http.post(f"/api/ingest/{jid}/pyramid/1/0")
    assert r.status_code == 400 and "COMPLETE" in r.text
    for path in (f"/api/ingest/{'0' * 16}", f"/api/ingest/{'0' * 16}/chunks",
                 f"/api/ingest/{'0' * 16}/pyramid"):
        assert http.get(path).status_code == 404
    assert http.post(f"/api/ingest/{'0' * 16}/pyramid/1/0").status_code == 404
    assert http.delete(f"/api/ingest/{'0' * 16}").status_code == 404
    # ids that this store cannot have made are refused before any key is built from them
    # (a 2000-character id is longer than an object store's longest object name)
    for bad_id in ("x" * 2000, "0" * 15, "0" * 17, "ABCDEF0123456789"):
        for r in (http.get(f"/api/ingest/{bad_id}"), http.delete(f"/api/ingest/{bad_id}"),
                  http.post(f"/api/ingest/{bad_id}/chunks/0", json={"crc": 1, "bytes": 1})):
            assert r.status_code == 404 and "16 hex digits" in r.text, (bad_id, r.text)
    # the locked version refuses a new job
    assert http.post(f"/api/node/{root}/commit", json={"note": "x"}).is_success
    r = http.post("/api/ingest", json=job_body(root, source_key="other"))
    assert r.status_code == 400 and "is locked" in r.text
