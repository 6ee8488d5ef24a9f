"""uint8blk POST raw in bounded batches: same voxels as a plain numpy model, in many commits.

With ``write_batch_bytes`` set to 1 byte, every block of a write commits in a batch of
its own (counted); random unaligned writes (some masked by an ROI) must read back exactly as
a numpy model of the volume says, and the extents must cover every write.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app

BS = 8
ORIGIN = np.array([-16, -8, -16])  # model volume's first voxel (x, y, z)
SHAPE = (48, 40, 56)  # model volume, z, y, x
ROI_SPANS = [[-1, -1, -2, 0], [0, 0, 1, 3], [1, 2, -1, 1], [2, 1, 0, 4]]  # 8^3 ROI blocks


@pytest.fixture(scope="module")
def env():
    s = Settings.memory()
    s.write_batch_bytes = 1  # every block commits in a batch of its own
    app = create_app(s)
    with TestClient(app) as c:
        uuid = c.post("/api/repos", json={}).json()["root"]
        for body in ({"typename": "uint8blk", "dataname": "g", "BlockSize": f"{BS},{BS},{BS}",
                      "Background": "7"},
                     {"typename": "roi", "dataname": "r", "BlockSize": f"{BS},{BS},{BS}"}):
            assert c.post(f"/api/repo/{uuid}/instance", json=body).status_code == 200
        assert c.post(f"/api/node/{uuid}/r/roi", json=ROI_SPANS).status_code == 200
        eng = app.state.manager.engines["default"]
        commits = [0]
        make = eng.batch

        def counted():
            wb = make()
            inner = wb.commit

            def commit() -> None:
                commits[0] += 1
                inner()

            wb.commit = commit
            return wb

        eng.batch = counted
        yield c, f"/api/node/{uuid}/g", commits


def _roi_mask(offset, size) -> np.ndarray:
    z, y, x = np.meshgrid(*(np.arange(o, o + n) // BS for o, n in
                            zip(offset[::-1], size[::-1], strict=True)), indexing="ij")
    m = np.zeros(z.shape, bool)
    for sz, sy, x0, x1 in ROI_SPANS:
        m |= (z == sz) & (y == sy) & (x >= x0) & (x <= x1)
    return m


writes = st.lists(st.tuples(
    st.tuples(*(st.integers(0, n - 1) for n in SHAPE[::-1])),  # offset in the model, x,y,z
    st.tuples(*(st.integers(1, 20) for _ in range(3))),  # size x, y, z
    st.booleans(), st.integers(0, 2**32 - 1)), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(writes)
def test_writes_match_model(env, ws) -> None:
    c, base, commits = env
    model = np.frombuffer(c.get(f"{base}/raw/0_1_2/{SHAPE[2]}_{SHAPE[1]}_{SHAPE[0]}/"
                                f"{ORIGIN[0]}_{ORIGIN[1]}_{ORIGIN[2]}").content,
                          np.uint8).reshape(SHAPE).copy()
    for rel, size, masked, seed in ws:
        size = tuple(min(s, n - r) for s, n, r in zip(size, SHAPE[::-1], rel, strict=True))
        off = tuple(int(v) for v in ORIGIN + np.array(rel))
        vol = np.random.default_rng(seed).integers(0, 256, size[::-1], dtype=np.uint8)
        url = f"{base}/raw/0_1_2/{size[0]}_{size[1]}_{size[2]}/{off[0]}_{off[1]}_{off[2]}"
        before = commits[0]
        r = c.post(url + ("?roi=r" if masked else ""), content=vol.tobytes())
        assert r.status_code == 200, r.text
        nblocks = np.prod([(o + s - 1) // BS - o // BS + 1 for o, s in zip(off, size,
                                                                             strict=True)])
        assert commits[0] - before == nblocks  # bounded batches, not one big one
        sl = tuple(slice(r_, r_ + s) for r_, s in zip(rel[::-1], size[::-1], strict=True))
        if masked:
            m = _roi_mask(off, size)
            model[sl][m] = vol[m]
        else:
            model[sl] = vol
        ext = c.get(f"{base}/info").json()["Extended"]
        assert all(ext["MinPoint"][i] <= off[i] and ext["MaxPoint"][i] >= off[i] + size[i] - 1
                   for i in range(3))
    got = np.frombuffer(c.get(f"{base}/raw/0_1_2/{SHAPE[2]}_{SHAPE[1]}_{SHAPE[0]}/"
                              f"{ORIGIN[0]}_{ORIGIN[1]}_{ORIGIN[2]}").content,
                        np.uint8).reshape(SHAPE)
    assert np.array_equal(got, model)


def test_rejected_write_commits_nothing(env) -> None:
    c, base, commits = env
    before = commits[0]
    for url, body in ((f"{base}/raw/0_1_2/16_16_16/0_0_0", b"\1" * 4095),
                      (f"{base}/raw/0_1_2/16_16_16/0_0_0?roi=nosuch", b"\1" * 4096),
                      (f"{base}/raw/0_1_2/16_16_16/2147483640_0_0", b"\1" * 4096)):
        r = c.post(url, content=body)
        assert r.status_code == 400, r.text
    assert commits[0] == before


def test_rejected_body_is_freed_at_once(env) -> None:
    """A handler's 400 must not leave its request body in a reference cycle (the thread
    pool's future, its frame and the traceback) that only a full GC would free."""
    import gc
    import tracemalloc

    c, base, _ = env
    body = b"\1" * ((32 << 20) - 1)  # a 32 Mi box needs 32 MiB; this is one byte short
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        r = c.post(f"{base}/raw/0_1_2/1024_1024_32/0_0_0", content=body)
        assert r.status_code == 400, r.text
        del r  # the response holds the request (and its content) of the client side
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < (4 << 20), f"{held >> 20} MiB still held after a rejected body"


def test_failed_batch_stops_the_write(tmp_path) -> None:
    """Batches are committed by a commit thread while the next one is encoded; when one
    fails (here a real LMDB store running out of its 3 MiB map), the error reaches the
    writer and no later batch commits: what is stored of the write is a prefix of its
    blocks in key order, and earlier data is intact."""
    import lmdb

    import datatypes  # noqa: F401  (registers the datatypes)
    from datatypes.imageblk import decode_block_tkey
    from dvidpy.repo import RepoManager

    s = Settings.default(str(tmp_path / "data"), engine="lmdb")
    s.stores["default"].options["map_gb"] = 3 / 1024
    s.write_batch_bytes = 64 << 10
    mgr = RepoManager(s)
    try:
        repo = mgr.create_repo()
        _, node = mgr.resolve(repo.root)
        inst = mgr.new_instance(repo, node, {"typename": "uint8blk", "dataname": "g",
                                             "BlockSize": "16,16,16", "Compression": "none"})
        ctx = mgr.context(inst, node)
        first = np.full((16, 16, 16), 5, np.uint8)
        inst.write_box(ctx, (-16, 0, 0), first)
        vol = np.random.default_rng(1).integers(0, 256, (64, 64, 1024), dtype=np.uint8)
        with pytest.raises(lmdb.MapFullError):
            inst.write_box(ctx, (0, 0, 0), vol)  # 4 MiB of blocks into a 3 MiB map
        stored = sorted(decode_block_tkey(tk) for tk, _ in inst.store.scan(
            ctx, bytes([23]), bytes([24])))
        assert stored[0] == (-1, 0, 0)
        want = sorted((x, y, z) for z in range(4) for y in range(4) for x in range(64))
        # blocks are written in key order (z, y, x): what committed is a prefix of it
        got = sorted(stored[1:], key=lambda c: (c[2], c[1], c[0]))
        assert 0 < len(got) < len(want)
        assert got == sorted(want, key=lambda c: (c[2], c[1], c[0]))[:len(got)]
        assert np.array_equal(inst.read_box(ctx, (-16, 0, 0), (16, 16, 16)), first)
        x, y, z = got[-1]
        assert np.array_equal(inst.read_box(ctx, (x * 16, y * 16, z * 16), (16, 16, 16)),
                              vol[z * 16:z * 16 + 16, y * 16:y * 16 + 16, x * 16:x * 16 + 16])
    finally:
        mgr.close()
