"""Benchmark: synapse annotations following a labelmap, on a real ``dvidpy serve`` (LevelDB).

    python benchmarks/annotation.py [--synapses 100000] [--per-body 10000]

Loads a 256x256x128 labelmap whose x < 64 slab is body A (supervoxel 1), 64 <= x < 128 is
body B (supervoxel 2) and the rest is 16^3 cells of many small bodies; syncs an
annotation and a labelsz to it; then reports

* ``POST elements`` of all synapses in one request (MB/s of posted JSON, elements/s),
  with label lookups, label/tag lists and labelsz counts updated in the same request;
* ``GET label/A`` for a body holding ``--per-body`` elements (ms, median of 5): one read
  of the label list, no element scan;
* ``POST merge [A, B]`` with both bodies holding ``--per-body`` elements (ms), which
  includes the annotation label-list move and the labelsz count update;
* ``GET top/1000/PostSyn`` on labelsz (ms, median of 5).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (128, 256, 256)  # z, y, x


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn, n: int = 1) -> tuple[float, object]:
    """Median milliseconds of ``n`` calls and the last result."""
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def make_synapses(n: int, per_body: int, rng: np.random.Generator) -> list[dict]:
    """``n`` elements (PreSyn + 2 PostSyn groups); ``per_body`` in each of A and B."""
    def points(k: int, x0: int, x1: int) -> np.ndarray:
        flat = rng.choice(SHAPE[0] * SHAPE[1] * (x1 - x0), size=k, replace=False)
        z, y, x = np.unravel_index(flat, (SHAPE[0], SHAPE[1], x1 - x0))
        return np.stack([x + x0, y, z], axis=1)

    pts = np.concatenate([points(per_body, 0, 64), points(per_body, 64, 128),
                          points(n - 2 * per_body, 128, 256)]).tolist()
    out = []
    for i in range(0, len(pts) - 2, 3):
        pre, p1, p2 = pts[i], pts[i + 1], pts[i + 2]
        out.append({"Pos": pre, "Kind": "PreSyn", "Prop": {"conf": "0.93", "user": "bench"},
                    "Rels": [{"Rel": "PreSynTo", "To": p1}, {"Rel": "PreSynTo", "To": p2}]})
        out.extend({"Pos": p, "Kind": "PostSyn", "Prop": {"conf": "0.71", "user": "bench"},
                    "Rels": [{"Rel": "PostSynTo", "To": pre}]} for p in (p1, p2))
    out.extend({"Pos": p, "Kind": "Note", "Tags": ["extra"]} for p in pts[len(out):])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synapses", type=int, default=100_000)
    ap.add_argument("--per-body", type=int, default=10_000)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvidpy.cli", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--data", str(Path(tmp) / "db")],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        try:
            for _ in range(300):
                try:
                    if c.get("/api/heartbeat").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            uuid = c.post("/api/repos", json={}).json()["root"]
            for body in ({"typename": "labelmap", "dataname": "seg"},
                         {"typename": "annotation", "dataname": "syn"},
                         {"typename": "labelsz", "dataname": "sz"}):
                c.post(f"/api/repo/{uuid}/instance", json=body).raise_for_status()
            u = f"/api/node/{uuid}"
            c.post(f"{u}/syn/sync", json={"sync": "seg"}).raise_for_status()
            c.post(f"{u}/sz/sync", json={"sync": "syn"}).raise_for_status()
            cells = rng.integers(10, 2000, size=(8, 16, 8)).astype(np.uint64)
            vol = np.zeros(SHAPE, np.uint64)
            vol[:, :, :64] = 1
            vol[:, :, 64:128] = 2
            vol[:, :, 128:] = np.repeat(np.repeat(np.repeat(cells, 16, 0), 16, 1), 16, 2)
            t = time.perf_counter()
            c.post(f"{u}/seg/raw/0_1_2/256_256_128/0_0_0", content=vol.tobytes()
                   ).raise_for_status()
            print(f"labelmap load (64 MiB voxels): {time.perf_counter() - t:.2f} s")

            els = make_synapses(args.synapses, args.per_body, rng)
            body = json.dumps(els).encode()
            ms, r = timed(lambda: c.post(f"{u}/syn/elements", content=body))
            r.raise_for_status()  # type: ignore[attr-defined]
            print(f"POST elements: {len(els)} elements, {len(body) / 1e6:.1f} MB in "
                  f"{ms / 1000:.2f} s = {len(body) / 1e6 / (ms / 1000):.1f} MB/s, "
                  f"{len(els) / (ms / 1000):,.0f} elements/s")

            ms, r = timed(lambda: c.get(f"{u}/syn/label/1"), 5)
            n = len(r.json())  # type: ignore[attr-defined]
            assert n == args.per_body, n
            print(f"GET label/1 ({n} elements): {ms:.1f} ms (median of 5)")
            ms, r = timed(lambda: c.get(f"{u}/syn/label/1?relationships=true"), 3)
            print(f"GET label/1?relationships=true: {ms:.1f} ms (median of 3)")

            ms, r = timed(lambda: c.post(f"{u}/seg/merge", json=[1, 2]))
            r.raise_for_status()  # type: ignore[attr-defined]
            print(f"POST merge [1, 2] ({args.per_body} + {args.per_body} elements, with "
                  f"annotation + labelsz updates): {ms:.1f} ms")
            assert len(c.get(f"{u}/syn/label/1").json()) == 2 * args.per_body
            assert c.get(f"{u}/syn/label/2").json() == []

            ms, r = timed(lambda: c.get(f"{u}/sz/top/1000/PostSyn"), 5)
            top = r.json()  # type: ignore[attr-defined]
            assert top[0]["Label"] == 1, top[:2]
            print(f"labelsz top/1000/PostSyn ({len(top)} rows): {ms:.1f} ms (median of 5)")
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()


if __name__ == "__main__":
    main()
