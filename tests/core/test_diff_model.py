"""Property test: :meth:`VersionedStore.diff` against the plain model over random DAGs.

The versioned-store state machine of ``test_versioned_model`` (branches, merges, puts,
deletes, batches, store reopen, index rebuild) gains raw writes behind the store's back
(marked with ``add_versions``, as a transfer does) and one more invariant: for every pair
of nodes, the diff is exactly the keys whose model reads differ, with both values, plus
the keys written between the two nodes whose read conflicts on a side (as ``CONFLICT``;
a conflict both sides inherit unchanged is not a difference)."""

from __future__ import annotations

import json

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from test_versioned_model import SETTINGS, TKEYS, VALUES, make_machine, model_read

from datatypes.keyvalue import KEY_CLASS
from dvidpy import versioned
from dvidpy.dag import Node, VersionDAG
from dvidpy.datatype import MUTLOG_CLASS
from dvidpy.errors import Conflict
from dvidpy.keys import data_key, tkey
from dvidpy.versioned import CONFLICT, VersionedCtx, VersionedStore, pack_tkeys, unpack_tkeys
from storage import open_engine


def make_diff_machine(engine_factory, store_factory=VersionedStore):
    base = make_machine(engine_factory, store_factory)

    class DiffMachine(base):  # type: ignore[misc, valid-type]
        @precondition(lambda self: self.open_nodes())
        @rule(data=st.data(), tk=st.sampled_from(TKEYS), value=VALUES)
        def raw_put(self, data: st.DataObject, tk: bytes, value: bytes) -> None:
            v = data.draw(st.sampled_from(self.open_nodes()))
            self.engine.put(data_key(7, tk, v), value)
            self.engine.delete(data_key(7, tk, v, tombstone=True))
            self.store.add_versions(7, [v])
            self.writes[(v, tk)] = value

        @invariant()
        def diff_agrees(self) -> None:
            nodes = sorted(self.dag.nodes)
            anc = {v: nx.ancestors(self.graph, v) | {v} for v in nodes}
            for a in nodes:
                for b in nodes:
                    between = anc[a] ^ anc[b]
                    want = {}
                    for tk in TKEYS:
                        ra = model_read(self.graph, self.writes, a, tk)
                        rb = model_read(self.graph, self.writes, b, tk)
                        ra = CONFLICT if ra is Conflict else ra
                        rb = CONFLICT if rb is Conflict else rb
                        touched = any((v, tk) in self.writes for v in between)
                        if ((ra is CONFLICT or rb is CONFLICT) and touched) or (
                                ra is not CONFLICT and rb is not CONFLICT and ra != rb):
                            want[tk] = (ra, rb)
                    got = {tk: (x, y) for tk, x, y in self.store.diff(self.ctx(a), self.ctx(b))}
                    assert got == want, (a, b)
                    assert list(got) == sorted(got)

    return DiffMachine


def test_diff_matches_model_memory() -> None:
    m = make_diff_machine(lambda: open_engine("memory"))
    m.TestCase.settings = settings(SETTINGS, max_examples=80)
    m.TestCase().runTest()


def test_diff_matches_model_leveldb(tmp_path_factory) -> None:
    counter = iter(range(10**6))
    m = make_diff_machine(
        lambda: open_engine("leveldb", str(tmp_path_factory.mktemp(f"d{next(counter)}"))))
    m.TestCase.settings = settings(SETTINGS, max_examples=20)
    m.TestCase().runTest()


@pytest.mark.parametrize("kind", ["lmdb", "shared", "cached", "small-batches"])
def test_diff_matches_model_other_stores(kind: str, tmp_path_factory, monkeypatch) -> None:
    """LMDB; a store shared with other servers (no version index: every version between
    the sides probed for an unindexed marker); the cache tier (committed reads cached);
    and candidates read in batches of 2, so batch boundaries fall between a TKey's reads
    on each side."""
    from dvidpy.cache import CachedVersionedStore

    counter = iter(range(10**6))
    engine = (lambda: open_engine("lmdb", str(tmp_path_factory.mktemp(f"l{next(counter)}")))
              ) if kind == "lmdb" else (lambda: open_engine("memory"))
    store = {"shared": lambda e: VersionedStore(e, shared=True),
             "cached": lambda e: CachedVersionedStore(e, cache_mb=1)}.get(kind, VersionedStore)
    if kind == "small-batches":
        monkeypatch.setattr(versioned, "DIFF_BATCH", 2)
    m = make_diff_machine(engine, store)
    m.TestCase.settings = settings(SETTINGS, max_examples=20)
    m.TestCase().runTest()


def test_diff_of_two_instances_is_refused() -> None:
    dag = VersionDAG(Node(uuid=f"{1:032x}", version=1))
    a, b = (VersionedCtx(instance_id=i, version=1, ancestry=dag.ancestry(1), node=dag.node(1))
            for i in (7, 8))
    with pytest.raises(ValueError, match="one instance"):
        list(VersionedStore(open_engine("memory")).diff(a, b))


@given(st.lists(st.binary(max_size=300), max_size=50))
def test_written_keys_codec_round_trips(tks: list[bytes]) -> None:
    assert list(unpack_tkeys(pack_tkeys(tks))) == tks


# TKeys of every kind a keyvalue instance holds: keys (any bytes but NUL, some not UTF-8),
# mutation-log records, properties, and another class (shown as hex)
_KV_TKEYS = st.one_of(
    st.binary(min_size=1, max_size=12).filter(lambda b: b"\x00" not in b).map(
        lambda b: tkey(KEY_CLASS, b + b"\x00")),
    st.binary(max_size=6).map(lambda b: tkey(MUTLOG_CLASS, b)),
    st.binary(max_size=6).map(lambda b: tkey(1, b + b"\x00")),
    st.binary(max_size=6).map(lambda b: tkey(200, b)))
_SIDE = st.one_of(st.none(), st.just(CONFLICT), st.binary(max_size=20))


@pytest.fixture(scope="module")
def kv_instance():
    import datatypes  # noqa: F401  (registers the datatypes)
    from dvidpy.config import Settings
    from dvidpy.repo import RepoManager

    mgr = RepoManager(Settings.memory())
    repo = mgr.create_repo()
    yield mgr.new_instance(repo, repo.dag.root, {"typename": "keyvalue", "dataname": "kv"})
    mgr.close()


@given(tks=st.lists(_KV_TKEYS, max_size=30))
def test_keyvalue_describe_keys_is_describe_key(kv_instance, tks: list[bytes]) -> None:
    assert kv_instance.describe_keys(tks) == [kv_instance.describe_key(t) for t in tks]


_RECORD = st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers()).map(
    lambda d: json.dumps(d).encode()))


@given(changes=st.lists(st.tuples(_KV_TKEYS, _SIDE, _SIDE).filter(
    lambda c: c[1] is CONFLICT or c[1] != c[2]), max_size=30),
    logs=st.lists(st.tuples(st.binary(max_size=4), _RECORD, _RECORD), max_size=4))
def test_keyvalue_diff_summary_counts(kv_instance, changes, logs) -> None:
    """The summary of any list of differing reads, against a per-key count."""
    want = {"added": 0, "changed": 0, "deleted": 0, "bytes_from": 0, "bytes_to": 0}
    for tk, old, new in changes:
        if tk[0] == KEY_CLASS:
            want["added" if old is None else "deleted" if new is None else "changed"] += 1
            want["bytes_from"] += len(old) if isinstance(old, bytes) else 0
            want["bytes_to"] += len(new) if isinstance(new, bytes) else 0
    changes = [c for c in changes if c[0][0] != MUTLOG_CLASS]
    changes += [(tkey(MUTLOG_CLASS, k), old, new) for k, old, new in logs]
    got = kv_instance.diff_summary(None, None, changes)
    assert got == {**want, "mutations": sum(new is not None for _, _, new in logs)}
