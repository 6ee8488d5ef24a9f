"""Independent oracles for annotation/labelsz tests: volumes, synapses, expected answers.

Nothing here imports dvidpy code: labels come from numpy voxels plus a supervoxel->body
dict, counts from the element list.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from typing import Any

import numpy as np

SYN_KINDS = ("PostSyn", "PreSyn", "Gap")
INDEXES = ("PostSyn", "PreSyn", "Gap", "Note", "AllSyn")


def cell_volume(shape_zyx: tuple[int, int, int], cell: int, n_sv: int,
                rng: np.random.Generator, first: int = 1) -> np.ndarray:
    """uint64 supervoxels: ``cell``-sized cubes each holding one of ``n_sv`` ids."""
    cz, cy, cx = (s // cell for s in shape_zyx)
    ids = rng.integers(first, first + n_sv, size=(cz, cy, cx)).astype(np.uint64)
    return np.repeat(np.repeat(np.repeat(ids, cell, 0), cell, 1), cell, 2)


def synapses(n_pre: int, posts_per_pre: int, shape_zyx: tuple[int, int, int],
             rng: np.random.Generator, offset: int = 0) -> list[dict[str, Any]]:
    """PreSyn elements with PreSynTo rels to PostSyns that point back (unique positions)."""
    n = n_pre * (1 + posts_per_pre)
    total = int(np.prod(shape_zyx))
    flat = rng.choice(total, size=n, replace=False)
    z, y, x = np.unravel_index(flat, shape_zyx)
    pts = np.stack([x, y, z], axis=1).tolist()
    out = []
    for i in range(n_pre):
        pre = pts[i * (1 + posts_per_pre)]
        posts = pts[i * (1 + posts_per_pre) + 1:(i + 1) * (1 + posts_per_pre)]
        out.append({"Pos": pre, "Kind": "PreSyn", "Tags": [f"t{i % 3}"],
                    "Prop": {"conf": f"{(i + offset) % 100 / 100}", "user": "u"},
                    "Rels": [{"Rel": "PreSynTo", "To": p} for p in posts]})
        out.extend({"Pos": p, "Kind": "PostSyn", "Prop": {"conf": "0.5"},
                    "Rels": [{"Rel": "PostSynTo", "To": pre}]} for p in posts)
    return out


def bodies_at(vol: np.ndarray, mapping: dict[int, int], pts: np.ndarray) -> np.ndarray:
    """Body under each (x, y, z) point (points outside the volume -> 0)."""
    pts = np.asarray(pts, np.int64).reshape(-1, 3)
    inside = ((pts >= 0) & (pts < np.array(vol.shape[::-1]))).all(axis=1)
    out = np.zeros(len(pts), np.uint64)
    p = pts[inside]
    svs = vol[p[:, 2], p[:, 1], p[:, 0]]
    out[inside] = [mapping.get(int(s), int(s)) if s else 0 for s in svs.tolist()]
    return out


def expected_by_label(elements: dict[tuple[int, int, int], str], vol: np.ndarray,
                      mapping: dict[int, int]) -> dict[int, set[tuple[tuple[int, ...], str]]]:
    """``{body: {(pos, kind)}}`` for elements given as ``{pos: kind}``."""
    pos = list(elements)
    out: dict[int, set[tuple[tuple[int, ...], str]]] = {}
    if not pos:
        return out
    for p, b in zip(pos, bodies_at(vol, mapping, np.array(pos)).tolist(), strict=True):
        if b:
            out.setdefault(b, set()).add((p, elements[p]))
    return out


def expected_counts(by_label: dict[int, set[tuple[tuple[int, ...], str]]]
                    ) -> dict[str, dict[int, int]]:
    """``{index: {label: n}}`` (only nonzero)."""
    out: dict[str, dict[int, int]] = {ix: {} for ix in INDEXES}
    for lab, items in by_label.items():
        c = Counter(k for _, k in items)
        for k, n in c.items():
            if k in out:
                out[k][lab] = n
        allsyn = sum(c[k] for k in SYN_KINDS)
        if allsyn:
            out["AllSyn"][lab] = allsyn
    return out


def expected_top(counts: dict[int, int], n: int) -> list[dict[str, int]]:
    """labelsz ``top`` answer: count descending, label ascending."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [{"Label": lab, "Size": c} for lab, c in items]


def legacy_rle(mask_zyx: np.ndarray, offset_xyz: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """Legacy sparse-volume RLE (dvid-api.md §9.16.3) of a boolean mask."""
    spans = []
    nz, ny, _nx = mask_zyx.shape
    for z in range(nz):
        for y in range(ny):
            row = np.concatenate([[0], mask_zyx[z, y].astype(np.int8), [0]])
            d = np.diff(row)
            for s, e in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(),
                            strict=True):
                spans.append((s + offset_xyz[0], y + offset_xyz[1], z + offset_xyz[2], e - s))
    head = struct.pack("<BBBBII", 0, 3, 0, 0, 0, len(spans))
    return head + b"".join(struct.pack("<iiii", *s) for s in spans)


def label_set(answer: bytes | str) -> set[tuple[tuple[int, ...], str]]:
    """``{(pos, kind)}`` of a GET label answer."""
    return {(tuple(e["Pos"]), e["Kind"]) for e in json.loads(answer)}
