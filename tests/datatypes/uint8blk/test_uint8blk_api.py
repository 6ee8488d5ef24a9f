"""In-process tests of the uint8blk datatype (numpy oracles, every storage compression)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from datatypes.common import imagecodec
from datatypes.common.blockstream import decode_records
from datatypes.uint8blk import block_tkey, decode_block_tkey
from dvidpy.codec import split_frame

with warnings.catch_warnings():
    warnings.simplefilter("ignore")


COMPRESSIONS = ["lz4", "gzip", "none", "jpeg"]




def make(client, uuid: str, name: str, **settings: str) -> str:
    body = {"typename": "uint8blk", "dataname": name, **settings}
    r = client.post(f"/api/repo/{uuid}/instance", json=body)
    assert r.status_code == 200, r.text
    return f"/api/node/{uuid}/{name}"


def smooth(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Smooth-ish test volume (JPEG-friendly) with some noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    v = 120 + 60 * np.sin(x / 7.0) * np.cos(y / 9.0) + 30 * np.sin(z / 5.0)
    return np.clip(v + rng.normal(0, 2, shape), 0, 255).astype(np.uint8)


def raw_url(base: str, size, offset, fmt: str = "") -> str:
    s = "_".join(map(str, size))
    o = "_".join(map(str, offset))
    return f"{base}/raw/0_1_2/{s}/{o}" + (f"/{fmt}" if fmt else "")


def test_tkey_roundtrip() -> None:
    for c in [(0, 0, 0), (-1, 5, -7), (2**31 - 1, -(2**31), 3)]:
        assert decode_block_tkey(block_tkey(*c)) == c
    # ZYX order with negatives sorting first
    assert block_tkey(5, 0, -1) < block_tkey(0, 0, 0) < block_tkey(-3, 1, 0)


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_unaligned_write_read_roundtrip(client, repo, comp) -> None:
    base = make(client, repo, "g", compression=comp, blocksize="16,16,16", background="7")
    world = np.full((64, 64, 64), 7, dtype=np.uint8)  # world origin at (-24,-24,-24)
    org = np.array([-24, -24, -24])
    rng = np.random.default_rng(3)
    for i in range(4):
        size = rng.integers(5, 40, 3)
        off = rng.integers(-24, 40 - size.max(), 3)
        vol = smooth(tuple(size[::-1]), seed=i)
        r = client.post(raw_url(base, size, off), content=vol.tobytes())
        assert r.status_code == 200, r.text
        lo = off - org
        world[lo[2] : lo[2] + size[2], lo[1] : lo[1] + size[1], lo[0] : lo[0] + size[0]] = vol
    for _ in range(4):
        size = rng.integers(1, 50, 3)
        off = rng.integers(-24, 40 - size.max(), 3)
        r = client.get(raw_url(base, size, off))
        assert r.status_code == 200, r.text
        got = np.frombuffer(r.content, np.uint8).reshape(size[::-1])
        lo = off - org
        want = world[lo[2] : lo[2] + size[2], lo[1] : lo[1] + size[1], lo[0] : lo[0] + size[0]]
        if comp == "jpeg":
            assert np.abs(got.astype(int) - want).mean() < 4
        else:
            assert np.array_equal(got, want)
    # far away: all background
    r = client.get(raw_url(base, (3, 3, 3), (1000, 1000, -1000)))
    assert r.content == bytes([7]) * 27
    # "octet-stream" is DVID's name for the default 3-D format (intern asks for it)
    r = client.get(raw_url(base, size, off) + "/octet-stream")
    assert r.status_code == 200 and np.array_equal(
        np.frombuffer(r.content, np.uint8).reshape(size[::-1]), got)


def test_info_extents_and_post_extents(client, repo) -> None:
    base = make(client, repo, "g", blocksize="32,32,32", voxelsize="4,4,40")
    ext = client.get(f"{base}/info").json()
    assert ext["Extended"]["MinPoint"] is None and ext["Extended"]["VoxelSize"] == [4, 4, 40]
    vol = np.ones((3, 4, 5), np.uint8)
    assert client.post(raw_url(base, (5, 4, 3), (-40, 10, 70)), content=vol.tobytes()).is_success
    e = client.get(f"{base}/info").json()["Extended"]
    assert e["MinPoint"] == [-40, 10, 70] and e["MaxPoint"] == [-36, 13, 72]
    assert e["MinIndex"] == [-2, 0, 2] and e["MaxIndex"] == [-2, 0, 2]
    r = client.post(f"{base}/extents", json={"MinPoint": [0, 0, 0], "MaxPoint": [99, 99, 99]})
    assert r.status_code == 200
    assert client.get(f"{base}/info").json()["Extents"]["MaxPoint"] == [99, 99, 99]
    md = client.get(f"{base}/metadata")
    assert md.headers["content-type"].startswith("application/vnd.dvid-nd-data+json")
    assert md.json()["Axes"][2]["Resolution"] == 40
    for bad in [{"MinPoint": [0, 0]}, {"MinPoint": [5, 0, 0], "MaxPoint": [0, 0, 0]}, []]:
        assert client.post(f"{base}/extents", json=bad).status_code == 400


def test_slices_png_jpeg(client, repo) -> None:
    base = make(client, repo, "g", blocksize="16,16,16", voxelsize="8,8,16")
    vol = smooth((40, 50, 60))
    assert client.post(raw_url(base, (60, 50, 40), (0, 0, 0)), content=vol.tobytes()).is_success
    r = client.get(f"{base}/raw/0_1/30_20/5_6_7")
    assert r.headers["content-type"] == "image/png"
    assert np.array_equal(imagecodec.decode_png(r.content), vol[7, 6:26, 5:35])
    r = client.get(f"{base}/raw/xz/30_20/5_6_7/png")
    assert np.array_equal(imagecodec.decode_png(r.content), vol[7:27, 6, 5:35])
    r = client.get(f"{base}/raw/1_2/30_20/5_6_7")
    assert np.array_equal(imagecodec.decode_png(r.content), vol[7:27, 6:36, 5])
    r = client.get(f"{base}/raw/yz/30_20/5_6_7/jpg:95")
    assert r.headers["content-type"] == "image/jpeg"
    img = imagecodec.decode_jpeg(r.content)
    assert np.abs(img.astype(int) - vol[7:27, 6:36, 5]).mean() < 3
    # isotropic XZ: Z is 16 nm, X 8 nm -> rows doubled
    r = client.get(f"{base}/isotropic/0_2/30_10/0_0_0")
    img = imagecodec.decode_png(r.content)
    assert img.shape == (20, 30)
    assert np.array_equal(img[::2], vol[0:10, 0, 0:30])
    # 3-D JPEG: one image nx wide, ny*nz high
    r = client.get(raw_url(base, (16, 8, 4), (0, 0, 0), "jpeg"))
    img = imagecodec.decode_jpeg(r.content)
    assert img.shape == (32, 16)
    assert np.abs(img.astype(int) - vol[0:4, 0:8, 0:16].reshape(32, 16)).mean() < 4
    r = client.get(f"{base}/raw/0_1/30_20/5_6_7/tif")
    assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"


@pytest.mark.parametrize("comp", COMPRESSIONS)
def test_subvolblocks_and_specificblocks(app, client, repo, comp) -> None:
    base = make(client, repo, "g", compression=comp, blocksize="16,16,16")
    vol = smooth((32, 32, 48))
    assert client.post(raw_url(base, (48, 32, 32), (16, 0, -16)), content=vol.tobytes()).is_success
    r = client.get(f"{base}/subvolblocks/64_32_32/0_0_-16")
    assert r.status_code == 200
    recs = decode_records(r.content)
    # block x=0 is missing (omitted); 3 x 2 x 2 present, ZYX order
    assert [(x, y, z) for x, y, z, _ in recs] == [
        (x, y, z) for z in (-1, 0) for y in (0, 1) for x in (1, 2, 3)
    ]
    inst = app.state.manager.resolve(repo)[0].instances["g"]
    ctx = app.state.manager.context(inst, app.state.manager.resolve(repo)[1])
    for x, y, z, payload in recs:
        stored = inst.store.get(ctx, block_tkey(x, y, z))
        assert bytes(payload) == bytes(split_frame(stored)[1])  # byte-exact pass-through
        if comp == "jpeg":
            img = imagecodec.decode_jpeg(payload)
            assert img.shape == (16 * 16, 16)
    r = client.get(f"{base}/subvolblocks/32_32_32/16_0_-16?compression=uncompressed")
    recs = decode_records(r.content)
    assert len(recs) == 8
    for x, y, z, payload in recs:
        blk = np.frombuffer(payload, np.uint8).reshape(16, 16, 16)
        want = vol[(z + 1) * 16 : (z + 2) * 16, y * 16 : (y + 1) * 16, (x - 1) * 16 : x * 16]
        if comp == "jpeg":
            assert np.abs(blk.astype(int) - want).mean() < 4
        else:
            assert np.array_equal(blk, want)
    r = client.get(f"{base}/subvolblocks/32_32_32/16_0_-16?compression=jpeg")
    assert r.status_code == (200 if comp == "jpeg" else 400)
    r = client.get(f"{base}/specificblocks?blocks=3,1,0,0,0,0,1,0,-1&compression=uncompressed")
    recs = decode_records(r.content)
    assert [(x, y, z) for x, y, z, _ in recs] == [(3, 1, 0), (1, 0, -1)]
    assert client.get(f"{base}/specificblocks?blocks=1,0,-1&prefetch=true").content == b""
    # blocks GET: span of 4 from x=0 (x=0 missing -> background)
    r = client.get(f"{base}/blocks/0_0_0/4")
    arr = np.frombuffer(r.content, np.uint8).reshape(4, 16, 16, 16)
    assert (arr[0] == 0).all()
    want = vol[16:32, 0:16, 0:16]
    if comp != "jpeg":
        assert np.array_equal(arr[1], want)


def test_post_blocks_roundtrip(client, repo) -> None:
    base = make(client, repo, "g", blocksize="8,8,8", background="3")
    data = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 8), dtype=np.uint8)
    assert client.post(f"{base}/blocks/-1_2_3/3", content=data.tobytes()).is_success
    r = client.get(f"{base}/blocks/-2_2_3/5")
    arr = np.frombuffer(r.content, np.uint8).reshape(5, 8, 8, 8)
    assert (arr[0] == 3).all() and (arr[4] == 3).all()
    assert np.array_equal(arr[1:4], data)
    r = client.get(raw_url(base, (24, 8, 8), (-8, 16, 24)))
    assert np.array_equal(
        np.frombuffer(r.content, np.uint8).reshape(8, 8, 24), np.concatenate(list(data), axis=2)
    )


def test_roi_masking_and_attenuation(client, repo) -> None:
    base = make(client, repo, "g", blocksize="16,16,16")
    r = client.post(
        f"/api/repo/{repo}/instance",
        json={"typename": "roi", "dataname": "r", "BlockSize": "8,8,8"},
    )
    assert r.status_code == 200
    vol = np.full((16, 16, 32), 200, np.uint8)
    assert client.post(raw_url(base, (32, 16, 16), (0, 0, 0)), content=vol.tobytes()).is_success
    assert client.post(f"/api/node/{repo}/r/roi", json=[[0, 0, 1, 2], [1, 1, 0, 0]]).is_success
    mask = np.zeros((16, 16, 32), bool)
    mask[0:8, 0:8, 8:24] = True
    mask[8:16, 8:16, 0:8] = True
    r = client.get(raw_url(base, (32, 16, 16), (0, 0, 0)) + "?roi=r")
    got = np.frombuffer(r.content, np.uint8).reshape(16, 16, 32)
    assert np.array_equal(got, np.where(mask, 200, 0))
    r = client.get(raw_url(base, (32, 16, 16), (0, 0, 0)) + "?roi=r&attenuation=2")
    got = np.frombuffer(r.content, np.uint8).reshape(16, 16, 32)
    assert np.array_equal(got, np.where(mask, 200, 200 >> 2))
    r = client.get(f"{base}/raw/0_1/32_16/0_0_0?roi=r&attenuation=1")
    assert np.array_equal(imagecodec.decode_png(r.content), np.where(mask[0], 200, 100))
    assert client.get(raw_url(base, (4, 4, 4), (0, 0, 0)) + "?roi=nope").status_code == 400
    assert client.get(raw_url(base, (4, 4, 4), (0, 0, 0)) + "?roi=g").status_code == 400
    assert (
        client.get(raw_url(base, (4, 4, 4), (0, 0, 0)) + "?roi=r&attenuation=9").status_code == 400
    )
    # POST with roi= writes only voxels inside
    new = np.full((16, 16, 32), 9, np.uint8)
    r = client.post(raw_url(base, (32, 16, 16), (0, 0, 0)) + "?roi=r", content=new.tobytes())
    assert r.status_code == 200
    got = np.frombuffer(
        client.get(raw_url(base, (32, 16, 16), (0, 0, 0))).content, np.uint8
    ).reshape(16, 16, 32)
    assert np.array_equal(got, np.where(mask, 9, 200))


def test_concurrent_unaligned_writers_same_blocks(client, repo, monkeypatch) -> None:
    import time

    from datatypes.uint8blk import Uint8Blk

    orig = Uint8Blk.encode_block

    def slow_encode(self, block):  # widen the read-modify-write race window
        time.sleep(0.003)
        return orig(self, block)

    monkeypatch.setattr(Uint8Blk, "encode_block", slow_encode)
    base = make(client, repo, "g", blocksize="32,32,32")
    errors: list[str] = []

    def writer(i: int) -> None:
        vol = np.full((32, 32, 4), i + 1, np.uint8)  # 4-voxel x-slab inside shared blocks
        for _ in range(3):
            r = client.post(raw_url(base, (4, 32, 32), (4 * i, 0, 0)), content=vol.tobytes())
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = np.frombuffer(
        client.get(raw_url(base, (48, 32, 32), (0, 0, 0))).content, np.uint8
    ).reshape(32, 32, 48)
    want = np.repeat(np.arange(1, 13, dtype=np.uint8), 4)[None, None, :]
    assert np.array_equal(got, np.broadcast_to(want, got.shape))


def test_bad_inputs_write_nothing(client, repo) -> None:
    base = make(client, repo, "g", blocksize="16,16,16")
    good = raw_url(base, (16, 16, 16), (0, 0, 0))
    cases_post = [
        (good, b"\0" * 100),  # body too short
        (good, b"\0" * (4097 + 4096 * 0) * 2),  # body too long
        (raw_url(base, (0, 16, 16), (0, 0, 0)), b""),  # zero size
        (raw_url(base, (-16, 16, 16), (0, 0, 0)), b""),  # negative size
        (raw_url(base, (4096, 4096, 4096), (0, 0, 0)), b"\0"),  # absurd size
        (raw_url(base, (16, 16, 16), (0, 0, 0), "png"), b"\0" * 4096),  # format on POST
        (f"{base}/raw/0_1/16_16/0_0_0", b"\0" * 256),  # 2-D POST
        (f"{base}/isotropic/0_1_2/16_16_16/0_0_0", b"\0" * 4096),
        (raw_url(base, (16, 16, 16), ("a", 0, 0)), b"\0" * 4096),  # non-integer offset
        (raw_url(base, (16, 16, 16), (2**31 - 8, 0, 0)), b"\0" * 4096),  # past int32
        (f"{base}/blocks/0_0_0/2", b"\0" * 4096),  # wrong blocks length
        (f"{base}/blocks/0_0_0/0", b""),  # zero span
    ]
    for url, body in cases_post:
        r = client.post(url, content=body)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
        assert r.headers["content-type"].startswith("text/plain")
    r = client.post(raw_url(base, (4096, 4096, 4096), (0, 0, 0)), content=b"\0")
    assert r.status_code == 413
    assert client.get(f"{base}/info").json()["Extended"]["MinPoint"] is None
    assert client.get(f"{base}/subvolblocks/64_64_64/0_0_0").content == b""
    cases_get = [
        f"{base}/subvolblocks/20_16_16/0_0_0",  # unaligned size
        f"{base}/subvolblocks/16_16_16/8_0_0",  # unaligned offset
        f"{base}/subvolblocks/16_16_16/0_0_0?compression=lz4",
        f"{base}/specificblocks?blocks=1,2",  # not a multiple of 3
        f"{base}/specificblocks?blocks=1,2,x",
        f"{base}/raw/0_1/16_16/0_0_0/gif",  # unknown format
        f"{base}/raw/0_1/16_16/0_0_0/jpg:0",  # bad quality
        f"{base}/raw/0_1_2/16_16_16/0_0_0/png",  # 3-D png
        f"{base}/raw/0_3/16_16/0_0_0",  # bad dims
        f"{base}/raw/0_1_2/16_16/0_0_0",  # size with wrong arity
        f"{base}/raw/0_1_2/65536_65536_65536/0_0_0",  # absurd
        f"{base}/blocks/0_0/2",
        f"{base}/nosuchendpoint",
    ]
    for url in cases_get:
        r = client.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)
    bad_create = [
        {"blocksize": "0,16,16"},
        {"blocksize": "a,b,c"},
        {"background": "300"},
        {"voxelsize": "1,2"},
        {"compression": "jpeg:80"},
        {"compression": "zstd"},
        {"minpoint": "0,0,0"},
    ]
    for i, s in enumerate(bad_create):
        r = client.post(
            f"/api/repo/{repo}/instance", json={"typename": "uint8blk", "dataname": f"bad{i}", **s}
        )
        assert r.status_code == 400, (s, r.text)


def test_locked_node_and_versions(client, repo) -> None:
    base = make(client, repo, "g", blocksize="16,16,16")
    v1 = np.full((16, 16, 16), 1, np.uint8)
    assert client.post(raw_url(base, (16, 16, 16), (0, 0, 0)), content=v1.tobytes()).is_success
    assert client.post(f"/api/node/{repo}/commit", json={"note": "x"}).is_success
    r = client.post(raw_url(base, (16, 16, 16), (0, 0, 0)), content=v1.tobytes())
    assert r.status_code == 400
    r = client.post(f"{base}/downres")
    assert r.status_code == 400
    child = client.post(f"/api/node/{repo}/newversion", json={}).json()["child"]
    cbase = f"/api/node/{child}/g"
    v2 = np.full((8, 8, 8), 2, np.uint8)
    assert client.post(raw_url(cbase, (8, 8, 8), (4, 4, 4)), content=v2.tobytes()).is_success
    old = np.frombuffer(client.get(raw_url(base, (16, 16, 16), (0, 0, 0))).content, np.uint8)
    new = np.frombuffer(client.get(raw_url(cbase, (16, 16, 16), (0, 0, 0))).content, np.uint8)
    assert (old == 1).all()
    assert (new == 2).sum() == 512 and (new == 1).sum() == 4096 - 512
