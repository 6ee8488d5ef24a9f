"""Contract test: intern's ``BossRemote`` (JHU/APL's client, unchanged, from PyPI) against a
real dvidpy server process, for every call of issue 14's item 5; the same data read back
by intern's ``array("bossdb://...")`` slicing and by its ``DVIDRemote``. Every read is
compared byte for byte with the numpy array that was written.
"""

from __future__ import annotations

import numpy as np
import pytest
import requests
from intern import array as intern_array
from intern.remote.boss import BossRemote
from intern.remote.dvid import DVIDRemote
from intern.resource.boss.resource import (
    ChannelResource,
    CollectionResource,
    CoordinateFrameResource,
    ExperimentResource,
)
from intern.resource.dvid import DataInstanceResource
from intern.service.boss.httperrorlist import HTTPErrorList

FRAME = {"x_start": 0, "x_stop": 320, "y_start": 0, "y_stop": 256, "z_start": 0,
         "z_stop": 48, "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 40,
         "voxel_unit": "nanometers"}


def remote(server) -> BossRemote:
    return BossRemote({"protocol": "http", "host": server.url.removeprefix("http://"),
                       "token": "public"})


@pytest.fixture
def boss(server):
    """A collection, frame and experiment (3 levels, 2 time samples) made by intern."""
    rmt = remote(server)
    coll = rmt.create_project(CollectionResource("lab", "a collection"))
    assert coll.name == "lab" and coll.description == "a collection"
    frame = rmt.create_project(CoordinateFrameResource("frame", "", **FRAME))
    assert (frame.x_stop, frame.z_voxel_size, frame.voxel_unit) == (320, 40, "nanometers")
    exp = rmt.create_project(ExperimentResource(
        "em", "lab", "frame", "an experiment", num_hierarchy_levels=3,
        hierarchy_method="anisotropic", num_time_samples=2))
    assert (exp.coord_frame, exp.num_hierarchy_levels, exp.num_time_samples) == \
        ("frame", 3, 2)
    return rmt


def make_channel(rmt: BossRemote, name: str, datatype: str, kind: str = "image",
                 sources: list[str] | None = None) -> ChannelResource:
    ch = rmt.create_project(ChannelResource(name, "lab", "em", type=kind,
                                            datatype=datatype, sources=sources or []))
    assert (ch.name, ch.datatype, ch.type) == (name, datatype, kind)
    return ch


def test_resources_list_get_update_delete(server, boss) -> None:
    rmt = boss
    assert rmt.list_collections() == ["lab"]
    assert rmt.list_experiments("lab") == ["em"]
    assert rmt.list_coordinate_frames() == ["frame"]
    make_channel(rmt, "img", "uint8")
    assert rmt.list_channels("lab", "em") == ["img"]
    ch = rmt.get_channel("img", "lab", "em")
    assert ch.downsample_status == "NOT_DOWNSAMPLED" and ch.raw["dvid_instance"] == "img"
    exp = rmt.get_experiment("lab", "em")
    assert exp.hierarchy_method == "anisotropic" and len(exp.raw["dvid_repo"]) == 32
    assert rmt.get_extents(exp) == [[0, 320], [0, 256], [0, 48]]
    coll = rmt.get_project(CollectionResource("lab"))
    coll.description = "changed"
    assert rmt.update_project("lab", coll).description == "changed"
    frame = rmt.get_coordinate_frame("frame")
    assert frame.x_voxel_size == 4
    with pytest.raises(requests.HTTPError):  # still used by an experiment
        rmt.delete_project(CoordinateFrameResource("frame"))
    rmt.delete_project(ChannelResource("img", "lab", "em"))
    assert rmt.list_channels("lab", "em") == []
    # the same name again is a fresh channel (the old instance keeps its data)
    assert make_channel(rmt, "img", "uint16").raw["dvid_instance"] == "img~1"
    with pytest.raises(requests.HTTPError) as e:
        rmt.create_project(ChannelResource("bad name!", "lab", "em", datatype="uint8"))
    assert e.value.response.status_code == 400
    err = e.value.response.json()
    assert set(err) == {"status", "code", "message"} and err["status"] == 400


@pytest.mark.parametrize("datatype", ["uint8", "uint16", "uint64"])
def test_cutouts_round_trip_serial_and_parallel(server, boss, datatype: str) -> None:
    rmt = boss
    ch = make_channel(rmt, "c" + datatype, datatype)
    rng = np.random.default_rng(7)
    info = np.iinfo(datatype)
    vol = rng.integers(0, info.max, (40, 200, 300), dtype=datatype, endpoint=True)
    rmt.create_cutout(ch, 0, [10, 310], [30, 230], [4, 44], vol)
    got = rmt.get_cutout(ch, 0, [10, 310], [30, 230], [4, 44], parallel=False)
    assert got.dtype == np.dtype(datatype) and got.tobytes() == vol.tobytes()
    # intern's parallel chunked get: 64x64x16 chunks through a multiprocessing pool
    got = rmt.get_cutout(ch, 0, [10, 310], [30, 230], [4, 44], parallel=2,
                         chunk_size=(64, 64, 16))
    assert got.tobytes() == vol.tobytes()
    part = rmt.get_cutout(ch, 0, [100, 133], [50, 51], [10, 12])
    assert part.tobytes() == vol[6:8, 20:21, 90:123].tobytes()
    # time samples: a 4-D write at t=1 leaves t=0 alone
    t1 = rng.integers(0, info.max, (1, 8, 16, 16), dtype=datatype)
    rmt.create_cutout(ch, 0, [0, 16], [0, 16], [0, 8], t1, time_range=[1, 2])
    both = rmt.get_cutout(ch, 0, [0, 16], [0, 16], [0, 8], time_range=[0, 2])
    assert both.shape == (2, 8, 16, 16)
    assert both[1].tobytes() == t1[0].tobytes() and not both[0].any()
    rmt.create_cutout_to_black(ch, 0, [10, 20], [30, 40], [4, 5])
    after = rmt.get_cutout(ch, 0, [10, 310], [30, 230], [4, 44])
    want = vol.copy()
    want[0, 0:10, 0:10] = 0
    assert after.tobytes() == want.tobytes()
    # the same voxels through DVID's API: intern's DVIDRemote on the experiment's repo
    exp = rmt.get_experiment("lab", "em")
    dvid = DVIDRemote({"protocol": "http", "host": server.url.removeprefix("http://")})
    res = DataInstanceResource(ch.raw["dvid_instance"], UUID=exp.raw["dvid_repo"],
                               type=f"{datatype}blk", datatype=datatype)
    assert dvid.get_cutout(res, 0, [10, 310], [30, 230], [4, 44]).tobytes() == \
        want.tobytes()


def test_annotation_channel(server, boss) -> None:
    rmt = boss
    make_channel(rmt, "img", "uint8")
    ann = make_channel(rmt, "seg", "uint64", "annotation", sources=["img"])
    assert ann.sources == ["img"]
    start = rmt.reserve_ids(ann, 5)
    assert rmt.reserve_ids(ann, 3) == start + 5
    labels = np.zeros((16, 64, 128), dtype=np.uint64)
    labels[2:10, 5:40, 7:100] = start
    labels[12:14, 50:60, 110:120] = start + 1
    labels[0, 0, 0] = 2**63 + 5
    rmt.create_cutout(ann, 0, [0, 128], [0, 64], [0, 16], labels)
    got = rmt.get_cutout(ann, 0, [0, 128], [0, 64], [0, 16])
    assert got.tobytes() == labels.tobytes()
    kept = rmt.get_cutout(ann, 0, [0, 128], [0, 64], [0, 16], id_list=[start + 1])
    assert kept.tobytes() == np.where(labels == start + 1, labels, 0).tobytes()
    ids = rmt.get_ids_in_region(ann, 0, [0, 128], [0, 64], [0, 16], [0, 1])
    assert ids == sorted([start, start + 1, 2**63 + 5])
    assert rmt.get_ids_in_region(ann, 0, [0, 20], [0, 64], [0, 16], [0, 1]) == \
        sorted([start, 2**63 + 5])
    tight = rmt.get_bounding_box(ann, 0, start, "tight")
    assert tight == {"x_range": [7, 100], "y_range": [5, 40], "z_range": [2, 10],
                     "t_range": [0, 1]}
    loose = rmt.get_bounding_box(ann, 0, start + 1, "loose")
    assert loose == {"x_range": [64, 128], "y_range": [0, 64], "z_range": [0, 64],
                     "t_range": [0, 1]}
    with pytest.raises(requests.HTTPError) as e:
        rmt.get_bounding_box(ann, 0, 999999, "loose")
    assert e.value.response.status_code == 404
    # the labelmap behind it, through DVID's API
    exp = rmt.get_experiment("lab", "em")
    r = requests.get(f"{server.url}/api/node/{exp.raw['dvid_repo']}/seg/label/50_20_5")
    assert r.json() == {"Label": start}


def test_metadata_crud_on_every_level(server, boss) -> None:
    rmt = boss
    ch = make_channel(rmt, "img", "uint8")
    for res in (CollectionResource("lab"), ExperimentResource("em", "lab"), ch):
        rmt.create_metadata(res, {"owner": "alice", "stain": "osmium"})
        assert sorted(rmt.list_metadata(res)) == ["owner", "stain"]
        assert rmt.get_metadata(res, ["owner"]) == {"owner": "alice"}
        rmt.update_metadata(res, {"owner": "bob"})
        assert rmt.get_metadata(res, ["owner", "stain"]) == {"owner": "bob",
                                                             "stain": "osmium"}
        with pytest.raises(HTTPErrorList):  # exists already
            rmt.create_metadata(res, {"owner": "carol"})
        rmt.delete_metadata(res, ["owner"])
        assert rmt.list_metadata(res) == ["stain"]
        with pytest.raises((requests.HTTPError, HTTPErrorList)):
            rmt.get_metadata(res, ["owner"])


def test_downsample_start_and_status(server, boss) -> None:
    rmt = boss
    ch = make_channel(rmt, "img", "uint16")
    vol = np.random.default_rng(2).integers(0, 65535, (32, 128, 128), dtype=np.uint16)
    rmt.create_cutout(ch, 0, [0, 128], [0, 128], [0, 32], vol)
    url = f"{server.url}/v1/downsample/lab/em/img/"
    h = {"Authorization": "Token public"}
    st = requests.get(url, headers=h).json()
    assert st["status"] == "NOT_DOWNSAMPLED" and st["num_hierarchy_levels"] == 3
    assert st["voxel_size"]["2"] == [16.0, 16.0, 40.0]  # anisotropic: z kept
    assert st["extent"]["1"] == [160, 128, 48]
    assert requests.post(url, headers=h).status_code == 201
    for _ in range(200):
        st = requests.get(url, headers=h).json()
        if st["status"] == "DOWNSAMPLED":
            break
        assert st["status"] == "IN_PROGRESS"
        import time

        time.sleep(0.05)
    assert rmt.get_channel("img", "lab", "em").downsample_status == "DOWNSAMPLED"
    half = rmt.get_cutout(ch, 1, [0, 64], [0, 64], [0, 32])
    cells = vol.reshape(32, 64, 2, 64, 2).astype(np.int64).sum(axis=(2, 4))
    assert half.tobytes() == ((cells + 2) // 4).astype(np.uint16).tobytes()
    assert requests.delete(url, headers=h).status_code == 409  # nothing running
    rmt.create_cutout(ch, 0, [0, 8], [0, 8], [0, 1], np.ones((1, 8, 8), np.uint16))
    assert rmt.get_channel("img", "lab", "em").downsample_status == "NOT_DOWNSAMPLED"


def test_intern_array_slicing(server, boss, monkeypatch, tmp_path) -> None:
    """``array("bossdb://c/e/ch")`` finds its server from intern's environment variables
    (it infers the remote from the URI, so a config dict would not reach it)."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.intern/intern.cfg
    monkeypatch.setenv("INTERN_PROTOCOL", "http")
    monkeypatch.setenv("INTERN_HOST", server.url.removeprefix("http://"))
    monkeypatch.setenv("INTERN_TOKEN", "public")
    rmt = boss
    ch = make_channel(rmt, "img", "uint8")
    vol = np.random.default_rng(4).integers(0, 255, (48, 256, 320), dtype=np.uint8)
    rmt.create_cutout(ch, 0, [0, 320], [0, 256], [0, 48], vol)
    arr = intern_array("bossdb://lab/em/img")
    assert arr.shape == (48, 256, 320) and arr.dtype == "uint8"
    assert arr[10:12, 100:140, 7:300].tobytes() == vol[10:12, 100:140, 7:300].tobytes()
    assert arr[5:6, 0:256, 0:320].tobytes() == vol[5:6].tobytes()  # one z slice
    arr[0:2, 0:10, 0:10] = np.full((2, 10, 10), 9, np.uint8)
    assert (rmt.get_cutout(ch, 0, [0, 10], [0, 10], [0, 2]) == 9).all()
    # created by intern's array() itself: a new annotation channel sourced on img
    seg = intern_array("bossdb://lab/em/made", create_new=True, dtype="uint64",
                       source_channel="img", extents=(48, 256, 320), voxel_size=(40, 4, 4),
                       voxel_unit="nanometers")
    seg[1:3, 4:8, 4:8] = np.full((2, 4, 4), 77, np.uint64)
    assert rmt.get_channel("made", "lab", "em").type == "annotation"
    assert (seg[1:3, 4:8, 4:8] == 77).all()
