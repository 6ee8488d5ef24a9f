"""labelmap endpoints added for issue 17 (set-nextlabel, index-version, map-stats,
proximity, metadata, resolution, index?mutid=), DVID's completed-mutation records, the
labelmap diff summary and mutation stream, and keyvalue mutations-range."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from datatypes import protos


@pytest.fixture
def root(c: TestClient) -> str:
    r = c.post("/api/repos", json={}).json()["root"]
    assert c.post(f"/api/repo/{r}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": "16,16,16"}).status_code == 200
    vol = np.zeros((32, 32, 32), np.uint64)
    vol[:, :, :10] = 1        # x 0..9
    vol[:, :, 14:20] = 2      # x 14..19: 4 voxels from label 1 in block x=0
    vol[:, :, 20:] = 3        # touches 2
    assert c.post(f"/api/node/{r}/seg/raw/0_1_2/32_32_32/0_0_0",
                  content=vol.tobytes()).status_code == 200
    return r


def test_nextlabel_ceiling_and_records(c: TestClient, root: str) -> None:
    b = f"/api/node/{root}/seg"
    assert c.post(f"{b}/set-nextlabel/100?ceiling=102").status_code == 200
    assert c.get(f"{b}/nextlabel").json() == {"nextlabel": 101}
    assert c.post(f"{b}/nextlabel/2").json() == {"start": 101, "end": 102}
    r = c.post(f"{b}/nextlabel/1")
    assert r.status_code == 400 and "ceiling" in r.text
    assert c.get(f"{b}/nextlabel").json() == {"nextlabel": 103}  # nothing allocated
    assert c.post(f"{b}/set-nextlabel/500?ceiling=0").status_code == 200
    assert c.post(f"{b}/nextlabel/5").json() == {"start": 501, "end": 505}
    assert c.post(f"{b}/set-nextlabel/600?ceiling=10").status_code == 400
    assert c.post(f"{b}/set-nextlabel/0").status_code == 400
    recs = c.get(f"{b}/mutations").json()
    assert [r["Action"] for r in recs] == ["setnextlabel", "setnextlabel"]
    assert recs[0]["Next Label"] == 101 and recs[0]["Ceiling"] == 102


def test_index_version_mutid_and_completed_records(c: TestClient, root: str) -> None:
    b = f"/api/node/{root}/seg"
    assert c.get(f"{b}/index-version/1").text == root
    assert c.get(f"{b}/index-version/77").status_code == 404
    c.post(f"/api/node/{root}/commit", json={})
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    cb = f"/api/node/{child}/seg"
    mid = c.post(f"{cb}/merge", json=[1, 2]).json()["MutationID"]
    assert c.get(f"{cb}/index-version/1").text == child
    before = protos.LabelIndex.FromString(c.get(f"{cb}/index/1?mutid={mid}").content)
    after = protos.LabelIndex.FromString(c.get(f"{cb}/index/1").content)
    assert before.last_mutid < mid <= after.last_mutid
    assert sum(sum(v.counts.values()) for v in before.blocks.values()) == 32 * 32 * 10
    assert c.get(f"{cb}/index/1?mutid=0").status_code == 404
    rec = c.get(f"{cb}/mutations").json()[-1]
    assert rec["Action"] == "merge-complete" and rec["Target"] == 1 and rec["Labels"] == [2]
    rng = c.get(f"{cb}/mutations-range/{root}/{child}").json()
    assert [r["Action"] for r in rng] == ["merge-complete"]
    hist = c.get(f"{cb}/history/1/{root}/{child}").text
    assert '"Action":"merge"' in hist  # history keeps the edit names
    d = c.get(f"/api/repo/{root}/diff/{root}/{child}?data=seg").json()["instances"]["seg"]
    s = d["summary"]
    assert s["bodies_changed"] == [1] and s["bodies_deleted"] == [2]
    assert s["supervoxels_remapped"] == 1 and s["blocks_changed"] == {}
    assert [m["Action"] for m in s["mutations"]] == ["merge-complete"]
    assert {"label": 2} in d["deleted"] and {"supervoxel": 2} in d["added"]
    mgr = c.app.state.manager  # type: ignore[attr-defined]
    mgr.mutations.drain_once()
    streamed = [r for r in mgr.mutations.iter_after(0) if r["DataName"] == "seg"]
    assert streamed[-1]["Action"] == "merge-complete"


def test_metadata_resolution_map_stats_proximity(c: TestClient, root: str) -> None:
    b = f"/api/node/{root}/seg"
    r = c.get(f"{b}/metadata")
    assert r.headers["content-type"].startswith("application/vnd.dvid-nd-data+json")
    md = r.json()
    assert [a["Label"] for a in md["Axes"]] == ["X", "Y", "Z"]
    assert md["Axes"][0]["Size"] == 32 and md["Axes"][0]["Resolution"] == 8.0
    assert c.post(f"{b}/resolution", json=[4, 4, 40]).status_code == 200
    assert c.get(f"{b}/info").json()["Extended"]["VoxelSize"] == [4.0, 4.0, 40.0]
    for bad in (b"[1, 2]", b'[1, 2, "x"]', b"[0, 1, 1]", b"{"):
        assert c.post(f"{b}/resolution", content=bad).status_code == 400, bad
    assert c.get(f"{b}/label/0_0_0").json() == {"Label": 1}
    assert c.get(f"{b}/map-stats").json()["seg"]["NumVersions"] == 1  # the root only
    got = c.get(f"{b}/proximity/1,2,3").json()
    d12 = {tuple(x["Block"]): x["Distance"] for x in got if x["Label"] == 2}
    assert d12 == {(0, 0, 0): 5.0, (0, 1, 0): 5.0, (0, 0, 1): 5.0, (0, 1, 1): 5.0}
    assert not [x for x in got if x["Label"] == 3]  # 1 and 3 share no block
    two = c.get(f"{b}/proximity/2/3").json()
    assert two and all(x["Distance"] == 1.0 and "Label" not in x for x in two)
    assert c.get(f"{b}/proximity/1").status_code == 400
    assert c.get(f"{b}/proximity/1,x").status_code == 400
    assert c.get(f"{b}/proximity/1,99").status_code == 404


def test_keyvalue_mutations_range(c: TestClient) -> None:
    r = c.post("/api/repos", json={}).json()["root"]
    c.post(f"/api/repo/{r}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    c.post(f"/api/node/{r}/kv/key/a", content=b"1")
    c.post(f"/api/node/{r}/commit", json={})
    ch = c.post(f"/api/node/{r}/newversion", json={}).json()["child"]
    c.delete(f"/api/node/{ch}/kv/key/a")
    recs = c.get(f"/api/node/{ch}/kv/mutations-range/{r}/{ch}").json()
    assert [(x["Action"], x["UUID"]) for x in recs] == [("postkv", r), ("delete", ch)]
    assert c.get(f"/api/node/{ch}/kv/mutations-range/{ch}/{r}").status_code == 400
    assert c.get(f"/api/node/{ch}/kv/mutations-range/{r}/nope").status_code == 400
