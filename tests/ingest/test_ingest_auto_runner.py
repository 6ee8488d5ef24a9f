"""``--scheduler auto`` (the default): threads for small uploads or few cores, a local Dask
cluster only for big uploads on bigger machines; the choice seen end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_util import ingest_cli, read_raw, tiff_slices, volume

from dvidpy.ingest.runner import (
    AUTO_DASK_BYTES,
    AUTO_DASK_MIN_CORES,
    ThreadRunner,
    auto_uses_dask,
    local_cluster_shape,
    make_runner,
)


@pytest.mark.parametrize(("nbytes", "cores", "dask"), [
    (0, 64, False),  # a pyramid-only run: nothing to upload
    (1 << 30, 64, False),  # 1 GiB: the cluster's start would cost more than it gives
    (AUTO_DASK_BYTES - 1, 64, False),
    (AUTO_DASK_BYTES, 64, True),
    (AUTO_DASK_BYTES, AUTO_DASK_MIN_CORES, False),  # 2 cores: the server needs them
    (AUTO_DASK_BYTES, AUTO_DASK_MIN_CORES + 1, True),
    (1 << 50, 1, False),
])
def test_auto_choice(nbytes: int, cores: int, dask: bool) -> None:
    assert auto_uses_dask(nbytes, cores) is dask


@pytest.mark.parametrize(("workers", "cores", "shape"), [
    (4, 2, (2, 2)), (5, 2, (2, 3)), (2, 2, (2, 1)), (1, 8, (1, 1)), (0, 8, (1, 1)),
    (64, 8, (8, 8)), (3, 1, (1, 3)),
])
def test_local_cluster_shape(workers: int, cores: int, shape: tuple[int, int]) -> None:
    procs, threads = local_cluster_shape(workers, cores)
    assert (procs, threads) == shape
    assert procs <= max(1, cores) and procs * threads >= max(1, workers)


def test_auto_small_upload_makes_threads() -> None:
    r = make_runner("auto", 3, nbytes=1 << 20)
    assert isinstance(r, ThreadRunner) and r.workers == 3


@pytest.mark.e2e
def test_default_scheduler_runs_a_small_ingest_on_threads(tmp_path: Path, server, client,
                                                          repo) -> None:
    vol = volume((40, 50, 60))
    src = tiff_slices(tmp_path / "slices", vol)
    r = ingest_cli(str(src), server.url, repo, "gray", "--create", "--block-size", "16,16,16",
                   "--chunk", "32,32,16", "--workers", "2", "--no-pyramid")
    assert r.returncode == 0, r.stderr
    assert "on 2 threads" in r.stdout, r.stdout
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
