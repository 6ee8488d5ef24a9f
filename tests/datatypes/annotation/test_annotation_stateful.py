"""Hypothesis state machine: element posts, moves, deletes interleaved with labelmap edits
(merges, cleaves, voxel overwrites); label/tag lists and labelsz counts must always equal
an oracle computed from numpy voxels, a supervoxel->body dict and the element dict."""

from __future__ import annotations

import json
import warnings

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from synapse_oracle import INDEXES, expected_by_label, expected_counts, expected_top

from dvidpy.config import Settings
from server import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SHAPE = (32, 32, 32)  # z, y, x; labelmap blocks of 16^3
KIND_CHOICES = ("PreSyn", "PostSyn", "Gap", "Note", "Unknown")
TAGS = ("a", "b")
coord = st.tuples(st.integers(-4, 35), st.integers(0, 31), st.integers(0, 31))


class AnnotationMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 2**16))
    def setup(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.c = TestClient(create_app(Settings.memory()))
        self.uuid = self.c.post("/api/repos", json={}).json()["root"]
        self.u = f"/api/node/{self.uuid}"
        for body in ({"typename": "labelmap", "dataname": "seg", "BlockSize": "16,16,16"},
                     {"typename": "annotation", "dataname": "syn"},
                     {"typename": "labelsz", "dataname": "sz"}):
            assert self.c.post(f"/api/repo/{self.uuid}/instance", json=body).status_code == 200
        assert self.c.post(f"{self.u}/syn/sync", json={"sync": "seg"}).status_code == 200
        assert self.c.post(f"{self.u}/sz/sync", json={"sync": "syn"}).status_code == 200
        ids = rng.integers(1, 7, size=(4, 4, 4)).astype(np.uint64)
        self.vol = np.repeat(np.repeat(np.repeat(ids, 8, 0), 8, 1), 8, 2)
        self.next_sv = 100
        self.put_vol((0, 0, 0), self.vol)
        self.mapping: dict[int, int] = {}
        self.elements: dict[tuple[int, int, int], tuple[str, tuple[str, ...]]] = {}
        self.seen_bodies: set[int] = set(range(1, 7))

    def put_vol(self, off: tuple[int, int, int], arr: np.ndarray) -> None:
        nz, ny, nx = arr.shape
        r = self.c.post(f"{self.u}/seg/raw/0_1_2/{nx}_{ny}_{nz}/{off[0]}_{off[1]}_{off[2]}",
                        content=np.ascontiguousarray(arr, np.uint64).tobytes())
        assert r.status_code == 200, r.text

    def bodies(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for sv in np.unique(self.vol).tolist():
            b = self.mapping.get(sv, sv)
            if b:
                out.setdefault(b, []).append(sv)
        return out

    # ----- element rules --------------------------------------------------------------

    @rule(pts=st.lists(st.tuples(coord, st.sampled_from(KIND_CHOICES),
                                 st.lists(st.sampled_from(TAGS), max_size=2, unique=True)),
                       min_size=1, max_size=6))
    def post(self, pts: list) -> None:
        els = []
        for p, kind, tags in pts:
            els.append({"Pos": list(p), "Kind": kind, "Tags": tags or None,
                        "Rels": [{"Rel": "GroupedWith", "To": list(pts[0][0])}]})
        r = self.c.post(f"{self.u}/syn/elements", json=els)
        assert r.status_code == 200, r.text
        for p, kind, tags in pts:
            self.elements[p] = (kind, tuple(tags))

    @precondition(lambda self: self.elements)
    @rule(data=st.data(), to=coord)
    def move(self, data: st.DataObject, to: tuple[int, int, int]) -> None:
        frm = data.draw(st.sampled_from(sorted(self.elements)))
        r = self.c.post(f"{self.u}/syn/move/{'_'.join(map(str, frm))}/{'_'.join(map(str, to))}")
        if to in self.elements and to != frm:
            assert r.status_code == 400
            return
        assert r.status_code == 200, r.text
        self.elements[to] = self.elements.pop(frm)

    @precondition(lambda self: self.elements)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from(sorted(self.elements)))
        assert self.c.delete(f"{self.u}/syn/element/{'_'.join(map(str, p))}").status_code == 200
        del self.elements[p]
        r = self.c.delete(f"{self.u}/syn/element/{'_'.join(map(str, p))}")
        assert r.status_code == 400

    # ----- labelmap rules -------------------------------------------------------------

    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        bodies = sorted(self.bodies())
        if len(bodies) < 2:
            return
        a, b = data.draw(st.lists(st.sampled_from(bodies), min_size=2, max_size=2, unique=True))
        r = self.c.post(f"{self.u}/seg/merge", json=[a, b])
        assert r.status_code == 200, r.text
        for sv, body in list(self.mapping.items()):
            if body == b:
                self.mapping[sv] = a
        for sv in np.unique(self.vol).tolist():
            if self.mapping.get(sv, sv) == b:
                self.mapping[sv] = a

    @rule(data=st.data())
    def cleave(self, data: st.DataObject) -> None:
        cands = {b: s for b, s in self.bodies().items() if len(s) > 1}
        if not cands:
            return
        body = data.draw(st.sampled_from(sorted(cands)))
        svs = data.draw(st.lists(st.sampled_from(cands[body]), min_size=1,
                                 max_size=len(cands[body]) - 1, unique=True))
        r = self.c.post(f"{self.u}/seg/cleave/{body}", json=svs)
        assert r.status_code == 200, r.text
        new = r.json()["CleavedLabel"]
        for sv in svs:
            self.mapping[sv] = new

    @rule(block=st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 1)),
          seed=st.integers(0, 1000), fresh=st.booleans())
    def overwrite_block(self, block: tuple[int, int, int], seed: int, fresh: bool) -> None:
        rng = np.random.default_rng(seed)
        pool = [self.next_sv, self.next_sv + 1] if fresh else np.unique(self.vol).tolist()
        self.next_sv += 2
        ids = rng.choice(pool, size=(2, 2, 2)).astype(np.uint64)
        arr = np.repeat(np.repeat(np.repeat(ids, 8, 0), 8, 1), 8, 2)
        x, y, z = (16 * b for b in block)
        self.put_vol((x, y, z), arr)
        self.vol[z:z + 16, y:y + 16, x:x + 16] = arr

    # ----- invariants -----------------------------------------------------------------

    @invariant()
    def labels_and_counts_match(self) -> None:
        kinds = {p: k for p, (k, _) in self.elements.items()}
        exp = expected_by_label(kinds, self.vol, self.mapping)
        labels = set(exp) | set(self.bodies()) | set(self.mapping.values())
        for lab in labels:
            r = self.c.get(f"{self.u}/syn/label/{lab}")
            got = {(tuple(e["Pos"]), e["Kind"]) for e in json.loads(r.text)}
            assert got == exp.get(lab, set()), lab
        counts = expected_counts(exp)
        for ix in INDEXES:
            top = self.c.get(f"{self.u}/sz/top/1000/{ix}").json()
            assert top == expected_top(counts[ix], 1000), ix
        for t in TAGS:
            got = {tuple(e["Pos"]) for e in self.c.get(f"{self.u}/syn/tag/{t}").json()}
            assert got == {p for p, (_, tags) in self.elements.items() if t in tags}


AnnotationMachine.TestCase.settings = settings(
    max_examples=12, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TestAnnotationMachine = AnnotationMachine.TestCase
