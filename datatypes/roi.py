"""roi: a versioned region of interest made of blocks (dvid-api.md §11).

An ROI is a set of blocks of size ``BlockSize`` (creation setting ``"x,y,z"``, default
``32,32,32``) written as spans ``[z, y, x0, x1]`` in block coordinates (``x1``
inclusive). Endpoints, under ``/api/node/{uuid}/{data}/``:

``GET roi``
    JSON array of spans sorted by ``(z, y, x0)``, as stored (not merged; when two posted
    spans start at the same block the later one wins). ``[]`` when empty.
``POST roi``
    Body: JSON array of spans. **Replaces** the ROI at this version. Malformed spans
    (not 4 integers, values outside int32, ``x1 < x0``) -> 400 and nothing is written.
``DELETE roi``
    Empties the ROI at this version (ancestors keep theirs).
``GET mask/0_1_2/{nx_ny_nz}/{x_y_z}``
    uint8 volume (ZYX order), 1 inside the ROI and 0 outside. Any box (unaligned,
    negative offsets); only 3-D. Sizes over the server's request limit -> 413.
``POST ptquery``
    Body ``[[x,y,z], ...]`` voxel points -> ``[true, false, ...]``. Not a mutation: it
    works on committed nodes.
``GET partition?batchsize=N``
    Subvolumes of N^3 blocks covering the ROI (``batchsize`` required, >= 1); see
    :func:`datatypes.common.roi_spans.partition` for the exact layout. A partition into
    more than ``MAX_PARTITION_PIECES`` span pieces is a 413 (use a larger batchsize).
``GET info``
    ``Extended`` = ``{"BlockSize": [x,y,z], "MinZ": int, "MaxZ": int}`` (block Z extent;
    ``2147483647`` / ``-2147483648`` when empty).

Storage: the stored span array of a version is kept as int32 little-endian rows in LZ4
chunks of up to 2**18 spans (TKey class 20, payload = chunk index u32be), with a per-version
property ``roi-meta`` = ``{"chunks": k, "spans": n}``; chunks past ``k`` left by an
ancestor are ignored. Reading a large ROI is a handful of key reads plus one
``np.frombuffer``; decoded spans are cached per version.

Other datatypes use :func:`find_roi` and :meth:`Roi.spans_at` / :meth:`Roi.points_in` /
:meth:`Roi.mask`.
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from starlette.responses import Response

from datatypes.common import roi_spans as rs
from datatypes.common.geometry import check_int32_box, parse_dims
from dvidpy.codec import CodecError, deserialize, serialize
from dvidpy.datatype import Call, Datatype, endpoint, register_datatype
from dvidpy.errors import BadRequest, TooLarge
from dvidpy.http.spec import EMPTY, JSON, OCTET, Body, Param, Q
from dvidpy.keys import tkey
from dvidpy.versioned import VersionedCtx

SPAN_CHUNK_CLASS = 20
CHUNK_SPANS = 1 << 18
_META = "roi-meta"
DEFAULT_BLOCK_SIZE = (32, 32, 32)
#: most (span, subvolume) pieces ``GET partition`` computes (each is ~100 bytes of work
#: and answer); a finer partition is a 413 asking for a larger batchsize
MAX_PARTITION_PIECES = 1 << 20
_INT3 = {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3}
_SPANS = {"type": "array", "items": {"type": "array", "items": {"type": "integer"},
                                     "minItems": 4, "maxItems": 4}}


def _chunk_key(i: int) -> bytes:
    return tkey(SPAN_CHUNK_CLASS, struct.pack(">I", i))


def parse_block_size_setting(text: str) -> tuple[int, int, int]:
    """``"64,64,64"`` (or a single ``"64"``) -> ``(64, 64, 64)``; 400 when not positive
    integers up to 2**16."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1:
        parts = parts * 3
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise BadRequest(f"bad BlockSize {text!r}: expected 3 comma-separated integers") from None
    if len(vals) != 3 or not all(0 < v <= 65536 for v in vals):
        raise BadRequest(f"bad BlockSize {text!r}: expected 3 integers in 1..65536")
    return (vals[0], vals[1], vals[2])


def find_roi(repo: Any, name: str, manager: Any) -> Roi:
    """The ROI instance called ``name`` in ``repo``, looked up through its ``manager``
    (:meth:`~dvidpy.repo.RepoManager.find_instance`: also one another process of the
    server has just made).

    Raises:
        BadRequest: no such instance, or it is not an ``roi``.
    """
    inst = manager.find_instance(repo, name)
    if inst is None:
        raise BadRequest(f"no ROI instance named {name!r} in repo {repo.root}")
    if not isinstance(inst, Roi):
        raise BadRequest(f"instance {name!r} is a {inst.type_name}, not an roi")
    return inst


@register_datatype
class Roi(Datatype):
    """The roi datatype."""

    type_name = "roi"
    type_url = "github.com/janelia-flyem/dvid/datatype/roi"
    type_version = "0.1"
    default_compression = "lz4"
    tkey_classes = {SPAN_CHUNK_CLASS: "chunk index u32be -> LZ4 int32 span rows"}

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._gen = 0
        self._lock = threading.Lock()

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        """``BlockSize`` (default 32,32,32)."""
        bs = settings.get("blocksize")
        block = parse_block_size_setting(bs) if bs else DEFAULT_BLOCK_SIZE
        return {"BlockSize": list(block)}

    @property
    def block_size(self) -> tuple[int, int, int]:
        """ROI block size (x, y, z)."""
        b = self.meta.config.get("BlockSize", DEFAULT_BLOCK_SIZE)
        return (int(b[0]), int(b[1]), int(b[2]))

    # ----- Python API for other datatypes ----------------------------------------------

    def context_like(self, ctx: VersionedCtx) -> VersionedCtx:
        """This ROI's context at the node of another instance's ``ctx``."""
        if ctx.instance_id == self.meta.instance_id:
            return ctx
        return self.manager.context(self, ctx.node, ctx.user, ctx.app)

    def _load(self, ctx: VersionedCtx) -> tuple[np.ndarray, np.ndarray]:
        key = ctx.version
        # on a store other servers write, only committed versions may be cached here
        use_cache = not self.shared_store or (ctx.versioned and ctx.node.locked
                                              and not ctx.allow_locked)
        with self._lock:
            hit = self._cache.get(key) if use_cache else None
            gen = self._gen if use_cache else -1
        if hit is not None:
            return hit
        meta = self.get_property(ctx, _META) or {"chunks": 0, "spans": 0}
        k = int(meta["chunks"])
        parts = []
        if k:
            raws = self.store.get_many(ctx, [_chunk_key(i) for i in range(k)])
            for i, raw in enumerate(raws):
                if raw is None:
                    raise BadRequest(f"ROI {self.meta.name!r} is missing span chunk {i}")
                try:
                    parts.append(np.frombuffer(deserialize(raw), dtype="<i4"))
                except CodecError as e:
                    raise BadRequest(f"ROI {self.meta.name!r} has a corrupt chunk: {e}") from None
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype="<i4")
        spans = flat.astype(np.int64).reshape(-1, 4)
        norm = rs.normalize_spans(spans)
        spans.setflags(write=False)
        norm.setflags(write=False)
        with self._lock:
            if gen == self._gen:
                if len(self._cache) > 64:
                    self._cache.clear()
                self._cache[key] = (spans, norm)
        return spans, norm

    def spans_at(self, ctx: VersionedCtx) -> np.ndarray:
        """Stored spans ``(N, 4)`` int64 (z, y, x0, x1) at ``ctx`` (read-only array).

        ``ctx`` may belong to another instance: the ROI is read at the same node.
        """
        return self._load(self.context_like(ctx))[0]

    def normalized_spans_at(self, ctx: VersionedCtx) -> np.ndarray:
        """Merged, sorted spans at ``ctx`` (see :func:`roi_spans.normalize_spans`)."""
        return self._load(self.context_like(ctx))[1]

    def points_in(self, ctx: VersionedCtx, points_xyz: Any) -> np.ndarray:
        """Bool ``(N,)``: which voxel points ``(N, 3)`` (x, y, z) lie inside at ``ctx``.

        Raises:
            ValueError: points not an integer ``(N, 3)`` array.
        """
        return rs.points_in_roi(points_xyz, self.normalized_spans_at(ctx), self.block_size)

    def point_tester(self, ctx: VersionedCtx) -> Callable[[Any], np.ndarray]:
        """:meth:`points_in` with the ROI at ``ctx`` read and indexed once, for testing
        many batches of points: ``test(points_xyz) -> bool (N,)``."""
        return rs.roi_point_tester(self.normalized_spans_at(ctx), self.block_size)

    def mask(self, ctx: VersionedCtx, offset: Any, size: Any) -> np.ndarray:
        """uint8 ``(nz, ny, nx)`` mask of a voxel box (1 inside) at ``ctx``."""
        return rs.roi_mask(self.normalized_spans_at(ctx), offset, size, self.block_size)

    def write_spans(self, ctx: VersionedCtx, spans: np.ndarray) -> None:
        """Replace the ROI at ``ctx`` with ``spans`` (validated, stored as DVID stores)."""
        st = rs.stored_spans(spans).astype("<i4")
        n = len(st)
        k = (n + CHUNK_SPANS - 1) // CHUNK_SPANS
        with self._lock:
            self._gen += 1
            self._cache.clear()
        with self.store.batch(ctx) as b:
            for i in range(k):
                chunk = np.ascontiguousarray(st[i * CHUNK_SPANS:(i + 1) * CHUNK_SPANS])
                b.put(_chunk_key(i), serialize(chunk.tobytes(), "lz4"))
            b.put(tkey(1, _META.encode() + b"\x00"),
                  f'{{"chunks": {k}, "spans": {n}}}'.encode())
        with self._lock:
            self._gen += 1
            self._cache.clear()

    # ----- info -------------------------------------------------------------------------

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        """``{"BlockSize", "MinZ", "MaxZ"}``."""
        minz, maxz = rs.INT32_MAX, rs.INT32_MIN
        if ctx is not None:
            spans = self.spans_at(ctx)
            if len(spans):
                minz, maxz = int(spans[:, 0].min()), int(spans[:, 0].max())
        return {"BlockSize": list(self.block_size), "MinZ": minz, "MaxZ": maxz}

    # ----- endpoints --------------------------------------------------------------------

    @endpoint("GET", "roi", "The ROI's spans [[z, y, x0, x1], ...] as stored")
    def _get_roi(self, call: Call) -> Response:
        spans = self.spans_at(call.ctx)
        if len(spans) == 0:
            return Response(b"[]", media_type="application/json")
        body = json.dumps(spans.tolist(), separators=(",", ":"))  # C encoder: fast
        return Response(body.encode(), media_type="application/json")

    @endpoint("POST", "roi", "Replace the ROI at this version", returns=EMPTY,
              body=Body(JSON, "array of spans [z, y, x0, x1] (block coordinates, x1 "
                              "inclusive)", schema=_SPANS))
    def _post_roi(self, call: Call) -> Response:
        try:
            spans = rs.validate_spans(call.json())
        except ValueError as e:
            raise BadRequest(f"bad ROI spans: {e}") from None
        self.write_spans(call.ctx, spans)
        return Response(b"")

    @endpoint("DELETE", "roi", "Empty the ROI at this version", returns=EMPTY)
    def _delete_roi(self, call: Call) -> Response:
        self.write_spans(call.ctx, np.zeros((0, 4), dtype=np.int64))
        return Response(b"")

    @endpoint("GET", "mask/{dims}/{size}/{offset}", "uint8 mask of a box: 1 inside the ROI",
              params=(Param("dims", "dims", "0_1_2 (the mask is 3-D only)"),
                      Param("size", "size3", "nx_ny_nz voxels"),
                      Param("offset", "coord", "x_y_z of the box's first voxel")),
              returns=OCTET)
    def _get_mask(self, call: Call) -> Response:
        p = call.params
        try:
            dims = parse_dims(p["dims"])
        except ValueError as e:
            raise BadRequest(str(e)) from None
        size, offset = p["size"], p["offset"]
        if dims != (0, 1, 2):
            raise BadRequest("ROI mask is only available in 3-D (0_1_2)")
        try:
            check_int32_box(offset, size)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        n = size[0] * size[1] * size[2]
        limit = self.manager.settings.max_request_bytes
        if n > limit:
            raise TooLarge(f"mask of {n} voxels is over the server limit of {limit} bytes")
        if n > (1 << 31):
            raise TooLarge(f"mask of {n} voxels is too large for one response")
        m = self.mask(call.ctx, offset, size)
        return Response(m.tobytes(), media_type="application/octet-stream")

    @endpoint("POST", "ptquery", "Which voxel points lie inside the ROI", mutates=False,
              body=Body(JSON, "array of [x, y, z] voxel points", schema={
                  "type": "array", "items": _INT3}))
    def _ptquery(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, list):
            raise BadRequest("ptquery expects a JSON array of [x,y,z] points")
        if body:
            try:
                pts = np.array(body)
            except (ValueError, TypeError, OverflowError):
                raise BadRequest("ptquery points must be [x,y,z] integer triples") from None
            if pts.ndim != 2 or pts.shape[1] != 3 or pts.dtype.kind not in "iu":
                raise BadRequest("ptquery points must be [x,y,z] integer triples")
            if any(isinstance(v, bool) for p in body for v in p):
                raise BadRequest("ptquery points must be integers, not booleans")
            inside = self.points_in(call.ctx, pts)
        else:
            inside = np.zeros(0, dtype=bool)
        body_out = "[" + ",".join("true" if v else "false" for v in inside.tolist()) + "]"
        return Response(body_out.encode(), media_type="application/json")

    @endpoint("GET", "partition", "Subvolumes of batchsize^3 blocks covering the ROI",
              query=(Q("batchsize", "count", "subvolume edge in blocks (>= 1)",
                       required=True),))
    def _partition(self, call: Call) -> Any:
        b = call.params["batchsize"]
        if b < 1:
            raise BadRequest(f"batchsize must be >= 1, got {b}")
        try:
            return rs.partition(self.normalized_spans_at(call.ctx), b, self.block_size,
                                max_pieces=MAX_PARTITION_PIECES)
        except rs.TooManyPieces as e:
            raise TooLarge(f"{e}; use a larger batchsize") from None


__all__ = ["Roi", "find_roi", "parse_block_size_setting"]
