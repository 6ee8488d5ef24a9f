"""Import of labelmap instances from a server used only through DVID's public HTTP API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

from tests.transfer.test_transfer_e2e import cli, dag_shape, import_in_process, ok

pytestmark = pytest.mark.e2e
BS = 16
BIG = 2**33  # supervoxel ids above 2^32
SIZE = (48, 32, 32)  # 3 x 2 x 2 blocks at scale 0, 2 x 1 x 1 at scale 1
POINTS = [[1, 1, 1], [20, 5, 3], [40, 30, 30], [10, 20, 25], [47, 0, 17], [33, 17, 9]]


def volume(seed: int) -> np.ndarray:
    """(z, y, x) supervoxels BIG+1..BIG+4 in slabs along X, with a little noise."""
    vol = np.zeros(SIZE[::-1], dtype=np.uint64)
    for i in range(4):
        vol[:, :, i * 12:(i + 1) * 12] = BIG + 1 + i
    rng = np.random.default_rng(seed)
    vol[rng.random(vol.shape) < 0.01] = 0
    return vol


def build(c: httpx.Client) -> dict[str, str]:
    """root (voxels) -> v1 (merge, cleave, a rewritten block) -> v2 (open)."""
    root = ok(c.post("/api/repos", json={"alias": "seg"})).json()["root"]
    ok(c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}",
        "VoxelSize": "4,4,40", "VoxelUnits": "nanometers", "MaxDownresLevel": "1"}))
    nx, ny, nz = SIZE
    ok(c.post(f"/api/node/{root}/seg/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0",
              content=volume(1).tobytes()))
    ok(c.post(f"/api/node/{root}/commit", json={}))
    v1 = ok(c.post(f"/api/node/{root}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v1}/seg/merge", json=[BIG + 1, BIG + 2, BIG + 3]))
    cleaved = ok(c.post(f"/api/node/{v1}/seg/cleave/{BIG + 1}", json=[BIG + 3])).json()
    assert cleaved["CleavedLabel"] > BIG + 4
    blk = np.full((BS, BS, BS), BIG + 4, dtype=np.uint64)  # BIG+1's block becomes BIG+4
    ok(c.post(f"/api/node/{v1}/seg/raw/0_1_2/{BS}_{BS}_{BS}/0_16_16", content=blk.tobytes()))
    ok(c.post(f"/api/node/{v1}/commit", json={}))
    v2 = ok(c.post(f"/api/node/{v1}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v2}/seg/merge", json=[BIG + 4, cleaved["CleavedLabel"]]))
    return {"root": root, "v1": v1, "v2": v2}


def state(c: Any, uuid: str) -> dict[str, Any]:
    """Everything a client reads of ``seg`` at ``uuid``."""
    base = f"/api/node/{uuid}/seg"
    info = ok(c.get(f"{base}/info")).json()
    ext = info["Extended"]
    out: dict[str, Any] = {k: ext[k] for k in ("BlockSize", "VoxelSize", "VoxelUnits",
                                               "MinPoint", "MaxPoint", "IndexedLabels",
                                               "MaxDownresLevel")}
    nx, ny, nz = SIZE
    for scale in (0, 1):
        for sv in ("false", "true"):
            out[f"raw{scale}{sv}"] = ok(c.get(
                f"{base}/raw/0_1_2/{nx >> scale}_{ny >> scale}_{nz >> scale}/0_0_0",
                params={"scale": scale, "supervoxels": sv})).content
    labels = np.frombuffer(ok(c.get(f"{base}/listlabels")).content, dtype="<u8").tolist()
    out["listlabels"] = labels
    out["labels"] = c.request("GET", f"{base}/labels", content=json.dumps(POINTS)).json()
    out["svlabels"] = c.request("GET", f"{base}/labels", params={"supervoxels": "true"},
                                content=json.dumps(POINTS)).json()
    out["sizes"] = c.request("GET", f"{base}/sizes",
                             content=json.dumps([*labels, BIG + 2, BIG + 3])).json()
    out["mappings"] = sorted(ok(c.get(f"{base}/mappings")).text.splitlines())
    out["maxlabel"] = ok(c.get(f"{base}/maxlabel")).json()
    for lab in labels:
        out[f"sv{lab}"] = sorted(ok(c.get(f"{base}/supervoxels/{lab}")).json())
        out[f"size{lab}"] = ok(c.get(f"{base}/size/{lab}")).json()
        out[f"coarse{lab}"] = ok(c.get(f"{base}/sparsevol-coarse/{lab}")).content
    return out


def test_import_labelmap_over_versions(make_server) -> None:
    from starlette.testclient import TestClient

    from server import create_app

    src, dst = make_server("leveldb"), make_server("leveldb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b:
        v = build(a)
        expect = {u: state(a, u) for u in v.values()}
        assert expect[v["v1"]]["listlabels"] != expect[v["root"]]["listlabels"]
        settings, mgr, _, st = import_in_process(src.url, v["root"])
        assert st["records"] > 0
        with TestClient(create_app(settings, mgr)) as m:
            for key, u in v.items():
                assert state(m, u) == expect[u], key
        # the CLI path into a real server; new ids there never collide with imported ones
        r = cli("pull", src.url, v["root"], dst.url, "--from-dvid")
        assert r.returncode == 0, r.stderr
        assert dag_shape(a, v["root"]) == dag_shape(b, v["root"])
        for key, u in v.items():
            assert state(b, u) == expect[u], key
        top = max(ok(a.get(f"/api/node/{u}/seg/maxlabel")).json()["maxlabel"]
                  for u in v.values())
        # a branch off the root (whose own max label is lower) must not reuse ids of v1/v2
        assert ok(a.get(f"/api/node/{v['root']}/seg/maxlabel")).json()["maxlabel"] < top
        for base in (v["v2"], v["root"]):
            child = ok(b.post(f"/api/node/{base}/branch",
                              json={"branch": f"b{base[:6]}"})).json()["child"]
            got = ok(b.post(f"/api/node/{child}/seg/nextlabel/1")).json()
            assert got["start"] > top, base


def test_import_labelmap_bad_block_stream(make_server, monkeypatch) -> None:
    from dvidpy.transfer import TransferError
    from dvidpy.transfer.dvid_import import DvidApiSource

    src = make_server("leveldb")
    with httpx.Client(base_url=src.url, timeout=60) as a:
        v = build(a)
    real = DvidApiSource._get

    def corrupt(self: DvidApiSource, path: str, body: bytes | None = None) -> bytes:
        data = real(self, path, body)
        if "/blocks/" in path and data:
            data = data[:16] + b"\x00not gzip" + data[25:]  # first payload's head broken
        return data

    monkeypatch.setattr(DvidApiSource, "_get", corrupt)
    with pytest.raises(TransferError) as ei:
        import_in_process(src.url, v["root"])
    assert "bad block stream" in str(ei.value)
