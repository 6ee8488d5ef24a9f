"""Benchmark: the candidates for using every core with an embedded store (issue 13 item 1).

    python benchmarks/multicore.py [--seconds 5] [--conns 8] [--rounds 2]

Candidates, each measured in this run:

* **LMDB** (``storage/lmdbkv.py``): every worker process opens the folder itself; reads
  never wait, writes take LMDB's inter-process writer lock (``dvidpy serve --workers N``).
* **RocksDB secondary instances**: readers open the primary's folder as secondaries and
  must call ``try_catch_up_with_primary`` to see its writes; writes still go to the one
  primary process (so a write path over IPC is needed anyway).
* **One storage process feeding N HTTP processes**: a process owns the LevelDB folder and
  answers key-value calls over a Unix socket; HTTP workers use it through a small engine
  (:class:`RPCEngine`, defined here: pickled calls over ``multiprocessing.connection``,
  compare-and-swap under the storage process's lock).

(a) cost of one point read of a 1 KiB value (10,000 keys) as one worker pays it, in µs:
    LevelDB and LMDB in process; a RocksDB secondary that catches up first (needed to see
    writes of the primary); a round trip to the storage process.
(b) end to end: real servers, ``wrk`` (or a raw asyncio client) with ``--conns`` keep-alive
    connections; requests/s of 1 KiB keyvalue GETs and of ``GET raw`` 64³ uint8 blocks
    (lz4, one block per request), for LevelDB in one process, LMDB in one process, LMDB
    with 2 workers, and the storage process + 2 HTTP processes; the best of ``--rounds``.
    Also 1 KiB keyvalue POSTs/s (one key per request) for the one- and two-process forms.

The machine's cores are shared by the load generator and the servers, and with other
work (the load average is printed): read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    ROOT,
    dvidpy_server,
    free_port,
    http,
    load,
    loadgen_name,
    read_200,
    wait_http,
    wrk_rps,
)

from storage.base import GuardedWriteBatch, KeyRange, KVEngine

# ----- the storage-process candidate -----------------------------------------------------------


def storage_server(sock: str, path: str) -> None:
    """Serve the LevelDB folder ``path`` on the Unix socket ``sock`` (one thread per
    client connection) until killed."""
    from storage import open_engine

    eng = open_engine("leveldb", path)
    cas = threading.Lock()

    def serve(conn: Any) -> None:
        try:
            while True:
                op, args = conn.recv()
                if op == "get":
                    out: Any = eng.get(args)
                elif op == "get_many":
                    out = eng.get_many(args)
                elif op == "put":
                    eng.put(*args)
                    out = None
                elif op == "delete":
                    eng.delete(args)
                    out = None
                elif op == "scan":
                    rng, keys_only, reverse = args
                    out = list(eng.scan(KeyRange(*rng), keys_only=keys_only, reverse=reverse))
                elif op == "batch":
                    with eng.batch() as wb:
                        for k, v in args:
                            if v is None:
                                wb.delete(k)
                            else:
                                wb.put(k, v)
                    out = None
                elif op == "cas":
                    with cas:
                        out = eng.compare_and_swap(*args)
                elif op == "delete_range":
                    out = eng.delete_range(KeyRange(*args))
                else:
                    out = None
                conn.send(out)
        except EOFError:
            pass

    with Listener(sock, family="AF_UNIX") as ln:
        while True:
            threading.Thread(target=serve, args=(ln.accept(),), daemon=True).start()


class _RPCBatch(GuardedWriteBatch):
    def __init__(self, eng: RPCEngine) -> None:
        super().__init__()
        self._eng = eng
        self._ops: list[tuple[bytes, bytes | None]] = []

    def _put(self, key: bytes, value: bytes) -> None:
        self._ops.append((bytes(key), bytes(value)))

    def _delete(self, key: bytes) -> None:
        self._ops.append((bytes(key), None))

    def _write(self) -> None:
        self._eng._call("batch", self._ops)


class RPCEngine(KVEngine):
    """Key-value calls to :func:`storage_server` at the socket ``location`` (one connection
    per thread). ``local``: the storage process is on this machine."""

    name = "rpc"
    shareable = True
    local = True

    def __init__(self, sock: str) -> None:
        self.sock = sock
        self._tls = threading.local()

    @classmethod
    def open(cls, location: str, **options: Any) -> RPCEngine:
        return cls(location)

    def _call(self, op: str, args: Any) -> Any:
        c = getattr(self._tls, "conn", None)
        if c is None:
            c = self._tls.conn = Client(self.sock, family="AF_UNIX")
        c.send((op, args))
        return c.recv()

    def get(self, key: bytes) -> bytes | None:
        return self._call("get", bytes(key))

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return self._call("get_many", [bytes(k) for k in keys])

    def put(self, key: bytes, value: bytes) -> None:
        self._call("put", (bytes(key), bytes(value)))

    def delete(self, key: bytes) -> None:
        self._call("delete", bytes(key))

    def scan(self, rng: KeyRange, *, keys_only: bool = False,
             reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._call("scan", ((rng.start, rng.end), keys_only, reverse)))

    def batch(self) -> _RPCBatch:
        return _RPCBatch(self)

    def compare_and_swap(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        return self._call("cas", (bytes(key), expected, new))

    def delete_range(self, rng: KeyRange) -> int:
        return self._call("delete_range", (rng.start, rng.end))

    def close(self) -> None:
        c = getattr(self._tls, "conn", None)
        if c is not None:
            c.close()
            self._tls.conn = None


def http_child(argv: list[str]) -> int:
    """``dvidpy serve`` with :class:`RPCEngine` registered (an HTTP process of the
    storage-process candidate)."""
    from dvidpy.cli import main
    from storage import register_engine

    register_engine(RPCEngine)
    return main(argv)


# ----- (a) point reads ---------------------------------------------------------------------------

N_KEYS = 10_000


def _keys() -> list[bytes]:
    return [b"key-%06d" % i for i in range(N_KEYS)]


def _per_get(get: Any, n: int = 50_000) -> float:
    keys = _keys()
    for k in keys[:1000]:
        get(k)
    t0 = time.perf_counter()
    for i in range(n):
        get(keys[(i * 7919) % N_KEYS])
    return (time.perf_counter() - t0) / n * 1e6


def point_reads(tmp: Path) -> dict[str, float]:
    from storage import open_engine

    val = os.urandom(1024)
    out = {}
    for name in ("leveldb", "lmdb"):
        e = open_engine(name, str(tmp / f"a-{name}"))
        with e.batch() as wb:
            for k in _keys():
                wb.put(k, val)
        out[f"{name}, in process"] = _per_get(e.get)
        e.close()
    import rocksdict

    prim_path, sec_path = str(tmp / "a-rocks"), str(tmp / "a-rocks-sec")
    o = rocksdict.Options(raw_mode=True)
    o.create_if_missing(True)
    prim = rocksdict.Rdict(prim_path, options=o)
    for k in _keys():
        prim[k] = val
    prim.flush()
    so = rocksdict.Options(raw_mode=True)
    so.set_max_open_files(-1)
    sec = rocksdict.Rdict(prim_path, options=so,
                          access_type=rocksdict.AccessType.secondary(sec_path))
    out["rocksdb secondary, get only (stale)"] = _per_get(sec.get)

    def caught_up(k: bytes) -> bytes | None:
        sec.try_catch_up_with_primary()
        return sec.get(k)

    out["rocksdb secondary, catch up + get"] = _per_get(caught_up, 5_000)
    sec.close()
    prim.close()
    sock = str(tmp / "a.sock")
    proc = subprocess.Popen([sys.executable, __file__, "--storage-server", sock,
                             str(tmp / "a-rpc")])
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        e = RPCEngine(sock)
        with e.batch() as wb:
            for k in _keys():
                wb.put(k, val)
        out["storage process, round trip"] = _per_get(e.get, 20_000)
        e.close()
    finally:
        proc.kill()
        proc.wait()
    return out


# ----- (b) end to end ---------------------------------------------------------------------------


def _fill(url: str) -> tuple[list[str], list[str], str]:
    """A repo with 1000 1 KiB keys and a 256^3 lz4 volume; the GET paths of keys, of 64^3
    blocks, and the POST prefix."""
    root = json.loads(http(url + "/api/repos", "POST", b"{}"))["root"]
    http(f"{url}/api/repo/{root}/instance", "POST",
         b'{"typename": "keyvalue", "dataname": "kv"}')
    http(f"{url}/api/repo/{root}/instance", "POST",
         b'{"typename": "uint8blk", "dataname": "gray", "Compression": "lz4"}')
    rng = np.random.default_rng(0)
    for i in range(1000):
        http(f"{url}/api/node/{root}/kv/key/k{i}", "POST", rng.bytes(1024))
    z, y, x = np.meshgrid(*(np.arange(256),) * 3, indexing="ij", sparse=True)
    vol = np.clip(128 + 60 * np.sin(x / 9) * np.cos(y / 11) + 30 * np.cos(z / 7)
                  + rng.normal(0, 4, (256,) * 3), 0, 255).astype(np.uint8)
    http(f"{url}/api/node/{root}/gray/raw/0_1_2/256_256_256/0_0_0", "POST", vol.tobytes())
    kv = [f"/api/node/{root}/kv/key/k{i}" for i in range(1000)]
    blocks = [f"/api/node/{root}/gray/raw/0_1_2/64_64_64/{i * 64}_{j * 64}_{k * 64}"
              for k in range(4) for j in range(4) for i in range(4)]
    return kv, blocks, f"/api/node/{root}/kv/key/"


def post_rps(url: str, prefix: str, conns: int, seconds: float) -> float:
    """1 KiB keyvalue POSTs/s from ``conns`` raw keep-alive connections (new keys)."""
    import asyncio

    host, port = url.split("//")[1].split(":")
    body = os.urandom(1024)
    counts = [0] * conns

    async def one(i: int, stop: float) -> None:
        r, w = await asyncio.open_connection(host, int(port))
        k = 0
        while time.perf_counter() < stop:
            w.write(f"POST {prefix}w{i}-{k} HTTP/1.1\r\nHost: b\r\nContent-Length: "
                    f"{len(body)}\r\n\r\n".encode() + body)
            k += 1
            await read_200(r)
            counts[i] += 1
        w.close()

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, t0 + seconds) for i in range(conns)))
        return time.perf_counter() - t0

    dt = asyncio.run(run())
    return sum(counts) / dt


def end_to_end(tmp: Path, conns: int, seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}

    def measure(name: str, url: str, posts: bool = True) -> None:
        kv, blocks, prefix = _fill(url)
        wrk_rps(url, kv, conns, 1)  # warm up every worker
        r = results.setdefault(name, {"kv": 0.0, "block": 0.0, "post": 0.0})
        for _ in range(rounds):
            r["kv"] = max(r["kv"], wrk_rps(url, kv, conns, seconds))
            r["block"] = max(r["block"], wrk_rps(url, blocks, conns, seconds))
            if posts:
                r["post"] = max(r["post"], post_rps(url, prefix, conns, seconds))
        print(f"  {name:42s} kv GET {r['kv']:7.0f}/s  block GET {r['block']:6.0f}/s  "
              f"kv POST {r['post']:6.0f}/s  ({load()})", flush=True)

    for name, args in (("leveldb, 1 process", ["--engine", "leveldb"]),
                       ("lmdb, 1 process", ["--engine", "lmdb"]),
                       ("lmdb, --workers 2", ["--engine", "lmdb", "--workers", "2"])):
        d = tmp / name.replace(" ", "").replace(",", "-")
        with dvidpy_server(["--data", str(d), *args], tmp / "server.log") as url:
            measure(name, url)
    # storage process + 2 HTTP processes sharing a port
    sock = str(tmp / "b.sock")
    sp = subprocess.Popen([sys.executable, __file__, "--storage-server", sock,
                           str(tmp / "b-rpc")])
    port = free_port()
    cfg = tmp / "rpc.toml"
    cfg.write_text(f'[store.main]\nengine = "rpc"\npath = "{sock}"\nshared = true\n')
    kids: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        log = open(tmp / "rpc.log", "ab")  # noqa: SIM115
        kids += [subprocess.Popen(
            [sys.executable, __file__, "--http-child", "serve", "--config", str(cfg),
             "--host", "127.0.0.1", "--port", str(port), "--quiet", "--reuse-port"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT) for _ in range(2)]
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/api/heartbeat", kids[0], tmp / "rpc.log")
        time.sleep(1)
        measure("storage process + 2 HTTP processes", url)
    finally:
        for p in [*kids, sp]:
            p.terminate()
        for p in [*kids, sp]:
            p.wait(30)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--storage-server":
        storage_server(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--http-child":
        sys.exit(http_child(sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dvidpy-multicore-"))
    try:
        print(f"(a) one point read of a 1 KiB value, µs ({load()}):", flush=True)
        for name, us in point_reads(tmp).items():
            print(f"  {name:42s} {us:7.1f} µs", flush=True)
        print(f"(b) end to end, {loadgen_name()}, {args.conns} connections, best of "
              f"{args.rounds} x {args.seconds:.0f} s, {os.cpu_count()} cores:", flush=True)
        r = end_to_end(tmp, args.conns, args.seconds, args.rounds)
        base = r["leveldb, 1 process"]
        print("  ratios to leveldb, 1 process (kv GET / block GET / kv POST):")
        for name, v in r.items():
            print(f"  {name:42s} {v['kv'] / base['kv']:5.2f}x / "
                  f"{v['block'] / base['block']:5.2f}x / {v['post'] / base['post']:5.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
