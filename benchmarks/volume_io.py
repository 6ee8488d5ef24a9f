"""uint8blk volume I/O benchmark against a real ``dvidpy serve`` process on LevelDB.

Run:  python benchmarks/volume_io.py [--blocksize 64] [--seconds 5]

Figures (clients are curl or a raw asyncio socket client, never the bottleneck):

(a) ``GET raw/0_1_2`` of 256^3 uint8 (16 MiB) from an LZ4 instance, in MB/s and as a ratio
    to the same-run HTTP ceiling: ``GET key/...`` of a prebuilt 16 MiB keyvalue value.
(b) ``POST raw/0_1_2`` of 256^3 block-aligned into the LZ4 instance, MB/s.
(c) ``subvolblocks`` one 64^3 JPEG block per request (neuroglancer's pattern), 8 concurrent
    keep-alive connections, requests/s.
(d) peak server RSS (sampled VmRSS, and VmHWM) during a 1 GiB streamed ``GET raw`` (on a
    freshly restarted server over the same data).
(e) peak server RSS above its baseline during a 512 MiB ``POST raw`` (1024x1024x512,
    block-aligned, the volume of (a) tiled), as a multiple of the payload (the body buffer
    alone is 1x), on a freshly restarted server; and the MB/s of that write.
(f) server RSS after a rejected 2 GiB body (``POST raw`` of a 1 GiB box with a 2 GiB body:
    read in full, then a 400), sent once with an honest ``Content-Length`` and once
    chunked, compared with the RSS before it (same restarted server as (e)).

``--memory-only`` runs (e) and (f) only. Not a test: prints numbers, asserts only that
responses have the expected size and status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from harness import start_server

ROOT = Path(__file__).resolve().parents[1]
N = 256


def synthetic_volume() -> np.ndarray:
    """256^3 uint8: smooth waves plus noise (LZ4 compresses it about as badly as EM)."""
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(*(np.arange(N),) * 3, indexing="ij", sparse=True)
    return np.clip(128 + 60 * np.sin(x / 9) * np.cos(y / 11) + 30 * np.cos(z / 7)
                   + rng.normal(0, 4, (N, N, N)), 0, 255).astype(np.uint8)


def curl_time(args: list[str]) -> float:
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                          *args], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0])


class RssSampler:
    """Samples a process's VmRSS every 5 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = proc_status(pid, "VmRSS")
        self._done = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._th.join()


def settled_rss(pid: int, seconds: float = 1.5) -> int:
    """VmRSS after the server has been idle ``seconds`` (freed memory given back)."""
    time.sleep(seconds)
    return proc_status(pid, "VmRSS")


def memory_figures(tmp: Path, vol: np.ndarray) -> tuple[str, str]:
    """(e) and (f) on a fresh server and instance (see the module docstring)."""
    proc, url = start_server(tmp / "memdb")
    try:
        c = httpx.Client(base_url=url, timeout=600)
        uuid = c.post("/api/repos", json={}).json()["root"]
        c.post(f"/api/repo/{uuid}/instance", json={
            "typename": "uint8blk", "dataname": "big", "BlockSize": "64,64,64",
            "Compression": "lz4"}).raise_for_status()
        base = f"{url}/api/node/{uuid}/big"
        nx, ny, nz = 1024, 1024, 512
        big = tmp / "post512.raw"
        with big.open("wb") as f:  # vol (256^3) tiled 4 x 4 x 2
            for _ in range(nz // N):
                tile = np.tile(vol, (1, ny // N, nx // N))
                f.write(tile.tobytes())
        payload = nx * ny * nz
        assert big.stat().st_size == payload
        # warm up: imports, thread pools, the engine's first memtable
        warm = vol[:64, :64, :64].tobytes()
        c.post(f"{base}/raw/0_1_2/64_64_64/-4096_0_0", content=warm).raise_for_status()
        pid = proc.pid
        base_rss = settled_rss(pid)
        with RssSampler(pid) as smp:
            t = curl_time(["-X", "POST", "-T", str(big), "-H",
                           "Content-Type: application/octet-stream",
                           f"{base}/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0"])
        got = c.get(f"{base}/raw/0_1_2/64_64_64/{nx - 64}_{ny - 64}_{nz - 64}").content
        want = np.fromfile(big, np.uint8).reshape(nz, ny, nx)[-64:, -64:, -64:]
        assert got == want.tobytes(), "POST raw stored wrong voxels"
        big.unlink()
        e = (f"(e) POST raw 512 MiB         : peak server RSS {smp.peak - base_rss >> 20} MiB "
             f"above baseline {base_rss >> 20} MiB = {(smp.peak - base_rss) / payload:.2f}x "
             f"payload, {payload / 1e6 / t:.0f} MB/s  [target <= 1.5x]")

        # (f) 2 GiB bodies for a 1 GiB box: read whole, then refused
        huge = tmp / "body2g.raw"
        with huge.open("wb") as f:
            f.truncate(2 << 30)
        url1g = f"{base}/raw/0_1_2/1024_1024_1024/0_0_0"
        rows = []
        for how, extra in (("Content-Length", []), ("chunked", ["-H",
                                                                "Transfer-Encoding: chunked"])):
            before = settled_rss(pid)
            with RssSampler(pid) as smp:
                out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                      "-X", "POST", "-T", str(huge), *extra, url1g],
                                     capture_output=True, text=True, check=True)
            assert out.stdout == "400", out.stdout
            after = settled_rss(pid)
            rows.append(f"{how}: before {before >> 20} MiB, peak {smp.peak >> 20} MiB, after "
                        f"{after >> 20} MiB ({(after - before) / 2**20:+.0f} MiB)")
        huge.unlink()
        f_line = ("(f) rejected 2 GiB body       : " + "; ".join(rows)
                  + "  [target: after within 100 MiB of before]")
        return e, f_line
    finally:
        proc.terminate()
        proc.wait(10)


def best_of(n: int, fn) -> float:
    return min(fn() for _ in range(n))


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


async def _worker(host: str, port: int, paths: list[str], stop: float, counts: list[int],
                  i: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    k = 0
    try:
        while time.perf_counter() < stop:
            p = paths[(k * 8 + i) % len(paths)]
            k += 1
            writer.write(f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            body = await reader.readexactly(n)
            assert len(body) > 16
            counts[i] += 1
    finally:
        writer.close()


def raw_client_rps(url: str, paths: list[str], seconds: float, conns: int = 8) -> float:
    host, port = url.split("//")[1].split(":")
    counts = [0] * conns

    async def run() -> float:
        t0 = time.perf_counter()
        stop = t0 + seconds
        await asyncio.gather(*(_worker(host, int(port), paths, stop, counts, i)
                               for i in range(conns)))
        return time.perf_counter() - t0

    dt = asyncio.run(run())
    return sum(counts) / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocksize", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--memory-only", action="store_true", help="run (e) and (f) only")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dvidpy-bench-"))
    if args.memory_only:
        try:
            for line in memory_figures(tmp, synthetic_volume()):
                print(line)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return 0
    proc, url = start_server(tmp / "db")
    try:
        c = httpx.Client(base_url=url, timeout=600)
        uuid = c.post("/api/repos", json={}).json()["root"]
        bs = args.blocksize
        for name, comp in (("kv", None), ("gray", "lz4"), ("gjpeg", "jpeg")):
            body = {"typename": "keyvalue" if comp is None else "uint8blk", "dataname": name}
            if comp:
                body.update(Compression=comp, BlockSize=f"{bs},{bs},{bs}")
            r = c.post(f"/api/repo/{uuid}/instance", json=body)
            r.raise_for_status()
        vol = synthetic_volume()
        f = tmp / "vol.raw"
        f.write_bytes(vol.tobytes())
        mb = vol.nbytes / 1e6
        base = f"{url}/api/node/{uuid}"
        c.post(f"/api/node/{uuid}/kv/key/big", content=vol.tobytes()).raise_for_status()
        c.post(f"/api/node/{uuid}/gjpeg/raw/0_1_2/{N}_{N}_{N}/0_0_0",
               content=vol.tobytes()).raise_for_status()

        # (b) ingest: each POST writes a new 256^3 region (bulk ingest), the first at 0,0,0
        post_url = f"{base}/gray/raw/0_1_2/{N}_{N}_{N}/0_0_0"
        t_post = [curl_time(["-X", "POST", "--data-binary", f"@{f}",
                             "-H", "Content-Type: application/octet-stream",
                             f"{base}/gray/raw/0_1_2/{N}_{N}_{N}/{i * N}_0_0"])
                  for i in range(args.repeat)]
        # (a) GET vs keyvalue ceiling
        t_kv = best_of(args.repeat, lambda: curl_time([f"{base}/kv/key/big"]))
        t_get = best_of(args.repeat, lambda: curl_time([post_url]))
        got = httpx.get(post_url, timeout=600).content
        assert got == vol.tobytes(), "GET raw returned wrong voxels"

        # (c) neuroglancer single-block JPEG requests
        nb = N // bs
        paths = [f"/api/node/{uuid}/gjpeg/subvolblocks/{bs}_{bs}_{bs}/{i * bs}_{j * bs}_{k * bs}"
                 for k in range(nb) for j in range(nb) for i in range(nb)]
        raw_client_rps(url, paths, 1.0)  # warm up
        rps = raw_client_rps(url, paths, args.seconds)

        # (d) 1 GiB streamed GET: peak RSS, on a restarted server (same LevelDB data) so
        # memory glibc keeps from the 16 MiB POST bodies above does not count against it.
        proc.terminate()
        proc.wait(10)
        proc, url = start_server(tmp / "db")
        base = f"{url}/api/node/{uuid}"
        pid = proc.pid
        rss_before = proc_status(pid, "VmRSS")
        peak = [rss_before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], proc_status(pid, "VmRSS"))
                time.sleep(0.01)

        th = threading.Thread(target=sample)
        th.start()
        t_big = curl_time([f"{base}/gray/raw/0_1_2/1024_1024_1024/-384_-384_-384"])
        done.set()
        th.join()
        hwm = proc_status(pid, "VmHWM")
        proc.terminate()
        proc.wait(10)
        mem_e, mem_f = memory_figures(tmp, vol)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    kv_rate = mb / t_kv
    get_rate = mb / t_get
    post_rate = mb / statistics.median(t_post)
    print(f"blocksize {bs}^3, volume {N}^3 uint8 ({vol.nbytes >> 20} MiB), LevelDB, "
          f"{os.cpu_count()} CPUs, best of {args.repeat}")
    print(f"(a) GET raw/0_1_2 lz4        : {get_rate:8.1f} MB/s  = {get_rate / kv_rate:.2f}x "
          f"ceiling (keyvalue GET of the same 16 MiB: {kv_rate:.1f} MB/s)  [target >= 0.5x]")
    print(f"(b) POST raw/0_1_2 aligned   : {post_rate:8.1f} MB/s (median; best "
          f"{mb / min(t_post):.1f})  = {post_rate / kv_rate:.2f}x ceiling  [target >= 300 MB/s]")
    print(f"(c) subvolblocks 1x{bs}^3 JPEG: {rps:8.0f} req/s with 8 keep-alive connections  "
          f"[target >= 1000]")
    print(f"(d) 1 GiB streamed GET        : {1073.741824 / t_big:8.1f} MB/s; server RSS "
          f"before {rss_before >> 20} MiB, sampled peak {peak[0] >> 20} MiB, VmHWM "
          f"{hwm >> 20} MiB  [target < 300 MiB]")
    print(mem_e)
    print(mem_f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
