"""The mutation stream against real sinks: a ``redis-server`` killed and restarted while
1,000 mutations are written, an HTTP webhook that fails before it accepts, records that
wait in the store across a server restart, Server-Sent Events replay, and the
``[mutations]`` configuration's bad values."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from dvidpy.config import ConfigError, MutationSettings, Settings
from server import create_app


def wait_until(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def make_repo(c: TestClient) -> str:
    root = c.post("/api/repos", json={}).json()["root"]
    assert c.post(f"/api/repo/{root}/instance",
                  json={"typename": "keyvalue", "dataname": "kv"}).status_code == 200
    return root


def leveldb_settings(path: Path, **mut: str) -> Settings:
    s = Settings.from_dict({"store": {"main": {"engine": "leveldb", "path": str(path)}},
                            "mutations": mut})
    return s


def test_redis_sink_killed_midway_gets_every_record_once_in_order(redis_proc,
                                                                  tmp_path: Path) -> None:
    s = leveldb_settings(tmp_path / "db", redis=redis_proc.url, stream="muts")
    n = 1000
    with TestClient(create_app(s)) as c:
        root = make_repo(c)
        for i in range(n):
            if i == 300:
                redis_proc.kill()
            if i == 700:
                redis_proc.start()
            r = c.post(f"/api/node/{root}/kv/key/k{i:04d}", content=b"v%d" % i)
            assert r.status_code == 200, (i, r.text)  # no write waits for or fails on Redis
        rc = redis.Redis.from_url(redis_proc.url)
        wait_until(lambda: rc.xlen("muts") >= n)
        entries = rc.xrange("muts")
        assert len(entries) == n
        assert [e[0] for e in entries] == [f"{i}-1".encode() for i in range(1, n + 1)]
        recs = [json.loads(e[1][b"record"]) for e in entries]
        assert [r["Sequence"] for r in recs] == list(range(1, n + 1))
        assert [r["Key"] for r in recs] == [f"k{i:04d}" for i in range(n)]
        assert {r["Action"] for r in recs} == {"postkv"}
        assert {r["DataName"] for r in recs} == {"kv"} and recs[0]["Repo"] == root
        mids = [r["MutationID"] for r in recs]
        assert mids == sorted(mids) and len(set(mids)) == n
        rc.close()


class Hook(BaseHTTPRequestHandler):
    fail = 3
    got: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Hook.fail > 0:
            Hook.fail -= 1
            self.send_response(500)
            self.end_headers()
            return
        Hook.got.extend(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.fail, Hook.got = 3, []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


def test_webhook_retries_until_accepted(webhook: str, tmp_path: Path) -> None:
    s = leveldb_settings(tmp_path / "db", webhook=webhook)
    with TestClient(create_app(s)) as c:
        root = make_repo(c)
        for i in range(20):
            assert c.post(f"/api/node/{root}/kv/key/k{i}", content=b"x").status_code == 200
        assert c.delete(f"/api/node/{root}/kv/key/k3").status_code == 200
        wait_until(lambda: len({r["Sequence"] for r in Hook.got}) >= 21)
        seqs = [r["Sequence"] for r in Hook.got]
        assert seqs == list(range(1, 22))  # in order, the failed posts retried
        assert Hook.got[-1]["Action"] == "delete" and Hook.fail == 0


def test_records_wait_in_the_store_across_a_restart(redis_proc, tmp_path: Path) -> None:
    redis_proc.kill()
    s = leveldb_settings(tmp_path / "db", redis=redis_proc.url)
    with TestClient(create_app(s)) as c:
        root = make_repo(c)
        for i in range(5):
            assert c.post(f"/api/node/{root}/kv/key/a{i}", content=b"x").status_code == 200
    redis_proc.start()
    rc = redis.Redis.from_url(redis_proc.url)
    assert rc.xlen("dvidpy-mutations") == 0
    with TestClient(create_app(s)) as c:  # the same store: the log and cursor persisted
        assert c.post(f"/api/node/{root}/kv/key/b", content=b"x").status_code == 200
        wait_until(lambda: rc.xlen("dvidpy-mutations") >= 6)
        keys = [json.loads(e[1][b"record"])["Key"] for e in rc.xrange("dvidpy-mutations")]
        assert keys == ["a0", "a1", "a2", "a3", "a4", "b"]
    rc.close()


def test_drains_at_once_log_each_outbox_entry_once(tmp_path: Path) -> None:
    """The drainer thread and a server's last drain at shutdown may run at once: each
    outbox entry must still be logged once (the CI once logged three of five twice, with
    new sequence numbers, when a restart's last drain overlapped the drainer's)."""
    from dvidpy.mutations import OUTBOX

    with TestClient(create_app(leveldb_settings(tmp_path / "db"))) as c:
        hub = c.app.state.manager.mutations  # type: ignore[attr-defined]
        for rnd in range(3):
            wb = hub.meta.batch()
            for i in range(300):
                wb.put(OUTBOX + (rnd * 1000 + i).to_bytes(12, "big"),
                       json.dumps({"Key": f"r{rnd}-{i}"}).encode())
            wb.commit()
            start = threading.Barrier(4)

            def drain(start: threading.Barrier = start) -> None:
                start.wait()
                hub.drain_once()

            ts = [threading.Thread(target=drain) for _ in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            keys = [r["Key"] for r in hub.iter_after(rnd * 300)]
            assert keys == [f"r{rnd}-{i}" for i in range(300)], (rnd, len(keys))
            assert hub.last_seq == (rnd + 1) * 300


def test_sse_replay_and_resume() -> None:
    with TestClient(create_app(Settings.memory())) as c:
        root = make_repo(c)
        c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv2"})
        for i in range(6):
            c.post(f"/api/node/{root}/{'kv' if i % 2 else 'kv2'}/key/k{i}", content=b"x")
        mgr = c.app.state.manager  # type: ignore[attr-defined]
        wait_until(lambda: mgr.mutations.last_seq >= 6)

        def events(url: str, **headers: str) -> list[tuple[int, dict]]:
            text = c.get(url, headers=headers).text
            out = []
            for block in text.split("\n\n"):
                lines = dict(ln.split(": ", 1) for ln in block.splitlines()
                             if not ln.startswith(":"))
                if lines:
                    assert lines["event"] == "mutation"
                    out.append((int(lines["id"]), json.loads(lines["data"])))
            return out

        got = events("/api/mutations/stream?follow=false")
        assert [i for i, _ in got] == [1, 2, 3, 4, 5, 6]
        assert all(i == r["Sequence"] for i, r in got)
        got = events("/api/mutations/stream?follow=false", **{"Last-Event-ID": "4"})
        assert [i for i, _ in got] == [5, 6]
        got = events(f"/api/node/{root}/kv/mutations/stream?follow=false")
        assert [r["Key"] for _, r in got] == ["k1", "k3", "k5"]
        got = events(f"/api/node/{root}/kv/mutations/stream?follow=false&last_event_id=4")
        assert [r["Key"] for _, r in got] == ["k5"]
        r = c.get("/api/mutations/stream?follow=false", headers={"Last-Event-ID": "x"})
        assert r.status_code == 400
        assert c.get(f"/api/node/{root}/nope/mutations/stream").status_code == 400
        # the instance's own GET mutations is untouched by the stream route
        assert len(c.get(f"/api/node/{root}/kv/mutations").json()) == 3


@pytest.mark.parametrize(("table", "word"), [
    ({"redis": "http://x"}, "redis"), ({"webhook": "ftp://x"}, "webhook"),
    ({"retain": 0}, "retain"), ({"stream": ""}, "stream"), ({"redis": 5}, "string"),
])
def test_bad_mutation_settings(table: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        MutationSettings.from_tables(table, {})
    s = MutationSettings.from_tables({"jsonstore": "/x", "redis": "redis://h:1/0"},
                                     {"servers": ["k:9092"]})
    assert s.dvid == {"jsonstore": "/x", "kafka": {"servers": ["k:9092"]}}
