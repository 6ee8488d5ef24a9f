"""Import of uint8blk instances from a server used only through DVID's public HTTP API."""

from __future__ import annotations

from collections import Counter
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
LO = (-16, 0, 16)  # voxel offset of the initial volume (negative X on purpose)
SIZE = (64, 48, 32)


def build(c: httpx.Client) -> dict[str, str]:
    """root -> v1 -> v2 (open), root -> side: lz4 ``gray`` and JPEG ``jg``."""
    rng = np.random.default_rng(3)
    root = ok(c.post("/api/repos", json={"alias": "img"})).json()["root"]
    ok(c.post(f"/api/repo/{root}/instance", json={
        "typename": "uint8blk", "dataname": "gray", "BlockSize": f"{BS},{BS},{BS}",
        "VoxelSize": "4,4,40", "VoxelUnits": "nanometers", "Background": "7"}))
    ok(c.post(f"/api/repo/{root}/instance", json={
        "typename": "uint8blk", "dataname": "jg", "BlockSize": f"{BS},{BS},{BS}",
        "Compression": "jpeg"}))
    ok(c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"}))
    nx, ny, nz = SIZE
    vol = rng.integers(0, 256, size=(nz, ny, nx), dtype=np.uint8)
    ok(c.post(f"/api/node/{root}/gray/raw/0_1_2/{nx}_{ny}_{nz}/{LO[0]}_{LO[1]}_{LO[2]}",
              content=vol.tobytes()))
    ok(c.post(f"/api/node/{root}/jg/raw/0_1_2/32_32_16/0_0_0",
              content=rng.integers(0, 256, size=(16, 32, 32), dtype=np.uint8).tobytes()))
    ok(c.post(f"/api/node/{root}/kv/key/a", content=b"1"))
    ok(c.post(f"/api/node/{root}/commit", json={}))

    def blk(v: str, x: int, y: int, z: int, name: str = "gray") -> None:
        data = rng.integers(0, 256, size=(BS, BS, BS), dtype=np.uint8).tobytes()
        ok(c.post(f"/api/node/{v}/{name}/raw/0_1_2/{BS}_{BS}_{BS}/{x}_{y}_{z}", content=data))

    v1 = ok(c.post(f"/api/node/{root}/newversion", json={})).json()["child"]
    blk(v1, 0, 0, 16)
    blk(v1, 32, 32, 32)
    ok(c.post(f"/api/node/{v1}/gray/raw/0_1_2/{BS}_{BS}_{BS}/0_16_16",  # same content
              content=ok(c.get(f"/api/node/{v1}/gray/raw/0_1_2/{BS}_{BS}_{BS}/0_16_16"))
              .content))
    ok(c.post(f"/api/node/{v1}/commit", json={}))
    side = ok(c.post(f"/api/node/{root}/branch", json={"branch": "side"})).json()["child"]
    blk(side, -16, 0, 16)
    blk(side, 16, 0, 16, "jg")
    ok(c.post(f"/api/node/{side}/commit", json={}))
    v2 = ok(c.post(f"/api/node/{v1}/newversion", json={})).json()["child"]
    blk(v2, 64, 64, 64)  # grows the extents, leaves a gap of unwritten blocks
    blk(v2, 16, 32, 16)
    return {"root": root, "v1": v1, "side": side, "v2": v2}


#: blocks written at each version (the importer should store exactly these)
WRITTEN = {"gray": {"root": 4 * 3 * 2, "v1": 2, "side": 1, "v2": 2},
           "jg": {"root": 2 * 2 * 1, "v1": 0, "side": 1, "v2": 0}}


def state(c: Any, uuid: str) -> dict[str, Any]:
    """What a client sees of both volumes at ``uuid``: info, stored blocks, voxels."""
    from datatypes.common.blockstream import iter_records

    out: dict[str, Any] = {}
    for name in ("gray", "jg"):
        info = ok(c.get(f"/api/node/{uuid}/{name}/info")).json()
        ext = info["Extended"]
        mn, mx = ext["MinPoint"], ext["MaxPoint"]
        size = [b - a + 1 for a, b in zip(mn, mx, strict=True)]
        shape = "_".join(map(str, size))
        off = "_".join(map(str, mn))
        # block-aligned box around the extents for subvolblocks
        lo = [a // BS * BS for a in mn]
        hi = [(b // BS + 1) * BS for b in mx]
        box = "_".join(str(h - lo_) for lo_, h in zip(lo, hi, strict=True))
        blocks = ok(c.get(f"/api/node/{uuid}/{name}/subvolblocks/{box}/"
                          + "_".join(map(str, lo)))).content
        out[name] = {
            "base": {k: info["Base"][k] for k in ("TypeName", "Compression", "Checksum")},
            "ext": ext,
            "raw": ok(c.get(f"/api/node/{uuid}/{name}/raw/0_1_2/{shape}/{off}")).content,
            "blocks": {(r.x, r.y, r.z): bytes(r.payload) for r in iter_records(blocks)},
        }
    return out


def blocks_per_version(mgr: Any, uuid: str, name: str) -> Counter[str]:
    """Block keys stored per version UUID for instance ``name`` on an in-process server."""
    from datatypes.imageblk import BLOCK_CLASS

    out: Counter[str] = Counter()
    for (u, cls), n in records_per_version(mgr, uuid, name).items():
        if cls == BLOCK_CLASS:
            out[u] += n
    return out


def test_import_uint8blk_over_versions(make_server, monkeypatch) -> None:
    from starlette.testclient import TestClient

    from dvidpy.errors import BadRequest
    from dvidpy.transfer import dvid_import
    from dvidpy.transfer.dvid_import import DvidApiSource
    from server import create_app

    src, dst = make_server("leveldb"), make_server("rocksdb")
    with httpx.Client(base_url=src.url, timeout=60) as a, \
            httpx.Client(base_url=dst.url, timeout=60) as b:
        v = build(a)
        expect = {u: state(a, u) for u in v.values()}
        for memo in (True, False):  # parent digests remembered / re-read from the source
            if not memo:
                monkeypatch.setattr(dvid_import, "_MEMO_MAX_BLOCKS", 0)
            settings, mgr, source, st = import_in_process(src.url, v["root"])
            assert st["records"] > 0
            assert not [p for p in source.calls if "compression=" in p and "gray" in p
                        and "compression=uncompressed" not in p]
            with TestClient(create_app(settings, mgr)) as m:
                for key, u in v.items():
                    assert state(m, u) == expect[u], (memo, key)
            for name, per in WRITTEN.items():
                got = blocks_per_version(mgr, v["root"], name)
                assert got == Counter({v[k]: n for k, n in per.items() if n}), (memo, name)
        # the CLI path into a real RocksDB server; a second pull moves nothing
        r = cli("pull", src.url, v["root"], dst.url, "--from-dvid")
        assert r.returncode == 0, r.stderr
        assert dag_shape(a, v["root"]) == dag_shape(b, v["root"])
        for u in v.values():
            assert state(b, u) == expect[u]
        r = cli("pull", src.url, v["root"], dst.url, "--from-dvid")
        assert r.returncode == 0 and " 0 records" in r.stdout, r.stdout
        # flattened import of one version: every block visible there, one root version
        flat = make_server("leveldb")
        r = cli("pull", src.url, v["side"], flat.url, "--from-dvid", "--flatten")
        assert r.returncode == 0, r.stderr
        with httpx.Client(base_url=flat.url, timeout=60) as f:
            assert list(ok(f.get("/api/repos/info")).json()) == [v["side"]]
            assert state(f, v["side"]) == expect[v["side"]]
        # bad input: settings this server cannot hold are refused with a clear 400
        with pytest.raises(BadRequest) as ei:
            dvid_import._uint8blk_config("big", {"BlockSize": [4096, 4096, 4096]}, "lz4")
        assert "cannot import uint8blk 'big'" in ei.value.message
        with pytest.raises(BadRequest):
            dvid_import._uint8blk_config("odd", {"BlockSize": [16, 16]}, "lz4")
        with pytest.raises(BadRequest):
            DvidApiSource(src.url).manifest(v["root"], roi="region")


def test_slabs_cover_box_in_key_order(monkeypatch) -> None:
    from datatypes.uint8blk import block_tkey
    from dvidpy.transfer import dvid_import

    for per_voxels in (4 * 16**3, 16**3, 100 * 16**3):  # row pieces, single blocks, rows
        monkeypatch.setattr(dvid_import, "_SLAB_VOXELS", per_voxels)
        lo, hi = [-3, 0, 2], [5, 2, 3]
        seen: list[tuple[int, int, int]] = []
        for first, last in dvid_import._slabs(lo, hi, (16, 16, 16)):
            n = 1
            for i in range(3):
                n *= last[i] - first[i] + 1
            assert n * 16**3 <= max(per_voxels, 16**3)
            seen += [(x, y, z) for z in range(first[2], last[2] + 1)
                     for y in range(first[1], last[1] + 1)
                     for x in range(first[0], last[0] + 1)]
        keys = [block_tkey(*c) for c in seen]
        assert keys == sorted(keys) and len(set(seen)) == 9 * 3 * 2
