"""End-to-end uint8blk tests against a real ``dvidpy serve`` process on LevelDB."""

from __future__ import annotations

import subprocess
import sys

import httpx
import numpy as np
import pytest

from datatypes.common import imagecodec
from datatypes.common.blockstream import decode_records
from datatypes.common.downsample import downsample_mean2_reference

pytestmark = pytest.mark.e2e

N = 256


def volume() -> np.ndarray:
    rng = np.random.default_rng(42)
    z, y, x = np.meshgrid(*(np.arange(N),) * 3, indexing="ij", sparse=True)
    v = 128 + 50 * np.sin(x / 11.0) * np.cos(y / 13.0) + 40 * np.cos(z / 17.0)
    return np.clip(v + rng.normal(0, 3, (N, N, N)), 0, 255).astype(np.uint8)


def post_raw(c: httpx.Client, base: str, vol: np.ndarray, off) -> None:
    nz, ny, nx = vol.shape
    r = c.post(f"{base}/raw/0_1_2/{nx}_{ny}_{nz}/{off[0]}_{off[1]}_{off[2]}",
               content=np.ascontiguousarray(vol).tobytes())
    assert r.status_code == 200, r.text


def get_raw(c: httpx.Client, base: str, size, off) -> np.ndarray:
    r = c.get(f"{base}/raw/0_1_2/{size[0]}_{size[1]}_{size[2]}/{off[0]}_{off[1]}_{off[2]}")
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, np.uint8).reshape(size[2], size[1], size[0])


def write_unaligned(c: httpx.Client, base: str, vol: np.ndarray) -> None:
    """Cover [0,256)^3 with 8 unaligned pieces split at 100/77/150."""
    cuts = {0: [0, 100, N], 1: [0, 77, N], 2: [0, 150, N]}
    for iz in range(2):
        for iy in range(2):
            for ix in range(2):
                x0, x1 = cuts[0][ix], cuts[0][ix + 1]
                y0, y1 = cuts[1][iy], cuts[1][iy + 1]
                z0, z1 = cuts[2][iz], cuts[2][iz + 1]
                post_raw(c, base, vol[z0:z1, y0:y1, x0:x1], (x0, y0, z0))


def test_uint8blk_volume_versions_pyramid_restart(server, client) -> None:
    c = client
    uuid = c.post("/api/repos", json={"alias": "e2e"}).json()["root"]
    for name, comp in (("grayscale", "lz4"), ("gjpeg", "jpeg")):
        r = c.post(f"/api/repo/{uuid}/instance",
                   json={"typename": "uint8blk", "dataname": name, "Compression": comp,
                         "BlockSize": "32,32,32"})
        assert r.status_code == 200, r.text
    g, gj = f"/api/node/{uuid}/grayscale", f"/api/node/{uuid}/gjpeg"
    vol = volume()
    write_unaligned(c, g, vol)
    write_unaligned(c, gj, vol)
    info = c.get(f"{g}/info").json()
    assert info["Extended"]["MinPoint"] == [0, 0, 0]
    assert info["Extended"]["MaxPoint"] == [255, 255, 255]
    assert "jpeg" in c.get(f"{gj}/info").json()["Base"]["Compression"]

    # arbitrary boxes, incl. outside the written region (background 0)
    for size, off in [((N, N, N), (0, 0, 0)), ((37, 91, 13), (200, 3, 101)),
                      ((40, 40, 40), (-20, 230, -5))]:
        got = get_raw(c, g, size, off)
        want = np.zeros(size[::-1], np.uint8)
        lo = np.maximum(off, 0)
        hi = np.minimum(np.add(off, size), N)
        if (hi > lo).all():
            want[lo[2] - off[2]:hi[2] - off[2], lo[1] - off[1]:hi[1] - off[1],
                 lo[0] - off[0]:hi[0] - off[0]] = vol[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
        assert np.array_equal(got, want)
        gotj = get_raw(c, gj, size, off)
        assert np.abs(gotj.astype(int) - want).mean() < 3

    # slices
    r = c.get(f"{g}/raw/xy/100_60/10_20_30")
    assert np.array_equal(imagecodec.decode_png(r.content), vol[30, 20:80, 10:110])
    r = c.get(f"{g}/raw/0_2/100_60/10_20_30/jpg:90")
    assert np.abs(imagecodec.decode_jpeg(r.content).astype(int)
                  - vol[30:90, 20, 10:110]).mean() < 3
    r = c.get(f"{g}/raw/1_2/100_60/10_20_30/png")
    assert np.array_equal(imagecodec.decode_png(r.content), vol[30:90, 20:120, 10])
    r = c.get(f"{g}/raw/0_1_2/32_32_8/64_64_64/jpg")
    assert np.abs(imagecodec.decode_jpeg(r.content).astype(int)
                  - vol[64:72, 64:96, 64:96].reshape(256, 32)).mean() < 3

    # blocks: neuroglancer's one-block JPEG call, specificblocks, blocks spans
    r = c.get(f"{gj}/subvolblocks/32_32_32/64_32_96")
    img = imagecodec.decode_jpeg(r.content[16:])
    assert img.shape == (32 * 32, 32)
    assert np.abs(img.reshape(32, 32, 32).astype(int) - vol[96:128, 32:64, 64:96]).mean() < 3
    r = c.get(f"{g}/specificblocks?blocks=1,2,3,7,7,7,9,9,9&compression=uncompressed")
    recs = decode_records(r.content)
    assert [(x, y, z) for x, y, z, _ in recs] == [(1, 2, 3), (7, 7, 7)]
    assert np.array_equal(np.frombuffer(recs[0].payload, np.uint8).reshape(32, 32, 32),
                          vol[96:128, 64:96, 32:64])
    r = c.get(f"{g}/blocks/6_0_0/3")
    arr = np.frombuffer(r.content, np.uint8).reshape(3, 32, 32, 32)
    assert np.array_equal(arr[0], vol[0:32, 0:32, 192:224]) and (arr[2] == 0).all()

    # pyramid via the CLI (HTTP + progress), then compare with numpy means
    cli = [sys.executable, "-m", "dvidpy.cli", "downsample", server.url, uuid, "grayscale",
           "--quiet", "--poll", "0.05"]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lvl = vol
    for k in (1, 2, 3):
        lvl = downsample_mean2_reference(lvl)
        n = N >> k
        got = get_raw(c, f"/api/node/{uuid}/grayscale_{k}", (n, n, n), (0, 0, 0))
        assert np.array_equal(got, lvl), k
        e = c.get(f"/api/node/{uuid}/grayscale_{k}/info").json()["Extended"]
        assert e["MaxPoint"] == [n - 1] * 3 and e["VoxelSize"] == [8 * 2**k] * 3
    st = c.get(f"{g}/downres-status").json()
    assert st["State"] == "done" and st["DirtyBlocks"] == 0

    # incremental: touch one region, only its ancestors are recomputed
    patch = np.full((10, 10, 10), 3, np.uint8)
    post_raw(c, g, patch, (5, 5, 5))
    vol2 = vol.copy()
    vol2[5:15, 5:15, 5:15] = 3
    assert c.get(f"{g}/downres-status").json()["DirtyBlocks"] == 1
    r = c.post(f"{g}/downres?wait=true")
    assert r.status_code == 200 and r.json()["BlocksTotal"] == r.json()["Levels"]
    got = get_raw(c, f"/api/node/{uuid}/grayscale_1", (128, 128, 128), (0, 0, 0))
    assert np.array_equal(got, downsample_mean2_reference(vol2))

    # versions: commit, branch, overwrite in the child; the parent keeps old voxels
    assert c.post(f"/api/node/{uuid}/commit", json={"note": "v1"}).status_code == 200
    assert c.post(f"{g}/raw/0_1_2/32_32_32/0_0_0", content=b"\0" * 32768).status_code == 400
    child = c.post(f"/api/node/{uuid}/branch", json={"branch": "edit"}).json()["child"]
    cg = f"/api/node/{child}/grayscale"
    post_raw(c, cg, np.full((20, 30, 40), 255, np.uint8), (100, 110, 120))
    got_child = get_raw(c, cg, (64, 64, 64), (96, 96, 96))
    want_child = vol2[96:160, 96:160, 96:160].copy()
    want_child[24:44, 14:44, 4:44] = 255
    assert np.array_equal(got_child, want_child)
    assert np.array_equal(get_raw(c, g, (64, 64, 64), (96, 96, 96)), vol2[96:160, 96:160, 96:160])

    # restart keeps everything
    server.restart()
    with httpx.Client(base_url=server.url, timeout=60) as c2:
        assert np.array_equal(get_raw(c2, g, (N, N, N), (0, 0, 0)), vol2)
        assert np.array_equal(get_raw(c2, cg, (64, 64, 64), (96, 96, 96)), want_child)
        got = get_raw(c2, f"/api/node/{uuid}/grayscale_2", (64, 64, 64), (0, 0, 0))
        assert np.array_equal(got, downsample_mean2_reference(downsample_mean2_reference(vol2)))
        assert c2.get(f"{g}/info").json()["Extended"]["MaxPoint"] == [255, 255, 255]


def test_uint8blk_bad_inputs_e2e(client) -> None:
    c = client
    uuid = c.post("/api/repos", json={}).json()["root"]
    assert c.post(f"/api/repo/{uuid}/instance",
                  json={"typename": "uint8blk", "dataname": "g"}).status_code == 200
    g = f"/api/node/{uuid}/g"
    bad = [
        ("POST", f"{g}/raw/0_1_2/32_32_32/0_0_0", b"\0" * 1000),
        ("POST", f"{g}/raw/0_1_2/0_32_32/0_0_0", b""),
        ("POST", f"{g}/raw/0_1_2/-32_32_32/0_0_0", b""),
        ("POST", f"{g}/raw/0_1_2/100000_100000_100000/0_0_0", b"\0"),
        ("GET", f"{g}/raw/0_1_2/100000_100000_100000/0_0_0", b""),
        ("GET", f"{g}/raw/0_1/32_32/0_0_0/webp", b""),
        ("GET", f"{g}/subvolblocks/33_32_32/0_0_0", b""),
        ("GET", f"{g}/specificblocks?blocks=1,2,3,4", b""),
        ("POST", f"{g}/blocks/0_0_0/1", b"\0" * 10),
    ]
    for method, url, body in bad:
        r = c.request(method, url, content=body)
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
    assert c.get(f"{g}/info").json()["Extended"]["MaxPoint"] is None
