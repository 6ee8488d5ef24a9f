"""neuronjson through the ASGI app (memory engine): records with stamps, views, listings,
batches, queries, schemas, versions.

Query forms tried (``test_query_forms``): integer, list of integers, string, list of
strings, ``re/`` regex (anchored and not), list mixing strings and regexes, an
uncompilable ``re/(`` pattern (a plain string), ``exists/1`` and ``exists/0`` (absent and
null), AND of several fields, OR over a list of objects, ``bodyid`` only (direct lookups,
given order, duplicates dropped), ``{}``, a float, a list of floats, a boolean, a
stamp field (``F_user``), ``onlyid=true``, ``show``/``fields`` on the answer; bad bodies:
``[]``, a number, a list holding a non-object, malformed JSON.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from starlette.testclient import TestClient

from datatypes import protos


@pytest.fixture
def root(c: TestClient) -> str:
    r = c.post("/api/repos", json={"alias": "nj"}).json()["root"]
    assert c.post(f"/api/repo/{r}/instance",
                  json={"typename": "neuronjson", "dataname": "ann"}).status_code == 200
    return r


def post(c: TestClient, root: str, body: int, rec: dict, user: str = "alice",
         q: str = "") -> None:
    r = c.post(f"/api/node/{root}/ann/key/{body}?u={user}{q}", json=rec)
    assert r.status_code == 200, r.text


def untar(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf]  # type: ignore[union-attr]


def get(c: TestClient, root: str, body: int | str, q: str = "") -> dict:
    r = c.get(f"/api/node/{root}/ann/key/{body}{q}")
    assert r.status_code == 200, r.text
    return r.json()


def test_round_trip_with_stamps(c: TestClient, root: str) -> None:
    post(c, root, 10, {"bodyid": 10, "status": "Traced", "tags": ["a"], "user": "x"})
    assert get(c, root, 10) == {"bodyid": 10, "status": "Traced", "tags": ["a"], "user": "x"}
    full = get(c, root, 10, "?show=all")
    assert full["status_user"] == "alice" and full["tags_user"] == "alice"
    assert "user_user" not in full and "bodyid_user" not in full and "bodyid_time" not in full
    t = full["status_time"]
    assert len(t) == 25 and t[10] == "T"  # RFC3339 to the second with numeric zone
    assert set(get(c, root, 10, "?show=user")) == {"bodyid", "status", "tags", "user",
                                                   "status_user", "tags_user"}
    assert set(get(c, root, 10, "?show=time")) == {"bodyid", "status", "tags", "user",
                                                   "status_time", "tags_time"}
    assert get(c, root, 10, "?fields=status&show=user") == {
        "bodyid": 10, "status": "Traced", "status_user": "alice"}
    # same value by another user: stamps stay; a new value gets the new user
    post(c, root, 10, {"bodyid": 10, "status": "Traced", "tags": ["b"]}, user="bob")
    full = get(c, root, 10, "?show=all")
    assert full["status_user"] == "alice" and full["tags_user"] == "bob"
    assert full["tags"] == ["b"] and full["user"] == "x"  # unposted fields kept
    # an explicit F_user wins over the request's user
    post(c, root, 10, {"bodyid": 10, "status": "Done", "status_user": "carol"}, user="bob")
    assert get(c, root, 10, "?show=user")["status_user"] == "carol"
    # null removes a field and records who removed it
    post(c, root, 10, {"bodyid": 10, "tags": None}, user="dave")
    full = get(c, root, 10, "?show=all")
    assert "tags" not in full and full["tags_user"] == "dave" and "tags_time" in full
    # replace drops what is not posted; posted fields keep their stamps
    post(c, root, 10, {"bodyid": 10, "status": "Done"}, user="erin", q="&replace=true")
    full = get(c, root, 10, "?show=all")
    assert {k for k in full if not k.endswith(("_user", "_time"))} == {"bodyid", "status"}
    assert full["status_user"] == "carol"
    # conditional fields are not overwritten once set
    post(c, root, 10, {"bodyid": 10, "status": "Orphan", "class": "KC"}, user="fay",
         q="&conditional=status,class")
    rec = get(c, root, 10, "?show=user")
    assert rec["status"] == "Done" and rec["class"] == "KC" and rec["class_user"] == "fay"
    assert c.head(f"/api/node/{root}/ann/key/10").status_code == 200
    assert c.head(f"/api/node/{root}/ann/key/11").status_code == 404
    assert c.get(f"/api/node/{root}/ann/key/11").status_code == 404
    assert c.delete(f"/api/node/{root}/ann/key/10?u=x").status_code == 200
    assert c.get(f"/api/node/{root}/ann/key/10").status_code == 404
    acts = [m["Action"] for m in c.get(f"/api/node/{root}/ann/mutations").json()]
    assert acts == ["postneuronjson"] * 6 + ["delete"]


@pytest.mark.parametrize(("key", "body", "q", "word"), [
    ("10", {"bodyid": 10, "a": 1}, "", "user"),                  # no u=
    ("10", {"bodyid": 11, "a": 1}, "?u=a", "match"),
    ("10", {"a": 1}, "?u=a", "bodyid"),
    ("10", {"bodyid": "10"}, "?u=a", "uint64"),
    ("10", {"bodyid": -10}, "?u=a", "uint64"),
    ("10", {"bodyid": 10, "bodyid_user": "z"}, "?u=a", "not allowed"),
    ("10", {"bodyid": 10, "a_user": 3}, "?u=a", "string"),
    ("10", [1, 2], "?u=a", "object"),
    ("0", {"bodyid": 0}, "?u=a", "reserved"),
    ("ten", {"bodyid": 10}, "?u=a", "uint64"),
    ("18446744073709551616", {"bodyid": 1}, "?u=a", "uint64"),
])
def test_bad_posts(c: TestClient, root: str, key: str, body: object, q: str,
                   word: str) -> None:
    r = c.post(f"/api/node/{root}/ann/key/{key}{q}", json=body)
    assert r.status_code == 400 and word in r.text, r.text
    assert c.get(f"/api/node/{root}/ann/keys").json() == []
    r = c.post(f"/api/node/{root}/ann/key/10?u=a", content=b'{"bodyid": 10,')
    assert r.status_code == 400 and "JSON" in r.text
    assert c.get(f"/api/node/{root}/ann/key/x1").status_code == 400
    assert c.get(f"/api/node/{root}/ann/key/10?show=bogus").status_code == 400


def test_listings_and_batches(c: TestClient, root: str) -> None:
    for b in (100, 5, 20, 7):
        post(c, root, b, {"bodyid": b, "n": b})
    base = f"/api/node/{root}/ann"
    assert c.get(f"{base}/keys").json() == ["5", "7", "20", "100"]  # id order
    assert c.get(f"{base}/keyrange/5/20").json() == ["5", "7", "20"]
    assert c.get(f"{base}/keyrange/0/a").json() == ["5", "7", "20", "100"]
    assert c.get(f"{base}/keyrange/21/6").json() == []
    assert c.get(f"{base}/keyrange/1x/6").status_code == 400
    r = c.get(f"{base}/keyrangevalues/6/100?json=true&fields=n")
    assert r.json() == {"7": {"bodyid": 7, "n": 7}, "20": {"bodyid": 20, "n": 20},
                        "100": {"bodyid": 100, "n": 100}}
    tar = untar(c.get(f"{base}/keyrangevalues/0/9?tar=true").content)
    assert [(n, json.loads(v)) for n, v in tar] == [
        ("5", {"bodyid": 5, "n": 5}), ("7", {"bodyid": 7, "n": 7})]
    kvs = protos.KeyValues.FromString(c.get(f"{base}/keyrangevalues/0/9").content)
    assert [(kv.key, json.loads(kv.value)) for kv in kvs.kvs] == [
        ("5", {"bodyid": 5, "n": 5}), ("7", {"bodyid": 7, "n": 7})]
    assert c.get(f"{base}/keyrangevalues/0/9?tar=true&json=true").status_code == 400
    # keyvalues: JSON with ids or strings (missing omitted), tar, protobuf
    got = c.request("GET", f"{base}/keyvalues?json=true", content=b"[20, 3, 5]").json()
    assert got == {"20": {"bodyid": 20, "n": 20}, "5": {"bodyid": 5, "n": 5}}
    assert c.request("GET", f"{base}/keyvalues?json=true", content=b'["7"]').json() == {
        "7": {"bodyid": 7, "n": 7}}
    tar = untar(c.request("GET", f"{base}/keyvalues?jsontar=true",
                          content=b'["7", "8"]').content)
    assert tar[1] == ("8", b"")
    keys = protos.Keys(keys=["20", "9"]).SerializeToString()
    kvs = protos.KeyValues.FromString(c.request("GET", f"{base}/keyvalues", content=keys).content)
    assert [(kv.key, kv.value) for kv in kvs.kvs] == [("20", b'{"bodyid":20,"n":20}'),
                                                      ("9", b"")]
    for bad in (b'{"a": 1}', b'[1.5]', b'["x"]', b'[true]'):
        assert c.request("GET", f"{base}/keyvalues?json=true", content=bad).status_code == 400
    # POST keyvalues: all or nothing
    good = protos.KeyValue(key="30", value=b'{"bodyid": 30, "n": 30}')
    bad = protos.KeyValue(key="31", value=b'{"bodyid": 32}')
    body = protos.KeyValues(kvs=[good, bad]).SerializeToString()
    r = c.post(f"{base}/keyvalues?u=bob", content=body)
    assert r.status_code == 400 and "match" in r.text
    assert c.get(f"{base}/key/30").status_code == 404
    assert c.post(f"{base}/keyvalues?u=bob", content=b"\xff\xff").status_code == 400
    twice = protos.KeyValue(key="30", value=b'{"bodyid": 30, "m": 1}')
    body = protos.KeyValues(kvs=[good, twice]).SerializeToString()
    assert c.post(f"{base}/keyvalues?u=bob", content=body).status_code == 200
    assert get(c, root, 30) == {"bodyid": 30, "n": 30, "m": 1}
    assert c.get(f"{base}/mutations").json()[-1]["Action"] == "ingestneuronjson"
    # all, fields, fieldtimes
    post(c, root, 40, {"bodyid": 40})
    all_ = c.get(f"{base}/all").json()
    assert [r["bodyid"] for r in all_] == [5, 7, 20, 30, 100]  # 40 has only its bodyid
    assert c.get(f"{base}/all?fields=bodyid").json()[-1] == {"bodyid": 100}
    assert len(c.get(f"{base}/all?fields=bodyid").json()) == 6
    assert "n_user" in c.get(f"{base}/all?show=all").json()[0]
    assert c.get(f"{base}/fields").json() == ["bodyid", "m", "m_time", "m_user", "n",
                                              "n_time", "n_user"]
    assert c.get(f"{base}/fields?counts=true").json()["n"] == 5
    times = c.get(f"{base}/fieldtimes").json()
    assert set(times) == {"m", "n"}
    # the latest stamp of each field over every record (records written in different seconds)
    stamped = c.get(f"{base}/all?show=time").json()
    for f in ("m", "n"):
        assert times[f] == max(r[f + "_time"] for r in stamped if f + "_time" in r)


def test_query_forms(c: TestClient, root: str) -> None:
    recs = {
        1: {"bodyid": 1, "s": "foo", "n": 1234, "l": [1, 2, 3], "f": 1.5, "b": True},
        2: {"bodyid": 2, "s": "moo", "n": 2345, "l": ["mom", "pop"], "z": None},
        3: {"bodyid": 3, "s": "goo", "n": 3456, "l": [23], "f": 2.0},
    }
    for b, r in recs.items():
        post(c, root, b, dict(r), user=f"u{b}")
    base = f"/api/node/{root}/ann/query"

    def q(body: object, opts: str = "", method: str = "POST") -> list:
        r = c.request(method, base + opts, content=json.dumps(body))
        assert r.status_code == 200, r.text
        return [x["bodyid"] for x in r.json()] if "onlyid" not in opts else r.json()

    assert q({"n": 2345}) == [2]
    assert q({"n": [1234, 3456]}) == [1, 3]
    assert q({"l": 2}) == [1] and q({"l": [23, 5]}) == [3]
    assert q({"s": "moo"}) == [2] and q({"l": "pop"}) == [2]
    assert q({"s": ["moo", "goo"]}) == [2, 3]
    assert q({"s": "re/^(f|m)oo"}) == [1, 2]
    assert q({"s": "re/oo"}) == [1, 2, 3]          # unanchored: found anywhere
    assert q({"s": "re/"}) == [1, 2, 3]            # empty pattern
    assert q({"l": ["re/.*x", "re/om"]}) == [2]
    assert q({"s": ["re/^g", "foo"]}) == [1, 3]
    assert q({"s": "re/("}) == []                   # not a regex: a plain string
    assert q({"s": "re/^(f|m)oo", "l": "mom"}) == [2]  # AND
    assert q([{"n": 1234}, {"s": "goo"}, {"n": 1234}]) == [1, 3]  # OR, no duplicates
    assert q({"f": "exists/1"}) == [1, 3]
    assert q({"f": "exists/0"}) == [2]
    assert q({"z": "exists/1"}) == [] and q({"z": "exists/0"}) == [1, 2, 3]  # null
    assert q({"f": 2}) == [3]                       # integral float field
    assert q({"f": 1.5}) == [] and q({"f": [1.5, 9]}) == [1]  # DVID's float rules
    assert q({"b": True}) == []
    assert q({"s_user": "u2"}) == [2]               # stamps are queryable
    assert q({"bodyid": [3, 1, 3, 99]}) == [3, 1]   # direct lookups, given order
    assert q({"bodyid": 2}) == [2]
    assert q({}) == []
    assert q({"unused": "foo"}) == [] and q({"s": "moo", "unused": "x"}) == []
    assert q({"s": ["moo", "goo"]}, method="GET") == [2, 3]
    assert q({"s": "re/oo"}, "?onlyid=true") == [1, 2, 3]
    r = c.post(base + "?fields=n&show=user", json={"bodyid": 1}).json()
    assert r == [{"bodyid": 1, "n": 1234, "n_user": "u1"}]
    for bad in (b"[]", b"3", b'[{"a": 1}, 2]', b"{"):
        assert c.post(base, content=bad).status_code == 400, bad
    # a query is not a mutation: allowed on a committed version
    assert c.post(f"/api/node/{root}/commit", json={}).status_code == 200
    assert q({"n": 2345}) == [2]
    assert c.post(f"/api/node/{root}/ann/key/9?u=a", json={"bodyid": 9}).status_code == 400


def test_schemas(c: TestClient, root: str) -> None:
    base = f"/api/node/{root}/ann"
    assert c.get(f"{base}/json_schema").status_code == 404
    assert c.head(f"{base}/json_schema").status_code == 404
    schema = {"type": "object", "properties": {"bodyid": {"type": "integer"},
                                               "soma": {"type": "integer"},
                                               "status": {"enum": ["Traced", "Orphan"]}}}
    assert c.post(f"{base}/json_schema", json=schema).status_code == 200
    assert c.get(f"{base}/json_schema").json() == schema
    assert c.head(f"{base}/json_schema").status_code == 200
    r = c.post(f"{base}/key/5?u=a", json={"bodyid": 5, "status": "Bad"})
    assert r.status_code == 400 and "status" in r.text
    post(c, root, 5, {"bodyid": 5, "status": "Traced", "soma": "12"})  # string → integer
    assert get(c, root, 5)["soma"] == 12
    r = c.post(f"{base}/key/5?u=a", json={"bodyid": 5, "soma": "twelve"})
    assert r.status_code == 400
    assert c.post(f"{base}/json_schema", json={"type": 12}).status_code == 400
    assert c.post(f"{base}/json_schema", content=b"{").status_code == 400
    assert c.delete(f"{base}/json_schema").status_code == 200
    post(c, root, 5, {"bodyid": 5, "status": "Bad"})
    for name in ("schema", "schema_batch"):
        assert c.get(f"{base}/{name}").status_code == 404
        assert c.post(f"{base}/{name}", json={"x": name}).status_code == 200
        assert c.get(f"{base}/{name}").json() == {"x": name}
        assert c.get(f"{base}/key/{name}").json() == {"x": name}
        assert c.post(f"{base}/key/{name}?u=a", json={"y": 1}).status_code == 200
        assert c.get(f"{base}/{name}").json() == {"y": 1}
        assert c.delete(f"{base}/key/{name}").status_code == 200
        assert c.get(f"{base}/{name}").status_code == 404


def test_versions(c: TestClient, root: str) -> None:
    post(c, root, 1, {"bodyid": 1, "status": "a"})
    post(c, root, 2, {"bodyid": 2, "status": "a"})
    c.post(f"/api/node/{root}/commit", json={})
    child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    post(c, child, 1, {"bodyid": 1, "status": "b"})
    assert c.delete(f"/api/node/{child}/ann/key/2").status_code == 200
    post(c, child, 3, {"bodyid": 3})
    assert get(c, root, 1)["status"] == "a" and get(c, child, 1)["status"] == "b"
    assert c.get(f"/api/node/{root}/ann/keys").json() == ["1", "2"]
    assert c.get(f"/api/node/{child}/ann/keys").json() == ["1", "3"]
    r = c.post(f"/api/node/{root}/ann/query?onlyid=true", json={"status": "a"}).json()
    assert r == [1, 2]
    assert c.post(f"/api/node/{child}/ann/query?onlyid=true", json={"status": "a"}).json() == []
    assert [m["Action"] for m in c.get(f"/api/node/{child}/ann/mutations").json()] == [
        "postneuronjson", "delete", "postneuronjson"]
    assert len(c.get(f"/api/node/{root}/ann/mutations").json()) == 2
