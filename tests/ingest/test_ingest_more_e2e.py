"""What the ingest tests did not cover before (issue 15): zarr v2 sources (C and Fortran
order, blosc and zlib chunks, written by tensorstore, which reads them) and broken ones;
the progress bars the command prints; the message for a Dask scheduler nobody answers at.
Real files and real processes (a server, the ``dvidpy ingest`` command)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ingest_util import REPO, ingest_cli, mean2, read_raw, tiff_slices, volume
from servers import free_port

pytestmark = pytest.mark.e2e


def zarr2(path: Path, vol: np.ndarray, chunks: list[int], order: str,
          compressor: dict[str, Any]) -> None:
    import tensorstore as ts

    arr = ts.open({"driver": "zarr", "kvstore": {"driver": "file", "path": str(path)},
                   "metadata": {"shape": list(vol.shape), "chunks": chunks,
                                "dtype": vol.dtype.str, "order": order,
                                "compressor": compressor},
                   "create": True}).result()
    arr.write(vol).result()


def test_zarr_v2_sources(tmp_path: Path, server, client, repo) -> None:
    vol = volume((40, 64, 96), seed=8)
    zarr2(tmp_path / "c.zarr", vol, [16, 32, 32], "C",
          {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1})
    assert (tmp_path / "c.zarr" / ".zarray").is_file()  # v2 metadata, not zarr.json
    r = ingest_cli(str(tmp_path / "c.zarr"), server.url, repo, "gray", "--create",
                   "--block-size", "16,16,16", "--chunk", "32,32,16", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    assert "COMPLETE" in r.stdout and "18 chunk(s) sent" in r.stdout, r.stdout
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    assert (read_raw(client, repo, "gray_1", (20, 32, 48)) == mean2(vol)).all()
    # Fortran order, zlib, uint16 with values above 255: into uint16blk
    v16 = (volume((24, 40, 56), np.uint16, seed=9).astype(np.uint32) * 251).astype(np.uint16)
    assert v16.max() > 255
    zarr2(tmp_path / "f.zarr", v16, [8, 16, 16], "F", {"id": "zlib", "level": 3})
    r = ingest_cli(str(tmp_path / "f.zarr"), server.url, repo, "g16", "--create",
                   "--block-size", "8,8,8", "--no-pyramid", "--scheduler", "threads")
    assert r.returncode == 0, r.stderr
    info = client.get(f"/api/node/{repo}/g16/info").json()
    assert info["Base"]["TypeName"] == "uint16blk"
    assert (read_raw(client, repo, "g16", v16.shape, dtype="<u2") == v16).all()
    jobs_before = len(client.get("/api/ingest").json())
    # uint16 voxels into the uint8blk instance: refused before any upload
    r = ingest_cli(str(tmp_path / "f.zarr"), server.url, repo, "gray")
    assert r.returncode == 1 and "do not fit 'gray'" in r.stderr, r.stderr
    # metadata that is JSON but no array (no shape), and metadata that is not JSON
    bad = tmp_path / "bad.zarr"
    bad.mkdir()
    (bad / ".zarray").write_text('{"chunks": [8, 8, 8], "dtype": "|u1"}')
    r = ingest_cli(str(bad), server.url, repo, "gray")
    assert r.returncode == 1 and str(bad) in r.stderr, r.stderr
    (bad / ".zarray").write_text("{not json")
    r = ingest_cli(str(bad), server.url, repo, "gray")
    assert r.returncode == 1 and str(bad) in r.stderr, r.stderr
    for e in (r.stderr,):
        assert "Traceback" not in e and len(e.strip().splitlines()) == 1, e
    assert len(client.get("/api/ingest").json()) == jobs_before  # no job made
    # a chunk file cut short: the job FAILS naming the source; acknowledged chunks stay
    zarr2(tmp_path / "t.zarr", vol, [16, 32, 32], "C", {"id": "zlib", "level": 1})
    victim = tmp_path / "t.zarr" / "2.1.2"
    victim.write_bytes(victim.read_bytes()[:20])
    r = ingest_cli(str(tmp_path / "t.zarr"), server.url, repo, "gray", "--chunk",
                   "32,32,16", "--workers", "1", "--scheduler", "threads")
    assert r.returncode == 1 and "FAILED" in r.stderr and "t.zarr" in r.stderr, r.stderr
    job = client.get("/api/ingest").json()[-1]
    assert job["state"] == "FAILED" and "t.zarr" in job["error"]
    assert 0 < job["chunks_done"] < job["chunks_total"], job


def _bar_states(stderr: str, desc: str) -> list[str]:
    """The renderings of one tqdm bar (redrawn after carriage returns)."""
    return [s.strip() for s in re.split(r"[\r\n]", stderr) if s.strip().startswith(desc)]


def test_progress_bars(tmp_path: Path, server, client, repo) -> None:
    vol = volume((32, 64, 64), seed=10)
    src = tiff_slices(tmp_path / "slices", vol)
    p = subprocess.run([sys.executable, "-m", "dvidpy.cli", "ingest", str(src), server.url,
                        repo, "gray", "--create", "--block-size", "16,16,16", "--chunk",
                        "32,32,16", "--scheduler", "threads", "--workers", "2"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    up = _bar_states(p.stderr, "ingest gray")
    assert up, p.stderr
    # the last rendering: all bytes (128 KiB), the chunk count, a rate and the time
    assert re.match(r"ingest gray: 100%\|.*\| 128k/128k \[\d\d:\d\d<00:00, +[\d.]+[kMG]?B/s, "
                    r"8/8 chunks\]$", up[-1]), up[-1]
    counts = [int(m.group(1)) for m in (re.search(r"(\d+)/8 chunks", s) for s in up) if m]
    assert counts[0] == 0 and counts[-1] == 8 and counts == sorted(counts), up
    pyr = _bar_states(p.stderr, "pyramid gray")
    assert pyr, p.stderr
    # levels 1..2 above 64^2 x 32 voxels of 16^3 blocks: 2x2x1 + 1x1x1 blocks
    assert re.match(r"pyramid gray: 100%\|.*\| 5/5 \[.*block/s, level 2/2\]$", pyr[-1]), pyr
    # --quiet: no bar at all
    r = ingest_cli(str(src), server.url, repo, "gray2", "--create", "--scheduler", "threads")
    assert r.returncode == 0 and "ingest gray2" not in r.stderr and "%|" not in r.stderr, \
        r.stderr


def test_unreachable_scheduler(tmp_path: Path, server, client, repo) -> None:
    src = tiff_slices(tmp_path / "slices", volume((8, 16, 16)))
    addr = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.monotonic()
    r = ingest_cli(str(src), server.url, repo, "gray", "--create", "--scheduler", addr,
                   "--scheduler-timeout", "2", env={**os.environ})
    dt = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith(f"dvidpy ingest: can't reach the Dask scheduler at {addr}: "), \
        r.stderr
    assert "Traceback" not in r.stderr
    assert dt < 25, dt  # the timeout asked for, not the 30 s default
    assert client.get("/api/ingest").json() == []  # refused before any job was made
    # a scheduler address that is not one: refused at once
    r = ingest_cli(str(src), server.url, repo, "gray", "--scheduler", "tcp://127.0.0.1")
    assert r.returncode == 1 and "--scheduler 'tcp://127.0.0.1'" in r.stderr, r.stderr
