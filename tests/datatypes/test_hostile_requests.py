"""Hostile requests to uint8blk, roi, annotation and labelsz (issue 10's defect families).

One in-process server holds an instance of each datatype with some data. Each test sends
the bad inputs listed in it and asserts, for every one, a 4xx plain-text answer whose
message names the problem (or, for the bounded-work family, a correct answer reached by
a bounded number of storage scans), and that a snapshot of every stored key and value
is unchanged afterwards: nothing was written, not even partly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from dvidpy.config import Settings
from dvidpy.mutations import OUTBOX
from server import create_app
from storage.base import KeyRange

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
BIG = 2**31 - 1


class Server:
    def __init__(self, client: TestClient, uuid: str) -> None:
        self.c = client
        self.uuid = uuid
        self.mgr = client.app.state.manager  # type: ignore[attr-defined]
        self.scans = 0
        for eng in self.mgr.engines.values():
            inner = eng.scan

            def counted(rng: KeyRange, keys_only: bool = False, _inner=inner) -> Iterator[Any]:
                if not rng.start.startswith(OUTBOX):  # not the mutation drainer's polls
                    self.scans += 1
                return _inner(rng, keys_only=keys_only)

            eng.scan = counted  # type: ignore[method-assign]

    def url(self, data: str, rest: str) -> str:
        return f"/api/node/{self.uuid}/{data}/{rest}"

    def snapshot(self) -> dict[str, list[tuple[bytes, bytes]]]:
        """Every key and value of every engine (the metadata store included), once the
        mutation outbox is drained into the log (the drainer thread moves it whenever it
        runs: a snapshot taken before would race with it)."""
        self.mgr.mutations.drain_once()
        out = {}
        for alias, eng in self.mgr.engines.items():
            n = self.scans
            out[alias] = list(eng.scan(KeyRange()))
            self.scans = n
        return out

    def send(self, method: str, data: str, rest: str, body: Any = None) -> Any:
        kw: dict[str, Any] = {}
        if isinstance(body, bytes | str):
            kw["content"] = body
        elif body is not None:
            kw["json"] = body
        return self.c.request(method, self.url(data, rest), **kw)


@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    settings = Settings.memory()
    settings.max_request_bytes = 1 << 32
    with TestClient(create_app(settings)) as c:
        uuid = c.post("/api/repos", json={}).json()["root"]
        for body in ({"typename": "uint8blk", "dataname": "gray", "BlockSize": "16,16,16"},
                     {"typename": "uint8blk", "dataname": "aniso", "BlockSize": "16,16,16",
                      "VoxelSize": "1e-299,1,1e299"},
                     {"typename": "roi", "dataname": "r", "BlockSize": "16,16,16"},
                     {"typename": "roi", "dataname": "wide", "BlockSize": "64,64,64"},
                     {"typename": "annotation", "dataname": "syn"},
                     {"typename": "labelsz", "dataname": "sz"},
                     {"typename": "keyvalue", "dataname": "kv"}):
            assert c.post(f"/api/repo/{uuid}/instance", json=body).status_code == 200
        s = Server(c, uuid)
        assert s.send("POST", "sz", "sync", {"sync": "syn"}).status_code == 200
        vol = np.arange(32 ** 3, dtype=np.uint32).astype(np.uint8).tobytes()
        assert s.send("POST", "gray", "raw/0_1_2/32_32_32/0_0_0", vol).status_code == 200
        assert s.send("POST", "aniso", "raw/0_1_2/16_16_16/0_0_0", vol[:4096]).is_success
        assert s.send("POST", "r", "roi", [[0, 0, 0, 1]]).status_code == 200
        wide = [[z, z, I32_MIN // 64, I32_MAX // 64] for z in range(-300, 300)]
        assert s.send("POST", "wide", "roi", wide).status_code == 200
        elems = [{"Pos": p, "Kind": k, "Tags": ["t"], "Rels": []} for p, k in (
            ([1, 2, 3], "PreSyn"), ([40, 50, 60], "PostSyn"), ([I32_MAX, I32_MAX, I32_MAX],
                                                             "Note"),
            ([I32_MIN, I32_MIN, I32_MIN], "PreSyn"), ([-70, 5, 64 * 10], "Gap"))]
        assert s.send("POST", "syn", "elements", elems).status_code == 200
        assert s.send("POST", "kv", "key/a", b"x").status_code == 200
        yield s


def _bad(s: Server, cases: list[tuple[str, str, str, Any, tuple[str, ...]]]) -> None:
    """Each case is (method, instance, path, body, words): a 4xx in plain text whose message
    contains one of ``words``; then nothing stored has changed."""
    before = s.snapshot()
    for method, data, rest, body, words in cases:
        r = s.send(method, data, rest, body)
        where = (method, data, rest, r.status_code, r.text[:300])
        assert 400 <= r.status_code < 500, where
        assert r.headers["content-type"].startswith("text/plain"), where
        assert any(w.lower() in r.text.lower() for w in words), where
    assert s.snapshot() == before


# ----- (a) bounded work: driven by what is stored, or refused -----------------------------

def test_bounded_work(srv: Server) -> None:
    s = srv
    whole = f"{BIG}_{BIG}_{BIG}/{I32_MIN}_{I32_MIN}_{I32_MIN}"
    # (path, expected JSON answer or None to skip, most storage scans allowed)
    ok_cases: list[tuple[str, str, Any, int]] = [
        ("syn", "elements/100000_100000_100000/0_0_0",
         [[1, 2, 3], [40, 50, 60]], 4),
        ("syn", "elements/100000_100000_100000/-50000_-50000_-50000",
         [[1, 2, 3], [40, 50, 60], [-70, 5, 640]], 8),
        ("syn", f"elements/{whole}", None, 4),
        ("syn", f"blocks/{whole}", None, 4),
        ("syn", "blocks/1_2147483647_2147483647/0_-2147483648_-2147483648", {}, 8),
        ("syn", "roi/wide", None, 8),
        ("gray", "subvolblocks/16_16_16777216/0_0_0", None, 4),
        ("gray", "subvolblocks/16_16777216_16/-134217728_-134217728_0", None, 4),
        ("sz", "top/18446744073709551615/AllSyn", None, 2),
        ("sz", "threshold/0/AllSyn?offset=2147483647&n=2147483647", [], 2),
    ]
    before = s.snapshot()
    t0 = time.perf_counter()
    for data, rest, want, max_scans in ok_cases:
        s.scans = 0
        r = s.send("GET", data, rest)
        assert r.status_code == 200, (rest, r.text[:300])
        assert s.scans <= max_scans, (rest, s.scans)
        if want is not None and rest.startswith("elements"):
            assert sorted(e["Pos"] for e in r.json()) == sorted(want), rest
        elif want is not None:
            assert r.json() == want, rest
    got = s.send("GET", "syn", f"elements/{whole}").json()  # every negative coordinate
    assert [e["Pos"] for e in got] == [[I32_MIN] * 3]
    got = s.send("GET", "syn", f"elements/{BIG}_{BIG}_{BIG}/1_1_1").json()
    assert sorted(e["Pos"] for e in got) == [[1, 2, 3], [40, 50, 60], [I32_MAX] * 3]
    assert s.send("GET", "syn", "roi/wide").json() is not None
    raw = s.send("GET", "gray", "subvolblocks/16_16_16777216/0_0_0?compression=uncompressed"
                 ).content  # blocks (0,0,0) and (0,0,1) of the 32^3 write
    assert len(raw) == 2 * (16 + 4096)
    assert np.frombuffer(raw[:12], "<i4").tolist() == [0, 0, 0]
    assert np.frombuffer(raw[4112:4124], "<i4").tolist() == [0, 0, 1]
    # the old row-by-row walks took minutes on these; allow a slow shared machine
    assert time.perf_counter() - t0 < 20
    refused = [
        ("GET", "wide", "partition?batchsize=1", None, ("larger batchsize",)),
        ("GET", "aniso", "isotropic/0_2/16_16/0_0_0", None, ("limit",)),
        ("GET", "aniso", "isotropic/1_2/16_16/0_0_0", None, ("limit",)),
        ("GET", "gray", "raw/0_1_2/2048_2048_2048/0_0_0", None, ("limit",)),
        ("GET", "gray", "subvolblocks/16_16_17825792/0_0_0", None, ("limit",)),
        ("GET", "gray", "blocks/0_0_0/2147483647", None, ("limit", "int32")),
        ("GET", "r", "mask/0_1_2/2048_2048_2048/0_0_0", None, ("limit",)),
        ("GET", "gray", "arb/0_0_0/1e9_0_0/0_1e9_0/1", None, ("limit",)),
    ]
    _bad(s, refused)
    assert s.snapshot() == before


# ----- (b) coordinates the keys cannot hold ----------------------------------------------

def test_coordinates_outside_int32(srv: Server) -> None:
    s = srv
    vol = b"\0" * 4096
    edge = 2**31 - 8  # a 16-voxel box from here ends past INT32_MAX
    words = ("int32", "2147483647")
    cases = [
        ("GET", "gray", f"raw/0_1_2/16_16_16/{edge}_0_0", None, words),
        ("GET", "gray", f"raw/0_1/16_16/0_{edge}_0", None, words),
        ("GET", "gray", f"raw/0_1_2/16_16_16/0_0_{I32_MIN - 1}", None, words),
        ("POST", "gray", f"raw/0_1_2/16_16_16/{edge}_0_0", vol, words),
        ("POST", "gray", "raw/0_1_2/16_16_16/0_99999999999_0", vol, words),
        ("GET", "gray", f"subvolblocks/32_32_32/{2**31 - 16}_0_0", None, words),
        ("GET", "gray", f"blocks/{2**27 - 1}_0_0/2", None, words),
        ("GET", "gray", f"blocks/0_{-(2**27) - 1}_0/1", None, words),
        ("POST", "gray", f"blocks/{2**27 - 1}_0_0/2", vol * 2, words),
        ("POST", "gray", f"blocks/{I32_MAX}_0_0/1", vol, words),
        ("GET", "gray", "rawkey?x=2147483648&y=0&z=0", None, words),
        ("POST", "gray", "extents", {"MinPoint": [0, 0, 0], "MaxPoint": [2**31, 0, 0]},
         ("int32",)),
        ("POST", "gray", f"downres?bbox=0,0,0,{2**31},16,16", None, ("int32",)),
        ("GET", "r", f"mask/0_1_2/16_16_16/{edge}_0_0", None, words),
        ("POST", "r", "roi", [[0, 0, 0, 2**31]], words),
        ("POST", "r", "ptquery", [[2**63, 0, 0]], ("integer",)),
        ("GET", "syn", f"elements/16_16_16/{edge}_0_0", None, words),
        ("GET", "syn", f"blocks/16_16_16/0_0_{edge}", None, words),
        ("POST", "syn", "elements", [{"Pos": [2**31, 0, 0]}], words),
        ("POST", "syn", "elements", [{"Pos": [0, 0, 0], "Rels": [{"To": [0, -2**31 - 1, 0]}]}],
         words),
        ("POST", "syn", "blocks", {"2147483648,0,0": []}, words),
        ("POST", "syn", "move/1_2_3/2147483648_0_0", None, words),
        ("DELETE", "syn", "element/0_0_-2147483649", None, words),
    ]
    _bad(s, cases)


# ----- (c) unknown roi= -------------------------------------------------------------------

def test_unknown_roi_is_400(srv: Server) -> None:
    s = srv
    vol = b"\1" * 4096
    nosuch = ("nosuch",)
    cases = [
        ("GET", "gray", "raw/0_1_2/16_16_16/0_0_0?roi=nosuch", None, nosuch),
        ("GET", "gray", "raw/0_1/16_16/0_0_0?roi=nosuch", None, nosuch),
        ("GET", "gray", "raw/0_1_2/16_16_16/0_0_0/jpg?roi=nosuch", None, nosuch),
        ("GET", "gray", "isotropic/0_2/16_16/0_0_0/png?roi=nosuch", None, nosuch),
        ("POST", "gray", "raw/0_1_2/16_16_16/0_0_0?roi=nosuch", vol, nosuch),
        ("POST", "gray", "raw/0_1_2/16_16_16/0_0_0?roi=kv", vol, ("not an roi",)),
        ("GET", "gray", "raw/0_1_2/16_16_16/0_0_0?roi=syn", None, ("not an roi",)),
        ("GET", "syn", "roi/nosuch", None, nosuch),
        ("GET", "syn", f"roi/nosuch,{s.uuid}", None, nosuch),
        ("GET", "syn", "roi/kv", None, ("not an roi",)),
        ("GET", "syn", "roi/r,ffffffffffffffff", None, ("ffffffffffffffff",)),
    ]
    _bad(s, cases)
    before = s.snapshot()
    r = s.c.post(f"/api/repo/{s.uuid}/instance", json={
        "typename": "labelsz", "dataname": "sz2", "ROI": f"nosuch,{s.uuid}"})
    assert r.status_code == 400 and "nosuch" in r.text
    assert s.snapshot() == before


# ----- (d) JSON bodies: one bounded reader --------------------------------------------------

@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
                                  b"\xff\xfe", b"{", b"", b"[1,]"])
def test_json_bodies(srv: Server, body: bytes) -> None:
    s = srv
    words = ("json", "depth", "nest", "expects", "body")
    cases = [(m, d, p, body, words) for m, d, p in (
        ("POST", "gray", "extents"), ("POST", "gray", "resolution"), ("POST", "gray", "info"),
        ("POST", "r", "roi"), ("POST", "r", "ptquery"), ("POST", "syn", "elements"),
        ("GET", "syn", "labels"), ("POST", "syn", "labels"), ("POST", "syn", "blocks"),
        ("GET", "sz", "counts/PreSyn"), ("POST", "sz", "tags"), ("POST", "syn", "sync"))]
    _bad(s, cases)


def test_json_inside_json(srv: Server) -> None:
    """POST labels carries element arrays as JSON strings: parsed by the same reader."""
    deep = "[" * 100_000
    _bad(srv, [("POST", "syn", "labels", {"7": deep}, ("depth", "nest")),
               ("POST", "syn", "labels", {"7": "[{"}, ("json",))])
