"""Version DAG rules and UUID resolution (dvid-api.md §2.2, §3.3)."""

from __future__ import annotations

import pytest

from dvidpy.config import Settings
from dvidpy.dag import Node, VersionDAG
from dvidpy.errors import BadRequest, LockedNodeError
from dvidpy.repo import RepoManager


def make_dag() -> VersionDAG:
    return VersionDAG(Node(uuid="a" * 32, version=1))


def test_newversion_requires_locked_parent_and_one_child_per_branch() -> None:
    dag = make_dag()
    root = dag.root
    with pytest.raises(BadRequest, match="not committed"):
        dag.new_version(root, "b" * 32, 2)
    dag.commit(root, "first", ["line"])
    assert root.locked and root.note == "first" and root.log[0].endswith("  line")
    with pytest.raises(LockedNodeError):
        dag.commit(root)
    child = dag.new_version(root, "b" * 32, 2)
    assert child.parents == [1] and root.children == [2] and child.branch == ""
    with pytest.raises(BadRequest, match="already has a child"):
        dag.new_version(root, "c" * 32, 3)


def test_branch_names_unique_and_not_master() -> None:
    dag = make_dag()
    dag.commit(dag.root)
    with pytest.raises(BadRequest):
        dag.new_branch(dag.root, "master", "b" * 32, 2)
    with pytest.raises(BadRequest):
        dag.new_branch(dag.root, "", "b" * 32, 2)
    b = dag.new_branch(dag.root, "proof", "b" * 32, 2)
    assert b.branch == "proof"
    with pytest.raises(BadRequest, match="already used"):
        dag.new_branch(dag.root, "proof", "c" * 32, 3)
    assert dag.branch_leaf("proof") is b
    assert dag.branch_leaf("master") is dag.root


def test_merge_and_ancestry() -> None:
    dag = make_dag()
    dag.commit(dag.root)
    a = dag.new_version(dag.root, "b" * 32, 2)
    b = dag.new_branch(dag.root, "x", "c" * 32, 3)
    with pytest.raises(BadRequest, match="not committed"):
        dag.merge([a, b], "d" * 32, 4)
    dag.commit(a)
    dag.commit(b)
    with pytest.raises(BadRequest):
        dag.merge([a], "d" * 32, 4)
    m = dag.merge([a, b], "d" * 32, 4)
    anc = dag.ancestry(m.version)
    assert anc.order[0] == 4 and set(anc.order) == {1, 2, 3, 4} and not anc.linear
    assert dag.ancestry(2).linear and dag.ancestry(2).order == (2, 1)
    assert dag.is_ancestor(1, 4) and not dag.is_ancestor(2, 3)


def test_json_round_trip() -> None:
    dag = make_dag()
    dag.commit(dag.root, "n")
    dag.new_version(dag.root, "b" * 32, 2)
    again = VersionDAG.from_json(dag.to_json())
    assert again.to_json() == dag.to_json()
    assert again.ancestry(2).order == (2, 1)


def test_uuid_resolution_prefix_branch_and_ancestors() -> None:
    mgr = RepoManager(Settings.memory())
    repo = mgr.create_repo("r", root="ab" + "0" * 30)
    root = repo.dag.root
    mgr.commit(repo, root)
    c1 = mgr.new_version(repo, root, uuid="ab" + "1" * 30)
    mgr.commit(repo, c1)
    c2 = mgr.new_version(repo, c1, uuid="cd" + "2" * 30)
    assert mgr.resolve("cd")[1] is c2
    with pytest.raises(BadRequest, match="more than one"):
        mgr.resolve("ab")
    with pytest.raises(BadRequest, match="could not find"):
        mgr.resolve("ef")
    with pytest.raises(BadRequest, match="could not find"):
        mgr.resolve("CD")  # case-sensitive, as DVID
    assert mgr.resolve("ab0:master")[1] is c2
    assert mgr.resolve(":master")[1] is c2  # one repo on the server
    assert mgr.resolve("ab0:master~1")[1] is c1
    assert mgr.resolve("ab0:master~2")[1] is root
    with pytest.raises(BadRequest, match="past the root"):
        mgr.resolve("ab0:master~3")
    with pytest.raises(BadRequest):
        mgr.resolve("ab0:master~x")
    with pytest.raises(BadRequest, match="no branch"):
        mgr.resolve("ab0:nope")
    mgr.create_repo("second")
    with pytest.raises(BadRequest, match="2 repos"):
        mgr.resolve(":master")


def test_client_uuids_validated() -> None:
    mgr = RepoManager(Settings.memory())
    with pytest.raises(BadRequest, match="hexadecimal"):
        mgr.create_repo(root="xyz")
    with pytest.raises(BadRequest, match="hexadecimal"):
        mgr.create_repo(root="A" * 32)
    repo = mgr.create_repo(root="a" * 32)
    with pytest.raises(BadRequest, match="already exists"):
        mgr.create_repo(root="a" * 32)
    mgr.commit(repo, repo.dag.root)
    with pytest.raises(BadRequest, match="hexadecimal"):
        mgr.new_version(repo, repo.dag.root, uuid="not-hex")
    # a failed newversion left nothing behind
    assert len(repo.dag.nodes) == 1 and not repo.dag.root.children


def test_mutation_ids_increase_across_restart(tmp_path) -> None:
    s = Settings.default(str(tmp_path / "db"))
    mgr = RepoManager(s)
    repo = mgr.create_repo()
    ids = [mgr.next_mutation_id(repo) for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    mgr.close()
    mgr2 = RepoManager(s)
    repo2 = mgr2.repos[repo.root]
    assert mgr2.next_mutation_id(repo2) > ids[-1]
    mgr2.close()


def test_whole_uuids_resolve_like_prefixes() -> None:
    """A whole 32-character UUID (answered from the index) resolves to the node a prefix
    search finds, and a deleted or unknown one is still refused; a stored UUID longer than
    32 characters (never made here, possible in old metadata) turns the shortcut off, so
    a whole UUID that is a prefix of it is ambiguous, as DVID's prefix rule says."""
    mgr = RepoManager(Settings.memory())
    repo = mgr.create_repo("r", root="ab" + "0" * 30)
    mgr.commit(repo, repo.dag.root)
    child = mgr.new_version(repo, repo.dag.root, uuid="ab" + "0" * 29 + "1")
    for node in (repo.dag.root, child):
        assert mgr.resolve(node.uuid)[1] is node
        mgr._long_uuids = True  # the prefix search, for comparison
        assert mgr.resolve(node.uuid)[1] is node
        mgr._long_uuids = False
    with pytest.raises(BadRequest, match="could not find"):
        mgr.resolve("ab" + "0" * 29 + "2")
    assert mgr.resolve(child.uuid + "~1")[1] is repo.dag.root  # not a whole UUID: parsed
    long = Node(uuid=child.uuid + "ff", version=99)
    mgr._index_node(repo, long)
    with pytest.raises(BadRequest, match="more than one"):
        mgr.resolve(child.uuid)
    mgr._reindex()  # the long one is not in the DAG: gone again, shortcut back on
    assert not mgr._long_uuids and mgr.resolve(child.uuid)[1] is child
