"""uint8blk ``GET arb/{tl}/{tr}/{bl}/{res}[/{format}]`` against a scalar oracle of DVID's
``datatype/imageblk/arb_image.go`` (sample by repeated addition, trilinear interpolation of
the floor/ceil lattice voxels in physical units, ``floor(v + 0.5)``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from datatypes.common import arbslice, imagecodec
from dvidpy.config import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from server import create_app

BG = 7
ORIGIN = (-8, 4, -16)  # voxel x, y, z of world[0, 0, 0]
SHAPE = (40, 44, 48)  # world (nz, ny, nx)


# ----- the oracle -----------------------------------------------------------------------


def dvid_arb(world: np.ndarray, origin, background: int, voxel_size, tl, tr, bl, res):
    """Pixel-by-pixel transcription of DVID's arb algorithm (Python floats = Go float64)."""
    vs = [float(np.float32(v)) for v in voxel_size]

    def dist(a, b):
        dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
        return math.sqrt(dx * dx + dy * dy + dz * dz)

    nx = math.floor(dist(tr, tl) / res)
    ny = math.floor(dist(bl, tl) / res)
    ix = [(tr[i] - tl[i]) / nx for i in range(3)] if nx else [0.0] * 3
    iy = [(bl[i] - tl[i]) / ny for i in range(3)] if ny else [0.0] * 3

    def voxel(x, y, z):
        i, j, k = z - origin[2], y - origin[1], x - origin[0]
        if 0 <= i < world.shape[0] and 0 <= j < world.shape[1] and 0 <= k < world.shape[2]:
            return int(world[i, j, k])
        return background

    def value(pt):
        lo, hi, d = [], [], []
        for a in range(3):
            vc = pt[a] / vs[a]
            f0, f1 = math.floor(vc), math.ceil(vc)
            lo.append(f0)
            hi.append(f1)
            d.append((pt[a] - f0 * vs[a]) / (f1 * vs[a] - f0 * vs[a]) if f0 != f1 else 0.0)
        c = [voxel(hi[0] if k & 1 else lo[0], hi[1] if k & 2 else lo[1],
                   hi[2] if k & 4 else lo[2]) for k in range(8)]
        xd, yd, zd = d
        c00 = c[0] * (1.0 - xd) + c[1] * xd
        c10 = c[2] * (1.0 - xd) + c[3] * xd
        c01 = c[4] * (1.0 - xd) + c[5] * xd
        c11 = c[6] * (1.0 - xd) + c[7] * xd
        c0 = c00 * (1.0 - yd) + c10 * yd
        c1 = c01 * (1.0 - yd) + c11 * yd
        return min(255, math.floor(c0 * (1 - zd) + c1 * zd + 0.5))

    out = np.zeros((ny + 1, nx + 1), dtype=np.uint8)
    left = list(tl)
    for y in range(ny + 1):
        cur = list(left)
        for x in range(nx + 1):
            out[y, x] = value(cur)
            cur = [cur[i] + ix[i] for i in range(3)]
        left = [left[i] + iy[i] for i in range(3)]
    return out


# ----- fixtures -------------------------------------------------------------------------




@pytest.fixture
def world() -> np.ndarray:
    rng = np.random.default_rng(11)
    z, y, x = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    v = 120 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0) + 40 * np.sin(z / 4.0)
    return np.clip(v + rng.normal(0, 20, SHAPE), 0, 255).astype(np.uint8)


def make(client, uuid: str, name: str, world: np.ndarray, **settings: str) -> str:
    body = {"typename": "uint8blk", "dataname": name, "blocksize": "16,16,16",
            "background": str(BG), **settings}
    r = client.post(f"/api/repo/{uuid}/instance", json=body)
    assert r.status_code == 200, r.text
    base = f"/api/node/{uuid}/{name}"
    nz, ny, nx = world.shape
    o = "_".join(map(str, ORIGIN))
    r = client.post(f"{base}/raw/0_1_2/{nx}_{ny}_{nz}/{o}", content=world.tobytes())
    assert r.status_code == 200, r.text
    return base


def pt(p) -> str:
    return "_".join(repr(float(v)) for v in p)


def arb(client, base, tl, tr, bl, res, fmt: str = ""):
    url = f"{base}/arb/{pt(tl)}/{pt(tr)}/{pt(bl)}/{res!r}" + (f"/{fmt}" if fmt else "")
    return client.get(url)


def arb_png(client, base, tl, tr, bl, res) -> np.ndarray:
    r = arb(client, base, tl, tr, bl, res)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return imagecodec.decode_png(r.content)


def raw_slice(client, base, dims: str, size, offset) -> np.ndarray:
    r = client.get(f"{base}/raw/{dims}/{size[0]}_{size[1]}/{'_'.join(map(str, offset))}")
    assert r.status_code == 200, r.text
    return imagecodec.decode_png(r.content)


# ----- axis-aligned planes equal raw slices ---------------------------------------------


@pytest.mark.parametrize("vsize", ["8,8,8", "4,4,40", "3.2,3.2,3.2"])
def test_axis_aligned_planes_equal_raw_slices(client, repo, world, vsize) -> None:
    base = make(client, repo, "g", world, voxelsize=vsize)
    rx, ry, rz = (float(v) for v in vsize.split(","))
    # XY plane 30 x 20 at voxel (-5, 9, 3), both inside and beyond the written box
    for off, (w, h) in [((-5, 9, 3), (30, 20)), ((20, 30, -20), (30, 25))]:
        x0, y0, z0 = off
        tl = (x0 * rx, y0 * ry, z0 * rz)
        img = arb_png(client, base, tl, ((x0 + w - 1) * rx, y0 * ry, z0 * rz),
                      (x0 * rx, (y0 + h - 1) * ry, z0 * rz), rx)
        assert img.shape == (h, w)
        assert np.array_equal(img, raw_slice(client, base, "xy", (w, h), off))
    if rx == rz:  # XZ and YZ need the same res along both image axes
        x0, y0, z0 = -3, 10, -12
        img = arb_png(client, base, (x0 * rx, y0 * ry, z0 * rz),
                      ((x0 + 24) * rx, y0 * ry, z0 * rz), (x0 * rx, y0 * ry, (z0 + 30) * rz), rx)
        assert np.array_equal(img, raw_slice(client, base, "xz", (25, 31), (x0, y0, z0)))
        img = arb_png(client, base, (x0 * rx, y0 * ry, z0 * rz),
                      (x0 * rx, (y0 + 19) * ry, z0 * rz), (x0 * rx, y0 * ry, (z0 + 9) * rz), rx)
        assert np.array_equal(img, raw_slice(client, base, "yz", (20, 10), (x0, y0, z0)))


def test_axis_aligned_mirrored_and_jpeg(client, repo, world) -> None:
    base = make(client, repo, "g", world)
    # right-to-left, bottom-to-top: the raw slice flipped both ways
    img = arb_png(client, base, (29 * 8, 40 * 8, 16.0), (0, 40 * 8, 16.0), (29 * 8, 21 * 8, 16.0),
                  8.0)
    want = raw_slice(client, base, "xy", (30, 20), (0, 21, 2))
    assert np.array_equal(img, want[::-1, ::-1])
    r = arb(client, base, (0, 0, 16.0), (29 * 8, 0, 16.0), (0, 19 * 8, 16.0), 8.0, "jpg:95")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    got = imagecodec.decode_jpeg(r.content).astype(int)
    assert np.abs(got - raw_slice(client, base, "xy", (30, 20), (0, 0, 2))).mean() < 6
    for fmt, ctype in [("png", "image/png"), ("jpeg", "image/jpeg"), ("tif", "image/tiff"),
                       ("bmp", "image/bmp")]:
        r = arb(client, base, (0, 0, 0), (80.0, 0, 0), (0, 80.0, 0), 8.0, fmt)
        assert r.status_code == 200 and r.headers["content-type"] == ctype


# ----- tilted planes equal the oracle ---------------------------------------------------


TILTED = [
    # rotated in XY, both tilted into Z, coarse res
    ((-40.0, 30.0, 20.0), (250.3, 110.7, 20.0), (-70.5, 200.2, 20.0), 7.5),
    ((10.0, 50.0, -100.0), (300.0, 60.0, 250.0), (10.0, 330.0, -90.0), 9.0),
    ((0.5, 0.5, 0.5), (200.25, 100.75, 150.125), (-90.0, 150.0, 60.0), 3.3),
    # non-perpendicular edges (a parallelogram) and reversed direction
    ((300.0, 300.0, 300.0), (-60.0, 10.0, -40.0), (250.0, -50.0, 100.0), 11.0),
    # degenerate: a line, a single point, res larger than both edges
    ((5.0, 6.0, 7.0), (290.0, 6.0, 7.0), (5.0, 6.0, 7.0), 4.0),
    ((33.3, 44.4, 55.5), (33.3, 44.4, 55.5), (33.3, 44.4, 55.5), 1.0),
    ((33.3, 44.4, 55.5), (36.0, 44.4, 55.5), (33.3, 45.0, 55.5), 8.0),
    # DVID's help example (floor(100/10) after float rounding)
    ((100.2, 90.0, 80.7), (200.2, 90.0, 80.7), (100.2, 190.0, 80.7), 10.0),
]


@pytest.mark.parametrize("vsize", ["8,8,8", "4,4,40", "3.2,3.2,3.2"])
def test_tilted_planes_equal_oracle(client, repo, world, vsize) -> None:
    base = make(client, repo, "g", world, voxelsize=vsize)
    vs = [float(v) for v in vsize.split(",")]
    for tl, tr, bl, res in TILTED:
        want = dvid_arb(world, ORIGIN, BG, vs, tl, tr, bl, res)
        got = arb_png(client, base, tl, tr, bl, res)
        assert got.shape == want.shape, (tl, tr, bl, res)
        assert np.array_equal(got, want), (tl, tr, bl, res)


def test_outside_stored_data_is_background(client, repo, world) -> None:
    base = make(client, repo, "g", world)
    # far away (negative coordinates) -> all Background
    img = arb_png(client, base, (-9000.0, -9000.0, -9000.0), (-8000.0, -8500.0, -9000.0),
                  (-9000.0, -8000.0, -8200.0), 13.0)
    assert (img == BG).all()
    # straddling the written box edge: oracle (which blends Background in)
    tl, tr, bl = (-200.0, -100.0, -150.0), (250.0, 60.0, 40.0), (-180.0, 400.0, -110.0)
    img = arb_png(client, base, tl, tr, bl, 6.0)
    assert np.array_equal(img, dvid_arb(world, ORIGIN, BG, (8, 8, 8), tl, tr, bl, 6.0))
    assert (img == BG).any() and (img != BG).any()
    # nothing written at all
    r = client.post(f"/api/repo/{repo}/instance",
                    json={"typename": "uint8blk", "dataname": "empty", "background": "3"})
    assert r.status_code == 200
    img = arb_png(client, f"/api/node/{repo}/empty", tl, tr, bl, 6.0)
    assert (img == 3).all()


def test_versions_are_respected(client, repo, world) -> None:
    base = make(client, repo, "g", world)
    tl, tr, bl = (0.0, 128.0, 8.0), (100.0, 178.0, 8.0), (-20.0, 218.0, 30.0)
    before = arb_png(client, base, tl, tr, bl, 4.0)
    assert client.post(f"/api/node/{repo}/commit", json={"note": "v1"}).status_code == 200
    child = client.post(f"/api/node/{repo}/newversion", json={}).json()["child"]
    cbase = f"/api/node/{child}/g"
    r = client.post(f"{cbase}/raw/0_1_2/16_16_16/0_16_0", content=bytes(16 ** 3))
    assert r.status_code == 200
    w2 = world.copy()
    w2[16:32, 12:28, 8:24] = 0  # voxels x 0..15, y 16..31, z 0..15
    after = arb_png(client, cbase, tl, tr, bl, 4.0)
    assert np.array_equal(after, dvid_arb(w2, ORIGIN, BG, (8, 8, 8), tl, tr, bl, 4.0))
    assert not np.array_equal(after, before)
    assert np.array_equal(arb_png(client, base, tl, tr, bl, 4.0), before)


# ----- reads: only the touched blocks, batched -------------------------------------------


def test_reads_only_touched_blocks_in_one_batch(app, client, repo, world, monkeypatch) -> None:
    base = make(client, repo, "g", world)
    mgr = app.state.manager
    inst = mgr.resolve(repo)[0].instances["g"]
    calls: list[int] = []
    orig = type(inst.store).get_many

    def counting(self, ctx, keys):
        keys = list(keys)
        calls.append(len(keys))
        return orig(self, ctx, keys)

    monkeypatch.setattr(type(inst.store), "get_many", counting)
    # XY plane at integer z = 5 (no z-interpolation): x -8..31, y 4..35 -> 3 x 3 blocks
    img = arb_png(client, base, (-64.0, 32.0, 40.0), (248.0, 32.0, 40.0), (-64.0, 280.0, 40.0),
                  8.0)
    assert img.shape == (32, 40)
    assert calls == [9]
    calls.clear()
    # same plane at z = 5.5: z blocks 0 only still (voxels 5 and 6)
    arb_png(client, base, (-64.0, 32.0, 44.0), (248.0, 32.0, 44.0), (-64.0, 280.0, 44.0), 8.0)
    assert calls == [9]
    calls.clear()
    # z = 15.5 straddles z blocks 0 and 1
    arb_png(client, base, (-64.0, 32.0, 124.0), (248.0, 32.0, 124.0), (-64.0, 280.0, 124.0), 8.0)
    assert calls == [18]


def test_large_plane_bands_and_block_budget(app, client, repo, world, monkeypatch) -> None:
    """Many bands plus the halving of over-budget ranges give the oracle's answer."""
    import datatypes.imageblk as u8

    base = make(client, repo, "g", world)
    monkeypatch.setattr(u8, "_ARB_BAND", 97)  # odd band size: many partial bands
    monkeypatch.setattr(u8, "_ARB_BLOCK_BUDGET", 3 * 16 ** 3)  # forces splitting
    tl, tr, bl = (-100.0, -50.0, -140.0), (300.0, 100.0, 260.0), (-60.0, 380.0, -90.0)
    got = arb_png(client, base, tl, tr, bl, 5.0)
    assert np.array_equal(got, dvid_arb(world, ORIGIN, BG, (8, 8, 8), tl, tr, bl, 5.0))


# ----- bad input ------------------------------------------------------------------------


def test_bad_inputs(client, repo, world) -> None:
    base = make(client, repo, "g", world)
    ok = "0_0_0/80_0_0/0_80_0"
    # messages name the path parameter (topleft, topright, bottomleft, res, format)
    cases = [
        ("0_0/80_0_0/0_80_0/8", 400, "topleft"),
        ("0_0_0/80_0_0_1/0_80_0/8", 400, "topright"),
        ("0_0_0/80_0_0/a_80_0/8", 400, "bottomleft"),
        ("0_0_0/80_0_0/0__0/8", 400, "bottomleft"),
        ("nan_0_0/80_0_0/0_80_0/8", 400, "topleft"),
        ("0_0_0/inf_0_0/0_80_0/8", 400, "topright"),
        (f"{ok}/abc", 400, "res"),
        (f"{ok}/0", 400, "positive"),
        (f"{ok}/-8", 400, "positive"),
        (f"{ok}/nan", 400, "res"),
        (f"{ok}/inf", 400, "res"),
        (f"{ok}/8/gif", 400, "format"),
        (f"{ok}/8/jpg:0", 400, "quality"),
        (f"{ok}/8/jpg:x", 400, "quality"),
        (f"{ok}/8/png/extra", 400, "path segments given"),
        (f"{ok}", 400, "res"),
        ("0_0_0/80_0_0", 400, "bottomleft"),
        ("", 400, "topleft"),
        # 8193 x 8193 pixels > 2**26
        ("0_0_0/8192_0_0/0_8192_0/1", 413, "limit"),
        ("0_0_0/1e300_0_0/0_1e300_0/1e-300", 400, "finite"),
        # voxel coordinates beyond int32 (small image, huge position)
        ("1e12_0_0/1.00000001e12_0_0/1e12_1e4_0/1000", 400, "int32"),
        # 70000 x 1 JPEG
        ("0_0_0/69999_0_0/0_0_0/1/jpg", 400, "65535"),
    ]
    for path, code, words in cases:
        r = client.get(f"{base}/arb/{path}")
        assert r.status_code == code, (path, r.status_code, r.text)
        assert words.lower() in r.text.lower(), (path, r.text)
        assert r.headers["content-type"].startswith("text/plain"), (path, r.headers)
    # same plane, fine as PNG
    assert client.get(f"{base}/arb/0_0_0/69999_0_0/0_0_0/1/png").status_code == 200


def test_server_request_limit() -> None:
    settings = Settings.memory()
    settings.max_request_bytes = 1000
    with TestClient(create_app(settings)) as c:
        uuid = c.post("/api/repos", json={"alias": "x"}).json()["root"]
        c.post(f"/api/repo/{uuid}/instance", json={"typename": "uint8blk", "dataname": "g"})
        assert c.get(f"/api/node/{uuid}/g/arb/0_0_0/30_0_0/0_30_0/1").status_code == 200
        r = c.get(f"/api/node/{uuid}/g/arb/0_0_0/40_0_0/0_40_0/1")
        assert r.status_code == 413, r.text


# ----- helpers ----------------------------------------------------------------------------


def test_make_plane_sizes() -> None:
    p = arbslice.make_plane((100.2, 90, 80.7), (200.2, 90, 80.7), (100.2, 190, 80.7), 10.0)
    assert (p.width, p.height) == (math.floor((200.2 - 100.2) / 10) + 1, 11)
    p = arbslice.make_plane((0, 0, 0), (0, 0, 0), (0, 7.9, 0), 8.0)
    assert (p.width, p.height) == (1, 1)
    p = arbslice.make_plane((0, 0, 0), (30, 40, 0), (0, 0, 16), 5.0)
    assert (p.width, p.height) == (11, 4)
    assert p.incr_x == (3.0, 4.0, 0.0)
    with pytest.raises(arbslice.PlaneTooLarge):
        arbslice.make_plane((0, 0, 0), (100, 0, 0), (0, 100, 0), 1.0, max_pixels=100)


def test_sample_points_accumulate_like_dvid() -> None:
    p = arbslice.make_plane((0.1, 0.2, 0.3), (10.0, 3.3, -7.1), (-2.2, 9.9, 4.4), 0.37)
    starts = arbslice.row_starts(p)
    pts = arbslice.sample_points(p, starts, 0, p.height).reshape(3, p.height, p.width)
    left = list(p.top_left)
    for y in range(p.height):
        cur = list(left)
        for x in range(p.width):
            assert list(pts[:, y, x]) == cur  # bit-exact
            cur = [cur[i] + p.incr_x[i] for i in range(3)]
        left = [left[i] + p.incr_y[i] for i in range(3)]


@pytest.mark.parametrize("spread", [3, 300, 10 ** 6])
def test_corner_blocks_dense_and_sorted_paths(spread) -> None:
    rng = np.random.default_rng(spread)
    lo = rng.integers(-spread, spread, size=(3, 5000))
    blocks = [np.stack([lo[a], lo[a] + rng.integers(0, 2, 5000)]) for a in range(3)]
    coords, slot = arbslice.corner_blocks(blocks)
    want = np.stack([np.stack([blocks[0][k & 1], blocks[1][(k >> 1) & 1],
                               blocks[2][(k >> 2) & 1]], axis=1) for k in range(8)])
    assert np.array_equal(coords[slot], want)
    assert len(coords) == len(np.unique(want.reshape(-1, 3), axis=0))


# ----- property test ---------------------------------------------------------------------


_coord = st.floats(-120.0, 420.0, allow_nan=False)
_point = st.tuples(_coord, _coord, _coord)
_unit = st.floats(-1.0, 1.0, allow_nan=False)


@st.composite
def _edge(draw, res: float) -> tuple[float, float, float]:
    """An edge vector of ``n`` (0..60) pixels plus a fraction at pixel size ``res``."""
    d = np.array([draw(_unit), draw(_unit), draw(_unit)])
    norm = float(np.linalg.norm(d))
    if norm < 1e-3:
        return (0.0, 0.0, 0.0)
    length = res * (draw(st.integers(0, 60)) + draw(st.floats(0.0, 0.999)))
    return tuple(float(v) for v in d / norm * length)


@st.composite
def _plane(draw):
    res = draw(st.floats(3.0, 40.0))
    return draw(_point), draw(_edge(res)), draw(_edge(res)), res


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plane=_plane(), which=st.sampled_from([0, 1]))
def test_random_planes_equal_oracle(client, repo, world, plane, which) -> None:
    tl, ex, ey, res = plane
    vsizes = ["8,8,8", "5.5,6.25,9.1"]
    names = [f"h{i}" for i in range(2)]
    inst = client.app.state.manager.resolve(repo)[0].instances
    for n, v in zip(names, vsizes, strict=True):
        if n not in inst:
            make(client, repo, n, world, voxelsize=v)
    tr = tuple(a + b for a, b in zip(tl, ex, strict=True))
    bl = tuple(a + b for a, b in zip(tl, ey, strict=True))
    p = arbslice.make_plane(tl, tr, bl, res)
    assume(p.num_pixels <= 4000)
    event(f"pixels <= {10 ** max(0, math.ceil(math.log10(p.num_pixels)))}")
    vs = [float(v) for v in vsizes[which].split(",")]
    got = arb_png(client, f"/api/node/{repo}/{names[which]}", tl, tr, bl, res)
    assert np.array_equal(got, dvid_arb(world, ORIGIN, BG, vs, tl, tr, bl, res))


def test_module_doc_lists_arb() -> None:
    import datatypes.imageblk as u8

    assert "GET arb/{topleft}/{topright}/{bottomleft}/{res}" in (u8.__doc__ or "")
