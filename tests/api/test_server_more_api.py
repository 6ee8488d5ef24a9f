"""Server endpoints: DVID-form version, load counters, user latencies, config TOML,
storage summary, server-level blobstore."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from starlette.testclient import TestClient

from dvidpy import __version__
from dvidpy.config import Settings
from server import create_app

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_version_in_dvid_form(c: TestClient) -> None:
    info = c.get("/api/server/info").json()
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-\d+-g[0-9a-f]+)?", info["DVID Version"])
    assert info["dvidpy Version"] == __version__
    assert all(isinstance(v, str) for v in info.values())


def test_load_counts_requests_bytes_and_handlers(c: TestClient) -> None:
    before = c.get("/api/load").json()
    root = c.post("/api/repos", json={}).json()["root"]
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    for i in range(10):
        c.post(f"/api/node/{root}/kv/key/k{i}", content=b"x" * 1000)
    for _ in range(20):
        c.get(f"/api/node/{root}/kv/key/k1")
    load = c.get("/api/load").json()
    assert load["PUT requests"] >= 12 // 5 and load["GET requests"] >= 20 // 5
    assert load["value bytes written"] >= 10_000 // 5
    assert load["value bytes read"] >= 20_000 // 5
    assert load["total requests"] - before["total requests"] >= 32
    assert load["total bytes in"] - before["total bytes in"] >= 10_000
    assert load["requests active"] == 1 and 0 < load["handlers active"] <= 100
    assert load["goroutines"] >= 1 and load["interval seconds"] == 5


def test_user_latencies(c: TestClient) -> None:
    assert c.get("/api/user-latencies").json() == {}
    for _ in range(3):
        assert c.get("/api/heartbeat?u=alice").text == "OK"
    c.get("/api/heartbeat?u=bob")
    c.get("/api/heartbeat")
    lat = c.get("/api/user-latencies").json()
    assert set(lat) == {"alice", "bob"}
    a = c.get("/api/user-latencies?u=alice").json()
    assert a["User"] == "alice" and 0 <= a["MinLatency"] <= a["LastLatency"] <= a["MaxLatency"]
    assert "T" in a["LastPing"]
    assert c.get("/api/user-latencies?u=nobody").json() is None


def test_server_config(c: TestClient, tmp_path: Path) -> None:
    toml = tomllib.loads(c.get("/api/server/config").text)
    assert toml["store"]["default"]["engine"] == "memory"
    assert toml["backend"]["default"]["store"] == "default"
    cfg = tmp_path / "dvid.toml"
    text = ('[server]\nnote = "hi \\"there\\""\n[store.main]\nengine = "memory"\n'
            '[mutations]\nretain = 10\n[kafka]\nservers = ["k1:9092"]\n')
    cfg.write_text(text)
    with TestClient(create_app(Settings.from_toml(cfg))) as c2:
        assert c2.get("/api/server/config").text == text
        info = c2.get("/api/server/info").json()
        assert info["Kafka Servers"] == "k1:9092" and info["Note"] == 'hi "there"'


def test_storage_summary_and_blobstore(c: TestClient) -> None:
    root = c.post("/api/repos", json={}).json()["root"]
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    c.post(f"/api/node/{root}/kv/key/a", content=b"hello")
    assert c.get("/api/storage?result=true").status_code == 404
    r = c.get("/api/storage")
    assert r.status_code == 200 and "Storage summary requested" in r.text
    deadline = time.monotonic() + 10
    while (r := c.get("/api/storage?result=true")).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    s = r.json()[f"{root}/kv"]
    assert s["TypeName"] == "keyvalue" and s["Keys"] >= 2 and s["Bytes"] > 5
    ref = c.post(f"/api/node/{root}/kv/blobstore", content=b"blob!").json()["reference"]
    assert c.get(f"/api/server/blobstore/{ref}").content == b"blob!"
    assert c.get("/api/server/blobstore/nope").status_code == 404
