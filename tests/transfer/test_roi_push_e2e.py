"""ROI-filtered push (``dvidpy push --roi``) between real server processes.

Layout: a uint8blk volume of 4x4x4 blocks of 16^3 voxels, an roi with 32^3 blocks (so one
ROI block covers 2x2x2 volume blocks), a keyvalue. The ROI holds ROI blocks (0,0,0) and
(1,1,1): volume blocks whose coordinates all lie in {0,1} or all in {2,3} (16 of 64).
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import numpy as np
import pytest

from tests.transfer.test_transfer_e2e import cli, job, ok

pytestmark = pytest.mark.e2e
N = 64  # volume edge in voxels
BS = 16  # volume block edge
ROI_SPANS = [[0, 0, 0, 0], [1, 1, 1, 1]]  # z, y, x0, x1 in 32^3 ROI blocks
ALL_BLOCKS = list(itertools.product(range(N // BS), repeat=3))  # (x, y, z)


def inside(b: tuple[int, int, int]) -> bool:
    """Volume block (x, y, z) touches the ROI."""
    rb = tuple(c * BS // 32 for c in b)
    return rb in {(0, 0, 0), (1, 1, 1)}


def build(c: httpx.Client) -> dict[str, str]:
    """root (committed) -> v1 (committed): gray, region, kv."""
    rng = np.random.default_rng(7)
    root = ok(c.post("/api/repos", json={"alias": "roi-src"})).json()["root"]
    ok(c.post(f"/api/repo/{root}/instance", json={
        "typename": "uint8blk", "dataname": "gray", "BlockSize": f"{BS},{BS},{BS}",
        "VoxelSize": "4,4,40"}))
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "roi", "dataname": "region"}))
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"}))
    vol = rng.integers(1, 256, size=(N, N, N), dtype=np.uint8)
    ok(c.post(f"/api/node/{root}/gray/raw/0_1_2/{N}_{N}_{N}/0_0_0", content=vol.tobytes()))
    ok(c.post(f"/api/node/{root}/region/roi", json=ROI_SPANS))
    for i in range(5):
        ok(c.post(f"/api/node/{root}/kv/key/k{i}", content=b"v%d" % i))
    ok(c.post(f"/api/node/{root}/commit", json={"note": "root"}))
    v1 = ok(c.post(f"/api/node/{root}/newversion", json={})).json()["child"]
    blk = rng.integers(1, 256, size=(BS, BS, BS), dtype=np.uint8)
    # block (3,3,3) is inside the ROI, block (0,3,0) outside
    ok(c.post(f"/api/node/{v1}/gray/raw/0_1_2/{BS}_{BS}_{BS}/48_48_48", content=blk.tobytes()))
    ok(c.post(f"/api/node/{v1}/gray/raw/0_1_2/{BS}_{BS}_{BS}/0_48_0",
              content=(255 - blk).tobytes()))
    ok(c.post(f"/api/node/{v1}/kv/key/k1", content=b"changed"))
    ok(c.post(f"/api/node/{v1}/commit", json={}))
    return {"root": root, "v1": v1}


def volume(c: httpx.Client, uuid: str) -> np.ndarray:
    raw = ok(c.get(f"/api/node/{uuid}/gray/raw/0_1_2/{N}_{N}_{N}/0_0_0")).content
    return np.frombuffer(raw, dtype=np.uint8).reshape(N, N, N)


def stored_blocks(c: httpx.Client, uuid: str) -> set[tuple[int, int, int]]:
    """Block coordinates present in ``subvolblocks`` over the whole volume."""
    from datatypes.common.blockstream import iter_records

    raw = ok(c.get(f"/api/node/{uuid}/gray/subvolblocks/{N}_{N}_{N}/0_0_0",
                   params={"compression": "uncompressed"})).content
    return {(r.x, r.y, r.z) for r in iter_records(raw)}


def others(c: httpx.Client, uuid: str) -> dict[str, Any]:
    keys = ok(c.get(f"/api/node/{uuid}/kv/keys")).json()
    return {"kv": {k: ok(c.get(f"/api/node/{uuid}/kv/key/{k}")).content for k in keys},
            "roi": ok(c.get(f"/api/node/{uuid}/region/roi")).json(),
            "info": ok(c.get(f"/api/node/{uuid}/gray/info")).json()["Extended"]}


def check_roi_copy(a: httpx.Client, b: httpx.Client, uuid: str) -> None:
    """Blocks touching the ROI read identically, others read as Background (0)."""
    va, vb = volume(a, uuid), volume(b, uuid)
    for x, y, z in ALL_BLOCKS:
        sl = np.s_[z * BS:(z + 1) * BS, y * BS:(y + 1) * BS, x * BS:(x + 1) * BS]
        if inside((x, y, z)):
            assert np.array_equal(va[sl], vb[sl]), (uuid, x, y, z)
        else:
            assert not vb[sl].any(), (uuid, x, y, z)
    assert stored_blocks(b, uuid) == {blk for blk in ALL_BLOCKS if inside(blk)}
    assert others(a, uuid) == others(b, uuid)


def test_roi_push_then_full_push_completes(make_server) -> None:
    src, dst, flat = make_server("leveldb"), make_server("rocksdb"), make_server("leveldb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b, \
            httpx.Client(base_url=flat.url, timeout=60) as f:
        v = build(a)
        root, v1 = v["root"], v["v1"]
        # bad input: refused at once, nothing staged or published on the receiver
        r = cli("push", src.url, root, dst.url, "--roi", "kv")
        assert r.returncode == 1 and "no roi instance named 'kv'" in r.stderr, r.stderr
        for body, msg in (({"uuid": root, "dst": dst.url, "roi": "nope"}, "no roi instance"),
                          ({"uuid": root, "dst": dst.url, "roi": 7}, "'roi' must be"),
                          ({"uuid": root, "dst": dst.url, "roi": "region",
                            "data": ["nope"]}, "no data instance")):
            resp = a.post("/api/transfer/push", json=body)
            assert resp.status_code == 400 and msg in resp.text, resp.text
        assert b.get("/api/repos/info").json() == {}
        assert b.get(f"/api/transfer/receive/{root}").status_code == 404
        assert b.get(f"/api/transfer/missing/{root}").status_code == 400

        # ROI push of the whole DAG
        r = cli("push", src.url, root, dst.url, "--roi", "region")
        assert r.returncode == 0, r.stderr
        for u in (root, v1):
            check_roi_copy(a, b, u)
        assert ok(b.get(f"/api/transfer/missing/{root}")).json() == {"gray": sorted([root, v1])}
        # the same ROI push again re-sends only the ROI part of gray (still incomplete)
        part = ok(a.post("/api/transfer/count", json={
            "uuid": root, "instance": "gray", "versions": [root, v1],
            "roi": "region"})).json()["records"]
        st = job(a, "push", uuid=root, dst=dst.url, roi="region")
        assert st["state"] == "done" and st["records"] == part, (st, part)
        check_roi_copy(a, b, v1)

        # a full push completes exactly the ROI-filtered instance, nothing else
        want = ok(a.post("/api/transfer/count", json={
            "uuid": root, "instance": "gray", "versions": [root, v1]})).json()["records"]
        st = job(a, "push", uuid=root, dst=dst.url)
        assert st["state"] == "done" and st["records"] == want, (st, want)
        for u in (root, v1):
            assert np.array_equal(volume(a, u), volume(b, u)), u
            assert stored_blocks(b, u) == set(ALL_BLOCKS)
            assert others(a, u) == others(b, u)
        assert ok(b.get(f"/api/transfer/missing/{root}")).json() == {}
        for roi in (None, "region"):  # complete now: neither push moves anything
            st = job(a, "push", uuid=root, dst=dst.url, roi=roi)
            assert st["state"] == "done" and st["bytes"] == 0, st
        assert ok(b.get(f"/api/transfer/missing/{root}")).json() == {}

        # flattened + ROI: one version, same rule
        r = cli("push", src.url, v1, flat.url, "--flatten", "--roi", "region")
        assert r.returncode == 0, r.stderr
        check_roi_copy(a, f, v1)
        assert ok(f.get(f"/api/transfer/missing/{v1}")).json() == {"gray": [v1]}
