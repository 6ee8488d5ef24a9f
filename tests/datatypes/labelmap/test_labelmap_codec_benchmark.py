"""Smoke test for benchmarks/labelmap_codec.py (its dict API, not its timings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "labelmap_codec.py"


def _load():
    spec = importlib.util.spec_from_file_location("labelmap_codec_bench", _PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_benchmark_returns_figures() -> None:
    mod = _load()
    vol = mod.voronoi_block(20, (16, 16, 16), seed=1)
    assert vol.dtype == np.uint64 and vol.shape == (16, 16, 16)
    assert 1 < np.unique(vol).size <= 20
    res = mod.run_benchmark(label_counts=(10,), repeats=1, min_time=0.0, shape=(16, 16, 16))
    r = res["labels=10"]
    for key in (
        "encode_MBps",
        "decode_MBps",
        "lz4_compress_MBps",
        "lz4_decompress_MBps",
        "encode_vs_lz4",
        "decode_vs_lz4",
        "dvid_bytes",
        "lz4_bytes",
    ):
        assert r[key] > 0
