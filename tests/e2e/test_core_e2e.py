"""End-to-end: a real server process driven over HTTP (repos, DAG, keyvalue, restart)."""

from __future__ import annotations

import io
import tarfile

import httpx

from datatypes import protos


def new_repo(c: httpx.Client, **body: str) -> str:
    r = c.post("/api/repos", json=body)
    assert r.status_code == 200, r.text
    return r.json()["root"]


def new_instance(c: httpx.Client, uuid: str, typename: str, name: str, **extra: str) -> None:
    r = c.post(f"/api/repo/{uuid}/instance", json={"typename": typename, "dataname": name,
                                                     **extra})
    assert r.status_code == 200, r.text


def test_keyvalue_versions_lock_and_restart(server, client) -> None:
    c = client
    root = new_repo(c, alias="test", description="e2e")
    new_instance(c, root, "keyvalue", "kv")
    new_instance(c, root, "keyvalue", "shared", versioned="false")
    assert c.post(f"/api/node/{root}/kv/key/a", content=b"root-a").status_code == 200
    assert c.post(f"/api/node/{root}/kv/key/b", content=b"root-b").status_code == 200
    assert c.post(f"/api/node/{root}/shared/key/cfg", content=b"v1").status_code == 200
    r = c.post(f"/api/node/{root}/commit", json={"note": "first", "log": ["ingested"]})
    assert r.json() == {"committed": root}
    # writes to a locked node are refused, nothing written
    r = c.post(f"/api/node/{root}/kv/key/a", content=b"nope")
    assert r.status_code == 400 and "locked" in r.text
    assert c.get(f"/api/node/{root}/kv/key/a").content == b"root-a"
    # unversioned instances stay writable
    assert c.post(f"/api/node/{root}/shared/key/cfg", content=b"v2").status_code == 200
    child = c.post(f"/api/node/{root}/newversion", json={"note": "child"}).json()["child"]
    assert c.post(f"/api/node/{child}/kv/key/a", content=b"child-a").status_code == 200
    assert c.delete(f"/api/node/{child}/kv/key/b").status_code == 200
    assert c.get(f"/api/node/{child}/kv/key/a").content == b"child-a"
    assert c.get(f"/api/node/{root}/kv/key/a").content == b"root-a"
    assert c.get(f"/api/node/{child}/kv/key/b").status_code == 404
    assert c.head(f"/api/node/{child}/kv/key/b").status_code == 404
    assert c.get(f"/api/node/{root}/kv/key/b").content == b"root-b"
    assert c.get(f"/api/node/{child}/kv/keys").json() == ["a"]
    assert c.get(f"/api/node/{root}/kv/keys").json() == ["a", "b"]
    assert c.get(f"/api/node/{child}/shared/key/cfg").content == b"v2"
    assert c.get(f"/api/node/{child[:6]}/kv/key/a").content == b"child-a"
    assert c.get(f"/api/node/{root[:5]}:master/kv/key/a").content == b"child-a"
    # repo info shape
    info = c.get(f"/api/repo/{child}/info").json()
    nodes = info["DAG"]["Nodes"]
    assert set(nodes) == {root, child}
    assert nodes[child]["Parents"] == [nodes[root]["VersionID"]]
    assert nodes[root]["Children"] == [nodes[child]["VersionID"]]
    assert nodes[root]["Locked"] and nodes[root]["Note"] == "first"
    base = info["DataInstances"]["kv"]["Base"]
    assert base["TypeName"] == "keyvalue" and base["Versioned"] is True
    assert info["DataInstances"]["shared"]["Base"]["Versioned"] is False
    assert c.get(f"/api/repo/{root}/branch-versions/master").json() == [child, root]
    assert root in c.get("/api/repos/info").json()

    server.restart()
    assert c.get(f"/api/node/{root}/kv/key/a").content == b"root-a"
    assert c.get(f"/api/node/{child}/kv/key/a").content == b"child-a"
    assert c.get(f"/api/node/{child}/kv/key/b").status_code == 404
    assert c.get(f"/api/node/{root}/status").json() == {"Locked": True}
    assert c.get(f"/api/node/{child}/status").json() == {"Locked": False}
    assert c.get(f"/api/repo/{root}/info").json()["DAG"] == info["DAG"]
    assert c.post(f"/api/node/{root}/kv/key/a", content=b"x").status_code == 400
    # new ids after restart do not collide with old ones
    new_instance(c, child, "keyvalue", "after")
    infos = c.get(f"/api/repo/{root}/info").json()["DataInstances"]
    assert len({i["Base"]["DataUUID"] for i in infos.values()}) == 3


def test_keyvalue_batches_ranges_formats(client) -> None:
    c = client
    root = new_repo(c)
    new_instance(c, root, "keyvalue", "kv", Compression="lz4")
    vals = {f"k{i:02d}": (f'{{"n": {i}}}').encode() for i in range(20)}
    msg = protos.KeyValues(kvs=[protos.KeyValue(key=k, value=v) for k, v in vals.items()])
    assert c.post(f"/api/node/{root}/kv/keyvalues",
                  content=msg.SerializeToString()).status_code == 200
    assert c.get(f"/api/node/{root}/kv/keyrange/k03/k05").json() == ["k03", "k04", "k05"]
    # protobuf range values
    out = protos.KeyValues()
    out.ParseFromString(c.get(f"/api/node/{root}/kv/keyrangevalues/k03/k05").content)
    assert [(kv.key, kv.value) for kv in out.kvs] == [(k, vals[k]) for k in ("k03", "k04", "k05")]
    # json range values
    j = c.get(f"/api/node/{root}/kv/keyrangevalues/k00/k01?json=true").json()
    assert j == {"k00": {"n": 0}, "k01": {"n": 1}}
    # tar range values
    with tarfile.open(fileobj=io.BytesIO(
            c.get(f"/api/node/{root}/kv/keyrangevalues/k10/k11?tar=true").content)) as tf:
        assert {m.name: tf.extractfile(m).read() for m in tf.getmembers()} == {
            "k10": vals["k10"], "k11": vals["k11"]}
    # protobuf batch get in request order, missing keys empty, ranges after keys
    req = protos.Keys(keys=["k07", "missing", "k01"],
                      key_ranges=[protos.KeyRange(key="k02", byte_start=1, byte_end=3)])
    out = protos.KeyValues()
    out.ParseFromString(c.request("GET", f"/api/node/{root}/kv/keyvalues",
                                  content=req.SerializeToString()).content)
    assert [(kv.key, kv.value) for kv in out.kvs] == [
        ("k07", vals["k07"]), ("missing", b""), ("k01", vals["k01"]), ("k02", vals["k02"][1:4])]
    # json batch get with a JSON body on GET
    r = c.request("GET", f"/api/node/{root}/kv/keyvalues?json=true", json=["k05", "zz"])
    assert r.json() == {"k05": {"n": 5}, "zz": {}}
    # byte ranges and Range header
    full = vals["k09"]
    assert c.get(f"/api/node/{root}/kv/key/k09?byte_start=2&byte_end=4").content == full[2:5]
    r = c.get(f"/api/node/{root}/kv/key/k09", headers={"Range": "bytes=1-3"})
    assert r.status_code == 206 and r.content == full[1:4]
    assert r.headers["content-range"] == f"bytes 1-3/{len(full)}"
    assert c.get(f"/api/node/{root}/kv/key/k09",
                 headers={"Range": "bytes=999-"}).status_code == 416
    info = c.get(f"/api/node/{root}/kv/info").json()
    assert info["Base"]["Compression"].startswith("LZ4") and info["Extended"] == {}
    assert c.get(f"/api/node/{root}/kv/info").headers["access-control-allow-origin"] == "*"


def test_bad_input_is_4xx_and_writes_nothing(client) -> None:
    c = client
    root = new_repo(c, root="ab" + "0" * 30)
    other = new_repo(c, root="ab" + "1" * 30)
    new_instance(c, root, "keyvalue", "kv")

    def bad(r: httpx.Response, code: int = 400, text: str = "") -> None:
        assert r.status_code == code, (r.status_code, r.text)
        assert r.headers["content-type"].startswith("text/plain")
        assert text.lower() in r.text.lower(), r.text

    bad(c.get("/api/node/ab/kv/keys"), 400, "more than one")          # ambiguous prefix
    bad(c.get("/api/node/ffff/kv/keys"), 400, "could not find")       # unknown UUID
    bad(c.get(f"/api/node/{root}/nosuch/keys"), 400, "no data instance")
    bad(c.post(f"/api/repo/{root}/instance", json={"typename": "nosuchtype",
                                                    "dataname": "x"}), 400, "unknown datatype")
    bad(c.post(f"/api/repo/{root}/instance", content=b"{not json"), 400, "malformed JSON")
    bad(c.post("/api/repos", content=b"[1,"), 400, "malformed JSON")
    bad(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "y",
                                                    "Compression": 5}), 400, "not a string")
    bad(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "y",
                                                    "Compression": "zstd"}), 400, "Compression")
    bad(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                    "dataname": "kv"}), 400, "already exists")
    bad(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                    "dataname": "log"}), 400, "can't be used")
    bad(c.post(f"/api/node/{root}/newversion", json={}), 400, "not committed")
    bad(c.post(f"/api/node/{root}/kv/key/a%00b", content=b"x"), 400, "NUL")  # NUL in a key
    bad(c.post(f"/api/node/{root}/kv/keyvalues", content=b"\xff\xff\xff"), 400, "protobuf")
    bad(c.request("GET", f"/api/node/{root}/kv/keyvalues?json=true", content=b"{"), 400)
    bad(c.post(f"/api/node/{root}/kv/bogus", content=b""), 400, "unknown endpoint")
    assert c.get(f"/api/node/{root}/kv/keys").json() == []
    c.post(f"/api/node/{root}/commit", json={})
    bad(c.post(f"/api/node/{root}/commit", json={}), 400, "already committed")
    bad(c.post(f"/api/node/{root}/kv/key/a", content=b"x"), 400, "locked")
    bad(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                    "dataname": "z"}), 400, "locked")
    bad(c.post(f"/api/node/{root}/note", json={"note": "x"}), 400, "locked")
    bad(c.post(f"/api/node/{root}/newversion", json={"uuid": "XYZ"}), 400, "hexadecimal")
    bad(c.post(f"/api/node/{root}/newversion", json={"uuid": other}), 400, "already exists")
    c1 = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    bad(c.post(f"/api/node/{root}/newversion", json={}), 400, "already has a child")
    bad(c.post(f"/api/node/{root}/branch", json={"branch": "master"}), 400)
    b1 = c.post(f"/api/node/{root}/branch", json={"branch": "proof"}).json()["child"]
    bad(c.post(f"/api/node/{root}/branch", json={"branch": "proof"}), 400, "already used")
    bad(c.post(f"/api/node/{c1}/tags", content=b"x"), 400)
    nodes = c.get(f"/api/repo/{root}/info").json()["DAG"]["Nodes"]
    assert set(nodes) == {root, c1, b1}
    assert c.get(f"/api/node/{c1}/kv/keys").json() == []
    bad(c.get("/api/nothing/here"), 404)
