"""``dvidpy ingest`` against a real server (issue 15): TIFF slices, a 3-D TIFF, HDF5 and
zarr into uint8blk and labelmap (GET raw equals the source; pyramid levels equal numpy's
reduction); resume after kill -9 of the client (only the missing chunks are sent,
counted in the server's access log) and of the server; PNG slices on the base install."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from base_install import base_install_env
from ingest_util import (
    access_count,
    ingest_cli,
    mean2,
    png_slices,
    read_raw,
    start_ingest,
    tiff_slices,
    volume,
)

from datatypes.labelmap.downres import downres_labels

pytestmark = pytest.mark.e2e


def only_job(c: httpx.Client) -> dict:
    jobs = c.get("/api/ingest").json()
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_tiff_slices_into_uint8blk_with_pyramid(tmp_path: Path, server, client, repo) -> None:
    vol = volume((72, 100, 130))
    src = tiff_slices(tmp_path / "slices", vol)
    r = ingest_cli(str(src), server.url, repo[:8], "gray", "--create", "--block-size",
                   "32,32,32", "--chunk", "64,64,32", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    assert "COMPLETE" in r.stdout and "18 chunk(s) sent, 0 already" in r.stdout, r.stdout
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    job = only_job(client)
    assert job["state"] == "COMPLETE" and job["chunks_done"] == job["chunks_total"] == 18
    assert job["bytes_done"] == vol.nbytes and job["instance"] == "gray"
    assert [h[0] for h in job["history"]] == ["PREPARING", "UPLOADING", "DOWNSAMPLING",
                                              "COMPLETE"]
    lvl1 = mean2(vol)
    assert (read_raw(client, repo, "gray_1", lvl1.shape) == lvl1).all()
    lvl2 = mean2(lvl1[:, :, :64])  # 36 x 50 x 64 -> even sizes
    assert (read_raw(client, repo, "gray_2", lvl2.shape) == lvl2).all()
    # the same command again: the job is found complete, nothing is sent
    mark = server.log.stat().st_size
    r = ingest_cli(str(src), server.url, repo, "gray", "--chunk", "64,64,32",
                   "--scheduler", "threads")
    assert r.returncode == 0 and "0 chunk(s) sent, 18 already" in r.stdout, r.stdout
    assert access_count(server.log, "/gray/raw/", mark) == 0


def test_3d_tiff_box_and_offset_unaligned(tmp_path: Path, server, client, repo) -> None:
    import tifffile

    vol = volume((40, 50, 60), seed=3)
    tifffile.imwrite(tmp_path / "vol.tif", vol, imagej=True, resolution=(1 / 0.004, 1 / 0.004),
                     metadata={"spacing": 0.04, "unit": "um", "axes": "ZYX"})
    r = ingest_cli(str(tmp_path / "vol.tif"), server.url, repo, "gray", "--create",
                   "--block-size", "16,16,16", "--box", "5,7,3,55,47,33", "--offset",
                   "100,-20,9", "--scale-from-source", "--no-pyramid", "--scheduler",
                   "threads")
    assert r.returncode == 0, r.stderr
    got = read_raw(client, repo, "gray", (30, 40, 50), (105, -13, 12))
    assert (got == vol[3:33, 7:47, 5:55]).all()
    around = read_raw(client, repo, "gray", (32, 42, 52), (104, -14, 11))
    assert (around[0] == 0).all() and (around[:, :, 0] == 0).all()  # nothing outside
    info = client.get(f"/api/node/{repo}/gray/info").json()["Extended"]
    assert info["VoxelSize"] == [4, 4, 40]
    assert only_job(client)["history"][-1][0] == "COMPLETE"
    assert client.get(f"/api/node/{repo}/gray_1/info").status_code == 400  # no pyramid


def test_hdf5_labels_into_labelmap(tmp_path: Path, server, client, repo) -> None:
    import h5py

    z, y, x = np.indices((64, 96, 80))
    labels = (1 + x // 20 + 5 * (y // 24) + 40 * (z // 32)).astype(np.uint32)
    labels[10:20, 10:30, 5:15] = 2**31 + 7
    with h5py.File(tmp_path / "seg.h5", "w") as f:
        f.create_dataset("volumes/labels", data=labels, chunks=(32, 32, 32))
        f.create_dataset("volumes/other", data=np.zeros((4,), np.uint8))
    r = ingest_cli(f"{tmp_path / 'seg.h5'}:/volumes/labels", server.url, repo, "seg",
                   "--create", "labelmap", "--chunk", "64,64,64", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    got = read_raw(client, repo, "seg", (64, 96, 80), dtype="<u8", query="?supervoxels=true")
    assert (got == labels).all()
    info = client.get(f"/api/node/{repo}/seg/info").json()["Extended"]
    assert info["MaxDownresLevel"] == 1 and info["BlockSize"] == [64, 64, 64]
    padded = np.zeros((64, 128, 128), np.uint64)
    padded[:, :96, :80] = labels
    s1 = read_raw(client, repo, "seg", (32, 64, 64), dtype="<u8",
                  query="?supervoxels=true&scale=1")
    assert (s1 == downres_labels(padded)).all()
    assert "built as the blocks were written" in only_job(client)["history"][-1][2]


def test_zarr_into_uint8blk_and_precomputed_into_labelmap(tmp_path: Path, server, client,
                                                           repo) -> None:
    import tensorstore as ts

    vol = volume((48, 64, 96), seed=5)
    kv = {"driver": "file", "path": str(tmp_path / "v.zarr")}
    arr = ts.open({"driver": "zarr3", "kvstore": kv,
                   "metadata": {"shape": list(vol.shape), "data_type": "uint8",
                                "chunk_grid": {"name": "regular",
                                               "configuration": {"chunk_shape": [16, 32, 32]}}},
                   "create": True}).result()
    arr.write(vol).result()
    r = ingest_cli(str(tmp_path / "v.zarr"), server.url, repo, "gray", "--create",
                   "--block-size", "32,32,16", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    assert (read_raw(client, repo, "gray_1", (24, 32, 48)) == mean2(vol)).all()
    # neuroglancer precomputed is x, y, z, channel: the reader puts it in z, y, x
    lab = (volume((32, 40, 48), np.uint16, seed=6) + 1).astype(np.uint64)
    pre = ts.open({"driver": "neuroglancer_precomputed",
                   "kvstore": {"driver": "file", "path": str(tmp_path / "seg")},
                   "multiscale_metadata": {"type": "segmentation", "data_type": "uint64",
                                           "num_channels": 1},
                   "scale_metadata": {"size": [48, 40, 32], "resolution": [8, 8, 30],
                                      "chunk_size": [16, 16, 16], "encoding": "raw"},
                   "create": True}).result()
    pre.write(lab.T[..., None]).result()
    r = ingest_cli(str(tmp_path / "seg"), server.url, repo, "seg", "--create", "labelmap",
                   "--scale-from-source", "--no-pyramid", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    got = read_raw(client, repo, "seg", lab.shape, dtype="<u8", query="?supervoxels=true")
    assert (got == lab).all()
    info = client.get(f"/api/node/{repo}/seg/info").json()["Extended"]
    assert info["VoxelSize"] == [8, 8, 30]


def test_png_slices_on_the_base_install(tmp_path: Path, server, client, repo) -> None:
    vol = volume((20, 40, 50), seed=7)
    src = png_slices(tmp_path / "png", vol)
    r = ingest_cli(str(src), server.url, repo, "gray", "--create", "--block-size", "16,16,16",
                   "--chunk", "32,32,16", env=base_install_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "threads" in r.stdout and "Traceback" not in r.stderr
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    # a reader of the ingest extra on the base install: the install command, one line
    tiff_slices(tmp_path / "tif", vol[:2])
    r = ingest_cli(str(tmp_path / "tif"), server.url, repo, "gray",
                   env=base_install_env(tmp_path))
    assert r.returncode == 1 and "pip install -e '.[ingest]'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def wait_done_at_least(c: httpx.Client, frac: float, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = c.get("/api/ingest").json()
        if jobs and jobs[0]["chunks_done"] >= frac * jobs[0]["chunks_total"]:
            return jobs[0]
        time.sleep(0.01)
    raise AssertionError(f"no job reached {frac:.0%}")


def test_kill_client_at_half_then_resume_sends_only_missing(tmp_path: Path, server, client,
                                                            repo) -> None:
    vol = volume((64, 128, 160), seed=8)
    src = tiff_slices(tmp_path / "slices", vol)
    args = (str(src), server.url, repo, "gray", "--create", "--block-size", "16,16,16",
            "--chunk", "16,16,16", "--workers", "1", "--scheduler", "threads")
    p = start_ingest(*args, log=tmp_path / "client.log")
    try:
        wait_done_at_least(client, 0.5)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    time.sleep(0.2)
    job = only_job(client)
    acked, total = job["chunks_done"], job["chunks_total"]
    assert job["state"] == "UPLOADING" and total // 2 <= acked < total, job
    mark = server.log.stat().st_size
    r = ingest_cli(*args)
    assert r.returncode == 0, r.stderr
    assert f"{total - acked} chunk(s) sent, {acked} already acknowledged" in r.stdout, r.stdout
    assert access_count(server.log, "/gray/raw/", mark) == total - acked
    assert access_count(server.log, f"/api/ingest/{job['id']}/chunks/", mark) == total - acked
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    job = only_job(client)
    assert job["state"] == "COMPLETE" and "resumed" in [h[2] for h in job["history"]
                                                         if len(h) > 2]


def test_kill_server_mid_job_then_resume(tmp_path: Path, server, client, repo) -> None:
    vol = volume((48, 96, 128), seed=9)
    src = tiff_slices(tmp_path / "slices", vol)
    args = (str(src), server.url, repo, "gray", "--create", "--block-size", "16,16,16",
            "--chunk", "16,16,16", "--workers", "2", "--scheduler", "threads", "--retries", "1")
    p = start_ingest(*args, log=tmp_path / "client.log")
    try:
        wait_done_at_least(client, 0.3)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        rc = p.wait(120)
    finally:
        if p.poll() is None:
            p.kill()
    out = (tmp_path / "client.log").read_text()
    assert rc == 1 and "run the same command again to resume" in out, out
    assert "Traceback" not in out
    server.start()  # same data folder
    job = only_job(client)
    assert job["state"] == "UPLOADING" and 0 < job["chunks_done"] < job["chunks_total"]
    r = ingest_cli(*args)
    assert r.returncode == 0, r.stderr
    assert f"{job['chunks_done']} already acknowledged" in r.stdout, r.stdout
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
