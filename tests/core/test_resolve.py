"""``RepoManager.resolve_merge`` / ``VersionedStore.resolve_plan`` against a plain model.

The model keeps ``{(version, tkey): value | TOMB}`` and a networkx graph, and answers a read
with the merge rule of :mod:`dvidpy.versioned` (maximal revisions; several live ones are a
conflict), returning the winning *revision*. Expected value at the resolve's merge child,
per key, with parents in priority order (DVID's outcome, see ``resolve_plan``): a parent's
winning revision is *stale* when an earlier parent's ancestry holds a revision of the key
written at a descendant version; the first parent whose winner is live and not stale wins;
none → absent. A parent whose read conflicts before the winner → the resolve fails and
creates nothing.
"""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.keyvalue import encode_key
from dvidpy.config import Settings
from dvidpy.errors import BadRequest, Conflict
from dvidpy.repo import RESOLVE_NOTE, Repo, RepoManager

TOMB = object()
CONFLICT = "conflict"
KEYS = ["a", "ab", "b", "c"]
TKS = [encode_key(k) for k in KEYS]


# ----- model ------------------------------------------------------------------------------


def model_win(graph: nx.DiGraph, writes: dict, versions: set[int], tk: bytes):
    """Winning ``(version, value|TOMB)`` among revisions at ``versions``, None, or CONFLICT."""
    cands = {v for v in versions if (v, tk) in writes}
    maximal = {c for c in cands if not any(c in nx.ancestors(graph, d) for d in cands - {c})}
    if len(maximal) == 1:
        v = next(iter(maximal))
        return v, writes[(v, tk)]
    live = [m for m in maximal if writes[(m, tk)] is not TOMB]
    if len(live) > 1:
        return CONFLICT
    if not live:
        return None
    return live[0], writes[(live[0], tk)]


def anc(graph: nx.DiGraph, v: int) -> set[int]:
    return nx.ancestors(graph, v) | {v}


def is_live(w) -> bool:
    return isinstance(w, tuple) and w[1] is not TOMB


def value(w):
    if w == CONFLICT:
        return CONFLICT
    return w[1] if is_live(w) else None


def expected_after_resolve(graph, writes, parents: list[int], tk: bytes):
    """Value at the resolve's merge child, or raise Conflict when resolve must fail."""
    newer_seen: set[int] = set()  # versions with revisions in earlier parents' ancestries
    for p in parents:
        w = model_win(graph, writes, anc(graph, p), tk)
        if w == CONFLICT:
            raise Conflict("a parent conflicts before any parent wins")
        if is_live(w) and not any(w[0] in nx.ancestors(graph, r) for r in newer_seen):
            return w[1]
        newer_seen |= {v for v in anc(graph, p) if (v, tk) in writes}
    return None


# ----- fixture helpers --------------------------------------------------------------------


class World:
    """A repo with a versioned keyvalue ``kv`` and an unversioned ``u``, plus the model."""

    def __init__(self) -> None:
        self.mgr = RepoManager(Settings.memory())
        self.repo: Repo = self.mgr.create_repo()
        root = self.repo.dag.root
        self.mgr.new_instance(self.repo, root, {"typename": "keyvalue", "dataname": "kv"})
        self.mgr.new_instance(self.repo, root, {"typename": "keyvalue", "dataname": "u",
                                                "versioned": "false"})
        self.kv = self.repo.instances["kv"]
        self.graph = nx.DiGraph()
        self.graph.add_node(root.version)
        self.writes: dict = {}

    def node(self, v: int):
        return self.repo.dag.node(v)

    def put(self, v: int, tk: bytes, val: bytes) -> None:
        self.kv.store.put(self.mgr.context(self.kv, self.node(v)), tk, val)
        self.writes[(v, tk)] = val

    def delete(self, v: int, tk: bytes) -> None:
        self.kv.store.delete(self.mgr.context(self.kv, self.node(v)), tk)
        self.writes[(v, tk)] = TOMB

    def commit(self, v: int) -> None:
        self.mgr.commit(self.repo, self.node(v))

    def newversion(self, p: int) -> int:
        c = self.mgr.new_version(self.repo, self.node(p))
        self.graph.add_edge(p, c.version)
        return c.version

    def branch(self, p: int) -> int:
        c = self.mgr.new_branch(self.repo, self.node(p), f"br{len(self.repo.dag.nodes)}")
        self.graph.add_edge(p, c.version)
        return c.version

    def merge(self, ps: list[int]) -> int:
        c = self.mgr.merge(self.repo, [self.node(p) for p in ps])
        for p in ps:
            self.graph.add_edge(p, c.version)
        return c.version

    def read(self, v: int, tk: bytes):
        try:
            return self.kv.store.get(self.mgr.context(self.kv, self.node(v)), tk)
        except Conflict:
            return CONFLICT

    def snapshot(self) -> dict:
        return {(v, tk): self.read(v, tk) for v in self.repo.dag.nodes for tk in TKS}

    def resolve(self, ps: list[int], data: tuple[str, ...] = ("kv",), note: str = "r") -> int:
        m = self.mgr.resolve_merge(self.repo, [self.node(p) for p in ps], list(data), note)
        return m.version


def check_resolved(w: World, ps: list[int]) -> None:
    """Resolve ``ps`` and compare every key at the merge child with the model."""
    before = w.snapshot()
    n_before = len(w.repo.dag.nodes)
    try:
        want = {tk: expected_after_resolve(w.graph, w.writes, ps, tk) for tk in TKS}
    except Conflict:
        with pytest.raises(Conflict):
            w.resolve(ps)
        assert len(w.repo.dag.nodes) == n_before
        assert w.snapshot() == before
        return
    m = w.resolve(ps)
    node = w.node(m)
    assert node.note == "r" and not node.locked
    assert len(node.parents) == len(ps)
    ext = 0
    for p, q in zip(ps, node.parents, strict=True):
        if p != q:  # a child of p holding the deletions
            ext += 1
            e = w.node(q)
            assert e.parents == [p] and e.locked and e.note == RESOLVE_NOTE
            assert e.branch.startswith(f"conflict-{w.node(p).uuid}") and e.log == []
    assert ext <= len(ps) - 1 and node.parents[0] == ps[0]
    assert len(w.repo.dag.nodes) == n_before + 1 + ext
    # existing versions are untouched
    assert {k: w.read(*k) for k in before} == before
    ctx = w.mgr.context(w.kv, node)
    got = {tk: w.read(m, tk) for tk in TKS}
    assert got == want
    assert list(w.kv.store.scan(ctx, b"", None)) == sorted(
        (tk, v) for tk, v in want.items() if v is not None)


# ----- scenarios --------------------------------------------------------------------------


def two_branches() -> tuple[World, int, int, int]:
    """root writes a,b,c; A and B branch from it with overlapping edits."""
    w = World()
    r = w.repo.dag.root.version
    for tk, v in zip(TKS, [b"ra", b"rab", b"rb", b"rc"], strict=True):
        w.put(r, tk, v)
    w.commit(r)
    a, b = w.newversion(r), w.branch(r)
    w.put(a, TKS[0], b"A")        # a: both changed -> conflict, A wins
    w.put(b, TKS[0], b"B")
    w.put(b, TKS[1], b"B-only")   # ab: only B changed it
    w.delete(a, TKS[2])           # b: A deleted, B untouched
    w.put(b, TKS[3], b"B")        # c: B changed, A untouched
    w.delete(a, TKS[3])           #    and A deleted it: live only at B -> B's value
    w.commit(a)
    w.commit(b)
    return w, r, a, b


def test_plain_merge_conflicts_and_resolve_fixes_it() -> None:
    w, _, a, b = two_branches()
    m = w.merge([a, b])
    assert w.read(m, TKS[0]) == CONFLICT
    mr = w.resolve([a, b])
    assert [w.read(mr, tk) for tk in TKS] == [b"A", b"rab", None, b"B"]
    # 'ab': A never changed it, but its winner (the root's value) is live and B's differs,
    # so A wins (DVID compares winning revisions); B's child holds a copy of the root value
    # because a tombstone there would also hide the root's revision.
    e = w.node(w.node(mr).parents[1])
    assert e.parents == [b]
    assert w.read(e.version, TKS[0]) is None and w.read(e.version, TKS[1]) == b"rab"
    # 'b': A's deletion beats the root value B still sees; 'c': only B has a value


def test_priority_order_matters() -> None:
    w, _, a, b = two_branches()
    mr = w.resolve([b, a])
    # 'b': B (first) still sees the root's value; A's later deletion loses (DVID: same)
    assert [w.read(mr, tk) for tk in TKS] == [b"B", b"B-only", b"rb", b"B"]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_two_branches_match_model(order: tuple[int, int]) -> None:
    w, _, a, b = two_branches()
    check_resolved(w, [(a, b)[i] for i in order])


def test_keys_only_on_one_side_stay_and_no_conflict_means_no_extension() -> None:
    w = World()
    r = w.repo.dag.root.version
    w.commit(r)
    a, b = w.newversion(r), w.branch(r)
    w.put(a, TKS[0], b"a")
    w.put(b, TKS[1], b"b")
    w.commit(a)
    w.commit(b)
    n = len(w.repo.dag.nodes)
    m = w.resolve([a, b])
    assert w.node(m).parents == [a, b]  # nothing to delete: a plain merge
    assert len(w.repo.dag.nodes) == n + 1
    assert w.read(m, TKS[0]) == b"a" and w.read(m, TKS[1]) == b"b"


def test_three_parents() -> None:
    w = World()
    r = w.repo.dag.root.version
    w.put(r, TKS[3], b"root")
    w.commit(r)
    a, b, c = w.newversion(r), w.branch(r), w.branch(r)
    w.put(b, TKS[0], b"b")        # only B and C have 'a': B wins over C
    w.put(c, TKS[0], b"c")
    w.put(a, TKS[1], b"a")        # all three differ: A wins
    w.put(b, TKS[1], b"b")
    w.put(c, TKS[1], b"c")
    w.put(c, TKS[2], b"c")        # only C
    w.put(c, TKS[3], b"c")        # C changed the root's value, A and B did not
    for v in (a, b, c):
        w.commit(v)
    plain = w.merge([a, b, c])
    assert w.read(plain, TKS[0]) == CONFLICT and w.read(plain, TKS[1]) == CONFLICT
    m = w.resolve([a, b, c])
    assert [w.read(m, tk) for tk in TKS] == [b"b", b"a", b"c", b"root"]
    ps = w.node(m).parents
    assert ps[0] == a and ps[1] != b and ps[2] != c  # B and C each got a deletion child
    w2 = World()  # same thing against the model
    r2 = w2.repo.dag.root.version
    w2.put(r2, TKS[3], b"root")
    w2.commit(r2)
    a2, b2, c2 = w2.newversion(r2), w2.branch(r2), w2.branch(r2)
    for v, tk, val in [(b2, 0, b"b"), (c2, 0, b"c"), (a2, 1, b"a"), (b2, 1, b"b"),
                       (c2, 1, b"c"), (c2, 2, b"c"), (c2, 3, b"c")]:
        w2.put(v, TKS[tk], val)
    for v in (a2, b2, c2):
        w2.commit(v)
    check_resolved(w2, [c2, a2, b2])


def test_resolving_a_merge_parent_with_its_own_conflict() -> None:
    w, _, a, b = two_branches()
    m = w.merge([a, b])
    w.commit(m)  # m's reads of 'a' conflict
    r = w.repo.dag.root.version
    c = w.branch(r)
    w.put(c, TKS[1], b"C")
    w.commit(c)
    # m first: its own conflict on 'a' has no higher-priority value -> 400, nothing made
    check_resolved(w, [m, c])
    with pytest.raises(Conflict, match="Conflict deletion error for data 'kv'"):
        w.resolve([m, c])
    # c first: c's (root) value of 'a' wins, m's conflict is hidden in a child of m
    check_resolved(w, [c, m])


def test_unversioned_instances_are_skipped_and_validation() -> None:
    w, r, a, b = two_branches()
    root = w.node(r)
    u = w.repo.instances["u"]
    u.store.put(w.mgr.context(u, w.node(a)), TKS[0], b"u")
    n = len(w.repo.dag.nodes)
    bad = [
        ([a], ("kv",)),                 # < 2 parents
        ([a, a], ("kv",)),              # not distinct
        ([a, b], ()),                   # no data
        ([a, b], ("kv", "ghost")),      # unknown instance
    ]
    for ps, data in bad:
        with pytest.raises(BadRequest):
            w.resolve(ps, data)
    open_node = w.newversion(a)
    with pytest.raises(BadRequest, match="not committed"):
        w.resolve([open_node, b])
    other = w.mgr.create_repo()
    with pytest.raises(BadRequest, match="not in repo"):
        w.mgr.resolve_merge(w.repo, [w.node(a), other.dag.root], ["kv"])
    assert len(w.repo.dag.nodes) == n + 1  # only the open node made above
    m = w.resolve([a, b], ("u",))           # unversioned only: nothing to delete
    assert w.node(m).parents == [a, b]
    assert w.read(m, TKS[0]) == CONFLICT
    assert u.store.get(w.mgr.context(u, w.node(m)), TKS[0]) == b"u"
    assert root.locked


def test_repeat_resolve_gets_a_unique_branch_and_quiet_instances_are_not_scanned() -> None:
    w, r, a, b = two_branches()
    w.mgr.new_instance(w.repo, w.node(w.newversion(a)), {"typename": "keyvalue",
                                                         "dataname": "quiet"})
    quiet = w.repo.instances["quiet"]
    # keys only in the root (a common ancestor): the parents cannot differ on them
    ctx = w.mgr.context(quiet, w.node(r))
    ctx.allow_locked = True  # as a fullwrite server may
    quiet.store.put(ctx, TKS[0], b"q")
    scans: list[bytes] = []
    eng = quiet.store.engine
    real_scan = eng.scan

    def spy(rng, **kw):
        scans.append(rng.start[:5])
        return real_scan(rng, **kw)

    eng.scan = spy  # type: ignore[method-assign]
    try:
        m1 = w.resolve([a, b], ("kv", "quiet"))
    finally:
        del eng.scan
    prefix = lambda inst: b"\x01" + inst.meta.instance_id.to_bytes(4, "big")  # noqa: E731
    assert prefix(quiet) not in scans and prefix(w.kv) in scans
    m2 = w.resolve([a, b])
    e1, e2 = w.node(w.node(m1).parents[1]), w.node(w.node(m2).parents[1])
    assert e1.branch == f"conflict-{w.node(b).uuid}"
    assert e2.branch == f"conflict-{w.node(b).uuid}-2"
    assert w.read(m1, TKS[0]) == w.read(m2, TKS[0]) == b"A"
    assert quiet.store.get(w.mgr.context(quiet, w.node(m1)), TKS[0]) == b"q"


def test_failed_save_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    w, _, a, b = two_branches()
    n, before = len(w.repo.dag.nodes), w.snapshot()
    uuids = set(w.mgr._by_uuid)

    def boom(repo: Repo) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(w.mgr, "save_repo", boom)
    with pytest.raises(OSError):
        w.resolve([a, b])
    monkeypatch.undo()
    assert len(w.repo.dag.nodes) == n and set(w.mgr._by_uuid) == uuids
    assert w.node(a).children == [] and w.node(b).children == []
    assert w.snapshot() == before
    m = w.resolve([a, b])  # works afterwards; burned VersionIDs are skipped
    assert w.read(m, TKS[0]) == b"A"


def test_persisted_across_restart(tmp_path) -> None:
    s = Settings.default(str(tmp_path / "db"))
    mgr = RepoManager(s)
    repo = mgr.create_repo()
    root = repo.dag.root
    kv = mgr.new_instance(repo, root, {"typename": "keyvalue", "dataname": "kv"})
    mgr.commit(repo, root)
    a = mgr.new_version(repo, root)
    b = mgr.new_branch(repo, root, "b")
    kv.store.put(mgr.context(kv, a), TKS[0], b"a")
    kv.store.put(mgr.context(kv, b), TKS[0], b"b")
    mgr.commit(repo, a)
    mgr.commit(repo, b)
    m = mgr.resolve_merge(repo, [b, a], ["kv"], "note")
    uuid = m.uuid
    mgr.close()
    mgr2 = RepoManager(s)
    repo2, m2 = mgr2.resolve(uuid[:10])
    kv2 = repo2.instances["kv"]
    assert kv2.store.get(mgr2.context(kv2, m2), TKS[0]) == b"b"
    assert m2.note == "note" and len(repo2.dag.nodes) == 5
    mgr2.commit(repo2, m2)
    c = mgr2.new_version(repo2, m2)  # counters persisted
    assert c.version > m2.version
    mgr2.close()


# ----- property test ----------------------------------------------------------------------

VALS = st.sampled_from([b"x", b"y", b"z"])  # few values: equal bytes at different revisions


def _edit(draw: st.DrawFn, w: World, v: int) -> None:
    for _ in range(draw(st.integers(0, 3))):
        tk = draw(st.sampled_from(TKS))
        if draw(st.integers(0, 3)):
            w.put(v, tk, draw(VALS))
        else:
            w.delete(v, tk)


@st.composite
def programs(draw: st.DrawFn) -> tuple[World, list[int]]:
    """A random DAG (branches, new versions, merges) with edits, and 2-3 locked parents."""
    w = World()
    r = w.repo.dag.root.version
    _edit(draw, w, r)
    w.commit(r)
    open_nodes: list[int] = []
    for _ in range(draw(st.integers(2, 12))):
        locked = sorted(v for v, n in w.repo.dag.nodes.items() if n.locked)
        op = draw(st.sampled_from(["branch", "branch", "newversion", "merge", "merge",
                                   "commit", "commit", "edit", "conflicted_merge"]))
        if op == "commit" and open_nodes:
            v = draw(st.sampled_from(open_nodes))
            w.commit(v)
            open_nodes.remove(v)
        elif op == "conflicted_merge" and len(w.repo.dag.nodes) < 9:
            # two branches writing one key differently, merged: the merge's reads conflict
            base = draw(st.sampled_from(locked))
            tk = draw(st.sampled_from(TKS))
            sides = [w.branch(base), w.branch(base)]
            for v, val in zip(sides, (b"p", b"q"), strict=True):
                w.put(v, tk, val)
                _edit(draw, w, v)
                w.commit(v)
            open_nodes.append(w.merge(sides))
        elif op == "edit" and open_nodes:
            _edit(draw, w, draw(st.sampled_from(open_nodes)))
        elif op == "merge" and len(locked) >= 2:
            pool = locked[1:] if len(locked) >= 3 else locked  # mostly not the root
            ps = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=3, unique=True))
            v = w.merge(ps)
            _edit(draw, w, v)
            open_nodes.append(v)
        elif op == "newversion":
            free = [v for v in locked if not any(
                w.node(c).branch == w.node(v).branch for c in w.node(v).children)]
            if free:
                v = w.newversion(draw(st.sampled_from(free)))
                _edit(draw, w, v)
                open_nodes.append(v)
        else:
            v = w.branch(draw(st.sampled_from(locked)))
            _edit(draw, w, v)
            open_nodes.append(v)
    for v in open_nodes:
        if draw(st.integers(0, 4)):
            w.commit(v)
    locked = sorted(v for v, n in w.repo.dag.nodes.items() if n.locked)
    if len(locked) < 2:
        c = w.branch(locked[0])
        _edit(draw, w, c)
        w.commit(c)
        locked.append(c)
    ps = draw(st.lists(st.sampled_from(locked), min_size=2, max_size=3, unique=True))
    return w, ps


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_resolve_matches_model(prog: tuple[World, list[int]]) -> None:
    w, ps = prog
    check_resolved(w, ps)
    w.mgr.close()
