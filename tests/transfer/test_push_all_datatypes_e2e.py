"""A full push of a repo holding every datatype, between real servers on different engines.

One repo: ``kv`` (keyvalue), ``gray`` (uint8blk), ``seg`` (labelmap, 16³ blocks, bodies
1..4 in X slabs), ``syn`` (annotation synced to ``seg``), ``sz`` (labelsz synced to
``syn``), ``region`` (roi). Versions::

    root ── v1 (merge 1+2, new synapses, a grayscale block, a kv key) ── v2 (open: cleave)
      └──── side (branch: merge 3+4, delete a synapse, split a supervoxel, roi change)

The push goes LevelDB → RocksDB, then the receiver pushes on to a third server on the
GCS emulator; every read listed in :func:`state` is identical on all three at every
version, and the receivers' labelmap and annotation keep following edits afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

from datatypes.labelmap.rle import encode_rles
from tests.transfer.test_import_annotation_e2e import _sorted
from tests.transfer.test_transfer_e2e import cli, dag_shape, job, ok

pytestmark = pytest.mark.e2e
BS = 16
SIZE = (64, 32, 32)
SYN = [
    {"Pos": [5, 5, 5], "Kind": "PreSyn", "Tags": ["t1"],
     "Rels": [{"Rel": "PreSynTo", "To": [20, 5, 5]}, {"Rel": "PreSynTo", "To": [40, 20, 20]}]},
    {"Pos": [20, 5, 5], "Kind": "PostSyn", "Rels": [{"Rel": "PostSynTo", "To": [5, 5, 5]}]},
    {"Pos": [40, 20, 20], "Kind": "PostSyn", "Prop": {"conf": "0.5"},
     "Rels": [{"Rel": "PostSynTo", "To": [5, 5, 5]}]},
    {"Pos": [60, 30, 30], "Kind": "PreSyn", "Tags": ["t2"]},
    {"Pos": [50, 10, 3], "Kind": "PostSyn"},
]


def build(c: httpx.Client) -> dict[str, str]:
    root = ok(c.post("/api/repos", json={"alias": "all"})).json()["root"]
    for body in ({"typename": "keyvalue", "dataname": "kv"},
                 {"typename": "uint8blk", "dataname": "gray", "BlockSize": f"{BS},{BS},{BS}"},
                 {"typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}",
                  "MaxDownresLevel": "1"},
                 {"typename": "annotation", "dataname": "syn"},
                 {"typename": "labelsz", "dataname": "sz"},
                 {"typename": "roi", "dataname": "region"}):
        ok(c.post(f"/api/repo/{root}/instance", json=body))
    ok(c.post(f"/api/node/{root}/syn/sync", json={"sync": "seg"}))
    ok(c.post(f"/api/node/{root}/sz/sync", json={"sync": "syn"}))
    nx, ny, nz = SIZE
    vol = np.zeros(SIZE[::-1], dtype=np.uint64)
    for i in range(4):
        vol[:, :, i * 16:(i + 1) * 16] = i + 1
    ok(c.post(f"/api/node/{root}/seg/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0", content=vol.tobytes()))
    rng = np.random.default_rng(5)
    ok(c.post(f"/api/node/{root}/gray/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0",
              content=rng.integers(0, 256, SIZE[::-1], dtype=np.uint8).tobytes()))
    ok(c.post(f"/api/node/{root}/syn/elements", json=SYN))
    ok(c.post(f"/api/node/{root}/region/roi", json=[[0, 0, 0, 1], [1, 1, 0, 0]]))
    ok(c.post(f"/api/node/{root}/kv/key/a", content=b"root-a"))
    ok(c.post(f"/api/node/{root}/kv/key/b", content=b"root-b"))
    ok(c.post(f"/api/node/{root}/commit", json={}))

    v1 = ok(c.post(f"/api/node/{root}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v1}/seg/merge", json=[1, 2]))
    ok(c.post(f"/api/node/{v1}/syn/elements", json=[
        {"Pos": [30, 30, 30], "Kind": "PostSyn", "Tags": ["t1"]},
        {"Pos": [7, 8, 9], "Kind": "Gap"}]))
    ok(c.post(f"/api/node/{v1}/gray/raw/0_1_2/{BS}_{BS}_{BS}/16_16_16",
              content=rng.integers(0, 256, (BS, BS, BS), dtype=np.uint8).tobytes()))
    ok(c.post(f"/api/node/{v1}/kv/key/a", content=b"v1-a"))
    ok(c.delete(f"/api/node/{v1}/kv/key/b"))
    ok(c.post(f"/api/node/{v1}/commit", json={}))

    side = ok(c.post(f"/api/node/{root}/branch", json={"branch": "side"})).json()["child"]
    ok(c.post(f"/api/node/{side}/seg/merge", json=[3, 4]))
    ok(c.delete(f"/api/node/{side}/syn/element/20_5_5"))
    split = encode_rles(np.array([[48, 0, 0, 8]]))  # x, y, z, length: 8 voxels of sv 4
    ok(c.post(f"/api/node/{side}/seg/split-supervoxel/4", content=split))
    ok(c.post(f"/api/node/{side}/region/roi", json=[[1, 1, 0, 1]]))
    ok(c.post(f"/api/node/{side}/commit", json={}))

    v2 = ok(c.post(f"/api/node/{v1}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v2}/seg/cleave/1", json=[2]))
    return {"root": root, "v1": v1, "side": side, "v2": v2}


def state(c: Any, uuid: str) -> dict[str, Any]:
    """What clients read at ``uuid`` of every instance."""
    out: dict[str, Any] = {}
    node = f"/api/node/{uuid}"
    keys = ok(c.get(f"{node}/kv/keys")).json()
    out["kv"] = {k: ok(c.get(f"{node}/kv/key/{k}")).content for k in keys}
    nx, ny, nz = SIZE
    out["gray"] = ok(c.get(f"{node}/gray/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0")).content
    out["gray-ext"] = ok(c.get(f"{node}/gray/info")).json()["Extended"]
    for scale in (0, 1):
        for sv in ("false", "true"):
            out[f"seg{scale}{sv}"] = ok(c.get(
                f"{node}/seg/raw/0_1_2/{nx >> scale}_{ny >> scale}_{nz >> scale}/0_0_0",
                params={"scale": scale, "supervoxels": sv})).content
    labels = np.frombuffer(ok(c.get(f"{node}/seg/listlabels")).content, "<u8").tolist()
    out["listlabels"] = labels
    out["mappings"] = sorted(ok(c.get(f"{node}/seg/mappings")).text.splitlines())
    out["maxlabel"] = ok(c.get(f"{node}/seg/maxlabel")).json()
    for lab in labels:
        out[f"sv{lab}"] = sorted(ok(c.get(f"{node}/seg/supervoxels/{lab}")).json())
        out[f"sparsevol{lab}"] = ok(c.get(f"{node}/seg/sparsevol/{lab}")).content
        out[f"syn-label{lab}"] = _sorted(ok(c.get(
            f"{node}/syn/label/{lab}", params={"relationships": "true"})).json())
    out["syn-all"] = {k: _sorted(v) for k, v in
                      ok(c.get(f"{node}/syn/all-elements")).json().items()}
    for t in ("t1", "t2"):
        out[f"syn-tag{t}"] = _sorted(ok(c.get(f"{node}/syn/tag/{t}")).json())
    for index in ("PreSyn", "PostSyn", "AllSyn", "Gap"):
        out[f"sz-top{index}"] = ok(c.get(f"{node}/sz/top/10/{index}")).json()
        out[f"sz-counts{index}"] = c.request("GET", f"{node}/sz/counts/{index}",
                                             content=json.dumps(labels)).json()
    out["roi"] = ok(c.get(f"{node}/region/roi")).json()
    return out


def test_push_every_datatype_across_engines(make_server, gcs_emulator, gcs_bucket) -> None:
    src, dst = make_server("leveldb"), make_server("rocksdb")
    third = make_server("gcs", bucket=gcs_bucket, endpoint=gcs_emulator)
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b, \
            httpx.Client(base_url=third.url, timeout=120) as g:
        v = build(a)
        expect = {u: state(a, u) for u in v.values()}
        # the edits really change what is read (else equality below proves little)
        assert expect[v["v1"]]["listlabels"] != expect[v["root"]]["listlabels"]
        assert expect[v["side"]]["mappings"] != expect[v["root"]]["mappings"]
        assert expect[v["v1"]]["sz-topAllSyn"] != expect[v["root"]]["sz-topAllSyn"]
        assert expect[v["side"]]["roi"] != expect[v["root"]]["roi"]
        r = cli("push", src.url, v["root"], dst.url)
        assert r.returncode == 0, r.stderr
        assert dag_shape(a, v["root"]) == dag_shape(b, v["root"])
        for key, u in v.items():
            assert state(b, u) == expect[u], key
        # blobs referenced by mutation records came along with their versions
        refs = [(u, "syn", m["DataRef"]) for u in (v["root"], v["v1"])
                for m in ok(a.get(f"/api/node/{u}/syn/mutations")).json() if m.get("DataRef")]
        refs += [(v["side"], "seg", m["Split"])
                 for m in ok(a.get(f"/api/node/{v['side']}/seg/mutations")).json()
                 if m.get("Split")]
        assert {n for _, n, _ in refs} == {"syn", "seg"}, refs
        for u, name, ref in refs:
            blob = ok(a.get(f"/api/node/{u}/{name}/blobstore/{ref}")).content
            assert ok(b.get(f"/api/node/{u}/{name}/blobstore/{ref}")).content == blob
        # onward from the RocksDB receiver to GCS, run as a server-side job
        st = job(b, "push", uuid=v["root"], dst=third.url)
        assert st["state"] == "done", st
        for key, u in v.items():
            assert state(g, u) == expect[u], key
        # the copies are live: a merge on a new version there moves synapses and counts
        child = ok(b.post(f"/api/node/{v['v2']}/newversion", json={})).json()["child"]
        ok(b.post(f"/api/node/{child}/seg/merge", json=[3, 4]))
        before = {e["Label"]: e["AllSyn"] for e in expect[v["v2"]]["sz-countsAllSyn"]}
        got = ok(b.get(f"/api/node/{child}/sz/count/3/AllSyn")).json()["AllSyn"]
        assert got == before.get(3, 0) + before.get(4, 0) > 0
        assert len(ok(b.get(f"/api/node/{child}/syn/label/3")).json()) == got
