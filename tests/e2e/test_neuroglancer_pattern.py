"""Contract test: the requests neuroglancer's ``dvid://`` datasource makes, decoded the way
it decodes them (dvid-api.md §5.2, §8.1, §8.6, §9.3, §9.5, §19 items 21-22).

Neuroglancer lists ``/api/repos/info``, reads each instance's ``Extended`` metadata from
it, fetches grayscale one block per request with ``subvolblocks`` and decodes
``body[16:]`` as one JPEG of width bx and height by·bz, and fetches segmentation as
``raw/0_1_2/64_64_64/{x}_{y}_{z}?compression=googlegzip&scale=N``. Independent decoders
(Pillow, the ``compressed_segmentation`` package) check the bytes.
"""

from __future__ import annotations

import gzip
import io

import compressed_segmentation as cseg
import numpy as np
from PIL import Image


def test_neuroglancer_grayscale_and_segmentation(client) -> None:
    c = client
    root = c.post("/api/repos", json={"alias": "ng"}).json()["root"]
    assert c.post(f"/api/repo/{root}/instance", json={
        "typename": "uint8blk", "dataname": "grayscale", "BlockSize": "64,64,64",
        "Compression": "jpeg", "VoxelSize": "8,8,8"}).status_code == 200
    assert c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": "segmentation", "BlockSize": "64,64,64",
        "MaxDownresLevel": "2"}).status_code == 200
    z, y, x = np.mgrid[0:128, 0:128, 0:128]
    gray = ((x + 2 * y + 3 * z) % 256).astype(np.uint8)
    assert c.post(f"/api/node/{root}/grayscale/raw/0_1_2/128_128_128/0_0_0",
                  content=gray.tobytes()).status_code == 200
    seg = ((x // 20) + 100 * (y // 30) + 10_000 * (z // 40) + (1 << 40)).astype(np.uint64)
    assert c.post(f"/api/node/{root}/segmentation/raw/0_1_2/128_128_128/0_0_0",
                  content=seg.tobytes()).status_code == 200

    repos = c.get("/api/repos/info").json()
    inst = repos[root]["DataInstances"]
    g_ext, s_ext = inst["grayscale"]["Extended"], inst["segmentation"]["Extended"]
    assert "jpeg" in inst["grayscale"]["Base"]["Compression"]
    assert g_ext["Values"][0]["DataType"] == "uint8"
    assert s_ext["Values"][0]["DataType"] == "uint64"
    for ext in (g_ext, s_ext):
        for k in ("VoxelSize", "BlockSize", "MinPoint", "MaxPoint"):
            assert isinstance(ext[k], list) and len(ext[k]) == 3, (k, ext[k])
        assert ext["MinPoint"] == [0, 0, 0] and ext["MaxPoint"] == [127, 127, 127]
    assert s_ext["MaxDownresLevel"] >= 1  # neuroglancer rejects 0

    # grayscale: one block per request, body[16:] is a JPEG of 64 x (64*64)
    r = c.get(f"/api/node/{root}/grayscale/subvolblocks/64_64_64/64_0_64")
    assert r.status_code == 200
    hdr = np.frombuffer(r.content[:16], "<i4")
    assert hdr[:3].tolist() == [1, 0, 1] and hdr[3] == len(r.content) - 16
    img = Image.open(io.BytesIO(r.content[16:]))
    assert img.format == "JPEG" and img.mode == "L" and img.size == (64, 64 * 64)
    got = np.asarray(img).reshape(64, 64, 64)
    want = gray[64:128, 0:64, 64:128]
    assert np.abs(got.astype(int) - want).mean() < 3

    # segmentation: googlegzip chunks at every scale, decoded independently
    for scale in (0, 1):
        r = c.get(f"/api/node/{root}/segmentation/raw/0_1_2/64_64_64/0_0_0",
                  params={"compression": "googlegzip", "scale": scale},
                  headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        raw = gzip.decompress(r.content) if r.content[:2] == b"\x1f\x8b" else r.content
        vol = cseg.decompress(raw, (64, 64, 64), np.uint64, order="F").T  # xyz -> zyx
        if scale == 0:
            assert np.array_equal(vol, seg[:64, :64, :64])
        else:
            # the scale-1 chunk at the origin covers scale-0 voxels 0..127
            # (label boundaries fall on even coordinates, so the 2x2x2 mode is a stride)
            assert np.array_equal(vol, seg[::2, ::2, ::2])
