"""ROI-filtered push (``dvidpy push --roi``) of a labelmap and a synced annotation.

Layout: a labelmap ``seg`` of 2x2x2 blocks of 64^3 voxels whose bodies are slabs that
cross the ROI's border, an annotation ``syn`` synced to it (so 64^3 element blocks), and
an roi ``region`` with 32^3 blocks: all of labelmap block (0,0,0) plus the 32^3 corner
(64..95)^3 of block (1,1,1). Element-wise the ROI is finer than the annotation's blocks,
so block lists are filtered by element too.

Versions: root (committed) -> child (committed): a labelmap merge, an inside element
moved outside (its body's label list and the ``solo`` tag list keep only outside
elements: the ROI push must send tombstones there, or the receiver would show the root's
lists at the child) and the only inside element of block (1,1,1) deleted (same for that
block list). Expected answers are the source's answers restricted to elements whose
position lies in the ROI's blocks, computed here from the ROI's spans.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import numpy as np
import pytest

from tests.transfer.test_transfer_e2e import cli, job, ok

pytestmark = pytest.mark.e2e
N = 128  # volume edge in voxels: 2x2x2 labelmap blocks of 64^3
ROI_SPANS = [[0, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 1], [1, 1, 0, 1],  # labelmap block 0,0,0
             [2, 2, 2, 2]]  # a corner of labelmap block 1,1,1 (z, y, x0, x1; 32^3 blocks)
A, A_MOVED = [50, 10, 10], [90, 20, 20]  # body 2, inside -> outside at the child
B = [80, 10, 10]  # body 2, outside
C = [70, 70, 70]  # inside, the only inside element of element block (1,1,1); deleted
D = [100, 100, 100]  # outside, element block (1,1,1)
BODY2_INSIDE = (slice(0, 64), slice(0, 64), slice(48, 64))  # z, y, x: kept free of others


def body_of(x: int, y: int, z: int) -> int:
    """Slabs 48 voxels wide in X, halves in Y and Z: 12 bodies."""
    return 1 + x // 48 + 3 * (y // 64) + 6 * (z // 64)


def elements(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Random synapses (pre -> post pairs, some tagged) plus the special A, B, C, D."""
    pts: list[list[int]] = []
    while len(pts) < 60:
        p = rng.integers(0, N, size=3).tolist()
        x, y, z = p
        if (48 <= x < 64 and y < 64 and z < 64) or all(64 <= c < 96 for c in p) \
                or p in pts or p in (A, A_MOVED, B, C, D):
            continue  # keep body 2's inside part and the (64..95)^3 corner to A and C
        pts.append(p)
    out: list[dict[str, Any]] = []
    for i in range(0, len(pts), 2):
        pre, post = pts[i], pts[i + 1]
        tags = [["t1"], ["t1", "t2"], [], None][i // 2 % 4]
        out.append({"Pos": pre, "Kind": "PreSyn", "Tags": tags, "Prop": {"i": str(i)},
                    "Rels": [{"Rel": "PreSynTo", "To": post}]})
        out.append({"Pos": post, "Kind": "PostSyn", "Tags": ["t2"],
                    "Rels": [{"Rel": "PostSynTo", "To": pre}]})
    out += [
        {"Pos": A, "Kind": "PreSyn", "Tags": ["solo", "t1"],
         "Rels": [{"Rel": "PreSynTo", "To": B}]},  # inside, relationship to outside
        {"Pos": B, "Kind": "PostSyn", "Tags": ["out"], "Rels": [{"Rel": "PostSynTo", "To": A}]},
        {"Pos": C, "Kind": "Note", "Tags": ["t2"]},
        {"Pos": D, "Kind": "Note", "Tags": ["t2"]},
    ]
    return out


def build(c: Any) -> dict[str, str]:
    """root (committed) -> child (committed): seg, syn, region."""
    rng = np.random.default_rng(11)
    root = ok(c.post("/api/repos", json={"alias": "roi-syn"})).json()["root"]
    for body in ({"typename": "labelmap", "dataname": "seg"},
                 {"typename": "annotation", "dataname": "syn"},
                 {"typename": "roi", "dataname": "region"}):
        ok(c.post(f"/api/repo/{root}/instance", json=body))
    u = f"/api/node/{root}"
    ok(c.post(f"{u}/syn/sync", json={"sync": "seg"}))
    z, y, x = np.meshgrid(*(np.arange(N),) * 3, indexing="ij")
    vol = (1 + x // 48 + 3 * (y // 64) + 6 * (z // 64)).astype(np.uint64)
    ok(c.post(f"{u}/seg/raw/0_1_2/{N}_{N}_{N}/0_0_0", content=vol.tobytes()))
    ok(c.post(f"{u}/region/roi", json=ROI_SPANS))
    ok(c.post(f"{u}/syn/elements", json=elements(rng)))
    ok(c.post(f"{u}/commit", json={"note": "root"}))
    child = ok(c.post(f"{u}/newversion", json={})).json()["child"]
    cu = f"/api/node/{child}"
    ok(c.post(f"{cu}/seg/merge", json=[body_of(*A), body_of(60, 10, 70)]))  # 2 <- 8 (outside)
    ok(c.post(f"{cu}/syn/move/{'_'.join(map(str, A))}/{'_'.join(map(str, A_MOVED))}"))
    ok(c.delete(f"{cu}/syn/element/{'_'.join(map(str, C))}"))
    ok(c.post(f"{cu}/commit", json={}))
    return {"root": root, "child": child}


class RoiOracle:
    """ROI membership computed from the source's spans (not from the server's answers)."""

    def __init__(self, c: Any, uuid: str) -> None:
        self.bs = ok(c.get(f"/api/node/{uuid}/region/info")).json()["Extended"]["BlockSize"]
        spans = ok(c.get(f"/api/node/{uuid}/region/roi")).json()
        self.blocks = {(x, y, z) for z, y, x0, x1 in spans for x in range(x0, x1 + 1)}

    def inside(self, pos: list[int]) -> bool:
        return tuple(p // b for p, b in zip(pos, self.bs, strict=True)) in self.blocks

    def touched(self, block_size: int) -> set[tuple[int, int, int]]:
        """Blocks of ``block_size`` voxels touching one of the ROI's blocks."""
        out = set()
        for b in self.blocks:
            lo = [c * s // block_size for c, s in zip(b, self.bs, strict=True)]
            hi = [((c + 1) * s - 1) // block_size for c, s in zip(b, self.bs, strict=True)]
            out |= set(itertools.product(*(range(i, j + 1) for i, j in zip(lo, hi, strict=True))))
        return out


def seg_blocks(c: Any, uuid: str, sv: bool) -> dict[tuple[int, int, int], bytes]:
    """Stored labelmap blocks (uncompressed labels, mapped unless ``sv``) by coordinate."""
    from datatypes.common.blockstream import iter_records

    raw = ok(c.get(f"/api/node/{uuid}/seg/blocks/{N}_{N}_{N}/0_0_0", params={
        "compression": "uncompressed", "supervoxels": str(sv).lower()})).content
    return {(r.x, r.y, r.z): bytes(r.payload) for r in iter_records(raw)}


def _sorted(elems: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return sorted(elems or [], key=lambda e: e["Pos"])


def syn_reads(c: Any, uuid: str) -> dict[str, Any]:
    """Annotation answers at ``uuid``: all elements, every body's and tag's list."""
    u = f"/api/node/{uuid}/syn"
    blocks = ok(c.get(f"{u}/all-elements")).json()
    out: dict[str, Any] = {"all": _sorted([e for es in blocks.values() for e in es])}
    for body in range(1, 13):
        out[f"label/{body}"] = _sorted(ok(c.get(f"{u}/label/{body}")).json())
        out[f"label/{body}+rels"] = _sorted(ok(c.get(
            f"{u}/label/{body}", params={"relationships": "true"})).json())
    for tag in ("t1", "t2", "solo", "out", "none"):
        out[f"tag/{tag}"] = _sorted(ok(c.get(f"{u}/tag/{tag}")).json())
    return out


def restricted(reads: dict[str, Any], oracle: RoiOracle) -> dict[str, Any]:
    """``reads`` keeping only elements inside the ROI."""
    return {k: [e for e in v if oracle.inside(e["Pos"])] for k, v in reads.items()}


def check_roi_copy(a: Any, b: Any, uuid: str, oracle: RoiOracle) -> None:
    """seg blocks touching the ROI read identically, others are absent; syn answers are
    the source's restricted to the ROI; the ROI itself arrives whole."""
    touched = oracle.touched(64)
    for sv in (False, True):
        want = seg_blocks(a, uuid, sv)
        assert set(want) == set(itertools.product(range(2), repeat=3))
        assert seg_blocks(b, uuid, sv) == {k: v for k, v in want.items() if k in touched}
    assert syn_reads(b, uuid) == restricted(syn_reads(a, uuid), oracle)
    assert ok(b.get(f"/api/node/{uuid}/region/roi")).json() == \
        ok(a.get(f"/api/node/{uuid}/region/roi")).json()


def check_same(a: Any, b: Any, uuid: str) -> None:
    for sv in (False, True):
        assert seg_blocks(a, uuid, sv) == seg_blocks(b, uuid, sv), (uuid, sv)
    assert syn_reads(a, uuid) == syn_reads(b, uuid), uuid


def counts(c: httpx.Client, root: str, versions: list[str], roi: str | None,
           names: tuple[str, ...]) -> int:
    return sum(ok(c.post("/api/transfer/count", json={
        "uuid": root, "instance": n, "versions": versions, "roi": roi})).json()["records"]
        for n in names)


def test_roi_push_labelmap_annotation(make_server) -> None:
    src, dst, flat = make_server("leveldb"), make_server("rocksdb"), make_server("rocksdb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b, \
            httpx.Client(base_url=flat.url, timeout=60) as f:
        v = build(a)
        root, child = v["root"], v["child"]
        oracle = RoiOracle(a, child)
        assert oracle.inside(A) and oracle.inside(C)
        assert not any(oracle.inside(p) for p in (A_MOVED, B, D))
        # the scenario the tombstones are for: label 2 and tag "solo" have inside elements
        # at the root, only outside ones at the child (not empty there at the source)
        src_root, src_child = syn_reads(a, root), syn_reads(a, child)
        for k in ("label/2", "tag/solo"):
            assert [e["Pos"] for e in restricted(src_root, oracle)[k]] == [A], k
            assert src_child[k] and not restricted(src_child, oracle)[k], k
        assert C in [e["Pos"] for e in restricted(src_root, oracle)["all"]]
        names = ("seg", "syn", "region")

        # ROI push of the whole DAG; versioned streams send exactly as many records as
        # counted (an emptied list becomes a tombstone, not nothing)
        want = counts(a, root, [root, child], "region", names)
        st = job(a, "push", uuid=root, dst=dst.url, roi="region")
        assert st["state"] == "done" and st["records"] == want, (st, want)
        for u in (root, child):
            check_roi_copy(a, b, u, oracle)
        got_root, got_child = syn_reads(b, root), syn_reads(b, child)
        assert [e["Pos"] for e in got_root["label/2"]] == [A]
        assert got_root["label/2+rels"][0]["Rels"] == [{"Rel": "PreSynTo", "To": B}]
        assert [e["Pos"] for e in got_root["tag/solo"]] == [A]
        assert got_child["label/2"] == got_child["tag/solo"] == []
        assert C in [e["Pos"] for e in got_root["all"]]
        assert C not in [e["Pos"] for e in got_child["all"]]
        assert ok(b.get(f"/api/transfer/missing/{root}")).json() == {
            "seg": sorted([root, child]), "syn": sorted([root, child])}

        # a push without ROI completes both instances: everything reads the same
        want = counts(a, root, [root, child], None, ("seg", "syn"))
        st = job(a, "push", uuid=root, dst=dst.url)
        assert st["state"] == "done" and st["records"] == want, (st, want)
        for u in (root, child):
            check_same(a, b, u)
        assert ok(b.get(f"/api/transfer/missing/{root}")).json() == {}
        st = job(a, "push", uuid=root, dst=dst.url)
        assert st["state"] == "done" and st["bytes"] == 0, st

        # flattened + ROI: the child alone, same restriction
        r = cli("push", src.url, child, flat.url, "--flatten", "--roi", "region")
        assert r.returncode == 0, r.stderr
        check_roi_copy(a, f, child, oracle)
        assert syn_reads(f, child)["label/2"] == []
        assert ok(f.get(f"/api/transfer/missing/{child}")).json() == {
            "seg": [child], "syn": [child]}
        info = ok(f.get(f"/api/repo/{child}/info")).json()
        assert list(info["DAG"]["Nodes"]) == [child]
        assert info["DataInstances"]["syn"]["Base"]["Syncs"] == ["seg"]
