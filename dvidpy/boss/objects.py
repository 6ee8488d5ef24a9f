"""Boss object routes on annotation channels (the Boss's ``bossobject`` views), answered
from the channel's labelmap; and metadata (``bossmeta``).

``GET /v1/ids/{c}/{e}/{ch}/{res}/{x0:x1}/{y0:y1}/{z0:z1}[/{t0:t1}]/``
    ``{"ids": ["1", "4", ...]}``: the non-zero ids in the box (strings, ascending).
``GET /v1/boundingbox/{c}/{e}/{ch}/{res}/{id}/?type=loose|tight``
    ``{"x_range": [x0, x1], "y_range", "z_range", "t_range": [0, 1]}`` of an id, from its
    label index (scale-0 blocks holding it). ``loose`` (default): the union of those
    blocks, block-aligned (64³ blocks here; the Boss aligns to its 512x512x16 cuboids);
    ``tight``: the exact extent of the id's voxels, found by reading only those blocks.
    At resolution ``k`` both are the scale-0 box divided by the level's factors
    (outward). 404 (OBJECT_NOT_FOUND) for an id with no voxels.
``GET /v1/reserve/{c}/{e}/{ch}/{num_ids}``
    ``{"start_id": first, "count": num_ids}``: ids reserved by the labelmap's allocator
    (repo-wide, never handed out twice); needs write access.
``GET|POST|PUT|DELETE /v1/meta/{c}[/{e}[/{ch}]]/?key=&value=``
    Metadata of a collection, experiment or channel: GET lists ``{"keys": [...]}`` or with
    ``key`` answers ``{"key", "value"}``; POST creates (201; 400 when it exists), PUT
    updates (200; 400 when it does not), DELETE removes (204).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.responses import Response

from dvidpy.boss.access import VERSION, model, on_channel, on_collection, on_experiment, target
from dvidpy.boss.cutout import CUTOUT_PATH, NAMES, RANGES, RES, volume
from dvidpy.boss.errors import INVALID_ARGUMENT, INVALID_POST_ARGUMENT, OBJECT_NOT_FOUND, BossError
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import EMPTY, Param, Q
from dvidpy.http.table import RouteTable

routes = RouteTable("boss")
_BLOCKS_PER_READ = 64


@routes.get("/v1/ids/" + CUTOUT_PATH, "The ids in a box of an annotation channel",
            params=(*NAMES, RES, *RANGES), query=(VERSION,), resource=on_channel)
def get_ids(call: HttpCall) -> Any:
    vol = volume(call)
    vol.require_annotation("get ids of")
    p = call.params
    b = vol.box(p["resolution"], p["x"], p["y"], p["z"], p["t"])
    ids = np.unique(vol.read(p["resolution"], b))
    return {"ids": [str(i) for i in ids.tolist() if i != 0]}


@routes.get("/v1/boundingbox/{collection}/{experiment}/{channel}/{resolution}/{id}",
            "The bounding box of an id of an annotation channel",
            params=(*NAMES, RES, Param("id", "uint64", "the object's id")),
            query=(Q("type", "str", "loose (block-aligned, default) or tight",
                     enum=("loose", "tight")), VERSION), resource=on_channel)
def get_bounding_box(call: HttpCall) -> Any:
    vol = volume(call)
    vol.require_annotation("perform bounding box operations on")
    p = call.params
    res = p["resolution"]
    vol.check_res(res)
    label = p["id"]
    inst, ctx = vol.labelmap_ctx()
    coords = inst.label_blocks(ctx, label)
    if not len(coords):
        raise BossError(f"The id does not exist. {label}", OBJECT_NOT_FOUND, 404)
    bs = np.asarray(inst.block_size, dtype=np.int64)
    if (p["type"] or "loose") == "loose":
        lo = coords.min(axis=0) * bs
        hi = (coords.max(axis=0) + 1) * bs
    else:
        lo, hi = _tight(inst, ctx, coords, label)
    f = np.asarray(vol.factors(res), dtype=np.int64)
    lo, hi = lo // f, -(-hi // f)
    return {"x_range": [int(lo[0]), int(hi[0])], "y_range": [int(lo[1]), int(hi[1])],
            "z_range": [int(lo[2]), int(hi[2])], "t_range": [0, 1]}


def _tight(inst: Any, ctx: Any, coords: np.ndarray, label: int) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Exact voxel extent ``(lo, hi exclusive)`` (x, y, z) of ``label`` in its blocks."""
    bs = np.asarray(inst.block_size, dtype=np.int64)
    lo = np.full(3, np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(3, np.iinfo(np.int64).min, dtype=np.int64)
    want = np.uint64(label)
    for i in range(0, len(coords), _BLOCKS_PER_READ):
        blocks = inst.read_blocks(ctx, 0, coords[i:i + _BLOCKS_PER_READ], True)
        for c, arr in blocks.items():
            m = arr == want
            if not m.any():
                continue
            zyx = [np.flatnonzero(m.any(axis=ax)) for ax in ((1, 2), (0, 2), (0, 1))]
            origin = np.asarray(c, dtype=np.int64) * bs
            first = np.array([zyx[2][0], zyx[1][0], zyx[0][0]])
            last = np.array([zyx[2][-1], zyx[1][-1], zyx[0][-1]])
            lo = np.minimum(lo, origin + first)
            hi = np.maximum(hi, origin + last + 1)
    if lo[0] > hi[0]:
        raise BossError(f"The id does not exist. {label}", OBJECT_NOT_FOUND, 404)
    return lo, hi


@routes.get("/v1/reserve/{collection}/{experiment}/{channel}/{num_ids}",
            "Reserve ids in an annotation channel: {start_id, count}",
            params=(*NAMES, Param("num_ids", "uint64", "how many ids (1..2^32)")),
            query=(VERSION,), resource=on_channel, access="write", mutates=True)
def get_reserve(call: HttpCall) -> Any:
    vol = volume(call)
    vol.require_annotation("reserve IDs for")
    n = call.params["num_ids"]
    if not 1 <= n <= 2**32:
        raise BossError(f"num_ids must be 1..2^32, not {n}", INVALID_ARGUMENT)
    vol.check_writable()
    inst, ctx = vol.labelmap_ctx()
    return {"start_id": inst.reserve_labels(ctx, n), "count": n}


# ----- metadata -------------------------------------------------------------------------

_META = "/v1/meta/{collection}/{experiment?}/{channel?}"
_META_NAMES = (Param("collection", "str", "collection name"),
               Param("experiment", "str", "experiment name (optional)"),
               Param("channel", "str", "channel name (optional)"))
_KEY = Q("key", "str", "metadata key")
_VALUE = Q("value", "str", "metadata value")


def on_meta(call: HttpCall) -> tuple[str | None, str | None, str | None]:
    """Access resolver of a metadata route: its deepest named resource."""
    p = call.params
    if p.get("channel"):
        return on_channel(call)
    if p.get("experiment"):
        return on_experiment(call)
    return on_collection(call)


def _lookup(call: HttpCall) -> str:
    p = call.params
    if p.get("channel") and not p.get("experiment"):
        raise BossError("a channel needs its experiment", INVALID_POST_ARGUMENT)
    target(call, "channel" if p.get("channel") else
           ("experiment" if p.get("experiment") else "collection"))
    return "/".join(p[k] for k in ("collection", "experiment", "channel") if p.get(k))


def _need(call: HttpCall, *names: str) -> list[str]:
    out = []
    for n in names:
        v = call.params.get(n)
        if v is None:
            raise BossError("Missing optional argument key/value in the request"
                            if len(names) > 1 else "Missing optional argument key in the "
                            "request", INVALID_POST_ARGUMENT)
        out.append(v)
    return out


@routes.get(_META, "Metadata keys, or one key's value", params=_META_NAMES,
            query=(_KEY,), resource=on_meta)
def get_meta(call: HttpCall) -> Any:
    lookup = _lookup(call)
    m = model(call)
    key = call.params["key"]
    if key is None:
        return {"keys": m.meta_keys(lookup)}
    value = m.meta_get(lookup, key)
    if value is None:
        raise BossError(f"Invalid request. Key {key} Not found in the database",
                        INVALID_POST_ARGUMENT)
    return {"key": key, "value": value}


@routes.post(_META, "Create a metadata key", params=_META_NAMES, query=(_KEY, _VALUE),
             resource=on_meta, returns={201: EMPTY})
def post_meta(call: HttpCall) -> Response:
    key, value = _need(call, "key", "value")
    model(call).meta_put(_lookup(call), key, value, create=True)
    return Response(b"", status_code=201)


@routes.put(_META, "Change a metadata key's value", params=_META_NAMES,
            query=(_KEY, _VALUE), resource=on_meta, returns=EMPTY)
def put_meta(call: HttpCall) -> Response:
    key, value = _need(call, "key", "value")
    model(call).meta_put(_lookup(call), key, value, create=False)
    return Response(b"", status_code=200)


@routes.delete(_META, "Delete a metadata key", params=_META_NAMES, query=(_KEY,),
               resource=on_meta, returns={204: EMPTY})
def delete_meta(call: HttpCall) -> Response:
    (key,) = _need(call, "key")
    model(call).meta_delete(_lookup(call), key)
    return Response(b"", status_code=204)
