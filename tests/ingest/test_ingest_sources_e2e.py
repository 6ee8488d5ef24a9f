"""More sources and runners of ``dvidpy ingest`` on a real server (issue 15): slices picked
by ``--glob`` in natural order with ``--z-range``, JPEG slices, uint16 slices into uint16blk
and labelmap, an N5 volume, and a running Dask cluster
(``dask scheduler`` and two ``dask worker`` processes) reached with ``--scheduler tcp://``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ingest_util import REPO, ingest_cli, mean2, read_raw, tiff_slices, volume
from servers import free_port

pytestmark = pytest.mark.e2e


def test_glob_zrange_jpeg_uint16_labels_and_n5(tmp_path: Path, server, client, repo) -> None:
    import tensorstore as ts
    from PIL import Image

    # unpadded names (z2 before z10 only in natural order) among files the glob leaves out
    vol = volume((12, 40, 48), seed=21)
    src = tiff_slices(tmp_path / "mixed", vol, name="img")
    Image.fromarray(vol[0]).save(src / "thumb.png")
    (src / "notes.txt").write_text("not a slice")
    r = ingest_cli(str(src), server.url, repo, "gray", "--create", "--block-size",
                   "16,16,16", "--glob", "img*.tif", "--z-range", "3:9", "--no-pyramid",
                   "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    got = read_raw(client, repo, "gray", vol.shape)
    assert (got[3:9] == vol[3:9]).all()
    assert (got[:3] == 0).all() and (got[9:] == 0).all()  # slices outside the z-range
    r = ingest_cli(str(src), server.url, repo, "gray", "--scheduler", "threads")
    assert r.returncode == 1 and "use --glob to pick one kind" in r.stderr, r.stderr

    # JPEG slices: the voxels Pillow decodes
    jd = tmp_path / "jpeg"
    jd.mkdir()
    for z in range(8):
        Image.fromarray(vol[z]).save(jd / f"s{z}.jpg", quality=90)
    want = np.stack([np.asarray(Image.open(jd / f"s{z}.jpg")) for z in range(8)])
    r = ingest_cli(str(jd), server.url, repo, "jpg", "--create", "--block-size", "16,16,16",
                   "--chunk", "32,32,16", "--no-pyramid", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    assert (read_raw(client, repo, "jpg", want.shape) == want).all()

    # uint16 slices: --create makes a uint16blk; as labels they go into labelmap
    labels = (volume((16, 40, 48), np.uint16, seed=22).astype(np.uint32) * 257 + 1
              ).astype(np.uint16)
    ld = tiff_slices(tmp_path / "labels", labels)
    r = ingest_cli(str(ld), server.url, repo, "w16", "--create", "--block-size", "16,16,16",
                   "--no-pyramid", "--scheduler", "threads")
    assert r.returncode == 0 and "created uint16blk instance 'w16'" in r.stderr, r.stderr
    got = read_raw(client, repo, "w16", labels.shape, dtype="<u2")
    assert (got == labels).all() and got.max() > 255
    r = ingest_cli(str(ld), server.url, repo, "seg", "--create", "labelmap", "--block-size",
                   "16,16,16", "--no-pyramid", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    got = read_raw(client, repo, "seg", labels.shape, dtype="<u8", query="?supervoxels=true")
    assert (got == labels).all() and got.max() > 255

    # N5 (dimensions x, y, z in attributes.json): put in z, y, x
    n5 = volume((20, 24, 40), seed=23)
    arr = ts.open({"driver": "n5", "kvstore": {"driver": "file", "path": str(tmp_path / "v.n5")},
                   "metadata": {"dimensions": [40, 24, 20], "blockSize": [16, 16, 8],
                                "dataType": "uint8", "compression": {"type": "gzip"}},
                   "create": True}).result()
    arr.write(n5.T).result()
    r = ingest_cli(str(tmp_path / "v.n5"), server.url, repo, "n5", "--create", "--block-size",
                   "16,16,16", "--no-pyramid", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    assert "n5 40x24x20 uint8" in r.stderr, r.stderr
    assert (read_raw(client, repo, "n5", n5.shape) == n5).all()


def test_running_dask_cluster_by_address(tmp_path: Path, server, client, repo) -> None:
    from dask.distributed import Client

    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # workers import the code under test
    dask = [str(Path(sys.executable).with_name("dask"))]  # the CLI of the distributed package
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        f = open(tmp_path / "scheduler.log", "wb")  # noqa: SIM115
        logs.append(f)
        procs.append(subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port",
                                       str(port), "--no-dashboard"], cwd=tmp_path, env=env,
                                      stdout=f, stderr=subprocess.STDOUT))
        for i in range(2):
            f = open(tmp_path / f"worker{i}.log", "wb")  # noqa: SIM115
            logs.append(f)
            procs.append(subprocess.Popen([*dask, "worker", addr, "--nworkers", "1",
                                           "--nthreads", "1", "--no-dashboard",
                                           "--host", "127.0.0.1"], cwd=tmp_path,
                                          env=env, stdout=f, stderr=subprocess.STDOUT))
        end = time.monotonic() + 60
        while True:  # the scheduler takes a moment to listen
            try:
                with Client(addr, timeout=5) as c:
                    c.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.5)
        vol = volume((32, 64, 96), seed=24)
        src = tiff_slices(tmp_path / "slices", vol)
        r = ingest_cli(str(src), server.url, repo, "gray", "--create", "--block-size",
                       "16,16,16", "--chunk", "32,32,16", "--workers", "2", "--scheduler",
                       addr, timeout=180)
        assert r.returncode == 0, r.stderr
        assert f"on the Dask cluster at {addr} (2 workers)" in r.stdout, r.stdout
        assert "COMPLETE" in r.stdout and "12 chunk(s) sent" in r.stdout, r.stdout
        assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
        lvl1 = mean2(vol)
        assert (read_raw(client, repo, "gray_1", lvl1.shape) == lvl1).all()
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs[::-1]:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
