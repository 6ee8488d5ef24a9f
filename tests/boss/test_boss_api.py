"""The Boss API in process: resource rules, cutout checks and limits (4xx with the Boss's
error JSON, nothing written), versions, time samples, iso reads, images, tiles, and the
same voxels through DVID's API both ways."""

from __future__ import annotations

from typing import Any

import blosc
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

FRAME = {"x_start": 0, "x_stop": 256, "y_start": 0, "y_stop": 256, "z_start": 0,
         "z_stop": 64, "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 16,
         "voxel_unit": "nanometers"}


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, (r.request.method, r.request.url, r.text)
    return r


def boss_error(r: Any, status: int, code: int | None = None, text: str = "") -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    err = r.json()
    assert set(err) == {"status", "code", "message"} and err["status"] == status
    if code is not None:
        assert err["code"] == code, err
    assert text in err["message"], err
    return err


def setup(c: TestClient, levels: int = 1, method: str = "anisotropic", times: int = 1,
          frame: dict | None = None) -> None:
    ok(c.post("/v1/collection/col", json={}), 201)
    ok(c.post("/v1/coord/fr", json=frame or FRAME), 201)
    ok(c.post("/v1/collection/col/experiment/exp", json={
        "coord_frame": "fr", "num_hierarchy_levels": levels, "hierarchy_method": method,
        "num_time_samples": times}), 201)


def channel(c: TestClient, name: str, datatype: str = "uint8", kind: str = "image") -> dict:
    return ok(c.post(f"/v1/collection/col/experiment/exp/channel/{name}",
                     json={"type": kind, "datatype": datatype}), 201).json()


def put(c: TestClient, ch: str, box: str, arr: np.ndarray, q: str = "", status: int = 201):
    return ok(c.post(f"/v1/cutout/col/exp/{ch}/0/{box}/{q}",
                     content=blosc.compress(arr.tobytes(), typesize=arr.dtype.itemsize * 8),
                     headers={"Content-Type": "application/blosc"}), status)


def get(c: TestClient, ch: str, res: int, box: str, dtype: str, shape: tuple[int, ...],
        q: str = "") -> np.ndarray:
    r = ok(c.get(f"/v1/cutout/col/exp/{ch}/{res}/{box}/{q}"))
    assert r.headers["content-type"] == "application/blosc"
    return np.frombuffer(blosc.decompress(r.content), dtype=dtype).reshape(shape)


# ----- resources ------------------------------------------------------------------------

def test_resource_rules(c: TestClient) -> None:
    boss_error(c.post("/v1/collection/bad.name", json={}), 400, 1003, "Invalid collection")
    boss_error(c.post("/v1/collection/col%0A", json={}), 400, 1003, "Invalid collection")
    assert c.post("/v1/groups/grp%0A").status_code == 400  # "$" let a final newline in
    assert c.post("/v1/groups/grp").status_code in (200, 201)
    for bad in ("a%20b", "x%0A", "t%09ab", "%7F", "u" * 257):  # space, newline, tab, DEL, long
        r = c.post(f"/v1/groups/grp/members/{bad}")
        assert r.status_code == 400 and "bad user name" in r.json()["message"], (bad, r.text)
    assert c.get("/v1/groups/grp/members").json()["members"] == \
        c.get("/v1/groups/grp/maintainers").json()["maintainers"]  # nothing was added
    assert c.post("/v1/groups/grp/members/carol@example.org").status_code == 204
    assert "carol@example.org" in c.get("/v1/groups/grp/members").json()["members"]
    assert ok(c.get("/v1/collection")).json()["collections"] == []
    boss_error(c.get("/v1/collection/nope"), 404, 4000, "nope does not exist.")
    setup(c)
    boss_error(c.post("/v1/collection/col", json={}), 400, 6002, "already exists")
    for bad, text in (({**FRAME, "x_stop": 0}, "less than"),
                      ({**FRAME, "voxel_unit": "furlongs"}, "voxel_unit"),
                      ({**FRAME, "z_voxel_size": -1}, "positive"),
                      ({k: v for k, v in FRAME.items() if k != "y_start"}, "y_start"),
                      ({**FRAME, "x_start": "zero"}, "integer")):
        boss_error(c.post("/v1/coord/f2", json=bad), 400, 1003, text)
    assert c.get("/v1/coord/f2").status_code == 404  # nothing half-made
    e = "/v1/collection/col/experiment"
    boss_error(c.post(f"{e}/e2", json={}), 400, 1003, "coordinate frame")
    boss_error(c.post(f"{e}/e2", json={"coord_frame": "nope"}), 404)
    boss_error(c.post(f"{e}/e2", json={"coord_frame": "fr", "num_hierarchy_levels": 0}), 400)
    boss_error(c.post(f"{e}/e2", json={"coord_frame": "fr", "hierarchy_method": "x"}), 400)
    ch = f"{e}/exp/channel"
    boss_error(c.post(f"{ch}/a", json={"type": "annotation", "datatype": "uint8"}), 400,
               text="uint64")
    boss_error(c.post(f"{ch}/a", json={"type": "image", "datatype": "float32"}), 400)
    boss_error(c.post(f"{ch}/a", json={"type": "image", "datatype": "uint8",
                                      "default_time_sample": 3}), 400)
    boss_error(c.post(f"{ch}/a", json={"type": "image", "datatype": "uint8",
                                      "sources": ["missing"]}), 400, text="missing")
    boss_error(c.post(f"{ch}/a", json={"type": "image", "datatype": "uint8",
                                      "cv_path": "/x"}), 400, text="cv_path")
    assert ok(c.get(ch)).json() == {"channels": []}
    boss_error(c.put("/v1/coord/fr", json={"x_stop": 5}), 400, 1003, "readonly fields")
    boss_error(c.delete("/v1/collection/col"), 400, 4003, "experiments")
    boss_error(c.delete("/v1/coord/fr"), 400, 4003)
    boss_error(c.post("/v1/collection/col", content=b"[1,2"), 400)
    boss_error(c.get("/v1/collection/col/nothing/here"), 404, 4000)
    boss_error(c.patch("/v1/collection/col"), 405, 1000)


def test_rename_collection_keeps_experiments_channels_and_metadata(c: TestClient) -> None:
    setup(c)
    channel(c, "img")
    ok(c.post("/v1/meta/col/exp/img?key=k&value=v"), 201)
    ok(c.post("/v1/meta/col?key=top&value=1"), 201)
    ok(c.put("/v1/collection/col", json={"name": "renamed", "description": "d"}))
    boss_error(c.get("/v1/collection/col"), 404)
    got = ok(c.get("/v1/collection/renamed")).json()
    assert got["experiments"] == ["exp"] and got["description"] == "d"
    assert ok(c.get("/v1/collection/renamed/experiment/exp/channel")).json() == \
        {"channels": ["img"]}
    assert ok(c.get("/v1/meta/renamed/exp/img?key=k")).json() == {"key": "k", "value": "v"}
    assert ok(c.get("/v1/meta/renamed")).json() == {"keys": ["top"]}


# ----- cutouts --------------------------------------------------------------------------

def test_cutout_checks_are_4xx_and_write_nothing(c: TestClient) -> None:
    setup(c, levels=2, times=2)
    channel(c, "img")
    channel(c, "w16", "uint16")
    channel(c, "seg", "uint64", "annotation")
    base = "/v1/cutout/col/exp/img"
    vol = np.ones((4, 8, 8), np.uint8)
    body = blosc.compress(vol.tobytes(), typesize=8)
    for path, code, text in (
            (f"{base}/0/0:300/0:8/0:4/", 1001, "outside the coordinate frame"),
            (f"{base}/0/0:8/0:8/60:70/", 1001, "outside"),
            (f"{base}/1/0:200/0:8/0:4/", 1001, "outside"),  # level 1 is 128 wide
            (f"{base}/2/0:8/0:8/0:4/", 1001, "Invalid resolution"),
            (f"{base}/0/0:8/0:8/0:4/0:3/", 1001, "time"),
            (f"{base}/0/8:0/0:8/0:4/", 1006, "empty"),
            (f"{base}/0/a:b/0:8/0:4/", 1006, "range"),
            (f"{base}/0/0:8/0:8/0:4/?version=ffff", 1006, "version")):
        boss_error(c.get(path), 400, code, text)
        boss_error(c.post(path, content=body), 400)
    boss_error(c.get(f"{base}/0/0:8/0:8/0:4/?filter=1"), 400, 1001, "annotation")
    boss_error(c.get("/v1/cutout/col/exp/seg/0/0:8/0:8/0:4/?filter=1,x"), 400, 1001)
    boss_error(c.get("/v1/cutout/col/exp/w16/0/0:8/0:8/0:4/",
                     headers={"Accept": "image/jpeg"}), 400, 2001, "uint8")
    boss_error(c.get(f"{base}/0/0:8/0:8/0:4/0:1/", headers={"Accept": "image/jpeg"}), 400,
               2005)
    boss_error(c.get(f"{base}/0/0:8/0:8/0:4/", headers={"Accept": "text/csv"}), 400)
    for bad in (blosc.compress(b"\x01" * 255, typesize=8), b"junk" * 8,
                blosc.compress(np.ones((4, 8, 8), "<u2").tobytes(), typesize=16)):
        boss_error(c.post(f"{base}/0/0:8/0:8/0:4/", content=bad), 400)
    boss_error(c.post(f"{base}/0/0:8/0:8/0:4/", content=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 400,
               2001, "Content-Type")
    boss_error(c.post(f"{base}/1/0:8/0:8/0:4/", content=body), 400, 1001, "resolution 0")
    info = ok(c.get(f"/api/node/{repo_of(c)}/img/info")).json()
    assert info["Extended"]["MinPoint"] is None  # not one voxel written
    assert not get(c, "img", 0, "0:8/0:8/0:4", "u1", (4, 8, 8)).any()


def repo_of(c: TestClient) -> str:
    return ok(c.get("/v1/collection/col/experiment/exp")).json()["dvid_repo"]


def test_size_limit_is_413_before_any_work(c: TestClient) -> None:
    big = {**FRAME, "x_stop": 100000, "y_stop": 100000, "z_stop": 8}
    setup(c, frame=big)
    channel(c, "img")
    channel(c, "seg", "uint64", "annotation")
    boss_error(c.get("/v1/cutout/col/exp/img/0/0:30000/0:20000/0:1/"), 413, 2000,
               "Reduce cutout dimensions")
    # uint64 counts a quarter, as in the Boss: 2**28 voxels (2 GiB) of uint64 pass the
    # limit (this body then fails its own check) ...
    boss_error(c.post("/v1/cutout/col/exp/seg/0/0:16384/0:16384/0:1/", content=b"x"), 400)
    # ... 2**29 do not
    boss_error(c.post("/v1/cutout/col/exp/seg/0/0:16384/0:16384/0:2/", content=b"x"), 413)


def test_both_apis_see_the_same_voxels(c: TestClient) -> None:
    setup(c)
    channel(c, "img", "uint16")
    root = repo_of(c)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 65535, (6, 20, 30), dtype=np.uint16)
    put(c, "img", "5:35/7:27/3:9", a)
    r = ok(c.get(f"/api/node/{root}/img/raw/0_1_2/30_20_6/5_7_3"))
    assert r.content == a.tobytes()
    b = rng.integers(0, 65535, (4, 10, 10), dtype=np.uint16)
    ok(c.post(f"/api/node/{root}/img/raw/0_1_2/10_10_4/100_100_40", content=b.tobytes()))
    assert get(c, "img", 0, "100:110/100:110/40:44", "<u2", (4, 10, 10)).tobytes() == \
        b.tobytes()
    for media in ("application/blosc-python", "application/npygz"):
        body = __import__("dvidpy.boss.wire", fromlist=["encode"]).encode(media, b + 1)
        ok(c.post("/v1/cutout/col/exp/img/0/100:110/100:110/40:44/", content=body,
                  headers={"Content-Type": media}), 201)
        assert get(c, "img", 0, "100:110/100:110/40:44", "<u2", (4, 10, 10)).tobytes() == \
            (b + 1).tobytes()
    ok(c.put("/v1/cutout/to_black/col/exp/img/0/100:105/100:110/40:44/"))
    got = get(c, "img", 0, "100:110/100:110/40:44", "<u2", (4, 10, 10))
    assert not got[:, :, :5].any() and (got[:, :, 5:] == b[:, :, 5:] + 1).all()


@pytest.mark.parametrize("datatype", ["uint8", "uint16"])
def test_every_answer_format_over_http(c: TestClient, datatype: str) -> None:
    """GET in each ``Accept`` format, decoded by the formats' own readers (blosc's
    unpack_array, numpy's npy loader after zlib, Pillow for the JPEG sprite sheet)."""
    import io
    import zlib

    setup(c, times=2)
    channel(c, "img", datatype)
    rng = np.random.default_rng(9)
    vol = rng.integers(0, np.iinfo(datatype).max, (2, 5, 12, 16), dtype=datatype)
    for t in range(2):
        put(c, "img", f"0:16/0:12/0:5/{t}:{t + 1}", vol[t:t + 1])
    url = "/v1/cutout/col/exp/img/0/0:16/0:12/0:5/0:2/"
    r = ok(c.get(url, headers={"Accept": "application/blosc-python"}))
    assert r.headers["content-type"] == "application/blosc-python"
    got = blosc.unpack_array(r.content)
    assert got.dtype == np.dtype(datatype) and got.shape == vol.shape
    assert got.tobytes() == vol.tobytes()
    r = ok(c.get(url, headers={"Accept": "application/npygz"}))
    assert r.headers["content-type"] == "application/npygz"
    got = np.load(io.BytesIO(zlib.decompress(r.content)), allow_pickle=False)
    assert got.shape == vol.shape and got.tobytes() == vol.tobytes()
    r = c.get("/v1/cutout/col/exp/img/0/0:16/0:12/0:5/", headers={"Accept": "image/jpeg"})
    if datatype != "uint8":
        boss_error(r, 400, 2001, "uint8")
        return
    ok(r)
    assert r.headers["content-type"] == "image/jpeg"
    sheet = np.array(Image.open(io.BytesIO(r.content)).convert("L"))
    assert sheet.shape == (5 * 12, 16)  # z slices stacked downwards
    flat = np.full((3, 16, 16), 77, np.uint8)  # uniform: the lossy codec keeps it
    put(c, "img", "0:16/0:16/0:3", flat)
    r = ok(c.get("/v1/cutout/col/exp/img/0/0:16/0:16/0:3/", headers={"Accept": "image/jpeg"}))
    sheet = np.array(Image.open(io.BytesIO(r.content)).convert("L")).astype(int)
    assert sheet.shape == (48, 16) and (np.abs(sheet - 77) <= 1).all()


def test_versions(c: TestClient) -> None:
    setup(c)
    channel(c, "img")
    root = repo_of(c)
    put(c, "img", "0:8/0:8/0:2", np.full((2, 8, 8), 1, np.uint8))
    ok(c.post(f"/api/node/{root}/commit", json={}))
    boss_error(put(c, "img", "0:8/0:8/0:2", np.full((2, 8, 8), 2, np.uint8), status=400), 400,
               text="locked")
    child = ok(c.post(f"/api/node/{root}/newversion", json={})).json()["child"]
    put(c, "img", "0:8/0:8/0:2", np.full((2, 8, 8), 2, np.uint8))  # master HEAD = child
    assert (get(c, "img", 0, "0:8/0:8/0:2", "u1", (2, 8, 8)) == 2).all()
    old = get(c, "img", 0, "0:8/0:8/0:2", "u1", (2, 8, 8), f"?version={root[:8]}")
    assert (old == 1).all()
    put(c, "img", "0:8/0:8/0:2", np.full((2, 8, 8), 3, np.uint8), f"?version={child}")
    assert (get(c, "img", 0, "0:8/0:8/0:2", "u1", (2, 8, 8)) == 3).all()
    other = ok(c.post("/api/repos", json={})).json()["root"]
    boss_error(c.get(f"/v1/cutout/col/exp/img/0/0:8/0:8/0:2/?version={other}"), 400,
               text="not a version of experiment")


def test_time_samples_of_annotation_channels(c: TestClient) -> None:
    setup(c, times=3)
    channel(c, "seg", "uint64", "annotation")
    lab = np.arange(1, 2 * 4 * 8 * 8 + 1, dtype=np.uint64).reshape(2, 4, 8, 8)
    put(c, "seg", "0:8/0:8/0:4/1:3", lab)
    got = get(c, "seg", 0, "0:8/0:8/0:4/0:3", "<u8", (3, 4, 8, 8))
    assert not got[0].any() and got[1:].tobytes() == lab.tobytes()
    insts = ok(c.get(f"/api/repo/{repo_of(c)}/info")).json()["DataInstances"]
    assert {"seg", "seg.t1", "seg.t2"} <= set(insts)
    ids = ok(c.get("/v1/ids/col/exp/seg/0/0:8/0:8/0:4/2:3/")).json()["ids"]
    assert ids == [str(v) for v in sorted(lab[1].ravel().tolist())]
    # without a time range: the channel's default sample (0), never written
    assert ok(c.get("/v1/ids/col/exp/seg/0/0:8/0:8/0:4/")).json()["ids"] == []


def test_iso_reads_decimate_z_of_the_anisotropic_levels(c: TestClient) -> None:
    # 4 nm x/y, 16 nm z: x reaches z's voxel size at level 2; level 3 iso halves z
    setup(c, levels=4)
    channel(c, "img")
    rng = np.random.default_rng(3)
    vol = rng.integers(0, 255, (16, 64, 64), dtype=np.uint8)
    put(c, "img", "0:64/0:64/0:16", vol)
    ok(c.post("/v1/downsample/col/exp/img"), 201)
    for _ in range(400):
        st = ok(c.get("/v1/downsample/col/exp/img")).json()
        if st["status"] == "DOWNSAMPLED":
            break
    assert st["status"] == "DOWNSAMPLED"
    iso = ok(c.get("/v1/downsample/col/exp/img?iso=true")).json()
    assert iso["voxel_size"]["3"] == [32.0, 32.0, 32.0] and iso["extent"]["3"] == [32, 32, 32]
    aniso = get(c, "img", 3, "0:8/0:8/0:16", "u1", (16, 8, 8))
    got = get(c, "img", 3, "0:8/0:8/0:8", "u1", (8, 8, 8), "?iso=true")
    assert got.tobytes() == aniso[::2].tobytes()
    assert get(c, "img", 1, "0:32/0:32/0:16", "u1", (16, 32, 32), "?iso=true").tobytes() == \
        get(c, "img", 1, "0:32/0:32/0:16", "u1", (16, 32, 32)).tobytes()


def test_images_and_tiles(c: TestClient) -> None:
    import io

    setup(c)
    channel(c, "img")
    channel(c, "w16", "uint16")
    channel(c, "seg", "uint64", "annotation")
    rng = np.random.default_rng(5)
    vol = rng.integers(0, 255, (8, 32, 48), dtype=np.uint8)
    put(c, "img", "0:48/0:32/0:8", vol)

    def img(path: str, accept: str = "image/png") -> np.ndarray:
        r = ok(c.get(path, headers={"Accept": accept}))
        assert r.headers["content-type"] == accept
        return np.array(Image.open(io.BytesIO(r.content)))

    assert (img("/v1/image/col/exp/img/xy/0/0:48/0:32/3/") == vol[3]).all()
    assert (img("/v1/image/col/exp/img/xz/0/0:48/7/0:8/") == vol[:, 7, :]).all()
    assert (img("/v1/image/col/exp/img/yz/0/5/0:32/0:8/") == vol[:, :, 5]).all()
    assert img("/v1/image/col/exp/img/xy/0/0:48/0:32/3/", "image/jpeg").shape == (32, 48)
    tile = img("/v1/tile/col/exp/img/xy/32/0/1/0/2/")  # x 32..64 clipped at 48, padded
    assert tile.shape == (32, 32)
    assert (tile[:, :16] == vol[2, :, 32:48]).all() and not tile[:, 16:].any()
    w = rng.integers(0, 65535, (1, 4, 4), dtype=np.uint16)
    put(c, "w16", "0:4/0:4/0:1", w)
    assert (img("/v1/image/col/exp/w16/xy/0/0:4/0:4/0/") == (w[0] >> 8)).all()
    seg = np.zeros((1, 4, 4), np.uint64)
    seg[0, 1, 1] = 7
    put(c, "seg", "0:4/0:4/0:1", seg)
    rgba = img("/v1/image/col/exp/seg/xy/0/0:4/0:4/0/")
    assert rgba.shape == (4, 4, 4) and rgba[1, 1, 3] == 255 and rgba[0, 0, 3] == 0
    boss_error(c.get("/v1/image/col/exp/img/xy/0/0:48/0:32/3:4/"), 400, 1001, "an index")
    boss_error(c.get("/v1/image/col/exp/img/xy/0/0:480/0:32/3/"), 400, 1001, "outside")
    boss_error(c.get("/v1/image/col/exp/img/xq/0/0:48/0:32/3/"), 400)
    boss_error(c.get("/v1/tile/col/exp/img/xy/0/0/0/0/0/"), 400, 1001, "tile_size")


def test_openapi_declares_boss_errors_as_json(c: TestClient) -> None:
    doc = ok(c.get("/api/openapi.json")).json()
    op = doc["paths"]["/v1/cutout/{collection}/{experiment}/{channel}/{resolution}/{x}/{y}/{z}"]
    assert list(op["get"]["responses"]["4XX"]["content"]) == ["application/json"]
    assert set(op["get"]["responses"]["200"]["content"]) == {
        "application/blosc", "application/blosc-python", "application/npygz", "image/jpeg"}
    dvid = doc["paths"]["/api/heartbeat"]["get"]["responses"]["4XX"]
    assert list(dvid["content"]) == ["text/plain"]


def test_big_answers_stream_stored_or_compressed_frames(c: TestClient) -> None:
    """An answer over 4 MiB that blosc would not shrink is blosc's stored frame (header +
    voxels, streamed); a compressible one is compressed. Both are what was written."""
    setup(c)
    channel(c, "noise", "uint16")
    channel(c, "seg", "uint64", "annotation")
    rng = np.random.default_rng(9)
    noise = rng.integers(0, 65535, (64, 256, 256), dtype=np.uint16)
    put(c, "noise", "0:256/0:256/0:64", noise)
    r = ok(c.get("/v1/cutout/col/exp/noise/0/0:256/0:256/0:64/"))
    assert len(r.content) == noise.nbytes + 16 and r.content[2] & 0x02  # memcpyed flag
    assert blosc.decompress(r.content) == noise.tobytes()
    seg = np.repeat(np.arange(64, dtype=np.uint64), 256 * 256).reshape(64, 256, 256)
    put(c, "seg", "0:256/0:256/0:64", seg)
    r = ok(c.get("/v1/cutout/col/exp/seg/0/0:256/0:256/0:64/"))
    assert len(r.content) < seg.nbytes // 10
    assert blosc.decompress(r.content) == seg.tobytes()


def test_downsample_builds_every_time_sample_and_annotation_levels(c: TestClient) -> None:
    setup(c, levels=2, times=2)  # anisotropic: x and y halved
    channel(c, "w16", "uint16")
    channel(c, "seg", "uint64", "annotation")
    rng = np.random.default_rng(12)
    vol = rng.integers(0, 65535, (2, 8, 32, 32), dtype=np.uint16)
    put(c, "w16", "0:32/0:32/0:8/0:2", vol)
    ok(c.post("/v1/downsample/col/exp/w16"), 201)
    for _ in range(400):
        if ok(c.get("/v1/downsample/col/exp/w16")).json()["status"] == "DOWNSAMPLED":
            break
    got = get(c, "w16", 1, "0:16/0:16/0:8/0:2", "<u2", (2, 8, 16, 16))
    cells = vol.reshape(2, 8, 16, 2, 16, 2).astype(np.int64).sum(axis=(3, 5))
    assert got.tobytes() == ((cells + 2) // 4).astype(np.uint16).tobytes()
    # annotation channels: labelmap keeps its scales on every write (2x2x2 mode); in an
    # anisotropic experiment each scale-1 z slice stands for two
    lab = np.zeros((8, 32, 32), np.uint64)
    lab[:, :16, :] = 5
    put(c, "seg", "0:32/0:32/0:8", lab)
    assert ok(c.post("/v1/downsample/col/exp/seg"), 201).json() == {"status": "DOWNSAMPLED"}
    half = get(c, "seg", 1, "0:16/0:16/0:8", "<u8", (8, 16, 16))
    assert (half[:, :8, :] == 5).all() and not half[:, 8:, :].any()
    boss_error(c.delete("/v1/downsample/col/exp/seg"), 409, 2006)
