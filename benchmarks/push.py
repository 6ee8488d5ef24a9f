"""Benchmark: push a repo of ~1 GiB of blocks between two local servers.

    python benchmarks/push.py [--mib 1024] [--kind blocks|keyvalue] [--value-kib 1024]
                              [--dst-engine leveldb]

Starts two ``dvidpy serve`` processes on loopback (source on LevelDB, destination on
``--dst-engine``), fills the source with random (incompressible) data — by default a
uint8blk instance of 32³ blocks written as 256³ subvolumes (``--kind keyvalue``: values
of ``--value-kib``) — commits, then reports:

* ``cp -r`` of the source LevelDB folder (same run, server stopped, its files dropped from
  the page cache first, as before each push and pull): MB/s;
* a full ``POST /api/transfer/push`` job: MB/s of value bytes, and the ratio to ``cp -r``;
* the same repo pulled by a third server (data flows source -> receiver as one streamed
  response instead of posted chunks);
* a second push of the unchanged repo: bytes sent and seconds;
* a push after one new version that rewrites 1/64 of the data: bytes sent vs that share.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import ROOT, free_port, http, wait_http


def call(url: str, method: str = "GET", body: bytes | None = None) -> Any:
    """``harness.http``, the answer parsed as JSON when it is JSON."""
    data = http(url, method, body)
    try:
        return json.loads(data) if data.strip() else None
    except ValueError:
        return data


def serve(folder: Path, engine: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cfg = folder / "dvid.toml"
    cfg.write_text(f'[store.main]\nengine = "{engine}"\npath = "{folder / "db"}"\n'
                   '[backend.default]\nstore = "main"\n')
    p = subprocess.Popen([sys.executable, "-m", "dvidpy.cli", "serve", "--config", str(cfg),
                          "--port", str(port), "--quiet"], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=open(folder / "log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/api/heartbeat", p, folder / "log", timeout=30)
    return p, url


def push(src: str, uuid: str, dst: str, kind: str = "push") -> dict[str, Any]:
    """Run a push job on ``src`` (or, ``kind="pull"``, a pull job on ``src`` from ``dst``)."""
    body = json.dumps({"uuid": uuid, "dst" if kind == "push" else "src": dst}).encode()
    jid = call(f"{src}/api/transfer/{kind}", "POST", body)["id"]
    while True:
        st = call(f"{src}/api/transfer/{jid}")
        if st["state"] != "running":
            if st["state"] != "done":
                raise RuntimeError(st["error"])
            return st
        time.sleep(0.05)


SUB = 256  # edge of the subvolumes written to the uint8blk instance (16 MiB each)


def post_subvolume(url: str, uuid: str, i: int) -> None:
    """Random voxels into the ``i``-th 256³ subvolume, laid out along X then Y then Z in
    4 x 4 columns (so 64 of them make a 1024 x 1024 x 1024 cube)."""
    x, y, z = (i % 4) * SUB, (i // 4 % 4) * SUB, (i // 16) * SUB
    call(f"{url}/api/node/{uuid}/grayscale/raw/0_1_2/{SUB}_{SUB}_{SUB}/{x}_{y}_{z}", "POST",
         os.urandom(SUB ** 3))


def evict(folder: Path) -> None:
    """Drop ``folder``'s files from the page cache (fsync, then POSIX_FADV_DONTNEED; no
    root needed), so ``cp -r`` and the push both read the disk as a copy to another
    machine would, instead of a cache warm by how recently the data was written."""
    for f in folder.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="total value MiB (default 1024)")
    ap.add_argument("--value-kib", type=int, default=1024, help="value size (default 1024)")
    ap.add_argument("--dst-engine", default="leveldb", help="leveldb (default) or rocksdb")
    ap.add_argument("--kind", default="blocks", choices=("blocks", "keyvalue"),
                    help="uint8blk blocks (default) or keyvalue values")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dvidpy-push-bench-"))
    procs = []
    try:
        (tmp / "src").mkdir()
        (tmp / "dst").mkdir()
        sp, src = serve(tmp / "src", "leveldb")
        procs.append(sp)
        dp, dst = serve(tmp / "dst", args.dst_engine)
        procs.append(dp)
        root = call(src + "/api/repos", "POST", b"{}")["root"]
        t = time.perf_counter()
        if args.kind == "keyvalue":
            call(f"{src}/api/repo/{root}/instance", "POST",
                 json.dumps({"typename": "keyvalue", "dataname": "kv"}).encode())
            n = args.mib * 1024 // args.value_kib
            vsize = args.value_kib * 1024
            for i in range(n):
                call(f"{src}/api/node/{root}/kv/key/k{i:06d}", "POST", os.urandom(vsize))
            what = f"{n} x {args.value_kib} KiB values"
        else:
            call(f"{src}/api/repo/{root}/instance", "POST",
                 json.dumps({"typename": "uint8blk", "dataname": "grayscale"}).encode())
            n, vsize = max(1, args.mib // 16), SUB ** 3
            for i in range(n):
                post_subvolume(src, root, i)
            what = f"{n} subvolumes of {SUB}^3 voxels ({n * vsize // 32768} blocks of 32^3)"
        fill = time.perf_counter() - t
        call(f"{src}/api/node/{root}/commit", "POST", b"{}")
        total = n * vsize
        print(f"filled {what} = {total / 2**20:.0f} MiB in {fill:.1f} s")

        # cp -r needs a quiet folder: stop the source, copy, start it again
        sp.terminate()
        sp.wait(30)
        evict(tmp / "src" / "db")
        t = time.perf_counter()
        subprocess.run(["cp", "-r", str(tmp / "src" / "db"), str(tmp / "copy")], check=True)
        cp = time.perf_counter() - t
        sp, src = serve(tmp / "src", "leveldb")
        procs[0] = sp
        cp_rate = dir_size(tmp / "src" / "db") / cp / 1e6
        print(f"cp -r of the LevelDB folder ({dir_size(tmp / 'src' / 'db') / 1e6:.0f} MB): "
              f"{cp:.2f} s, {cp_rate:.0f} MB/s")

        evict(tmp / "src" / "db")
        t = time.perf_counter()
        st = push(src, root, dst)
        secs = time.perf_counter() - t
        rate = total / secs / 1e6
        print(f"push #1 (leveldb -> {args.dst_engine}): {st['records']} records, "
              f"{st['bytes'] / 1e6:.0f} MB on the wire, {secs:.2f} s, {rate:.0f} MB/s, "
              f"{rate / cp_rate:.2f}x cp -r")
        (tmp / "dst2").mkdir()
        p3, dst2 = serve(tmp / "dst2", args.dst_engine)
        procs.append(p3)
        evict(tmp / "src" / "db")
        t = time.perf_counter()
        stp = push(dst2, root, src, kind="pull")
        secs_p = time.perf_counter() - t
        rate_p = total / secs_p / 1e6
        print(f"pull (run by a fresh {args.dst_engine} server): {stp['records']} records, "
              f"{secs_p:.2f} s, {rate_p:.0f} MB/s, {rate_p / cp_rate:.2f}x cp -r")
        t = time.perf_counter()
        st2 = push(src, root, dst)
        secs2 = time.perf_counter() - t
        print(f"push #2 (unchanged): {st2['bytes']} bytes sent "
              f"({100 * st2['bytes'] / max(st['bytes'], 1):.4f} % of push #1), {secs2:.2f} s")
        # one new version rewriting 1/64 of the data
        child = call(f"{src}/api/node/{root}/newversion", "POST", b"{}")["child"]
        k = max(1, n // 64)
        for i in range(k):
            if args.kind == "keyvalue":
                call(f"{src}/api/node/{child}/kv/key/k{i:06d}", "POST", os.urandom(vsize))
            else:
                post_subvolume(src, child, i)
        call(f"{src}/api/node/{child}/commit", "POST", b"{}")
        t = time.perf_counter()
        st3 = push(src, root, dst)
        secs3 = time.perf_counter() - t
        print(f"push #3 (one new version rewriting {k * vsize / 2**20:.0f} MiB = "
              f"{100 * k / n:.1f} % of the data): {st3['bytes'] / 1e6:.1f} MB sent "
              f"({100 * st3['bytes'] / max(st['bytes'], 1):.2f} % of push #1), {secs3:.2f} s")
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
