"""Hypothesis state machine: random writes and edits on random versions of an in-process
labelmap agree with a numpy model that applies the mapping to the supervoxel volume."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app
from tests.datatypes.labelmap.labelmap_model import Model, check_version, rle_body

BS = 16
SHAPE = (32, 32, 32)  # z, y, x: 2x2x2 blocks of 16³
MAX_SCALE = 1
BIG = 2**40


class LabelmapMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.c = TestClient(create_app(Settings.memory()))
        self.root = self.c.post("/api/repos", json={}).json()["root"]
        r = self.c.post(f"/api/repo/{self.root}/instance", json={
            "typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}",
            "MaxDownresLevel": str(MAX_SCALE)})
        assert r.status_code == 200, r.text
        self.uuid = self.root
        self.model = Model(SHAPE)
        self.locked: dict[str, Model] = {}
        # ids start above 2**32: the first allocation follows this max label
        self._ok(self.c.post(f"{self.base}/maxlabel/{BIG}"))

    @property
    def base(self) -> str:
        return f"/api/node/{self.uuid}/seg"

    def _ok(self, r):
        assert r.status_code == 200, r.text
        return r

    @rule(bx=st.integers(0, 1), by=st.integers(0, 1), bz=st.integers(0, 1),
          nlab=st.integers(1, 4), seed=st.integers(0, 10**6))
    def write(self, bx: int, by: int, bz: int, nlab: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        r = self._ok(self.c.post(f"{self.base}/nextlabel/{nlab}"))
        start = r.json()["start"]
        assert r.json()["end"] == start + nlab - 1
        ids = np.arange(start, start + nlab, dtype=np.uint64)
        # piecewise-constant slabs so supervoxels are spatially coherent
        cut = np.sort(rng.integers(0, BS, size=nlab))
        blk = np.zeros((BS, BS, BS), dtype=np.uint64)
        for i, z0 in enumerate(cut.tolist()):
            blk[z0:] = ids[i]
        if rng.random() < 0.3:
            blk[:, :, : BS // 4] = 0
        self._ok(self.c.post(f"{self.base}/raw/0_1_2/{BS}_{BS}_{BS}/{bx*BS}_{by*BS}_{bz*BS}",
                             content=blk.tobytes()))
        self.model.sv[bz * BS:(bz + 1) * BS, by * BS:(by + 1) * BS, bx * BS:(bx + 1) * BS] = blk

    @precondition(lambda self: len(self.model.body_list()) >= 2)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        bodies = sorted(self.model.body_list())
        picks = data.draw(st.lists(st.sampled_from(bodies), min_size=2, max_size=3,
                                   unique=True))
        self._ok(self.c.post(f"{self.base}/merge", json=picks))
        bl = self.model.body_list()
        for m in picks[1:]:
            for s in bl[m]:
                self.model.map[s] = picks[0]

    @precondition(lambda self: any(len(v) >= 2 for v in self.model.body_list().values()))
    @rule(data=st.data())
    def cleave(self, data: st.DataObject) -> None:
        bl = {b: v for b, v in self.model.body_list().items() if len(v) >= 2}
        b = data.draw(st.sampled_from(sorted(bl)))
        svs = data.draw(st.lists(st.sampled_from(bl[b]), min_size=1,
                                 max_size=len(bl[b]) - 1, unique=True))
        r = self._ok(self.c.post(f"{self.base}/cleave/{b}", json=svs))
        new = r.json()["CleavedLabel"]
        for s in svs:
            self.model.map[s] = new

    @precondition(lambda self: (self.model.sv != 0).any())
    @rule(data=st.data(), frac=st.floats(0.1, 0.9))
    def split_supervoxel(self, data: st.DataObject, frac: float) -> None:
        svs = np.unique(self.model.sv)
        sv = int(data.draw(st.sampled_from(svs[svs != 0].tolist())))
        where = self.model.sv == sv
        zcut = int(np.quantile(np.nonzero(where)[0], frac))
        mask = where.copy()
        mask[zcut + 1:] = False
        if not mask.any():
            return
        r = self._ok(self.c.post(f"{self.base}/split-supervoxel/{sv}", content=rle_body(mask)))
        j = r.json()
        body = self.model.body_of(sv)
        self.model.sv[mask] = j["SplitSupervoxel"]
        self.model.sv[where & ~mask] = j["RemainSupervoxel"]
        self.model.map[j["SplitSupervoxel"]] = body
        self.model.map[j["RemainSupervoxel"]] = body

    @precondition(lambda self: (self.model.sv != 0).any())
    @rule(data=st.data(), frac=st.floats(0.1, 0.9))
    def split_body(self, data: st.DataObject, frac: float) -> None:
        bodies = self.model.bodies()
        b = int(data.draw(st.sampled_from(sorted(self.model.body_list()))))
        where = bodies == b
        ycut = int(np.quantile(np.nonzero(where)[1], frac))
        mask = where.copy()
        mask[:, ycut + 1:] = False
        if not mask.any() or mask.sum() == where.sum():
            return
        r = self._ok(self.c.post(f"{self.base}/split/{b}", content=rle_body(mask)))
        new = r.json()["label"]
        rec = self.c.get(f"{self.base}/mutations").json()[-1]
        assert rec["Action"] == "split-complete" and rec["NewLabel"] == new
        svsplits = {int(k): v for k, v in rec["SVSplits"].items()}
        old_sv = self.model.sv.copy()
        for s in np.unique(old_sv[mask]).tolist():
            if s in svsplits:
                sp, rm = svsplits[s]["Split"], svsplits[s]["Remain"]
                self.model.sv[mask & (old_sv == s)] = sp
                self.model.sv[~mask & (old_sv == s)] = rm
                self.model.map[sp] = new
                self.model.map[rm] = b
            else:
                self.model.map[s] = new

    @rule()
    def new_version(self) -> None:
        self._ok(self.c.post(f"/api/node/{self.uuid}/commit", json={"note": "x"}))
        self.locked[self.uuid] = self.model.copy()
        child = self._ok(self.c.post(f"/api/node/{self.uuid}/newversion", json={}))
        self.uuid = child.json()["child"]

    @invariant()
    def agrees(self) -> None:
        check_version(self.c, self.base, self.model, MAX_SCALE, full=False)

    def teardown(self) -> None:
        for uuid, m in self.locked.items():
            check_version(self.c, f"/api/node/{uuid}/seg", m, MAX_SCALE, full=False)
        # a write on a locked node is refused
        for uuid in list(self.locked)[:1]:
            r = self.c.post(f"/api/node/{uuid}/seg/merge", json=[1, 2])
            assert r.status_code == 400


TestLabelmapModel = LabelmapMachine.TestCase
TestLabelmapModel.settings = settings(
    max_examples=12, stateful_step_count=10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
