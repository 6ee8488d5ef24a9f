"""Benchmark: the cache tier over object stores, and ``--workers`` over PostgreSQL.

    python benchmarks/scale_out.py [--seconds 5] [--conns 16] [--reads 20]

Starts, on loopback, a throwaway PostgreSQL (Debian's package, as the ``postgres`` user),
moto's S3 server and the GCS emulator (:mod:`storage.testing`), then in one run prints:

1. **Committed-version block reads through the cache vs uncached**, for S3 and for GCS:
   two ``dvidpy serve`` processes over one store (metadata in PostgreSQL, uint8blk data in
   the bucket), one with ``cache_mb = 256``, one without. A 128³ uint8blk volume (64
   blocks of 32³, random so it does not compress) is written and the version committed;
   each server then answers ``--reads`` GETs of the whole volume (the cached one after one
   warm-up read). Ratio = uncached seconds / cached seconds (target ≥ 5x).
2. **1 KiB keyvalue GETs with ``--workers 2`` vs one worker** on the same PostgreSQL store:
   ``--conns`` keep-alive connections of a small asyncio load generator (raw HTTP/1.1, so
   the client costs little CPU) GET random keys of 1000 1 KiB values for ``--seconds``,
   ``--rounds`` times alternating. Ratio = median requests/s with 2 workers / with 1
   (target ≥ 1.6x). The machine's cores are
   shared by the load generator, the workers and PostgreSQL: on 2 cores that is the
   ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage.testing import (  # noqa: E402
    MOTO_CREDENTIALS,
    gcs_emulator,
    moto_server,
    postgres_server,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import dvidpy_server, free_port, http  # noqa: E402


def serve(cfg: Path, *extra: str, port: int = 0) -> contextlib.AbstractContextManager[str]:
    """``dvidpy serve --config CFG EXTRA`` (log next to ``cfg``); yields its URL."""
    return dvidpy_server(["--config", str(cfg), *extra], cfg.with_suffix(".log"), port)


def toml(tmp: Path, name: str, dsn: str, table: str, obj: str, cache: bool) -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(f"""
[store.pg]
engine = "postgres"
dsn = "{dsn}"
table = "{table}"
[store.obj]
{obj}
shared = true
{"cache_mb = 256" if cache else ""}
[backend.default]
store = "obj"
[backend.metadata]
store = "pg"
""")
    return p


def cache_ratio(tmp: Path, dsn: str, kind: str, obj: str, reads: int) -> float:
    table = f"bench_{kind}_{uuid.uuid4().hex[:8]}"
    cached, plain = (toml(tmp, f"{kind}-{c}", dsn, table, obj, c) for c in (True, False))
    with serve(plain) as u_plain, serve(cached) as u_cached:
        import json

        root = json.loads(http(u_plain + "/api/repos", "POST", b"{}"))["root"]
        http(f"{u_plain}/api/repo/{root}/instance", "POST",
             b'{"typename": "uint8blk", "dataname": "gray"}')
        vol = np.random.default_rng(1).integers(0, 256, (128, 128, 128), dtype=np.uint8)
        geo = "0_1_2/128_128_128/0_0_0"
        http(f"{u_plain}/api/node/{root}/gray/raw/{geo}", "POST", vol.tobytes())
        http(f"{u_plain}/api/node/{root}/commit", "POST", b'{"note": "bench"}')
        url = f"/api/node/{root}/gray/raw/{geo}"
        assert http(u_cached + url) == vol.tobytes()  # warm-up: fills the LRU
        times = {}
        for name, base in (("uncached", u_plain), ("cached", u_cached)):
            t0 = time.perf_counter()
            for _ in range(reads):
                got = http(base + url)
            times[name] = time.perf_counter() - t0
            assert got == vol.tobytes()
        load = json.loads(http(u_cached + "/api/load"))
    ratio = times["uncached"] / times["cached"]
    mb = reads * vol.nbytes / 1e6
    print(f"  {kind}: uncached {mb / times['uncached']:7.1f} MB/s, cached "
          f"{mb / times['cached']:7.1f} MB/s (cache hits {load['cache hits']}, misses "
          f"{load['cache misses']}) -> ratio {ratio:.1f}x (target >= 5x)")
    return ratio


async def load_gen(port: int, paths: list[bytes], conns: int, seconds: float) -> int:
    """Requests completed in ``seconds`` by ``conns`` keep-alive connections."""
    done = 0
    stop = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal done
        r, w = await asyncio.open_connection("127.0.0.1", port)
        rnd = random.Random(id(r))
        while time.perf_counter() < stop:
            w.write(b"GET " + rnd.choice(paths) + b" HTTP/1.1\r\nHost: b\r\n\r\n")
            head = await r.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            i = head.lower().index(b"content-length:")
            n = int(head[i + 15:head.index(b"\r\n", i)])
            await r.readexactly(n)
            done += 1
        w.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    return done


def workers_ratio(tmp: Path, dsn: str, conns: int, seconds: float, rounds: int) -> float:
    import json

    p = tmp / "kv.toml"
    p.write_text(f'[store.pg]\nengine = "postgres"\ndsn = "{dsn}"\n'
                 f'table = "bench_kv_{uuid.uuid4().hex[:8]}"\n')
    with serve(p) as u:
        root = json.loads(http(u + "/api/repos", "POST", b"{}"))["root"]
        http(f"{u}/api/repo/{root}/instance", "POST",
             b'{"typename": "keyvalue", "dataname": "kv"}')
        for i in range(1000):
            http(f"{u}/api/node/{root}/kv/key/k{i}", "POST", os.urandom(1024))
    paths = [f"/api/node/{root}/kv/key/k{i}".encode() for i in range(1000)]
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):  # alternate, so background load hits both alike
        for n in (1, 2):
            port = free_port()
            with serve(p, "--workers", str(n), port=port):
                asyncio.run(load_gen(port, paths, conns, 1.0))  # warm-up (every worker)
                rates[n].append(asyncio.run(load_gen(port, paths, conns, seconds)) / seconds)
    one, two = (float(np.median(rates[n])) for n in (1, 2))
    ratio = two / one
    print(f"  1 worker {one:7.0f} req/s, 2 workers {two:7.0f} req/s (medians of "
          f"{rounds} rounds: {[round(r) for r in rates[1]]} / {[round(r) for r in rates[2]]})"
          f" -> ratio {ratio:.2f}x (target >= 1.6x; {os.cpu_count()} cores shared with the "
          f"load generator and PostgreSQL)")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--reads", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.update(MOTO_CREDENTIALS)
    with tempfile.TemporaryDirectory() as t, postgres_server() as dsn, \
            moto_server() as s3, gcs_emulator() as gcs:
        tmp = Path(t)
        print("committed-version block reads (128^3 uint8blk, 64 blocks) through the cache "
              "vs uncached:")
        cache_ratio(tmp, dsn, "s3", f'engine = "s3"\nbucket = "bench-{uuid.uuid4().hex[:8]}"'
                    f'\nendpoint = "{s3}"', args.reads)
        cache_ratio(tmp, dsn, "gcs", f'engine = "gcs"\nbucket = "bench-{uuid.uuid4().hex[:8]}'
                    f'"\nendpoint = "{gcs}"', args.reads)
        print("1 KiB keyvalue GETs on one PostgreSQL store, --workers 2 vs 1:")
        workers_ratio(tmp, dsn, args.conns, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
