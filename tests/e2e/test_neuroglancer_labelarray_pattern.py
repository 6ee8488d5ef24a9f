"""Contract test: neuroglancer's ``dvid://`` requests against labelarray (read like labelmap,
with scales) and labelblk (compressed segmentation without scales), decoded the way it
decodes them (see test_neuroglancer_pattern.py; the ``compressed_segmentation`` package is
the independent decoder)."""

from __future__ import annotations

import gzip

import compressed_segmentation as cseg
import numpy as np


def test_neuroglancer_labelarray_and_labelblk(client) -> None:
    c = client
    root = c.post("/api/repos", json={"alias": "ng-old"}).json()["root"]
    assert c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelarray", "dataname": "seg", "BlockSize": "64,64,64",
        "MaxDownresLevel": "2"}).status_code == 200
    assert c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelblk", "dataname": "blk", "BlockSize": "64,64,64"}).status_code == 200
    z, y, x = np.mgrid[0:128, 0:128, 0:128]
    seg = ((x // 20) + 100 * (y // 30) + 10_000 * (z // 40) + (1 << 40)).astype(np.uint64)
    for name in ("seg", "blk"):
        assert c.post(f"/api/node/{root}/{name}/raw/0_1_2/128_128_128/0_0_0",
                      content=seg.tobytes()).status_code == 200

    inst = c.get("/api/repos/info").json()[root]["DataInstances"]
    for name, typename in (("seg", "labelarray"), ("blk", "labelblk")):
        assert inst[name]["Base"]["TypeName"] == typename
        ext = inst[name]["Extended"]
        assert ext["Values"][0]["DataType"] == "uint64"
        for k in ("VoxelSize", "BlockSize", "MinPoint", "MaxPoint"):
            assert isinstance(ext[k], list) and len(ext[k]) == 3, (name, k, ext[k])
        assert ext["MinPoint"] == [0, 0, 0] and ext["MaxPoint"] == [127, 127, 127]
    assert inst["seg"]["Extended"]["MaxDownresLevel"] >= 1
    assert inst["blk"]["Extended"]["MaxDownresLevel"] == 0

    def chunk(name: str, scale: int, off: str) -> np.ndarray:
        r = c.get(f"/api/node/{root}/{name}/raw/0_1_2/64_64_64/{off}",
                  params={"compression": "googlegzip", "scale": scale},
                  headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip", r.text
        raw = gzip.decompress(r.content) if r.content[:2] == b"\x1f\x8b" else r.content
        return cseg.decompress(raw, (64, 64, 64), np.uint64, order="F").T  # xyz -> zyx

    for name in ("seg", "blk"):
        assert np.array_equal(chunk(name, 0, "0_0_0"), seg[:64, :64, :64])
        assert np.array_equal(chunk(name, 0, "64_0_64"), seg[64:, :64, 64:])
    assert np.array_equal(chunk("seg", 1, "0_0_0"), seg[::2, ::2, ::2])
    r = c.get(f"/api/node/{root}/blk/raw/0_1_2/64_64_64/0_0_0", params={"scale": 1})
    assert r.status_code == 400  # labelblk has no scales
