"""Read-only labelmap endpoints: voxels, blocks, point queries, index-derived queries,
sparse volumes, mapping and mutation-log reads.

Everything is validated before the first byte of a streamed response is sent.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
from starlette.responses import Response, StreamingResponse

from datatypes import protos
from datatypes.common import roi_spans as rs
from datatypes.common.blockstream import encode_header
from datatypes.common.geometry import (
    blocks_in_box,
    extract_subvolume,
    is_block_aligned,
    parse_block_list,
    parse_dims,
    plane_size_to_3d,
)
from datatypes.labelmap import layout as L
from datatypes.labelmap.core import LabelmapCore, label_list_json
from datatypes.labelmap.images import encode_png_rgba, pseudocolor
from datatypes.labelmap.ngseg import encode_compressed_segmentation
from datatypes.labelmap.params import (
    BOUNDS,
    DIMS,
    FORMAT,
    HASH,
    LABEL,
    LABELS_BODY,
    OFFSET,
    PNG,
    POINT,
    POINTS_BODY,
    SCALE,
    SIZE,
    SUPERVOXELS,
    VOXEL_QUERY,
    bounds,
    flag,
    nonzero,
    opt,
)
from datatypes.labelmap.rle import (
    encode_binary_blocks,
    encode_rles,
    encode_sparsevol_coarse,
    encode_srles,
    mask_to_spans,
)
from datatypes.roi import find_roi
from dvidpy.codec import CodecError, lz4_compress
from dvidpy.datatype import Call, endpoint
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.spec import EMPTY, JSON, OCTET, TEXT, Q
from dvidpy.versioned import VersionedCtx

CHUNK_BLOCKS = 64
INLINE_BLOCKS = 64  # stored blocks a block request passes through on the event loop
I32 = 2**31
_RAW = {"params": (DIMS, SIZE, OFFSET, FORMAT), "returns": {200: (OCTET, PNG)},
        "query": (*VOXEL_QUERY, Q("compression", "str", "3-D answer encoding: lz4 (one raw "
                                  "LZ4 block), gzip, google (neuroglancer compressed "
                                  "segmentation; sizes multiples of 8) or googlegzip; absent: "
                                  "uint64 LE", enum=("lz4", "gzip", "google", "googlegzip")))}
_BLOCK_COMP = Q("compression", "str", "payload per block: lz4 (default), gzip, uncompressed "
                "uint64 or blocks (gzip'd DVID label block)",
                enum=("lz4", "gzip", "uncompressed", "blocks"))
_SPARSEVOL = (Q("format", "str", "rles (legacy RLE, default), srles (spans only) or blocks "
                "(binary block masks)", enum=("rles", "srles", "blocks")),
              SCALE, SUPERVOXELS,
              Q("compression", "str", "lz4 or gzip of the rles/srles answer",
                enum=("lz4", "gzip")), *BOUNDS)
_SPARSEVOL_HEAD = {200: EMPTY, 204: EMPTY}


def _json_points(body: Any) -> np.ndarray:
    if not isinstance(body, list):
        raise BadRequest("expected a JSON array of [x, y, z] points")
    for p in body:
        if (not isinstance(p, list) or len(p) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool)
                           and -I32 <= v < I32 for v in p)):
            raise BadRequest(f"bad point {p!r}: expected [x, y, z] int32 coordinates")
    return np.array(body, dtype=np.int64).reshape(-1, 3)


class ReadsMixin(LabelmapCore):
    """GET endpoints of labelmap."""

    # ----- voxels -----------------------------------------------------------------------

    def read_subvolume(self, ctx: VersionedCtx, scale: int, offset: tuple[int, int, int],
                       size: tuple[int, int, int], mapped: bool) -> np.ndarray:
        """(nz, ny, nx) uint64 labels of a box at ``scale`` (0 where unwritten)."""
        bs = self.block_size
        coords = blocks_in_box(offset, size, bs)
        blocks = self.read_blocks(ctx, scale, coords, mapped)
        return extract_subvolume(blocks, offset, size, bs, dtype=np.uint64)

    def box3(self, call: Call, what: str) -> tuple[tuple[int, int, int],
                                                    tuple[int, int, int]]:
        """The declared ``size`` (which must be 3-D) and ``offset`` of a request: 400 when
        the box leaves the int32 space, 413 over :attr:`voxel_limit`."""
        size, offset = call.params["size"], call.params["offset"]
        if len(size) != 3:
            raise BadRequest(f"{what} needs a 3-D size nx_ny_nz, not "
                             f"{'_'.join(map(str, size))}")
        self.check_box(offset, size, what)
        return (size[0], size[1], size[2]), offset

    def roi_mask(self, call: Call, scale: int, offset: tuple[int, int, int],
                 size: tuple[int, int, int]) -> np.ndarray | None:
        """Bool ``(nz, ny, nx)`` mask of the ``roi=`` instance over a box at ``scale``, or
        None without ``roi=``.

        The ROI (scale-0 blocks) is evaluated at ``scale`` by shrinking its block size by
        ``2**scale``, which is exact because a scale-``s`` voxel lies inside one ROI block.
        400 when the instance is not an ROI or its block size is not divisible by
        ``2**scale``.
        """
        name = call.params.get("roi")
        if not name:
            return None
        roi = find_roi(self.repo, name, self.manager)
        f = 1 << scale
        rbs = roi.block_size
        if any(b % f for b in rbs):
            raise BadRequest(f"roi {name!r} block size {rbs} can't be used at scale {scale}")
        spans = roi.normalized_spans_at(call.ctx)
        return rs.roi_mask(spans, offset, size, tuple(b // f for b in rbs)).view(bool)

    def _voxels(self, call: Call, offset: tuple[int, int, int], size: tuple[int, int, int],
                scale: int) -> np.ndarray:
        """Mapped (unless ``supervoxels=true``) labels of a box, zero outside ``roi=``."""
        mask = self.roi_mask(call, scale, offset, size)
        vol = self.read_subvolume(call.ctx, scale, offset, size, not flag(call, "supervoxels"))
        if mask is not None:
            vol[~mask] = 0
        return vol

    def _plane(self, call: Call) -> tuple[tuple[int, ...], np.ndarray]:
        """Parse a 2-D ``{dims}/{size}/{offset}`` request and read its plane:
        ``(dims, (h, w) uint64 labels)`` (rows z for xz/yz planes, y for xy)."""
        try:
            dims = parse_dims(call.params["dims"])
            if len(dims) != 2:
                raise ValueError(f"expected 2-D dims (0_1, 0_2, 1_2), got "
                                 f"{call.params['dims']!r}")
            size = plane_size_to_3d(dims, call.params["size"])
        except ValueError as e:
            raise BadRequest(str(e)) from None
        offset = call.params["offset"]
        self.check_box(offset, size, "plane")
        vol = self._voxels(call, offset, size, self.scale_arg(call))
        if dims == (0, 1):
            return dims, vol[0]
        if dims == (0, 2):
            return dims, vol[:, 0, :]
        return dims, vol[:, :, 0]

    @endpoint(("GET", "HEAD"), "raw/{dims}/{size}/{offset}/{format?}",
              "Voxels of a box: uint64 volume (3-D) or label PNG (2-D)", **_RAW)
    def _get_raw(self, call: Call) -> Response:
        """3-D: uint64 volume (``compression`` none/lz4/gzip/google/googlegzip; format
        segment absent or ``octet-stream``). 2-D: a 16-bit RGBA PNG whose sample bytes are
        the little-endian label bytes (Go ``NRGBA64`` as DVID sends it). ``roi=`` zeroes
        voxels outside the ROI (400 when no such roi instance)."""
        try:
            dims = parse_dims(call.params["dims"])
        except ValueError as e:
            raise BadRequest(str(e)) from None
        fmt = call.params["format"] or ""
        if len(dims) == 2:
            if fmt not in ("", "png"):
                raise BadRequest(f"labelmap 2-D slices are served only as png, not {fmt!r}")
            _, img = self._plane(call)
            h, w = img.shape
            pix = np.ascontiguousarray(img, dtype="<u8").view(np.uint8).reshape(h, w * 8)
            return Response(encode_png_rgba(pix, 16), media_type="image/png")
        if fmt not in ("", "octet-stream"):
            raise BadRequest(f"labelmap 3-D volumes are served only as octet-stream, not "
                             f"{fmt!r}")
        size, offset = self.box3(call, "raw request")
        scale = self.scale_arg(call)
        comp = call.params["compression"] or ""
        if comp.startswith("google") and any(s % 8 for s in size):
            raise BadRequest(f"compression={comp} needs sizes that are multiples of 8")
        vol = self._voxels(call, offset, size, scale)
        headers = {}
        if comp == "":  # the volume's own buffer, no copy
            data: bytes | memoryview = memoryview(
                np.ascontiguousarray(vol, dtype="<u8").reshape(-1)).cast("B")
        elif comp == "lz4":
            data = lz4_compress(vol.astype("<u8", copy=False).tobytes())
        elif comp == "gzip":
            data = gzip.compress(vol.astype("<u8", copy=False).tobytes(), 1, mtime=0)
        else:
            data = encode_compressed_segmentation(vol)
            if comp == "googlegzip":
                data = gzip.compress(data, 1, mtime=0)
                headers["Content-Encoding"] = "gzip"
        return Response(data, media_type=OCTET, headers=headers)

    @endpoint(("GET", "HEAD"), "isotropic/{dims}/{size}/{offset}/{format?}",
              "Same as raw (labelmap voxels are served as stored)", **_RAW)
    def _get_isotropic(self, call: Call) -> Response:
        return self._get_raw(call)

    @endpoint(("GET", "HEAD"), "pseudocolor/{dims}/{size}/{offset}",
              "A plane as an RGBA PNG with a hashed color per label", params=(DIMS, SIZE, OFFSET),
              query=VOXEL_QUERY, returns=PNG)
    def _get_pseudocolor(self, call: Call) -> Response:
        """2-D RGBA PNG; each body (or supervoxel) gets a hashed color, 0 is transparent."""
        _, img = self._plane(call)
        return Response(encode_png_rgba(pseudocolor(img), 8), media_type="image/png")

    # ----- blocks -----------------------------------------------------------------------

    def _block_payload(self, ctx: VersionedCtx, value: bytes, comp: str,
                       mapped: bool) -> bytes | memoryview:
        if comp == "blocks":
            try:
                gz = L.stored_payload(value)
                if not mapped:
                    return gz
                labels = L.label_list_from_payload(gz)
            except CodecError as e:
                raise BadRequest(f"stored block is corrupt: {e}") from None
            bodies = self.mapping.map_array(ctx, labels)
            if np.array_equal(bodies, labels):
                return gz
            ser = L.relabel_serialization(L.gunzip_value(value), bodies)
            return L.gzip_payload(ser, 1)
        raw = self.decode_value(ctx, value, mapped).astype("<u8", copy=False).tobytes()
        if comp in ("", "lz4"):
            return lz4_compress(raw)
        if comp == "gzip":
            return gzip.compress(raw, 1, mtime=0)
        return raw

    def _mapped_gzip_payloads(self, ctx: VersionedCtx,
                              values: list[bytes]) -> list[bytes | memoryview]:
        """``compression=blocks`` payloads of stored blocks with bodies: the label lists of
        all blocks are mapped with one lookup; blocks whose list is unchanged by the
        mapping pass through, others get their list rewritten and are re-gzipped."""
        try:
            gzs = [L.stored_payload(v) for v in values]
            lists = [L.label_list_from_payload(g) for g in gzs]
        except CodecError as e:
            raise BadRequest(f"stored block is corrupt: {e}") from None
        allb = self.mapping.map_array(ctx, np.concatenate(lists))
        out: list[bytes | memoryview] = []
        pos = 0
        for v, g, labels in zip(values, gzs, lists, strict=True):
            bodies = allb[pos:pos + labels.size]
            pos += labels.size
            if np.array_equal(bodies, labels):
                out.append(g)
            else:
                out.append(L.gzip_payload(L.relabel_serialization(L.gunzip_value(v), bodies),
                                          1))
        return out

    def _stream_blocks(self, ctx: VersionedCtx, scale: int, coords: np.ndarray, comp: str,
                       mapped: bool) -> Iterator[bytes | memoryview]:
        for i in range(0, coords.shape[0], CHUNK_BLOCKS):
            chunk = coords[i:i + CHUNK_BLOCKS]
            found = [(c, v) for c, v in zip(chunk.tolist(),
                                            self.block_values(ctx, scale, chunk), strict=True)
                     if v is not None]
            if not found:
                continue
            if comp == "blocks" and mapped:
                payloads = self._mapped_gzip_payloads(ctx, [v for _, v in found])
            else:
                payloads = [self._block_payload(ctx, v, comp, mapped) for _, v in found]
            parts: list[bytes | memoryview] = []
            for ((x, y, z), _), p in zip(found, payloads, strict=True):
                parts.append(encode_header(x, y, z, len(p)))
                parts.append(p)
            yield b"".join(parts)

    @endpoint("GET", "blocks/{size}/{offset}", "Stored blocks of a block-aligned box, as a "
              "block stream", params=(SIZE, OFFSET), query=(SCALE, SUPERVOXELS, _BLOCK_COMP),
              returns=OCTET, inline=True)
    def _get_blocks(self, call: Call) -> Response:
        size, offset = self.box3(call, "blocks request")
        scale = self.scale_arg(call)
        comp = call.params["compression"] or ""
        bs = self.block_size
        if not is_block_aligned(offset, size, bs):
            raise BadRequest(f"blocks request {size} at {offset} must be block-aligned ({bs})")
        coords = blocks_in_box(offset, size, bs)
        return self._blocks_response(call.ctx, scale, coords, comp,
                                     not flag(call, "supervoxels"))

    def _blocks_response(self, ctx: VersionedCtx, scale: int, coords: np.ndarray, comp: str,
                         mapped: bool) -> Response:
        """A block stream answer. The endpoints are declared ``inline`` (they run on the
        event loop when the engine is local): up to :data:`INLINE_BLOCKS` stored blocks
        passed through as stored (``compression=blocks`` of supervoxels) are read and
        joined here, a few point reads; anything that decodes or relabels blocks, or more
        blocks, is streamed from a worker thread."""
        gen = self._stream_blocks(ctx, scale, coords, comp, mapped)
        if comp == "blocks" and not mapped and coords.shape[0] <= INLINE_BLOCKS:
            return Response(b"".join(gen), media_type=OCTET)
        return StreamingResponse(gen, media_type=OCTET)

    @endpoint("GET", "specificblocks", "The listed stored blocks, as a block stream",
              query=(Q("blocks", "str", "block coordinates x1,y1,z1,x2,y2,z2,... at scale"),
                     SCALE, SUPERVOXELS, Q("compression", "str", _BLOCK_COMP.doc + "; default "
                                           "blocks", default="blocks", enum=_BLOCK_COMP.enum),
                     Q("prefetch", "bool", "answer empty (DVID's cache warm-up)")),
              returns=OCTET, inline=True)
    def _get_specificblocks(self, call: Call) -> Response:
        scale = self.scale_arg(call)
        comp = call.params["compression"]
        try:
            coords = parse_block_list(call.params["blocks"] or "")
        except ValueError as e:
            raise BadRequest(str(e)) from None
        if flag(call, "prefetch"):
            return Response(b"", media_type=OCTET)
        return self._blocks_response(call.ctx, scale, coords, comp,
                                     not flag(call, "supervoxels"))

    # ----- point queries ----------------------------------------------------------------

    def labels_at(self, ctx: VersionedCtx, pts: np.ndarray, scale: int,
                  mapped: bool) -> np.ndarray:
        """Labels at (N, 3) x, y, z points of ``scale``; one block read per distinct block."""
        out = np.zeros(pts.shape[0], dtype=np.uint64)
        if pts.shape[0] == 0:
            return out
        bs = np.array(self.block_size, dtype=np.int64)
        bc = pts // bs
        ub, inv = np.unique(bc, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        blocks = self.read_blocks(ctx, scale, ub, False)
        local = pts - bc * bs
        for i, c in enumerate(ub.tolist()):
            arr = blocks.get(tuple(c))
            if arr is None:
                continue
            sel = inv == i
            lp = local[sel]
            out[sel] = arr[lp[:, 2], lp[:, 1], lp[:, 0]]
        if mapped:
            out = self.mapping.map_array(ctx, out)
        return out

    def _check_hash(self, call: Call) -> None:
        h = call.params.get("hash")
        if h and hashlib.md5(call.body).hexdigest() != h.lower():
            raise BadRequest("request body does not match the given hash (body dropped?)")

    @endpoint("GET", "label/{point}", "The label at a voxel", params=(POINT,),
              query=(SCALE, SUPERVOXELS), inline=True)
    def _get_label(self, call: Call) -> Any:
        """``{"Label": id}``; 0 for background or unwritten voxels."""
        p = call.params["point"]
        scale = self.scale_arg(call)
        v = self.labels_at(call.ctx, np.array([p], dtype=np.int64), scale,
                           not flag(call, "supervoxels"))
        return {"Label": int(v[0])}

    @endpoint("GET", "labels", "The labels at the points listed in the GET body",
              body=POINTS_BODY, query=(SCALE, SUPERVOXELS, HASH))
    def _get_labels(self, call: Call) -> Any:
        self._check_hash(call)
        pts = _json_points(call.json())
        scale = self.scale_arg(call)
        return self.labels_at(call.ctx, pts, scale, not flag(call, "supervoxels")).tolist()

    # ----- index-derived queries ----------------------------------------------------------

    def _idx(self, call: Call) -> tuple[int, Any]:
        label = nonzero(call.params["label"])
        idx = self.index_for(call.ctx, label, flag(call, "supervoxels"))
        if idx is None or not len(idx.blocks):
            raise NotFound(f"label {label} not found in {self.meta.name!r}")
        return label, idx

    @endpoint("GET", "size/{label}", "Voxel count of a label (404 when absent)",
              params=(LABEL,), query=(SUPERVOXELS,))
    def _get_size(self, call: Call) -> Any:
        _, idx = self._idx(call)
        return {"voxels": int(L.index_arrays(idx)[2].sum())}

    @endpoint("GET", "sizes", "Voxel counts of the labels listed in the GET body (0 when "
              "absent)", body=LABELS_BODY, query=(SUPERVOXELS, HASH))
    def _get_sizes(self, call: Call) -> Any:
        self._check_hash(call)
        labels = label_list_json(call.json())
        sv = flag(call, "supervoxels")
        out = []
        for lab in labels:
            idx = self.index_for(call.ctx, lab, sv) if lab else None
            out.append(0 if idx is None else int(L.index_arrays(idx)[2].sum()))
        return out

    @endpoint("GET", "supervoxels/{label}", "Supervoxels of a body", params=(LABEL,),
              query=(SUPERVOXELS,))
    def _get_supervoxels(self, call: Call) -> Any:
        _, idx = self._idx(call)
        return np.unique(L.index_arrays(idx)[1]).tolist()

    @endpoint("GET", "supervoxel-sizes/{label}", "Supervoxels of a body and their voxel "
              "counts", params=(LABEL,), query=(SUPERVOXELS,))
    def _get_sv_sizes(self, call: Call) -> Any:
        _, idx = self._idx(call)
        _, sv, cn = L.index_arrays(idx)
        u, inv = np.unique(sv, return_inverse=True)
        tot = np.zeros(u.size, dtype=np.uint64)
        np.add.at(tot, inv, cn)
        return {"supervoxels": u.tolist(), "sizes": tot.tolist()}

    @endpoint("GET", "lastmod/{label}", "Last mutation of a label", params=(LABEL,),
              query=(SUPERVOXELS,))
    def _get_lastmod(self, call: Call) -> Any:
        _, idx = self._idx(call)
        return {"mutation id": idx.last_mutid, "last mod user": idx.last_mod_user,
                "last mod app": idx.last_mod_app, "last mod time": idx.last_mod_time}

    @endpoint("GET", "sparsevol-size/{label}", "Voxel count, block count and block-aligned "
              "bounds of a label", params=(LABEL,), query=(SUPERVOXELS,))
    def _get_sparsevol_size(self, call: Call) -> Any:
        _, idx = self._idx(call)
        c = L.index_block_coords(idx)
        bs = np.array(self.block_size)
        return {"voxels": int(L.index_arrays(idx)[2].sum()), "numblocks": int(c.shape[0]),
                "minvoxel": (c.min(axis=0) * bs).tolist(),
                "maxvoxel": ((c.max(axis=0) + 1) * bs - 1).tolist()}

    @endpoint(("GET", "HEAD"), "sparsevol-coarse/{label}", "Scale-0 block coordinates of a "
              "label, as RLE", params=(LABEL,), query=(SUPERVOXELS, *BOUNDS), returns=OCTET)
    def _get_sparsevol_coarse(self, call: Call) -> Response:
        label, idx = self._idx(call)
        c = L.index_block_coords(idx)
        bnd = bounds(call)
        if bnd is not None:
            bs = np.array(self.block_size)
            lo = np.floor_divide(np.array(bnd[0]), bs)
            hi = np.floor_divide(np.array(bnd[1]), bs)
            c = c[((c >= lo) & (c <= hi)).all(axis=1)]
        if c.shape[0] == 0:
            raise NotFound(f"label {label} has no blocks within the bounds")
        return Response(encode_sparsevol_coarse(c), media_type=OCTET)

    def sparse_blocks(self, ctx: VersionedCtx, idx: Any, scale: int,
                      bounds: tuple[list[int], list[int]] | None,
                      ) -> Iterator[tuple[tuple[int, int, int], np.ndarray]]:
        """Yield ``(block offset xyz, mask)`` per block at ``scale`` holding the index's
        supervoxels (masks clipped to ``bounds``; empty masks skipped)."""
        bk, svs, cn = L.index_arrays(idx)
        all_svs = np.unique(svs)
        bs = np.array(self.block_size, dtype=np.int64)
        nvox = int(np.prod(bs))
        if scale == 0:
            order = np.argsort(bk, kind="stable")
            bk, svs, cn = bk[order], svs[order], cn[order]
            ukeys, starts = np.unique(bk, return_index=True)
            ends = np.append(starts[1:], bk.size)
            from datatypes.labelmap.rle import decode_block_coords
            coords = decode_block_coords(ukeys).astype(np.int64)
            per_block = {tuple(c): (svs[s:e], int(cn[s:e].sum()))
                         for c, s, e in zip(coords.tolist(), starts.tolist(), ends.tolist(),
                                            strict=True)}
        else:
            c0 = L.index_block_coords(idx)
            coords = np.unique(c0 >> scale, axis=0)
            per_block = {}
        if bounds is not None:
            lo = np.floor_divide(np.array(bounds[0]), bs)
            hi = np.floor_divide(np.array(bounds[1]), bs)
            coords = coords[((coords >= lo) & (coords <= hi)).all(axis=1)]
        if coords.shape[0] == 0:
            return
        coords = coords[np.lexsort((coords[:, 0], coords[:, 1], coords[:, 2]))]
        for i in range(0, coords.shape[0], CHUNK_BLOCKS):
            chunk = coords[i:i + CHUNK_BLOCKS]
            vals = self.block_values(ctx, scale, chunk)
            for c, v in zip(chunk.tolist(), vals, strict=True):
                if v is None:
                    continue
                c = tuple(c)
                off = np.array(c) * bs
                pb = per_block.get(c)
                if pb is not None and pb[1] == nvox:
                    mask = np.ones(self.block_shape, dtype=bool)
                else:
                    want = pb[0] if pb is not None else all_svs
                    mask = self.decode_mask(v, want)
                if bounds is not None:
                    lo = np.clip(np.array(bounds[0]) - off, 0, bs)
                    hi = np.clip(np.array(bounds[1]) + 1 - off, 0, bs)
                    clip = np.zeros_like(mask)
                    clip[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] = True
                    mask &= clip
                if mask.any():
                    yield (int(off[0]), int(off[1]), int(off[2])), mask

    @endpoint("GET", "sparsevol/{label}", "The voxels of a label as a sparse volume",
              params=(LABEL,), query=_SPARSEVOL, returns=OCTET)
    @endpoint("HEAD", "sparsevol/{label}", "200 when the label has voxels (within the "
              "bounds, rounded out to blocks), else 204", params=(LABEL,), query=_SPARSEVOL,
              returns=_SPARSEVOL_HEAD)
    def _get_sparsevol(self, call: Call) -> Response:
        self.require_indexed("sparsevol")
        return self.sparsevol_response(call, nonzero(call.params["label"]))

    @endpoint("GET", "sparsevol-by-point/{point}", "Sparse volume of the label at a voxel",
              params=(POINT,), query=_SPARSEVOL, returns=OCTET)
    @endpoint("HEAD", "sparsevol-by-point/{point}", "200 when the label at a voxel has voxels "
              "within the bounds, else 204", params=(POINT,), query=_SPARSEVOL,
              returns=_SPARSEVOL_HEAD)
    def _get_sparsevol_by_point(self, call: Call) -> Response:
        """Sparsevol of the body (or with ``supervoxels=true`` the supervoxel) at a scale-0
        point; 400 when the point is background or unwritten."""
        self.require_indexed("sparsevol-by-point")
        p = call.params["point"]
        label = int(self.labels_at(call.ctx, np.array([p], dtype=np.int64), 0,
                                   not flag(call, "supervoxels"))[0])
        if label == 0:
            raise BadRequest(f"point {p} is background (label 0) in {self.meta.name!r}")
        return self.sparsevol_response(call, label)

    def sparsevol_response(self, call: Call, label: int) -> Response:
        """The ``sparsevol`` answer for ``label`` (format, compression, bounds, scale and
        supervoxels from the query); everything is validated before reading."""
        scale = self.scale_arg(call)
        fmt = opt(call, "format", "rles")
        comp = opt(call, "compression", "")
        bnds = bounds(call)
        idx = self.index_for(call.ctx, label, flag(call, "supervoxels"))
        if call.method == "HEAD":
            if idx is None or not len(idx.blocks):
                return Response(b"", status_code=204)
            if bnds is not None:
                c = L.index_block_coords(idx)
                bs = np.array(self.block_size)
                lo = np.floor_divide(np.array(bnds[0]), bs)
                hi = np.floor_divide(np.array(bnds[1]), bs)
                if not ((c >= lo) & (c <= hi)).all(axis=1).any():
                    return Response(b"", status_code=204)
            return Response(b"", status_code=200)
        if idx is None or not len(idx.blocks):
            raise NotFound(f"label {label} not found in {self.meta.name!r}")
        blocks = self.sparse_blocks(call.ctx, idx, scale, bnds)
        if fmt == "blocks":
            data = encode_binary_blocks(label, blocks)
            if not data:
                raise NotFound(f"label {label} has no voxels within the bounds")
            return Response(data, media_type=OCTET)
        spans = [mask_to_spans(m, off) for off, m in blocks]
        if not spans:
            raise NotFound(f"label {label} has no voxels within the bounds")
        allspans = np.concatenate(spans)
        data = encode_srles(allspans) if fmt == "srles" else encode_rles(allspans)
        if comp == "lz4":
            data = lz4_compress(data)
        elif comp == "gzip":
            data = gzip.compress(data, 1, mtime=0)
        return Response(data, media_type=OCTET)

    @endpoint("GET", "listlabels", "Bodies with an index, ascending, as uint64 LE (with "
              "sizes=true: label, voxels pairs)", returns=OCTET, query=(
                  Q("start", "uint64", "first label (inclusive)", default=0),
                  Q("number", "count", "most labels to list (1..10,000,000)",
                    default=10_000_000),
                  Q("sizes", "bool", "add each label's voxel count")))
    def _get_listlabels(self, call: Call) -> Response:
        start, number = call.params["start"], call.params["number"]
        if not 0 < number <= 10_000_000:
            raise BadRequest("listlabels needs 0 < number <= 10000000")
        sizes = flag(call, "sizes")
        ctx = call.ctx
        end = L.index_tkey(0)[:2] + b"\xff" * 9

        def gen() -> Iterator[bytes]:
            buf = []
            scan = self.store.scan(ctx, L.index_tkey(start), end, keys_only=not sizes)
            for n, (tk, v) in enumerate(scan, 1):
                lab = int.from_bytes(tk[2:10], "big")
                if sizes:
                    buf.append(struct.pack("<QQ", lab,
                                           int(L.index_arrays(L.parse_index(v))[2].sum())))
                else:
                    buf.append(struct.pack("<Q", lab))
                if len(buf) >= 8192:
                    yield b"".join(buf)
                    buf = []
                if n >= number:
                    break
            if buf:
                yield b"".join(buf)

        return StreamingResponse(gen(), media_type=OCTET)

    # ----- labels, mapping, indices ------------------------------------------------------

    @endpoint("GET", "maxlabel", "This version's max label (400 \"No maximum label\" when "
              "none)", inline=True)
    def _get_maxlabel(self, call: Call) -> Any:
        self.require_indexed("maxlabel")
        v = self.version_max_label(call.ctx)
        if v is None:
            raise BadRequest(f"No maximum label found for {self.meta.name!r} at "
                             f"{call.ctx.node.uuid}")
        return {"maxlabel": v}

    @endpoint("GET", "nextlabel", "The id the next allocation would start at", inline=True)
    def _get_nextlabel(self, call: Call) -> Any:
        self.require_indexed("nextlabel")
        nxt = self.next_label_counter()
        return {"nextlabel": nxt if nxt else self.repo_max_label() + 1}

    @endpoint("GET", "mapping", "Bodies of the supervoxels listed in the GET body (0 when "
              "absent or retired)", body=LABELS_BODY, query=(
                  Q("nolookup", "bool", "skip checking the supervoxels against the indices"),
                  HASH))
    def _get_mapping(self, call: Call) -> Any:
        self._check_hash(call)
        svs = label_list_json(call.json(), "supervoxels")
        ctx = call.ctx
        m = self.mapping.lookup(ctx, svs)
        out = [m[s] for s in svs]
        if not flag(call, "nolookup"):
            by_body: dict[int, set[int]] = {}
            for s, b in zip(svs, out, strict=True):
                if b:
                    by_body.setdefault(b, set()).add(s)
            present: set[int] = set()
            for b, want in by_body.items():
                idx = self.get_index(ctx, b)
                if idx is not None:
                    present.update(want & set(L.index_arrays(idx)[1].tolist()))
            out = [b if s in present else 0 for s, b in zip(svs, out, strict=True)]
        return out

    @endpoint("GET", "mappings", "Every non-identity mapping of this version: text lines "
              "\"sv body\" or binary uint64 LE pairs", returns={200: (TEXT, OCTET)},
              query=(Q("format", "str", "binary for uint64 LE pairs; anything else: text"),))
    def _get_mappings(self, call: Call) -> Response:
        binary = call.params["format"] == "binary"
        ctx = call.ctx
        pre = L.mapping_tkey(0)[:2]

        def gen() -> Iterator[bytes]:
            buf = []
            for tk, v in self.store.scan_prefix(ctx, pre):
                sv = int.from_bytes(tk[2:10], "big")
                body = int.from_bytes(v, "little")
                if body == 0 or body == sv:
                    continue
                buf.append(struct.pack("<QQ", sv, body) if binary
                           else f"{sv} {body}\n".encode())
                if len(buf) >= 8192:
                    yield b"".join(buf)
                    buf = []
            if buf:
                yield b"".join(buf)

        return StreamingResponse(gen(), media_type=OCTET if binary else "text/plain")

    @endpoint("GET", "index/{label}", "A body's LabelIndex protobuf (or its metadata as JSON)",
              params=(LABEL,), returns={200: (OCTET, JSON)}, query=(
                  Q("metadata-only", "bool", "answer only the index metadata, as JSON"),
                  Q("mutid", "uint64", "the newest stored index written before that mutation (404 "
                                    "when none is kept)")))
    def _get_index(self, call: Call) -> Any:
        label = nonzero(call.params["label"])
        mutid = call.params["mutid"]
        idx = (self.get_index(call.ctx, label) if mutid is None
               else self.index_before(call.ctx, label, mutid))
        if idx is None or not len(idx.blocks):
            raise NotFound(f"label {label} has no index in {self.meta.name!r}")
        if flag(call, "metadata-only"):
            return {"num_voxels": int(L.index_arrays(idx)[2].sum()),
                    "last_mutid": idx.last_mutid, "last_mod_time": idx.last_mod_time,
                    "last_mod_user": idx.last_mod_user, "last_mod_app": idx.last_mod_app}
        return Response(idx.SerializeToString(), media_type=OCTET)

    @endpoint("GET", "indices", "LabelIndices protobuf of the labels listed in the GET body "
              "(<= 50,000)", body=LABELS_BODY, returns=OCTET)
    def _get_indices(self, call: Call) -> Response:
        labels = label_list_json(call.json())
        if len(labels) > 50_000:
            raise BadRequest("at most 50,000 labels per indices request")
        out = protos.LabelIndices()
        for lab in labels:
            idx = self.get_index(call.ctx, lab) if lab else None
            if idx is None:
                out.indices.add(label=lab)
            else:
                out.indices.append(idx)
        return Response(out.SerializeToString(), media_type=OCTET)

    @endpoint("GET", "mutations", "This version's completed-mutation records, in order")
    def _get_mutations(self, call: Call) -> Any:
        return self.mutation_records(call.ctx)
