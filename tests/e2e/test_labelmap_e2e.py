"""End-to-end labelmap: a real server on LevelDB, a synthetic segmentation of hundreds of
supervoxels (ids above 2**32) over several blocks, edit chains on a child version checked
against a numpy model after every step, the parent re-checked, then a restart."""

from __future__ import annotations

import gzip

import numpy as np

from datatypes.common.blockstream import decode_records
from datatypes.labelmap.block_codec import decode_block
from datatypes.labelmap.rle import decode_rles, spans_to_mask
from tests.datatypes.labelmap.labelmap_model import Model, check_version, rle_body

BS = 32
SHAPE = (64, 64, 96)  # z, y, x: 3 x 2 x 2 blocks
BIG = 5 * 2**32


def _segmentation() -> np.ndarray:
    rng = np.random.default_rng(7)
    z, y, x = np.indices(SHAPE)
    # 300 supervoxels as cells of a jittered grid (each cell 8 x 8 x ~10 voxels)
    cell = (z // 8) * 1000 + (y // 8) * 100 + (x // 10)
    ids, inv = np.unique(cell, return_inverse=True)
    perm = rng.permutation(ids.size).astype(np.uint64)
    vol = (np.uint64(BIG) + perm)[inv.reshape(-1)].reshape(SHAPE)
    vol[:4, :4, :4] = 0
    return vol.astype(np.uint64)


def test_labelmap_edit_chain_versions_restart(server, client) -> None:
    c = client
    root = c.post("/api/repos", json={"alias": "lm"}).json()["root"]
    r = c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}",
        "MaxDownresLevel": "1"})
    assert r.status_code == 200, r.text
    vol = _segmentation()
    assert np.unique(vol).size > 250
    nz, ny, nx = SHAPE
    base0 = f"/api/node/{root}/seg"
    r = c.post(f"{base0}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0", content=vol.tobytes())
    assert r.status_code == 200, r.text
    m0 = Model(SHAPE)
    m0.sv = vol.copy()
    check_version(c, base0, m0, 1)
    assert c.post(f"/api/node/{root}/commit", json={"note": "ingest"}).status_code == 200
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    base = f"/api/node/{child}/seg"
    m = m0.copy()

    svs = sorted(int(s) for s in np.unique(vol) if s)
    # merge chain: build a big body out of 40 supervoxels in three merges
    target = svs[0]
    for group in (svs[1:10], svs[10:25], svs[25:40]):
        r = c.post(f"{base}/merge", json=[target, *group])
        assert r.status_code == 200, r.text
        for s in group:
            m.map[s] = target
        check_version(c, base, m, 1, full=False)
    # cleave 5 supervoxels off
    r = c.post(f"{base}/cleave/{target}", json=svs[5:10])
    assert r.status_code == 200, r.text
    cleaved = r.json()["CleavedLabel"]
    assert cleaved > int(vol.max())
    for s in svs[5:10]:
        m.map[s] = cleaved
    check_version(c, base, m, 1, full=False)
    # split-supervoxel of one supervoxel of the merged body (lower half in x)
    sv = svs[12]
    where = m.sv == sv
    xs = np.nonzero(where)[2]
    mask = where & (np.arange(nx)[None, None, :] < int(np.median(xs)))
    r = c.post(f"{base}/split-supervoxel/{sv}", content=rle_body(mask))
    assert r.status_code == 200, r.text
    j = r.json()
    m.sv[mask] = j["SplitSupervoxel"]
    m.sv[where & ~mask] = j["RemainSupervoxel"]
    m.map[j["SplitSupervoxel"]] = m.map[j["RemainSupervoxel"]] = target
    check_version(c, base, m, 1, full=False)
    r = c.request("GET", f"{base}/mapping", json=[sv, j["SplitSupervoxel"]])
    assert r.json() == [0, target]  # the old supervoxel is retired
    # body split: split off the part of the target body with z < 20
    bodies = m.bodies()
    bmask = (bodies == target) & (np.arange(nz)[:, None, None] < 20)
    r = c.post(f"{base}/split/{target}", content=rle_body(bmask))
    assert r.status_code == 200, r.text
    new = r.json()["label"]
    rec = c.get(f"{base}/mutations").json()[-1]
    assert rec["Action"] == "split-complete" and rec["NewLabel"] == new
    old_sv = m.sv.copy()
    splits = {int(k): v for k, v in rec["SVSplits"].items()}
    for s in np.unique(old_sv[bmask]).tolist():
        if s in splits:
            m.sv[bmask & (old_sv == s)] = splits[s]["Split"]
            m.sv[~bmask & (old_sv == s)] = splits[s]["Remain"]
            m.map[splits[s]["Split"]] = new
            m.map[splits[s]["Remain"]] = target
        else:
            m.map[s] = new
    check_version(c, base, m, 1)
    r = c.get(f"{base}/sparsevol/{new}")
    assert np.array_equal(spans_to_mask(decode_rles(r.content), SHAPE), bmask)
    muts = c.get(f"{base}/mutations").json()
    assert [x["Action"] for x in muts] == ["merge-complete"] * 3 + [
        "cleave-complete", "split-supervoxel-complete", "split-complete"]  # DVID's names
    assert all(muts[i]["MutationID"] < muts[i + 1]["MutationID"] for i in range(5))
    # neuclease-style block fetch of mapped bodies
    r = c.get(f"{base}/specificblocks?blocks=0,0,0,2,1,1")
    for rec in decode_records(r.content):
        arr = decode_block(gzip.decompress(bytes(rec.payload)))
        want = m.bodies()[rec.z * BS:(rec.z + 1) * BS, rec.y * BS:(rec.y + 1) * BS,
                          rec.x * BS:(rec.x + 1) * BS]
        assert np.array_equal(arr, want)
    # the parent is unchanged, and has no mutation records of the child
    check_version(c, base0, m0, 1)
    assert c.get(f"{base0}/mutations").json() == []
    server.restart()
    with type(c)(base_url=server.url, timeout=60) as c2:
        check_version(c2, base, m, 1)
        check_version(c2, base0, m0, 1, full=False)
        # allocation continues above everything allocated before the restart
        nxt = c2.post(f"{base}/nextlabel/2").json()
        assert nxt["start"] > max(new, cleaved, j["SplitSupervoxel"], j["RemainSupervoxel"])
