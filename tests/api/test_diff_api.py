"""``GET /api/repo/{uuid}/diff/{from}/{to}`` through the ASGI app: keys as each datatype
shows them, typed summaries (keyvalue, annotation, neuronjson keys), any two nodes,
conflicting merges, ``data=`` and bad input."""

from __future__ import annotations

from starlette.testclient import TestClient


def ok(r):
    assert r.status_code == 200, r.text
    return r


def test_diff_between_versions(c: TestClient) -> None:
    root = ok(c.post("/api/repos", json={})).json()["root"]
    for t, n in (("keyvalue", "kv"), ("annotation", "syn"), ("neuronjson", "nj"),
                 ("keyvalue", "flat")):
        body = {"typename": t, "dataname": n, **({"versioned": "false"} if n == "flat" else {})}
        ok(c.post(f"/api/repo/{root}/instance", json=body))
    b = f"/api/node/{root}"
    for k in ("a", "b", "c"):
        ok(c.post(f"{b}/kv/key/{k}", content=k.encode()))
    ok(c.post(f"{b}/syn/elements", json=[{"Pos": [1, 2, 3], "Kind": "PreSyn"},
                                         {"Pos": [70, 2, 3], "Kind": "PostSyn"}]))
    ok(c.post(f"{b}/nj/key/5?u=me", json={"bodyid": 5, "status": "x"}))
    ok(c.post(f"{b}/flat/key/x", content=b"1"))
    ok(c.post(f"{b}/commit", json={}))
    v1 = ok(c.post(f"{b}/newversion", json={})).json()["child"]
    b1 = f"/api/node/{v1}"
    ok(c.post(f"{b1}/kv/key/b", content=b"B"))        # changed
    ok(c.post(f"{b1}/kv/key/c", content=b"c"))        # rewritten, same bytes: no change
    ok(c.delete(f"{b1}/kv/key/a"))                     # deleted
    ok(c.post(f"{b1}/kv/key/d%2Fe", content=b"d"))    # added (key with a slash)
    ok(c.post(f"{b1}/syn/move/1_2_3/4_5_6", content=b""))
    ok(c.post(f"{b1}/syn/elements", json=[{"Pos": [9, 9, 9], "Kind": "Note"}]))
    ok(c.delete(f"{b1}/syn/element/70_2_3"))
    ok(c.post(f"{b1}/nj/key/6?u=me", json={"bodyid": 6}))
    ok(c.post(f"{b1}/flat/key/y", content=b"2"))       # unversioned: never differs
    ok(c.post(f"{b1}/commit", json={}))
    v2 = ok(c.post(f"{b1}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v2}/kv/key/b", content=b"b"))  # back to the root's value

    d = ok(c.get(f"/api/repo/{root}/diff/{root}/{v1}")).json()
    assert d["from"] == root and d["to"] == v1
    kv = d["instances"]["kv"]
    assert (kv["added"], kv["changed"], kv["deleted"]) == (["d/e"], ["b"], ["a"])
    assert kv["summary"]["added"] == 1 and kv["summary"]["mutations"] == 4
    syn = d["instances"]["syn"]["summary"]
    assert syn["elements_moved"] == [[[1, 2, 3], [4, 5, 6]]]
    assert syn["elements_added"] == [[9, 9, 9]] and syn["elements_deleted"] == [[70, 2, 3]]
    assert {"block": [0, 0, 0]} in d["instances"]["syn"]["changed"]
    assert d["instances"]["nj"]["added"] == [6]
    flat = d["instances"]["flat"]
    assert flat["added"] == flat["changed"] == flat["deleted"] == []
    assert flat["summary"]["mutations"] == 0
    # reversed direction, any two nodes, and no change at all
    back = ok(c.get(f"/api/repo/{v1}/diff/{v1}/{root}?data=kv")).json()["instances"]
    assert list(back) == ["kv"] and back["kv"]["added"] == ["a"]
    assert back["kv"]["deleted"] == ["d/e"]
    two = ok(c.get(f"/api/repo/{root}/diff/{root}/{v2}?data=kv")).json()["instances"]["kv"]
    assert (two["added"], two["changed"], two["deleted"]) == (["d/e"], [], ["a"])
    same = ok(c.get(f"/api/repo/{root}/diff/{v1}/{v1}")).json()["instances"]["kv"]
    assert same["added"] == same["changed"] == same["deleted"] == []
    # bad input
    assert c.get(f"/api/repo/{root}/diff/{root}/ffff").status_code == 400
    other = ok(c.post("/api/repos", json={})).json()["root"]
    r = c.get(f"/api/repo/{root}/diff/{root}/{other}")
    assert r.status_code == 400 and "not in repo" in r.text
    r = c.get(f"/api/repo/{root}/diff/{root}/{v1}?data=kv,nope")
    assert r.status_code == 400 and "nope" in r.text


def test_diff_shows_conflicting_merge(c: TestClient) -> None:
    root = ok(c.post("/api/repos", json={})).json()["root"]
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"}))
    ok(c.post(f"/api/node/{root}/commit", json={}))
    a = ok(c.post(f"/api/node/{root}/newversion", json={})).json()["child"]
    bb = ok(c.post(f"/api/node/{root}/branch", json={"branch": "side"})).json()["child"]
    ok(c.post(f"/api/node/{a}/kv/key/k", content=b"1"))
    ok(c.post(f"/api/node/{bb}/kv/key/k", content=b"2"))
    for n in (a, bb):
        ok(c.post(f"/api/node/{n}/commit", json={}))
    m = ok(c.post(f"/api/repo/{root}/merge", json={"mergeType": "conflict-free",
                                                   "parents": [a, bb]})).json()["child"]
    d = ok(c.get(f"/api/repo/{root}/diff/{root}/{m}")).json()["instances"]["kv"]
    assert d["changed"] == ["k"] and d["conflicts"] == ["k"]
