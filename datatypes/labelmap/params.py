"""Parameter and body declarations shared by the labelmap endpoints (see
:mod:`dvidpy.http.spec`), and the small helpers that read their parsed values from
``call.params``.
"""

from __future__ import annotations

from typing import Any

from dvidpy.datatype import Call
from dvidpy.errors import BadRequest
from dvidpy.http.spec import JSON, OCTET, Body, Param, Q

PNG = "image/png"

# ----- path parameters -----------------------------------------------------------------

LABEL = Param("label", "label", "a body id (or with supervoxels=true a supervoxel id); 0 is "
                                "background and refused")
SUPERVOXEL = Param("supervoxel", "label", "a supervoxel id (not 0)")
POINT = Param("point", "coord", "x_y_z voxel coordinate (scale 0 unless scale= says)")
DIMS = Param("dims", "dims", "0_1_2 for a 3-D volume; 0_1, 0_2, 1_2 (xy, xz, yz) for a plane")
SIZE = Param("size", "size", "nx_ny_nz voxels (nx_ny for a plane)")
OFFSET = Param("offset", "coord", "x_y_z of the first voxel")
FORMAT = Param("format", "str", "octet-stream (3-D, the default) or png (2-D, the default)",
               enum=("octet-stream", "png"))

# ----- query parameters ----------------------------------------------------------------

SCALE = Q("scale", "count", "pyramid level 0..MaxDownresLevel (coordinates are that "
                            "level's voxels)")
SUPERVOXELS = Q("supervoxels", "bool", "ids are raw supervoxels instead of mapped bodies")
ROI = Q("roi", "str", "name of an roi instance of the repo: voxels outside it are 0 (400 "
                      "when it does not exist)")
HASH = Q("hash", "str", "hex MD5 of the request body; 400 when it differs (a proxy dropped "
                        "the GET body)")
BOUNDS = tuple(Q(n, "int32", f"inclusive voxel bound ({n[3]} {n[:3]})")
               for n in ("minx", "miny", "minz", "maxx", "maxy", "maxz"))
VOXEL_QUERY = (SCALE, SUPERVOXELS, ROI)

# ----- bodies --------------------------------------------------------------------------

_U64 = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}


def labels_schema(example: list[int], min_items: int = 0) -> dict[str, Any]:
    """JSON schema of an array of uint64 labels, with an example (small ids, which the
    fuzz tests' instances hold)."""
    return {"type": "array", "items": _U64, "minItems": min_items, "examples": [example]}


LABELS_BODY = Body(JSON, "JSON array of uint64 labels", schema=labels_schema([1, 2, 3]))
POINTS_BODY = Body(JSON, "JSON array of [x, y, z] int32 voxel points", schema={
    "type": "array", "items": {"type": "array", "minItems": 3, "maxItems": 3,
                               "items": {"type": "integer", "minimum": -(2**31),
                                         "maximum": 2**31 - 1}},
    "examples": [[[0, 0, 0], [5, 6, 20]]]})
RLE_BODY = Body(OCTET, "legacy RLE sparse volume (§9.16.3): 12-byte header and int32 "
                       "(x, y, z, length) spans, scale-0 voxels")
BLOCKS_BODY = Body(OCTET, "block stream (§8.5) of gzip'd DVID label blocks (supervoxel ids)")


def flag(call: Call, name: str) -> bool:
    """A declared ``bool`` query parameter (False when absent)."""
    return bool(call.params.get(name))


def opt(call: Call, name: str, default: Any) -> Any:
    """A declared parameter, ``default`` when absent."""
    v = call.params.get(name)
    return default if v is None else v


def nonzero(v: int, what: str = "label") -> int:
    """``v`` unless it is 0 (background): then 400 naming ``what``."""
    if v == 0:
        raise BadRequest(f"{what} 0 is background and not allowed here")
    return v


def bounds(call: Call) -> tuple[list[int], list[int]] | None:
    """Inclusive voxel bounds from ``minx..maxz`` (missing sides unbounded), or None when
    none is given."""
    vals = [call.params.get(p.name) for p in BOUNDS]
    if all(v is None for v in vals):
        return None
    lo = [-(2**31) if v is None else v for v in vals[:3]]
    hi = [2**31 - 1 if v is None else v for v in vals[3:]]
    return lo, hi
