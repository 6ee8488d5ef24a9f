"""``GET raw`` on a real LMDB store, where blocks are read as views into LMDB's map and
decoded straight into the answer (``datatypes.common.blockread``): random sparse volumes in
every stored codec, random boxes (aligned or not, inline and streamed answers, partly
outside what is stored) equal the numpy model; a corrupt stored block is a 400 naming it,
and the server answers normally afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from datatypes.imageblk import BLOCK_CLASS
from dvidpy.config import Settings
from server import create_app

BS = 16
VOL = (48, 64, 80)  # z, y, x voxels of the model
CODECS = (("lz4", "none"), ("none", "none"), ("gzip", "none"), ("lz4", "crc32"))


@pytest.fixture(scope="module")
def lmdb_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    data = tmp_path_factory.mktemp("reads") / "data"
    s = Settings.default(str(data), engine="lmdb")
    s.stores["default"].options["map_gb"] = 1
    s.max_request_bytes = 64 << 20
    with TestClient(create_app(s)) as c:
        yield c, data


@pytest.fixture(scope="module")
def volumes(lmdb_app: tuple[TestClient, Path]) -> dict[str, tuple[str, np.ndarray]]:
    """One uint16 instance per codec, each holding the same sparse random model."""
    c, _ = lmdb_app
    root = c.post("/api/repos", json={}).json()["root"]
    rng = np.random.default_rng(5)
    model = np.full(VOL, 9, dtype="<u2")  # Background 9 where nothing is written
    written = rng.integers(0, 60000, VOL, dtype="<u2")
    keep = rng.random((VOL[0] // BS, VOL[1] // BS, VOL[2] // BS)) < 0.6
    out = {}
    for comp, crc in CODECS:
        name = f"v_{comp}_{crc}"
        r = c.post(f"/api/repo/{root}/instance", json={
            "typename": "uint16blk", "dataname": name, "BlockSize": f"{BS},{BS},{BS}",
            "Compression": comp, "Checksum": crc, "Background": "9"})
        assert r.status_code == 200, r.text
        for z, y, x in zip(*np.nonzero(keep), strict=True):
            blk = written[z * BS:(z + 1) * BS, y * BS:(y + 1) * BS, x * BS:(x + 1) * BS]
            r = c.post(f"/api/node/{root}/{name}/raw/0_1_2/{BS}_{BS}_{BS}/"
                       f"{x * BS}_{y * BS}_{z * BS}", content=blk.tobytes())
            assert r.status_code == 200, r.text
        out[name] = (root, model)
    for z, y, x in zip(*np.nonzero(keep), strict=True):
        sl = np.s_[z * BS:(z + 1) * BS, y * BS:(y + 1) * BS, x * BS:(x + 1) * BS]
        model[sl] = written[sl]
    return out


@given(st.sampled_from([f"v_{a}_{b}" for a, b in CODECS]),
       st.tuples(*(st.integers(-20, n) for n in VOL[::-1])),
       st.tuples(*(st.integers(1, n + 20) for n in VOL[::-1])))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_get_raw_equals_the_model(lmdb_app: tuple[TestClient, Path],
                                  volumes: dict[str, tuple[str, np.ndarray]], name: str,
                                  off: tuple[int, int, int], size: tuple[int, int, int]) -> None:
    c, _ = lmdb_app
    root, model = volumes[name]
    base = f"/api/node/{root}/{name}"
    r = c.get(f"{base}/raw/0_1_2/{size[0]}_{size[1]}_{size[2]}/{off[0]}_{off[1]}_{off[2]}")
    assert r.status_code == 200, r.text
    pad = 110  # the model padded with Background so any box of the strategy lies inside
    big = np.pad(model, pad, constant_values=9)
    want = big[off[2] + pad:off[2] + pad + size[2], off[1] + pad:off[1] + pad + size[1],
               off[0] + pad:off[0] + pad + size[0]]
    got = np.frombuffer(r.content, dtype="<u2").reshape(size[2], size[1], size[0])
    assert np.array_equal(got, want)


def test_big_streamed_box_and_corrupt_block(lmdb_app: tuple[TestClient, Path],
                                            volumes: dict[str, tuple[str, np.ndarray]]) -> None:
    """A box over 2**20 voxels (read whole in a thread into a reused buffer) equals the
    model, twice; then one stored LZ4 block is overwritten with garbage in the engine
    itself: small and big reads are a 400 that says which instance's block is corrupt,
    and reads work again once the block is restored."""
    c, _ = lmdb_app
    root, model = volumes["v_lz4_none"]
    base = f"/api/node/{root}/v_lz4_none"
    want = np.pad(model, 60, constant_values=9)[52:116, 40:160, 0:200]
    for _ in range(2):  # the second answer is read into the first one's buffer
        r = c.get(f"{base}/raw/0_1_2/200_120_64/-60_-20_-8")
        assert r.status_code == 200
        assert np.array_equal(np.frombuffer(r.content, "<u2").reshape(64, 120, 200), want)
    mgr = c.app.state.manager  # the app's own repo manager and engine
    repo, node = mgr.resolve(root)
    inst = repo.instances["v_lz4_none"]
    ctx = mgr.context(inst, node)
    tk, value = next(iter(inst.store.scan(ctx, bytes([BLOCK_CLASS]), bytes([BLOCK_CLASS + 1]))))
    for bad in (value[:1] + b"\xff\xff\xff\x7f" + value[5:],  # a huge length prefix
                value[:40],  # cut short
                value[:5] + b"\xff" * (len(value) - 5)):  # garbage LZ4
        inst.store.put(ctx, tk, bad)
        # the inline answer (read on the event loop) and the big one read whole in a
        # thread: both refuse before sending anything
        for box in (f"{VOL[2]}_{VOL[1]}_{VOL[0]}/0_0_0", "200_120_64/-60_-20_-8"):
            r = c.get(f"{base}/raw/0_1_2/{box}")
            assert r.status_code == 400, r.text
            assert "corrupt" in r.text and "v_lz4_none" in r.text
    inst.store.put(ctx, tk, value)
    r = c.get(f"{base}/raw/0_1_2/{VOL[2]}_{VOL[1]}_{VOL[0]}/0_0_0")
    assert r.status_code == 200
    assert np.array_equal(np.frombuffer(r.content, "<u2").reshape(VOL), model)


def test_concurrent_big_answers_on_a_real_server(tmp_path: Path) -> None:
    """Big answers come from reused buffers: 8 clients at once, each reading its own box
    over a real socket (a buffer is reused only when no answer still refers to it), 3
    times over; every answer is exactly its box."""
    import concurrent.futures

    import httpx

    from tests.servers import ServerProcess

    srv = ServerProcess(["--data", str(tmp_path / "db")], tmp_path / "server.log")
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            root = c.post("/api/repos", json={}).json()["root"]
            assert c.post(f"/api/repo/{root}/instance", json={
                "typename": "uint8blk", "dataname": "g", "BlockSize": "32,32,32"}
                ).status_code == 200
            vol = np.random.default_rng(2).integers(0, 256, (64, 256, 256), dtype=np.uint8)
            assert c.post(f"/api/node/{root}/g/raw/0_1_2/256_256_64/0_0_0",
                          content=vol.tobytes()).status_code == 200
        boxes = [(x, y, 0) for x in (0, 7, 31, 64) for y in (0, 40)]  # 8 boxes, 2 MiB each

        def get(o: tuple[int, int, int]) -> bool:
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                r = c.get(f"/api/node/{root}/g/raw/0_1_2/160_200_64/{o[0]}_{o[1]}_{o[2]}")
            got = np.frombuffer(r.content, np.uint8).reshape(64, 200, 160)
            want = np.zeros((64, 200, 160), np.uint8)
            part = vol[:, o[1]:o[1] + 200, o[0]:o[0] + 160]
            want[:, :part.shape[1], :part.shape[2]] = part
            return r.status_code == 200 and np.array_equal(got, want)

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            for _ in range(3):
                assert all(ex.map(get, boxes))
    finally:
        srv.stop()
