"""labelmap endpoints DVID has beyond the core set: ``set-nextlabel``, ``index-version``,
``map-stats``, ``proximity``, ``GET metadata``, ``POST resolution`` (the label index
before a mutation, ``GET index/{label}?mutid=``, is
:meth:`~datatypes.labelmap.core.LabelmapCore.index_before`).

``proximity`` is computed (DVID's code answers an empty body): for each block holding the
target and another label, the smallest Euclidean distance (in voxels) between a voxel of
one and a voxel of the other, found among their boundary voxels; labels touching in a
block are at distance 1. Blocks where both labels have more than :data:`MAX_PAIRS`
boundary voxel pairs measure them on an evenly thinned boundary (an upper bound, flagged
``"Approximate": true``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from starlette.responses import Response

from datatypes.labelmap import layout as L
from datatypes.labelmap.extras import ExtrasMixin
from datatypes.labelmap.params import LABEL, nonzero
from datatypes.labelmap.rle import decode_block_coords
from dvidpy import jsonio
from dvidpy.datatype import Call, endpoint
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.spec import JSON, TEXT, Body, Param, Q
from dvidpy.keys import data_key

#: boundary voxel pairs compared exactly per block and label pair
MAX_PAIRS = 20_000_000
ND_JSON = "application/vnd.dvid-nd-data+json"


def _boundary(mask: np.ndarray) -> np.ndarray:
    """(N, 3) z, y, x voxels of ``mask`` with a 6-neighbour outside it (or on the edge)."""
    inner = mask.copy()
    inner[1:-1, 1:-1, 1:-1] &= (mask[:-2, 1:-1, 1:-1] & mask[2:, 1:-1, 1:-1]
                                & mask[1:-1, :-2, 1:-1] & mask[1:-1, 2:, 1:-1]
                                & mask[1:-1, 1:-1, :-2] & mask[1:-1, 1:-1, 2:])
    inner[0], inner[-1], inner[:, 0], inner[:, -1] = False, False, False, False
    inner[:, :, 0], inner[:, :, -1] = False, False
    return np.argwhere(mask & ~inner)


def _touching(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a voxel of mask ``a`` is a 6-neighbour of one of ``b``."""
    return bool((a[1:] & b[:-1]).any() or (a[:-1] & b[1:]).any()
                or (a[:, 1:] & b[:, :-1]).any() or (a[:, :-1] & b[:, 1:]).any()
                or (a[:, :, 1:] & b[:, :, :-1]).any() or (a[:, :, :-1] & b[:, :, 1:]).any())


def min_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """Smallest Euclidean distance between voxels of two disjoint non-empty masks, and
    whether it was measured on thinned boundaries (see the module docstring)."""
    if (a & b).any():
        return 0.0, False
    if _touching(a, b):
        return 1.0, False
    pa, pb = _boundary(a).astype(np.float32), _boundary(b).astype(np.float32)
    approx = False
    if len(pa) * len(pb) > MAX_PAIRS:
        step = int(np.ceil(np.sqrt(len(pa) * len(pb) / MAX_PAIRS)))
        pa, pb, approx = pa[::step], pb[::step], True
    best = np.inf
    chunk = max(1, 4_000_000 // max(len(pb), 1))
    for i in range(0, len(pa), chunk):
        d = ((pa[i:i + chunk, None, :] - pb[None, :, :]) ** 2).sum(axis=2)
        best = min(best, float(d.min()))
    return float(np.sqrt(best)), approx


class MoreMixin(ExtrasMixin):
    """The endpoints of the module docstring."""

    # ----- label allocation -----------------------------------------------------------

    @endpoint("POST", "set-nextlabel/{label}", "Set the repo-wide next-label counter",
              params=(Param("label", "label", "labels above it are allocated next (>= 1)"),),
              query=(Q("ceiling", "uint64", "allocations above it fail (0 clears it; absent: "
                                            "unchanged); not below the next label"),),
              returns=TEXT, access="admin")
    def _set_nextlabel(self, call: Call) -> Response:
        """The next allocated label is one more than ``label``."""
        self.require_indexed("set-nextlabel")
        label = nonzero(call.params["label"], "next label")
        if label >= 2**64 - 1:
            raise BadRequest("next label must leave room for a new label")
        ceiling = call.params.get("ceiling")
        if ceiling and ceiling < label + 1:
            raise BadRequest(f"ceiling {ceiling} is below the next label {label + 1}")
        ctx = call.ctx
        iid = self.meta.instance_id
        with self.lock, self.label_batch(ctx) as b:
            b.wb.put(data_key(iid, L.counter_tkey("nextlabel"), 0),
                     (label + 1).to_bytes(8, "little"))
            if ceiling is not None:
                b.wb.put(data_key(iid, L.counter_tkey("nextlabelceiling"), 0),
                         int(ceiling).to_bytes(8, "little"))
            self._pending_next = label + 1
            rec: dict[str, Any] = {"Action": "setnextlabel", "Next Label": label + 1}
            if ceiling is not None:
                rec["Ceiling"] = ceiling
            self.log_mutation(ctx, b, self.manager.next_mutation_id(self.repo), rec)
        return Response(b"", media_type="text/plain")

    # ----- label indices --------------------------------------------------------------

    @endpoint("GET", "index-version/{label}", "UUID of the version holding a label's "
              "current index", params=(LABEL,), returns=TEXT)
    def _index_version(self, call: Call) -> Response:
        label = nonzero(call.params["label"])
        raw, v = self.store.get_with_version(call.ctx, L.index_tkey(label))
        if raw is None or v is None:
            raise NotFound(f"label {label} has no index in {self.meta.name!r}")
        return Response(self.repo.dag.node(v).uuid, media_type="text/plain")

    # ----- mapping ----------------------------------------------------------------------

    @endpoint("GET", "map-stats", "In-memory mapping cache statistics", inline=True)
    def _map_stats(self, call: Call) -> Any:
        caches = getattr(self.mapping, "_caches", {})
        entries = sum(len(c) for c in caches.values())
        return {self.meta.name: {"MapEntries": entries, "MapSize": f"{entries * 16} B",
                                 "NumVersions": len(caches),
                                 "MaxVersion": max(caches, default=0)}}

    # ----- description ------------------------------------------------------------------

    @endpoint("GET", "metadata", "Layout of the bytes of n-d reads (DVID's nd-data JSON)",
              returns=ND_JSON)
    def _metadata(self, call: Call) -> Response:
        cfg = self.meta.config
        ext = self.extents(call.ctx)
        if ext is None:
            size, offset = [0, 0, 0], [0, 0, 0]
        else:
            size = [ext[1][i] - ext[0][i] + 1 for i in range(3)]
            offset = list(ext[0])
        axes = [{"Label": n, "Resolution": cfg["voxel_size"][i], "Units": cfg["voxel_units"][i],
                 "Size": size[i], "Offset": offset[i]} for i, n in enumerate("XYZ")]
        doc = {"Axes": axes, "Properties": self.extended(call.ctx)}
        return Response(json.dumps(doc, separators=(",", ":")) + "\n", media_type=ND_JSON)

    @endpoint("POST", "resolution", "Set the voxel size", returns=TEXT,
              body=Body(JSON, "[x, y, z] voxel size", schema={
                  "type": "array", "items": {"type": "number"}, "minItems": 3,
                  "maxItems": 3}))
    def _post_resolution(self, call: Call) -> Response:
        body = jsonio.loads(call.body, "resolution body")
        if (not isinstance(body, list) or len(body) != 3 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                and np.isfinite(v) for v in body)):
            raise BadRequest("resolution expects [x, y, z] positive numbers")
        self.meta.config["voxel_size"] = [float(v) for v in body]
        self.save_meta()
        return Response(b"", media_type="text/plain")

    # ----- proximity --------------------------------------------------------------------

    @endpoint("GET", "proximity/{labels}/{other?}", "Blocks where labels meet a target and "
              "their smallest voxel distance there",
              params=(Param("labels", "str", "target,label,... (comma-separated ids)"),
                      Param("other", "label", "a second label (DVID's two-segment form)")))
    def _proximity(self, call: Call) -> Any:
        """``[{"Block": [x, y, z], "Label": l, "Distance": d}, ...]`` per block holding the
        target and label ``l`` (``Label`` left out when only two labels are given)."""
        try:
            labels = [int(x) for x in call.params["labels"].split(",") if x.strip()]
        except ValueError:
            raise BadRequest("proximity expects comma-separated label ids") from None
        if call.params.get("other") is not None:
            labels.append(call.params["other"])
        if len(labels) < 2 or any(not 0 < lab < 2**64 for lab in labels):
            raise BadRequest("proximity needs a target and at least one other label (not 0)")
        ctx = call.ctx
        target, others = labels[0], list(dict.fromkeys(labels[1:]))
        tidx = self.require_index(ctx, target)
        tblocks = set(tidx.blocks.keys())
        out: list[dict[str, Any]] = []
        for lab in others:
            oidx = self.require_index(ctx, lab)
            common = sorted(tblocks & set(oidx.blocks.keys()))
            if not common:
                continue
            coords = decode_block_coords(np.array(common, dtype=np.uint64)).astype(np.int64)
            blocks = self.read_blocks(ctx, 0, coords, True)
            for c in coords.tolist():
                arr = blocks.get(tuple(c))
                if arr is None:
                    continue
                a, b = arr == target, arr == lab
                if not a.any() or not b.any():
                    continue
                d, approx = min_distance(a, b)
                rec: dict[str, Any] = {"Block": c}
                if len(labels) > 2:
                    rec["Label"] = lab
                rec["Distance"] = d
                if approx:
                    rec["Approximate"] = True
                out.append(rec)
        return out
