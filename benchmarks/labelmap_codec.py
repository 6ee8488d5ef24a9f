"""Throughput of the labelmap block codecs on realistic 64³ label blocks.

Run ``python benchmarks/labelmap_codec.py`` (or ``python -m benchmarks.labelmap_codec``).
For each label count it builds a Voronoi-like label field (smooth convex regions with
random 64-bit ids, some above 2**32) and reports MB/s of *uncompressed uint64 voxel data*
(2 MiB per 64³ block) for:

* DVID compressed-label Block encode / decode (:mod:`datatypes.labelmap.block_codec`),
* neuroglancer compressed_segmentation encode (:mod:`datatypes.labelmap.ngseg`),
* 2x label downres (:mod:`datatypes.labelmap.downres`),
* the same-run baseline: ``lz4.block`` compress / decompress of the raw uint64 block,

plus the codec/lz4 throughput ratios and encoded sizes.  :func:`run_benchmark` returns the
figures as a dict so other benchmarks can import and aggregate them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import lz4.block
import numpy as np

if __package__ in (None, ""):  # executed as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatypes.labelmap.block_codec import decode_block, encode_block
from datatypes.labelmap.downres import downres_labels
from datatypes.labelmap.ngseg import encode_compressed_segmentation

__all__ = ["run_benchmark", "voronoi_block"]

BLOCK_SHAPE = (64, 64, 64)


def voronoi_block(
    n_labels: int, shape: tuple[int, int, int] = BLOCK_SHAPE, seed: int = 0
) -> np.ndarray:
    """A (nz, ny, nx) uint64 Voronoi label field with ``n_labels`` random seeds.

    Ids are random 64-bit values (half of them above 2**32) so nothing relies on small ids.
    Some cells may be entirely outside the block, so the number of distinct labels can be
    slightly below ``n_labels``.
    """
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, 1, size=(n_labels, 3)) * np.array(shape)
    ids = rng.integers(1, 2**32, size=n_labels, dtype=np.uint64)
    ids[::2] += np.uint64(2**32) * rng.integers(1, 2**31, size=ids[::2].size, dtype=np.uint64)
    grid = np.stack(np.meshgrid(*[np.arange(s) + 0.5 for s in shape], indexing="ij"), -1)
    pts = grid.reshape(-1, 3).astype(np.float32)
    seeds32 = seeds.astype(np.float32)
    nearest = np.empty(pts.shape[0], dtype=np.int64)
    chunk = 16384
    s2 = (seeds32**2).sum(1)
    for i in range(0, pts.shape[0], chunk):
        p = pts[i : i + chunk]
        d = s2[None, :] - 2.0 * (p @ seeds32.T)  # |p|² is constant per row
        nearest[i : i + chunk] = np.argmin(d, axis=1)
    return ids[nearest].reshape(shape)


def _best_seconds(fn: Callable[[], object], repeats: int, min_time: float) -> float:
    """Best-of-``repeats`` mean time per call, each repeat running >= ``min_time`` seconds."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = min(best, dt / n)
    return best


def run_benchmark(
    label_counts: Sequence[int] = (30, 100, 300),
    repeats: int = 3,
    min_time: float = 0.2,
    shape: tuple[int, int, int] = BLOCK_SHAPE,
) -> dict[str, dict[str, float]]:
    """Measure codec throughput; returns ``{"labels=N": {metric: value, ...}, ...}``.

    Metrics (MB = 10**6 bytes of raw uint64 voxel data): ``encode_MBps``, ``decode_MBps``,
    ``ngseg_encode_MBps``, ``downres_MBps``, ``lz4_compress_MBps``, ``lz4_decompress_MBps``,
    ``encode_vs_lz4``, ``decode_vs_lz4`` (codec / lz4 throughput), ``distinct_labels``,
    ``raw_bytes``, ``dvid_bytes``, ``ngseg_bytes``, ``lz4_bytes``.
    """
    results: dict[str, dict[str, float]] = {}
    for n in label_counts:
        vol = voronoi_block(n, shape, seed=n)
        raw = vol.tobytes()
        nbytes = len(raw)
        enc = encode_block(vol)
        if not np.array_equal(decode_block(enc), vol):  # pragma: no cover - sanity
            raise AssertionError("block codec round trip failed")
        ng = encode_compressed_segmentation(vol)
        lz = lz4.block.compress(raw, store_size=False)

        t_enc = _best_seconds(lambda v=vol: encode_block(v), repeats, min_time)
        t_dec = _best_seconds(lambda e=enc: decode_block(e), repeats, min_time)
        t_ng = _best_seconds(lambda v=vol: encode_compressed_segmentation(v), repeats, min_time)
        t_dr = _best_seconds(lambda v=vol: downres_labels(v), repeats, min_time)
        t_lzc = _best_seconds(
            lambda r=raw: lz4.block.compress(r, store_size=False), repeats, min_time
        )
        t_lzd = _best_seconds(
            lambda c=lz, s=nbytes: lz4.block.decompress(c, uncompressed_size=s), repeats, min_time
        )
        mb = nbytes / 1e6
        r = {
            "distinct_labels": float(np.unique(vol).size),
            "raw_bytes": float(nbytes),
            "dvid_bytes": float(len(enc)),
            "ngseg_bytes": float(len(ng)),
            "lz4_bytes": float(len(lz)),
            "encode_MBps": mb / t_enc,
            "decode_MBps": mb / t_dec,
            "ngseg_encode_MBps": mb / t_ng,
            "downres_MBps": mb / t_dr,
            "lz4_compress_MBps": mb / t_lzc,
            "lz4_decompress_MBps": mb / t_lzd,
        }
        r["encode_vs_lz4"] = r["encode_MBps"] / r["lz4_compress_MBps"]
        r["decode_vs_lz4"] = r["decode_MBps"] / r["lz4_decompress_MBps"]
        results[f"labels={n}"] = r
    return results


def main() -> None:
    """Print a table of :func:`run_benchmark` results."""
    res = run_benchmark()
    cols = [
        ("distinct_labels", "labels", "{:.0f}"),
        ("encode_MBps", "enc MB/s", "{:.0f}"),
        ("decode_MBps", "dec MB/s", "{:.0f}"),
        ("ngseg_encode_MBps", "ngenc MB/s", "{:.0f}"),
        ("downres_MBps", "downres MB/s", "{:.0f}"),
        ("lz4_compress_MBps", "lz4c MB/s", "{:.0f}"),
        ("lz4_decompress_MBps", "lz4d MB/s", "{:.0f}"),
        ("encode_vs_lz4", "enc/lz4c", "{:.2f}"),
        ("decode_vs_lz4", "dec/lz4d", "{:.2f}"),
        ("dvid_bytes", "dvid B", "{:.0f}"),
        ("ngseg_bytes", "ngseg B", "{:.0f}"),
        ("lz4_bytes", "lz4 B", "{:.0f}"),
    ]
    print(f"64³ uint64 blocks ({BLOCK_SHAPE[0] ** 3 * 8 / 2**20:.0f} MiB raw each); MB = 1e6 B")
    print(f"{'case':>12} " + " ".join(f"{h:>12}" for _, h, _ in cols))
    for case, r in res.items():
        print(f"{case:>12} " + " ".join(f"{f.format(r[k]):>12}" for k, _, f in cols))


if __name__ == "__main__":
    main()
