"""Property test: :meth:`VersionedStore.diff` against the plain model over random DAGs.

The versioned-store state machine of ``test_versioned_model`` (branches, merges, puts,
deletes, batches, store reopen, index rebuild) gains raw writes behind the store's back
(marked with ``add_versions``, as a transfer does) and one more invariant: for every pair
of nodes, the diff is exactly the keys whose model reads differ, with both values, plus
the keys written between the two nodes whose read conflicts on a side (as ``CONFLICT``;
a conflict both sides inherit unchanged is not a difference)."""

from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from test_versioned_model import SETTINGS, TKEYS, VALUES, make_machine, model_read

from dvidpy.errors import Conflict
from dvidpy.keys import data_key
from dvidpy.versioned import CONFLICT, pack_tkeys, unpack_tkeys
from storage import open_engine


def make_diff_machine(engine_factory):
    base = make_machine(engine_factory)

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


@given(st.lists(st.binary(max_size=300), max_size=50))
def test_written_keys_codec_round_trips(tks: list[bytes]) -> None:
    assert list(unpack_tkeys(pack_tkeys(tks))) == tks
