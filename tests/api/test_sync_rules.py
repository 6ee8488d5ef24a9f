"""POST sync's rule of one source per type (``Datatype.one_sync_of``): an annotation or a
tarsupervoxels follows one labelmap, a labelvol one labelblk.

Bad inputs tried: a second source added to the first, two sources in one request, and an
instance of a type the datatype cannot follow; each is a 400 naming the rule, and the
instance's syncs are unchanged. ``replace=true`` switches to another source.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app


@pytest.fixture(scope="module")
def c() -> Iterator[TestClient]:
    with TestClient(create_app(Settings.memory())) as client:
        yield client


def syncs(c: TestClient, root: str, name: str) -> list[str]:
    return c.get(f"/api/node/{root}/{name}/info").json()["Base"]["Syncs"]


@pytest.mark.parametrize(("follower", "source"), [
    ("annotation", "labelmap"), ("tarsupervoxels", "labelmap"), ("labelvol", "labelblk")])
def test_one_source_per_type(c: TestClient, follower: str, source: str) -> None:
    root = c.post("/api/repos", json={}).json()["root"]
    for name, t in (("a", source), ("b", source), ("kv", "keyvalue"), ("f", follower)):
        r = c.post(f"/api/repo/{root}/instance", json={"typename": t, "dataname": name})
        assert r.status_code == 200, r.text
    sync = f"/api/node/{root}/f/sync"
    assert c.post(sync, json={"sync": "a"}).status_code == 200
    assert syncs(c, root, "f") == ["a"]
    for body in ({"sync": "b"}, {"sync": "a,b"}):
        r = c.post(sync, json=body)
        assert r.status_code == 400 and f"syncs to one {source}" in r.text, r.text
        assert syncs(c, root, "f") == ["a"]
    r = c.post(sync + "?replace=true", json={"sync": "a,b"})
    assert r.status_code == 400 and "['a', 'b']" in r.text
    r = c.post(sync, json={"sync": "kv"})
    assert r.status_code == 400 and "can't sync" in r.text
    assert syncs(c, root, "f") == ["a"]
    assert c.post(sync + "?replace=true", json={"sync": "b"}).status_code == 200
    assert syncs(c, root, "f") == ["b"]
