"""Version diff cost against scanning the instance, measured in the same run.

A keyvalue instance holds ``--keys`` keys (``--value`` bytes each) written at the root; a
child version rewrites ``--changed`` percent of them (random keys), deletes a tenth as many
and adds as many new ones. Printed per engine (``--engine``, default LevelDB and LMDB, the
server's default): the time of the diff between root and child
(``dvidpy.diff.instance_diff``, what ``GET /api/repo/{uuid}/diff/...`` computes per
instance) as a ratio of one full scan of the instance at the child (keys and values through
the versioned store, what a diff without an index would need at least once, reading both
sides' revisions of each key together), and of a key-only scan. For context only, the
engine's raw scan of the same keys (no version resolution, nothing a client can use). Target:
diff / full scan <= 0.05 at 1 % changed keys.

``--reopen`` closes and reopens the store between the root's bulk load and the child's
writes, so LevelDB holds the root's data in table files instead of its memtable (the state
after any restart; LMDB has no such distinction).

    python benchmarks/diff.py [--keys 200000] [--changed 1] [--repeat 5]
                              [--engine leveldb,lmdb] [--reopen]
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
from storage.base import KeyRange


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


def run(engine: str, args: argparse.Namespace) -> None:
    """Build the instance on ``engine``, time, print."""
    with tempfile.TemporaryDirectory(prefix="dvidpy-diff-bench-") as tmp:
        s = Settings.from_dict({"store": {"main": {"engine": engine, "path": tmp}}})
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
        if args.reopen:
            uuid = root.uuid
            mgr.close()
            mgr = RepoManager(s)
            repo, root = mgr.resolve(uuid)
            inst = mgr.instance(repo, "kv")
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
        raw = KeyRange.prefix(cc.prefix)
        # timed in turn within each round (medians over rounds), so LevelDB's background
        # compaction after the load, and the machine's noise, fall on all alike
        t_diff, t_scan, t_keys, t_raw = interleaved([
            lambda: instance_diff(mgr, inst, root, child),
            lambda: sum(1 for _ in inst.store.scan_prefix(cc, pre)),
            lambda: sum(1 for _ in inst.store.scan_prefix(cc, pre, keys_only=True)),
            lambda: sum(1 for _ in inst.store.engine.scan(raw))],
            args.repeat)
        mgr.close()
    print(f"{engine}{' (reopened after the load)' if args.reopen else ''}: keys "
          f"{args.keys}, value {args.value} B, changed {args.changed}% ({n} rewritten, "
          f"{n // 10} deleted, {n // 10} added), median of {args.repeat}")
    print(f"  diff root->child     {t_diff * 1e3:9.1f} ms")
    print(f"  full scan (k+v)      {t_scan * 1e3:9.1f} ms   diff/scan = {t_diff / t_scan:.3f}x "
          "(target <= 0.05x)")
    print(f"  key-only scan        {t_keys * 1e3:9.1f} ms   diff/scan = {t_diff / t_keys:.3f}x")
    print(f"  (engine's raw scan   {t_raw * 1e3:9.1f} ms   no version resolution)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--value", type=int, default=64)
    ap.add_argument("--changed", type=float, default=1.0, help="percent of keys rewritten")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--engine", default="leveldb,lmdb", help="comma-separated engine names")
    ap.add_argument("--reopen", action="store_true",
                    help="reopen the store between the bulk load and the child's writes")
    args = ap.parse_args()
    for engine in args.engine.split(","):
        run(engine, args)


if __name__ == "__main__":
    main()
