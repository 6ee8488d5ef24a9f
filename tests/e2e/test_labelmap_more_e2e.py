"""End-to-end tests of the less common labelmap endpoints against a real server on
LevelDB: ROI-masked / 2-D / pseudocolor reads, sparsevol-by-point, sparsevols-coarse,
existing-labels, indices-compressed, extents, ingest-supervoxels, renumber, history,
mutations-range and supervoxel-splits across versions and a restart, and bad inputs that
must be rejected (4xx, text/plain) without changing anything. Oracles are numpy."""

from __future__ import annotations

import gzip
import io
import json
import struct
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from datatypes import protos
from datatypes.common.blockstream import encode_stream
from datatypes.labelmap.block_codec import encode_block
from datatypes.labelmap.images import label_colors
from datatypes.labelmap.rle import decode_rles, decode_srles, encode_block_coord, spans_to_mask
from dvidpy.codec import deserialize
from tests.datatypes.labelmap.labelmap_model import Model, rle_body

pytestmark = pytest.mark.e2e

BS = 16
SHAPE = (32, 32, 48)  # z, y, x: 2 x 2 x 3 blocks
BIG = 3 * 2**32


def _segmentation() -> np.ndarray:
    """~40 supervoxels (ids above 2**32) as cells of a grid, plus background."""
    z, y, x = np.indices(SHAPE)
    cell = (z // 11) * 100 + (y // 9) * 10 + (x // 13)
    ids, inv = np.unique(cell, return_inverse=True)
    perm = np.random.default_rng(3).permutation(ids.size).astype(np.uint64)
    vol = (np.uint64(BIG) + perm)[inv.reshape(-1)].reshape(SHAPE).astype(np.uint64)
    vol[:5, :5, :5] = 0
    return vol


def _setup(c: httpx.Client) -> tuple[str, str, Model]:
    root = c.post("/api/repos", json={}).json()["root"]
    r = c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}",
        "MaxDownresLevel": "1"})
    assert r.status_code == 200, r.text
    vol = _segmentation()
    nz, ny, nx = SHAPE
    r = c.post(f"/api/node/{root}/seg/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0", content=vol.tobytes())
    assert r.status_code == 200, r.text
    m = Model(SHAPE)
    m.sv = vol.copy()
    return root, f"/api/node/{root}/seg", m


def _png_rows(png: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, bit depth, unfiltered scanline bytes) of a PNG whose rows all use
    filter 0 (what the server writes); checks the chunk CRCs."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(png):
        n, tag = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + data)
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data)
        elif tag == b"IDAT":
            idat += data
        pos += 12 + n
    assert ihdr is not None and ihdr[3] == 6  # RGBA
    w, h, depth = ihdr[0], ihdr[1], ihdr[2]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, -1)
    assert (raw[:, 0] == 0).all()
    return w, h, depth, raw[:, 1:].tobytes()


def _coarse_stream(data: bytes) -> dict[int, np.ndarray]:
    out, pos = {}, 0
    while pos < len(data):
        lab, n = struct.unpack_from("<Qi", data, pos)
        pos += 12
        out[lab] = np.frombuffer(data, "<i4", n * 4, pos).reshape(n, 4)
        pos += 16 * n
    return out


def _block_mask(mask: np.ndarray) -> np.ndarray:
    z, y, x = (s // BS for s in mask.shape)
    return mask.reshape(z, BS, y, BS, x, BS).any(axis=(1, 3, 5))


def test_reads_roi_planes_points_streams(server, client) -> None:
    c = client
    root, base, m = _setup(c)
    nz = SHAPE[0]
    bodies = m.bodies()
    # octet-stream format segment == default 3-D answer
    plain = c.get(f"{base}/raw/0_1_2/20_10_5/3_4_5").content
    assert c.get(f"{base}/raw/0_1_2/20_10_5/3_4_5/octet-stream").content == plain
    assert c.get(f"{base}/isotropic/0_1_2/20_10_5/3_4_5/octet-stream").content == plain
    # roi= masking at scale 0 and 1 (ROI blocks 16 = label blocks)
    r = c.post(f"/api/repo/{root}/instance", json={"typename": "roi", "dataname": "rr",
                                                   "BlockSize": "16,16,16"})
    assert r.status_code == 200
    spans = [[0, 0, 1, 2], [1, 1, 0, 0]]
    assert c.post(f"/api/node/{root}/rr/roi", json=spans).status_code == 200
    inroi = np.zeros((2, 2, 3), bool)
    for z, y, x0, x1 in spans:
        inroi[z, y, x0:x1 + 1] = True
    vmask = inroi.repeat(BS, 0).repeat(BS, 1).repeat(BS, 2)
    r = c.get(f"{base}/raw/0_1_2/40_30_20/5_1_9?roi=rr")
    got = np.frombuffer(r.content, "<u8").reshape(20, 30, 40)
    want = np.where(vmask, bodies, 0)[9:29, 1:31, 5:45]
    assert np.array_equal(got, want)
    from datatypes.labelmap.downres import downres_labels
    sv1 = downres_labels(m.sv)
    r = c.get(f"{base}/raw/0_1_2/24_16_16/0_0_0?roi=rr&scale=1&supervoxels=true")
    got = np.frombuffer(r.content, "<u8").reshape(16, 16, 24)
    m1 = inroi.repeat(8, 0).repeat(8, 1).repeat(8, 2)
    assert np.array_equal(got, np.where(m1, sv1, 0))
    # 2-D raw: 16-bit RGBA PNG whose bytes are the LE labels
    for dims, size, off, plane in (
            ("0_1", "40_30", "3_1_7", bodies[7, 1:31, 3:43]),
            ("xz", "40_20", "3_5_7", bodies[7:27, 5, 3:43]),
            ("1_2", "30_20", "3_1_7", bodies[7:27, 1:31, 3])):
        r = c.get(f"{base}/raw/{dims}/{size}/{off}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
        w, h, depth, rows = _png_rows(r.content)
        assert (h, w, depth) == (*plane.shape, 16)
        assert np.array_equal(np.frombuffer(rows, "<u8").reshape(plane.shape), plane)
        img = Image.open(io.BytesIO(r.content))
        assert img.size == (w, h)
    r = c.get(f"{base}/raw/0_1/40_30/3_1_7/png?supervoxels=true")
    assert np.array_equal(np.frombuffer(_png_rows(r.content)[3], "<u8").reshape(30, 40),
                          m.sv[7, 1:31, 3:43])
    # pseudocolor: one color per body, background transparent (decoded with Pillow)
    r = c.get(f"{base}/pseudocolor/0_1/48_32/0_0_2")
    rgba = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert np.array_equal(rgba, label_colors(bodies[2]))
    assert (rgba[:5, :5, 3] == 0).all() and (rgba[bodies[2] != 0][:, 3] == 255).all()
    r = c.get(f"{base}/pseudocolor/0_1/48_32/0_0_2?roi=rr")
    rgba = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert np.array_equal(rgba, label_colors(np.where(vmask[2], bodies[2], 0)))
    # sparsevol-by-point == sparsevol of the body / supervoxel at the point
    lab, sv = int(bodies[20, 20, 20]), int(m.sv[20, 20, 20])
    r = c.get(f"{base}/sparsevol-by-point/20_20_20")
    assert r.content == c.get(f"{base}/sparsevol/{lab}").content
    assert np.array_equal(spans_to_mask(decode_rles(r.content), SHAPE), bodies == lab)
    r = c.get(f"{base}/sparsevol-by-point/20_20_20?supervoxels=true&format=srles&minz=21")
    want = (m.sv == sv) & (np.arange(nz)[:, None, None] >= 21)
    assert np.array_equal(spans_to_mask(decode_srles(r.content), SHAPE), want)
    # existing-labels, sparsevols-coarse (all, a sub-range, with bounds)
    bl = m.body_list()
    labels = sorted(bl)
    assert c.get(f"{base}/existing-labels").json() == labels
    allc = _coarse_stream(c.get(f"{base}/sparsevols-coarse/0/{2**64 - 1}").content)
    assert sorted(allc) == labels
    for b in labels[:6]:
        assert np.array_equal(spans_to_mask(allc[b], (2, 2, 3)), _block_mask(bodies == b))
    sub = _coarse_stream(c.get(f"{base}/sparsevols-coarse/{labels[3]}/{labels[7]}").content)
    assert list(sub) == labels[3:8]
    bnd = _coarse_stream(c.get(f"{base}/sparsevols-coarse/{labels[0]}/{labels[-1]}"
                               f"?minz=16&maxx=15").content)
    for b in labels:
        bm = _block_mask(bodies == b)
        bm[0] = False
        bm[:, :, 1:] = False
        if bm.any():
            assert np.array_equal(spans_to_mask(bnd[b], (2, 2, 3)), bm)
        else:
            assert b not in bnd
    # indices-compressed: stored lz4 frames of the same LabelIndex as GET index
    ask = [labels[2], 12345, labels[0], 0]
    data = c.request("GET", f"{base}/indices-compressed", json=ask).content
    pos = 0
    for want_lab in ask:
        n, got_lab = struct.unpack_from("<QQ", data, pos)
        pos += 16
        assert got_lab == want_lab
        if want_lab in bl:
            assert data[pos] == 0x80  # DVID serialization: LZ4, no checksum
            idx = protos.LabelIndex.FromString(deserialize(data[pos:pos + n]))
            assert idx == protos.LabelIndex.FromString(c.get(f"{base}/index/{want_lab}").content)
            pos += n
        else:
            assert n == 0
    assert pos == len(data)
    assert c.request("GET", f"{base}/indices-compressed", json=[]).content == b""
    # POST extents replaces this version's extents
    assert c.post(f"{base}/extents", json={"MinPoint": [-5, 0, 1],
                                           "MaxPoint": [100, 63, 31]}).status_code == 200
    ext = c.get(f"{base}/info").json()["Extended"]
    assert (ext["MinPoint"], ext["MaxPoint"]) == ([-5, 0, 1], [100, 63, 31])
    assert c.post(f"{base}/extents", json={"MaxPoint": [47, 31, 31]}).status_code == 200
    ext = c.get(f"{base}/info").json()["Extended"]
    assert (ext["MinPoint"], ext["MaxPoint"]) == ([-5, 0, 1], [47, 31, 31])
    # ingest-supervoxels: stored as given at scale 0 and 1, nothing indexed or extended
    maxlabel = c.get(f"{base}/maxlabel").json()
    blk = np.full((BS, BS, BS), BIG + 900, np.uint64)
    blk[3:9, 2:5, 1:12] = BIG + 901
    stream = encode_stream([(5, 0, 0, gzip.compress(encode_block(blk)))])
    assert c.post(f"{base}/ingest-supervoxels", content=stream).status_code == 200
    assert c.post(f"{base}/ingest-supervoxels?scale=1", content=stream).status_code == 200
    for s in (0, 1):
        r = c.get(f"{base}/raw/0_1_2/16_16_16/80_0_0?supervoxels=true&scale={s}")
        assert np.array_equal(np.frombuffer(r.content, "<u8").reshape(blk.shape), blk)
    assert c.get(f"{base}/size/{BIG + 900}").status_code == 404
    assert c.get(f"{base}/maxlabel").json() == maxlabel
    assert c.get(f"{base}/info").json()["Extended"]["MaxPoint"] == [47, 31, 31]


def test_renumber_history_splits_across_versions(server, client) -> None:
    c = client
    root, base0, m0 = _setup(c)
    assert c.post(f"/api/node/{root}/commit", json={}).status_code == 200
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    base = f"/api/node/{child}/seg"
    m = m0.copy()
    svs = sorted(m.body_list())
    a, others = svs[0], svs[1:6]
    r = c.post(f"{base}/merge", json=[a, *others])
    assert r.status_code == 200
    mut_merge = r.json()["MutationID"]
    for s in others:
        m.map[s] = a
    # an unrelated merge whose mappings renumber must preserve
    u1, u2 = svs[10], svs[11]
    assert c.post(f"{base}/merge", json=[u1, u2]).status_code == 200
    m.map[u2] = u1
    sv = others[1]
    where = m.sv == sv
    mask = where & (np.arange(SHAPE[2])[None, None, :] < int(np.median(np.nonzero(where)[2])))
    j = c.post(f"{base}/split-supervoxel/{sv}", content=rle_body(mask)).json()
    m.sv[mask] = j["SplitSupervoxel"]
    m.sv[where & ~mask] = j["RemainSupervoxel"]
    m.map[j["SplitSupervoxel"]] = m.map[j["RemainSupervoxel"]] = a
    r = c.post(f"{base}/cleave/{a}", json=[others[3]])
    cleaved = r.json()["CleavedLabel"]
    m.map[others[3]] = cleaved
    # renumber: a -> NEW1, cleaved -> NEW2
    new1, new2 = BIG + 5000, BIG + 5001
    before = dict(line.split() for line in c.get(f"{base}/mappings").text.splitlines())
    r = c.post(f"{base}/renumber", json=[new1, a, new2, cleaved])
    assert r.status_code == 200, r.text
    for s, b in list(m.map.items()):
        if b == a:
            m.map[s] = new1
        elif b == cleaved:
            m.map[s] = new2
    m.map[a] = new1
    bodies = m.bodies()
    got = np.frombuffer(c.get(f"{base}/raw/0_1_2/48_32_32/0_0_0").content, "<u8")
    assert np.array_equal(got.reshape(SHAPE), bodies)
    after = dict(line.split() for line in c.get(f"{base}/mappings").text.splitlines())
    assert after[str(u2)] == str(u1) and before[str(u2)] == str(u1)
    assert {k for k, v in after.items() if v not in (str(new1), str(new2))} == \
        {k for k, v in before.items() if v not in (str(a), str(cleaved))}
    for lab in (a, cleaved):
        assert c.get(f"{base}/size/{lab}").status_code == 404
    assert c.get(f"{base}/size/{new1}").json() == {"voxels": int((bodies == new1).sum())}
    assert sorted(c.get(f"{base}/supervoxels/{new2}").json()) == [others[3]]
    assert c.request("GET", f"{base}/mapping", json=[a, others[0], u2]).json() == \
        [new1, new1, u1]
    assert c.get(f"{base}/maxlabel").json()["maxlabel"] >= new2
    assert np.array_equal(spans_to_mask(decode_rles(c.get(f"{base}/sparsevol/{new1}").content),
                                        SHAPE), bodies == new1)
    muts = c.get(f"{base}/mutations").json()
    assert [x["Action"] for x in muts] == [
        f"{a}-complete" for a in ("merge", "merge", "split-supervoxel", "cleave", "renumber",
                                  "renumber")]
    assert (muts[-2]["NewLabel"], muts[-2]["OrigLabel"]) == (new1, a)
    # parent untouched
    got0 = np.frombuffer(c.get(f"{base0}/raw/0_1_2/48_32_32/0_0_0").content, "<u8")
    assert np.array_equal(got0.reshape(SHAPE), m0.bodies())
    # mutations-range over root..child == root's records + child's
    rng = c.get(f"{base}/mutations-range/{root}/{child}").json()
    assert rng == c.get(f"{base0}/mutations").json() + muts
    assert c.get(f"{base}/mutations-range/{child}/{child}").json() == muts
    # a grandchild: history spans two versions, supervoxel-splits walks to the root
    assert c.post(f"/api/node/{child}/commit", json={}).status_code == 200
    grand = c.post(f"/api/node/{child}/newversion", json={}).json()["child"]
    bg = f"/api/node/{grand}/seg"
    assert c.post(f"{bg}/merge", json=[new1, new2]).status_code == 200
    ss = c.get(f"{bg}/supervoxel-splits").json()
    assert ss == [child, [[j["MutationID"], sv, j["RemainSupervoxel"],
                           j["SplitSupervoxel"]]]]
    assert c.get(f"{base0}/supervoxel-splits").json() == []
    hist = c.get(f"{bg}/history/{new1}/{root}/{grand}").text
    objs = [json.JSONDecoder().raw_decode(hist, i)[0] for i in _starts(hist)]
    assert [o["Action"] for o in objs] == ["merge", "split-supervoxel", "cleave", "merge"]
    assert objs[0] == {"Action": "merge", "Target": a, "Labels": others}
    assert objs[1] == {"Action": "split-supervoxel", "Supervoxel": sv,
                       "SplitSupervoxel": j["SplitSupervoxel"],
                       "RemainSupervoxel": j["RemainSupervoxel"]}
    assert objs[2]["CleavedLabel"] == cleaved and objs[2]["CleavedSupervoxels"] == [others[3]]
    assert hist.startswith("{") and "}{" in hist and "},{" not in hist
    assert mut_merge > 0
    # only the grandchild's own merge when the range starts at the grandchild
    assert c.get(f"{bg}/history/{new1}/{grand}/{grand}").text == \
        json.dumps({"Action": "merge", "Target": new1, "Labels": [new2]},
                   separators=(",", ":"))
    server.restart()
    with httpx.Client(base_url=server.url, timeout=60) as c2:
        assert c2.get(f"{bg}/supervoxel-splits").json() == ss
        assert c2.request("GET", f"{base}/mapping", json=[a, u2]).json() == [new1, u1]
        assert c2.get(f"{bg}/history/{new1}/{root}/{grand}").text == hist


def _starts(text: str) -> list[int]:
    """Offsets of the top-level JSON objects of a concatenation."""
    out, depth, instr, esc = [], 0, False, False
    for i, ch in enumerate(text):
        if instr:
            esc = (ch == "\\") and not esc
            if ch == '"' and not esc:
                instr = False
            continue
        if ch == '"':
            instr = True
        elif ch == "{":
            if depth == 0:
                out.append(i)
            depth += 1
        elif ch == "}":
            depth -= 1
    return out


def _snapshot(c: httpx.Client, base: str) -> tuple[bytes, ...]:
    return (c.get(f"{base}/raw/0_1_2/48_32_32/0_0_0").content,
            c.get(f"{base}/raw/0_1_2/48_32_32/0_0_0?supervoxels=true").content,
            c.get(f"{base}/raw/0_1_2/48_32_32/0_0_0?supervoxels=true&scale=1").content,
            c.get(f"{base}/mutations").content, c.get(f"{base}/mappings").content,
            c.get(f"{base}/listlabels?sizes=true").content, c.get(f"{base}/info").content,
            c.get(f"{base}/maxlabel").content)


def test_bad_inputs_change_nothing(server, client) -> None:
    c = client
    root, base, m = _setup(c)
    c.post(f"/api/repo/{root}/instance", json={"typename": "roi", "dataname": "rr"})
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    other = c.post("/api/repos", json={}).json()["root"]
    labels = sorted(m.body_list())
    a, b = labels[0], labels[1]
    before = _snapshot(c, base)
    blk = gzip.compress(encode_block(np.ones((BS, BS, BS), np.uint64)))
    idx = protos.LabelIndex(label=a)
    idx.blocks[encode_block_coord(0, 0, 0)].counts[a] = 1
    bad = [
        ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0/jpg", None, 400),
        ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0/octet-stream/x", None, 400),
        ("GET", f"{base}/raw/0_1/16_16/0_0_0/jpg", None, 400),
        ("GET", f"{base}/raw/0_1/16_16_16/0_0_0", None, 400),
        ("GET", f"{base}/raw/2_1/16_16/0_0_0", None, 400),
        ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0?roi=nosuch", None, 400),
        ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0?roi=kv", None, 400),
        ("GET", f"{base}/pseudocolor/0_1_2/16_16_16/0_0_0", None, 400),
        ("GET", f"{base}/pseudocolor/0_1/16_16/0_0_0?scale=2", None, 400),
        ("GET", f"{base}/sparsevol-by-point/0_0_0", None, 400),  # background
        ("GET", f"{base}/sparsevol-by-point/1000_0_0", None, 400),  # unwritten
        ("GET", f"{base}/sparsevol-by-point/1_2", None, 400),
        ("GET", f"{base}/sparsevol-by-point/20_20_20?format=xml", None, 400),
        ("GET", f"{base}/sparsevols-coarse/10/5", None, 400),
        ("GET", f"{base}/sparsevols-coarse/x/5", None, 400),
        ("GET", f"{base}/sparsevols-coarse/1", None, 400),
        ("GET", f"{base}/sparsevols-coarse/-1/5", None, 400),
        ("GET", f"{base}/indices-compressed", {"a": 1}, 400),
        ("GET", f"{base}/indices-compressed", b"[1,", 400),
        ("GET", f"{base}/indices-compressed", list(range(1, 50_002)), 400),
        ("GET", f"{base}/indices-compressed", [1, -2], 400),
        ("GET", f"{base}/history/0/{root}/{root}", None, 400),
        ("GET", f"{base}/history/{a}/{root}", None, 400),
        ("GET", f"{base}/history/{a}/{root}/zzzz", None, 400),
        ("GET", f"{base}/history/{a}/{root}/{other}", None, 400),
        ("GET", f"{base}/history/{BIG + 777}/{root}/{root}", None, 404),
        ("GET", f"{base}/mutations-range/{root}/{other}", None, 400),
        ("GET", f"{base}/mutations-range/{root}", None, 400),
        ("POST", f"{base}/renumber", [], 400),
        ("POST", f"{base}/renumber", [BIG + 5000], 400),
        ("POST", f"{base}/renumber", [BIG + 5000, a, BIG + 5001], 400),
        ("POST", f"{base}/renumber", [0, a], 400),
        ("POST", f"{base}/renumber", [BIG + 5000, 0], 400),
        ("POST", f"{base}/renumber", [b, a], 400),  # target exists
        ("POST", f"{base}/renumber", [BIG + 5000, BIG + 777], 400),  # no such body
        ("POST", f"{base}/renumber", [BIG + 5000, a, BIG + 5000, b], 400),
        ("POST", f"{base}/renumber", [BIG + 5000, a, BIG + 5001, a], 400),
        ("POST", f"{base}/renumber", [b, a, BIG + 5000, b], 400),  # chain
        ("POST", f"{base}/renumber", [BIG + 5000, a, BIG + 5001, BIG + 777], 400),
        ("POST", f"{base}/renumber", {"1": 2}, 400),
        ("POST", f"{base}/renumber", [BIG + 5000, "a"], 400),
        ("POST", f"{base}/renumber", b"[1,2", 400),
        ("POST", f"{base}/extents", {"MinPoint": [0, 0]}, 400),
        ("POST", f"{base}/extents", {"MinPoint": [0, 0, "x"]}, 400),
        ("POST", f"{base}/extents", {"MinPoint": [0, 0, 2**31]}, 400),
        ("POST", f"{base}/extents", {"MinPoint": [50, 0, 0]}, 400),  # > MaxPoint
        ("POST", f"{base}/extents", {"MinPoint": [0, 0, 0], "MaxPoint": [5, -1, 5]}, 400),
        ("POST", f"{base}/extents", {"Min": [0, 0, 0]}, 400),
        ("POST", f"{base}/extents", [1, 2, 3], 400),
        ("POST", f"{base}/ingest-supervoxels", encode_stream([(0, 0, 0, b"")]), 400),
        ("POST", f"{base}/ingest-supervoxels", encode_stream([(0, 0, 0, b"notgzip")]), 400),
        ("POST", f"{base}/ingest-supervoxels", encode_stream([(0, 0, 0, blk)]) + b"\x07",
         400),
        ("POST", f"{base}/ingest-supervoxels", encode_stream(
            [(0, 0, 0, blk), (1, 0, 0, gzip.compress(encode_block(
                np.ones((32, 32, 32), np.uint64))))]), 400),
        ("POST", f"{base}/ingest-supervoxels?scale=2", encode_stream([(0, 0, 0, blk)]), 400),
    ]
    for method, url, body, status in bad:
        kw: dict = {}
        if isinstance(body, bytes):
            kw["content"] = body
        elif body is not None:
            kw["json"] = body
        r = c.request(method, url, **kw)
        assert r.status_code == status, (method, url, r.status_code, r.text)
        assert r.headers["content-type"].startswith("text/plain"), (url, r.text)
    assert _snapshot(c, base) == before
    # mutations on a locked node
    assert c.post(f"/api/node/{root}/commit", json={}).status_code == 200
    for url, body in ((f"{base}/renumber", [BIG + 5000, a]),
                      (f"{base}/extents", {"MinPoint": [0, 0, 0], "MaxPoint": [1, 1, 1]}),
                      (f"{base}/ingest-supervoxels", encode_stream([(0, 0, 0, blk)]))):
        r = c.post(url, content=body) if isinstance(body, bytes) else c.post(url, json=body)
        assert r.status_code == 400 and "locked" in r.text, r.text
    assert _snapshot(c, base) == before
    # history with from after to
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    r = c.get(f"/api/node/{child}/seg/history/{a}/{child}/{root}")
    assert r.status_code == 400
    r = c.get(f"/api/node/{child}/seg/mutations-range/{child}/{root}")
    assert r.status_code == 400
