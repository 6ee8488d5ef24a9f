"""Server, repo and node endpoints through the ASGI app (in process, memory engine)."""

from __future__ import annotations

from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app


def make_repo(c: TestClient) -> str:
    return c.post("/api/repos", json={"alias": "a", "description": "d"}).json()["root"]


def test_server_endpoints(c: TestClient) -> None:
    assert c.get("/api/heartbeat").text == "OK"
    info = c.get("/api/server/info").json()
    assert all(isinstance(v, str) for v in info.values()) and "Storage backend" in info
    assert "keyvalue" in c.get("/api/server/compiled-types").json()
    assert c.get("/api/server/types").json() == {}
    root = make_repo(c)
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    assert c.get("/api/server/types").json() == {
        "keyvalue": "github.com/janelia-flyem/dvid/datatype/keyvalue"}
    assert "keyvalue" in c.get("/api/help").text
    assert "keyrangevalues" in c.get("/api/help/keyvalue").text
    # every datatype's help is its module text, which lists its endpoints
    for typename, word in (("uint8blk", "subvolblocks"), ("labelmap", "sparsevol"),
                           ("roi", "ptquery"), ("annotation", "all-elements"),
                           ("labelsz", "threshold")):
        assert word in c.get(f"/api/help/{typename}").text, typename
    assert c.get("/api/help/nope").status_code == 400
    assert c.get("/api/load").json()["GET requests"] > 0
    r = c.options("/api/repos/info")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_repo_endpoints(c: TestClient) -> None:
    root = make_repo(c)
    assert c.head(f"/api/repo/{root}").status_code == 200
    assert c.head("/api/repo/0123").status_code == 400
    c.post(f"/api/repo/{root}/info", json={"alias": "renamed"})
    info = c.get(f"/api/repo/{root}/info").json()
    assert info["Alias"] == "renamed" and info["Description"] == "d"
    assert set(info) >= {"Root", "Log", "Properties", "DataInstances", "DAG", "MutationID",
                         "Created", "Updated"}
    c.post(f"/api/repo/{root}/log", json={"log": ["hello"]})
    assert c.get(f"/api/repo/{root}/log").json()["log"][-1].endswith("  hello")
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    assert "New data instance" in c.get(f"/api/repo/{root}/log").json()["log"][-1]
    assert c.post(f"/api/repo/{root}/log", json={"log": "x"}).status_code == 400
    assert c.get("/api/repos/info").json()[root]["Alias"] == "renamed"


def test_node_note_log_branch_merge_tag(c: TestClient) -> None:
    root = make_repo(c)
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    assert c.post(f"/api/node/{root}/note", json={"note": "n1"}).status_code == 200
    assert c.get(f"/api/node/{root}/note").json() == {"note": "n1"}
    c.post(f"/api/node/{root}/log", json={"log": ["l1", "l2"]})
    assert len(c.get(f"/api/node/{root}/log").json()["log"]) == 2
    c.post(f"/api/node/{root}/kv/key/k", content=b"root")
    assert c.post(f"/api/node/{root}/commit", json={"note": "done"}).status_code == 200
    assert c.get(f"/api/node/{root}/commit").json() == {"Locked": True}
    a = c.post(f"/api/node/{root}/newversion", json={"uuid": "a" * 32}).json()["child"]
    assert a == "a" * 32
    b = c.post(f"/api/node/{root}/branch", json={"branch": "side"}).json()["child"]
    c.post(f"/api/node/{a}/kv/key/k", content=b"from-a")
    c.post(f"/api/node/{b}/kv/key/other", content=b"from-b")
    c.post(f"/api/node/{a}/commit", json={})
    c.post(f"/api/node/{b}/commit", json={})
    # conflict-free merge: disjoint keys merge, both visible
    m = c.post(f"/api/repo/{root}/merge", json={"mergeType": "conflict-free",
                                                "parents": [a[:8], b], "note": "m"})
    assert m.status_code == 200, m.text
    child = m.json()["child"]
    assert c.get(f"/api/node/{child}/kv/key/k").content == b"from-a"
    assert c.get(f"/api/node/{child}/kv/key/other").content == b"from-b"
    node = c.get(f"/api/repo/{root}/info").json()["DAG"]["Nodes"][child]
    assert len(node["Parents"]) == 2
    assert c.post(f"/api/repo/{root}/merge", json={"parents": [a]}).status_code == 400
    assert c.post(f"/api/repo/{root}/merge", json={"mergeType": "other",
                                                   "parents": [a, b]}).status_code == 400
    assert c.get(f"/api/repo/{root}/branch-versions/side").json() == [b, root]
    assert c.get(f"/api/node/{root[:6]}:side/kv/key/other").content == b"from-b"
    # version tag: a committed child whose UUID is the tag itself
    t = c.post(f"/api/node/{a}/tag", json={"tag": "v1.0"}).json()
    assert t == {"child": "v1.0"}
    assert c.get("/api/node/v1.0/kv/key/k").content == b"from-a"
    assert c.get("/api/node/v1.0/status").json() == {"Locked": True}


def test_merge_conflict_surfaces_at_read(c: TestClient) -> None:
    root = make_repo(c)
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    c.post(f"/api/node/{root}/commit", json={})
    a = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    b = c.post(f"/api/node/{root}/branch", json={"branch": "x"}).json()["child"]
    c.post(f"/api/node/{a}/kv/key/k", content=b"a")
    c.post(f"/api/node/{b}/kv/key/k", content=b"b")
    c.post(f"/api/node/{a}/commit", json={})
    c.post(f"/api/node/{b}/commit", json={})
    m = c.post(f"/api/repo/{root}/merge", json={"parents": [a, b]}).json()["child"]
    r = c.get(f"/api/node/{m}/kv/key/k")
    assert r.status_code == 400 and "conflict" in r.text


def test_instance_tags_sync_blobstore(c: TestClient) -> None:
    root = make_repo(c)
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv",
                                               "Tags": "type=meshes,owner=me"})
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv2"})
    assert c.get(f"/api/node/{root}/kv/tags").json() == {
        "Tags": {"type": "meshes", "owner": "me"}}
    c.post(f"/api/node/{root}/kv/tags", json={"extra": "1"})
    assert c.get(f"/api/node/{root}/kv/tags").json()["Tags"]["extra"] == "1"
    c.post(f"/api/node/{root}/kv/tags?replace=true", json={"only": "x"})
    assert c.get(f"/api/node/{root}/kv/tags").json() == {"Tags": {"only": "x"}}
    assert c.post(f"/api/node/{root}/kv/tags", json={"n": 1}).status_code == 400
    # keyvalue subscribes to nothing: a sync is refused, as are unknown names
    assert c.post(f"/api/node/{root}/kv/sync", json={"sync": "kv2"}).status_code == 400
    assert c.post(f"/api/node/{root}/kv/sync", json={"sync": "ghost"}).status_code == 400
    assert c.get(f"/api/node/{root}/kv/info").json()["Base"]["Syncs"] == []
    ref = c.post(f"/api/node/{root}/kv/blobstore", content=b"blob!").json()["reference"]
    c.post(f"/api/node/{root}/commit", json={})
    # blobstore is not versioned and works on locked nodes, as in DVID
    ref2 = c.post(f"/api/node/{root}/kv/blobstore", content=b"two").json()["reference"]
    assert c.get(f"/api/node/{root}/kv/blobstore/{ref}").content == b"blob!"
    assert c.get(f"/api/node/{root}/kv/blobstore/{ref2}").content == b"two"
    assert c.get(f"/api/node/{root}/kv/blobstore/nope").status_code == 404
    # blobs read the same at every version: a child, and a blob posted at the child is
    # visible from the root; other instances do not see them; keys lists are unaffected
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    assert c.get(f"/api/node/{child}/kv/blobstore/{ref}").content == b"blob!"
    ref3 = c.post(f"/api/node/{child}/kv/blobstore", content=b"three").json()["reference"]
    assert c.get(f"/api/node/{root}/kv/blobstore/{ref3}").content == b"three"
    assert c.get(f"/api/node/{child}/kv2/blobstore/{ref}").status_code == 404
    assert c.get(f"/api/node/{child}/kv/keys").json() == []
    assert ref3 != ref2 and len(ref3) == 22


def test_readonly_mode_and_body_limit() -> None:
    s = Settings.memory()
    s.rwmode = "readonly"
    with TestClient(create_app(s)) as c:
        assert c.post("/api/repos", json={}).status_code == 400
        assert c.get("/api/repos/info").status_code == 200
    s = Settings.memory()
    s.max_request_bytes = 100
    with TestClient(create_app(s)) as c:
        root = make_repo(c)
        c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
        r = c.post(f"/api/node/{root}/kv/key/k", content=b"x" * 101)
        assert r.status_code == 413
        assert c.get(f"/api/node/{root}/kv/keys").json() == []


def test_tkey_classes_unique_and_property_class_reserved() -> None:
    from dvidpy.datatype import BLOB_CLASS, datatypes

    for name, cls in datatypes().items():
        assert 1 not in cls.tkey_classes, name
        assert BLOB_CLASS not in cls.tkey_classes, name  # every type's blobstore
        assert all(0 <= k <= 255 for k in cls.tkey_classes), name


def test_keyvalue_mutation_log_per_version(c: TestClient) -> None:
    root = make_repo(c)
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    c.post(f"/api/node/{root}/kv/key/a?u=alice&app=test", content=b"12345")
    c.post(f"/api/node/{root}/kv/key/b", content=b"x")
    c.post(f"/api/node/{root}/commit", json={})
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    c.delete(f"/api/node/{child}/kv/key/a?u=bob")
    recs = c.get(f"/api/node/{root}/kv/mutations").json()
    assert [(r["Action"], r["Key"]) for r in recs] == [("postkv", "a"), ("postkv", "b")]
    assert recs[0]["User"] == "alice" and recs[0]["App"] == "test" and recs[0]["Bytes"] == 5
    assert recs[0]["MutationID"] < recs[1]["MutationID"] and recs[0]["UUID"] == root
    crecs = c.get(f"/api/node/{child}/kv/mutations").json()
    assert [(r["Action"], r["Key"], r["User"]) for r in crecs] == [("delete", "a", "bob")]
    assert crecs[0]["MutationID"] > recs[1]["MutationID"]
