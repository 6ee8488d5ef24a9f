"""Boss volume routes: cutouts, images, tiles and downsampling (the Boss's
``bossspatialdb`` and ``bosstiles`` views).

``GET|POST /v1/cutout/{c}/{e}/{ch}/{res}/{x0:x1}/{y0:y1}/{z0:z1}[/{t0:t1}]/``
    Half-open ranges. GET answers the format ``Accept`` names (:mod:`dvidpy.boss.wire`:
    ``application/blosc`` (default), ``application/blosc-python``, ``application/npygz``,
    ``image/jpeg`` for uint8 without a time range) as ``(z, y, x)`` voxels, ``(t, z, y,
    x)`` when a time range was given. ``filter=id1,id2`` (annotation channels) zeroes
    every other id; ``iso=true`` reads the isotropic view; ``access-mode`` is accepted and
    has no effect (dvidpy has no Boss cache tiers). POST takes the same formats as
    ``Content-Type`` and answers 201; every check (size, dtype, shape, frame, time,
    version) passes before anything is written.
``PUT /v1/cutout/to_black/{c}/{e}/{ch}/{res}/{x0:x1}/{y0:y1}/{z0:z1}[/{t0:t1}]/``
    Sets a box to 0 (200).
``GET /v1/image/{c}/{e}/{ch}/{xy|xz|yz}/{res}/{x}/{y}/{z}[/{t}]/``
    One slice: the two in-plane arguments are ranges ``a:b``, the third an index. PNG, or
    JPEG with ``Accept: image/jpeg``. uint8 as it is, uint16 as ``v / 256`` (the Boss's
    windowing), annotation ids as colours (0 transparent); uint32/uint64 images are 400.
``GET /v1/tile/{c}/{e}/{ch}/{xy|xz|yz}/{tile_size}/{res}/{xi}/{yi}/{zi}[/{t}]/``
    The tile of ``tile_size`` (1..2048) pixels at tile index ``xi, yi`` (xy; for xz and yz
    the in-plane axes' indices, the third an index), clipped to the frame and padded
    with 0.
``GET|POST|DELETE /v1/downsample/{c}/{e}/{ch}/[?iso=true]``
    Status (``status``, ``num_hierarchy_levels`` and per level ``voxel_size``, ``extent``,
    ``cuboid_size``), start (image channels: the imageblk pyramid of the experiment's
    levels, in the background; annotation channels are kept downsampled by labelmap on
    every write), cancel (204; 409 when nothing runs).

Every route takes ``version=UUID`` (see :mod:`dvidpy.boss.access`). A write resets the
channel's ``downsample_status`` to ``NOT_DOWNSAMPLED``, as in the Boss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import starlette.responses
from starlette.responses import Response

from dvidpy.boss import wire
from dvidpy.boss.access import VERSION, model, on_channel, target
from dvidpy.boss.errors import INVALID_CUTOUT_ARGS, INVALID_STATE, BossError
from dvidpy.boss.volumes import CUBOID_SIZE, Box, Volume, check_size
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import EMPTY, JSON, Body, Param, Q
from dvidpy.http.table import RouteTable

routes = RouteTable("boss")
NAMES = (Param("collection", "str", "collection name"),
          Param("experiment", "str", "experiment name"),
          Param("channel", "str", "channel name"))
RES = Param("resolution", "count", "resolution level (0 = native)")
RANGES = (Param("x", "span", "x range x0:x1 (half-open)"),
           Param("y", "span", "y range y0:y1"), Param("z", "span", "z range z0:z1"),
           Param("t", "span", "time range t0:t1 (default: the channel's default sample)"))
CUTOUT_PATH = "{collection}/{experiment}/{channel}/{resolution}/{x}/{y}/{z}/{t?}"
_ISO = Q("iso", "bool", "read the isotropic view of an anisotropic experiment")
_QUERY = (Q("filter", "str", "annotation channels: comma-separated ids to keep (others "
                             "read as 0)"), _ISO,
          Q("access-mode", "str", "the Boss's cache mode (accepted, no effect here)",
            enum=("cache", "no_cache", "no-cache", "raw")), VERSION)
MAX_FILTER_IDS = 100_000
_PIECE = 4 << 20


def volume(call: HttpCall) -> Volume:
    """The request's channel volume."""
    return Volume(model(call), target(call), call.identity.user or "", "boss")


def _box(call: HttpCall, vol: Volume, iso: bool = False) -> Box:
    p = call.params
    return vol.box(p["resolution"], p["x"], p["y"], p["z"], p["t"], iso)


def _filter_ids(call: HttpCall, vol: Volume) -> np.ndarray | None:
    raw = call.params.get("filter")
    if not raw:
        return None
    if not vol.annotation:
        raise BossError("filter= applies to annotation channels only", INVALID_CUTOUT_ARGS)
    parts = raw.split(",")
    if len(parts) > MAX_FILTER_IDS:
        raise BossError(f"filter names over {MAX_FILTER_IDS} ids", INVALID_CUTOUT_ARGS)
    try:
        ids = [int(s) for s in parts]
    except ValueError:
        raise BossError(f"filter must be comma-separated ids, not {raw[:100]!r}",
                        INVALID_CUTOUT_ARGS) from None
    if any(not 0 <= i < 2**64 for i in ids):
        raise BossError("filter ids must be unsigned 64-bit integers", INVALID_CUTOUT_ARGS)
    return np.array(ids, dtype=np.uint64)


def _downsample_reset(call: HttpCall, vol: Volume) -> None:
    if vol.chan["downsample_status"] != "NOT_DOWNSAMPLED":
        p = call.params
        model(call).set_channel(p["collection"], p["experiment"], p["channel"],
                                downsample_status="NOT_DOWNSAMPLED")


# ----- cutouts --------------------------------------------------------------------------

@routes.get("/v1/cutout/" + CUTOUT_PATH, "Voxels of a box (blosc, blosc-python, npygz, JPEG)",
            params=(*NAMES, RES, *RANGES), query=_QUERY, resource=on_channel,
            returns={200: wire.FORMATS})
def get_cutout(call: HttpCall) -> Response:
    vol = volume(call)
    media = wire.negotiate(call.headers.get("accept", ""))
    iso = bool(call.params["iso"])
    b = _box(call, vol, iso)
    ids = _filter_ids(call, vol)
    if media == wire.JPEG:
        if vol.dtype.itemsize != 1 or vol.annotation:
            raise BossError("The cutout service JPEG interface only supports uint8 image "
                            "data", 2001)
        if b.timed:
            raise BossError("The cutout service JPEG interface does not support 4D cutouts",
                            2005)
    data = vol.read(call.params["resolution"], b, iso)
    if ids is not None:
        data[~np.isin(data, ids)] = 0
    out = data if b.timed else data[0]
    if media == wire.BLOSC and out.nbytes > _PIECE and out.nbytes <= wire.BLOSC_MAX_BYTES \
            and not wire.worth_compressing(out):
        head = wire.stored_header(out.nbytes, out.dtype.itemsize)
        return _send([head, memoryview(out.reshape(-1).view(np.uint8))], media)
    return _send([wire.encode(media, out)], media)


def _send(parts: list[bytes | memoryview], media: str) -> Response:
    """``parts`` in pieces of at most 4 MiB (views, no copies): the transport writes a big
    answer faster that way than as one piece."""
    total = sum(len(p) for p in parts)
    if total <= _PIECE and len(parts) == 1:
        return Response(bytes(parts[0]), media_type=media)

    def pieces() -> Any:
        for part in parts:
            view = memoryview(part)
            for i in range(0, len(view), _PIECE):
                yield view[i:i + _PIECE]

    return starlette.responses.StreamingResponse(
        pieces(), media_type=media, headers={"Content-Length": str(total)})


def _body_media(call: HttpCall) -> str:
    ct = call.headers.get("content-type", "").split(";")[0].strip().lower()
    return ct or wire.BLOSC


@routes.post("/v1/cutout/" + CUTOUT_PATH, "Write a box of voxels (blosc, blosc-python, npygz)",
             params=(*NAMES, RES, *RANGES), query=(_ISO, VERSION), resource=on_channel,
             body=Body(wire.BLOSC, "the voxels, blosc-compressed C-order (t,)z,y,x (also "
                                   "application/blosc-python and application/npygz by "
                                   "Content-Type)"),
             returns={201: EMPTY})
def post_cutout(call: HttpCall) -> Response:
    vol = volume(call)
    vol.check_writable()
    if call.params["iso"] and vol.aniso and vol.factors(call.params["resolution"], True)[2] > 1:
        raise BossError("iso=true writes are not supported where the isotropic view "
                        "differs from the stored levels", INVALID_CUTOUT_ARGS)
    b = _box(call, vol)
    media = _body_media(call)
    shape = b.shape if b.timed else b.shape[1:]
    data = wire.decode_body(media, call.body, vol.dtype, shape)
    vol.write(call.params["resolution"], b, data.reshape(b.shape))
    _downsample_reset(call, vol)
    return Response(b"", status_code=201)


@routes.put("/v1/cutout/to_black/" + CUTOUT_PATH, "Set a box to 0",
            params=(*NAMES, RES, *RANGES), query=(_ISO, VERSION), resource=on_channel,
            returns=EMPTY)
def put_to_black(call: HttpCall) -> Response:
    vol = volume(call)
    vol.check_writable()
    b = _box(call, vol)
    vol.write(call.params["resolution"], b, np.zeros(b.shape, dtype=vol.dtype))
    _downsample_reset(call, vol)
    return Response(b"", status_code=200)


# ----- images and tiles -----------------------------------------------------------------

def _slice_image(vol: Volume, data: np.ndarray, media: str) -> Response:
    """A 2-D slice as the Boss renders it (see the module docstring)."""
    import io

    from PIL import Image

    img = np.ascontiguousarray(data)
    if vol.annotation:
        if media == wire.JPEG:
            raise BossError("annotation images are PNG (colours with transparency)",
                            INVALID_CUTOUT_ARGS)
        v = img.astype(np.uint64)
        h = (v * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
        rgba = np.empty((*img.shape, 4), dtype=np.uint8)
        rgba[..., 0] = (h & np.uint64(255)).astype(np.uint8)
        rgba[..., 1] = ((h >> np.uint64(8)) & np.uint64(255)).astype(np.uint8)
        rgba[..., 2] = ((h >> np.uint64(16)) & np.uint64(255)).astype(np.uint8)
        rgba[..., 3] = np.where(v != 0, 255, 0).astype(np.uint8)
        pil = Image.fromarray(rgba, "RGBA")
    elif vol.dtype.itemsize == 1:
        pil = Image.fromarray(img, "L")
    elif vol.dtype.itemsize == 2:
        pil = Image.fromarray((img >> 8).astype(np.uint8), "L")
    else:
        raise BossError(f"the image service draws uint8 and uint16 data, not "
                        f"{vol.chan['datatype']}", 2003)
    buf = io.BytesIO()
    pil.save(buf, "JPEG" if media == wire.JPEG else "PNG")
    return Response(buf.getvalue(), media_type=media)


def _image_media(call: HttpCall) -> str:
    accept = call.headers.get("accept", "").lower()
    return wire.JPEG if "image/jpeg" in accept and "image/png" not in accept else "image/png"


def _arg(s: str, what: str, span: bool) -> tuple[int, int]:
    """``a:b`` (span) or ``n`` -> ``(a, b)`` / ``(n, n + 1)``; 400 otherwise."""
    a, sep, b = s.partition(":")
    try:
        if span and sep:
            lo, hi = int(a), int(b)
        elif not span and not sep:
            lo = int(a)
            hi = lo + 1
        else:
            raise ValueError
    except ValueError:
        want = "a range a:b" if span else "an index"
        raise BossError(f"Incorrect cutout arguments: {what}={s!r} must be {want}",
                        INVALID_CUTOUT_ARGS) from None
    if lo < 0 or hi <= lo or hi > 2**31 - 1:
        raise BossError(f"Incorrect cutout arguments: {what}={s!r}", INVALID_CUTOUT_ARGS)
    return lo, hi


_PLANES = {"xy": (0, 1, 2), "xz": (0, 2, 1), "yz": (1, 2, 0)}
_ORIENT = Param("orientation", "str", "plane: xy, xz or yz", enum=("xy", "xz", "yz"))
_T1 = Param("t", "count", "time sample (default: the channel's default sample)")


def _one_slice(call: HttpCall, vol: Volume, rng: list[tuple[int, int]], res: int,
               media: str, clip: bool) -> Response:
    """Read and draw the one-voxel-thick box ``rng`` (x, y, z) of the orientation."""
    t = call.params["t"]
    tr = None if t is None else (t, t + 1)
    ext = vol.extent(res)
    want = list(rng)
    if clip:  # tiles: the part inside the frame, padded with 0
        rng = [(max(lo, flo), min(hi, fhi)) for (lo, hi), (flo, fhi)
               in zip(rng, ext, strict=True)]
    shape = tuple(h - lo for lo, h in reversed(want))
    full = np.zeros(shape, dtype=vol.dtype)
    if all(hi > lo for lo, hi in rng):
        b = vol.box(res, rng[0], rng[1], rng[2], tr)
        data = vol.read(res, b)[0]
        sl = tuple(slice(lo - w, hi - w) for (lo, hi), (w, _) in
                   zip(reversed(rng), reversed(want), strict=True))
        full[sl] = data
    else:
        vol.check_res(res)
    o = call.params["orientation"]
    plane = full[0] if o == "xy" else (full[:, 0, :] if o == "xz" else full[:, :, 0])
    return _slice_image(vol, plane, media)


@routes.get("/v1/image/{collection}/{experiment}/{channel}/{orientation}/{resolution}/"
            "{xa}/{ya}/{za}/{t?}", "One slice as PNG or JPEG",
            params=(*NAMES, _ORIENT, RES,
                    Param("xa", "str", "x range a:b, or an index for yz"),
                    Param("ya", "str", "y range a:b, or an index for xz"),
                    Param("za", "str", "z range a:b, or an index for xy"), _T1),
            query=(VERSION,), resource=on_channel, returns={200: ("image/png", wire.JPEG)})
def get_image(call: HttpCall) -> Response:
    vol = volume(call)
    p = call.params
    flat = _PLANES[p["orientation"]][2]
    rng = [_arg(p[k], k[0], i != flat) for i, k in enumerate(("xa", "ya", "za"))]
    return _one_slice(call, vol, rng, p["resolution"], _image_media(call), clip=False)


@routes.get("/v1/tile/{collection}/{experiment}/{channel}/{orientation}/{tile_size}/"
            "{resolution}/{xi}/{yi}/{zi}/{t?}", "A fixed-size tile as PNG or JPEG",
            params=(*NAMES, _ORIENT, Param("tile_size", "count", "pixels per side (1..2048)"),
                    RES, Param("xi", "count", "x tile index (yz: x index)"),
                    Param("yi", "count", "y tile index (xz: y index)"),
                    Param("zi", "count", "z tile index (xy: z index)"), _T1),
            query=(VERSION,), resource=on_channel, returns={200: ("image/png", wire.JPEG)})
def get_tile(call: HttpCall) -> Response:
    vol = volume(call)
    p = call.params
    ts = p["tile_size"]
    if not 1 <= ts <= 2048:
        raise BossError(f"tile_size must be 1..2048, not {ts}", INVALID_CUTOUT_ARGS)
    flat = _PLANES[p["orientation"]][2]
    idx = (p["xi"], p["yi"], p["zi"])
    rng = []
    for axis, i in enumerate(idx):
        lo = i if axis == flat else i * ts
        hi = lo + 1 if axis == flat else lo + ts
        if hi > 2**31 - 1:
            raise BossError("tile index out of range", INVALID_CUTOUT_ARGS)
        rng.append((lo, hi))
    check_size(ts * ts, vol.dtype)
    return _one_slice(call, vol, rng, p["resolution"], _image_media(call), clip=True)


# ----- downsampling ---------------------------------------------------------------------

def downsample_status(call: HttpCall, vol: Volume) -> str:
    """The channel's ``downsample_status``, reconciled with its pyramid job."""
    status = vol.chan["downsample_status"]
    if vol.annotation or status not in ("QUEUED", "IN_PROGRESS"):
        return status
    st = vol.inst.downres_status()
    state = st.get("State")
    node = vol.t.node
    if state == "running":
        return "IN_PROGRESS"
    if state == "done" and node is not None and st.get("UUID") == node.uuid:
        new = "DOWNSAMPLED"
    elif state == "error":
        new = "FAILED"
    else:
        new = "NOT_DOWNSAMPLED"  # cancelled, or the job was lost with a restart
    p = call.params
    model(call).set_channel(p["collection"], p["experiment"], p["channel"],
                            downsample_status=new)
    return new


_DS = "/v1/downsample/{collection}/{experiment}/{channel}"


@routes.get(_DS, "Downsample status, levels, voxel sizes and extents",
            params=NAMES, query=(_ISO, VERSION), resource=on_channel)
def get_downsample(call: HttpCall) -> Any:
    vol = volume(call)
    iso = bool(call.params["iso"])
    levels = range(vol.levels)
    return {"status": downsample_status(call, vol), "num_hierarchy_levels": vol.levels,
            "voxel_size": {str(k): vol.voxel_size(k, iso) for k in levels},
            "extent": {str(k): [hi - lo for lo, hi in vol.extent(k, iso)] for k in levels},
            "cuboid_size": {str(k): list(CUBOID_SIZE) for k in levels}}


@routes.post(_DS, "Start building the channel's resolution levels", params=NAMES,
             query=(VERSION,), resource=on_channel, returns={201: JSON})
def post_downsample(call: HttpCall) -> Response:
    from dvidpy.datatype import json_response

    vol = volume(call)
    vol.check_writable()
    p = call.params
    m = model(call)
    status = downsample_status(call, vol)
    if status in ("QUEUED", "IN_PROGRESS"):
        raise BossError("a downsample of this channel is already in progress", INVALID_STATE,
                        409)
    if vol.annotation or vol.levels == 1:  # labelmap scales follow every write
        m.set_channel(p["collection"], p["experiment"], p["channel"],
                      downsample_status="DOWNSAMPLED")
        return json_response({"status": "DOWNSAMPLED"}, 201)
    assert vol.t.node is not None
    ctx = m.mgr.context(vol.inst, vol.t.node, call.identity.user or "", "boss")
    full = vol.chan.get("downsampled_levels") != vol.levels
    vol.inst.start_downres(ctx, vol.levels - 1, full=full, anisotropic=vol.aniso)
    m.set_channel(p["collection"], p["experiment"], p["channel"],
                  downsample_status="IN_PROGRESS", downsampled_levels=vol.levels)
    return json_response({"status": "IN_PROGRESS"}, 201)


@routes.delete(_DS, "Cancel a running downsample", params=NAMES, query=(VERSION,),
               resource=on_channel, returns={204: EMPTY})
def delete_downsample(call: HttpCall) -> Response:
    vol = volume(call)
    if downsample_status(call, vol) not in ("QUEUED", "IN_PROGRESS"):
        raise BossError("You can only cancel a queued or in-progress downsample operation.",
                        INVALID_STATE, 409)
    vol.inst.cancel_downres()
    p = call.params
    model(call).set_channel(p["collection"], p["experiment"], p["channel"],
                            downsample_status="NOT_DOWNSAMPLED", downsampled_levels=None)
    return Response(b"", status_code=204)
