"""Grants shared by processes over one metadata store (``--workers``, coordinated servers).

Two :class:`GrantStore` (and :class:`GroupStore`) objects over one real LMDB folder stand
for two processes. Tried: a grant taken away in one process (refused by the other from its
next read, though it had the grant cached); a member added to and removed from an API
group in one process (counted by the other from its next lookup); many concurrent changes
to one repo's grants from both (none lost); an unshared store keeping its cache; and a
hypothesis model of update/remove sequences.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvidpy.auth.stores import GrantStore, GroupStore
from storage import open_engine


@pytest.fixture
def eng(tmp_path: Path) -> Any:
    e = open_engine("lmdb", str(tmp_path / "db"))
    yield e
    e.close()


def test_a_revoked_grant_stops_at_once_in_the_other_process(eng: Any) -> None:
    a, b = GrantStore(eng, shared=True), GrantStore(eng, shared=True)
    a.update("r", {"user:alice": "write"})
    assert b.get("r")["grants"] == {"user:alice": "write"}  # now cached in b
    a.remove("r", ["user:alice"])
    assert a.get("r")["grants"] == {}  # this process
    assert b.get("r")["grants"] == {}  # the other, at its next read
    a.update("r", {"user:bob": "read"})
    assert b.get("r")["grants"] == {"user:bob": "read"}


def test_group_membership_changes_count_at_once_in_the_other_process(eng: Any) -> None:
    a, b = GroupStore(eng), GroupStore(eng)
    assert b.groups_of("carol") == frozenset()  # b has built its index
    a.put({"name": "lab", "owner": "x", "members": ["carol"], "maintainers": []})
    assert b.groups_of("carol") == {"lab"}
    a.put({"name": "lab", "owner": "x", "members": [], "maintainers": []})
    assert b.groups_of("carol") == frozenset()
    a.put({"name": "lab2", "owner": "x", "members": ["carol"], "maintainers": []})
    assert b.groups_of("carol") == {"lab2"}
    a.delete("lab2")
    assert b.groups_of("carol") == frozenset()


def test_unshared_store_keeps_its_cache(eng: Any) -> None:
    a, b = GrantStore(eng), GrantStore(eng)
    b.get("r")
    a.update("r", {"user:bob": "read"})
    time.sleep(0.05)
    assert b.get("r")["grants"] == {}  # one process per store: nothing else changes it


def test_concurrent_changes_from_two_processes_all_land(eng: Any) -> None:
    stores = [GrantStore(eng, shared=True), GrantStore(eng, shared=True)]

    def grant(k: int) -> None:
        for i in range(25):
            stores[k].update("r", {f"user:u{k}x{i}": "read"})

    ts = [threading.Thread(target=grant, args=(k,)) for k in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    fresh = GrantStore(eng, shared=True)
    assert len(fresh.get("r")["grants"]) == 50


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.booleans(), st.sampled_from("abc"),
                          st.sampled_from(["read", "write", "admin"])), max_size=20))
def test_changes_against_a_plain_model(tmp_path_factory: Any, ops: list[Any]) -> None:
    e = open_engine("lmdb", str(tmp_path_factory.mktemp("g")))
    try:
        stores = [GrantStore(e, shared=True), GrantStore(e, shared=True)]
        model: dict[str, str] = {}
        for who, add, user, level in ops:
            if add:
                stores[who].update("r", {f"user:{user}": level})
                model[f"user:{user}"] = level
            else:
                stores[who].remove("r", [f"user:{user}"])
                model.pop(f"user:{user}", None)
            for s in stores:
                assert s.get("r")["grants"] == model
    finally:
        e.close()
