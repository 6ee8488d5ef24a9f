"""In-process labelmap API tests: formats against numpy oracles and bad inputs that must be
rejected with 4xx and change nothing."""

from __future__ import annotations

import gzip
import struct

import lz4.block
import numpy as np
import pytest
from starlette.testclient import TestClient

from datatypes import protos
from datatypes.common.blockstream import decode_records, encode_stream
from datatypes.labelmap.block_codec import decode_block, encode_block
from datatypes.labelmap.rle import (
    decode_binary_blocks,
    decode_block_coord,
    decode_rles,
    decode_sparsevol_coarse,
    decode_srles,
    spans_to_mask,
)
from dvidpy.config import Settings
from server import create_app
from tests.datatypes.labelmap.labelmap_model import Model, check_version, rle_body

BS = 16
BIG = 2**35


@pytest.fixture
def env():
    c = TestClient(create_app(Settings.memory()))
    root = c.post("/api/repos", json={}).json()["root"]
    r = c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}",
        "MaxDownresLevel": "2"})
    assert r.status_code == 200, r.text
    base = f"/api/node/{root}/seg"
    rng = np.random.default_rng(1)
    # 64 x 32 x 32 (x, y, z): Voronoi-ish slabs of 12 supervoxels with ids above 2**32
    vol = np.zeros((32, 32, 64), dtype=np.uint64)
    z, y, x = np.indices(vol.shape)
    seeds = rng.integers(0, [64, 32, 32], size=(12, 3))
    d = ((x[..., None] - seeds[:, 0]) ** 2 + (y[..., None] - seeds[:, 1]) ** 2
         + (z[..., None] - seeds[:, 2]) ** 2)
    vol[:] = BIG + np.argmin(d, axis=-1).astype(np.uint64)
    vol[:, :, 48:] = 0  # one column of blocks left empty
    assert c.post(f"{base}/raw/0_1_2/64_32_32/0_0_0", content=lz4.block.compress(
        vol.tobytes(), store_size=False), params={"compression": "lz4"}).status_code == 200
    m = Model(vol.shape)  # type: ignore[arg-type]
    m.sv = vol.copy()
    return c, root, base, m


def _snapshot(c: TestClient, base: str) -> tuple[bytes, ...]:
    return (c.get(f"{base}/raw/0_1_2/64_32_32/0_0_0").content,
            c.get(f"{base}/raw/0_1_2/64_32_32/0_0_0?supervoxels=true").content,
            c.get(f"{base}/raw/0_1_2/32_16_16/0_0_0?scale=1&supervoxels=true").content,
            c.get(f"{base}/mutations").content,
            c.get(f"{base}/mappings").content,
            c.get(f"{base}/listlabels?sizes=true").content)


def test_info_and_formats(env) -> None:
    c, _root, base, m = env
    info = c.get(f"{base}/info").json()
    assert info["Base"]["TypeName"] == "labelmap"
    assert info["Base"]["Compression"].startswith("gzip")
    ext = info["Extended"]
    assert ext["BlockSize"] == [BS, BS, BS] and ext["MaxDownresLevel"] == 2
    assert ext["Values"][0]["DataType"] == "uint64"
    assert ext["MinPoint"] == [0, 0, 0] and ext["MaxPoint"] == [63, 31, 31]
    assert ext["MaxRepoLabel"] == int(m.sv.max())
    assert info["Extents"]["MaxPoint"] == [63, 31, 31]
    check_version(c, base, m, 2)
    # unaligned raw read, gzip / lz4 / googlegzip
    r = c.get(f"{base}/raw/0_1_2/24_8_16/5_3_7?compression=gzip")
    assert np.array_equal(np.frombuffer(gzip.decompress(r.content), "<u8").reshape(16, 8, 24),
                          m.sv[7:23, 3:11, 5:29])
    r = c.get(f"{base}/raw/0_1_2/24_8_16/5_3_7?compression=lz4")
    raw = lz4.block.decompress(r.content, uncompressed_size=24 * 8 * 16 * 8)
    assert np.array_equal(np.frombuffer(raw, "<u8").reshape(16, 8, 24), m.sv[7:23, 3:11, 5:29])
    r = c.get(f"{base}/raw/0_1_2/16_16_16/0_0_0?compression=googlegzip")
    assert r.headers["content-encoding"] == "gzip"
    # blocks in every compression
    sv_blocks = {}
    for comp in ("", "lz4", "gzip", "uncompressed", "blocks"):
        r = c.get(f"{base}/blocks/64_32_32/0_0_0?supervoxels=true&compression={comp}")
        recs = decode_records(r.content)
        assert len(recs) == 16  # all-zero blocks written by POST raw are stored too
        for rec in recs:
            p = bytes(rec.payload)
            if comp in ("", "lz4"):
                arr = np.frombuffer(lz4.block.decompress(p, uncompressed_size=BS**3 * 8), "<u8")
            elif comp == "gzip":
                arr = np.frombuffer(gzip.decompress(p), "<u8")
            elif comp == "uncompressed":
                arr = np.frombuffer(p, "<u8")
            else:
                arr = decode_block(gzip.decompress(p))
            arr = arr.reshape(BS, BS, BS)
            want = m.sv[rec.z * BS:(rec.z + 1) * BS, rec.y * BS:(rec.y + 1) * BS,
                        rec.x * BS:(rec.x + 1) * BS]
            assert np.array_equal(arr, want)
            sv_blocks[(rec.x, rec.y, rec.z)] = p
    r = c.get(f"{base}/specificblocks?blocks=0,0,0,9,9,9,1,1,1&supervoxels=true")
    recs = decode_records(r.content)
    assert [(q.x, q.y, q.z) for q in recs] == [(0, 0, 0), (1, 1, 1)]
    # merged → blocks compression rewrites the label list
    a, b = int(m.sv[0, 0, 0]), int(m.sv[0, 0, 15])
    if a != b:
        assert c.post(f"{base}/merge", json=[a, b]).status_code == 200
        m.map[b] = a
        r = c.get(f"{base}/specificblocks?blocks=0,0,0")
        arr = decode_block(gzip.decompress(bytes(decode_records(r.content)[0].payload)))
        assert np.array_equal(arr, m.bodies()[:BS, :BS, :BS])
    # point queries, sparsevol variants
    pts = [[0, 0, 0], [63, 31, 31], [5, 6, 7], [100, 0, 0]]
    r = c.request("GET", f"{base}/labels", json=pts)
    bodies = m.bodies()
    assert r.json() == [int(bodies[0, 0, 0]), 0, int(bodies[7, 6, 5]), 0]
    assert c.get(f"{base}/label/5_6_7").json() == {"Label": int(bodies[7, 6, 5])}
    assert c.get(f"{base}/label/5_6_7?supervoxels=true").json() == {"Label": int(m.sv[7, 6, 5])}
    lab = int(bodies[7, 6, 5])
    want = bodies == lab
    r = c.get(f"{base}/sparsevol/{lab}?format=srles")
    assert np.array_equal(spans_to_mask(decode_srles(r.content), want.shape), want)
    r = c.get(f"{base}/sparsevol/{lab}?minz=10&maxz=10")
    assert np.array_equal(spans_to_mask(decode_rles(r.content), want.shape),
                          want & (np.arange(32)[:, None, None] == 10))
    _, label, blocks = decode_binary_blocks(c.get(f"{base}/sparsevol/{lab}?format=blocks").content)
    assert label == lab
    got = np.zeros_like(want)
    for (x0, y0, z0), mask in blocks:
        got[z0:z0 + BS, y0:y0 + BS, x0:x0 + BS] = mask
    assert np.array_equal(got, want)
    # scale 1 sparsevol equals the body mask of the downres'd supervoxels
    from datatypes.labelmap.downres import downres_labels
    m1 = Model((16, 16, 32))
    m1.sv, m1.map = downres_labels(m.sv), m.map
    r = c.get(f"{base}/sparsevol/{lab}?scale=1")
    assert np.array_equal(spans_to_mask(decode_rles(r.content), (16, 16, 32)),
                          m1.bodies() == lab)
    coarse = decode_sparsevol_coarse(c.get(f"{base}/sparsevol-coarse/{lab}").content)
    cm = spans_to_mask(coarse, (2, 2, 4))
    want_blocks = want.reshape(2, BS, 2, BS, 4, BS).any(axis=(1, 3, 5))
    assert np.array_equal(cm, want_blocks)
    sz = c.get(f"{base}/sparsevol-size/{lab}").json()
    assert sz["voxels"] == int(want.sum()) and sz["numblocks"] == int(want_blocks.sum())
    assert c.head(f"{base}/sparsevol/{lab}").status_code == 200
    assert c.head(f"{base}/sparsevol/{BIG + 999}").status_code == 204
    # index protobuf round trip and listlabels
    idx = protos.LabelIndex.FromString(c.get(f"{base}/index/{lab}").content)
    assert idx.label == lab
    total = sum(n for svc in idx.blocks.values() for n in svc.counts.values())
    assert total == int(want.sum())
    for k in idx.blocks:
        x, y, z = decode_block_coord(k)
        assert want_blocks[z, y, x]
    ll = np.frombuffer(c.get(f"{base}/listlabels?sizes=true").content, "<u8").reshape(-1, 2)
    assert sorted(ll[:, 0].tolist()) == sorted(m.body_list())
    assert dict(ll.tolist())[lab] == int(want.sum())
    assert c.get(f"{base}/lastmod/{lab}").json()["mutation id"] > 0
    assert c.get(f"{base}/maxlabel").json() == {"maxlabel": int(m.sv.max())}
    assert c.get(f"{base}/nextlabel").json() == {"nextlabel": int(m.sv.max()) + 1}


def test_post_blocks_downres_and_indices(env) -> None:
    c, _root, base, m = env
    blk = np.full((BS, BS, BS), BIG + 500, dtype=np.uint64)
    blk[:4] = BIG + 501
    payload = gzip.compress(encode_block(blk))
    stream = encode_stream([(3, 1, 1, payload)])
    assert c.post(f"{base}/blocks?downres=true", content=stream).status_code == 200
    m.sv[16:32, 16:32, 48:64] = blk
    check_version(c, base, m, 2)
    # stored payload is passed through unchanged for compression=blocks
    r = c.get(f"{base}/specificblocks?blocks=3,1,1&supervoxels=true")
    assert bytes(decode_records(r.content)[0].payload) == payload
    # noindexing then POST index restores sizes
    blk2 = np.full((BS, BS, BS), BIG + 600, dtype=np.uint64)
    stream = encode_stream([(3, 0, 0, gzip.compress(encode_block(blk2)))])
    assert c.post(f"{base}/blocks?noindexing=true", content=stream).status_code == 200
    assert c.get(f"{base}/size/{BIG + 600}").status_code == 404
    idx = protos.LabelIndex(label=BIG + 600)
    from datatypes.labelmap.rle import encode_block_coord
    idx.blocks[encode_block_coord(3, 0, 0)].counts[BIG + 600] = BS**3
    assert c.post(f"{base}/index/{BIG + 600}", content=idx.SerializeToString()).status_code == 200
    assert c.get(f"{base}/size/{BIG + 600}").json() == {"voxels": BS**3}
    # mappings POST/GET
    ops = protos.MappingOps()
    ops.mappings.add(mapped=BIG + 600, original=[BIG + 500])
    assert c.post(f"{base}/mappings", content=ops.SerializeToString()).status_code == 200
    assert f"{BIG + 500} {BIG + 600}\n" in c.get(f"{base}/mappings").text
    r = c.request("GET", f"{base}/mapping", json=[BIG + 500, BIG + 501, 12345])
    # BIG+500 is mapped but not in BIG+600's index → 0 unless nolookup
    assert r.json() == [0, BIG + 501, 0]
    r = c.request("GET", f"{base}/mapping?nolookup=true", json=[BIG + 500])
    assert r.json() == [BIG + 600]


def test_bad_inputs_change_nothing(env) -> None:
    c, root, base, m = env
    bl = m.body_list()
    labels = sorted(bl)
    a, b = labels[0], labels[1]
    before = _snapshot(c, base)
    blk = gzip.compress(encode_block(np.ones((BS, BS, BS), dtype=np.uint64)))
    bad = [
        ("GET", f"{base}/size/0", None, 400),
        ("GET", f"{base}/sparsevol/0", None, 400),
        ("GET", f"{base}/supervoxels/0", None, 400),
        ("GET", f"{base}/size/{BIG + 12345}", None, 404),
        ("GET", f"{base}/sparsevol/{BIG + 12345}", None, 404),
        ("GET", f"{base}/sparsevol-coarse/{BIG + 12345}", None, 404),
        ("GET", f"{base}/index/{BIG + 12345}", None, 404),
        ("GET", f"{base}/size/abc", None, 400),
        ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0?scale=3", None, 400),
        ("GET", f"{base}/label/0_0_0?scale=-1", None, 400),
        ("GET", f"{base}/raw/0_1_2/12_16_16/0_0_0?compression=google", None, 400),
        ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0?compression=zstd", None, 400),
        ("GET", f"{base}/blocks/16_16_16/3_0_0", None, 400),
        ("GET", f"{base}/specificblocks?blocks=1,2", None, 400),
        ("GET", f"{base}/sparsevol/{a}?format=xml", None, 400),
        ("POST", f"{base}/merge", [a, 0], 400),
        ("POST", f"{base}/merge", [a, a], 400),
        ("POST", f"{base}/merge", [a, b, a], 400),
        ("POST", f"{base}/merge", [a], 400),
        ("POST", f"{base}/merge", [a, BIG + 12345], 400),
        ("POST", f"{base}/merge", [BIG + 12345, a], 400),
        ("POST", f"{base}/merge", {"a": 1}, 400),
        ("POST", f"{base}/merge", [a, -1], 400),
        ("POST", f"{base}/merge", b"[1,2", 400),
        ("POST", f"{base}/cleave/{a}", [b], 400),
        ("POST", f"{base}/cleave/{a}", bl[a], 400),
        ("POST", f"{base}/cleave/{a}", [], 400),
        ("POST", f"{base}/cleave/0", [a], 400),
        ("POST", f"{base}/cleave/{BIG + 12345}", [a], 400),
        ("POST", f"{base}/split-supervoxel/{a}", b"\x00\x03\x00\x00" + struct.pack(
            "<II", 0, 2) + struct.pack("<4i", 0, 0, 0, 1), 400),  # span count too large
        ("POST", f"{base}/split-supervoxel/{a}", b"\x01\x03\x00\x00" + struct.pack(
            "<II", 0, 0), 400),
        ("POST", f"{base}/split-supervoxel/{a}", rle_body(m.sv != a), 400),  # outside sv
        ("POST", f"{base}/split-supervoxel/{BIG + 12345}", rle_body(m.sv == a), 400),
        ("POST", f"{base}/split/{a}", rle_body(m.bodies() == a), 400),  # whole body
        ("POST", f"{base}/split/{a}", rle_body(m.bodies() == b), 400),  # outside body
        ("POST", f"{base}/raw/0_1_2/16_16_16/0_0_0", b"\x00" * 100, 400),
        ("POST", f"{base}/raw/0_1_2/16_16_16/3_0_0", b"\x00" * (8 * BS**3), 400),
        ("POST", f"{base}/raw/0_1_2/16_16_16/0_0_0?compression=lz4", b"garbage", 400),
        ("POST", f"{base}/raw/0_1_2/16_16_16/0_0_0?compression=gzip", b"garbage", 400),
        ("POST", f"{base}/raw/0_1/16_16/0_0", b"", 400),
        ("POST", f"{base}/blocks", encode_stream([(0, 0, 0, b"notgzip")]), 400),
        ("POST", f"{base}/blocks", encode_stream([(0, 0, 0, b"")]), 400),
        ("POST", f"{base}/blocks", encode_stream([(0, 0, 0, blk)]) + b"\x01\x02", 400),
        ("POST", f"{base}/blocks", encode_stream(
            [(0, 0, 0, blk), (1, 0, 0, gzip.compress(b"\x02\x00\x00\x00" * 4))]), 400),
        ("POST", f"{base}/blocks", encode_stream(
            [(0, 0, 0, gzip.compress(encode_block(np.ones((32, 32, 32), np.uint64))))]), 400),
        ("POST", f"{base}/blocks?scale=1&downres=true", encode_stream([(0, 0, 0, blk)]), 400),
        ("POST", f"{base}/blocks?scale=5", encode_stream([(0, 0, 0, blk)]), 400),
        ("POST", f"{base}/mappings", b"\xff\xff\xff", 400),
        ("POST", f"{base}/index/{a}", protos.LabelIndex(label=b).SerializeToString(), 400),
        ("POST", f"{base}/nextlabel/0", None, 400),
        ("GET", f"{base}/labels", [[1, 2]], 400),
        ("GET", f"{base}/sizes", [1, "x"], 400),
    ]
    for method, url, body, status in bad:
        kw = {}
        if isinstance(body, bytes):
            kw["content"] = body
        elif body is not None:
            kw["json"] = body
        r = c.request(method, url, **kw)
        assert r.status_code == status, (method, url, r.status_code, r.text)
        assert r.headers["content-type"].startswith("text/plain"), (url, r.text)
    assert _snapshot(c, base) == before
    # edits on a locked node
    assert c.post(f"/api/node/{root}/commit", json={}).status_code == 200
    for url, body in ((f"{base}/merge", [a, b]), (f"{base}/cleave/{a}", bl[a][:1]),
                      (f"{base}/split-supervoxel/{a}", rle_body(m.sv == a)),
                      (f"{base}/nextlabel/3", None)):
        r = c.post(url, json=body) if not isinstance(body, bytes) else c.post(url, content=body)
        assert r.status_code == 400 and "locked" in r.text
    assert _snapshot(c, base) == before
