"""The cache tier: an LRU bounded in bytes and a shared Redis (a real redis-server), only for
reads at committed versions. Correctness against a model is in test_versioned_model.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvidpy.cache import _MISS, CachedVersionedStore, LRUBytes, cache_stats
from dvidpy.config import Settings
from dvidpy.dag import Node, VersionDAG
from dvidpy.keys import tkey
from dvidpy.repo import RepoManager
from dvidpy.versioned import VersionedCtx, VersionedStore
from storage import KeyRange, open_engine

K = [tkey(177, bytes([i]) + b"\x00") for i in range(4)]


@given(st.lists(st.tuples(st.integers(0, 20), st.one_of(st.none(), st.binary(max_size=300))),
                max_size=60), st.integers(150, 2000))
def test_lru_stays_within_its_bound(ops: list[tuple[int, bytes | None]], bound: int) -> None:
    lru = LRUBytes(bound)
    last: dict[bytes, bytes | None] = {}
    for k, v in ops:
        key = b"k%d" % k
        lru.put(key, v)
        last[key] = v
        assert lru.size <= bound
        fits = LRUBytes._cost(key, v) <= bound
        assert (lru.get(key) is not _MISS) == fits  # the newest entry is kept if it fits
        if fits:
            assert lru.get(key) == v
    for key, v in last.items():
        got = lru.get(key)
        assert got is _MISS or got == v  # never a stale value
    assert lru.size == sum(LRUBytes._cost(k, lru._d[k]) for k in lru._d)


def _chain() -> tuple[VersionDAG, Node, None]:
    dag = VersionDAG(Node(uuid="1" * 32, version=1))
    return dag, dag.root, None


def _ctx(dag: VersionDAG, v: int, versioned: bool = True, fullwrite: bool = False) -> VersionedCtx:
    return VersionedCtx(instance_id=3, version=v, ancestry=dag.ancestry(v), node=dag.node(v),
                        versioned=versioned, is_ancestor=dag.is_ancestor,
                        allow_locked=fullwrite)


def test_committed_reads_are_cached_open_and_unversioned_bypass() -> None:
    eng = open_engine("memory")
    store = CachedVersionedStore(eng, cache_mb=1)
    dag, root, _ = _chain()
    store.put(_ctx(dag, 1), K[0], b"v1")
    assert store.get(_ctx(dag, 1), K[0]) == b"v1"  # open: bypass
    assert store.stats.bypassed == 1 and store.stats.misses == 0
    dag.commit(root)
    assert store.get_many(_ctx(dag, 1), [K[0], K[1]]) == [b"v1", None]
    assert store.stats.misses == 2
    # the engine changes behind the store's back: the cache still answers (proof it hits)
    eng.delete_range(KeyRange())
    assert store.get_many(_ctx(dag, 1), [K[0], K[1]]) == [b"v1", None]
    assert store.stats.lru_hits == 2
    # fullwrite contexts and unversioned instances read the engine
    assert store.get(_ctx(dag, 1, fullwrite=True), K[0]) is None
    assert store.get(_ctx(dag, 1, versioned=False), K[0]) is None
    assert store.stats.bypassed == 3
    store.close()


def test_redis_is_shared_between_servers(redis_url: str) -> None:
    eng = open_engine("memory")
    a = CachedVersionedStore(eng, redis_url=redis_url, ttl=60)
    b = CachedVersionedStore(eng, cache_mb=1, redis_url=redis_url, ttl=60)
    assert a.ns == b.ns  # one store, one namespace
    dag, root, _ = _chain()
    a.put(_ctx(dag, 1), K[2], b"x" * 1000)
    dag.commit(root)
    assert a.get(_ctx(dag, 1), K[2]) == b"x" * 1000
    assert a.get(_ctx(dag, 1), K[3]) is None
    assert a.stats.misses == 2
    assert b.get_many(_ctx(dag, 1), [K[2], K[3]]) == [b"x" * 1000, None]
    assert (b.stats.redis_hits, b.stats.misses) == (2, 0)
    assert b.get(_ctx(dag, 1), K[2]) == b"x" * 1000
    assert b.stats.lru_hits == 1  # filled from Redis into the LRU
    ttl = a.redis.ttl(a.ns + a._key(_ctx(dag, 1), K[2]))
    assert 0 < ttl <= 60
    totals = cache_stats()
    assert totals["cache Redis hits"] >= 2 and totals["cache hits"] >= 3
    a.close()
    b.close()


def test_redis_down_is_a_miss_not_an_error() -> None:
    from storage.testing import _free_port

    eng = open_engine("memory")
    s = CachedVersionedStore(eng, redis_url=f"redis://127.0.0.1:{_free_port('127.0.0.1')}/0")
    dag, root, _ = _chain()
    s.put(_ctx(dag, 1), K[0], b"v")
    dag.commit(root)
    assert s.get(_ctx(dag, 1), K[0]) == b"v"
    assert s.stats.misses == 1
    s.close()


@pytest.mark.parametrize(("rwmode", "cached"), [("", True), ("fullwrite", False)])
def test_manager_builds_the_cache_from_the_toml(rwmode: str, cached: bool,
                                               redis_url: str) -> None:
    data: dict[str, Any] = {"server": {"rwmode": rwmode},
                            "store": {"m": {"engine": "memory", "cache_mb": 4,
                                            "redis": redis_url, "cache_ttl": 30}}}
    m = RepoManager(Settings.from_dict(data))
    try:
        st_ = m.stores["m"]
        assert isinstance(st_, CachedVersionedStore) == cached
        assert isinstance(st_, VersionedStore)
        if cached:
            assert st_.lru is not None and st_.lru.max_bytes == 4 << 20 and st_.ttl == 30
        assert set(m.cache_stats()) >= {"cache hits", "cache misses"}
    finally:
        m.close()
