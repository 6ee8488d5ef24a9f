"""The compiled imageblk kernels in process: the block reader (a 256³ uint8 answer from 64³
LZ4 blocks) and the block encoder (a 512³ uint8 write framed as 64³ LZ4 blocks).

Run:  python benchmarks/imageblk_kernels.py [--repeat 40]

Reads: for a box aligned to the blocks (64 blocks) and one offset by 32 voxels on each axis (125
blocks), each for noise (LZ4 keeps it as one run of literals: the kernel copies from the
value itself) and for data with long runs (LZ4 finds matches: the kernel decodes each block
into a scratch block first), prints the best and median milliseconds of
:func:`datatypes.common.blockread.decode_into` over 2 threads, as a ratio to a plain copy of
the answer's bytes (``np.copyto`` of 16 MiB, the least any reader must do) and to the numpy
reference path, all measured in this run.

Writes: the 512 blocks of a 512³ volume (noise, and data with long runs) framed by
:func:`datatypes.common.blockencode.encode_blocks` over a pool of 2 threads, against the numpy
reference (a gather and :func:`dvidpy.codec.serialize` per block, what the server did
before, one thread) and against python-lz4 compressing the same 128 MiB as 64 contiguous
2 MiB pieces on one thread (LZ4 alone, no gather and no framing).

Not a test: asserts only that every path wrote the same voxels.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import load
from datatypes.common import blockencode as be
from datatypes.common import blockread as br
from datatypes.common.geometry import block_range, blocks_between
from dvidpy.codec import deserialize, lz4_compress, serialize

M, B = 256, 64


def times(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best and median seconds of ``repeat`` calls."""
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), statistics.median(ts)


def volume(kind: str, rng: np.random.Generator, n: int = M + B) -> np.ndarray:
    if kind == "noise":
        return rng.integers(0, 256, (n, n, n), dtype=np.uint8)
    vol = rng.integers(0, 256, (n, n, n), dtype=np.uint8)
    vol[rng.random((n, n, n)) < 0.5] = 7  # stretches LZ4 finds matches in
    return vol


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    if not (br.HAVE_EXTENSION and be.HAVE_EXTENSION):
        sys.exit("the compiled kernels are not built (pip install -e . with liblz4-dev)")
    rng = np.random.default_rng(3)
    src = rng.integers(0, 256, M ** 3, dtype=np.uint8)
    dst = np.empty_like(src)
    print(f"blockread: 256³ uint8 from 64³ LZ4 blocks, 2 threads ({load()})")
    for kind in ("noise", "runs"):
        vol = volume(kind, rng)

        def decode(v: object) -> np.ndarray:
            return np.frombuffer(deserialize(v), np.uint8).reshape(B, B, B)  # type: ignore

        for name, off in (("aligned", 0), ("offset 32", 32)):
            o, s = (off,) * 3, (M,) * 3
            lo, hi = block_range(o, s, (B,) * 3)
            coords = blocks_between(lo, hi)
            values = [serialize(np.ascontiguousarray(
                vol[z * B:(z + 1) * B, y * B:(y + 1) * B, x * B:(x + 1) * B]).reshape(-1), "lz4")
                for x, y, z in coords.tolist()]
            places = br.block_places(o, s, (B,) * 3, coords)
            raw = np.empty(M ** 3 + 64, np.uint8)
            at = -raw.ctypes.data % 64
            out = raw[at:at + M ** 3].reshape(M, M, M)
            ref = np.empty((M, M, M), np.uint8)
            group = int(hi[0] - lo[0] + 1)
            k = times(lambda g=group, v=values, p=places, o=out: br.decode_into(
                o, v, p, (B,) * 3, 0, decode, threads=2, group=g), args.repeat)
            c = times(lambda: np.copyto(dst, src), args.repeat)
            r = times(lambda v=values, p=places, o=ref: br.decode_into_numpy(
                o, v, p, (B,) * 3, 0, decode), max(3, args.repeat // 8))
            assert np.array_equal(out, ref) and np.array_equal(
                out, vol[off:off + M, off:off + M, off:off + M]), "paths disagree"
            print(f"  {kind:5s} {name:9s} ({len(values):3d} blocks): kernel best {k[0] * 1e3:5.2f}"
                  f" median {k[1] * 1e3:5.2f} ms | copy of 16 MiB {c[0] * 1e3:5.2f} ms -> "
                  f"{k[0] / c[0]:.2f}x a copy | numpy path {r[0] * 1e3:6.2f} ms -> "
                  f"{r[0] / k[0]:.1f}x faster", flush=True)

    encode(rng, args.repeat)


def encode(rng: np.random.Generator, repeat: int) -> None:
    n = 512
    print(f"blockencode: 512³ uint8 into 64³ LZ4 blocks ({load()})")
    origins = np.array([[z, y, x] for z in range(0, n, B) for y in range(0, n, B)
                        for x in range(0, n, B)], dtype=np.int64)
    for kind in ("noise", "runs"):
        vol = volume(kind, rng, n)
        with ThreadPoolExecutor(2) as pool:
            k = times(lambda v=vol, p=pool: be.encode_blocks(v, origins, (B,) * 3, "lz4", p),
                      max(3, repeat // 8))
        r = times(lambda v=vol: be.encode_blocks_numpy(v, origins, (B,) * 3, "lz4"), 3)
        flat = vol.reshape(64, -1)
        z = times(lambda f=flat: [lz4_compress(row) for row in f], 3)
        got = be.encode_blocks(vol, origins, (B,) * 3, "lz4")
        assert got is not None and all(deserialize(a) == deserialize(b) for a, b in zip(
            got, be.encode_blocks_numpy(vol, origins, (B,) * 3, "lz4"), strict=True))
        print(f"  {kind:5s}: kernel best {k[0] * 1e3:6.1f} ms ({vol.nbytes / k[0] / 1e6:5.0f} "
              f"MB/s) | numpy path {r[0] * 1e3:6.1f} ms -> {r[0] / k[0]:.1f}x faster | "
              f"LZ4 alone, one thread {z[0] * 1e3:6.1f} ms -> {z[0] / k[0]:.2f}x", flush=True)


if __name__ == "__main__":
    main()
