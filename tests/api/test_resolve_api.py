"""``POST /api/repo/{uuid}/resolve`` through the ASGI app (in process, memory engine)."""

from __future__ import annotations

from starlette.testclient import TestClient


def node_count(c: TestClient) -> int:
    return sum(len(r["DAG"]["Nodes"]) for r in c.get("/api/repos/info").json().values())


def put(c: TestClient, uuid: str, key: str, value: bytes, inst: str = "kv") -> None:
    assert c.post(f"/api/node/{uuid}/{inst}/key/{key}", content=value).status_code == 200


def get(c: TestClient, uuid: str, key: str, inst: str = "kv") -> bytes | int:
    r = c.get(f"/api/node/{uuid}/{inst}/key/{key}")
    return r.content if r.status_code == 200 else r.status_code


def commit(c: TestClient, *uuids: str) -> None:
    for u in uuids:
        assert c.post(f"/api/node/{u}/commit", json={}).status_code == 200


def setup_three(c: TestClient) -> tuple[str, str, str, str]:
    """root → A (newversion), B and C (branches), with overlapping edits."""
    root = c.post("/api/repos", json={"alias": "r"}).json()["root"]
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv2"})
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "u",
                                               "versioned": "false"})
    put(c, root, "shared", b"root")
    put(c, root, "gone", b"root")
    commit(c, root)
    a = c.post(f"/api/node/{root}/newversion", json={"uuid": "a" * 32}).json()["child"]
    b = c.post(f"/api/node/{root}/branch", json={"branch": "b", "uuid": "b" * 32}).json()["child"]
    cc = c.post(f"/api/node/{root}/branch", json={"branch": "c"}).json()["child"]
    put(c, a, "k", b"A")           # A, B, C all differ: A wins
    put(c, b, "k", b"B")
    put(c, cc, "k", b"C")
    put(c, b, "bc", b"B")          # B and C differ, A has nothing: B wins
    put(c, cc, "bc", b"C")
    put(c, cc, "onlyc", b"C")      # only C: stays
    put(c, b, "shared", b"B")      # B changed the root value A still sees: A's view wins
    assert c.delete(f"/api/node/{a}/kv/key/gone").status_code == 200  # A deleted it
    put(c, a, "x", b"A", "kv2")    # a conflict in kv2, which is not listed below
    put(c, b, "x", b"B", "kv2")
    commit(c, a, b, cc)
    return root, a, b, cc


def test_resolve_three_parents(c: TestClient) -> None:
    root, a, b, cc = setup_three(c)
    # without resolve, the merge conflicts on the keys the parents changed differently
    plain = c.post(f"/api/repo/{root}/merge", json={"parents": [a, b, cc]}).json()["child"]
    for key in ("k", "bc"):
        r = c.get(f"/api/node/{plain}/kv/key/{key}")
        assert r.status_code == 400 and "conflict" in r.text
    n = node_count(c)
    r = c.post(f"/api/repo/{root[:8]}/resolve",
               json={"data": ["kv"], "parents": [a[:6], f"{root[:6]}:b", cc], "note": "fix"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    m = r.json()["child"]
    assert {k: get(c, m, k) for k in ("k", "bc", "onlyc", "shared", "gone")} == {
        "k": b"A", "bc": b"B", "onlyc": b"C", "shared": b"root", "gone": 404}
    assert c.get(f"/api/node/{m}/kv/keys").json() == ["bc", "k", "onlyc", "shared"]
    # kv2 was not listed: its conflict is still there
    assert c.get(f"/api/node/{m}/kv2/key/x").status_code == 400
    nodes = c.get(f"/api/repo/{root}/info").json()["DAG"]["Nodes"]
    assert node_count(c) == n + 3  # children of B and C holding deletions, and the merge
    mn = nodes[m]
    assert mn["Note"] == "fix" and not mn["Locked"] and len(mn["Parents"]) == 3
    by_version = {x["VersionID"]: x for x in nodes.values()}
    pa, pb, pc = (by_version[v] for v in mn["Parents"])
    assert pa["UUID"] == a
    for ext, parent in ((pb, b), (pc, cc)):
        assert ext["Locked"] and ext["Note"] == "Version for deleting conflicts before merge"
        assert ext["Branch"] == f"conflict-{parent}"
        assert [by_version[v]["UUID"] for v in ext["Parents"]] == [parent]
    # the losers' own versions are unchanged
    assert get(c, b, "k") == b"B" and get(c, cc, "bc") == b"C" and get(c, b, "shared") == b"B"
    # the merge child is an ordinary open node
    put(c, m, "k", b"new")
    assert get(c, m, "k") == b"new"


def test_resolve_then_all_keys_readable_two_parents(c: TestClient) -> None:
    root, a, b, _ = setup_three(c)
    m = c.post(f"/api/repo/{root}/resolve",
               json={"data": ["kv", "kv2"], "parents": [b, a]}).json()["child"]
    assert {k: get(c, m, k) for k in ("k", "bc", "onlyc", "shared", "gone")} == {
        "k": b"B", "bc": b"B", "onlyc": 404, "shared": b"B", "gone": b"root"}
    assert get(c, m, "x", "kv2") == b"B"


def test_bad_requests_create_nothing(c: TestClient) -> None:
    root, a, b, cc = setup_three(c)
    open_node = c.post(f"/api/node/{a}/newversion", json={}).json()["child"]
    other = c.post("/api/repos", json={}).json()["root"]
    url = f"/api/repo/{root}/resolve"
    bad = [
        b"{not json",
        b"[1, 2]",
        b"",
        {"data": "kv", "parents": [a, b]},
        {"data": ["kv"], "parents": a},
        {"data": [1], "parents": [a, b]},
        {"data": ["kv"], "parents": [a, b], "note": 5},
        {"data": [], "parents": [a, b]},
        {"data": ["kv"], "parents": [a]},
        {"data": ["kv"]},
        {"data": ["nope"], "parents": [a, b]},
        {"data": ["kv"], "parents": [a, "f" * 32]},
        {"data": ["kv"], "parents": [a, "0123456789"]},
        {"data": ["kv"], "parents": [a, b, a]},
        {"data": ["kv"], "parents": [a, open_node]},
        {"data": ["kv"], "parents": [a, other]},
    ]
    n = node_count(c)
    for body in bad:
        r = (c.post(url, content=body) if isinstance(body, bytes) else c.post(url, json=body))
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert r.headers["content-type"].startswith("text/plain"), body
        assert node_count(c) == n, body
    # an ambiguous prefix: both 'a'*32 and 'aa...b' exist
    c.post(f"/api/node/{a}/branch", json={"branch": "a2", "uuid": "a" * 31 + "b"})
    n = node_count(c)
    r = c.post(url, json={"data": ["kv"], "parents": ["aaaa", b]})
    assert r.status_code == 400 and "more than one" in r.text
    assert c.post("/api/repo/ffff/resolve", json={"data": ["kv"], "parents": [a, b]}
                  ).status_code == 400
    # a parent whose own reads conflict, with no parent before it to decide: 400
    merged = c.post(f"/api/repo/{root}/merge", json={"parents": [a, b]}).json()["child"]
    commit(c, merged)
    n = node_count(c)
    r = c.post(url, json={"data": ["kv"], "parents": [merged, cc]})
    assert r.status_code == 400 and "conflicting revisions" in r.text
    assert node_count(c) == n
    # ... but with a parent of higher priority it is resolved
    r = c.post(url, json={"data": ["kv"], "parents": [cc, merged]})
    assert r.status_code == 200, r.text
    assert get(c, r.json()["child"], "k") == b"C"
    # unversioned instances cannot conflict: listed alone, it is a plain merge
    r = c.post(url, json={"data": ["u"], "parents": [a, b]})
    m = r.json()["child"]
    nodes = c.get(f"/api/repo/{root}/info").json()["DAG"]["Nodes"]
    assert [nodes[u]["VersionID"] for u in (a, b)] == nodes[m]["Parents"]
