"""Property test: the versioned store against a plain model over random DAGs.

The model keeps ``{(version, tkey): value | TOMB}`` and answers reads from the networkx
graph directly (ancestor sets, maximal revisions), independently of the DAG's cached
ancestry and the store's reverse-scan shortcut. Random programs branch, commit, make new
versions, merge, put and delete; after every step every key is read at every node, a full
scan is compared too, and the point reads of a version's own writes through read views. It
runs on the memory, LevelDB and LMDB engines.
"""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dvidpy import versioned
from dvidpy.dag import Node, VersionDAG
from dvidpy.errors import Conflict
from dvidpy.keys import tkey
from dvidpy.versioned import VersionedCtx, VersionedStore
from storage import open_engine

TOMB = object()
# TKeys obeying the layout invariant (terminated payloads), with prefix relations between
# payloads ("a" / "ab") so adjacent-key grouping is exercised.
TKEYS = [tkey(177, p + b"\x00") for p in (b"a", b"ab", b"b", b"\xff", b"\x00\x01")]
VALUES = st.binary(max_size=8)


def model_read(graph: nx.DiGraph, writes: dict, version: int, tk: bytes) -> object:
    """The visible value (bytes), None, or Conflict."""
    anc = nx.ancestors(graph, version) | {version}
    cands = {v for v in anc if (v, tk) in writes}
    maximal = {c for c in cands if not any(c in nx.ancestors(graph, d) for d in cands - {c})}
    if len(maximal) == 1:
        w = writes[(next(iter(maximal)), tk)]
        return None if w is TOMB else w
    live = [writes[(m, tk)] for m in maximal if writes[(m, tk)] is not TOMB]
    if not live:
        return None
    if len(live) > 1:
        return Conflict
    return live[0]


def make_machine(engine_factory, store_factory=VersionedStore):
    """``store_factory(engine)`` builds the store under test (a plain, shared or cached
    :class:`VersionedStore`)."""

    class VersionedMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.engine = engine_factory()
            self.store = store_factory(self.engine)
            self.next_v = 2
            self.dag = VersionDAG(Node(uuid=f"{1:032x}", version=1))
            self.graph = nx.DiGraph()
            self.graph.add_node(1)
            self.writes: dict = {}

        def teardown(self) -> None:
            self.engine.close()

        def ctx(self, v: int) -> VersionedCtx:
            return VersionedCtx(instance_id=7, version=v, ancestry=self.dag.ancestry(v),
                                node=self.dag.node(v), is_ancestor=self.dag.is_ancestor)

        def _new(self) -> tuple[str, int]:
            v = self.next_v
            self.next_v += 1
            self.graph.add_node(v)
            return f"{v:032x}", v

        def open_nodes(self) -> list[int]:
            return sorted(v for v, n in self.dag.nodes.items() if not n.locked)

        def locked_nodes(self) -> list[int]:
            return sorted(v for v, n in self.dag.nodes.items() if n.locked)

        @precondition(lambda self: self.open_nodes())
        @rule(data=st.data(), tk=st.sampled_from(TKEYS), value=VALUES)
        def put(self, data: st.DataObject, tk: bytes, value: bytes) -> None:
            v = data.draw(st.sampled_from(self.open_nodes()))
            self.store.put(self.ctx(v), tk, value)
            self.writes[(v, tk)] = value

        @precondition(lambda self: self.open_nodes())
        @rule(data=st.data(), tk=st.sampled_from(TKEYS))
        def delete(self, data: st.DataObject, tk: bytes) -> None:
            v = data.draw(st.sampled_from(self.open_nodes()))
            self.store.delete(self.ctx(v), tk)
            self.writes[(v, tk)] = TOMB

        @precondition(lambda self: self.open_nodes())
        @rule(
            data=st.data(),
            ops=st.lists(st.tuples(st.sampled_from(TKEYS), st.none() | VALUES), max_size=5),
        )
        def batch(self, data: st.DataObject, ops: list) -> None:
            v = data.draw(st.sampled_from(self.open_nodes()))
            with self.store.batch(self.ctx(v)) as b:
                for tk, value in ops:
                    if value is None:
                        b.delete(tk)
                        self.writes[(v, tk)] = TOMB
                    else:
                        b.put(tk, value)
                        self.writes[(v, tk)] = value

        @rule()
        def reopen_store(self) -> None:
            # a new store object must find the persisted version index
            self.store = store_factory(self.engine)

        @rule()
        def rebuild_index(self) -> None:
            self.store.rebuild_versions(7)

        @precondition(lambda self: self.open_nodes())
        @rule(data=st.data())
        def commit(self, data: st.DataObject) -> None:
            v = data.draw(st.sampled_from(self.open_nodes()))
            self.dag.commit(self.dag.node(v))

        @precondition(lambda self: self.locked_nodes() and len(self.dag.nodes) < 12)
        @rule(data=st.data())
        def branch(self, data: st.DataObject) -> None:
            p = data.draw(st.sampled_from(self.locked_nodes()))
            u, v = self._new()
            self.dag.new_branch(self.dag.node(p), f"b{v}", u, v)
            self.graph.add_edge(p, v)

        @precondition(lambda self: self.locked_nodes() and len(self.dag.nodes) < 12)
        @rule(data=st.data())
        def newversion(self, data: st.DataObject) -> None:
            free = [v for v in self.locked_nodes()
                    if not any(self.dag.node(c).branch == self.dag.node(v).branch
                               for c in self.dag.node(v).children)]
            if not free:
                return
            p = data.draw(st.sampled_from(free))
            u, v = self._new()
            self.dag.new_version(self.dag.node(p), u, v)
            self.graph.add_edge(p, v)

        @rule(data=st.data(), tk=st.sampled_from(TKEYS))
        def read_one(self, data: st.DataObject, tk: bytes) -> None:
            v = data.draw(st.sampled_from(sorted(self.dag.nodes)))
            want = model_read(self.graph, self.writes, v, tk)
            if want is Conflict:
                with pytest.raises(Conflict):
                    self.store.get(self.ctx(v), tk)
            else:
                assert self.store.get(self.ctx(v), tk) == want

        @precondition(lambda self: len(self.locked_nodes()) >= 2 and len(self.dag.nodes) < 12)
        @rule(data=st.data())
        def merge(self, data: st.DataObject) -> None:
            ps = data.draw(st.lists(st.sampled_from(self.locked_nodes()), min_size=2,
                                    max_size=3, unique=True))
            u, v = self._new()
            self.dag.merge([self.dag.node(p) for p in ps], u, v)
            for p in ps:
                self.graph.add_edge(p, v)

        @invariant()
        def reads_agree(self) -> None:
            for v in self.dag.nodes:
                ctx = self.ctx(v)
                expect_scan = []
                conflict = False
                for tk in TKEYS:
                    want = model_read(self.graph, self.writes, v, tk)
                    if want is Conflict:
                        conflict = True
                        with pytest.raises(Conflict):
                            self.store.get(ctx, tk)
                        continue
                    assert self.store.get(ctx, tk) == want, (v, tk)
                    if want is not None:
                        expect_scan.append((tk, want))
                if conflict:
                    with pytest.raises(Conflict):
                        list(self.store.scan(ctx, b"", None))
                else:
                    assert list(self.store.scan(ctx, b"", None)) == sorted(expect_scan)
                    # a bounded range (what a cache may keep whole), twice
                    for _ in range(2):
                        assert list(self.store.scan(ctx, tkey(177, b""), tkey(178, b""))) \
                            == sorted(expect_scan)
                    keys = [k for k, _ in self.store.scan(ctx, b"", None, keys_only=True)]
                    assert keys == [k for k, _ in sorted(expect_scan)]
                # point reads of what this version itself wrote (box reads take those
                # first): exactly its own live writes, or nothing where the reader
                # offers no point reads (a cached store)
                with self.store.read_views() as views:
                    own = [None if o is None else bytes(o)
                           for o in views.get_own(ctx, TKEYS)]
                mine = [self.writes.get((v, tk)) for tk in TKEYS]
                mine = [None if w is TOMB else w for w in mine]
                assert own == mine or (views._get_many is None and own == [None] * len(own))

    return VersionedMachine


SETTINGS = settings(max_examples=60, stateful_step_count=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("probes", [0, 4, 100])
def test_versioned_store_matches_model_memory(probes: int, monkeypatch) -> None:
    """``probes`` forces the scan path (0), the default mix (4) or point gets only (100)."""
    monkeypatch.setattr(versioned, "MAX_PROBES", probes)
    machine = make_machine(lambda: open_engine("memory"))
    machine.TestCase.settings = SETTINGS
    machine.TestCase().runTest()


@pytest.mark.parametrize(("engine", "shared"), [("leveldb", False), ("lmdb", False),
                                               ("lmdb", True)])
def test_versioned_store_matches_model_on_disk(engine: str, shared: bool,
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    """LevelDB, and LMDB both as one server's store and as a store shared by workers."""
    counter = iter(range(10**6))

    def factory():
        return open_engine(engine, str(tmp_path_factory.mktemp(f"vs{next(counter)}")))

    machine = make_machine(factory, lambda e: VersionedStore(e, shared=shared))
    machine.TestCase.settings = settings(SETTINGS, max_examples=25)
    machine.TestCase().runTest()


@pytest.mark.parametrize("kind", ["shared", "lru", "tiny-lru"])
def test_shared_and_cached_stores_match_model(kind: str) -> None:
    """A store shared with other servers (no version index) and the cache tier (committed
    reads cached forever, in an LRU big enough for everything or one that evicts all the
    time) read exactly what the model says."""
    from dvidpy.cache import CachedVersionedStore

    factories = {
        "shared": lambda e: VersionedStore(e, shared=True),
        "lru": lambda e: CachedVersionedStore(e, cache_mb=1),
        "tiny-lru": lambda e: CachedVersionedStore(e, cache_mb=0.0003),  # ~3 entries
    }
    machine = make_machine(lambda: open_engine("memory"), factories[kind])
    machine.TestCase.settings = settings(SETTINGS, max_examples=30)
    machine.TestCase().runTest()
