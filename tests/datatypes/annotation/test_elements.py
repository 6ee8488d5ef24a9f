"""Element JSON codec and packed lists: property tests against plain-dict oracles."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datatypes.annotation.elements import (
    KINDS,
    RELS,
    ElemList,
    parse_element,
    parse_elements,
)
from dvidpy.errors import BadRequest

coord = st.integers(-(2**31), 2**31 - 1)
point = st.lists(coord, min_size=3, max_size=3)
text = st.text(max_size=8).filter(lambda s: "\x00" not in s)
rel = st.fixed_dictionaries({"Rel": st.sampled_from(RELS), "To": point})
element = st.fixed_dictionaries(
    {"Pos": point, "Kind": st.sampled_from(sorted(KINDS))},
    optional={"Tags": st.none() | st.lists(text, max_size=3),
              "Prop": st.none() | st.dictionaries(text, text, max_size=3),
              "Rels": st.none() | st.lists(rel, max_size=3)})


def expected(d: dict) -> dict:
    """What DVID emits for a posted element: fields in order, missing -> null."""
    prop = d.get("Prop")
    return {"Pos": d["Pos"], "Kind": d["Kind"], "Tags": d.get("Tags"),
            "Prop": None if prop is None else dict(sorted(prop.items())),
            "Rels": d.get("Rels")}


@settings(max_examples=300, deadline=None)
@given(element)
def test_element_json_round_trip(d: dict) -> None:
    e = parse_element(json.loads(json.dumps(d)))
    full, cut = e.encode()
    out = json.loads(full)
    exp = expected(d)
    assert out == exp
    assert list(out) == ["Pos", "Kind", "Tags", "Prop", "Rels"]
    if exp["Prop"] is not None:
        assert list(out["Prop"]) == sorted(exp["Prop"])
    nr = json.loads(full[:cut] + b"}")
    assert nr == {k: v for k, v in exp.items() if k != "Rels"}
    assert parse_element(out).encode() == (full, cut)  # stable when re-posted


@settings(max_examples=100, deadline=None)
@given(st.lists(element, max_size=12), st.data())
def test_elemlist_ops(ds: list[dict], data: st.DataObject) -> None:
    elems = parse_elements(ds)
    # last one wins for duplicate positions
    last = {tuple(d["Pos"]): expected(d) for d in ds}
    assert {tuple(e.pos): json.loads(e.encode()[0]) for e in elems} == last
    lst = ElemList.of(elems)
    back = ElemList.decode(lst.encode())
    assert [json.loads(j) for j in back.iter_json()] == [json.loads(j) for j in lst.iter_json()]
    assert back.pos.tolist() == [list(e.pos) for e in elems]
    assert back.kind.tolist() == [KINDS[e.kind] for e in elems]
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(lst), max_size=len(lst))),
                    dtype=bool)
    sel = back.select(mask)
    assert [json.loads(j) for j in sel.iter_json()] == \
        [json.loads(j) for j, m in zip(lst.iter_json(), mask, strict=True) if m]
    rest = back.without(sel.pos)
    assert len(rest) + len(sel) == len(back)
    both = ElemList.concat([rest, sel])
    assert sorted(map(tuple, both.pos.tolist())) == sorted(map(tuple, back.pos.tolist()))
    assert sorted(both.iter_json(nr=True)) == sorted(back.iter_json(nr=True))


BAD = [
    ({"Pos": [1, 2, 3], "Kind": "Synapse"}, "Unknown element type"),
    ({"Pos": [1, 2, 3], "Kind": "PreSyn", "Rels": [{"Rel": "Likes", "To": [1, 1, 1]}]},
     "Unknown relationship"),
    ({"Pos": [1, 2, 3], "Prop": {"conf": 0.9}}, "must be a string"),
    ({"Pos": [1, 2, 3], "Prop": {"ok": True}}, "must be a string"),
    ({"Pos": [1, 2], "Kind": "PreSyn"}, "3 integers"),
    ({"Pos": [1, 2, 3.5]}, "3 integers"),
    ({"Pos": [1, 2, "3"]}, "3 integers"),
    ({"Pos": [1, 2, 2**31]}, "int32"),
    ({"Kind": "PreSyn"}, "no Pos"),
    ({"Pos": [1, 2, 3], "Tags": ["a", 3]}, "Tags"),
    ({"Pos": [1, 2, 3], "Tags": "a"}, "Tags"),
    ({"Pos": [1, 2, 3], "Rels": [{"Rel": "PreSynTo"}]}, "no To"),
    ({"Pos": [1, 2, 3], "Rels": [{"Rel": "PreSynTo", "To": [1, 2]}]}, "3 integers"),
    ({"Pos": [1, 2, 3], "Rels": {"Rel": "PreSynTo"}}, "Rels must be an array"),
    ([1, 2, 3], "not a JSON object"),
]


@pytest.mark.parametrize(("bad", "msg"), BAD)
def test_bad_elements(bad: object, msg: str) -> None:
    with pytest.raises(BadRequest, match=msg):
        parse_elements([{"Pos": [0, 0, 0], "Kind": "Note"}, bad])


def test_defaults_match_go_zero_values() -> None:
    e = parse_element({"Pos": [1, 2, 3], "Rels": [{"To": [4, 5, 6]}], "Extra": 1})
    assert json.loads(e.encode()[0]) == {
        "Pos": [1, 2, 3], "Kind": "Unknown", "Tags": None, "Prop": None,
        "Rels": [{"Rel": "UnknownRelationship", "To": [4, 5, 6]}]}
    assert parse_elements(None) == []
    with pytest.raises(BadRequest):
        parse_elements({"Pos": [1, 2, 3]})
