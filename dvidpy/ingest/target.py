"""The target of an ingest: an instance on a server, written with its own ``POST raw``.

Generic over voxel types: the instance's ``info`` says its voxel type
(``Extended.Values[0].DataType``) and block size, and a chunk is sent as ``POST
raw/0_1_2/{size}/{offset}`` of that dtype (little-endian, z, y, x). ``labelmap`` bodies go
LZ4-compressed (``compression=lz4``) and, since labelmap writes only block-aligned boxes, a
chunk that does not fill its edge blocks is completed with the labels already stored there
(``GET raw ...?supervoxels=true``) before it is sent. Other types take any box.

Standard-library HTTP only (:class:`~dvidpy.transfer.client.Http`): one keep-alive
connection per thread, ``Authorization: Bearer`` from the token. Connection failures and
5xx answers are retried with backoff; 4xx answers are errors at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from dvidpy import jsonio
from dvidpy.errors import DvidError
from dvidpy.transfer.client import Http, TransferError

#: datatypes whose POST raw needs block-aligned boxes
ALIGNED_TYPES = frozenset({"labelmap", "labelarray"})
#: the datatype ``--create`` makes for a source dtype (when no type is named)
CREATE_TYPES = {"uint8": "uint8blk", "bool": "uint8blk", "uint16": "uint16blk",
                "uint32": "uint32blk", "uint64": "uint64blk", "float32": "float32blk"}


class IngestError(Exception):
    """An ingest that cannot go on; the message says why (and what to do)."""


class ServerRefused(IngestError):
    """The server answered a 4xx; ``status`` is its code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TargetInfo:
    """What the ingest needs to know about the target instance."""

    typename: str
    dtype: str
    block_size: tuple[int, int, int]
    voxel_size: tuple[float, float, float] | None
    max_scale: int | None  # labelmap's MaxDownresLevel

    @property
    def aligned(self) -> bool:
        return self.typename in ALIGNED_TYPES


def node_path(uuid: str, name: str) -> str:
    return f"/api/node/{quote(uuid, safe=':~')}/{quote(name, safe='')}"


_LOCAL = threading.local()


def connection(server: str, token: str, timeout: float = 600) -> Http:
    """This thread's keep-alive client of ``server``."""
    conns = getattr(_LOCAL, "conns", None)
    if conns is None:
        conns = _LOCAL.conns = {}
    key = (server, token)
    h = conns.get(key)
    if h is None:
        try:
            h = conns[key] = Http(server.rstrip("/"), timeout=timeout, token=token)
        except TransferError as e:
            raise IngestError(e.message) from None
    return h


def call(h: Http, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, retries: int = 6) -> bytes:
    """``(method, path)`` with retries of transient failures; the answer's body.
    :class:`ServerRefused` for a 4xx, :class:`IngestError` when retries run out."""
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            status, data = h.request(method, path, body, headers)
        except TransferError as e:
            err = e.message
            status, data = 0, b""
        else:
            if status < 400:
                return data
            err = f"{status} {data.decode(errors='replace').strip()}"
            if status < 500 and status not in (408, 429):
                raise ServerRefused(f"{method} {path}: {err}", status)
        if attempt == retries:
            raise IngestError(f"{h.base}: {method} {path} failed {retries + 1} times; last: "
                              f"{err}")
        time.sleep(delay)
        delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


def call_json(h: Http, method: str, path: str, obj: Any = None, retries: int = 6) -> Any:
    """JSON request and answer (see :func:`call`)."""
    import json

    body = None if obj is None else json.dumps(obj).encode()
    hdr = {"Content-Type": "application/json"} if body is not None else None
    data = call(h, method, path, body, hdr, retries)
    if not data.strip():
        return None
    try:
        return jsonio.loads(data, f"answer of {h.base}{path}")
    except DvidError as e:
        raise IngestError(e.message) from None


def instance_info(h: Http, uuid: str, name: str) -> TargetInfo | None:
    """The target's description; None when the repo has no instance ``name``."""
    repo = call_json(h, "GET", f"/api/repo/{quote(uuid, safe=':~')}/info")
    if name not in (repo.get("DataInstances") or {}):
        return None
    info = call_json(h, "GET", f"{node_path(uuid, name)}/info")
    base, ext = info.get("Base", {}), info.get("Extended", {})
    values = ext.get("Values") or []
    if len(values) != 1:
        kinds = ", ".join(str(v.get("DataType")) for v in values) or "none"
        raise IngestError(f"instance {name!r} ({base.get('TypeName')}) holds {len(values)} "
                          f"values per voxel ({kinds}); ingest writes single-channel volumes")
    bs = ext.get("BlockSize") or [1, 1, 1]
    vs = ext.get("VoxelSize")
    return TargetInfo(str(base.get("TypeName")), str(values[0].get("DataType")),
                      (int(bs[0]), int(bs[1]), int(bs[2])),
                      tuple(float(v) for v in vs) if vs else None,  # type: ignore[arg-type]
                      ext.get("MaxDownresLevel"))


def create_instance(h: Http, uuid: str, name: str, typename: str,
                    block_size: tuple[int, int, int] | None,
                    voxel_size: tuple[float, float, float] | None,
                    levels: int | None) -> None:
    """``POST /api/repo/{uuid}/instance`` for the target."""
    body: dict[str, str] = {"typename": typename, "dataname": name}
    if block_size:
        body["BlockSize"] = ",".join(map(str, block_size))
    if voxel_size:
        body["VoxelSize"] = ",".join(repr(float(v)) for v in voxel_size)
        body["VoxelUnits"] = "nanometers"
    if levels is not None and typename in ALIGNED_TYPES:
        body["MaxDownresLevel"] = str(levels)
    call_json(h, "POST", f"/api/repo/{quote(uuid, safe=':~')}/instance", body, retries=2)


def upload(h: Http, uuid: str, name: str, info: TargetInfo, box: list[int],
           arr: np.ndarray, retries: int = 6) -> None:
    """Write ``arr`` (``(z, y, x)`` of the target dtype) at ``box`` with ``POST raw``."""
    lo, hi = list(box[:3]), list(box[3:])
    if info.aligned:
        bs = info.block_size
        alo = [(lo[i] // bs[i]) * bs[i] for i in range(3)]
        ahi = [-(-hi[i] // bs[i]) * bs[i] for i in range(3)]
        if alo != lo or ahi != hi:  # complete the edge blocks with what is stored
            size = [ahi[i] - alo[i] for i in range(3)]
            data = call(h, "GET", f"{node_path(uuid, name)}/raw/0_1_2/"
                        f"{size[0]}_{size[1]}_{size[2]}/{alo[0]}_{alo[1]}_{alo[2]}"
                        "?supervoxels=true", retries=retries)
            full = np.frombuffer(data, dtype="<" + arr.dtype.str[1:]).reshape(
                size[2], size[1], size[0]).copy()
            full[lo[2] - alo[2]:hi[2] - alo[2], lo[1] - alo[1]:hi[1] - alo[1],
                 lo[0] - alo[0]:hi[0] - alo[0]] = arr
            arr, lo, hi = full, alo, ahi
    size = [hi[i] - lo[i] for i in range(3)]
    path = (f"{node_path(uuid, name)}/raw/0_1_2/{size[0]}_{size[1]}_{size[2]}/"
            f"{lo[0]}_{lo[1]}_{lo[2]}")
    le = arr if arr.dtype.byteorder in ("<", "|") or (
        arr.dtype.byteorder == "=" and np.little_endian) else arr.astype(
        arr.dtype.newbyteorder("<"))
    body: Any = memoryview(np.ascontiguousarray(le)).cast("B")
    if info.typename in ALIGNED_TYPES:
        import lz4.block

        body = lz4.block.compress(body, store_size=False)
        path += "?compression=lz4"
    call(h, "POST", path, body, {"Content-Type": "application/octet-stream"}, retries)
