"""Import of annotation instances from a server used only through DVID's public HTTP API.

Layout: a labelmap ``seg`` (16³ blocks, 64 x 32 x 32 voxels in four 16-voxel slabs of
bodies 1..4 along X) and an annotation ``syn`` synced to it; ``notes`` is an annotation
without sync (64³ blocks, no label lists). Versions: root -> v1 (merge, delete, move, new
and re-tagged elements) -> v2 (open, a cleave), root -> side (a branch that deletes).
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.transfer.test_transfer_e2e import (
    cli,
    dag_shape,
    import_in_process,
    ok,
    records_per_version,
)

pytestmark = pytest.mark.e2e
BS = 16
SIZE = (64, 32, 32)


def el(x: int, y: int, z: int, kind: str = "PostSyn", tags: list[str] | None = None,
       rels: list[tuple[str, list[int]]] | None = None, **prop: str) -> dict[str, Any]:
    e: dict[str, Any] = {"Pos": [x, y, z], "Kind": kind}
    if tags is not None:
        e["Tags"] = tags
    if prop:
        e["Prop"] = prop
    if rels is not None:
        e["Rels"] = [{"Rel": r, "To": to} for r, to in rels]
    return e


def build(c: httpx.Client) -> dict[str, str]:
    root = ok(c.post("/api/repos", json={"alias": "syn"})).json()["root"]
    ok(c.post(f"/api/repo/{root}/instance", json={
        "typename": "labelmap", "dataname": "seg", "BlockSize": f"{BS},{BS},{BS}"}))
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "annotation",
                                                  "dataname": "syn"}))
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "annotation",
                                                  "dataname": "notes"}))
    ok(c.post(f"/api/node/{root}/syn/sync", json={"sync": "seg"}))
    vol = np.zeros(SIZE[::-1], dtype=np.uint64)
    for i in range(4):
        vol[:, :, i * 16:(i + 1) * 16] = i + 1
    nx, ny, nz = SIZE
    ok(c.post(f"/api/node/{root}/seg/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0", content=vol.tobytes()))
    pre = el(5, 5, 5, "PreSyn", ["a"], [("PreSynTo", [20, 5, 5]), ("PreSynTo", [40, 20, 20])],
             conf="0.9")
    ok(c.post(f"/api/node/{root}/syn/elements", json=[
        pre, el(20, 5, 5, tags=["a", "b"], rels=[("PostSynTo", [5, 5, 5])]),
        el(40, 20, 20, rels=[("PostSynTo", [5, 5, 5])], user="x"),
        el(60, 30, 30, "Note", ["b"]), el(10, 25, 17, "Gap"), el(50, 2, 18, tags=[])]))
    ok(c.post(f"/api/node/{root}/notes/elements", json=[
        el(1, 2, 3, "Note", ["todo"], text="check"), el(70, 80, 90, "Note")]))
    ok(c.post(f"/api/node/{root}/commit", json={}))
    v1 = ok(c.post(f"/api/node/{root}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v1}/seg/merge", json=[1, 2]))
    ok(c.delete(f"/api/node/{v1}/syn/element/60_30_30"))
    ok(c.post(f"/api/node/{v1}/syn/move/40_20_20/35_20_20"))
    ok(c.post(f"/api/node/{v1}/syn/elements", json=[
        el(50, 2, 18, tags=["c"]), el(33, 3, 3, "PreSyn", ["c"])]))
    ok(c.post(f"/api/node/{v1}/notes/elements", json=[el(1, 2, 3, "Note", ["done"])]))
    ok(c.post(f"/api/node/{v1}/commit", json={}))
    side = ok(c.post(f"/api/node/{root}/branch", json={"branch": "side"})).json()["child"]
    ok(c.delete(f"/api/node/{side}/syn/element/10_25_17"))
    ok(c.post(f"/api/node/{side}/commit", json={}))
    v2 = ok(c.post(f"/api/node/{v1}/newversion", json={})).json()["child"]
    ok(c.post(f"/api/node/{v2}/seg/cleave/1", json=[2]))
    return {"root": root, "v1": v1, "side": side, "v2": v2}


def _sorted(elems: Any) -> list[Any]:
    return sorted(elems or [], key=lambda e: e["Pos"])


def state(c: Any, uuid: str) -> dict[str, Any]:
    """Everything a client reads of ``syn`` and ``notes`` at ``uuid``."""
    out: dict[str, Any] = {}
    for name in ("syn", "notes"):
        base = f"/api/node/{uuid}/{name}"
        blocks = ok(c.get(f"{base}/all-elements")).json()
        out[f"{name}/all"] = {k: _sorted(v) for k, v in blocks.items()}
        out[f"{name}/box"] = _sorted(ok(c.get(f"{base}/elements/64_32_32/0_0_0")).json())
        tags = {t for v in blocks.values() for e in v for t in e.get("Tags") or []}
        for t in sorted(tags | {"a", "b", "c", "todo", "done"}):
            for rel in ("false", "true"):
                out[f"{name}/tag/{t}/{rel}"] = _sorted(ok(c.get(
                    f"{base}/tag/{t}", params={"relationships": rel})).json())
    info = ok(c.get(f"/api/node/{uuid}/syn/info")).json()
    out["syncs"] = info["Base"]["Syncs"]
    labels = np.frombuffer(ok(c.get(f"/api/node/{uuid}/seg/listlabels")).content,
                           dtype="<u8").tolist()
    out["bodies"] = labels
    for lab in [*labels, 99]:
        for rel in ("false", "true"):
            out[f"label/{lab}/{rel}"] = _sorted(ok(c.get(
                f"/api/node/{uuid}/syn/label/{lab}", params={"relationships": rel})).json())
    return out


def test_import_annotation_over_versions(make_server, monkeypatch) -> None:
    from starlette.testclient import TestClient

    from dvidpy.transfer import dvid_import
    from server import create_app

    src, dst = make_server("leveldb"), make_server("rocksdb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b:
        v = build(a)
        expect = {u: state(a, u) for u in v.values()}
        assert expect[v["v1"]]["label/1/false"] != expect[v["root"]]["label/1/false"]
        assert expect[v["v2"]]["label/1/false"] != expect[v["v1"]]["label/1/false"]
        per_run = []
        for memo in (True, False):  # parent states remembered / re-read from the source
            if not memo:
                monkeypatch.setattr(dvid_import, "_MEMO_VERSIONS", 0)
            settings, mgr, _, _ = import_in_process(src.url, v["root"])
            with TestClient(create_app(settings, mgr)) as m:
                for key, u in v.items():
                    assert state(m, u) == expect[u], (memo, key)
            per_run.append(records_per_version(mgr, v["root"], "syn"))
        assert per_run[0] == per_run[1]
        got = per_run[0]
        # only what changed is written below the root: v1 rewrites the blocks of the
        # deleted, moved and new elements (and the re-tagged one), not block 0,0,0's
        # neighbours; side touches one block; v2 (a cleave) only label lists
        assert got[(v["side"], 210)] == 1
        assert got[(v["v2"], 210)] == 0 and got[(v["v2"], 212)] == 0
        assert got[(v["v2"], 211)] >= 1
        assert 1 <= got[(v["v1"], 210)] < got[(v["root"], 210)] + 2
        # the CLI path into a real RocksDB server; the sync is restored, so the receiver's
        # annotation follows its labelmap from now on
        r = cli("pull", src.url, v["root"], dst.url, "--from-dvid")
        assert r.returncode == 0, r.stderr
        assert dag_shape(a, v["root"]) == dag_shape(b, v["root"])
        for u in v.values():
            assert state(b, u) == expect[u]
        child = ok(b.post(f"/api/node/{v['v2']}/newversion", json={})).json()["child"]
        ok(b.post(f"/api/node/{child}/seg/merge", json=[3, 4]))
        assert _sorted(ok(b.get(f"/api/node/{child}/syn/label/3")).json()) == _sorted(
            expect[v["v2"]]["label/3/false"] + expect[v["v2"]]["label/4/false"])
        # a flattened import of the side branch
        flat = make_server("leveldb")
        r = cli("pull", src.url, v["side"], flat.url, "--from-dvid", "--flatten")
        assert r.returncode == 0, r.stderr
        with httpx.Client(base_url=flat.url, timeout=60) as f:
            assert state(f, v["side"]) == expect[v["side"]]


def test_import_annotation_bad_answers(make_server, monkeypatch) -> None:
    """Malformed all-elements or label answers stop the import with a TransferError and
    leave nothing on the receiver."""
    from dvidpy.transfer import TransferError
    from dvidpy.transfer.dvid_import import DvidApiSource

    src = make_server("leveldb")
    with httpx.Client(base_url=src.url, timeout=60) as a:
        v = build(a)
    real = DvidApiSource._get
    bad = [  # (path suffix answered falsely, answer, expected words of the error)
        ("/syn/all-elements", b'{"0,0,0": [{"Pos": [1, 2], "Kind": "PostSyn"}]}', "Pos"),
        ("/syn/all-elements", b"[1, 2]", "not a JSON object"),
        ("/syn/all-elements", b"{", "bad all-elements answer"),
        ("/syn/all-elements", b'{"0,0,0": [{"Pos": [1,2,3], "Kind": "Bogus"}]}', "Bogus"),
        ("/syn/all-elements", b'{"0,0,0": [{"Pos": [1,2,3]}], "1,0,0": [{"Pos": [1,2,3]}]}',
         "twice"),
        ("/seg/labels", b"[1]", "GET labels answered"),
        ("/seg/labels", b'{"a": 1}', "GET labels answered"),
    ]
    for suffix, body, msg in bad:
        def fake(self: DvidApiSource, path: str, data: bytes | None = None,
                 suffix: str = suffix, body: bytes = body) -> bytes:
            got = real(self, path, data)
            return body if path.endswith(suffix) else got

        monkeypatch.setattr(DvidApiSource, "_get", fake)
        with pytest.raises(TransferError) as ei:
            import_in_process(src.url, v["root"], data=["syn"])
        assert msg in str(ei.value), (suffix, str(ei.value))
