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

Not a test: prints numbers, asserts only that responses have the expected size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N = 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvidpy.cli", "serve", "--data", str(data), "--port", str(port),
         "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/api/heartbeat", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def curl_time(args: list[str]) -> float:
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
                          *args], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0])


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
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dvidpy-bench-"))
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
        rng = np.random.default_rng(0)
        z, y, x = np.meshgrid(*(np.arange(N),) * 3, indexing="ij", sparse=True)
        vol = np.clip(128 + 60 * np.sin(x / 9) * np.cos(y / 11) + 30 * np.cos(z / 7)
                      + rng.normal(0, 4, (N, N, N)), 0, 255).astype(np.uint8)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
