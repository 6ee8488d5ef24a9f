"""A numpy model of a labelmap instance at one version, plus HTTP checks against it.

Shared by the hypothesis state machine and the end-to-end test. The model holds the
supervoxel volume (z, y, x, origin 0) and the sv → body mapping of every non-zero sv.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from datatypes.labelmap.downres import downres_labels
from datatypes.labelmap.ngseg import decode_compressed_segmentation
from datatypes.labelmap.rle import decode_rles, spans_to_mask


class Model:
    """Supervoxel volume + mapping; ``bodies()`` is the mapped volume."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.sv = np.zeros(shape, dtype=np.uint64)
        self.map: dict[int, int] = {}

    def copy(self) -> Model:
        m = Model(self.sv.shape)  # type: ignore[arg-type]
        m.sv = self.sv.copy()
        m.map = dict(self.map)
        return m

    def body_of(self, sv: int) -> int:
        return self.map.get(sv, sv) if sv else 0

    def bodies(self) -> np.ndarray:
        u, inv = np.unique(self.sv, return_inverse=True)
        return np.array([self.body_of(int(s)) for s in u], dtype=np.uint64)[inv].reshape(
            self.sv.shape)

    def body_list(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for s in np.unique(self.sv).tolist():
            if s:
                out.setdefault(self.body_of(s), []).append(s)
        return out


def rle_body(mask: np.ndarray, offset: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """neuclease-style legacy RLE of a mask."""
    from datatypes.labelmap.rle import mask_to_spans

    spans = mask_to_spans(mask, offset)
    return bytes([0, 3, 0, 0]) + struct.pack("<II", 0, spans.shape[0]) + \
        spans.astype("<i4").tobytes()


def check_version(c: Any, base: str, model: Model, max_scale: int, full: bool = True) -> None:
    """Compare every read path of ``base`` (``/api/node/{uuid}/{name}``) with ``model``."""
    nz, ny, nx = model.sv.shape
    geo = f"{nx}_{ny}_{nz}/0_0_0"
    bodies = model.bodies()
    r = c.get(f"{base}/raw/0_1_2/{geo}")
    assert r.status_code == 200, r.text
    got = np.frombuffer(r.content, dtype="<u8").reshape(model.sv.shape)
    assert np.array_equal(got, bodies)
    r = c.get(f"{base}/raw/0_1_2/{geo}?supervoxels=true")
    assert np.array_equal(np.frombuffer(r.content, dtype="<u8").reshape(model.sv.shape),
                          model.sv)
    svs_lvl = model.sv
    for s in range(1, max_scale + 1):
        svs_lvl = downres_labels(svs_lvl)
        z, y, x = svs_lvl.shape
        r = c.get(f"{base}/raw/0_1_2/{x}_{y}_{z}/0_0_0?supervoxels=true&scale={s}")
        assert r.status_code == 200, r.text
        got = np.frombuffer(r.content, dtype="<u8").reshape(svs_lvl.shape)
        assert np.array_equal(got, svs_lvl), f"scale {s} differs"
        if full and x % 8 == 0 and y % 8 == 0 and z % 8 == 0:
            r = c.get(f"{base}/raw/0_1_2/{x}_{y}_{z}/0_0_0?compression=google&scale={s}")
            m2 = Model(svs_lvl.shape)  # type: ignore[arg-type]
            m2.sv, m2.map = svs_lvl, model.map
            assert np.array_equal(decode_compressed_segmentation(r.content, svs_lvl.shape),
                                  m2.bodies())
    bl = model.body_list()
    labels = sorted(bl)
    if labels:
        r = c.request("GET", f"{base}/sizes", json=[*labels, 987654321987])
        want = [int((bodies == b).sum()) for b in labels]
        assert r.json() == [*want, 0]
    # bodies with the most supervoxels first (the edited ones)
    by_n = sorted(labels, key=lambda b: -len(bl[b]))
    for b in by_n[:20] if full else by_n[:4]:
        assert sorted(c.get(f"{base}/supervoxels/{b}").json()) == sorted(bl[b])
        r = c.get(f"{base}/sparsevol/{b}")
        assert r.status_code == 200, r.text
        mask = spans_to_mask(decode_rles(r.content), model.sv.shape)
        assert np.array_equal(mask, bodies == b)
        assert c.get(f"{base}/size/{b}").json() == {"voxels": int((bodies == b).sum())}
    svs = sorted(s for v in bl.values() for s in v)
    if svs:
        r = c.request("GET", f"{base}/mapping", json=svs)
        assert r.json() == [model.body_of(s) for s in svs]
    rng = np.random.default_rng(len(labels))
    pts = np.stack([rng.integers(0, nx, 8), rng.integers(0, ny, 8), rng.integers(0, nz, 8)], 1)
    r = c.request("GET", f"{base}/labels", json=pts.tolist())
    assert r.json() == [int(bodies[z, y, x]) for x, y, z in pts.tolist()]
