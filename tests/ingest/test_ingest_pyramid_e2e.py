"""The pyramid of an ingest job as tasks (issue 15, Build 5): every level equals the numpy
reduction when the tasks run on a real Dask ``LocalCluster`` one of whose two worker
processes is killed mid-pyramid; a client killed (-9) while the job is DOWNSAMPLING is
resumed by the same command, which sends only the tasks not done (counted in the server's
access log)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ingest_util import (
    access_count,
    ingest_cli,
    mean2,
    read_raw,
    start_ingest,
    tiff_slices,
    volume,
)

from dvidpy.ingest.client import ingest

pytestmark = pytest.mark.e2e

SHAPE = (64, 128, 128)  # z, y, x; 8^3 blocks: 4 levels (128 / 8 = 16 blocks across)
#: level 1 of 8^3-voxel tasks: 4 x 8 x 8 tasks, then 2 x 4 x 4, 1 x 2 x 2, 1
TASKS = 256 + 32 + 4 + 1


def levels_equal_numpy(client: Any, repo: str, name: str, vol: np.ndarray) -> None:
    lvl = vol
    for k in range(1, 5):
        lvl = mean2(lvl)
        got = read_raw(client, repo, f"{name}_{k}", lvl.shape)
        assert (got == lvl).all(), k
    r = client.get(f"/api/node/{repo}/{name}_5/info")
    assert r.status_code == 400  # no fifth level: four shrink 16 blocks to one


def job_of(client: Any) -> dict[str, Any]:
    jobs = client.get("/api/ingest").json()
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_dask_pyramid_survives_a_killed_worker(tmp_path: Path, server, client, repo) -> None:
    vol = volume(SHAPE, seed=3)
    src = tiff_slices(tmp_path / "slices", vol)
    killed: list[tuple[int, dict[str, Any]]] = []

    def on_runner(runner: Any) -> None:
        pids = runner.worker_pids()
        assert len(set(pids.values())) == 2

        def killer() -> None:  # kill a worker once 30 pyramid tasks are done
            end = time.monotonic() + 120
            while time.monotonic() < end:
                jobs = client.get("/api/ingest").json()
                p = jobs[0].get("pyramid_progress") if jobs else None
                if p and p["tasks_done"] >= 30:
                    pid = next(iter(pids.values()))
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, {**p, "state": jobs[0]["state"]}))
                    return
                time.sleep(0.005)

        threading.Thread(target=killer, daemon=True).start()

    r = ingest(str(src), server.url, repo, "gray", create="auto", block_size="8,8,8",
               chunk="32,32,32", pyramid_chunk="8,8,8", workers=2, scheduler="local",
               progress=False, log=lambda m: None, on_runner=on_runner)
    assert killed, "the worker was not killed"
    at_kill = killed[0][1]
    assert at_kill["state"] == "DOWNSAMPLING" and at_kill["tasks_done"] < TASKS, at_kill
    assert r.state == "COMPLETE", r
    assert r.note == f"gray_1 .. _4: {TASKS} blocks in {TASKS} tasks", r.note
    job = client.get(f"/api/ingest/{r.job}").json()
    assert job["pyramid_progress"]["tasks_done"] == job["pyramid_progress"]["tasks_total"]
    assert job["plan"]["tasks"] == [256, 32, 4, 1]
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    levels_equal_numpy(client, repo, "gray", vol)


def test_resume_after_a_client_kill_during_downsampling(tmp_path: Path, server, client,
                                                         repo) -> None:
    vol = volume(SHAPE, seed=4)
    src = tiff_slices(tmp_path / "slices", vol)
    args = (str(src), server.url, repo, "gray", "--create", "--block-size", "8,8,8",
            "--chunk", "64,64,64", "--pyramid-chunk", "8,8,8", "--workers", "1",
            "--scheduler", "threads")
    p = start_ingest(*args, log=tmp_path / "client.log")
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and p.poll() is None:
            jobs = client.get("/api/ingest").json()
            prog = jobs[0].get("pyramid_progress") if jobs else None
            if prog and prog["tasks_done"] >= 20:
                p.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        assert p.wait(30) == -signal.SIGKILL, (tmp_path / "client.log").read_text()
    finally:
        if p.poll() is None:
            p.kill()
    done = -1
    while True:  # a task the client sent before dying may still finish on the server
        job = job_of(client)
        if job["pyramid_progress"]["tasks_done"] == done:
            break
        done = job["pyramid_progress"]["tasks_done"]
        time.sleep(0.5)
    assert job["state"] == "DOWNSAMPLING" and 20 <= done < TASKS, job
    mark = server.log.stat().st_size
    r = ingest_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "COMPLETE" in r.stdout and "0 chunk(s) sent, 4 already" in r.stdout, r.stdout
    sent = access_count(server.log, f"/api/ingest/{job['id']}/pyramid/", mark)
    assert sent == TASKS - done, (sent, done)
    assert access_count(server.log, "/raw/", mark) == 0  # no voxels sent again
    job = job_of(client)
    assert job["state"] == "COMPLETE"
    assert [h[0] for h in job["history"]][-2:] == ["DOWNSAMPLING", "COMPLETE"]
    levels_equal_numpy(client, repo, "gray", vol)
