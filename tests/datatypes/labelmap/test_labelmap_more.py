"""In-process checks of the labelmap spatial TKey hook and the PNG/pseudocolor encoders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from datatypes.labelmap import layout as L
from datatypes.labelmap.images import encode_png_rgba, label_colors, pseudocolor
from dvidpy.config import Settings
from dvidpy.keys import tkey
from dvidpy.repo import RepoManager
from server import create_app


def test_tkey_voxel_box() -> None:
    mgr = RepoManager(Settings.memory())
    c = TestClient(create_app(manager=mgr))
    root = c.post("/api/repos", json={}).json()["root"]
    r = c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": "32,16,64",
        "MaxDownresLevel": "3"})
    assert r.status_code == 200
    inst = mgr.resolve(root)[0].instances["seg"]
    f = inst.tkey_voxel_box
    assert f(L.block_tkey(0, 1, 2, 3)) == ((32, 32, 192), (64, 48, 256))
    assert f(L.block_tkey(0, -1, 0, -2)) == ((-32, 0, -128), (0, 16, -64))
    assert f(L.block_tkey(2, 1, -1, 0)) == ((128, -64, 0), (256, 0, 256))
    for tk in (L.index_tkey(5), L.mapping_tkey(7), L.counter_tkey("nextlabel"),
               L.mutlog_tkey(1, 2), tkey(1, b"extents\x00"), tkey(L.MAXLABEL_CLASS, b""),
               L.block_tkey(0, 0, 0, 0)[:-1]):
        assert f(tk) is None


def test_png_encoders() -> None:
    labels = np.array([[0, 1, 2**63 + 5], [7, 7, 0]], dtype=np.uint64)
    png = encode_png_rgba(pseudocolor(labels), 8)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    assert np.array_equal(img, label_colors(labels))
    assert (img[labels == 0] == 0).all() and (img[labels != 0][:, 3] == 255).all()
    assert np.array_equal(img[1, 0], img[1, 1])
    assert not np.array_equal(img[0, 1], img[1, 0])
    # 16-bit: Pillow reads the PNG; its size and the high byte of R (= label byte 0) match
    pix = labels.astype("<u8").view(np.uint8).reshape(2, 24)
    im16 = Image.open(io.BytesIO(encode_png_rgba(pix, 16)))
    assert im16.size == (3, 2)
    with pytest.raises(ValueError):
        encode_png_rgba(pix[:, :23], 16)
    with pytest.raises(ValueError):
        encode_png_rgba(pix, 12)
    with pytest.raises(ValueError):
        encode_png_rgba(pix.reshape(-1), 8)


def test_decode_block_mask_matches_isin() -> None:
    import struct

    from datatypes.labelmap.block_codec import decode_block, decode_block_mask, encode_block

    rng = np.random.default_rng(0)
    for t in range(200):
        shape = tuple(int(x) for x in rng.choice([8, 16, 32], 3))
        k = int(rng.integers(1, 600))
        a = rng.integers(0, k, size=shape).astype(np.uint64)
        if t % 3 == 0:
            a[:] = rng.integers(0, 3)
        if t % 7 == 2:
            a = a // np.uint64(max(1, k // 3))
        enc = encode_block(a)
        want = np.unique(rng.choice(np.unique(a), size=int(rng.integers(0, 5))))
        if t % 4 == 0:
            want = np.append(want, np.uint64(0))
        assert np.array_equal(decode_block_mask(enc, want), np.isin(a, want)), t
    # hand-made block (gx=2): sub-block 0 mixes labels 5/7, sub-block 1 has Ns = 0
    vals = rng.integers(0, 2, 512).astype(np.uint8)
    blk = (struct.pack("<IIII", 2, 1, 1, 2) + struct.pack("<QQ", 5, 7)
           + struct.pack("<HH", 2, 0) + struct.pack("<II", 0, 1) + np.packbits(vals).tobytes())
    full = decode_block(blk)
    for want in ([5], [7], [0], [0, 7], [9], []):
        w = np.array(want, dtype=np.uint64)
        assert np.array_equal(decode_block_mask(blk, w), np.isin(full, w)), want
    with pytest.raises(ValueError):
        decode_block_mask(blk, np.array([5], np.uint64), (8, 8, 8))
    with pytest.raises(ValueError):
        decode_block_mask(blk[:30], np.array([5], np.uint64))
