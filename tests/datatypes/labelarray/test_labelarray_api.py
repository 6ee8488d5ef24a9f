"""labelarray, labelblk and labelvol on the labelmap machinery (in process): the endpoint
sets each serves, labelvol sparse volumes and edits answered through its labelblk at each
version, and bad input."""

from __future__ import annotations

import numpy as np
from starlette.testclient import TestClient

from datatypes.labelmap.rle import decode_rles, spans_to_mask

SHAPE = (32, 32, 32)


def volume() -> np.ndarray:
    return np.repeat(np.arange(1, 5, dtype=np.uint64), 32 * 32 * 8).reshape(SHAPE)


def make(c: TestClient, typename: str, name: str, root: str | None = None,
         **extra: str) -> str:
    root = root or c.post("/api/repos", json={}).json()["root"]
    r = c.post(f"/api/repo/{root}/instance", json={"typename": typename, "dataname": name,
                                                   "BlockSize": "16,16,16", **extra})
    assert r.status_code == 200, r.text
    return root


def test_labelarray_is_labelmap_without_supervoxels(c: TestClient) -> None:
    root = make(c, "labelarray", "la")
    b = f"/api/node/{root}/la"
    assert c.post(f"{b}/raw/0_1_2/32_32_32/0_0_0", content=volume().tobytes()).status_code == 200
    assert c.get(f"{b}/label/0_0_9").json() == {"Label": 2}
    assert c.post(f"{b}/merge", json=[1, 2]).status_code == 200
    assert c.get(f"{b}/label/0_0_9").json() == {"Label": 1}
    mask = spans_to_mask(decode_rles(c.get(f"{b}/sparsevol/1").content), SHAPE)
    assert np.array_equal(mask, np.isin(volume(), [1, 2]))
    assert c.get(f"{b}/mutations").json()[-1]["Action"] == "merge-complete"
    for kw in ("mapping", "supervoxels/1", "supervoxel-sizes/1"):
        r = c.get(f"{b}/{kw}")
        assert r.status_code == 400 and "unknown endpoint" in r.text, kw
    assert c.post(f"{b}/cleave/1", json=[2]).status_code == 400
    assert c.get(f"{b}/info").json()["Extended"]["Values"][0]["Label"] == "labelarray"


def test_labelblk_with_labelvol(c: TestClient) -> None:
    root = make(c, "labelblk", "blk")
    r = c.post(f"/api/repo/{root}/instance", json={"typename": "labelvol", "dataname": "vol"})
    assert r.status_code == 200
    assert c.get(f"/api/node/{root}/vol/sparsevol/1").status_code == 400  # not synced yet
    assert c.post(f"/api/node/{root}/vol/sync", json={"sync": "blk"}).status_code == 200
    blk, vol = f"/api/node/{root}/blk", f"/api/node/{root}/vol"
    assert c.post(f"{blk}/raw/0_1_2/32_32_32/0_0_0",
                  content=volume().tobytes()).status_code == 200
    got = np.frombuffer(c.get(f"{blk}/raw/0_1_2/32_32_32/0_0_0").content, np.uint64)
    assert np.array_equal(got.reshape(SHAPE), volume())
    for kw in ("sparsevol/1", "merge", "index/1", "supervoxels/1"):
        assert c.get(f"{blk}/{kw}").status_code == 400, kw  # labelvol's or labelmap's only
    mask = spans_to_mask(decode_rles(c.get(f"{vol}/sparsevol/3").content), SHAPE)
    assert np.array_equal(mask, volume() == 3)
    assert c.get(f"{vol}/sparsevol-coarse/3").status_code == 200
    assert c.get(f"{vol}/sparsevol/99").status_code == 404
    assert c.post(f"/api/node/{root}/commit", json={}).status_code == 200
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    cv, cb = f"/api/node/{child}/vol", f"/api/node/{child}/blk"
    assert c.post(f"{cv}/merge", json=[3, 4]).status_code == 200
    assert c.get(f"{cb}/label/0_0_31").json() == {"Label": 3}   # the labelblk reads the merge
    assert c.get(f"{blk}/label/0_0_31").json() == {"Label": 4}  # parent unchanged
    mask = spans_to_mask(decode_rles(c.get(f"{cv}/sparsevol/3").content), SHAPE)
    assert np.array_equal(mask, np.isin(volume(), [3, 4]))
    assert [m["Action"] for m in c.get(f"{cv}/mutations").json()] == ["merge-complete"]
    assert c.post(f"{vol}/merge", json=[1, 2]).status_code == 400  # committed
    assert c.post(f"{cv}/merge", json=[3, 99]).status_code == 400
    assert c.post(f"{cv}/merge", content=b"[3,").status_code == 400
    r = c.post(f"/api/repo/{child}/instance", json={"typename": "labelblk", "dataname": "b2",
                                                    "MaxDownresLevel": "2"})
    assert r.status_code == 400 and "one scale" in r.text
    r = c.post(f"/api/node/{child}/vol/sync", json={"sync": "blk2"})
    assert r.status_code == 400
