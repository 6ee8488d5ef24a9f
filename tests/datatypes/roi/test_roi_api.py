"""In-process tests of the roi datatype against numpy oracles."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from datatypes.common import roi_spans as rs
from datatypes.roi import find_roi
from dvidpy.config import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from server import create_app


@pytest.fixture
def app():
    return create_app(Settings.memory())


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def repo(client) -> str:
    return client.post("/api/repos", json={}).json()["root"]


def make_roi(client, uuid: str, name: str = "r", bs: str | None = None) -> str:
    body = {"typename": "roi", "dataname": name}
    if bs:
        body["BlockSize"] = bs
    r = client.post(f"/api/repo/{uuid}/instance", json=body)
    assert r.status_code == 200, r.text
    return f"/api/node/{uuid}/{name}"


def random_spans(rng: np.random.Generator, n: int, lo: int = -6, hi: int = 6) -> list[list[int]]:
    z = rng.integers(lo, hi, n)
    y = rng.integers(lo, hi, n)
    x0 = rng.integers(lo, hi, n)
    x1 = x0 + rng.integers(0, 4, n)
    return np.stack([z, y, x0, x1], axis=1).tolist()


def block_set(spans) -> set[tuple[int, int, int]]:
    return {(x, y, z) for z, y, a, b in spans for x in range(a, b + 1)}


def test_roundtrip_info_and_delete(client, repo) -> None:
    base = make_roi(client, repo)
    info = client.get(f"{base}/info").json()["Extended"]
    assert info == {"BlockSize": [32, 32, 32], "MinZ": 2147483647, "MaxZ": -2147483648}
    assert client.get(f"{base}/roi").json() == []
    spans = [[3, 1, 5, 9], [0, 0, 0, 2], [0, 0, 0, 4], [-2, 7, -3, -1]]
    assert client.post(f"{base}/roi", json=spans).status_code == 200
    assert client.get(f"{base}/roi").json() == rs.stored_spans(spans).tolist()
    assert client.get(f"{base}/info").json()["Extended"]["MinZ"] == -2
    # replace
    assert client.post(f"{base}/roi", json=[[1, 1, 1, 1]]).status_code == 200
    assert client.get(f"{base}/roi").json() == [[1, 1, 1, 1]]
    assert client.delete(f"{base}/roi").status_code == 200
    assert client.get(f"{base}/roi").json() == []


def test_mask_and_ptquery_against_oracle(client, repo) -> None:
    rng = np.random.default_rng(5)
    base = make_roi(client, repo, bs="8,4,6")
    spans = random_spans(rng, 40)
    assert client.post(f"{base}/roi", json=spans).status_code == 200
    # DVID keys spans by start block: of spans sharing (z, y, x0) the last posted wins.
    blocks = block_set(rs.stored_spans(spans).tolist())
    bs = np.array([8, 4, 6])
    off, size = np.array([-45, -20, -33]), np.array([90, 45, 70])
    r = client.get(f"{base}/mask/0_1_2/{'_'.join(map(str, size))}/{'_'.join(map(str, off))}")
    assert r.status_code == 200
    got = np.frombuffer(r.content, np.uint8).reshape(size[::-1])
    zz, yy, xx = np.meshgrid(*(np.arange(o, o + n) for o, n in zip(off[::-1], size[::-1],
                                                                     strict=True)), indexing="ij")
    bx, by, bz = xx // bs[0], yy // bs[1], zz // bs[2]
    lut = np.zeros((20, 20, 20), bool)  # block coords -10..9
    for x, y, z in blocks:
        lut[z + 10, y + 10, x + 10] = True
    want = lut[bz + 10, by + 10, bx + 10]
    assert np.array_equal(got, want.astype(np.uint8))
    pts = rng.integers(-50, 50, (500, 3))
    r = client.post(f"{base}/ptquery", json=pts.tolist())
    ans = r.json()
    exp = [tuple((p // bs).tolist()) in blocks for p in pts]
    assert ans == exp
    assert client.post(f"{base}/ptquery", json=[]).json() == []


def test_partition(client, repo) -> None:
    base = make_roi(client, repo)
    spans = [[0, 0, 0, 5], [3, 3, 2, 2]]
    assert client.post(f"{base}/roi", json=spans).status_code == 200
    p = client.get(f"{base}/partition?batchsize=4").json()
    assert p["NumActiveBlocks"] == 7
    assert sum(s["ActiveBlocks"] for s in p["Subvolumes"]) == 7
    assert client.get(f"{base}/partition").status_code == 400
    assert client.get(f"{base}/partition?batchsize=0").status_code == 400
    assert client.get(f"{base}/partition?batchsize=x").status_code == 400


def test_versions_and_locked_ptquery(app, client, repo) -> None:
    base = make_roi(client, repo)
    assert client.post(f"{base}/roi", json=[[0, 0, 0, 0]]).status_code == 200
    assert client.post(f"/api/node/{repo}/commit", json={}).status_code == 200
    assert client.post(f"{base}/roi", json=[[1, 1, 1, 1]]).status_code == 400
    assert client.post(f"{base}/ptquery", json=[[1, 1, 1]]).json() == [True]  # not a mutation
    child = client.post(f"/api/node/{repo}/newversion", json={}).json()["child"]
    cbase = f"/api/node/{child}/r"
    assert client.delete(f"{cbase}/roi").status_code == 200
    assert client.get(f"{cbase}/roi").json() == []
    assert client.get(f"{base}/roi").json() == [[0, 0, 0, 0]]
    # Python API used by other datatypes
    mgr = app.state.manager
    rp, node = mgr.resolve(repo)
    roi = find_roi(rp, "r", mgr)
    ctx = mgr.context(roi, node)
    assert roi.spans_at(ctx).tolist() == [[0, 0, 0, 0]]
    assert roi.points_in(ctx, np.array([[5, 5, 5], [40, 0, 0]])).tolist() == [True, False]
    with pytest.raises(Exception, match="no ROI"):
        find_roi(rp, "missing", mgr)


def test_large_roi_is_fast(client, repo) -> None:
    base = make_roi(client, repo)
    n = 100_000
    z = np.arange(n) // 1000
    y = np.arange(n) % 1000
    spans = np.stack([z, y, np.zeros(n, int), np.full(n, 10)], axis=1)
    body = "[" + ",".join(f"[{a},{b},{c},{d}]" for a, b, c, d in spans.tolist()) + "]"
    t = time.perf_counter()
    r = client.post(f"{base}/roi", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200
    r = client.get(f"{base}/roi")
    assert len(r.json()) == n
    assert time.perf_counter() - t < 10


def test_bad_spans_write_nothing(client, repo) -> None:
    base = make_roi(client, repo)
    assert client.post(f"{base}/roi", json=[[0, 0, 0, 0]]).status_code == 200
    bad = ["notjson", "{}", "[[1,2,3]]", "[[1,2,3,\"a\"]]", "[[0,0,5,4]]",
           "[[true,0,0,0]]", "[[0,0,0,4294967296]]", "[[0,0,0,1.5]]", "[1,2,3,4]"]
    for b in bad:
        r = client.post(f"{base}/roi", content=b, headers={"content-type": "application/json"})
        assert r.status_code == 400, (b, r.text)
    assert client.get(f"{base}/roi").json() == [[0, 0, 0, 0]]
    for b in ["[[1,2]]", "[[1,2,\"x\"]]", "{}", "[[true,1,1]]"]:
        r = client.post(f"{base}/ptquery", content=b)
        assert r.status_code == 400, (b, r.text)
    for url in [f"{base}/mask/0_1/4_4/0_0_0", f"{base}/mask/0_1_2/0_4_4/0_0_0",
                f"{base}/mask/0_1_2/4_4_4/0_0", f"{base}/mask/0_1_2/5000_5000_5000/0_0_0"]:
        r = client.get(url)
        assert 400 <= r.status_code < 500, (url, r.text)
    for s in ["0,1,1", "a", "1,2"]:
        r = client.post(f"/api/repo/{base.split('/')[3]}/instance",
                        json={"typename": "roi", "dataname": "bad", "BlockSize": s})
        assert r.status_code == 400
