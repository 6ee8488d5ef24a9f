"""Hostile input to labelmap (issue 10): block coordinates the keys can't hold, RLE bodies
that ask for unbounded work, requests over the voxel limit, unknown ``roi=``, and bulk
writes committed in bounded batches. Every bad input is a 4xx with a plain-text message
naming the problem, and a snapshot of every read path proves nothing changed."""

from __future__ import annotations

import gzip
import inspect
import re
import struct
import time
import zlib
from pathlib import Path

import lz4.block
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from datatypes.common.blockstream import encode_stream
from datatypes.labelmap import layout as L
from datatypes.labelmap import writes
from datatypes.labelmap.block_codec import encode_block, max_serialization_size
from datatypes.labelmap.datatype import Labelmap
from datatypes.labelmap.rle import spans_to_mask
from dvidpy.config import Settings
from dvidpy.repo import RepoManager
from server import create_app
from tests.datatypes.labelmap.labelmap_model import Model, check_version, rle_body

BS = 16
I32_MAX = 2**31 - 1
LABELMAP_DIR = Path(__file__).resolve().parents[3] / "datatypes" / "labelmap"


def _app(**overrides: int) -> tuple[TestClient, RepoManager, str]:
    s = Settings.memory()
    for k, v in overrides.items():
        setattr(s, k, v)
    mgr = RepoManager(s)
    c = TestClient(create_app(manager=mgr))
    root = c.post("/api/repos", json={}).json()["root"]
    return c, mgr, root


def _labelmap(c: TestClient, root: str, name: str = "seg", max_scale: int = 2) -> str:
    r = c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": name, "BlockSize": f"{BS},{BS},{BS}",
        "MaxDownresLevel": str(max_scale)})
    assert r.status_code == 200, r.text
    return f"/api/node/{root}/{name}"


def _volume(shape: tuple[int, int, int] = (32, 32, 64), seed: int = 1) -> np.ndarray:
    """Slabs of supervoxels 1..8 along x, with a few random ids mixed in."""
    nx = shape[2]
    vol = np.broadcast_to((np.arange(nx, dtype=np.uint64) // 8 + 1)[None, None, :],
                          shape).copy()
    rng = np.random.default_rng(seed)
    vol[rng.random(shape) < 0.05] = 9
    return vol


def _stream(*recs: tuple[int, int, int, np.ndarray]) -> bytes:
    return encode_stream([(x, y, z, gzip.compress(encode_block(a))) for x, y, z, a in recs])


def _snapshot(c: TestClient, base: str) -> tuple[bytes, ...]:
    return (c.get(f"{base}/raw/0_1_2/64_32_32/0_0_0?supervoxels=true").content,
            c.get(f"{base}/raw/0_1_2/32_16_16/0_0_0?scale=1&supervoxels=true").content,
            c.get(f"{base}/raw/0_1_2/16_8_8/0_0_0?scale=2&supervoxels=true").content,
            c.get(f"{base}/info").content,
            c.get(f"{base}/mutations").content,
            c.get(f"{base}/mappings").content,
            c.get(f"{base}/maxlabel").content,
            c.get(f"{base}/listlabels?sizes=true").content)


def _expect(c: TestClient, bad: list[tuple[str, str, bytes | None, int, str]]) -> None:
    for method, url, body, status, pattern in bad:
        r = c.request(method, url, content=body)
        assert r.status_code == status, (method, url, r.status_code, r.text)
        if method != "HEAD":
            assert r.headers["content-type"].startswith("text/plain"), (url, r.text)
            assert re.search(pattern, r.text), (url, pattern, r.text)


@pytest.fixture
def env():
    c, mgr, root = _app()
    base = _labelmap(c, root)
    vol = _volume()
    assert c.post(f"{base}/raw/0_1_2/64_32_32/0_0_0", content=vol.tobytes()).status_code == 200
    return c, mgr, root, base, vol


# ----- declarations ---------------------------------------------------------------------


def test_every_endpoint_is_fully_declared() -> None:
    """No legacy ``{args*}`` template is left, and no handler parses raw path segments or
    query strings or reads JSON without the bounded reader."""
    for spec in Labelmap.routes():
        assert not (spec.segments and spec.segments[-1].rest), spec.template
    for mod in LABELMAP_DIR.glob("*.py"):
        src = mod.read_text()
        for pat in ("call.args", "call.arg(", "call.query", "call.flag(", "call.int_query(",
                    "json.loads("):
            assert pat not in src, (mod.name, pat)
    # handlers that read a body declare it (a GET body is read only when declared)
    for spec in Labelmap.routes():
        src = inspect.getsource(spec.handler)
        if "call.json()" in src or "call.body" in src or "_spans(call" in src:
            assert spec.body is not None, (spec.method, spec.template)


# ----- (a) block coordinates beyond the key encodings ----------------------------------


def test_block_coordinates_beyond_key_limits(env) -> None:
    c, _mgr, _root, base, _vol = env
    blk = np.full((BS, BS, BS), 77, np.uint64)
    big = 2**20  # label-index block keys hold |c| <= 2**20 - 1
    before = _snapshot(c, base)
    keys = r"outside .* label-index block keys"
    int32 = r"int32 voxel coordinate limit"
    _expect(c, [
        ("POST", f"{base}/blocks", _stream((big, 0, 0, blk)), 400, keys),
        ("POST", f"{base}/blocks", _stream((0, 0, 0, blk), (0, -big, 0, blk)), 400, keys),
        ("POST", f"{base}/blocks", _stream((0, 0, I32_MAX, blk)), 400, keys),
        ("POST", f"{base}/blocks?noindexing=true", _stream((big, 0, 0, blk)), 400, keys),
        ("POST", f"{base}/blocks?scale=1", _stream((big // 2, 0, 0, blk)), 400, keys),
        ("POST", f"{base}/blocks?scale=2", _stream((0, -big // 4, 0, blk)), 400, keys),
        ("POST", f"{base}/ingest-supervoxels", _stream((big, 0, 0, blk)), 400, keys),
        ("POST", f"{base}/ingest-supervoxels?scale=2", _stream((big // 4, 1, 1, blk)), 400,
         keys),
        ("POST", f"{base}/raw/0_1_2/16_16_16/{big * BS}_0_0", blk.tobytes(), 400, keys),
        ("POST", f"{base}/raw/0_1_2/16_16_16/0_0_{-big * BS}", blk.tobytes(), 400, keys),
        ("POST", f"{base}/raw/0_1_2/16_16_16/{2**31 - 16}_0_0", blk.tobytes(), 400, keys),
        ("POST", f"{base}/raw/0_1_2/16_16_16/{I32_MAX}_0_0", blk.tobytes(), 400, int32),
        ("GET", f"{base}/raw/0_1_2/16_16_16/0_{I32_MAX}_0", None, 400, int32),
        ("GET", f"{base}/raw/0_1/16_16/0_{I32_MAX - 5}_0", None, 400, int32),
        ("GET", f"{base}/blocks/16_16_16/0_0_{2**31 - 8}", None, 400, int32),
        ("GET", f"{base}/pseudocolor/0_2/16_16/{I32_MAX}_0_0", None, 400, int32),
    ])
    assert _snapshot(c, base) == before
    # the limit is tight: the largest storable block coordinates write and are indexed
    ok = big - 1
    assert c.post(f"{base}/blocks", content=_stream((ok, 0, -ok, blk))).status_code == 200
    assert c.post(f"{base}/blocks?scale=2", content=_stream(
        (ok // 4, 0, 0, blk))).status_code == 200
    r = c.get(f"{base}/sparsevol-size/77")
    assert r.json()["minvoxel"] == [ok * BS, 0, -ok * BS], r.text


# ----- (b) bounded work ----------------------------------------------------------------


def _rle(*spans: tuple[int, int, int, int], count: int | None = None) -> bytes:
    n = len(spans) if count is None else count
    return bytes([0, 3, 0, 0]) + struct.pack("<II", 0, n) + b"".join(
        struct.pack("<4i", *s) for s in spans)


def test_split_rles_are_checked_before_any_work(env) -> None:
    """A 28-byte body with one 2**31-1 voxel span took minutes (and 8 GiB) before its
    400; every RLE is now checked against the edited label's bounding box and voxel count
    with vectorized checks first. The wall-clock bound below is generous (the old code
    needed > 200 s for the first body alone)."""
    c, _mgr, _root, base, vol = env
    sv = 2  # x 8..15: bounding box of its blocks x 0..15, all y, z
    inside = (vol == sv) & (np.arange(32)[:, None, None] < 10)
    many_out = b"".join(struct.pack("<4i", 8, 40 + i % 5, i % 32, 1) for i in range(100_000))
    bad = []
    for ep, what in ((f"split/{sv}", f"label {sv}"),
                     (f"split-supervoxel/{sv}", f"supervoxel {sv}")):
        bad += [
            ("POST", f"{base}/{ep}", _rle((0, 0, 0, I32_MAX)), 400, "leaves the bounding box"),
            ("POST", f"{base}/{ep}", _rle((-(2**31), 0, 0, I32_MAX)), 400, "bounding box"),
            ("POST", f"{base}/{ep}", _rle((I32_MAX - 1, 0, 0, I32_MAX)), 400, "bounding box"),
            ("POST", f"{base}/{ep}", _rle((8, 0, 0, 4), (8, 0, -(2**31), I32_MAX)), 400,
             "bounding box"),
            ("POST", f"{base}/{ep}", bytes([0, 3, 0, 0]) + struct.pack("<II", 0, 100_000)
             + many_out, 400, "bounding box"),
            # inside the box but more voxels than the label has
            ("POST", f"{base}/{ep}", rle_body(np.ones((32, 32, 16), bool)), 400,
             f"more than the .* of {what}"),
            ("POST", f"{base}/{ep}", _rle((0, 0, 0, 5), count=2**32 - 1), 400, "declares"),
            ("POST", f"{base}/{ep}", _rle((0, 0, 0, 0), (3, 3, 3, -7)), 400, "no voxels"),
        ]
    before = _snapshot(c, base)
    t0 = time.perf_counter()
    _expect(c, bad)
    assert time.perf_counter() - t0 < 20
    assert _snapshot(c, base) == before
    # a good split of the same supervoxel still works
    r = c.post(f"{base}/split-supervoxel/{sv}", content=rle_body(inside))
    assert r.status_code == 200, r.text


@settings(max_examples=60, deadline=None)
@given(spans=st.lists(st.tuples(st.integers(-40, 40), st.integers(-3, 3), st.integers(-3, 3),
                                st.integers(1, 70)), min_size=1, max_size=12),
       bx=st.sampled_from([8, 16, 24]))
def test_span_pieces_cut_spans_at_block_boundaries(spans, bx) -> None:
    """Pieces stay inside their block and rasterize to exactly the spans' voxels."""
    bs = (bx, 4, 2)
    s = np.array(spans, dtype=np.int64)
    coords, pieces = writes._span_pieces(s, bs)
    assert sorted(map(tuple, coords.tolist())) == sorted(pieces)
    shape, off = (8, 8, 120), (-45, -4, -4)
    want = spans_to_mask(s, shape, off)
    got = np.zeros(shape, bool)
    for (cx, cy, cz), p in pieces.items():
        assert (p[:, 0] >= cx * bs[0]).all() and (p[:, 0] + p[:, 3] <= (cx + 1) * bs[0]).all()
        assert (p[:, 1] // bs[1] == cy).all() and (p[:, 2] // bs[2] == cz).all()
        assert (p[:, 3] > 0).all()
        got |= spans_to_mask(p, shape, off)
    assert np.array_equal(got, want)


def test_requests_over_the_voxel_limit() -> None:
    """With maxRequestBytes = 1 MiB a request may touch 131072 voxels: boxes, decompressed
    POST raw bodies and posted blocks beyond that are 413 before any work; a gzip record
    that expands past the largest valid block is a 400."""
    c, mgr, root = _app(max_request_bytes=1 << 20)
    base = _labelmap(c, root)
    vol = _volume()
    assert c.post(f"{base}/raw/0_1_2/64_32_32/0_0_0", content=vol.tobytes()).status_code == 200
    before = _snapshot(c, base)
    cube = np.zeros((64, 64, 64), np.uint64).tobytes()
    solid = np.full((BS, BS, BS), 5, np.uint64)
    many = _stream(*[(i, 0, 0, solid) for i in range(33)])  # 33 * 4096 > 131072
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb_gz = bomb.compress(encode_block(solid) + b"\0" * (2 * max_serialization_size(
        (BS, BS, BS)))) + bomb.flush()
    over = r"exceeds the limit of 131072 voxels"
    _expect(c, [
        ("GET", f"{base}/raw/0_1_2/64_64_64/0_0_0", None, 413, over),
        ("GET", f"{base}/raw/0_1_2/1_1_262144/0_0_0", None, 413, over),
        ("GET", f"{base}/isotropic/0_1_2/64_64_64/0_0_0", None, 413, over),
        ("GET", f"{base}/blocks/64_64_64/0_0_0", None, 413, over),
        ("GET", f"{base}/raw/0_1/512_512/0_0_0", None, 413, over),
        ("GET", f"{base}/pseudocolor/0_2/512_512/0_0_0", None, 413, over),
        ("POST", f"{base}/raw/0_1_2/64_64_64/0_0_0?compression=lz4",
         lz4.block.compress(cube, store_size=False), 413, over),
        ("POST", f"{base}/raw/0_1_2/64_64_64/0_0_0?compression=gzip", gzip.compress(cube), 413,
         over),
        ("POST", f"{base}/blocks", many, 413, over),
        ("POST", f"{base}/ingest-supervoxels", many, 413, over),
        ("POST", f"{base}/blocks", encode_stream([(0, 0, 0, bomb_gz)]), 400, "expands beyond"),
        ("POST", f"{base}/ingest-supervoxels", encode_stream([(1, 1, 1, bomb_gz)]), 400,
         "expands beyond"),
    ])
    assert _snapshot(c, base) == before
    assert mgr.resolve(root)[0].instances["seg"].voxel_limit == 131072
    # at the limit a request is served
    assert c.get(f"{base}/raw/0_1_2/64_64_32/0_0_0").status_code == 200


# ----- (c) unknown roi= ------------------------------------------------------------------


def test_unknown_roi_is_400_everywhere(env) -> None:
    c, _mgr, root, base, vol = env
    new = np.full(vol.shape, 500, np.uint64)
    before = _snapshot(c, base)
    bad = []
    for roi in ("nosuch", "seg"):  # no instance; not an roi
        msg = "no ROI instance" if roi == "nosuch" else "not an roi"
        bad += [
            ("POST", f"{base}/raw/0_1_2/64_32_32/0_0_0?roi={roi}", new.tobytes(), 400, msg),
            ("POST", f"{base}/raw/0_1_2/64_32_32/0_0_0?roi={roi}&compression=lz4",
             lz4.block.compress(new.tobytes(), store_size=False), 400, msg),
            ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0?roi={roi}", None, 400, msg),
            ("GET", f"{base}/raw/0_1_2/16_16_16/0_0_0?roi={roi}&compression=google", None,
             400, msg),
            ("GET", f"{base}/raw/0_1/16_16/0_0_0/png?roi={roi}", None, 400, msg),
            ("GET", f"{base}/raw/xz/16_16/0_0_0?roi={roi}&scale=1", None, 400, msg),
            ("GET", f"{base}/isotropic/0_1_2/16_16_16/0_0_0?roi={roi}", None, 400, msg),
            ("GET", f"{base}/pseudocolor/0_1/16_16/0_0_0?roi={roi}", None, 400, msg),
            ("HEAD", f"{base}/raw/0_1_2/16_16_16/0_0_0?roi={roi}", None, 400, msg),
        ]
    _expect(c, bad)
    assert _snapshot(c, base) == before
    # a real ROI of 8^3 blocks (smaller than the 16^3 labelmap blocks): only voxels inside
    # change, also within partly covered blocks
    r = c.post(f"/api/repo/{root}/instance", json={"typename": "roi", "dataname": "r",
                                                    "BlockSize": "8,8,8"})
    assert r.status_code == 200, r.text
    spans = [[0, 0, 0, 2], [1, 2, 5, 6], [3, 3, 7, 7]]  # z, y, x0..x1 (8^3 ROI blocks)
    assert c.post(f"/api/node/{root}/r/roi", json=spans).status_code == 200
    inside = np.zeros(vol.shape, bool)
    for z, y, x0, x1 in spans:
        inside[z * 8:(z + 1) * 8, y * 8:(y + 1) * 8, x0 * 8:(x1 + 1) * 8] = True
    r = c.post(f"{base}/raw/0_1_2/64_32_32/0_0_0?roi=r", content=new.tobytes())
    assert r.status_code == 200, r.text
    m = Model(vol.shape)  # type: ignore[arg-type]
    m.sv = np.where(inside, new, vol)
    check_version(c, base, m, 2)


# ----- bounded batches --------------------------------------------------------------------


def _edits(c: TestClient, base: str, vol: np.ndarray) -> None:
    """Writes that cross batch boundaries at every scale: overwrites, new blocks, posted
    blocks with downres, ingested blocks."""
    assert c.post(f"{base}/raw/0_1_2/64_32_32/0_0_0", content=vol.tobytes()).status_code == 200
    over = _volume((32, 16, 48), seed=7) + np.uint64(20)
    r = c.post(f"{base}/raw/0_1_2/48_16_32/16_16_0", content=over.tobytes())
    assert r.status_code == 200, r.text
    blk = np.full((BS, BS, BS), 300, np.uint64)
    blk[:5] = 301
    r = c.post(f"{base}/blocks?downres=true", content=_stream((0, 0, 1, blk), (3, 1, 1, blk),
                                                               (1, 0, 0, blk + 1)))
    assert r.status_code == 200, r.text
    r = c.post(f"{base}/ingest-supervoxels?scale=1", content=_stream((5, 5, 5, blk)))
    assert r.status_code == 200, r.text


def _state(c: TestClient, base: str) -> tuple[object, ...]:
    labels = np.frombuffer(c.get(f"{base}/listlabels").content, "<u8").tolist()
    return (*_snapshot(c, base)[:3],
            c.get(f"{base}/raw/0_1_2/64_32_32/0_0_0").content,
            c.get(f"{base}/listlabels?sizes=true").content,
            c.get(f"{base}/raw/0_1_2/16_16_16/80_80_80?scale=1&supervoxels=true").content,
            c.get(f"{base}/maxlabel").content,
            c.get(f"{base}/info").json()["Extents"],
            [c.get(f"{base}/sparsevol/{lab}").content for lab in labels],
            [c.get(f"{base}/supervoxel-sizes/{lab}").content for lab in labels])


def test_bulk_writes_in_bounded_batches_match_one_batch(monkeypatch) -> None:
    """With writeBatchBytes of one block, bulk writes commit block by block (in Morton
    order) and end in exactly the state one batch gives; bad input still writes nothing."""
    calls: list[int] = []
    real = writes.WritesMixin.write_blocks

    def spy(self, ctx, scale, blocks, **kw):  # the real method, counted
        calls.append(len(blocks))
        return real(self, ctx, scale, blocks, **kw)

    monkeypatch.setattr(writes.WritesMixin, "write_blocks", spy)
    states, counts = [], []
    for batch in (1 << 30, 8 * BS**3):
        c, _mgr, root = _app(write_batch_bytes=batch)
        base = _labelmap(c, root)
        calls.clear()
        _edits(c, base, _volume())
        counts.append(list(calls))
        before = _snapshot(c, base)
        blk = np.ones((BS, BS, BS), np.uint64)
        good = [(i, 0, 0, blk) for i in range(4)]
        bad_last = encode_stream([(x, y, z, gzip.compress(encode_block(a)))
                                  for x, y, z, a in good] + [(9, 0, 0, b"notgzip")])
        _expect(c, [
            ("POST", f"{base}/blocks?downres=true", bad_last, 400, "block .9, 0, 0.: bad"),
            ("POST", f"{base}/ingest-supervoxels", bad_last, 400, "bad gzipped label block"),
            ("POST", f"{base}/raw/0_1_2/64_32_32/0_0_0", _volume().tobytes()[:-8], 400,
             "expected"),
        ])
        assert _snapshot(c, base) == before
        states.append(_state(c, base))
    assert states[0] == states[1]
    assert counts[0] == [16, 6, 3]  # one write per request
    assert counts[1] == [1] * 25  # one per block
    m = Model((32, 32, 64))
    m.sv = np.frombuffer(states[0][0], "<u8").reshape(32, 32, 64).copy()  # type: ignore[arg-type]
    c, _mgr, root = _app(write_batch_bytes=8 * BS**3)
    base = _labelmap(c, root)
    _edits(c, base, _volume())
    check_version(c, base, m, 2)


def test_morton_order_keeps_parents_together() -> None:
    rng = np.random.default_rng(3)
    coords = rng.integers(-20, 20, size=(300, 3))
    order = writes.morton_order(coords)
    assert sorted(order.tolist()) == list(range(300))
    c = coords[order]
    for s in (1, 2, 3):  # every parent's children form one run
        parents = [tuple(p) for p in (c >> s).tolist()]
        runs = [p for i, p in enumerate(parents) if i == 0 or p != parents[i - 1]]
        assert len(runs) == len(set(runs))
    wide = np.array([[-(2**20) + 1, 0, 5], [2**20 - 1, 3, -7], [0, 0, 0], [2**20 - 2, 3, -7]])
    assert sorted(writes.morton_order(wide).tolist()) == [0, 1, 2, 3]


# ----- random hostile edits: never a 5xx, a rejection writes nothing ----------------------

_LAB = st.sampled_from([0, 1, 2, 3, 9, 77, 2**40, 2**64 - 1])
_X = st.integers(-20, 90) | st.sampled_from([-(2**31), 2**31 - 2, I32_MAX])
_YZ = st.integers(-3, 36) | st.sampled_from([-(2**31), I32_MAX])
_LEN = st.integers(-2, 70) | st.sampled_from([I32_MAX])
_SPANS = st.lists(st.tuples(_X, _YZ, _YZ, _LEN), max_size=6)
_INSIDE = st.lists(st.tuples(st.integers(8, 15), st.integers(0, 31), st.integers(0, 31),
                             st.integers(1, 8)), min_size=1, max_size=6)  # mostly in sv 2
_BC = st.integers(-3, 5) | st.sampled_from([2**19 - 1, 2**19, 2**20 - 1, 2**20, -(2**20)])
_BLOCK = st.tuples(_BC, _BC, _BC, st.sampled_from(["ok", "solid", "big", "cut", "empty"]))
_EXIST = st.sampled_from([1, 2, 3, 9])  # labels of _volume()
_SPLIT = st.sampled_from(["split", "split-supervoxel"])
_REQ = st.one_of(
    st.tuples(_SPLIT, _LAB, _SPANS),
    st.tuples(_SPLIT, st.just(2), _INSIDE),
    st.tuples(st.sampled_from(["cleave", "merge", "renumber"]), _EXIST | _LAB,
              st.lists(_EXIST | _LAB | st.integers(1000, 1003), max_size=4)),
    st.tuples(st.just("blocks"), st.integers(0, 3), st.lists(_BLOCK, min_size=1, max_size=4)),
    st.tuples(st.just("raw"), st.sampled_from([None, "nosuch", "r", "seg"]),
              st.tuples(st.sampled_from([-16, 0, 8, 16, 2**24]), st.sampled_from([0, 16]),
                        st.sampled_from([16, 24, 32]))),
)


def _block_payload(kind: str, fill: int) -> bytes:
    if kind == "empty":
        return b""
    if kind == "big":
        return gzip.compress(encode_block(np.full((32, 32, 32), fill, np.uint64)))
    arr = np.full((BS, BS, BS), fill, np.uint64)
    if kind == "ok":
        arr[:3] = fill + 1
    gz = gzip.compress(encode_block(arr))
    return gz[:-9] if kind == "cut" else gz


@settings(max_examples=40, deadline=None)
@given(reqs=st.lists(_REQ, min_size=1, max_size=5))
def test_random_hostile_edits_never_fail_the_server(reqs) -> None:
    c, _mgr, root = _app()
    base = _labelmap(c, root)
    vol = _volume()
    assert c.post(f"{base}/raw/0_1_2/64_32_32/0_0_0", content=vol.tobytes()).status_code == 200
    r = c.post(f"/api/repo/{root}/instance", json={"typename": "roi", "dataname": "r",
                                                    "BlockSize": "16,16,16"})
    assert r.status_code == 200 and c.post(f"/api/node/{root}/r/roi",
                                           json=[[0, 0, 0, 1]]).status_code == 200
    for kind, a, b in reqs:
        if kind in ("split", "split-supervoxel"):
            url, body = f"{base}/{kind}/{a}", _rle(*b)
        elif kind in ("cleave", "merge", "renumber"):
            url = f"{base}/cleave/{a}" if kind == "cleave" else f"{base}/{kind}"
            body = str(b).encode()
        elif kind == "blocks":
            url = f"{base}/blocks?scale={a}&downres={'true' if a == 0 else 'false'}"
            body = encode_stream([(x, y, z, _block_payload(k, 40 + i))
                                  for i, (x, y, z, k) in enumerate(b)])
        else:
            (x, y, n), roi = b, a
            url = f"{base}/raw/0_1_2/{n}_16_16/{x}_{y}_0" + (f"?roi={roi}" if roi else "")
            body = np.full((16, 16, n), 60 + n, np.uint64).tobytes()
        before = _snapshot(c, base)
        r = c.post(url, content=body)
        assert r.status_code < 500, (url, r.status_code, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("text/plain"), (url, r.text)
            assert _snapshot(c, base) == before, (url, r.text)


# ----- (d) stored JSON goes through the bounded reader ------------------------------------


def test_corrupt_stored_mutation_record_is_a_clear_error(env) -> None:
    c, mgr, root, base, _vol = env
    inst = mgr.resolve(root)[0].instances["seg"]
    ctx = mgr.context(inst, mgr.resolve(root)[1])
    inst.store.put(ctx, L.mutlog_tkey(ctx.version, 2**40), b"[" * 100 + b"]" * 100)
    for url in (f"{base}/mutations", f"{base}/supervoxel-splits",
                f"{base}/mutations-range/{root}/{root}"):
        r = c.get(url)
        assert r.status_code == 400 and "stored mutation record" in r.text, (url, r.text)
