"""Helpers of the ingest tests (sources written with the libraries that read them, the
``dvidpy ingest`` command as a child process, reads back). A module of its own, not
``conftest``: that name means another folder's module when several are collected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def volume(shape: tuple[int, int, int], dtype: Any = np.uint8, seed: int = 0) -> np.ndarray:
    """Non-constant test voxels (z, y, x): noise over a gradient."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    top = np.iinfo(dtype).max if np.dtype(dtype).kind in "ui" else 1.0
    base = (x * 3 + y * 5 + z * 7) % min(int(top) + 1, 251)
    return ((base + rng.integers(0, 5, shape)) % (int(top) + 1)).astype(dtype)


def tiff_slices(d: Path, vol: np.ndarray, compress: bool = False, name: str = "z") -> Path:
    import tifffile

    d.mkdir(parents=True, exist_ok=True)
    for z in range(vol.shape[0]):
        tifffile.imwrite(d / f"{name}{z}.tif", vol[z],
                         compression="zlib" if compress else None)
    return d


def png_slices(d: Path, vol: np.ndarray) -> Path:
    from PIL import Image

    d.mkdir(parents=True, exist_ok=True)
    for z in range(vol.shape[0]):
        Image.fromarray(vol[z]).save(d / f"s{z:03d}.png")
    return d


def ingest_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
               ) -> subprocess.CompletedProcess[str]:
    """``dvidpy ingest ARGS --quiet`` from the checkout under test."""
    return subprocess.run([sys.executable, "-m", "dvidpy.cli", "ingest", *args, "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env or {**os.environ})


def start_ingest(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """``dvidpy ingest`` as a background process (to kill it)."""
    f = open(log, "wb")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "dvidpy.cli", "ingest", *args, "--quiet"],
                            cwd=REPO, stdout=f, stderr=subprocess.STDOUT)


def read_raw(c: httpx.Client, root: str, name: str, shape: tuple[int, int, int],
             offset: tuple[int, int, int] = (0, 0, 0), dtype: Any = np.uint8,
             query: str = "") -> np.ndarray:
    nz, ny, nx = shape
    r = c.get(f"/api/node/{root}/{name}/raw/0_1_2/{nx}_{ny}_{nz}/"
              f"{offset[0]}_{offset[1]}_{offset[2]}{query}")
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, dtype=dtype).reshape(shape)


def mean2(v: np.ndarray) -> np.ndarray:
    """uint8blk's pyramid rule in numpy: 2x2x2 means rounded half up (sizes even)."""
    s = v.astype(np.int64)
    nz, ny, nx = s.shape
    t = s.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).sum(axis=(1, 3, 5))
    return ((t + 4) // 8).astype(np.uint8)


def access_count(log: Path, pattern: str, since: int = 0) -> int:
    """Access-log lines after byte ``since`` containing ``pattern`` with status 200."""
    text = log.read_bytes()[since:].decode(errors="replace")
    return sum(1 for line in text.splitlines() if "dvidpy.access" in line and pattern in line
               and " 200 " in line)
