"""Version diff cost against scanning the instance, measured in the same run.

A keyvalue instance on LevelDB holds ``--keys`` keys (``--value`` bytes each) written at
the root; a child version rewrites ``--changed`` percent of them (random keys), deletes a
tenth as many and adds as many new ones. Printed: the time of the diff between root and
child (``dvidpy.diff.instance_diff``, what ``GET /api/repo/{uuid}/diff/...`` computes per
instance) as a ratio of one full scan of the instance at the child (keys and values, what
any diff without an index would need at least once per side), and of a key-only scan.
Target: diff / full scan <= 0.05 at 1 % changed keys.

    python benchmarks/diff.py [--keys 200000] [--changed 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datatypes  # noqa: F401  (registers the datatypes)
from datatypes.keyvalue import KEY_CLASS, encode_key
from dvidpy.config import Settings
from dvidpy.diff import instance_diff
from dvidpy.repo import RepoManager


def interleaved(fns: list, repeat: int) -> list[float]:
    """Median seconds of each of ``fns``, timed one after the other in each of ``repeat``
    rounds after one untimed round (which warms the block cache for all of them)."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeat + 1):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            if r:
                times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--value", type=int, default=64)
    ap.add_argument("--changed", type=float, default=1.0, help="percent of keys rewritten")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dvidpy-diff-bench-") as tmp:
        s = Settings.from_dict({"store": {"main": {"engine": "leveldb", "path": tmp}}})
        mgr = RepoManager(s)
        repo = mgr.create_repo()
        inst = mgr.new_instance(repo, repo.dag.root, {"typename": "keyvalue",
                                                      "dataname": "kv"})
        root = repo.dag.root
        val = b"v" * args.value
        ctx = mgr.context(inst, root)
        names = [f"key{i:09d}" for i in range(args.keys)]
        for i in range(0, len(names), 50_000):
            inst.store.put_many(ctx, ((encode_key(k), val) for k in names[i:i + 50_000]))
        mgr.commit(repo, root)
        child = mgr.new_version(repo, root)
        cc = mgr.context(inst, child)
        rng = random.Random(1)
        n = int(args.keys * args.changed / 100)
        picked = rng.sample(names, n + n // 10)
        with inst.store.batch(cc) as b:
            for k in picked[:n]:
                b.put(encode_key(k), b"w" * args.value)
            for k in picked[n:]:
                b.delete(encode_key(k))
            for i in range(n // 10):
                b.put(encode_key(f"new{i:09d}"), val)
        pre = bytes((KEY_CLASS, 1))
        d = instance_diff(mgr, inst, root, child)
        assert len(d["changed"]) == n and len(d["deleted"]) == n // 10
        assert len(d["added"]) == n // 10
        # the three are timed in turn within each round (medians over rounds), so LevelDB's
        # background compaction after the load, and the machine's noise, fall on all alike
        t_diff, t_scan, t_keys = interleaved([
            lambda: instance_diff(mgr, inst, root, child),
            lambda: sum(1 for _ in inst.store.scan_prefix(cc, pre)),
            lambda: sum(1 for _ in inst.store.scan_prefix(cc, pre, keys_only=True))],
            args.repeat)
        mgr.close()
    print(f"keys {args.keys}, value {args.value} B, changed {args.changed}% "
          f"({n} rewritten, {n // 10} deleted, {n // 10} added), LevelDB, median of "
          f"{args.repeat}")
    print(f"diff root->child     {t_diff * 1e3:9.1f} ms")
    print(f"full scan (k+v)      {t_scan * 1e3:9.1f} ms   diff/scan = {t_diff / t_scan:.3f}x "
          "(target <= 0.05x)")
    print(f"key-only scan        {t_keys * 1e3:9.1f} ms   diff/scan = {t_diff / t_keys:.3f}x")


if __name__ == "__main__":
    main()
