"""labelmap endpoint benchmark (in-process app on the memory engine).

Run ``python benchmarks/labelmap.py``. Prints:

* codec figures from :func:`benchmarks.labelmap_codec.run_benchmark` (ratios vs lz4),
* merge / cleave latency for bodies of ~10^4 and ~10^7 voxels and their large/small ratio,
* ``sparsevol`` (rles) throughput of the 10^7-voxel body, in voxels/s and as a ratio to
  the same run's raw lz4 decompression of the same voxel count (baseline),
* ``sparsevol-coarse`` latency of a 1,000-block body,
* ``specificblocks?compression=blocks`` blocks/s for 1,000 blocks (mapped and
  ``supervoxels=true``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lz4.block
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.testclient import TestClient

from benchmarks.labelmap_codec import run_benchmark
from dvidpy.config import Settings
from server import create_app

BIG = 2**33


def _t(fn, n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    codec = run_benchmark(label_counts=(100,), repeats=1, min_time=0.1)
    for k, v in codec.items():
        print(f"codec {k}: encode_vs_lz4={v['encode_vs_lz4']:.2f} "
              f"decode_vs_lz4={v['decode_vs_lz4']:.2f}")
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


if __name__ == "__main__":
    main()
