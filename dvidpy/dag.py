"""The version DAG of one repo: nodes named by UUIDs, commit (lock), newversion, branch, merge.

Rules (dvid-api.md §3.3, §6):

* A new repo has one open root node on branch ``master`` (stored as ``""``).
* ``commit`` locks an open node; committing a locked node is an error.
* ``newversion`` makes a child on the parent's branch; the parent must be locked and must
  not already have a child on that branch, so every branch is a chain with one HEAD.
* ``branch`` makes a child on a new branch whose name is non-empty, not ``master`` and
  unused anywhere in the DAG; the parent must be locked.
* ``merge`` makes a node with two or more locked parents (conflict-free merge: conflicts
  appear at read time, see :mod:`dvidpy.versioned`).

The DAG is a pure in-memory structure (a :class:`networkx.DiGraph` from parent to child
plus :class:`Node` records); :class:`dvidpy.repo.RepoManager` persists it. Ancestry is
cached per version forever: a node's parents never change once it exists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import networkx as nx

from dvidpy.errors import BadRequest, LockedNodeError

UUID_RE = re.compile(r"^[0-9a-f]{32}\Z")
MASTER = ""


def now() -> datetime:
    """Current time, timezone-aware (local zone, as DVID's Go timestamps are)."""
    return datetime.now(timezone.utc).astimezone()


def timestamp(t: datetime | None = None) -> str:
    """RFC3339 with fractional seconds and numeric zone, like Go's ``time.Time`` JSON."""
    return (t or now()).isoformat()


def log_line(msg: str) -> str:
    """A log entry as DVID stores it: RFC3339 timestamp, two spaces, the message."""
    return f"{timestamp()}  {msg}"


def branch_name(name: str) -> str:
    """Normalize a user branch name (``master`` is the empty string internally)."""
    return "" if name == "master" else name


@dataclass
class Node:
    """One version of a repo."""

    uuid: str
    version: int
    parents: list[int] = field(default_factory=list)  # parents[0] = default ancestry path
    children: list[int] = field(default_factory=list)
    branch: str = MASTER
    note: str = ""
    log: list[str] = field(default_factory=list)
    locked: bool = False
    created: str = field(default_factory=timestamp)
    updated: str = field(default_factory=timestamp)

    def to_json(self) -> dict[str, Any]:
        """The node object of ``GET /api/repo/{uuid}/info`` (``DAG.Nodes`` values)."""
        return {
            "Branch": self.branch,
            "Note": self.note,
            "Log": list(self.log),
            "UUID": self.uuid,
            "VersionID": self.version,
            "Locked": self.locked,
            "Parents": list(self.parents),
            "Children": list(self.children),
            "Created": self.created,
            "Updated": self.updated,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Node:
        """Inverse of :meth:`to_json`."""
        return cls(
            uuid=d["UUID"],
            version=int(d["VersionID"]),
            parents=[int(p) for p in d["Parents"]],
            children=[int(c) for c in d["Children"]],
            branch=d["Branch"],
            note=d["Note"],
            log=list(d["Log"]),
            locked=bool(d["Locked"]),
            created=d["Created"],
            updated=d["Updated"],
        )

    def touch(self) -> None:
        """Mark the node as updated now."""
        self.updated = timestamp()


@dataclass(frozen=True, slots=True)
class Ancestry:
    """Ancestors of a version, for copy-on-write resolution.

    ``order`` lists the version itself first, then ancestors breadth-first following parents
    in priority order. ``linear`` is True when no node on the way has several parents; then
    the first version of ``order`` that holds a revision wins. ``pos`` maps each member to its
    index in ``order`` (use it for membership tests).
    """

    order: tuple[int, ...]
    pos: dict[int, int]
    linear: bool


class VersionDAG:
    """Nodes of one repo, keyed by VersionID, with the parent→child graph."""

    def __init__(self, root: Node) -> None:
        self.root_version = root.version
        self.nodes: dict[int, Node] = {root.version: root}
        self.by_uuid: dict[str, Node] = {root.uuid: root}
        self.graph = nx.DiGraph()
        self.graph.add_node(root.version)
        self._ancestry: dict[int, Ancestry] = {}

    # ----- lookup -----------------------------------------------------------------------

    @property
    def root(self) -> Node:
        """The repo's first node."""
        return self.nodes[self.root_version]

    def node(self, version: int) -> Node:
        """Node by VersionID (KeyError if absent)."""
        return self.nodes[version]

    def ancestry(self, version: int) -> Ancestry:
        """Cached :class:`Ancestry` of ``version``."""
        a = self._ancestry.get(version)
        if a is not None:
            return a
        order: list[int] = []
        seen: set[int] = set()
        frontier = [version]
        linear = True
        while frontier:
            nxt: list[int] = []
            for v in frontier:
                if v in seen:
                    continue
                seen.add(v)
                order.append(v)
                ps = self.nodes[v].parents
                if len(ps) > 1:
                    linear = False
                nxt.extend(ps)
            frontier = nxt
        a = Ancestry(tuple(order), {v: i for i, v in enumerate(order)}, linear)
        self._ancestry[version] = a
        return a

    def is_ancestor(self, a: int, b: int) -> bool:
        """True when ``a`` is ``b`` or one of its ancestors."""
        return a in self.ancestry(b).pos

    def branch_leaf(self, branch: str) -> Node:
        """HEAD of ``branch`` (``""``/``master`` for the default branch)."""
        branch = branch_name(branch)
        on_branch = [n for n in self.nodes.values() if n.branch == branch]
        if not on_branch:
            raise BadRequest(f"no branch named {branch or 'master'!r} in repo {self.root.uuid}")
        leaves = [
            n
            for n in on_branch
            if not any(self.nodes[c].branch == branch for c in n.children)
        ]
        if len(leaves) != 1:
            raise BadRequest(
                f"branch {branch or 'master'!r} has {len(leaves)} leaves; cannot pick a HEAD"
            )
        return leaves[0]

    def branch_versions(self, branch: str) -> list[Node]:
        """Nodes from the HEAD of ``branch`` back to the root along first parents."""
        out = [self.branch_leaf(branch)]
        while out[-1].parents:
            out.append(self.nodes[out[-1].parents[0]])
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``DAG`` member of repo info: root UUID and nodes keyed by UUID."""
        return {
            "Root": self.root.uuid,
            "Nodes": {n.uuid: n.to_json() for n in self.nodes.values()},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VersionDAG:
        """Inverse of :meth:`to_json`."""
        nodes = [Node.from_json(x) for x in d["Nodes"].values()]
        root = next(n for n in nodes if n.uuid == d["Root"])
        dag = cls(root)
        for n in nodes:
            if n is root:
                continue
            dag.nodes[n.version] = n
            dag.by_uuid[n.uuid] = n
            dag.graph.add_node(n.version)
        for n in nodes:
            for p in n.parents:
                dag.graph.add_edge(p, n.version)
        return dag

    # ----- changes ----------------------------------------------------------------------

    def commit(self, node: Node, note: str = "", log: Sequence[str] = ()) -> None:
        """Lock ``node``, set its note when non-empty, append timestamped log lines."""
        if node.locked:
            raise LockedNodeError(f"node {node.uuid} is already committed (locked)")
        node.locked = True
        if note:
            node.note = note
        node.log.extend(log_line(x) for x in log)
        node.touch()

    def _add_child(self, parents: list[Node], uuid: str, version: int, branch: str,
                   note: str) -> Node:
        child = Node(uuid=uuid, version=version, parents=[p.version for p in parents],
                     branch=branch, note=note)
        self.nodes[version] = child
        self.by_uuid[uuid] = child
        self.graph.add_node(version)
        for p in parents:
            p.children.append(version)
            p.touch()
            self.graph.add_edge(p.version, version)
        if not nx.is_directed_acyclic_graph(self.graph):  # cannot happen; keep it honest
            raise RuntimeError("version graph became cyclic")
        return child

    def new_version(self, parent: Node, uuid: str, version: int, note: str = "") -> Node:
        """A child of ``parent`` on the parent's branch."""
        if not parent.locked:
            raise BadRequest(
                f"can't make a new version from node {parent.uuid}: it is not committed (locked)"
            )
        if any(self.nodes[c].branch == parent.branch for c in parent.children):
            raise BadRequest(
                f"node {parent.uuid} already has a child on branch "
                f"{parent.branch or 'master'!r}; use /branch to start a new branch"
            )
        return self._add_child([parent], uuid, version, parent.branch, note)

    def new_branch(self, parent: Node, name: str, uuid: str, version: int,
                   note: str = "") -> Node:
        """A child of ``parent`` starting the new branch ``name``."""
        if not name or name == "master":
            raise BadRequest("a new branch needs a name other than 'master'")
        if not parent.locked:
            raise BadRequest(
                f"can't branch from node {parent.uuid}: it is not committed (locked)"
            )
        if any(n.branch == name for n in self.nodes.values()):
            raise BadRequest(f"branch name {name!r} is already used in this repo")
        return self._add_child([parent], uuid, version, name, note)

    def discard_leaf(self, node: Node) -> None:
        """Undo the creation of ``node`` (a childless node): for rolling back a multi-node
        operation that failed before it was persisted."""
        if node.children:
            raise ValueError(f"node {node.uuid} has children and cannot be discarded")
        for p in node.parents:
            self.nodes[p].children.remove(node.version)
        self.graph.remove_node(node.version)
        del self.nodes[node.version]
        del self.by_uuid[node.uuid]
        self._ancestry.pop(node.version, None)

    def merge(self, parents: Sequence[Node], uuid: str, version: int, note: str = "") -> Node:
        """A node whose parents are ``parents`` (≥ 2, all locked, all distinct)."""
        if len(parents) < 2:
            raise BadRequest("a merge needs at least two parents")
        if len({p.version for p in parents}) != len(parents):
            raise BadRequest("merge parents must be distinct")
        for p in parents:
            if not p.locked:
                raise BadRequest(f"merge parent {p.uuid} is not committed (locked)")
        return self._add_child(list(parents), uuid, version, parents[0].branch, note)
