"""labelmap endpoint benchmark (in-process app on the memory engine).

Run ``python benchmarks/labelmap.py``. Issue 13's label-block figures, from one run
(``--codec --ingest``):

* ``--codec``: block codec encode / decode throughput as ratios to ``lz4.block`` on the same
  raw bytes, for 64³ Voronoi blocks of 30 / 100 / 300 labels
  (:func:`benchmarks.labelmap_codec.run_benchmark`),
* ``--ingest``: labelmap ``POST raw`` of a 512 x 512 x 256 uint64 segmentation (label
  indices on) against tensorstore writing the same volume as neuroglancer precomputed
  ``compressed_segmentation`` (64³ chunks, 8³ blocks), both in-process: dvidpy's handler
  (the request already read) and the whole in-process request (ASGI app, one body
  message), on the memory engine against tensorstore's ``memory`` kvstore and on LevelDB
  against its ``file`` kvstore. Needs the ``bench`` extra (tensorstore).

``--inproc`` prints:

* codec figures from :func:`benchmarks.labelmap_codec.run_benchmark` (ratios vs lz4),
* merge / cleave latency for bodies of ~10^4 and ~10^7 voxels and their large/small ratio,
* ``sparsevol`` (rles) throughput of the 10^7-voxel body, in voxels/s and as a ratio to
  the same run's raw lz4 decompression of the same voxel count (baseline),
* ``sparsevol-coarse`` latency of a 1,000-block body,
* ``specificblocks?compression=blocks`` blocks/s for 1,000 blocks (mapped and
  ``supervoxels=true``).

Server figures (``--server``; a real ``dvidpy serve`` process on LevelDB, over HTTP):

* merge / cleave latency (median of 15, interleaved) on a ~10^7-voxel body made of ~900 supervoxels
  whose blocks are all mixed, and on ~10^4-voxel bodies; large/small ratios,
* ``sparsevol`` (rles) of that 10^7-voxel body with mixed blocks, in voxels/s,
* ``sparsevol-coarse`` of a 1,000-block body and ``specificblocks`` blocks/s (1,000 blocks),
* (``--startup``) startup with a mapping of ``--mapping-size`` (default 10^7) supervoxels
  written through ``POST mappings``: seconds from spawning the restarted server to its
  first correct ``mapping`` and ``label`` answers, and VmRSS / VmHWM from /proc.
* (``--post-memory``) peak server RSS above its baseline during one ``POST raw`` of
  ``--post-mib`` MiB (default 512) of uint64 supervoxels (64³ blocks of mixed cells), as a
  multiple of the payload, with the default ``writeBatchBytes`` (64 MiB batches) and, in
  the same run as the baseline, with one batch for the whole request
  (``writeBatchBytes`` = 1 TiB). ``--server-src DIR`` runs the servers from another
  checkout (e.g. main) for comparison.

``python benchmarks/labelmap.py [--codec] [--ingest] [--inproc] [--server] [--startup]
[--post-memory] [--mapping-size N] [--post-mib N]`` (no flag: all but ``--post-memory``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lz4.block
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from starlette.testclient import TestClient

from benchmarks.labelmap_codec import run_benchmark
from datatypes import protos
from datatypes.labelmap.block_codec import HAVE_EXTENSION
from dvidpy.config import Settings
from dvidpy.datatype import Call
from dvidpy.repo import RepoManager
from server import create_app

BIG = 2**33
BIG2 = 2**40


def _t(fn, n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_codec() -> None:
    """Codec vs lz4 ratios at 30 / 100 / 300 labels (issue 13's figures)."""
    print(f"[codec] 64³ Voronoi blocks, same raw bytes through lz4.block; compiled kernels: "
          f"{HAVE_EXTENSION}; {_load()}")
    for k, v in run_benchmark(label_counts=(30, 100, 300)).items():
        print(f"[codec] {k:>10}: encode {v['encode_MBps']:6.0f} MB/s = "
              f"{v['encode_vs_lz4']:.2f}x lz4 (target >= 0.25)   decode "
              f"{v['decode_MBps']:6.0f} MB/s = {v['decode_vs_lz4']:.2f}x lz4 (target >= 0.5)")


def segmentation_volume(shape: tuple[int, int, int] = (256, 512, 512), cell: int = 32,
                        seed: int = 0) -> np.ndarray:
    """A (nz, ny, nx) uint64 segmentation: a grid of ``cell``-voxel cells whose walls are
    bent by smooth random displacements (so no boundary is grid-aligned), each cell a
    random 64-bit id. Costs a few numpy passes over the volume."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape

    def smooth(h: int, w: int) -> np.ndarray:
        """(h, w) float32 field, amplitude ~cell/3, varying over ~16 voxels."""
        step = 16
        coarse = rng.normal(0, cell / 3, size=(h // step + 2, w // step + 2))
        yi, xi = np.arange(h) / step, np.arange(w) / step
        rows = np.stack([np.interp(xi, np.arange(coarse.shape[1]), r) for r in coarse])
        return np.stack([np.interp(yi, np.arange(coarse.shape[0]), c) for c in rows.T],
                        axis=1).astype(np.float32)

    dz = smooth(ny, nx)[None]  # wall displacement of z walls, function of (y, x), etc.
    dy = smooth(nz, nx)[:, None, :]
    dx = smooth(nz, ny)[:, :, None]
    pad = 2
    ids = rng.integers(1, 2**63, size=(nz // cell + 2 * pad + 1, ny // cell + 2 * pad + 1,
                                       nx // cell + 2 * pad + 1), dtype=np.uint64)
    out = np.empty(shape, dtype=np.uint64)
    zz = np.arange(nz, dtype=np.float32)[:, None, None]
    yy = np.arange(ny, dtype=np.float32)[None, :, None]
    xx = np.arange(nx, dtype=np.float32)[None, None, :]
    for z0 in range(0, nz, 16):
        sl = slice(z0, z0 + 16)
        iz = ((zz[sl] + dz) // cell).astype(np.int64) + pad
        iy = ((yy + dy[sl]) // cell).astype(np.int64) + pad
        ix = ((xx + dx[sl]) // cell).astype(np.int64) + pad
        out[sl] = ids[iz, iy, ix]
    return out


async def _asgi_post(app: Any, path: str, body: bytes) -> int:
    """POST ``body`` to the in-process ASGI ``app`` in one message; the status code."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"127.0.0.1"),
                         (b"content-length", str(len(body)).encode())]}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status
        if msg["type"] == "http.response.start":
            status = msg["status"]

    await app(scope, receive, send)
    return status


def _tensorstore_seconds(vol: np.ndarray, kvstore: dict[str, Any]) -> float:
    import tensorstore as ts

    nz, ny, nx = vol.shape
    spec = {"driver": "neuroglancer_precomputed", "kvstore": kvstore,
            "multiscale_metadata": {"type": "segmentation", "data_type": "uint64",
                                    "num_channels": 1},
            "scale_metadata": {"size": [nx, ny, nz], "encoding": "compressed_segmentation",
                               "compressed_segmentation_block_size": [8, 8, 8],
                               "chunk_size": [64, 64, 64], "resolution": [8, 8, 8]},
            "create": True, "delete_existing": True}
    arr = ts.open(spec).result()
    t0 = time.perf_counter()
    arr.write(vol.T[..., None]).result()  # x, y, z, channel view of the same buffer
    return time.perf_counter() - t0


def _dvidpy_seconds(vol: np.ndarray, settings: Settings, whole_request: bool) -> float:
    """Seconds of one labelmap ``POST raw`` of ``vol`` into a new instance: the handler
    with the body already read, or (``whole_request``) the whole in-process request."""
    mgr = RepoManager(settings)
    app = create_app(settings, manager=mgr)
    c = TestClient(app)
    root = c.post("/api/repos", json={}).json()["root"]
    assert c.post(f"/api/repo/{root}/instance",
                  json={"typename": "labelmap", "dataname": "seg"}).status_code == 200
    nz, ny, nx = vol.shape
    body = vol.tobytes()
    args = ["0_1_2", f"{nx}_{ny}_{nz}", "0_0_0"]
    path = f"/api/node/{root}/seg/raw/" + "/".join(args)
    t0 = time.perf_counter()
    if whole_request:
        assert asyncio.run(_asgi_post(app, path, body)) == 200
    else:
        repo, node = mgr.resolve(root)
        inst = mgr.instance(repo, "seg")
        call = Call("POST", "raw", args, {}, body, mgr.context(inst, node), {}, path)
        assert inst.handle(call).status_code == 200
    dt = time.perf_counter() - t0
    r = c.get(f"/api/node/{root}/seg/label/{nx // 2}_{ny // 2}_{nz // 2}")
    assert r.json()["Label"] == int(vol[nz // 2, ny // 2, nx // 2]), r.text
    mgr.close()
    return dt


def run_ingest(shape: tuple[int, int, int] = (256, 512, 512), repeats: int = 3) -> None:
    """labelmap ``POST raw`` (with label indices) vs tensorstore compressed_segmentation."""
    t0 = time.perf_counter()
    vol = segmentation_volume(shape)
    per_block = np.mean([np.unique(vol[z:z + 64, y:y + 64, x:x + 64]).size
                         for z in range(0, shape[0], 64) for y in range(0, shape[1], 128)
                         for x in range(0, shape[2], 128)])
    print(f"[ingest] {shape[2]}x{shape[1]}x{shape[0]} uint64 ({vol.nbytes / 2**20:.0f} MiB), "
          f"{np.unique(vol).size} labels, ~{per_block:.0f} per 64³ block (made in "
          f"{time.perf_counter() - t0:.1f} s); best of {repeats}; compiled kernels: "
          f"{HAVE_EXTENSION}; {_load()}")
    with tempfile.TemporaryDirectory() as d:
        peers = {
            "memory": (lambda: Settings.memory(), lambda: {"driver": "memory"}),
            "disk": (lambda: Settings.default(str(Path(d) / f"ldb{time.monotonic_ns()}")),
                     lambda: {"driver": "file",
                              "path": str(Path(d) / f"ts{time.monotonic_ns()}")}),
        }
        for name, (mk_settings, mk_kv) in peers.items():
            t_ts = min(_tensorstore_seconds(vol, mk_kv()) for _ in range(repeats))
            t_h = min(_dvidpy_seconds(vol, mk_settings(), False) for _ in range(repeats))
            t_r = min(_dvidpy_seconds(vol, mk_settings(), True) for _ in range(repeats))
            what = ("memory engine vs tensorstore memory kvstore" if name == "memory"
                    else "LevelDB vs tensorstore file kvstore")
            print(f"[ingest] {what}: tensorstore {t_ts:.2f} s; dvidpy handler {t_h:.2f} s = "
                  f"{t_ts / t_h:.2f}x, whole request {t_r:.2f} s = {t_ts / t_r:.2f}x "
                  f"(target >= 0.25x)")


def run_inprocess() -> None:
    """The in-process figures (memory engine)."""
    c = TestClient(create_app(Settings.memory()))
    root = c.post("/api/repos", json={}).json()["root"]
    c.post(f"/api/repo/{root}/instance", json={"typename": "labelmap", "dataname": "seg"})
    c.post(f"/api/repo/{root}/instance", json={"typename": "labelmap", "dataname": "small",
                                               "BlockSize": "16,16,16"})
    base = f"/api/node/{root}/seg"
    # large body: 40 supervoxels, one 64³ block each (40 x 262144 = 10.5 M voxels)
    vol = np.zeros((128, 256, 320), dtype=np.uint64)  # z, y, x: 2 x 4 x 5 blocks
    bz, by, bx = np.indices((2, 4, 5)).reshape(3, -1)
    for i, (z, y, x) in enumerate(zip(bz.tolist(), by.tolist(), bx.tolist(), strict=True)):
        vol[z * 64:(z + 1) * 64, y * 64:(y + 1) * 64, x * 64:(x + 1) * 64] = BIG + i
    t0 = time.perf_counter()
    r = c.post(f"{base}/raw/0_1_2/320_256_128/0_0_0", content=vol.tobytes())
    assert r.status_code == 200, r.text
    print(f"POST raw 10.5M voxels: {time.perf_counter() - t0:.2f} s")
    large_svs = list(range(BIG, BIG + 40))
    # small bodies of ~10^4 voxels (22³) in one more block row
    small = np.zeros((64, 64, 64), dtype=np.uint64)
    for i in range(8):
        z, y, x = (i >> 2) & 1, (i >> 1) & 1, i & 1
        small[z * 32:z * 32 + 22, y * 32:y * 32 + 22, x * 32:x * 32 + 22] = BIG + 100 + i
    c.post(f"{base}/raw/0_1_2/64_64_64/0_0_128", content=small.tobytes())

    def merge_large() -> None:
        assert c.post(f"{base}/merge", json=large_svs[:2]).status_code == 200
    # target BIG+0 ← merge the other 39 (one op), then measure cleave/merge on it
    t_merge_large = _t(lambda: c.post(f"{base}/merge", json=[BIG, *large_svs[1:]]), 1)
    t_merge_small = _t(lambda: c.post(f"{base}/merge", json=[BIG + 100, BIG + 101]), 1)
    t_cleave_large = _t(lambda: c.post(f"{base}/cleave/{BIG}", json=large_svs[20:]), 1)
    t_cleave_small = _t(lambda: c.post(f"{base}/cleave/{BIG + 100}", json=[BIG + 101]), 1)
    # merge back the cleaved half: 10^7-scale merge of a 20-block body
    cleaved = c.get(f"{base}/label/0_0_64?supervoxels=false").json()["Label"]
    del cleaved
    print(f"merge   large={t_merge_large * 1e3:.1f} ms small={t_merge_small * 1e3:.1f} ms "
          f"ratio={t_merge_large / t_merge_small:.2f}")
    print(f"cleave  large={t_cleave_large * 1e3:.1f} ms small={t_cleave_small * 1e3:.1f} ms "
          f"ratio={t_cleave_large / t_cleave_small:.2f}")
    body_vox = c.get(f"{base}/size/{BIG}").json()["voxels"]
    t_sv = _t(lambda: c.get(f"{base}/sparsevol/{BIG}"))
    raw = vol.tobytes()[: body_vox * 8]
    comp = lz4.block.compress(raw, store_size=False)
    t_lz4 = _t(lambda: lz4.block.decompress(comp, uncompressed_size=len(raw)))
    print(f"sparsevol rles body={body_vox} voxels: {body_vox / t_sv / 1e6:.1f} M voxels/s "
          f"(baseline lz4 decompress of same voxels {body_vox / t_lz4 / 1e6:.1f} M voxels/s,"
          f" ratio {t_lz4 / t_sv:.3f})")
    # 1,000-block body with 16³ blocks
    sb = f"/api/node/{root}/small"
    vol2 = np.zeros((160, 160, 160), dtype=np.uint64)
    rng = np.random.default_rng(0)
    vol2[:] = BIG + 7
    vol2[rng.random(vol2.shape) < 0.05] = BIG + 8
    assert c.post(f"{sb}/raw/0_1_2/160_160_160/0_0_0", content=vol2.tobytes()).status_code == 200
    t_coarse = _t(lambda: c.get(f"{sb}/sparsevol-coarse/{BIG + 7}"))
    print(f"sparsevol-coarse 1000-block body: {t_coarse * 1e3:.1f} ms")
    blocks = ",".join(f"{x},{y},{z}" for z in range(10) for y in range(10) for x in range(10))
    for q in ("", "&supervoxels=true"):
        t_sb = _t(lambda q=q: c.get(f"{sb}/specificblocks?blocks={blocks}&compression=blocks{q}"))
        print(f"specificblocks 1000 blocks{q or ' (mapped)'}: {1000 / t_sb:.0f} blocks/s")



# ----- real server process on LevelDB --------------------------------------------------

class Server:
    """A ``dvidpy serve`` child process on a LevelDB folder."""

    def __init__(self, data: Path, log: Path, toml: str = "", src: Path | None = None) -> None:
        self.data, self.log = data, log
        self.toml, self.src = toml, src or Path(__file__).resolve().parents[1]
        self.proc: subprocess.Popen[bytes] | None = None
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            self.port = sk.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def spawn(self) -> float:
        """Start the process; returns its spawn time (perf_counter)."""
        cmd = [sys.executable, "-m", "dvidpy.cli", "serve", "--quiet", "--host", "127.0.0.1",
               "--port", str(self.port)]
        if self.toml:  # [server] settings plus a LevelDB store at self.data
            cfg = self.log.with_suffix(".toml")
            cfg.write_text(f'[server]\nhttpAddress = "127.0.0.1:{self.port}"\n{self.toml}\n'
                           f'[store.main]\nengine = "leveldb"\npath = "{self.data}"\n')
            cmd += ["--config", str(cfg)]
        else:
            cmd += ["--data", str(self.data)]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "ab"),  # noqa: SIM115
                                     stderr=subprocess.STDOUT, cwd=self.src,
                                     env={**os.environ, "PYTHONPATH": str(self.src)})
        return t0

    def wait(self, probe: Callable[[], bool], timeout: float = 120) -> float:
        """Poll ``probe`` until it succeeds; returns the perf_counter time of success."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(self.log.read_text()[-3000:])
            try:
                if probe():
                    return time.perf_counter()
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise RuntimeError("server did not answer in time")

    def start(self) -> None:
        self.spawn()
        self.wait(lambda: httpx.get(self.url + "/api/heartbeat", timeout=1).status_code == 200)

    def memory(self) -> dict[str, int]:
        """VmRSS / VmHWM (KiB) of the server process."""
        assert self.proc is not None
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _median_ms(fns: list[Callable[[], object]]) -> float:
    times = []
    for fn in fns:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _mixed_volume() -> tuple[np.ndarray, list[int], list[int]]:
    """256³ supervoxel volume of ~1,400 grid cells (20 x 24 x 28 voxels, not aligned to
    64³ blocks); a random 60 % of the cells form the large body (~10^7 voxels, every
    block mixed). Returns (volume z,y,x; body supervoxels; other supervoxels)."""
    z, y, x = np.ogrid[:256, :256, :256]
    cell = (z // 20) * 10_000 + (y // 24) * 100 + (x // 28)
    ids, inv = np.unique(cell, return_inverse=True)
    vol = (BIG + inv.reshape(256, 256, 256)).astype(np.uint64)
    rng = np.random.default_rng(5)
    inbody = rng.random(ids.size) < 0.6
    svs = (BIG + np.arange(ids.size)).tolist()
    return vol, [s for s, b in zip(svs, inbody, strict=True) if b], \
        [s for s, b in zip(svs, inbody, strict=True) if not b]


def run_server(tmp: Path) -> None:
    """Merge/cleave/sparsevol/coarse/specificblocks through a real server on LevelDB."""
    srv = Server(tmp / "lat", tmp / "lat.log")
    srv.start()
    try:
        c = httpx.Client(base_url=srv.url, timeout=600)
        root = c.post("/api/repos", json={}).json()["root"]
        c.post(f"/api/repo/{root}/instance", json={"typename": "labelmap", "dataname": "seg"})
        c.post(f"/api/repo/{root}/instance", json={"typename": "labelmap",
                                                   "dataname": "small",
                                                   "BlockSize": "16,16,16"})
        base = f"/api/node/{root}/seg"
        vol, body_svs, rest = _mixed_volume()
        t0 = time.perf_counter()
        for z0 in range(0, 256, 64):  # 4 POSTs of 64 x 256 x 256
            r = c.post(f"{base}/raw/0_1_2/256_256_64/0_0_{z0}",
                       content=vol[z0:z0 + 64].tobytes())
            assert r.status_code == 200, r.text
        print(f"[server] POST raw 16.8M voxels (4 requests): {time.perf_counter() - t0:.1f} s")
        # small bodies: 2 x 2 x 2 cubes of 22³ = 10,648 voxels in one block at x = 256
        small = np.zeros((64, 64, 64), dtype=np.uint64)
        smalls = []
        for i in range(8):
            zz, yy, xx = (i >> 2) & 1, (i >> 1) & 1, i & 1
            small[zz * 32:zz * 32 + 22, yy * 32:yy * 32 + 22, xx * 32:xx * 32 + 22] = \
                BIG2 + i
            smalls.append(BIG2 + i)
        assert c.post(f"{base}/raw/0_1_2/64_64_64/256_0_0",
                      content=small.tobytes()).status_code == 200
        target = body_svs[0]
        t0 = time.perf_counter()
        r = c.post(f"{base}/merge", json=[target, *body_svs[1:]])
        assert r.status_code == 200, r.text
        t_form = time.perf_counter() - t0
        size = c.get(f"{base}/size/{target}").json()["voxels"]
        print(f"[server] forming the large body: merge of {len(body_svs)} supervoxels "
              f"({size} voxels) {t_form * 1e3:.0f} ms")
        def ok(r: httpx.Response) -> httpx.Response:
            assert r.status_code == 200, r.text
            return r

        # Interleave large and small edits (15 rounds, medians) after letting LevelDB's
        # background compaction of the ingest settle, so both see the same conditions.
        time.sleep(3)
        tl_m, tl_c, ts_m, ts_c = [], [], [], []
        cur = {sv: sv for sv in smalls}
        for i in range(15):
            s = rest[i]  # merge one more neighbour cell into the large body, cleave it out
            tl_m.append(_median_ms([lambda s=s: ok(c.post(f"{base}/merge", json=[target, s]))]))
            tl_c.append(_median_ms([lambda s=s: ok(c.post(f"{base}/cleave/{target}",
                                                          json=[s]))]))
            # two ~10^4-voxel bodies merged, then cleaved apart (the cleaved supervoxel
            # gets a new body id, which a later round merges again)
            a, b = smalls[(2 * i) % 8], smalls[(2 * i + 1) % 8]
            ts_m.append(_median_ms([lambda a=a, b=b: ok(c.post(
                f"{base}/merge", json=[cur[a], cur[b]]))]))
            out: dict = {}
            ts_c.append(_median_ms([lambda a=a, b=b, out=out: out.update(ok(c.post(
                f"{base}/cleave/{cur[a]}", json=[b])).json())]))
            cur[b] = out["CleavedLabel"]
        t_ml, t_cl = statistics.median(tl_m), statistics.median(tl_c)
        t_msm, t_csm = statistics.median(ts_m), statistics.median(ts_c)
        print(f"[server] merge  large={t_ml:.1f} ms small={t_msm:.1f} ms "
              f"ratio={t_ml / t_msm:.2f}  (target: ratio <= 2, large < 50 ms)")
        print(f"[server] cleave large={t_cl:.1f} ms small={t_csm:.1f} ms "
              f"ratio={t_cl / t_csm:.2f}  (target: ratio <= 2, large < 50 ms)")
        size = c.get(f"{base}/size/{target}").json()["voxels"]
        nblk = c.get(f"{base}/sparsevol-size/{target}").json()["numblocks"]
        url = f"{base}/sparsevol/{target}"
        assert c.get(url).status_code == 200
        t_sv = _median_ms([lambda: c.get(url)] * 3) / 1e3
        print(f"[server] sparsevol rles {size} voxels in {nblk} mixed blocks: "
              f"{t_sv * 1e3:.0f} ms = {size / t_sv / 1e6:.1f} M voxels/s (target >= 50)")
        # 1,000-block body with 16³ blocks
        sb = f"/api/node/{root}/small"
        vol2 = np.full((160, 160, 160), BIG + 7, dtype=np.uint64)
        vol2[np.random.default_rng(0).random(vol2.shape) < 0.05] = BIG + 8
        assert c.post(f"{sb}/raw/0_1_2/160_160_160/0_0_0",
                      content=vol2.tobytes()).status_code == 200
        time.sleep(3)  # let LevelDB compact the ingest before timing reads
        t_coarse = _median_ms([lambda: c.get(f"{sb}/sparsevol-coarse/{BIG + 7}")] * 7)
        print(f"[server] sparsevol-coarse 1000-block body: {t_coarse:.1f} ms (target < 50)")
        blocks = ",".join(f"{x},{y},{z}" for z in range(10) for y in range(10)
                          for x in range(10))
        for q in ("", "&supervoxels=true"):
            u = f"{sb}/specificblocks?blocks={blocks}&compression=blocks{q}"
            t_sb = _median_ms([lambda u=u: c.get(u)] * 9) / 1e3
            print(f"[server] specificblocks 1000 blocks{q or ' (mapped)'}: "
                  f"{1000 / t_sb:.0f} blocks/s (target >= 20000)")
        c.close()
    finally:
        srv.stop()


def run_startup(tmp: Path, n: int) -> None:
    """Build a mapping of ``n`` supervoxels, restart the server, time the first answers."""
    srv = Server(tmp / "start", tmp / "start.log")
    srv.start()
    chunk = 1_000_000
    try:
        c = httpx.Client(base_url=srv.url, timeout=600)
        root = c.post("/api/repos", json={}).json()["root"]
        c.post(f"/api/repo/{root}/instance", json={"typename": "labelmap", "dataname": "seg"})
        base = f"/api/node/{root}/seg"
        # one block of the first 512 supervoxels so `label` has something to map
        blk = (BIG + np.arange(64**3) // 512).astype(np.uint64).reshape(64, 64, 64)
        assert c.post(f"{base}/raw/0_1_2/64_64_64/0_0_0", content=blk.tobytes()).status_code \
            == 200
        t0 = time.perf_counter()
        for s0 in range(0, n, chunk):
            svs = np.arange(s0, min(n, s0 + chunk), dtype=np.uint64)
            ops = protos.MappingOps()
            bodies = svs // 1000  # 1,000 supervoxels per body
            for b in np.unique(bodies).tolist():
                ops.mappings.add(mapped=BIG2 + b,
                                 original=(BIG + svs[bodies == b]).tolist())
            r = c.post(f"{base}/mappings", content=ops.SerializeToString())
            assert r.status_code == 200, r.text
        t_build = time.perf_counter() - t0
        print(f"[startup] POST mappings of {n} supervoxels: {t_build:.0f} s "
              f"({n / t_build:.0f} entries/s); build server VmHWM "
              f"{srv.memory()['VmHWM'] / 1024:.0f} MiB")
        c.close()
        srv.stop()
        probe_svs = [BIG + 5, BIG + n - 1, BIG + n // 2]
        want = [BIG2 + s // 1000 for s in (5, n - 1, n // 2)]
        t_spawn = srv.spawn()
        t_map = srv.wait(lambda: httpx.request(
            "GET", f"{srv.url}{base}/mapping?nolookup=true", json=probe_svs,
            timeout=5).json() == want)
        t_lab = srv.wait(lambda: httpx.get(f"{srv.url}{base}/label/1_0_0",
                                           timeout=5).json() == {"Label": BIG2})
        mem = srv.memory()
        print(f"[startup] restart with {n} mapped supervoxels: first mapping answer "
              f"{t_map - t_spawn:.2f} s, first label answer {t_lab - t_spawn:.2f} s after "
              f"spawn; VmRSS {mem['VmRSS'] / 1024:.0f} MiB VmHWM {mem['VmHWM'] / 1024:.0f} MiB "
              f"(target < 10 s, < 1 GiB)")
        rng = np.random.default_rng(1)
        q = (BIG + rng.integers(0, n, 100_000)).tolist()
        t0 = time.perf_counter()
        got = httpx.request("GET", f"{srv.url}{base}/mapping?nolookup=true", json=q,
                            timeout=600).json()
        t_q = time.perf_counter() - t0
        assert got == [BIG2 + (s - BIG) // 1000 for s in q]
        mem = srv.memory()
        print(f"[startup] then GET mapping of 100,000 random supervoxels: {t_q:.2f} s; "
              f"VmRSS {mem['VmRSS'] / 1024:.0f} MiB VmHWM {mem['VmHWM'] / 1024:.0f} MiB")
    finally:
        srv.stop()


def _post_peak(tmp: Path, name: str, toml: str, bodies: list[bytes],
               shape: tuple[int, int, int], src: Path | None) -> list[tuple[int, int]]:
    """Per POST raw of each of ``bodies`` (one after the other, same box, on a fresh
    server): peak VmRSS above the pre-request level (sampled every 5 ms, KiB) and the
    rise of VmHWM."""
    srv = Server(tmp / name, tmp / f"{name}.log", toml, src)
    srv.start()
    try:
        c = httpx.Client(base_url=srv.url, timeout=3600)
        root = c.post("/api/repos", json={}).json()["root"]
        r = c.post(f"/api/repo/{root}/instance", json={"typename": "labelmap",
                                                      "dataname": "seg"})
        assert r.status_code == 200, r.text
        base = f"/api/node/{root}/seg"
        warm = np.arange(64**3, dtype=np.uint64).tobytes()  # load every code path once
        assert c.post(f"{base}/raw/0_1_2/64_64_64/0_0_-64", content=warm).status_code == 200
        out = []
        for body in bodies:
            time.sleep(1)
            m0 = srv.memory()
            peak = [m0["VmRSS"]]
            done = threading.Event()

            def sample(peak: list[int] = peak, done: threading.Event = done) -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], srv.memory()["VmRSS"])
                    time.sleep(0.005)

            th = threading.Thread(target=sample)
            th.start()
            nz, ny, nx = shape
            r = c.post(f"{base}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0", content=body)
            done.set()
            th.join()
            assert r.status_code == 200, r.text
            m1 = srv.memory()
            out.append((peak[0] - m0["VmRSS"], m1["VmHWM"] - m0["VmHWM"]))
        return out
    finally:
        srv.stop()


def run_post_memory(tmp: Path, mib: int, src: Path | None) -> None:
    """Peak server RSS of one large POST raw, batched vs one batch (see the docstring)."""
    nz = max(1, mib // 2)  # 512 x 512 x nz uint64 = 2 MiB per z slice
    shape = (nz - nz % 64 or 64, 512, 512)
    z, y, x = np.ogrid[:shape[0], :512, :512]
    bodies = [(BIG + (z // 20) * 10_000 + (y // 24) * 100 + (x // 28)).astype(np.uint64)
              .tobytes(),  # cells of 20 x 24 x 28 voxels, then a shifted grid over them
              (BIG2 + ((z + 7) // 20) * 10_000 + ((y + 5) // 24) * 100 + ((x + 3) // 28))
              .astype(np.uint64).tobytes()]
    pay = len(bodies[0]) / 1024  # KiB
    print(f"[post-memory] POST raw of {len(bodies[0]) >> 20} MiB ({shape[2]}x{shape[1]}x"
          f"{shape[0]} uint64, 64³ blocks), server from {src or 'this checkout'}")
    for name, toml in (("batched", ""), ("one batch", "writeBatchBytes = 1099511627776")):
        res = _post_peak(tmp, name.replace(" ", "_"), toml, bodies, shape, src)
        for what, (rss, hwm) in zip(("new data ", "overwrite"), res, strict=True):
            print(f"[post-memory] {name:9s} {what}: peak RSS +{rss / 1024:.0f} MiB = "
                  f"{rss / pay:.2f}x payload (VmHWM +{hwm / 1024:.0f} MiB)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codec", action="store_true", help="block codec vs lz4 ratios")
    ap.add_argument("--ingest", action="store_true",
                    help="POST raw ingest vs tensorstore compressed_segmentation")
    ap.add_argument("--inproc", action="store_true", help="in-process figures")
    ap.add_argument("--server", action="store_true", help="figures through a real server")
    ap.add_argument("--startup", action="store_true", help="startup with a large mapping")
    ap.add_argument("--post-memory", action="store_true",
                    help="peak RSS of a large POST raw, batched vs one batch")
    ap.add_argument("--post-mib", type=int, default=512)
    ap.add_argument("--server-src", help="checkout to run servers from (default: this one)")
    ap.add_argument("--mapping-size", type=int, default=10_000_000)
    ap.add_argument("--tmp", help="work folder (default: a temporary folder)")
    a = ap.parse_args(argv)
    every = not (a.codec or a.ingest or a.inproc or a.server or a.startup or a.post_memory)
    if a.codec or every:
        run_codec()
    if a.ingest or every:
        run_ingest()
    if a.inproc or every:
        run_inprocess()
    with tempfile.TemporaryDirectory(dir=a.tmp) as d:
        if a.server or every:
            run_server(Path(d))
        if a.startup or every:
            run_startup(Path(d), a.mapping_size)
        if a.post_memory:
            run_post_memory(Path(d), a.post_mib,
                            Path(a.server_src).resolve() if a.server_src else None)


if __name__ == "__main__":
    main()
