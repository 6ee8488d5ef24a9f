"""annotation endpoints in-process: shapes, relationships upkeep, bad input, versions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dvidpy.config import Settings
from server import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture
def api():
    c = TestClient(create_app(Settings.memory()))
    uuid = c.post("/api/repos", json={}).json()["root"]
    for body in ({"typename": "labelmap", "dataname": "seg"},
                 {"typename": "annotation", "dataname": "syn"},
                 {"typename": "keyvalue", "dataname": "kv"},
                 {"typename": "roi", "dataname": "r64", "BlockSize": "64,64,64"},
                 {"typename": "roi", "dataname": "r32"},
                 {"typename": "labelsz", "dataname": "sz"}):
        assert c.post(f"/api/repo/{uuid}/instance", json=body).status_code == 200
    u = f"/api/node/{uuid}"
    vol = np.ones((64, 64, 128), np.uint64)
    vol[:, :, 64:] = 2
    assert c.post(f"{u}/seg/raw/0_1_2/128_64_64/0_0_0", content=vol.tobytes()).status_code == 200
    assert c.post(f"{u}/syn/sync", json={"sync": "seg"}).status_code == 200
    assert c.post(f"{u}/sz/sync", json={"sync": "syn"}).status_code == 200
    return c, uuid, u


PRE = {"Pos": [10, 20, 30], "Kind": "PreSyn", "Tags": ["x"], "Prop": {"conf": "0.9"},
       "Rels": [{"Rel": "PreSynTo", "To": [70, 20, 30]}, {"Rel": "PreSynTo", "To": [11, 20, 30]}]}
POST1 = {"Pos": [70, 20, 30], "Kind": "PostSyn", "Rels": [{"Rel": "PostSynTo", "To": [10, 20, 30]}]}
POST2 = {"Pos": [11, 20, 30], "Kind": "PostSyn", "Tags": [], "Prop": {},
         "Rels": [{"Rel": "PostSynTo", "To": [10, 20, 30]}]}


def state(c, u):
    """Everything observable, to check that failed requests change nothing."""
    return (c.get(f"{u}/syn/all-elements").text, c.get(f"{u}/syn/label/1").text,
            c.get(f"{u}/syn/label/2").text, c.get(f"{u}/syn/tag/x").text,
            c.get(f"{u}/sz/top/10/AllSyn").text, c.get(f"{u}/syn/mutations").text)


def test_shapes_and_relationships(api):
    c, _, u = api
    assert c.get(f"{u}/syn/elements/10_10_10/0_0_0").text == "null"
    assert c.get(f"{u}/syn/label/1").text == "[]"
    assert c.post(f"{u}/syn/elements", json=[PRE, POST1, POST2]).status_code == 200
    got = c.get(f"{u}/syn/elements/100_100_100/0_0_0").json()
    assert {tuple(e["Pos"]) for e in got} == {(10, 20, 30), (70, 20, 30), (11, 20, 30)}
    raw = c.get(f"{u}/syn/elements/100_100_100/0_0_0").text
    assert '{"Pos":[70,20,30],"Kind":"PostSyn","Tags":null,"Prop":null,"Rels":' in raw
    assert '"Tags":[],"Prop":{}' in raw
    assert c.get(f"{u}/syn/elements/1_1_1/10_20_30").json()[0]["Pos"] == [10, 20, 30]
    lab1 = c.get(f"{u}/syn/label/1").json()
    assert sorted(e["Pos"] for e in lab1) == [[10, 20, 30], [11, 20, 30]]
    assert all("Rels" not in e for e in lab1)
    withrels = c.get(f"{u}/syn/label/2?relationships=true").json()
    assert withrels == [POST1 | {"Tags": None, "Prop": None}]
    verbose = c.get(f"{u}/syn/label/1?relationships=verbose").json()
    pre = next(e for e in verbose if e["Kind"] == "PreSyn")
    assert pre["Rels"] == [{"Rel": "PreSynTo", "To": [70, 20, 30], "Kind": "PostSyn"},
                           {"Rel": "PreSynTo", "To": [11, 20, 30], "Kind": "PostSyn"}]
    post = c.get(f"{u}/syn/label/2?relationships=verbose").json()[0]
    assert post["Rels"] == [{"Rel": "PostSynTo", "To": [10, 20, 30], "Kind": "PreSyn",
                             "Tags": ["x"], "Prop": {"conf": "0.9"}}]
    many = c.request("GET", f"{u}/syn/labels", json=[2, 1, 99]).json()
    assert [len(x) for x in many] == [1, 2, 0]
    blocks = c.get(f"{u}/syn/blocks/10_10_10/60_0_0").json()
    assert set(blocks) == {"0,0,0", "1,0,0"}
    assert set(c.get(f"{u}/syn/all-elements").json()) == {"0,0,0", "1,0,0"}
    assert c.get(f"{u}/syn/scan").json() == {"num kv pairs": 2, "num empty blocks": 0}
    # move rewrites partners, relabels; delete cleans partners
    assert c.post(f"{u}/syn/move/70_20_30/5_5_5").status_code == 200
    assert {tuple(e["Pos"]) for e in c.get(f"{u}/syn/label/1").json()} == \
        {(10, 20, 30), (11, 20, 30), (5, 5, 5)}
    assert c.get(f"{u}/syn/label/2").json() == []
    pre = c.get(f"{u}/syn/elements/1_1_1/10_20_30").json()[0]
    assert [r["To"] for r in pre["Rels"]] == [[5, 5, 5], [11, 20, 30]]
    assert c.delete(f"{u}/syn/element/10_20_30").status_code == 200
    for e in c.get(f"{u}/syn/elements/100_100_100/0_0_0").json():
        assert e["Rels"] == []
    assert c.get(f"{u}/syn/tag/x").json() == []
    assert c.get(f"{u}/sz/count/1/PostSyn").json() == {"Label": 1, "PostSyn": 2}
    acts = [m["Action"] for m in c.get(f"{u}/syn/mutations").json()]
    assert acts == ["element-post", "element-move", "element-delete"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "syn/elements", [{"Pos": [1, 1, 1], "Kind": "Bogus"}]),
    ("POST", "syn/elements",
     [PRE, {"Pos": [1, 1, 1], "Rels": [{"Rel": "Hates", "To": [1, 1, 1]}]}]),
    ("POST", "syn/elements", [PRE, {"Pos": [1, 1, 1], "Prop": {"conf": 0.5}}]),
    ("POST", "syn/elements", [PRE, {"Pos": [1, 1], "Kind": "Note"}]),
    ("POST", "syn/elements", [PRE, {"Pos": [1, 1, "a"], "Kind": "Note"}]),
    ("POST", "syn/elements", {"Pos": [1, 1, 1]}),
    ("POST", "syn/elements", "not json"),
    ("DELETE", "syn/element/1_2_3", None),
    ("DELETE", "syn/element/1_2", None),
    ("DELETE", "syn/element/a_b_c", None),
    ("POST", "syn/move/1_2_3/4_5_6", None),
    ("POST", "syn/move/10_20_30/70_20_30", None),
    ("POST", "syn/move/10_20_30", None),
    ("GET", "syn/label/0", None),
    ("GET", "syn/label/abc", None),
    ("GET", "syn/label/1?relationships=maybe", None),
    ("GET", "syn/elements/0_1_1/0_0_0", None),
    ("GET", "syn/roi/r32", None),
    ("GET", "syn/roi/nope", None),
    ("GET", "syn/roi/kv", None),
    ("POST", "syn/blocks", {"0,0,0": [{"Pos": [100, 0, 0], "Kind": "Note"}]}),
    ("POST", "syn/blocks", {"0,0": []}),
    ("POST", "syn/sync", {"sync": "kv"}),
    ("POST", "syn/sync", {"sync": "missing"}),
    ("POST", "syn/sync", {"sync": "sz"}),
    ("POST", "sz/sync", {"sync": "seg"}),
    ("POST", "syn/labels", {"abc": "[]"}),
    ("POST", "syn/labels", {"1": "[{\"Pos\": [1,2,3], \"Kind\": \"Nope\"}]"}),
    ("GET", "sz/top/10/Synapses", None),
    ("GET", "sz/top/-1/PreSyn", None),
    ("GET", "sz/count/1/presyn", None),
    ("GET", "sz/threshold/1/PreSyn?offset=-1", None),
])
def test_bad_input_changes_nothing(api, method, path, body):
    c, _, u = api
    assert c.post(f"{u}/syn/elements", json=[PRE, POST1, POST2]).status_code == 200
    before = state(c, u)
    info = c.get(f"{u}/syn/info").json()
    kw = {} if body is None else (
        {"content": body} if isinstance(body, str) else {"json": body})
    r = c.request(method, f"{u}/{path}", **kw)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text
    assert state(c, u) == before
    assert c.get(f"{u}/syn/info").json() == info


def test_versions_roi_blocks_reload(api):
    c, uuid, u = api
    assert c.post(f"{u}/syn/elements", json=[PRE, POST1, POST2]).status_code == 200
    assert c.post(f"{u}/r64/roi", json=[[0, 0, 1, 1]]).status_code == 200
    assert [e["Pos"] for e in c.get(f"{u}/syn/roi/r64").json()] == [[70, 20, 30]]
    assert c.get(f"{u}/syn/roi/r64,{uuid}").status_code == 200
    assert c.post(f"/api/node/{uuid}/commit", json={}).status_code == 200
    child = c.post(f"/api/node/{uuid}/newversion", json={}).json()["child"]
    cu = f"/api/node/{child}"
    parent = state(c, u)
    assert c.post(f"{cu}/seg/merge", json=[1, 2]).status_code == 200
    assert len(c.get(f"{cu}/syn/label/1").json()) == 3
    assert c.get(f"{cu}/sz/top/5/AllSyn").json() == [{"Label": 1, "Size": 3}]
    assert c.delete(f"{cu}/syn/element/11_20_30").status_code == 200
    assert state(c, u) == parent
    assert c.post(f"{u}/syn/elements", json=[PRE]).status_code == 400  # locked parent
    # POST blocks replaces block lists without denormalizing; reload fixes labels and tags
    el = {"Pos": [65, 1, 1], "Kind": "Gap", "Tags": ["g"]}
    assert c.post(f"{cu}/syn/blocks", json={"1,0,0": [el]}).status_code == 200
    assert c.get(f"{cu}/syn/tag/g").json() == []
    labels_before = c.get(f"{cu}/syn/label/1").json()
    assert c.post(f"{cu}/syn/reload").status_code == 200
    assert c.get(f"{cu}/syn/tag/g").json() == [el | {"Prop": None}]
    got = {tuple(e["Pos"]) for e in c.get(f"{cu}/syn/label/1").json()}
    assert got == {(10, 20, 30), (65, 1, 1)}
    assert len(labels_before) == 2
    assert c.post(f"{cu}/sz/reload").status_code == 200
    assert c.get(f"{cu}/sz/top/5/AllSyn").json() == [{"Label": 1, "Size": 2}]
    assert c.get(f"{cu}/sz/top/5/Gap").json() == [{"Label": 1, "Size": 1}]
    assert state(c, u) == parent
