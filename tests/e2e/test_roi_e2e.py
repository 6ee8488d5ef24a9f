"""End-to-end roi tests against a real server process (numpy oracle)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.e2e


def test_roi_roundtrip_mask_ptquery_versions_restart(server, client) -> None:
    c = client
    uuid = c.post("/api/repos", json={}).json()["root"]
    r = c.post(f"/api/repo/{uuid}/instance",
               json={"typename": "roi", "dataname": "roi", "BlockSize": "16,16,16"})
    assert r.status_code == 200, r.text
    base = f"/api/node/{uuid}/roi"
    rng = np.random.default_rng(9)
    rows = {(int(z), int(y)) for z, y in rng.integers(-4, 4, (30, 2))}
    spans = []
    for z, y in sorted(rows):
        x0 = int(rng.integers(-4, 3))
        spans.append([z, y, x0, x0 + int(rng.integers(0, 4))])
    assert c.post(f"{base}/roi", json=spans).status_code == 200
    assert c.get(f"{base}/roi").json() == spans  # sorted, one span per row: stored as is
    oracle = np.zeros((8, 8, 8), bool)  # blocks -4..3
    for z, y, x0, x1 in spans:
        oracle[z + 4, y + 4, x0 + 4:x1 + 5] = True
    vox = np.repeat(np.repeat(np.repeat(oracle, 16, 0), 16, 1), 16, 2)  # voxels -64..63
    r = c.get(f"{base}/mask/0_1_2/100_90_80/-50_-40_-30")
    got = np.frombuffer(r.content, np.uint8).reshape(80, 90, 100)
    assert np.array_equal(got, vox[34:114, 24:114, 14:114].astype(np.uint8))
    pts = rng.integers(-70, 70, (300, 3))
    inside = [bool(p.min() >= -64 and p.max() < 64 and vox[p[2] + 64, p[1] + 64, p[0] + 64])
              for p in pts]
    assert c.post(f"{base}/ptquery", json=pts.tolist()).json() == inside
    # bad spans change nothing
    for bad in ([[0, 0, 3, 1]], [[0, 0, 1]], {"a": 1}):
        assert c.post(f"{base}/roi", json=bad).status_code == 400
    assert c.get(f"{base}/roi").json() == spans
    # versions: commit, child replaces; ptquery works on the locked parent
    assert c.post(f"/api/node/{uuid}/commit", json={}).status_code == 200
    assert c.post(f"{base}/ptquery", json=[[0, 0, 0]]).status_code == 200
    assert c.delete(f"{base}/roi").status_code == 400
    child = c.post(f"/api/node/{uuid}/newversion", json={}).json()["child"]
    assert c.post(f"/api/node/{child}/roi/roi", json=[[9, 9, 9, 9]]).status_code == 200
    server.restart()
    with httpx.Client(base_url=server.url, timeout=60) as c2:
        assert c2.get(f"{base}/roi").json() == spans
        assert c2.get(f"/api/node/{child}/roi/roi").json() == [[9, 9, 9, 9]]
        ext = c2.get(f"/api/node/{child}/roi/info").json()["Extended"]
        assert ext == {"BlockSize": [16, 16, 16], "MinZ": 9, "MaxZ": 9}
