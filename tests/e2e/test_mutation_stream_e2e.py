"""Server-Sent Events from a real server: a client following the stream sees records
written after it connected, with ``id:`` sequence numbers, and resumes with Last-Event-ID."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

pytestmark = pytest.mark.e2e


def read_events(server_url: str, n: int, headers: dict[str, str], out: list,
                ready: threading.Event) -> None:
    with httpx.stream("GET", server_url + "/api/mutations/stream", timeout=30,
                      headers={"Accept": "text/event-stream", **headers}) as r:
        assert r.headers["content-type"].startswith("text/event-stream"), (r.status_code,
                                                                           r.read())
        ev: dict[str, str] = {}
        for line in r.iter_lines():
            if line.startswith(": dvidpy"):
                ready.set()
            elif line == "":
                if ev:
                    out.append((int(ev["id"]), json.loads(ev["data"])))
                    ev = {}
                    if len(out) >= n:
                        return
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                ev[k] = v


def test_live_follow_and_resume(server, client: httpx.Client) -> None:
    root = client.post("/api/repos", json={}).json()["root"]
    client.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    client.post(f"/api/node/{root}/kv/key/before", content=b"x")
    got: list = []
    ready = threading.Event()
    t = threading.Thread(target=read_events, args=(server.url, 4, {}, got, ready))
    t.start()
    assert ready.wait(10)
    for i in range(3):
        assert client.post(f"/api/node/{root}/kv/key/live{i}", content=b"y").status_code == 200
    t.join(30)
    assert [i for i, _ in got] == [1, 2, 3, 4]
    assert [r["Key"] for _, r in got] == ["before", "live0", "live1", "live2"]
    again: list = []
    t = threading.Thread(target=read_events,
                         args=(server.url, 1, {"Last-Event-ID": "3"}, again, threading.Event()))
    t.start()
    t.join(30)
    assert again[0][0] == 4 and again[0][1]["Key"] == "live2"
