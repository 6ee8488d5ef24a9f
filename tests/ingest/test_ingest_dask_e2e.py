"""Ingest as Dask tasks on a real ``LocalCluster`` of two worker processes, one of which is
killed mid-job (issue 15): its chunks run again on the other, the volume equals the source
and every chunk is acknowledged once with the source's checksum."""

from __future__ import annotations

import os
import signal
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ingest_util import read_raw, tiff_slices, volume

from dvidpy.ingest.client import ingest
from dvidpy.ingest.jobs import chunk_box

pytestmark = pytest.mark.e2e


def test_local_cluster_survives_a_killed_worker(tmp_path: Path, server, client, repo) -> None:
    vol = volume((64, 96, 128), seed=11)
    src = tiff_slices(tmp_path / "slices", vol)
    killed: list[int] = []
    seen: dict[str, Any] = {}

    def on_runner(runner: Any) -> None:
        pids = runner.worker_pids()
        assert len(pids) == 2 and len(set(pids.values())) == 2
        seen["pids"] = dict(pids)

        def killer() -> None:  # kill one worker once a quarter of the chunks are in
            end = time.monotonic() + 60
            while time.monotonic() < end:
                jobs = client.get("/api/ingest").json()
                if jobs and jobs[0]["chunks_done"] >= jobs[0]["chunks_total"] // 4:
                    pid = next(iter(pids.values()))
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.01)

        threading.Thread(target=killer, daemon=True).start()

    r = ingest(str(src), server.url, repo, "gray", create="auto", block_size="16,16,16",
               chunk="16,16,16", workers=2, scheduler="local", progress=False,
               log=lambda m: None, on_runner=on_runner)
    assert killed, "the worker was not killed"
    assert r.state == "COMPLETE" and r.runner.startswith("a local Dask cluster of 2")
    assert r.chunks_sent == r.chunks_total == 4 * 6 * 8
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    job = client.get(f"/api/ingest/{r.job}").json()
    assert job["chunks_done"] == job["chunks_total"] and job["bytes_done"] == vol.nbytes
    acks = client.get(f"/api/ingest/{r.job}/chunks").json()
    assert sorted(acks["chunks"]) == list(range(r.chunks_total))
    for n, crc in zip(acks["chunks"], acks["crc"], strict=True):
        b = chunk_box(job, n)
        want = np.ascontiguousarray(vol[b[2]:b[5], b[1]:b[4], b[0]:b[3]])
        assert crc == zlib.crc32(want.tobytes()), n
