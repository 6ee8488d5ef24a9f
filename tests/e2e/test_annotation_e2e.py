"""annotation + labelsz following a labelmap on a real server process (LevelDB).

Thousands of synapses, then merges, cleaves, supervoxel splits and body splits on a
child version; after each step every body's ``label`` answer and labelsz
``top``/``count``/``threshold`` equal an oracle computed from numpy voxels and the element
list; the parent version keeps answering as before; ``reload`` rebuilds the same state
and a restart keeps it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datatypes" / "annotation"))
from synapse_oracle import (
    INDEXES,
    cell_volume,
    expected_by_label,
    expected_counts,
    expected_top,
    label_set,
    legacy_rle,
    synapses,
)

pytestmark = pytest.mark.e2e
SHAPE = (64, 128, 128)  # z, y, x


class World:
    """Oracle state of one version."""

    def __init__(self, vol: np.ndarray, mapping: dict[int, int],
                 kinds: dict[tuple[int, ...], str]) -> None:
        self.vol, self.mapping, self.kinds = vol, mapping, kinds

    def copy(self) -> World:
        return World(self.vol.copy(), dict(self.mapping), dict(self.kinds))

    def bodies(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for sv in np.unique(self.vol).tolist():
            b = self.mapping.get(sv, sv)
            if sv and b:
                out.setdefault(b, []).append(sv)
        return out


def check(client, uuid: str, w: World, extra_labels=()) -> None:
    u = f"/api/node/{uuid}"
    exp = expected_by_label(w.kinds, w.vol, w.mapping)
    for lab in set(exp) | set(w.bodies()) | set(extra_labels):
        r = client.get(f"{u}/syn/label/{lab}")
        assert r.status_code == 200
        assert label_set(r.content) == exp.get(lab, set()), f"label {lab} at {uuid}"
    counts = expected_counts(exp)
    for ix in INDEXES:
        assert client.get(f"{u}/sz/top/1000/{ix}").json() == expected_top(counts[ix], 1000), ix
        thr = client.get(f"{u}/sz/threshold/3/{ix}?offset=1&n=5").json()
        assert thr == [t for t in expected_top(counts[ix], 1000) if t["Size"] >= 3][1:6]
    some = [*sorted(counts["PreSyn"])[:5], 987654321]
    got = client.request("GET", f"{u}/sz/counts/PreSyn", json=some).json()
    assert got == [{"Label": lab, "PreSyn": counts["PreSyn"].get(lab, 0)} for lab in some]
    lab = some[0]
    assert client.get(f"{u}/sz/count/{lab}/AllSyn").json() == {
        "Label": lab, "AllSyn": counts["AllSyn"].get(lab, 0)}


def test_synapses_follow_segmentation(server, client) -> None:
    rng = np.random.default_rng(7)
    uuid = client.post("/api/repos", json={}).json()["root"]
    for body in ({"typename": "labelmap", "dataname": "seg"},
                 {"typename": "annotation", "dataname": "syn"},
                 {"typename": "labelsz", "dataname": "sz"}):
        assert client.post(f"/api/repo/{uuid}/instance", json=body).status_code == 200
    u = f"/api/node/{uuid}"
    assert client.post(f"{u}/syn/sync", json={"sync": "seg"}).status_code == 200
    assert client.post(f"{u}/sz/sync", json={"sync": "syn"}).status_code == 200
    assert client.get(f"{u}/syn/info").json()["Base"]["Syncs"] == ["seg"]
    vol = cell_volume(SHAPE, 16, 30, rng)
    r = client.post(f"{u}/seg/raw/0_1_2/128_128_64/0_0_0", content=vol.tobytes())
    assert r.status_code == 200, r.text
    els = synapses(1000, 2, SHAPE, rng)
    for i in range(0, len(els), 1000):
        assert client.post(f"{u}/syn/elements", json=els[i:i + 1000]).status_code == 200
    w = World(vol, {}, {tuple(e["Pos"]): e["Kind"] for e in els})
    check(client, uuid, w)
    rels = client.get(f"{u}/syn/label/{next(iter(w.bodies()))}?relationships=true").json()
    assert all(e["Rels"] for e in rels)

    # branch: edits on the child only
    assert client.post(f"/api/node/{uuid}/commit", json={}).status_code == 200
    child = client.post(f"/api/node/{uuid}/branch", json={"branch": "proof"}).json()["child"]
    cu = f"/api/node/{child}"
    parent = w.copy()
    w = w.copy()

    bodies = sorted(w.bodies())
    a, b, c3 = bodies[0], bodies[1], bodies[2]
    assert client.post(f"{cu}/seg/merge", json=[a, b, c3]).status_code == 200
    for sv, body in w.bodies().items():
        if sv in (b, c3):
            for s in body:
                w.mapping[s] = a
    check(client, child, w, extra_labels=[b, c3])

    svs = w.bodies()[a]
    cleaved = svs[: len(svs) // 2]
    r = client.post(f"{cu}/seg/cleave/{a}", json=cleaved)
    assert r.status_code == 200, r.text
    new = r.json()["CleavedLabel"]
    for s in cleaved:
        w.mapping[s] = new
    check(client, child, w)

    # supervoxel split: a thin slab of one supervoxel; body ids stay the same
    sv = int(w.vol[0, 0, 0])
    mask = (w.vol == sv)
    mask[:, :, 8:] = False
    r = client.post(f"{cu}/seg/split-supervoxel/{sv}", content=legacy_rle(mask))
    assert r.status_code == 200, r.text
    js = r.json()
    body_sv = w.mapping.get(sv, sv)
    w.vol[mask] = js["SplitSupervoxel"]
    w.vol[(w.vol == sv)] = js["RemainSupervoxel"]
    w.mapping.update({js["SplitSupervoxel"]: body_sv, js["RemainSupervoxel"]: body_sv, sv: 0})
    check(client, child, w)

    # body split: the z < 16 part of the largest body
    target = max(w.bodies(), key=lambda bb: len(w.bodies()[bb]))
    in_body = np.isin(w.vol, [s for s, bb in ((s, w.mapping.get(s, s))
                                              for s in np.unique(w.vol).tolist()) if bb == target])
    smask = in_body.copy()
    smask[16:] = False
    assert smask.any() and (in_body & ~smask).any()
    r = client.post(f"{cu}/seg/split/{target}", content=legacy_rle(smask))
    assert r.status_code == 200, r.text
    newb = r.json()["label"]
    after = np.frombuffer(client.get(f"{cu}/seg/raw/0_1_2/128_128_64/0_0_0?supervoxels=true")
                          .content, np.uint64).reshape(SHAPE)
    # oracle: voxels in the split mask belong to the new body, the rest keep theirs
    moved = {int(s) for s in np.unique(after[smask]).tolist()}
    w.vol = after.copy()
    for s in moved:
        w.mapping[s] = newb
    for s in np.unique(after[in_body & ~smask]).tolist():
        w.mapping[int(s)] = target
    check(client, child, w)

    # parent unchanged
    check(client, uuid, parent)

    # element edits on the child, then reload rebuilds the same state
    pre = next(e for e in els if e["Kind"] == "PreSyn")
    free = next(p for p in ([x, y, 5] for x in range(128) for y in range(128))
                if tuple(p) not in w.kinds)
    assert client.post(f"{cu}/syn/move/{'_'.join(map(str, pre['Pos']))}/"
                       f"{'_'.join(map(str, free))}").status_code == 200
    w.kinds[tuple(free)] = w.kinds.pop(tuple(pre["Pos"]))
    gone = pre["Rels"][0]["To"]
    assert client.delete(f"{cu}/syn/element/{'_'.join(map(str, gone))}").status_code == 200
    del w.kinds[tuple(gone)]
    moved_el = client.get(f"{cu}/syn/elements/1_1_1/{'_'.join(map(str, free))}").json()[0]
    assert [r["To"] for r in moved_el["Rels"]] == [p["To"] for p in pre["Rels"][1:]]
    check(client, child, w)
    before = {lab: label_set(client.get(f"{cu}/syn/label/{lab}").content) for lab in w.bodies()}
    tops = [client.get(f"{cu}/sz/top/1000/{ix}").json() for ix in INDEXES]
    assert client.post(f"{cu}/syn/reload").status_code == 200
    assert client.post(f"{cu}/sz/reload").status_code == 200
    assert {lab: label_set(client.get(f"{cu}/syn/label/{lab}").content)
            for lab in w.bodies()} == before
    assert [client.get(f"{cu}/sz/top/1000/{ix}").json() for ix in INDEXES] == tops
    check(client, uuid, parent)

    server.restart()
    check(client, child, w)
    check(client, uuid, parent)
    acts = {m["Action"] for m in client.get(f"{cu}/syn/mutations").json()}
    assert {"sync-merge", "sync-cleave", "sync-split", "element-move", "element-delete",
            "reload"} <= acts
