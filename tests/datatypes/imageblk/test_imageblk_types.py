"""The imageblk family (uint8blk, uint16blk, uint32blk, uint64blk, float32blk, rgba8blk):
random voxels round-trip through every format each type has, at two versions, and the
pyramid reduces each type by its rule.

Formats: ``POST raw`` / ``GET raw`` 3-D bytes, ``POST blocks`` / ``GET blocks``,
``subvolblocks`` and ``specificblocks`` (uncompressed and the stored LZ4 payload), 2-D
images (PNG for all, the voxel bytes as DVID draws them; TIFF and BMP for uint8 and
rgba8), and JPEG (uint8 only, lossy: checked on uniform data). Version 1 is committed with
one volume, version 2 overwrites part of it; both read back exactly (raw and every block
format). ROI masking (0 or attenuated outside, writes limited to the ROI) and isotropic
slices for every type.
"""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from collections.abc import Iterator

import lz4.block
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.testclient import TestClient

from datatypes.common.blockstream import iter_records
from datatypes.common.downsample import downsample_mean, downsample_mode
from datatypes.imageblk import IMAGEBLK_TYPES
from datatypes.labelmap.downres import downres_labels
from dvidpy.config import Settings
from server import create_app

TYPES = sorted(IMAGEBLK_TYPES)
DTYPES = {t: c.voxel.dtype for t, c in IMAGEBLK_TYPES.items()}
BS = 8
_names = itertools.count()
FIXTURE = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    s = Settings.memory()
    s.max_request_bytes = 16 << 20
    with TestClient(create_app(s)) as c:
        yield c


def new_instance(c: TestClient, typename: str, **settings: str) -> tuple[str, str, str]:
    """A repo with one instance: ``(root, name, base path at the root)``."""
    root = c.post("/api/repos", json={}).json()["root"]
    name = f"{typename}{next(_names)}"
    r = c.post(f"/api/repo/{root}/instance", json={
        "typename": typename, "dataname": name, "BlockSize": f"{BS},{BS},{BS}", **settings})
    assert r.status_code == 200, r.text
    return root, name, f"/api/node/{root}/{name}"


def voxels(rng: np.random.Generator, typename: str, shape: tuple[int, ...]) -> np.ndarray:
    """Random voxels of any bit pattern (floats too: NaNs must survive byte-exactly)."""
    dt = DTYPES[typename]
    n = int(np.prod(shape))
    return np.frombuffer(rng.bytes(n * dt.itemsize), dtype=dt).reshape(shape)


def get_raw(c: TestClient, base: str, size: tuple[int, int, int],
            offset: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
    r = c.get(f"{base}/raw/0_1_2/{size[0]}_{size[1]}_{size[2]}/"
              f"{offset[0]}_{offset[1]}_{offset[2]}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    return np.frombuffer(r.content, dtype=dtype).reshape(size[2], size[1], size[0])


def post_raw(c: TestClient, base: str, offset: tuple[int, int, int], vol: np.ndarray) -> None:
    nz, ny, nx = vol.shape
    r = c.post(f"{base}/raw/0_1_2/{nx}_{ny}_{nz}/{offset[0]}_{offset[1]}_{offset[2]}",
               content=vol.tobytes())
    assert r.status_code == 200, r.text


def png_samples(data: bytes) -> tuple[np.ndarray, int, int, int]:
    """Rows of a PNG written with filter 0 (what the server writes for the wider types):
    ``(rows, width, depth, colour type)``; an independent check that it is a well-formed
    PNG is Pillow's."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == \
            zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert head is not None
    w, h, depth, ctype = head[:4]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, -1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:], w, depth, ctype


# ----- round trips ----------------------------------------------------------------------

boxes = st.tuples(st.integers(1, 19), st.integers(1, 19), st.integers(1, 11))
offsets = st.tuples(st.integers(-12, 12), st.integers(-12, 12), st.integers(-12, 12))


@settings(max_examples=12, deadline=None, suppress_health_check=FIXTURE)
@given(typename=st.sampled_from(TYPES), size=boxes, offset=offsets,
       seed=st.integers(0, 2**32 - 1), size2=boxes, shift=offsets)
def test_raw_round_trips_at_two_versions(client: TestClient, typename: str,
                                         size: tuple[int, int, int],
                                         offset: tuple[int, int, int], seed: int,
                                         size2: tuple[int, int, int],
                                         shift: tuple[int, int, int]) -> None:
    c = client
    rng = np.random.default_rng(seed)
    dt = DTYPES[typename]
    root, name, base = new_instance(c, typename)
    a = voxels(rng, typename, (size[2], size[1], size[0]))
    post_raw(c, base, offset, a)
    assert c.post(f"/api/node/{root}/commit", json={}).status_code == 200
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    cbase = f"/api/node/{child}/{name}"
    b = voxels(rng, typename, (size2[2], size2[1], size2[0]))
    off2 = tuple(o + s for o, s in zip(offset, shift, strict=True))
    post_raw(c, cbase, off2, b)
    # the union box, read at both versions, against a plain model of each
    lo = [min(o, p) for o, p in zip(offset, off2, strict=True)]
    hi = [max(o + s, p + t) for o, s, p, t in zip(offset, size, off2, size2, strict=True)]
    whole = tuple(h - l_ for h, l_ in zip(hi, lo, strict=True))
    model1 = np.zeros((whole[2], whole[1], whole[0]), dtype=dt)

    def put(m: np.ndarray, o: tuple[int, ...], v: np.ndarray) -> None:
        z, y, x = (o[2] - lo[2], o[1] - lo[1], o[0] - lo[0])
        m[z:z + v.shape[0], y:y + v.shape[1], x:x + v.shape[2]] = v

    put(model1, offset, a)
    model2 = model1.copy()
    put(model2, off2, b)
    lo3 = (lo[0], lo[1], lo[2])
    assert get_raw(c, base, whole, lo3, dt).tobytes() == model1.tobytes()
    assert get_raw(c, cbase, whole, lo3, dt).tobytes() == model2.tobytes()
    # a 2-D PNG slice of every type is the voxel bytes as they are stored
    z = off2[2] - lo[2]
    r = c.get(f"{cbase}/raw/xy/{whole[0]}_{whole[1]}/{lo[0]}_{lo[1]}_{off2[2]}/png")
    assert r.status_code == 200, r.text
    img = Image.open(io.BytesIO(r.content))
    img.load()  # a PNG any decoder reads
    if typename == "uint8blk":  # Pillow's PNG (any filters)
        assert np.array(img).tobytes() == model2[z].tobytes()
    else:  # the voxel bytes, unfiltered
        rows, w, depth, ctype = png_samples(r.content)
        assert w == whole[0]
        assert rows.tobytes() == model2[z].tobytes()
        assert (depth, ctype) == IMAGEBLK_TYPES[typename].voxel.png


@settings(max_examples=10, deadline=None, suppress_health_check=FIXTURE)
@given(typename=st.sampled_from(TYPES), span=st.integers(1, 4),
       seed=st.integers(0, 2**32 - 1), block=st.tuples(*[st.integers(-3, 3)] * 3))
def test_block_endpoints_round_trip(client: TestClient, typename: str, span: int, seed: int,
                                    block: tuple[int, int, int]) -> None:
    c = client
    rng = np.random.default_rng(seed)
    dt = DTYPES[typename]
    _, _, base = new_instance(c, typename)
    blocks = voxels(rng, typename, (span, BS, BS, BS))
    bx, by, bz = block
    r = c.post(f"{base}/blocks/{bx}_{by}_{bz}/{span}", content=blocks.tobytes())
    assert r.status_code == 200, r.text
    r = c.get(f"{base}/blocks/{bx}_{by}_{bz}/{span}")
    assert r.content == blocks.tobytes()
    for i in range(span):  # each block is that box of raw voxels
        got = get_raw(c, base, (BS, BS, BS), ((bx + i) * BS, by * BS, bz * BS), dt)
        assert got.tobytes() == blocks[i].tobytes()
    size = f"{span * BS}_{BS}_{BS}"
    for q in ("?compression=uncompressed", ""):
        r = c.get(f"{base}/subvolblocks/{size}/{bx * BS}_{by * BS}_{bz * BS}{q}")
        assert r.status_code == 200, r.text
        recs = list(iter_records(r.content))
        assert [(rc.x, rc.y, rc.z) for rc in recs] == [(bx + i, by, bz) for i in range(span)]
        for i, rc in enumerate(recs):
            raw = bytes(rc.payload)
            if q == "":  # the stored payload: u32 length + one LZ4 block
                n = struct.unpack("<I", raw[:4])[0]
                raw = lz4.block.decompress(raw[4:], uncompressed_size=n)
            assert raw == blocks[i].tobytes()
    coords = ",".join(f"{bx + i},{by},{bz}" for i in reversed(range(span)))
    r = c.get(f"{base}/specificblocks?blocks={coords}&compression=uncompressed")
    assert [bytes(rc.payload) for rc in iter_records(r.content)] == \
        [blocks[i].tobytes() for i in reversed(range(span))]
    info = c.get(f"{base}/info").json()["Extended"]
    assert info["Values"][0]["DataType"] == \
        {"rgba8": "uint8"}.get(IMAGEBLK_TYPES[typename].voxel.name,
                               IMAGEBLK_TYPES[typename].voxel.name)


@pytest.mark.parametrize("typename", ["uint8blk", "rgba8blk"])
@pytest.mark.parametrize("fmt", ["tif", "bmp", "png"])
def test_uint8_and_rgba8_images(client: TestClient, typename: str, fmt: str) -> None:
    c = client
    rng = np.random.default_rng(3)
    _, _, base = new_instance(c, typename)
    vol = voxels(rng, typename, (3, 11, 13))
    post_raw(c, base, (0, 0, 0), vol)
    for dims, sl in (("xy", vol[1]), ("xz", vol[:, 4, :]), ("yz", vol[:, :, 5])):
        size = {"xy": "13_11", "xz": "13_3", "yz": "11_3"}[dims]
        off = {"xy": "0_0_1", "xz": "0_4_0", "yz": "5_0_0"}[dims]
        r = c.get(f"{base}/raw/{dims}/{size}/{off}/{fmt}")
        assert r.status_code == 200, r.text
        img = np.array(Image.open(io.BytesIO(r.content)))
        sl = np.ascontiguousarray(sl)
        want = sl if typename == "uint8blk" else sl.view(np.uint8).reshape(*sl.shape, 4)
        if fmt == "bmp" and typename == "rgba8blk" and img.shape[-1] == 3:
            want = want[..., :3]  # BMP writers may drop alpha
        assert np.array_equal(img, want), (dims, fmt)


@pytest.mark.parametrize("typename", sorted(set(TYPES) - {"uint8blk"}))
def test_jpeg_and_other_images_are_400_where_the_type_has_none(client: TestClient,
                                                               typename: str) -> None:
    c = client
    _, _, base = new_instance(c, typename)
    for fmt in ("jpg", "jpeg:90"):
        r = c.get(f"{base}/raw/xy/4_4/0_0_0/{fmt}")
        assert r.status_code == 400 and "JPEG" in r.text
    r = c.get(f"{base}/raw/0_1_2/4_4_4/0_0_0/jpg")
    assert r.status_code == 400
    if typename != "rgba8blk":
        assert c.get(f"{base}/raw/xy/4_4/0_0_0/tif").status_code == 400
        r = c.get(f"{base}/arb/0_0_0/8_0_0/0_8_0/1")
        assert r.status_code == 400 and "uint8blk and rgba8blk" in r.text
    root = base.split("/")[3]
    r = c.post(f"/api/repo/{root}/instance", json={"typename": typename, "dataname": "j",
                                                   "Compression": "jpeg"})
    assert r.status_code == 400 and "jpeg" in r.text


@settings(max_examples=10, deadline=None, suppress_health_check=FIXTURE)
@given(v=st.integers(0, 255), q=st.integers(30, 100))
def test_uint8_jpeg_of_uniform_data_is_exact(client: TestClient, v: int, q: int) -> None:
    c = client
    _, _, base = new_instance(c, "uint8blk")
    post_raw(c, base, (0, 0, 0), np.full((4, 16, 16), v, dtype=np.uint8))
    # a flat block is its DC term alone; below quality 50 the DC quantizer step passes 16
    # (2 grey levels after the DCT's 1/8 scale), so a level may be off by 2
    for path, tol in (("raw/0_1_2/16_16_4/0_0_0/jpg", 1),
                      (f"raw/xy/16_16/0_0_2/jpg:{q}", 1 if q >= 50 else 2)):
        r = c.get(f"{base}/{path}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        img = np.array(Image.open(io.BytesIO(r.content)).convert("L"))
        assert (np.abs(img.astype(int) - v) <= tol).all(), (path, v, q)


def test_bad_bodies_write_nothing(client: TestClient) -> None:
    c = client
    for typename in TYPES:
        _, _, base = new_instance(c, typename)
        isz = DTYPES[typename].itemsize
        for body in (b"", b"x" * (8 * 8 * 8 * isz - 1), b"x" * (8 * 8 * 8 * isz + 1)):
            r = c.post(f"{base}/raw/0_1_2/8_8_8/0_0_0", content=body)
            assert r.status_code == 400 and "needs" in r.text, r.text
            r = c.post(f"{base}/blocks/0_0_0/1", content=body)
            assert r.status_code == 400, r.text
        assert c.get(f"{base}/info").json()["Extended"]["MinPoint"] is None


@settings(max_examples=10, deadline=None, suppress_health_check=FIXTURE)
@given(typename=st.sampled_from(TYPES), span=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1), block=st.tuples(*[st.integers(-2, 2)] * 3),
       which=st.integers(0, 2))
def test_block_formats_at_two_versions(client: TestClient, typename: str, span: int,
                                       seed: int, block: tuple[int, int, int],
                                       which: int) -> None:
    """Blocks written at a committed root, one of them overwritten at its child: every
    block format reads each version's own voxels."""
    c = client
    rng = np.random.default_rng(seed)
    root, name, base = new_instance(c, typename)
    first = voxels(rng, typename, (span, BS, BS, BS))
    bx, by, bz = block
    assert c.post(f"{base}/blocks/{bx}_{by}_{bz}/{span}", content=first.tobytes()).is_success
    assert c.post(f"/api/node/{root}/commit", json={}).status_code == 200
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    cbase = f"/api/node/{child}/{name}"
    i = which % span
    second = first.copy()
    second[i] = voxels(rng, typename, (BS, BS, BS))
    r = c.post(f"{cbase}/blocks/{bx + i}_{by}_{bz}/1", content=second[i].tobytes())
    assert r.status_code == 200, r.text
    size = f"{span * BS}_{BS}_{BS}"
    for at, want in ((base, first), (cbase, second)):
        assert c.get(f"{at}/blocks/{bx}_{by}_{bz}/{span}").content == want.tobytes()
        r = c.get(f"{at}/subvolblocks/{size}/{bx * BS}_{by * BS}_{bz * BS}"
                  "?compression=uncompressed")
        assert [bytes(rc.payload) for rc in iter_records(r.content)] == \
            [b.tobytes() for b in want]
        coords = ",".join(f"{bx + k},{by},{bz}" for k in range(span))
        r = c.get(f"{at}/specificblocks?blocks={coords}&compression=uncompressed")
        assert [bytes(rc.payload) for rc in iter_records(r.content)] == \
            [b.tobytes() for b in want]
        whole = np.concatenate(list(want), axis=2)  # blocks side by side along x
        got = get_raw(c, at, (span * BS, BS, BS), (bx * BS, by * BS, bz * BS),
                      DTYPES[typename])
        assert got.tobytes() == whole.tobytes()


@pytest.mark.parametrize("typename", TYPES)
def test_roi_masking_and_isotropic_slices_of_each_type(client: TestClient,
                                                       typename: str) -> None:
    """``roi=`` masks reads (0 outside, or attenuated by the type's rule) and limits
    writes to the ROI; isotropic XZ slices repeat rows by the z/x voxel-size ratio."""
    c = client
    rng = np.random.default_rng(5)
    root, name, base = new_instance(c, typename)
    dt = DTYPES[typename]
    vol = voxels(rng, typename, (16, 16, 16))
    if typename == "float32blk":  # finite values: attenuation divides
        vol = rng.random((16, 16, 16)).astype(np.float32) * 1000
    post_raw(c, base, (0, 0, 0), vol)
    r = c.post(f"/api/repo/{root}/instance",
               json={"typename": "roi", "dataname": f"r{name}", "BlockSize": "8,8,8"})
    assert r.status_code == 200, r.text
    # ROI block spans [z, y, x0, x1] in 8-voxel blocks: the block (1, 0, 1) only
    assert c.post(f"/api/node/{root}/r{name}/roi", json=[[1, 0, 1, 1]]).is_success
    mask = np.zeros((16, 16, 16), bool)
    mask[8:16, 0:8, 8:16] = True
    url = f"{base}/raw/0_1_2/16_16_16/0_0_0"
    got = np.frombuffer(c.get(f"{url}?roi=r{name}").content, dt).reshape(vol.shape)
    assert got.tobytes() == np.where(mask, vol, 0).astype(dt).tobytes()
    got = np.frombuffer(c.get(f"{url}?roi=r{name}&attenuation=3").content,
                        dt).reshape(vol.shape)
    if typename == "rgba8blk":
        outside = (vol.view(np.uint8) >> 3).view(dt).reshape(vol.shape)
    elif typename == "float32blk":
        outside = vol / np.float32(8)
    else:
        outside = vol >> np.array(3, dtype=dt)
    assert got.tobytes() == np.where(mask, vol, outside).astype(dt).tobytes()
    assert c.get(f"{url}?roi=nosuch").status_code == 400
    assert c.get(f"{url}?roi=r{name}&attenuation=8").status_code == 400
    # a write through the ROI changes the voxels inside only
    new = voxels(rng, typename, (16, 16, 16))
    assert c.post(f"{url}?roi=r{name}", content=new.tobytes()).status_code == 200
    model = np.where(mask, new, vol).astype(dt)
    assert get_raw(c, base, (16, 16, 16), (0, 0, 0), dt).tobytes() == model.tobytes()
    # isotropic XZ: z voxels twice as thick as x -> each z row twice, from the same bytes
    assert c.post(f"{base}/resolution", json=[4, 4, 8]).status_code == 200
    raw = c.get(f"{base}/raw/xz/16_8/0_3_0/png")
    iso = c.get(f"{base}/isotropic/xz/16_8/0_3_0/png")
    assert raw.status_code == iso.status_code == 200, iso.text
    if typename == "uint8blk":
        a = np.array(Image.open(io.BytesIO(raw.content)))
        b = np.array(Image.open(io.BytesIO(iso.content)))
        assert a.tobytes() == model[0:8, 3, :].tobytes()
    else:
        a = png_samples(raw.content)[0]
        b = png_samples(iso.content)[0]
        assert a.tobytes() == model[0:8, 3, :].tobytes()
    assert b.shape == (16, a.shape[1]) and b[::2].tobytes() == a.tobytes() and \
        b[1::2].tobytes() == a.tobytes()


# ----- pyramids -------------------------------------------------------------------------

def reduce_reference(vol: np.ndarray, typename: str, factors: tuple[int, int, int]
                     ) -> np.ndarray:
    """What one level must hold: integer mean rounded half up, float mean, rgba8 per
    channel, uint64 mode of the non-zero voxels (ties: the smaller; labelmap's rule), by
    slow plain numpy."""
    fx, fy, fz = factors
    nz, ny, nx = vol.shape
    if typename == "uint64blk":
        out = np.zeros((nz // fz, ny // fy, nx // fx), dtype=vol.dtype)
        for z, y, x in itertools.product(*(range(n) for n in out.shape)):
            cell = vol[fz * z:fz * z + fz, fy * y:fy * y + fy, fx * x:fx * x + fx].reshape(-1)
            nz_ = cell[cell != 0]
            if len(nz_):
                vals, counts = np.unique(nz_, return_counts=True)
                out[z, y, x] = vals[np.argmax(counts)]
        return out
    cells = vol.reshape(nz // fz, fz, ny // fy, fy, nx // fx, fx)
    n = fx * fy * fz
    if typename == "rgba8blk":
        ch = vol.view(np.uint8).reshape(nz // fz, fz, ny // fy, fy, nx // fx, fx, 4)
        s = ch.astype(np.int64).sum(axis=(1, 3, 5))
        return ((s + n // 2) // n).astype(np.uint8).view("<u4").reshape(s.shape[:3])
    if typename == "float32blk":
        return (cells.astype(np.float64).sum(axis=(1, 3, 5)) / n).astype(np.float32)
    s = cells.astype(object).sum(axis=(1, 3, 5))
    return ((s + n // 2) // n).astype(vol.dtype)


@pytest.mark.parametrize("anisotropic", [False, True])
@pytest.mark.parametrize("typename", TYPES)
def test_pyramid_rule_of_each_type(client: TestClient, typename: str,
                                   anisotropic: bool) -> None:
    c = client
    rng = np.random.default_rng(11)
    root, name, base = new_instance(c, typename)
    if typename == "float32blk":
        vol = rng.random((16, 16, 16)).astype(np.float32)
    elif typename == "uint64blk":
        vol = rng.integers(0, 4, (16, 16, 16)).astype("<u8") * np.uint64(2**40)
    else:
        vol = voxels(rng, typename, (16, 16, 16))
    post_raw(c, base, (0, 0, 0), vol)
    q = "&anisotropic=true" if anisotropic else ""
    r = c.post(f"{base}/downres?wait=true&levels=1{q}")
    assert r.status_code == 200 and r.json()["State"] == "done", r.text
    f = (2, 2, 1) if anisotropic else (2, 2, 2)
    want = reduce_reference(vol, typename, f)
    nz, ny, nx = want.shape
    got = get_raw(c, f"/api/node/{root}/{name}_1", (nx, ny, nz), (0, 0, 0), DTYPES[typename])
    if typename == "float32blk":
        assert np.allclose(got, want, rtol=1e-6)
    else:
        assert got.tobytes() == want.tobytes()
    info = c.get(f"/api/node/{root}/{name}_1/info").json()["Extended"]
    assert info["VoxelSize"] == [16, 16, 8 if anisotropic else 16]
    # the shared helpers agree with the reference too
    if typename == "uint64blk":
        assert np.array_equal(downsample_mode(vol, f), want)
        if f == (2, 2, 2):
            assert np.array_equal(downres_labels(vol), want)
    elif typename not in ("rgba8blk", "float32blk"):
        assert np.array_equal(downsample_mean(vol, f), want)


def test_pyramid_halving_rules_do_not_mix(client: TestClient) -> None:
    c = client
    _, _, base = new_instance(c, "uint16blk")
    post_raw(c, base, (0, 0, 0), np.ones((8, 8, 8), dtype="<u2"))
    assert c.post(f"{base}/downres?wait=true&levels=1").status_code == 200
    r = c.post(f"{base}/downres?wait=true&levels=1&anisotropic=true&full=true")
    assert r.status_code == 400 and "halving" in r.text


def test_cancelled_downres_keeps_its_dirty_blocks(client: TestClient) -> None:
    """A cancelled job stops between batches, says ``cancelled`` and leaves every dirty
    marker in place, so the next downres redoes the blocks."""
    import threading
    import time

    c = client
    root, name, base = new_instance(c, "uint16blk")
    post_raw(c, base, (0, 0, 0), np.ones((16, 16, 64), dtype="<u2"))
    dirty = c.get(f"{base}/downres-status").json()["DirtyBlocks"]
    assert dirty == 8 * 2 * 2
    repo, _ = c.app.state.manager.resolve(root)
    inst = repo.instances[name]
    entered, release = threading.Event(), threading.Event()
    real = inst.reduce

    def slow(stack: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
        entered.set()
        release.wait(10)
        return real(stack, factors)

    inst.reduce = slow  # the job's first batch waits here until the cancel is asked
    try:
        assert c.post(f"{base}/downres?levels=2").status_code == 202
        assert entered.wait(10)
        assert c.post(f"{base}/downres?levels=2").status_code == 400  # one at a time
        assert inst.cancel_downres() is True
        release.set()
        for _ in range(200):
            st = c.get(f"{base}/downres-status").json()
            if st["State"] != "running":
                break
            time.sleep(0.02)
    finally:
        release.set()
        inst.reduce = real
    assert st["State"] == "cancelled" and st["DirtyBlocks"] == dirty
    assert inst.cancel_downres() is False  # nothing runs now
    assert c.post(f"{base}/downres?levels=2&wait=true").json()["State"] == "done"
    assert c.get(f"{base}/downres-status").json()["DirtyBlocks"] == 0
