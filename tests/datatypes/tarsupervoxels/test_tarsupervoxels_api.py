"""tarsupervoxels through the ASGI app: blobs per supervoxel, tars per body that follow the
synced labelmap's merges and cleaves version by version, missing/exists/load, bad input."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest
from starlette.testclient import TestClient

from datatypes.keyvalue import TAR_END, tar_entry


@pytest.fixture
def root(c: TestClient) -> str:
    """A repo with labelmap ``seg`` (a 32^3 volume of supervoxels 1..4, one per z quarter,
    each its own body) and tarsupervoxels ``meshes`` (Extension drc) synced to it."""
    r = c.post("/api/repos", json={}).json()["root"]
    assert c.post(f"/api/repo/{r}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": "16,16,16"}).status_code == 200
    lab = np.repeat(np.arange(1, 5, dtype=np.uint64), 32 * 32 * 8).tobytes()
    assert c.post(f"/api/node/{r}/seg/raw/0_1_2/32_32_32/0_0_0", content=lab).status_code == 200
    r2 = c.post(f"/api/repo/{r}/instance", json={
        "typename": "tarsupervoxels", "dataname": "meshes", "Extension": "drc", "sync": "seg"})
    assert r2.status_code == 200, r2.text
    return r


def untar(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf]  # type: ignore[union-attr]


def test_blobs_and_tars_follow_edits_per_version(c: TestClient, root: str) -> None:
    m = f"/api/node/{root}/meshes"
    info = c.get(f"{m}/info").json()
    assert info["Extended"] == {"Extension": "drc"} and info["Base"]["Syncs"] == ["seg"]
    for sv in (1, 2, 3):
        assert c.post(f"{m}/supervoxel/{sv}", content=b"mesh%d" % sv).status_code == 200
    assert c.get(f"{m}/supervoxel/2").content == b"mesh2"
    assert c.get(f"{m}/supervoxel/4").status_code == 404
    assert untar(c.get(f"{m}/tarfile/1").content) == [("1.drc", b"mesh1")]
    assert c.head(f"{m}/tarfile/1").status_code == 200
    assert c.head(f"{m}/tarfile/4").status_code == 400
    assert untar(c.get(f"{m}/tarfile/4").content) == [("4.missing", b"")]
    assert c.get(f"{m}/missing/4").json() == [4] and c.get(f"{m}/missing/1").json() == []
    c.post(f"/api/node/{root}/commit", json={})
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    mc = f"/api/node/{child}/meshes"
    assert c.post(f"/api/node/{child}/seg/merge", json=[1, 2, 4]).status_code == 200
    assert untar(c.get(f"{mc}/tarfile/1").content) == [
        ("1.drc", b"mesh1"), ("2.drc", b"mesh2"), ("4.missing", b"")]
    assert c.get(f"{mc}/missing/1").json() == [4]
    assert c.head(f"{mc}/tarfile/1").status_code == 400
    assert c.get(f"{mc}/tarfile/2").status_code == 400  # merged away at the child
    assert untar(c.get(f"{m}/tarfile/1").content) == [("1.drc", b"mesh1")]  # parent as was
    # blobs are shared by every version; writes go through the open child
    assert c.post(f"{mc}/supervoxel/4", content=b"mesh4").status_code == 200
    assert c.get(f"{m}/supervoxel/4").content == b"mesh4"
    assert c.head(f"{mc}/tarfile/1").status_code == 200
    assert c.post(f"{m}/supervoxel/4", content=b"x").status_code == 400  # committed
    # a cleave in a grandchild splits the tar again
    c.post(f"/api/node/{child}/commit", json={})
    gc = c.post(f"/api/node/{child}/newversion", json={}).json()["child"]
    r = c.post(f"/api/node/{gc}/seg/cleave/1", json=[2, 4])
    assert r.status_code == 200, r.text
    new = r.json()["CleavedLabel"]
    mg = f"/api/node/{gc}/meshes"
    assert [n for n, _ in untar(c.get(f"{mg}/tarfile/1").content)] == ["1.drc"]
    assert [n for n, _ in untar(c.get(f"{mg}/tarfile/{new}").content)] == ["2.drc", "4.drc"]
    assert len(untar(c.get(f"{mc}/tarfile/1").content)) == 3
    assert c.delete(f"{mg}/supervoxel/2").status_code == 200
    assert c.get(f"{mg}/missing/{new}").json() == [2]
    body = b"[1, 2, 3, 99]"
    assert c.request("GET", f"{mg}/exists", content=body).json() == [True, False, True, False]
    h = hashlib.md5(body).hexdigest()
    assert c.request("GET", f"{mg}/exists?hash={h}", content=body).status_code == 200
    assert c.request("GET", f"{mg}/exists?hash={'0' * 32}", content=body).status_code == 400
    assert [x["Action"] for x in c.get(f"{mg}/mutations").json()] == ["deletesupervoxel"]


def test_load_and_bad_input(c: TestClient, root: str) -> None:
    m = f"/api/node/{root}/meshes"
    tar = tar_entry("1.drc", b"a") + tar_entry("3.drc", b"") + TAR_END
    assert c.post(f"{m}/load", content=tar).status_code == 200
    assert c.get(f"{m}/supervoxel/3").content == b""
    assert c.head(f"{m}/tarfile/3").status_code == 200  # an empty blob is data
    for bad, word in ((tar_entry("2.drc", b"b") + tar_entry("5.ngmesh", b"c") + TAR_END,
                       "extension"),
                      (tar_entry("2.drc", b"b") + tar_entry("x.drc", b"c") + TAR_END, "invalid"),
                      (tar_entry("0.drc", b"b") + TAR_END, "0"),
                      (b"not a tar" * 100, "tar")):
        r = c.post(f"{m}/load", content=bad)
        assert r.status_code == 400 and word in r.text, r.text
    assert c.get(f"{m}/supervoxel/2").status_code == 404  # nothing of a bad load written
    assert c.post(f"{m}/supervoxel/0", content=b"x").status_code == 400
    assert c.get(f"{m}/supervoxel/-1").status_code == 400
    assert c.get(f"{m}/tarfile/0").status_code == 400
    assert c.get(f"{m}/tarfile/77").status_code == 400  # no such body
    for bad in (b"[1, -2]", b'{"a": 1}', b"[true]", b"[1.5]", b"["):
        assert c.request("GET", f"{m}/exists", content=bad).status_code == 400, bad
    rp = f"/api/repo/{root}/instance"
    assert c.post(rp, json={"typename": "tarsupervoxels", "dataname": "t2"}).status_code == 200
    assert c.get(f"/api/node/{root}/t2/info").json()["Extended"] == {"Extension": "dat"}
    r = c.post(rp, json={"typename": "tarsupervoxels", "dataname": "t3", "Extension": "a/b"})
    assert r.status_code == 400
    assert c.post(rp, json={"typename": "tarsupervoxels", "dataname": "t4",
                            "Extension": "ngmesh"}).status_code == 200
    r = c.get(f"/api/node/{root}/t4/tarfile/1")
    assert r.status_code == 400 and "not synced" in r.text
    assert c.post(f"/api/node/{root}/t4/sync", json={"sync": "meshes"}).status_code == 400
    assert c.post(f"/api/node/{root}/t4/info", json={"Extension": "obj"}).status_code == 200
    assert c.get(f"/api/node/{root}/t4/info").json()["Extended"]["Extension"] == "obj"
