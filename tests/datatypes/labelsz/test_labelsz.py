"""labelsz in-process: ranking, threshold paging, static ROI, key layout."""

from __future__ import annotations

import warnings

import numpy as np

from datatypes.labelsz import sort_tkey
from dvidpy.config import Settings
from server import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_sort_keys_order_count_desc_label_asc() -> None:
    items = [(5, 3), (5, 1), (9, 7), (1, 2**63)]
    keys = sorted(items, key=lambda cl: sort_tkey(1, cl[0], cl[1]))
    assert keys == [(9, 7), (5, 1), (5, 3), (1, 2**63)]


def test_ranking_threshold_roi() -> None:
    c = TestClient(create_app(Settings.memory()))
    uuid = c.post("/api/repos", json={}).json()["root"]
    u = f"/api/node/{uuid}"
    for body in ({"typename": "labelmap", "dataname": "seg", "BlockSize": "16,16,16"},
                 {"typename": "annotation", "dataname": "syn"},
                 {"typename": "roi", "dataname": "left", "BlockSize": "16,16,16"}):
        assert c.post(f"/api/repo/{uuid}/instance", json=body).status_code == 200
    assert c.post(f"{u}/left/roi", json=[[0, 0, 0, 0]]).status_code == 200  # x < 16
    bad = c.post(f"/api/repo/{uuid}/instance",
                 json={"typename": "labelsz", "dataname": "x", "ROI": "nothere," + uuid})
    assert bad.status_code == 400
    assert "x" not in c.get(f"/api/repo/{uuid}/info").json()["DataInstances"]
    for body in ({"typename": "labelsz", "dataname": "sz"},
                 {"typename": "labelsz", "dataname": "szroi", "ROI": f"left,{uuid}"}):
        assert c.post(f"/api/repo/{uuid}/instance", json=body).status_code == 200
    assert c.get(f"{u}/szroi/info").json()["Extended"] == {"StaticROI": f"left,{uuid}"}
    assert c.post(f"{u}/syn/sync", json={"sync": "seg"}).status_code == 200
    for n in ("sz", "szroi"):
        assert c.post(f"{u}/{n}/sync", json={"sync": "syn"}).status_code == 200
    vol = np.zeros((16, 16, 32), np.uint64)
    for lab in range(1, 9):  # label = 1 + y // 2
        vol[:, 2 * (lab - 1):2 * lab, :] = lab
    assert c.post(f"{u}/seg/raw/0_1_2/32_16_16/0_0_0", content=vol.tobytes()).status_code == 200
    # label `lab` gets `lab` PostSyns, some of them at x >= 16
    els = [{"Pos": [i * 3 % 32, 2 * (lab - 1), i], "Kind": "PostSyn"}
           for lab in range(1, 9) for i in range(lab)]
    els.append({"Pos": [0, 0, 15], "Kind": "Note"})
    assert c.post(f"{u}/syn/elements", json=els).status_code == 200
    top = c.get(f"{u}/sz/top/3/PostSyn").json()
    assert top == [{"Label": 8, "Size": 8}, {"Label": 7, "Size": 7}, {"Label": 6, "Size": 6}]
    assert c.get(f"{u}/sz/top/0/PostSyn").json() == []
    thr = c.get(f"{u}/sz/threshold/3/AllSyn?offset=2&n=3").json()
    assert thr == [{"Label": 6, "Size": 6}, {"Label": 5, "Size": 5}, {"Label": 4, "Size": 4}]
    assert len(c.get(f"{u}/sz/threshold/1/PostSyn").json()) == 8
    assert c.get(f"{u}/sz/count/1/Note").json() == {"Label": 1, "Note": 1}
    assert c.get(f"{u}/sz/count/1/AllSyn").json() == {"Label": 1, "AllSyn": 1}
    assert c.request("GET", f"{u}/sz/counts/PostSyn", json=[8, 99, 2]).json() == [
        {"Label": 8, "PostSyn": 8}, {"Label": 99, "PostSyn": 0}, {"Label": 2, "PostSyn": 2}]
    # ROI-restricted counts: only x < 16
    exp = {}
    for e in els:
        if e["Kind"] == "PostSyn" and e["Pos"][0] < 16:
            lab = 1 + e["Pos"][1] // 2
            exp[lab] = exp.get(lab, 0) + 1
    want = [{"Label": k, "Size": v} for k, v in sorted(exp.items(), key=lambda kv: (-kv[1], kv[0]))]
    assert c.get(f"{u}/szroi/top/100/PostSyn").json() == want
    # merge moves counts; reload recomputes identical state
    assert c.post(f"{u}/seg/merge", json=[1, 8]).status_code == 200
    assert c.get(f"{u}/sz/top/1/PostSyn").json() == [{"Label": 1, "Size": 9}]
    before = [c.get(f"{u}/{n}/top/100/{ix}").json() for n in ("sz", "szroi")
              for ix in ("PostSyn", "AllSyn", "Note")]
    for n in ("sz", "szroi"):
        assert c.post(f"{u}/{n}/reload").status_code == 200
    after = [c.get(f"{u}/{n}/top/100/{ix}").json() for n in ("sz", "szroi")
             for ix in ("PostSyn", "AllSyn", "Note")]
    assert after == before
    acts = {m["Action"] for m in c.get(f"{u}/sz/mutations").json()}
    assert acts == {"sync-counts", "reload"}
