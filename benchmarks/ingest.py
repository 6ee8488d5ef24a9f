"""``dvidpy ingest`` end to end against tensorstore writing the same volume (issue 15).

Run:  python benchmarks/ingest.py [--gib 1] [--workers 4] [--scheduler auto] [--repeats 2]

1. Writes a stack of uncompressed uint8 TIFF slices (2048 x 2048 each, ``--gib`` GiB in
   all) of non-constant data: smooth waves plus noise, which LZ4 compresses about as
   badly as electron microscopy.
2. Peer: tensorstore writes the same volume (already in memory) to a local zarr v3 store
   with the instance's block shape (64^3 chunks) and LZ4 (blosc), the same codec family
   as the uint8blk blocks; MB/s.
3. ``dvidpy ingest`` of the slices into a new uint8blk instance (64^3 blocks, LZ4) of a
   fresh ``dvidpy serve`` on ``--engine`` (default LMDB, the server's default; or
   LevelDB): the whole command (reading files, uploading, committing, the job's
   bookkeeping; ``--no-pyramid``, the pyramid is timed on its own afterwards: ``POST
   downres`` of the first instance, and a third ingest whose pyramid runs as tasks), MB/s
   and its ratio to the peer's mean (target >= 0.8x).
4. Peak server memory (``/proc/PID/status`` sampled every 10 ms) above its baseline (after
   startup and the instance's creation) during the ingest, as a multiple of the chunk
   bytes in flight (``workers`` x the chunk's bytes; target <= 1.5x): ``RssAnon`` (the
   process's private memory: request bodies, arrays, encoded blocks, write batches,
   allocator arenas; what the target is read on), ``RssFile`` (file pages mapped in: with
   LMDB the data file's pages just written, which belong to the page cache and are
   dropped under memory pressure, not the process's) and ``VmRSS`` (their sum, plus
   shared memory).

Runs alternate peer and ingest ``--repeats`` times (this machine is shared: the ratio of
neighbouring runs is the figure), in a rotated order: odd runs time the peer first, even
runs dvidpy first. On this VM memory freed for more than ~2 s goes back to the host and
costs several times more to touch again, so whichever side runs right after the other
freed its output's page cache is favoured; with the fixed order (peer, then dvidpy) that
was always dvidpy. Each side's output is deleted once it has been timed (the peer's store,
the server's data folder). Not a test: it prints numbers and checks only that the
ingested volume reads back equal (a sample of slabs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from servers import ServerProcess  # noqa: E402

NY = NX = 2048
BLOCK = 64
CHUNK = (512, 512, 64)  # x, y, z: 16 MiB


def make_stack(d: Path, nz: int) -> np.ndarray:
    """The slices under ``d`` and the volume they hold (z, y, x)."""
    import tifffile

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:NY, 0:NX].astype(np.float32)
    waves = 60 * np.sin(x / 9) * np.cos(y / 11)
    noise = rng.normal(0, 4, (8, NY, NX)).astype(np.float32)
    vol = np.empty((nz, NY, NX), np.uint8)
    d.mkdir(parents=True)
    for z in range(nz):
        plane = 128 + np.roll(waves, z, axis=1) + 30 * np.cos(z / 7) + noise[z % 8]
        np.clip(plane, 0, 255, out=plane)
        vol[z] = plane.astype(np.uint8)
        tifffile.imwrite(d / f"slice_{z:05d}.tif", vol[z])
    return vol


def tensorstore_mbps(vol: np.ndarray, where: Path) -> float:
    import tensorstore as ts

    path = where / f"peer{time.monotonic_ns()}.zarr"
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)},
            "metadata": {"shape": list(vol.shape), "data_type": "uint8",
                         "chunk_grid": {"name": "regular",
                                        "configuration": {"chunk_shape": [BLOCK] * 3}},
                         "codecs": [{"name": "bytes"}, {"name": "blosc", "configuration": {
                             "cname": "lz4", "clevel": 5, "shuffle": "noshuffle",
                             "typesize": 1}}]},
            "create": True, "delete_existing": True}
    arr = ts.open(spec).result()
    t0 = time.perf_counter()
    arr.write(vol).result()
    dt = time.perf_counter() - t0
    shutil.rmtree(path)
    return vol.nbytes / 1e6 / dt


RSS_FIELDS = ("VmRSS", "RssAnon", "RssFile")


def rss_kib(pid: int) -> dict[str, int]:
    """``VmRSS``, ``RssAnon`` (private memory: heap, arenas, buffers) and ``RssFile``
    (file pages mapped in: LMDB's data file, libraries) of ``pid``, KiB."""
    out = dict.fromkeys(RSS_FIELDS, 0)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":")[0]
            if k in out:
                out[k] = int(line.split()[1])
    return out


def _ingest_once(srv: ServerProcess, c: object, root: str, name: str, slices: Path,
                 args: argparse.Namespace, vol: np.ndarray, pyramid: bool = False,
                 ) -> tuple[float, dict[str, float], float, str]:
    """``(MB/s, peak of each RSS field above its value before the ingest in MiB, seconds,
    the command's summary line)`` of one ingest."""
    r = c.post(f"/api/repo/{root}/instance", json={  # type: ignore[attr-defined]
        "typename": "uint8blk", "dataname": name, "BlockSize": f"{BLOCK},{BLOCK},{BLOCK}"})
    assert r.status_code == 200, r.text
    time.sleep(0.5)
    base = rss_kib(srv.proc.pid)
    peak = dict(base)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = rss_kib(srv.proc.pid)
            for k in RSS_FIELDS:
                peak[k] = max(peak[k], now[k])
            time.sleep(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    cmd = [sys.executable, "-m", "dvidpy.cli", "ingest", str(slices), srv.url, root,
           name, "--chunk", ",".join(map(str, CHUNK)), "--workers", str(args.workers),
           "--scheduler", args.scheduler, "--quiet"] + ([] if pyramid else ["--no-pyramid"])
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    stop.set()
    th.join()
    assert p.returncode == 0, p.stderr
    nz = vol.shape[0]
    for z in (0, nz // 2 // BLOCK * BLOCK, nz - BLOCK):  # a sample reads back equal
        got = c.get(f"/api/node/{root}/{name}/raw/0_1_2/{NX}_{NY}_{BLOCK}/0_0_{z}").content  # type: ignore[attr-defined]
        assert np.array_equal(np.frombuffer(got, np.uint8).reshape(BLOCK, NY, NX),
                              vol[z:z + BLOCK]), z
    return (vol.nbytes / 1e6 / dt, {k: (peak[k] - base[k]) / 1024 for k in RSS_FIELDS}, dt,
            p.stdout.strip())


def _rss_text(rss: dict[str, float], inflight: float) -> str:
    return ", ".join(f"{k} +{rss[k]:.0f} MiB = {rss[k] / inflight:.2f}x" for k in RSS_FIELDS)


Report = Callable[[float], None]


def ingest_run(slices: Path, where: Path, args: argparse.Namespace, vol: np.ndarray,
               ) -> tuple[tuple[float, float, float], Report]:
    """Two ingests into a fresh server (``gray``, then ``gray2`` once its engine buffers
    and allocator are warm), the pyramid of the first (``POST downres``), and a third
    ingest with its pyramid as tasks; returns the first's ``(MB/s, peak RssAnon above
    baseline in MiB, the second's)`` and a function printing them as ratios to a peer's
    MB/s (the peer may be timed after this run)."""
    import httpx

    d = where / f"srv{time.monotonic_ns()}"
    d.mkdir()
    toml = d / "dvid.toml"
    opts = (f"write_buffer_mb = {args.write_buffer_mb}\ncache_mb = {args.cache_mb}\n"
            if args.engine == "leveldb" else "")
    toml.write_text(f'[store.main]\nengine = "{args.engine}"\npath = "db"\n{opts}')
    srv = ServerProcess(["--config", str(toml), "--quiet"], d / "server.log")
    inflight = args.workers * CHUNK[0] * CHUNK[1] * CHUNK[2] / 2**20
    try:
        c = httpx.Client(base_url=srv.url, timeout=600)
        root = c.post("/api/repos", json={}).json()["root"]
        mbps, rss, dt, _ = _ingest_once(srv, c, root, "gray", slices, args, vol)
        mbps2, rss2, dt2, _ = _ingest_once(srv, c, root, "gray2", slices, args, vol)
        out = (mbps, rss["RssAnon"], rss2["RssAnon"])
        if args.upload_only:
            c.close()

            def short(peer: float) -> None:
                print(f"[ingest]   dvidpy ingest {mbps:.0f} MB/s ({dt:.1f} s) = "
                      f"{mbps / peer:.2f}x; {_rss_text(rss, inflight)}; a second: "
                      f"{mbps2:.0f} MB/s = {mbps2 / peer:.2f}x; {_rss_text(rss2, inflight)}")

            return out, short
        t1 = time.perf_counter()
        r = c.post(f"/api/node/{root}/gray/downres?wait=true")
        assert r.status_code == 200, r.text
        pyr = time.perf_counter() - t1
        _, rss3, dt3, line = _ingest_once(srv, c, root, "gray3", slices, args, vol, True)
        up = float(line.split(" MiB in ")[1].split(" s ")[0])
        ptasks = float(line.rsplit(" in ", 1)[1].split(" s")[0])
        c.close()

        def full(peer: float) -> None:
            print(f"[ingest]   dvidpy ingest {mbps:.0f} MB/s ({dt:.1f} s) = "
                  f"{mbps / peer:.2f}x; peak server RSS above the fresh server, of the "
                  f"{inflight:.0f} MiB in flight: {_rss_text(rss, inflight)}")
            print(f"[ingest]   a second ingest on that server: {mbps2:.0f} MB/s ({dt2:.1f} s)"
                  f" = {mbps2 / peer:.2f}x; {_rss_text(rss2, inflight)}")
            print(f"[ingest]   pyramid of the first by POST downres {pyr:.1f} s; a third "
                  f"ingest with its pyramid as tasks: {dt3:.1f} s, of which upload {up:.1f} "
                  f"s, pyramid tasks {ptasks:.1f} s; {_rss_text(rss3, inflight)}")

        return out, full
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)  # as the peer's store is: both free their output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="volume size in GiB (default 1)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--scheduler", default="auto", help="auto, threads, local, tcp://...")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--engine", default="lmdb", choices=("lmdb", "leveldb"),
                    help="the server's engine (default lmdb, the server's default)")
    ap.add_argument("--write-buffer-mb", type=int, default=64,
                    help="the server's LevelDB memtable (default 64, dvidpy's default)")
    ap.add_argument("--cache-mb", type=int, default=256,
                    help="the server's LevelDB block cache (default 256, dvidpy's default)")
    ap.add_argument("--dir", help="work folder (default: a temporary one)")
    ap.add_argument("--upload-only", action="store_true",
                    help="only the two ingests of each run (no pyramid timings)")
    args = ap.parse_args()
    nz = max(BLOCK, round(args.gib * 2**30 / (NY * NX) / BLOCK) * BLOCK)
    where = Path(tempfile.mkdtemp(prefix="ingest-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        vol = make_stack(where / "slices", nz)
        print(f"[ingest] {nz} uint8 TIFF slices of {NX}x{NY} ({vol.nbytes / 2**30:.2f} GiB) "
              f"written in {time.perf_counter() - t0:.0f} s; {os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.1f}")
        inflight = args.workers * CHUNK[0] * CHUNK[1] * CHUNK[2] / 2**20
        peers, runs = [], []
        for i in range(args.repeats):
            dvidpy_first = i % 2 == 1
            print(f"[ingest] run {i + 1} ({'dvidpy' if dvidpy_first else 'tensorstore'} first,"
                  f" load {os.getloadavg()[0]:.1f}):")
            if dvidpy_first:
                res, report = ingest_run(where / "slices", where, args, vol)
            peers.append(tensorstore_mbps(vol, where))
            print(f"[ingest]   tensorstore zarr v3 {peers[-1]:.0f} MB/s")
            if not dvidpy_first:
                res, report = ingest_run(where / "slices", where, args, vol)
            report(peers[-1])
            runs.append(res)
            print(f"[ingest]   (load {os.getloadavg()[0]:.1f})")
        ts_mean = statistics.mean(peers)
        mean = statistics.mean(r[0] for r in runs)
        eng = (f"LevelDB write_buffer_mb {args.write_buffer_mb}, cache_mb {args.cache_mb}"
               if args.engine == "leveldb" else "LMDB")
        print(f"[ingest] {args.workers} workers ({args.scheduler}), {eng}: dvidpy ingest "
              f"{mean:.0f} MB/s "
              f"mean (best {max(r[0] for r in runs):.0f}), tensorstore {ts_mean:.0f} MB/s mean: "
              f"{mean / ts_mean:.2f}x (target >= 0.8x); peak RssAnon above baseline at most "
              f"{max(r[1] for r in runs) / inflight:.2f}x the in-flight chunk bytes on a fresh "
              f"server, {max(r[2] for r in runs) / inflight:.2f}x on a warm one "
              "(target <= 1.5x)")
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
