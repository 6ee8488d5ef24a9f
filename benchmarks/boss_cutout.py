"""Boss cutout benchmark: ``GET /v1/cutout`` (blosc) against DVID's ``GET raw`` of the same
box of the same instance, in one run, on a real ``dvidpy serve`` process over LevelDB.

Run:  python benchmarks/boss_cutout.py [--repeats 7] [--z 64]

For uint8 and uint16 channels (64^3 LZ4 blocks), of two kinds of data: ``em`` (EM-like:
smooth waves plus noise, which blosc does not shrink, so the answer is blosc's stored
frame) and ``smooth`` (the waves without noise, which blosc shrinks, so the answer takes
a compression pass), writes a 1024x1024x64 box through ``POST /v1/cutout``, then times,
alternately, ``GET /v1/cutout/.../0:1024/0:1024/0:64/`` with ``Accept: application/blosc``
and DVID's ``GET /api/node/{uuid}/{instance}/raw/0_1_2/1024_1024_64/0_0_0`` of the same
voxels, with curl (the client never the bottleneck). Prints each one's median time and
MB/s of voxels and the ratio (Boss voxel rate / DVID voxel rate; >= 0.8 is the target),
plus the blosc answer's size and compression ratio. Also checks once, with Python, that
both answers decode to the voxels written. Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import blosc
import httpx
import numpy as np
from harness import start_server

ROOT = Path(__file__).resolve().parents[1]
NX = NY = 1024


def volume(nz: int, dtype: str, noise: float = 0.016) -> np.ndarray:
    """EM-like voxels: smooth waves plus gaussian noise of ``noise`` (fraction of the
    type's range), scaled to the type's range."""
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(np.arange(nz), np.arange(NY), np.arange(NX), indexing="ij",
                          sparse=True)
    v = 0.5 + 0.23 * np.sin(x / 9) * np.cos(y / 11) + 0.12 * np.cos(z / 7)
    if noise:
        v = v + rng.normal(0, noise, (nz, NY, NX))
    top = np.iinfo(dtype).max
    return np.clip(v * top, 0, top).astype(dtype)


def curl(url: str, accept: str) -> tuple[float, int]:
    """Seconds and bytes of one GET, the body discarded."""
    out = subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", "-H", f"Accept: {accept}",
                          "-w", "%{time_total} %{size_download}", url],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def setup(c: httpx.Client, nz: int) -> str:
    """The Boss resources; returns the experiment's repo UUID."""
    ok = (200, 201)
    assert c.post("/v1/collection/bench", json={}).status_code in ok
    assert c.post("/v1/coord/bench", json={
        "x_start": 0, "x_stop": NX, "y_start": 0, "y_stop": NY, "z_start": 0, "z_stop": nz,
        "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 40,
        "voxel_unit": "nanometers"}).status_code in ok
    r = c.post("/v1/collection/bench/experiment/em", json={"coord_frame": "bench"})
    assert r.status_code == 201, r.text
    return r.json()["dvid_repo"]


#: data kinds: gaussian noise as a fraction of the type's range
KINDS = {"em": 0.016, "smooth": 0.0}


def run(c: httpx.Client, url: str, repo: str, dtype: str, kind: str, nz: int,
        repeats: int) -> None:
    ch = f"c{dtype}{kind}"
    r = c.post(f"/v1/collection/bench/experiment/em/channel/{ch}",
               json={"type": "image", "datatype": dtype})
    assert r.status_code == 201, r.text
    vol = volume(nz, dtype, KINDS[kind])
    box = f"0:{NX}/0:{NY}/0:{nz}"
    t0 = time.perf_counter()
    r = c.post(f"/v1/cutout/bench/em/{ch}/0/{box}/",
               content=blosc.compress(vol.tobytes(), typesize=vol.dtype.itemsize),
               headers={"Content-Type": "application/blosc"})
    assert r.status_code == 201, r.text
    post_s = time.perf_counter() - t0
    boss = f"{url}/v1/cutout/bench/em/{ch}/0/{box}/"
    dvid = f"{url}/api/node/{repo}/{ch}/raw/0_1_2/{NX}_{NY}_{nz}/0_0_0"
    got = np.frombuffer(blosc.decompress(c.get(boss, headers={
        "Accept": "application/blosc"}).content), dtype=dtype)
    assert got.tobytes() == vol.tobytes(), "Boss cutout differs from what was written"
    assert c.get(dvid).content == vol.tobytes(), "DVID raw differs from what was written"
    nbytes = vol.nbytes
    tb, td, size = [], [], 0
    curl(boss, "application/blosc")  # warm both paths
    curl(dvid, "application/octet-stream")
    for _ in range(repeats):
        s, size = curl(boss, "application/blosc")
        tb.append(s)
        s, n = curl(dvid, "application/octet-stream")
        assert n == nbytes
        td.append(s)
    mb, md = statistics.median(tb), statistics.median(td)
    print(f"{dtype} {kind}: {NX}x{NY}x{nz} = {nbytes / 2**20:.0f} MiB of voxels "
          f"(POST /v1/cutout blosc: {nbytes / post_s / 1e6:.0f} MB/s)")
    print(f"  GET /v1/cutout blosc : {mb * 1e3:7.1f} ms  {nbytes / mb / 1e6:6.0f} MB/s "
          f"(answer {size / 2**20:.1f} MiB, ratio {nbytes / size:.2f})")
    print(f"  GET raw (DVID)       : {md * 1e3:7.1f} ms  {nbytes / md / 1e6:6.0f} MB/s")
    print(f"  Boss / DVID rate     : {md / mb:.2f}x  (target >= 0.8x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--z", type=int, default=64, help="box depth (default 64)")
    args = ap.parse_args()
    if shutil.which("curl") is None:
        sys.exit("needs curl")
    tmp = Path(tempfile.mkdtemp(prefix="boss-bench-"))
    proc, url = start_server(tmp / "db")
    try:
        with httpx.Client(base_url=url, timeout=600) as c:
            repo = setup(c, args.z)
            print(f"server {url}, {os.cpu_count()} cores, blosc {blosc.__version__}")
            for dtype in ("uint8", "uint16"):
                for kind in KINDS:
                    run(c, url, repo, dtype, kind, args.z, args.repeats)
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
