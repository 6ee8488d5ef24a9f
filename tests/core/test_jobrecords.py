"""Job records shared by the processes of a server (:mod:`dvidpy.jobrecords`).

Two boards with different owners over one real LMDB folder stand for two ``--workers``
processes (the e2e test runs real ones). Tried: reading another process's running,
finished and dead jobs; a cancel asked in the other process; two exclusive starts of one
id; a running record left by a stopped process on an exclusive and on a shared store;
pruning; malformed job ids never reach a key; and a hypothesis model of the board.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dvidpy import jobrecords
from dvidpy.jobrecords import JOB_ID, JobBoard, JobRunning, new_job_id
from storage import open_engine

LOST = {"State": "error", "Error": "the server process running it stopped"}


def _board(eng: Any, owner: str, shared: bool = True, keep: int = 1000) -> JobBoard:
    return JobBoard(eng, "demo", owner, shared, state_key="State", running="running",
                    lost=LOST, keep=keep)


@pytest.fixture
def eng(tmp_path: Path) -> Any:
    e = open_engine("lmdb", str(tmp_path / "db"))
    yield e
    e.close()


def test_another_process_sees_progress_and_end(eng: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(jobrecords, "FLUSH_EVERY", 0.0)
    a, b = _board(eng, "A"), _board(eng, "B")
    job = a.start("j1", {"Done": 0})
    assert b.get("j1") == {"State": "running", "Done": 0}
    job.update(Done=5)
    assert b.get("j1") == {"State": "running", "Done": 5}
    job.finish(State="done", Done=9)
    assert b.get("j1") == a.get("j1") == {"State": "done", "Done": 9}
    assert b.records() == [{"State": "done", "Done": 9}]
    assert b.get("nope") is None


def test_updates_are_throttled_but_the_owner_sees_them(eng: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(jobrecords, "FLUSH_EVERY", 60.0)  # no write-through in this test
    a, b = _board(eng, "A"), _board(eng, "B")
    job = a.start("j", {"n": 0})
    for i in range(1, 50):
        job.update(n=i)
    assert a.get("j")["n"] == 49  # the owner answers from memory
    assert b.get("j")["n"] == 0  # within FLUSH_EVERY: nothing written through yet
    job.flush()
    assert b.get("j")["n"] == 49


def test_cancel_from_another_process(eng: Any) -> None:
    a, b = _board(eng, "A"), _board(eng, "B")
    job = a.start("j", {})
    assert b.cancel("j") is True
    assert not job.cancelled.is_set()  # noticed at the owner's next write
    job.flush()
    assert job.cancelled.is_set()
    job.finish(State="cancelled")
    assert b.cancel("j") is False and a.cancel("j") is False  # not running any more
    assert b.cancel("missing") is False
    mine = a.start("k", {})
    assert a.cancel("k") and mine.cancelled.is_set()  # the owner's own cancel: at once


def test_exclusive_start_is_refused_while_live(eng: Any) -> None:
    a, b = _board(eng, "A"), _board(eng, "B")
    a.start("inst", {}, exclusive=True)
    with pytest.raises(JobRunning, match="busy"):
        b.start("inst", {}, exclusive=True, refuse=lambda rec: "busy")
    with pytest.raises(JobRunning):
        a.start("inst", {}, exclusive=True)
    b.start("other", {}, exclusive=True)  # another id is free


def test_two_exclusive_starts_at_once_one_wins(eng: Any) -> None:
    boards = [_board(eng, f"P{i}") for i in range(4)]
    won, lost = [], []
    barrier = threading.Barrier(len(boards))

    def go(bd: JobBoard) -> None:
        barrier.wait()
        try:
            bd.start("x", {}, exclusive=True)
            won.append(bd.owner)
        except JobRunning:
            lost.append(bd.owner)

    ts = [threading.Thread(target=go, args=(bd,)) for bd in boards]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(won) == 1 and len(lost) == 3


def test_a_stopped_process_job_is_lost(eng: Any, monkeypatch: Any) -> None:
    dead = _board(eng, "dead")
    dead.start("j", {"Level": 2})
    dead._live.clear()  # the process stopped: no finish, no heartbeat
    # exclusive store: only one process at a time, so a running record of another is dead
    assert _board(eng, "new", shared=False).get("j") == {"Level": 2, **LOST}
    # shared store: dead once the heartbeat is older than STALE_AFTER
    live_view = _board(eng, "other").get("j")
    assert live_view is not None and live_view["State"] == "running"
    monkeypatch.setattr(jobrecords, "STALE_AFTER", 0.0)
    time.sleep(0.01)
    other = _board(eng, "other")
    assert other.get("j") == {"Level": 2, **LOST}
    assert other.cancel("j") is False
    other.start("j", {}, exclusive=True)  # a dead job does not block a new one


def test_heartbeat_keeps_a_quiet_job_alive(eng: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(jobrecords, "BEAT_EVERY", 0.05)
    a = _board(eng, "A")
    job = a.start("j", {})
    first = float(_raw(eng, a, "j")["_beat"])
    deadline = time.monotonic() + 10
    while float(_raw(eng, a, "j")["_beat"]) <= first:  # beats with no update at all
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.02)
    job.finish(State="done")
    while a._beater is not None:  # the heartbeat thread ends with the last live job
        assert time.monotonic() < deadline, "the heartbeat thread kept running"
        time.sleep(0.02)


def test_prune_keeps_the_newest_finished(eng: Any) -> None:
    a = _board(eng, "A", keep=3)
    for i in range(6):
        a.start(f"j{i}", {"i": i}).finish(State="done")
    running = a.start("r", {"i": 99})
    assert [r["i"] for r in a.records()] == [3, 4, 5, 99]
    running.finish(State="done")


def test_job_ids() -> None:
    for _ in range(20):
        assert JOB_ID.fullmatch(new_job_id())
    for bad in ("", "../x", "0" * 15, "g" * 16, "0" * 17, "ABCDEF0123456789"):
        assert not JOB_ID.fullmatch(bad)


def _canon(rec: dict[str, Any]) -> str:
    import json

    return json.dumps(rec, sort_keys=True)


def _raw(eng: Any, board: JobBoard, jid: str) -> dict[str, Any]:
    import json

    return json.loads(eng.get(board.key(jid)))


class BoardModel(RuleBasedStateMachine):
    """Two processes' boards over one store against a plain dict of what each job shows."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        self.eng = open_engine("lmdb", self.tmp.name)
        self.boards = [_board(self.eng, "A"), _board(self.eng, "B")]
        self.model: dict[str, dict[str, Any]] = {}
        self.live: dict[str, Any] = {}
        self.cancel_asked: set[str] = set()

    def teardown(self) -> None:
        self.eng.close()
        self.tmp.cleanup()

    ids = st.sampled_from(["a", "b", "c"])

    @rule(who=st.integers(0, 1), jid=ids, exclusive=st.booleans())
    def start(self, who: int, jid: str, exclusive: bool) -> None:
        running = self.model.get(jid, {}).get("State") == "running"
        try:
            job = self.boards[who].start(jid, {"n": 0}, exclusive=exclusive)
        except JobRunning:
            assert exclusive and running
            return
        assert not (exclusive and running)
        old = self.live.pop(jid, None)
        if old is not None:  # replaced: the old job's process forgets it
            self.boards[0]._ended(old)
            self.boards[1]._ended(old)
        self.live[jid] = job
        self.model[jid] = {"State": "running", "n": 0}
        self.cancel_asked.discard(jid)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), n=st.integers(0, 100))
    def update(self, data: Any, n: int) -> None:
        jid = data.draw(st.sampled_from(sorted(self.live)))
        self.live[jid].update(n=n)
        self.live[jid].flush()
        self.model[jid]["n"] = n

    @precondition(lambda self: self.live)
    @rule(data=st.data(), state=st.sampled_from(["done", "error", "cancelled"]))
    def finish(self, data: Any, state: str) -> None:
        jid = data.draw(st.sampled_from(sorted(self.live)))
        job = self.live.pop(jid)
        assert job.cancelled.is_set() == (jid in self.cancel_asked)
        job.finish(State=state)
        self.model[jid]["State"] = state

    @rule(who=st.integers(0, 1), jid=ids)
    def cancel(self, who: int, jid: str) -> None:
        running = self.model.get(jid, {}).get("State") == "running"
        assert self.boards[who].cancel(jid) == running
        if running:
            self.cancel_asked.add(jid)
            self.live[jid].flush()

    @invariant()
    def both_processes_agree_with_the_model(self) -> None:
        for b in self.boards:
            for jid in ("a", "b", "c"):
                assert b.get(jid) == self.model.get(jid), (b.owner, jid)
            assert sorted(map(_canon, b.records())) == sorted(map(_canon, self.model.values()))


TestBoardModel = BoardModel.TestCase
TestBoardModel.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])
