"""imageblk: DVID's block image types ``uint8blk``, ``uint16blk``, ``uint32blk``,
``uint64blk``, ``float32blk`` and ``rgba8blk`` (dvid-api.md §8), one implementation
parameterized by the voxel type (:class:`VoxelType`).

Voxels are little-endian, C-order ZYX, as DVID stores and sends them: ``uint8blk`` 1 byte,
``uint16blk`` 2, ``uint32blk`` 4, ``uint64blk`` 8, ``float32blk`` 4 (IEEE), ``rgba8blk``
4 (red, green, blue, alpha bytes). Every size, body and block below is in these voxels.

Creation settings (strings): ``BlockSize`` ``"x,y,z"`` (default ``32,32,32``; each 1..1024
and at most 2**24 voxels per block), ``VoxelSize`` (``"8,8,8"``), ``VoxelUnits``
(``"nanometers"`` or three names), ``Compression`` (``lz4`` (default), ``gzip``,
``gzip:N``, ``none``; ``jpeg`` for uint8blk only), ``Background`` (0..255, the value of
unwritten voxels; every channel of an rgba8 voxel), ``MinPoint`` / ``MaxPoint`` (initial
extents), ``TimeSamples`` (dvidpy extension, default 1: the Boss's time axis, see below).
JPEG blocks are stored as one grayscale JPEG of width ``bx`` and height ``by*bz``
(neuroglancer's layout), quality ``JpegQuality`` (default 85).

Endpoints, under ``/api/node/{uuid}/{data}/``:

``GET info`` / ``POST info``
    §8.1 JSON (``Values`` names the voxel type: one ``uint16`` value, or ``red``, ``green``,
    ``blue``, ``alpha`` bytes); extents (``MinPoint``/``MaxPoint``/``MinIndex``/
    ``MaxIndex``) are kept per version and grow on writes (``null`` until something is
    written). ``POST info`` accepts ``VoxelSize``, ``VoxelUnits``, ``Background``.
``POST extents``
    ``{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}`` replaces the extents at this version.
``POST resolution`` / ``GET metadata`` / ``GET rawkey?x=&y=&z=``
    Voxel size ``[rx,ry,rz]``; §8.2 metadata JSON; hex TKey of a block.
``GET raw|isotropic/{dims}/{size}/{offset}[/{format}][?roi=NAME&attenuation=N]``
    ``dims`` ``0_1_2`` -> raw ZYX voxel bytes (over 64 MiB streamed one block-layer at a time), or
    for uint8 with format ``jpg``/``jpeg[:Q]`` one JPEG ``nx`` wide and ``ny*nz`` high.
    ``0_1``/``xy``, ``0_2``/``xz``, ``1_2``/``yz`` -> a 2-D image (XZ/YZ images have Z as
    rows): uint8 ``png`` (default), ``jpg[:Q]`` (default quality 80), ``tif`` or ``bmp``;
    rgba8 ``png``, ``tif`` or ``bmp`` in RGBA; the others ``png`` only, carrying the voxel
    bytes as DVID does (uint16: 16-bit grayscale; uint32, float32: 8-bit RGBA of the 4
    bytes; uint64: 16-bit RGBA of the 8 bytes; a decoder reads 16-bit samples big-endian,
    so their values appear byte-swapped, as from DVID). Any box: unaligned, negative.
    Unwritten voxels read as ``Background``. ``roi=NAME`` masks with an roi instance of
    the repo: outside voxels become 0, or with ``attenuation=N`` (1..7) are shifted right
    by N bits (DVID: ``v >> N``; each byte of rgba8, ``v / 2**N`` for float32).
    ``isotropic`` 2-D slices stretch the second image axis by the ratio of voxel sizes
    (nearest neighbour) so pixels are square; ``isotropic`` 3-D equals ``raw``.
``GET arb/{topleft}/{topright}/{bottomleft}/{res}[/{format}]``
    Arbitrary plane (DVID ``imageblk/arb_image.go``; uint8blk and rgba8blk only, as in
    DVID: 400 for the others). Corners are *physical* ``x_y_z`` floats (voxel ``i`` is at
    ``i * VoxelSize``); the image is ``floor(|TR-TL|/res)+1`` x ``floor(|BL-TL|/res)+1``
    pixels whose first/last columns and rows sit exactly on the corners; each pixel is
    DVID's trilinear interpolation of the 8 surrounding voxels (``floor(v+0.5)``, per
    channel for rgba8), Background where unwritten. Formats as for 2-D ``raw`` (``png``
    default). Non-rectangular corners sample the parallelogram (DVID does not check).
    Over ``2**26`` pixels -> 413.
``POST raw/0_1_2/{size}/{offset}[?roi=NAME]``
    Body exactly ``nx*ny*nz`` voxels. Block-aligned boxes are written whole; unaligned
    ones read-modify-write their edge blocks (per-block striped locks make concurrent
    writers safe). With ``roi=`` only voxels inside the ROI change (400 for an unknown
    roi). Blocks are encoded straight from the body and committed in batches of about
    ``writeBatchBytes`` (one atomic batch when the write fits one), after every check.
``GET subvolblocks/{size}/{offset}[?compression=jpeg|uncompressed]``
    Block-aligned box (else 400); §8.5 records in ZYX order, missing blocks omitted.
    Default payload is the stored payload (JPEG file / ``u32 len`` + LZ4 block / gzip
    stream / raw); ``jpeg`` requires JPEG storage; ``uncompressed`` is raw ZYX voxels.
``GET specificblocks?blocks=x,y,z,...[&compression=...&prefetch=true]``
    Same records for listed blocks in request order; ``prefetch=true`` returns nothing.
``GET blocks/{x_y_z}/{spanX}`` / ``POST blocks/{x_y_z}/{spanX}``
    ``spanX`` whole blocks along X, uncompressed and concatenated (Background for missing).
``POST downres[?levels=N&bbox=x0,y0,z0,x1,y1,z1&full=true&wait=true&anisotropic=true]``
    Our extension: build the pyramid into instances ``NAME_1``, ``NAME_2``... (created when
    missing with the same type, block size and compression). Each level halves x, y and z
    (or, ``anisotropic=true``, x and y only: the Boss's default hierarchy). Intensity types
    average: each level voxel is the mean of its 8 (or 4) source voxels rounded half up
    (``(sum+4)//8`` for uint8), float32 in float64, rgba8 per channel; ``uint64blk``
    holds labels and takes their mode (the most frequent non-zero value; ties to the
    smaller; DVID labelmap's rule). Missing source blocks count as Background; a parent
    block with no source block at all is not written. Default: only blocks written since
    the last downres at this version (dirty blocks), of every time sample;
    ``full=true``: every stored block; ``bbox=x0,y0,z0,x1,y1,z1`` (voxels, exclusive end):
    every stored block in the box (dirty markers untouched). ``levels`` defaults to the
    count that shrinks the extents to one block. Runs in a background thread and answers
    the job status at once; ``wait=true`` answers when done.
``GET downres-status``
    ``{"State": "idle|running|done|error|cancelled", "Level", "Levels", "BlocksDone",
    "BlocksTotal", "Error", "DirtyBlocks"}`` (``DirtyBlocks`` at the requested version).

Time samples (``TimeSamples`` > 1, made by the Boss API for experiments with
``num_time_samples`` > 1): DVID's API reads and writes time sample 0, whose blocks keep
DVID's keys; sample ``t`` > 0 is stored under its own TKey class with ``t`` before the
block coordinate (:func:`block_tkey`), read and written through the Boss's ``t0:t1``
ranges (``/v1/cutout``), and built into the pyramid with sample 0.

Size limits: any request whose voxel bytes (or stretched ``isotropic`` image) are over the
server's ``max_request_bytes`` is refused with 413 before any work; 3-D JPEG answers are
limited to 256 MiB. A box or block span whose voxels leave the int32 range is a 400.
``subvolblocks`` reads only the blocks stored in its box (a seek past each gap), so a huge,
mostly empty box costs what it holds.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import starlette.responses
from PIL import Image
from starlette.responses import Response

from datatypes.common import arbslice, blockencode, blockread, blockscan, imagecodec
from datatypes.common.blockscan import BoxRegion, scan_region
from datatypes.common.blockstream import encode_header
from datatypes.common.downsample import downsample_mean, downsample_mode
from datatypes.common.geometry import (
    INT32_MAX,
    INT32_MIN,
    BlockPiece,
    Box,
    Point3,
    block_range,
    blocks_between,
    blocks_in_box,
    check_block_coords,
    check_int32_box,
    int32_block_limits,
    iter_block_pieces,
    parse_block_list,
    parse_dims,
    plane_size_to_3d,
)
from datatypes.common.imagecodec import PNG_GRAY, PNG_RGBA
from datatypes.roi import find_roi
from dvidpy.codec import COMP_JPEG, CodecError, deserialize, serialize, split_frame
from dvidpy.datatype import Call, Datatype, PyramidPlan, endpoint, register_datatype
from dvidpy.errors import BadRequest, DvidError, TooLarge
from dvidpy.http.body import BufferPool
from dvidpy.http.spec import EMPTY, JSON, OCTET, TEXT, Body, Param, Q
from dvidpy.http.streams import Deferred, StreamingResponse
from dvidpy.jobrecords import JobBoard, JobRunning, LiveJob
from dvidpy.keys import prefix_successor, tkey
from dvidpy.versioned import VersionedBatch, VersionedCtx

BLOCK_CLASS = 23
DIRTY_CLASS = 24
#: blocks and dirty markers of time samples t > 0: class, 0x01, t (u32 BE), ZYX
TIME_BLOCK_CLASS = 25
TIME_DIRTY_CLASS = 26
MAX_TIME_SAMPLES = 2**31 - 1
DEFAULT_BLOCK_SIZE = (32, 32, 32)
DEFAULT_JPEG_QUALITY = 85
MAX_JPEG_VOLUME = 256 << 20
N_STRIPES = 256
_EXTENTS = "extents"
_STREAM_PIECE = 4 << 20
_SMALL_SUBVOL = 64  # block count below which subvolblocks answers without streaming
_ARB_BAND = 1 << 18  # samples resampled at once by arb
_ARB_BLOCK_BUDGET = 128 << 20  # decoded block bytes an arb band may hold
_BlockCache = dict[tuple[int, int, int], np.ndarray | None]  # arb: decoded or not stored
_WRITE_RUN = 8 << 20  # bytes of voxels write_box encodes at once (a run along X)
#: decoded child blocks per batch of a pyramid step (see ImageBlk._parent_batch)
_PYRAMID_BATCH = 4 << 20
#: writes of at least this many voxel bytes, and each batch of a pyramid step, take
#: :data:`_BIG_WRITES` (one at a time per process): the store commits one batch at a time
#: anyway and each write's encoding already runs on every core (the encode pool), but
#: parallel writes each held a batch of encoded blocks (up to ``writeBatchBytes``) waiting
#: for the store. In process, 32 writes of 16 MiB on LMDB: 4 at a time 157 MiB/s with 64
#: MiB of private memory above the start, one at a time 144 MiB/s with 37 MiB (load 6).
_BIG_WRITE = 1 << 20
_BIG_WRITES = threading.Semaphore(1)
_INLINE_VOXELS = 1 << 20  # GET raw 3-D boxes up to this size are read on the event loop
_GATHER = threading.local()  # each thread's reused buffer of gather_block
#: bigger 3-D boxes up to this many bytes are read whole in a thread and sent in one write
#: (above it, streamed slab by slab); their buffers come from :data:`_ANSWER_BUFFERS`
_WHOLE_BOX = 64 << 20
_ANSWER_BUFFERS = BufferPool(keep=2, max_bytes=2 * _WHOLE_BOX, idle_seconds=30.0)
_EXPIRY: list[threading.Timer] = []
_EXPIRY_LOCK = threading.Lock()


def _aligned(buf: np.ndarray, n: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of ``shape`` over the first cache-line aligned ``n`` bytes of ``buf`` (which
    has 64 bytes to spare): whole rows of 64 voxels then fill whole cache lines, which the
    block reader writes without reading them first (in process, 64 LZ4 blocks of 64³ uint8
    into a 256³ answer: 2.1-2.2 ms, against 5.5-5.6 ms 16 bytes off a cache line)."""
    at = -buf.ctypes.data % 64
    return buf[at:at + n].view(dtype).reshape(shape)


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A new uninitialized array of ``shape`` whose data starts on a cache line."""
    n = math.prod(shape) * dtype.itemsize
    return _aligned(np.empty(n + 64, dtype=np.uint8), n, shape, dtype)


def _answer_buffer(n: int) -> bytearray:
    """A buffer of ``n`` bytes from :data:`_ANSWER_BUFFERS`; a timer drops the ones unused
    for its ``idle_seconds`` (re-armed while the pool holds any)."""
    buf = _ANSWER_BUFFERS.get(n, time.monotonic())
    _arm_expiry()
    return buf


def _arm_expiry(again: bool = False) -> None:
    with _EXPIRY_LOCK:
        if again:
            _EXPIRY.clear()
            _ANSWER_BUFFERS.expire(time.monotonic())
            if not _ANSWER_BUFFERS.nbytes():
                return
        if not _EXPIRY:
            t = threading.Timer(_ANSWER_BUFFERS.idle_seconds + 1, _arm_expiry, (True,))
            t.daemon = True
            _EXPIRY.append(t)
            t.start()

# ----- declarations shared by several endpoints ---------------------------------------
ND_JSON = "application/vnd.dvid-nd-data+json"
_IMAGES = ("image/png", "image/jpeg", "image/tiff", "image/bmp")
_GEOMETRY = (
    Param("dims", "dims", "0_1_2 for a 3-D box; 0_1 (xy), 0_2 (xz) or 1_2 (yz) for an image"),
    Param("size", "size", "nx_ny_nz for 3-D, width_height for 2-D (voxels)"),
    Param("offset", "coord", "x_y_z of the box's first voxel"),
    Param("format", "str", "2-D: png (default), jpg[:quality], tif, bmp; 3-D: jpg[:quality] "
                           "for one JPEG nx wide and ny*nz high, else raw bytes"),
)
_MASK_QUERY = (
    Q("roi", "str", "name of an roi instance of the repo: voxels outside it read as 0 "
                    "(400 when there is no such roi)"),
    Q("attenuation", "count", "with roi: outside voxels are shifted right by this many "
                              "bits (1..7) instead of zeroed"),
)
_COMPRESSION = Q("compression", "str", "block payload: the stored one (default), jpeg "
                                       "(JPEG-stored instances only) or uncompressed",
                 enum=("jpeg", "uncompressed"))
_BLOCK_SPAN = (Param("block", "coord", "block coordinate x_y_z of the first block"),
               Param("span", "count", "number of blocks along X (>= 1)"))
_POINT3 = {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3}


_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _pool(name: str) -> ThreadPoolExecutor:
    """The process-wide thread pool ``imageblk-NAME`` (one thread per CPU)."""
    with _POOL_LOCK:
        pool = _POOLS.get(name)
        if pool is None:
            pool = _POOLS[name] = ThreadPoolExecutor(max_workers=os.cpu_count() or 2,
                                                     thread_name_prefix=f"imageblk-{name}")
        return pool


def _encode_pool() -> ThreadPoolExecutor:
    """Threads encoding blocks."""
    return _pool("encode")


def _commit_pool() -> ThreadPoolExecutor:
    """Threads committing write batches (see :class:`_BlockBatches`: each write keeps at
    most one batch in flight)."""
    return _pool("commit")


# ----- voxel types --------------------------------------------------------------------


@dataclass(frozen=True)
class VoxelType:
    """What distinguishes the imageblk types: the stored voxel, how it is drawn as a 2-D
    image and how the pyramid reduces it.

    ``dtype`` is the little-endian numpy type of one voxel (rgba8: ``<u4``, whose four
    bytes are red, green, blue, alpha); ``values`` are DVID's ``Extended.Values``
    ``(DataType, Label)`` pairs; ``png`` the PNG depth and colour type of 2-D images of
    the raw bytes; ``pyramid`` ``"mean"`` or ``"mode"``; ``channels`` 4 for rgba8 (means,
    attenuation and interpolation per byte), else 1.
    """

    name: str
    dtype: np.dtype
    values: tuple[tuple[str, str], ...]
    png: tuple[int, int]
    pyramid: str = "mean"
    channels: int = 1

    @property
    def itemsize(self) -> int:
        """Bytes per voxel."""
        return self.dtype.itemsize

    @property
    def jpeg(self) -> bool:
        """JPEG blocks and images (8-bit grayscale) are possible."""
        return self.name == "uint8"

    def fill(self, background: int) -> Any:
        """The voxel value of ``Background`` (rgba8: that byte in every channel)."""
        if self.channels == 4:
            return np.uint32(background * 0x01010101)
        return self.dtype.type(background)


UINT8 = VoxelType("uint8", np.dtype("u1"), (("uint8", "uint8"),), (8, PNG_GRAY))
UINT16 = VoxelType("uint16", np.dtype("<u2"), (("uint16", "uint16"),), (16, PNG_GRAY))
UINT32 = VoxelType("uint32", np.dtype("<u4"), (("uint32", "uint32"),), (8, PNG_RGBA))
UINT64 = VoxelType("uint64", np.dtype("<u8"), (("uint64", "uint64"),), (16, PNG_RGBA),
                   pyramid="mode")
FLOAT32 = VoxelType("float32", np.dtype("<f4"), (("float32", "float32"),), (8, PNG_RGBA))
RGBA8 = VoxelType("rgba8", np.dtype("<u4"), tuple(("uint8", c) for c in
                                                  ("red", "green", "blue", "alpha")),
                  (8, PNG_RGBA), channels=4)


def gather_block(block: np.ndarray) -> np.ndarray:
    """``block`` as a C-contiguous array: itself when it already is one, else a copy in
    the calling thread's reused buffer of that shape and dtype, **valid only until the
    thread's next call** (for encoders that consume it at once: LZ4, gzip and JPEG copy
    their input out).

    A 3-D view whose rows (last axis) are contiguous, as a block of a ``POST raw`` body
    is, is copied row by row: seen as elements of a void dtype as wide as a row, numpy
    moves each row with one memcpy instead of looping over its voxels (a 64³ uint8 block
    of a 512² body: 68-89 µs against 155-218 µs in process). A buffer of the same size
    as the last one is reused, so a run of blocks copies into memory already in the
    cache. Empty blocks and other layouts are copied by ``np.ascontiguousarray``.
    """
    if block.flags.c_contiguous:
        return block
    if block.ndim != 3 or block.size == 0 or block.strides[-1] != block.itemsize \
            or block.dtype.hasobject or block.dtype.subdtype is not None:
        return np.ascontiguousarray(block)
    buf = getattr(_GATHER, "buf", None)
    if buf is None or buf.shape != block.shape or buf.dtype != block.dtype:
        buf = _GATHER.buf = np.empty(block.shape, block.dtype)
    row = np.dtype((np.void, block.shape[2] * block.itemsize))
    np.copyto(buf.view(row), block.view(row))
    return buf


def per_channel(vol: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to each byte channel of an rgba8 ``<u4`` volume (channels first) and
    pack the result back into ``<u4`` voxels."""
    ch = np.moveaxis(vol.view(np.uint8).reshape(*vol.shape, 4), -1, 0)
    out = np.moveaxis(fn(ch), 0, -1)
    return np.ascontiguousarray(out).view("<u4").reshape(out.shape[:-1])


# ----- keys ---------------------------------------------------------------------------


def block_head(t: int = 0, cls: int = BLOCK_CLASS) -> bytes:
    """The bytes before a block's ZYX in its TKey: ``class, 0x01`` for time sample 0
    (DVID's layout), ``class + 2, 0x01, t (u32 BE)`` for sample ``t`` > 0 (class 23 -> 25
    blocks, 24 -> 26 dirty markers)."""
    if t == 0:
        return bytes((cls, 1))
    return bytes((cls + 2, 1)) + t.to_bytes(4, "big")


def block_tkey(x: int, y: int, z: int, cls: int = BLOCK_CLASS, t: int = 0) -> bytes:
    """TKey of block ``(x, y, z)`` of time sample ``t``: :func:`block_head`, then ZYX as
    big-endian ``coord - INT32_MIN`` (the layout of :mod:`datatypes.common.blockscan`)."""
    if t == 0:
        return blockscan.block_tkey(cls, x, y, z)
    return block_head(t, cls) + blockscan.block_tkey(cls, x, y, z)[2:]


def block_tkeys(coords: np.ndarray, cls: int = BLOCK_CLASS, t: int = 0) -> list[bytes]:
    """Vectorized :func:`block_tkey` for an ``(N, 3)`` x,y,z array."""
    c = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
    raw = (c[:, ::-1] - INT32_MIN).astype(">u4").tobytes()
    head = block_head(t, cls)
    return [head + raw[i:i + 12] for i in range(0, len(raw), 12)]


def decode_block_tkey(tk: bytes) -> Point3:
    """Inverse of :func:`block_tkey` -> ``(x, y, z)`` (any time sample)."""
    return blockscan.decode_block_tkey(tk[4:] if len(tk) == 18 else tk)


# ----- settings -----------------------------------------------------------------------


def _parts(text: str, n: int = 3) -> list[str]:
    """The comma-separated parts of ``text``, stripped; one part stands for all three
    when ``n`` is 3."""
    parts = [p.strip() for p in text.split(",")]
    return parts * 3 if len(parts) == 1 and n == 3 else parts


def _ints(text: str, what: str, n: int = 3) -> list[int]:
    parts = _parts(text.replace("_", ","), n)
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise BadRequest(f"bad {what} {text!r}: expected {n} comma-separated integers") from None
    if len(vals) != n:
        raise BadRequest(f"bad {what} {text!r}: expected {n} integers")
    return vals


def _floats(text: str, what: str) -> list[float]:
    parts = _parts(text)
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise BadRequest(f"bad {what} {text!r}: expected 3 comma-separated numbers") from None
    if len(vals) != 3 or not all(v > 0 and np.isfinite(v) for v in vals):
        raise BadRequest(f"bad {what} {text!r}: expected 3 positive numbers")
    return vals


def _units(text: str) -> list[str]:
    parts = _parts(text)
    if len(parts) != 3 or not all(parts):
        raise BadRequest(f"bad VoxelUnits {text!r}: one name or three comma-separated names")
    return parts


def _int_setting(text: str, what: str, lo: int, hi: int) -> int:
    """Setting ``what`` as an integer in ``lo..hi``; 400 for anything else."""
    try:
        v = int(text)
    except ValueError:
        v = lo - 1
    if not lo <= v <= hi:
        raise BadRequest(f"bad {what} {text!r}: expected an integer {lo}..{hi}")
    return v


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


def _parse_format(fmt: str) -> tuple[str, int]:
    """``png``/``jpg:80``/... -> (kind, quality)."""
    f = fmt.lower()
    name, _, q = f.partition(":")
    if name in ("jpg", "jpeg"):
        if q:
            try:
                qual = int(q)
            except ValueError:
                raise BadRequest(f"bad JPEG quality in format {fmt!r}") from None
            if not 1 <= qual <= 100:
                raise BadRequest(f"JPEG quality must be 1..100, got {qual}")
        else:
            qual = imagecodec.DEFAULT_JPEG_QUALITY
        return "jpeg", qual
    if q:
        raise BadRequest(f"unknown image format {fmt!r}")
    if name in ("", "png"):
        return "png", 0
    if name in ("tif", "tiff"):
        return "tiff", 0
    if name == "bmp":
        return "bmp", 0
    raise BadRequest(f"unknown image format {fmt!r} (png, jpg[:quality], tif, bmp)")


def _coords_ok(*points: Sequence[int]) -> None:
    for p in points:
        for v in p:
            if not INT32_MIN <= v <= INT32_MAX:
                raise BadRequest(f"coordinate {v} is outside the int32 range")


class ImageBlk(Datatype):
    """An imageblk datatype: the subclasses set :attr:`voxel` and DVID's type name, URL
    and version (see the module docstring)."""

    voxel: ClassVar[VoxelType] = UINT8
    default_compression = "lz4"
    tkey_classes = {
        BLOCK_CLASS: "block ZYX (3 x u32be of coord - INT32_MIN) -> framed block",
        DIRTY_CLASS: "block ZYX -> b'' (written since the last downres at this version)",
        TIME_BLOCK_CLASS: "time sample t > 0 (u32be), block ZYX -> framed block",
        TIME_DIRTY_CLASS: "time sample t > 0 (u32be), block ZYX -> b'' (dirty)",
    }

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._stripes = [threading.Lock() for _ in range(N_STRIPES)]
        self._commit_lock: Any = threading.Lock()
        if self.shared_store:  # other servers read-modify-write these blocks too
            self._commit_lock = self.instance_lock()
        self._levels_lock = threading.Lock()  # one creator of the level instances
        self._job: LiveJob | None = None  # the downres this process runs, if any

    # ----- settings ---------------------------------------------------------------------

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        """Validate BlockSize, VoxelSize, VoxelUnits, Background, MinPoint/MaxPoint,
        TimeSamples (JPEG only for uint8)."""
        cfg: dict[str, Any] = {}
        if settings.get("compression", "").lower().startswith("jpeg") and not cls.voxel.jpeg:
            raise BadRequest(f"jpeg compression is only for uint8blk, not {cls.type_name}")
        bs = _ints(settings["blocksize"], "BlockSize") if settings.get("blocksize") \
            else list(DEFAULT_BLOCK_SIZE)
        if not all(1 <= b <= 1024 for b in bs) or bs[0] * bs[1] * bs[2] > (1 << 24):
            raise BadRequest(f"bad BlockSize {bs}: each 1..1024, at most 2**24 voxels")
        if settings.get("compression", "").lower().startswith("jpeg") and bs[1] * bs[2] > 65535:
            raise BadRequest(f"BlockSize {bs} too tall for a JPEG block (by*bz > 65535)")
        cfg["BlockSize"] = bs
        cfg["VoxelSize"] = _floats(settings.get("voxelsize", "8,8,8"), "VoxelSize")
        cfg["VoxelUnits"] = _units(settings.get("voxelunits", "nanometers"))
        cfg["Background"] = _int_setting(settings.get("background", "0"), "Background", 0, 255)
        q = settings.get("jpegquality", str(DEFAULT_JPEG_QUALITY))
        try:
            qv = int(q)
        except ValueError:
            qv = -1
        if not 1 <= qv <= 100:
            raise BadRequest(f"bad JpegQuality {q!r}: 1..100")
        cfg["JpegQuality"] = qv
        ts = _int_setting(settings.get("timesamples", "1"), "TimeSamples", 1,
                          MAX_TIME_SAMPLES)
        if ts > 1:
            cfg["TimeSamples"] = ts
        mn, mx = settings.get("minpoint"), settings.get("maxpoint")
        if mn or mx:
            if not (mn and mx):
                raise BadRequest("MinPoint and MaxPoint must be given together")
            lo, hi = _ints(mn, "MinPoint"), _ints(mx, "MaxPoint")
            _coords_ok(lo, hi)
            if any(a > b for a, b in zip(lo, hi, strict=True)):
                raise BadRequest(f"MinPoint {lo} is not <= MaxPoint {hi}")
            cfg["Extents"] = {"MinPoint": lo, "MaxPoint": hi}
        return cfg

    def update_settings(self, settings: Mapping[str, str]) -> None:
        """``POST info``: VoxelSize, VoxelUnits, Background."""
        cfg = dict(self.meta.config)
        if "voxelsize" in settings:
            cfg["VoxelSize"] = _floats(settings["voxelsize"], "VoxelSize")
        if "voxelunits" in settings:
            cfg["VoxelUnits"] = _units(settings["voxelunits"])
        if "background" in settings:
            cfg["Background"] = _int_setting(settings["background"], "Background", 0, 255)
        self.meta.config = cfg

    @property
    def block_size(self) -> tuple[int, int, int]:
        """(bx, by, bz)."""
        b = self.meta.config["BlockSize"]
        return (int(b[0]), int(b[1]), int(b[2]))

    @property
    def bshape(self) -> tuple[int, int, int]:
        """Block array shape (bz, by, bx)."""
        bx, by, bz = self.block_size
        return (bz, by, bx)

    @property
    def background(self) -> int:
        """``Background``: the value of unwritten voxels (each channel of rgba8)."""
        return int(self.meta.config.get("Background", 0))

    @property
    def fill(self) -> Any:
        """The voxel value unwritten voxels read as."""
        return self.voxel.fill(self.background)

    @property
    def time_samples(self) -> int:
        """Number of time samples (``TimeSamples``; 1 for DVID's instances)."""
        return int(self.meta.config.get("TimeSamples", 1))

    def check_time(self, t: int) -> None:
        """400 unless ``0 <= t < time_samples``."""
        if not 0 <= t < self.time_samples:
            raise BadRequest(f"time sample {t} is outside 0..{self.time_samples - 1} of "
                             f"{self.meta.name!r}")

    def empty(self, shape: Sequence[int]) -> np.ndarray:
        """A new array of ``shape`` filled with the Background voxel."""
        return np.full(tuple(shape), self.fill, dtype=self.voxel.dtype)

    @property
    def is_jpeg(self) -> bool:
        """Blocks stored as JPEG."""
        return self.meta.compression == "jpeg"

    def compression_string(self) -> str:
        """``jpeg compression, level {bx}`` for JPEG (DVID's quirk), else the default."""
        if self.is_jpeg:
            return f"jpeg compression, level {self.block_size[0]}"
        return super().compression_string()

    # ----- extents ----------------------------------------------------------------------

    def extents_at(self, ctx: VersionedCtx | None) -> dict[str, list[int]] | None:
        """``{"MinPoint", "MaxPoint"}`` (inclusive voxels) at ``ctx`` or None."""
        ext = self.get_property(ctx, _EXTENTS) if ctx is not None else None
        if ext is None:
            ext = self.meta.config.get("Extents")
        return ext

    @staticmethod
    def _grow(ext: dict[str, list[int]] | None, lo: Sequence[int],
              hi: Sequence[int]) -> dict[str, list[int]]:
        if ext is None:
            return {"MinPoint": [int(v) for v in lo], "MaxPoint": [int(v) for v in hi]}
        return {"MinPoint": [min(a, int(b)) for a, b in zip(ext["MinPoint"], lo, strict=True)],
                "MaxPoint": [max(a, int(b)) for a, b in zip(ext["MaxPoint"], hi, strict=True)]}

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        """§8.1 ``Extended``."""
        cfg = self.meta.config
        ext = self.extents_at(ctx)
        bs = self.block_size
        if ext is None:
            mn = mx = mni = mxi = None
        else:
            mn, mx = ext["MinPoint"], ext["MaxPoint"]
            mni = [p // b for p, b in zip(mn, bs, strict=True)]
            mxi = [p // b for p, b in zip(mx, bs, strict=True)]
        out = {
            "Values": [{"DataType": t, "Label": lab} for t, lab in self.voxel.values],
            "Interpolable": True,
            "BlockSize": list(bs),
            "VoxelSize": [_num(v) for v in cfg["VoxelSize"]],
            "VoxelUnits": list(cfg["VoxelUnits"]),
            "MinPoint": mn,
            "MaxPoint": mx,
            "MinIndex": mni,
            "MaxIndex": mxi,
            "Background": self.background,
            "GridStore": "",
            "ScaleLevel": int(cfg.get("ScaleLevel", 0)),
        }
        if self.time_samples > 1:
            out["TimeSamples"] = self.time_samples
        return out

    def info(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        """``Base``, ``Extended`` and top-level ``Extents``."""
        ext = self.extended(ctx)
        return {"Base": self.base_info(), "Extended": ext,
                "Extents": {"MinPoint": ext["MinPoint"], "MaxPoint": ext["MaxPoint"]}}

    def tkey_voxel_box(self, tk: bytes) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
        """Voxel box (max exclusive) of a block TKey; ``None`` for every other key
        (properties such as extents, dirty markers, the mutation log), which are then
        always kept by spatial filters."""
        if not ((len(tk) == 14 and tk[0] == BLOCK_CLASS)
                or (len(tk) == 18 and tk[0] == TIME_BLOCK_CLASS)):
            return None
        x, y, z = decode_block_tkey(tk)
        bx, by, bz = self.block_size
        return (x * bx, y * by, z * bz), ((x + 1) * bx, (y + 1) * by, (z + 1) * bz)

    # ----- block codec ------------------------------------------------------------------

    def encode_block(self, block: np.ndarray) -> bytes:
        """Framed stored value of a ``(bz, by, bx)`` block of voxels (any strides: a view
        of a bigger volume is gathered by :func:`gather_block`)."""
        arr = gather_block(block if block.dtype == self.voxel.dtype
                           else block.astype(self.voxel.dtype))
        crc = self.meta.checksum == "crc32"
        if self.is_jpeg:
            q = int(self.meta.config.get("JpegQuality", DEFAULT_JPEG_QUALITY))
            return serialize(imagecodec.encode_jpeg_block(arr, q), "jpeg", crc)
        return serialize(memoryview(arr.reshape(-1).view(np.uint8)), self.meta.compression,
                         crc, gzip_level=self.meta.compression_level)

    def decode_block(self, raw: bytes) -> np.ndarray:
        """``(bz, by, bx)`` voxel array of a stored value (400 when corrupt)."""
        try:
            code, payload = split_frame(raw)
            if code == COMP_JPEG:
                if not self.voxel.jpeg:
                    raise ValueError("a JPEG block in a non-uint8 instance")
                return imagecodec.decode_jpeg_block(payload, self.block_size)
            data = deserialize(raw)
            return np.frombuffer(data, dtype=self.voxel.dtype).reshape(self.bshape)
        except (CodecError, ValueError) as e:
            raise BadRequest(f"stored block of {self.meta.name!r} is corrupt: {e}") from None

    # ----- reading ----------------------------------------------------------------------

    def iter_row(self, ctx: VersionedCtx, x0: int, x1: int, y: int, z: int, t: int = 0,
                 ) -> Iterator[tuple[int, bytes]]:
        """Stored ``(x, value)`` of blocks ``x0..x1`` (inclusive) of row ``(y, z)`` of
        time sample ``t``."""
        start = block_tkey(x0, y, z, t=t)
        end = prefix_successor(block_tkey(x1, y, z, t=t))
        for tk, v in self.store.scan(ctx, start, end):
            yield decode_block_tkey(tk)[0], v

    def read_box(self, ctx: VersionedCtx, offset: Sequence[int], size: Sequence[int],
                 t: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """``(nz, ny, nx)`` voxels of a box of time sample ``t`` (Background where
        unwritten), into ``out`` when given (an array of that shape and the voxel type,
        e.g. one slab of a bigger answer).

        Every block the box touches is written once, straight into the one output array
        (:func:`datatypes.common.blockread.decode_into`): the stored ones decoded (by the
        compiled kernel over every core when built, with the GIL released), the others
        filled with Background. The stored values are read from one read snapshot
        (:meth:`~dvidpy.versioned.VersionedStore.read_views`; on LMDB views into its map,
        not copies) and decoded before it ends.
        """
        o, s = tuple(offset), tuple(size)
        if out is None:
            out = _aligned_empty((s[2], s[1], s[0]), self.voxel.dtype)
        if min(s) <= 0:
            return out
        lo, hi = block_range(o, s, self.block_size)
        coords = blocks_between(lo, hi)
        nx = hi[0] - lo[0] + 1
        x_at = int(lo[0]) - INT32_MIN  # x of the row's first block as its TKey stores it
        with self.store.read_views() as views:
            # blocks written at this version: point reads; rows with any other block (an
            # ancestor's, deleted or never written) are scanned, which resolves them. When
            # the first block is not this version's (a read at a child of the version
            # that wrote the data), every row is scanned: point reads that all miss cost
            # 0.05-0.4 ms more per 256³ in process
            tks = block_tkeys(coords, t=t)
            values: list[Any] = [None] * len(tks)
            if views.get_own(ctx, tks[:1])[0] is not None:
                values = views.get_own(ctx, tks)
            i = 0
            for cz in range(lo[2], hi[2] + 1):
                for cy in range(lo[1], hi[1] + 1):
                    if None in values[i:i + nx]:
                        start = block_tkey(lo[0], cy, cz, t=t)
                        end = prefix_successor(block_tkey(hi[0], cy, cz, t=t))
                        for tk, v in views.scan(ctx, start, end):
                            values[i + int.from_bytes(tk[-4:], "big") - x_at] = v
                    i += nx
            blockread.decode_into(out, values, blockread.block_places(o, s, self.block_size,
                                                                      coords),
                                  self.bshape, self.fill, self.decode_block, group=nx)
        return out

    def _roi_filter(self, call: Call) -> Any:
        """A function ``(vol, offset) -> vol`` applying ``roi=``/``attenuation=``, or None
        (400 for an unknown roi or an attenuation over 7)."""
        name = call.params["roi"]
        att = call.params["attenuation"] or 0
        if not 0 <= att <= 7:
            raise BadRequest(f"attenuation must be 0..7, got {att}")
        if not name:
            return None
        roi = find_roi(self.repo, name, self.manager)
        ctx = call.ctx

        def apply(vol: np.ndarray, offset: Sequence[int]) -> np.ndarray:
            size = (vol.shape[2], vol.shape[1], vol.shape[0])
            m = roi.mask(ctx, offset, size).view(bool)
            return np.where(m, vol, self.attenuate(vol, att)).astype(self.voxel.dtype)

        return apply

    def attenuate(self, vol: np.ndarray, att: int) -> np.ndarray:
        """Voxels outside an ROI: 0, or with ``att`` > 0 shifted right by ``att`` bits
        (each byte of rgba8; divided by ``2**att`` for float32)."""
        if not att:
            return np.zeros_like(vol)
        if self.voxel.channels == 4:
            return per_channel(vol, lambda c: c >> att)
        if vol.dtype.kind == "f":
            return vol / np.float32(2 ** att)
        return vol >> att

    def _check_volume(self, n: int) -> None:
        """413 when ``n`` voxels are over the server's request limit (in bytes)."""
        limit = self.manager.settings.max_request_bytes
        nbytes = n * self.voxel.itemsize
        if nbytes > limit:
            raise TooLarge(f"request for {n} voxels ({nbytes} bytes) is over the server "
                           f"limit of {limit} bytes")

    @staticmethod
    def _geometry(call: Call) -> tuple[tuple[int, ...], Point3, Point3, str]:
        """``(dims, 3-D size, offset, format)`` of a raw/isotropic request; 400 when the
        size does not fit the dims or the box leaves the int32 coordinate range."""
        p = call.params
        try:
            dims = parse_dims(p["dims"])
        except ValueError as e:
            raise BadRequest(str(e)) from None
        size = p["size"]
        if len(size) != len(dims):
            raise BadRequest(f"size {'_'.join(map(str, size))} has {len(size)} components "
                             f"but dims {p['dims']} needs {len(dims)}")
        size3 = plane_size_to_3d(dims, size)
        offset = p["offset"]
        try:
            check_int32_box(offset, size3)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        return dims, size3, offset, p.get("format") or ""

    @endpoint(("GET", "HEAD"), "raw/{dims}/{size}/{offset}/{format?}",
              "Voxels of a box: raw ZYX bytes (3-D), one JPEG (3-D jpg) or a 2-D image",
              params=_GEOMETRY, query=_MASK_QUERY, returns={200: (OCTET, *_IMAGES)},
              inline=True)
    def _get_raw(self, call: Call) -> Response:
        return self._get_voxels(call, isotropic=False)

    @endpoint(("GET", "HEAD"), "isotropic/{dims}/{size}/{offset}/{format?}",
              "As raw; 2-D images are stretched along their second axis to square pixels",
              params=_GEOMETRY, query=_MASK_QUERY, returns={200: (OCTET, *_IMAGES)},
              inline=True)
    def _get_iso(self, call: Call) -> Response:
        return self._get_voxels(call, isotropic=True)

    def _get_voxels(self, call: Call, isotropic: bool) -> Response:
        """Declared ``inline``: it runs on the event loop (local engines), so only a 3-D box
        of at most :data:`_INLINE_VOXELS` voxels is read here; bigger boxes stream from a
        worker thread and images are made in one (:class:`Deferred`)."""
        dims, size, offset, fmt = self._geometry(call)
        n = size[0] * size[1] * size[2]
        self._check_volume(n)
        filt = self._roi_filter(call)
        ctx = call.ctx
        if len(dims) == 3:
            if fmt and fmt != "octet-stream":  # DVID's name for the default 3-D format
                kind, q = _parse_format(fmt)
                if kind != "jpeg":
                    raise BadRequest(f"3-D raw supports only the jpg format, not {fmt!r}")
                self.check_image_kind(kind)
                if n > MAX_JPEG_VOLUME:
                    raise TooLarge(f"3-D JPEG answers are limited to {MAX_JPEG_VOLUME} voxels")
                if size[1] * size[2] > 65535 or size[0] > 65535:
                    raise BadRequest("3-D JPEG image would exceed 65535 pixels a side")
                return Deferred(self._jpeg_volume, ctx, offset, size, filt, q)
            if n <= _INLINE_VOXELS and filt is None:
                return self._box_response(ctx, offset, size, None)
            nbytes = n * self.voxel.itemsize
            if nbytes <= _WHOLE_BOX:
                # Read whole in a thread into a reused buffer, then sent in one write: a
                # corrupt block is still a 400 (a stream would be cut after its 200). With
                # the compiled block reader, 256³ uint8 of 64³ LZ4 blocks over HTTP: server
                # CPU per answer 9-10 / 12-14 ms aligned / unaligned, against 15-17 /
                # 20-22 ms for the slab stream with numpy decoding (load 4-5). Tried and
                # not kept: sending each block layer as soon as it is decoded while a
                # thread decodes the next (median 0.85-0.9x of this, CPU +25-35 %).
                return Deferred(self._box_response, ctx, offset, size, filt, True)
            # Bigger boxes: Starlette's stream pulls one (<= 4 MiB) piece at a time in the
            # thread pool: the next slab is built only when the last one is sent, so at
            # most one slab is alive.
            return starlette.responses.StreamingResponse(
                self._stream_box(ctx, offset, size, filt),
                media_type="application/octet-stream",
                headers={"Content-Length": str(n * self.voxel.itemsize)})
        kind, q = _parse_format(fmt)
        self.check_image_kind(kind)
        ra = rb = 1.0
        if isotropic:
            res = self.meta.config["VoxelSize"]
            ra, rb = float(res[dims[0]]), float(res[dims[1]])
            # the stretched image, not the box read, is what costs: bound it first
            px = size[dims[1]] * rb / ra * size[dims[0]]
            limit = self.manager.settings.max_request_bytes
            if not px * self.voxel.itemsize <= limit:  # also inf for absurd ratios
                raise TooLarge(f"isotropic image of {px:.3g} pixels is over the server "
                               f"limit of {limit} bytes")
        return Deferred(self._plane_image, ctx, offset, size, filt, dims, (ra, rb), kind, q)

    def _box_response(self, ctx: VersionedCtx, offset: Point3, size: Point3,
                      filt: Any, pooled: bool = False) -> Response:
        """The box's voxel bytes as one answer; ``pooled``: read into a buffer of
        :data:`_ANSWER_BUFFERS` (reused once nothing refers to it: no page faults)."""
        out = None
        if pooled:
            n = size[0] * size[1] * size[2] * self.voxel.itemsize
            out = _aligned(np.frombuffer(_answer_buffer(n + 64), dtype=np.uint8), n,
                           (size[2], size[1], size[0]), self.voxel.dtype)
        vol = self.read_box(ctx, offset, size, out=out)
        if filt:
            vol = filt(vol, offset)
        # the voxels' bytes (a memoryview of wider voxels would count items, not bytes)
        return Response(memoryview(vol.reshape(-1).view(np.uint8)),
                        media_type="application/octet-stream")

    def _jpeg_volume(self, ctx: VersionedCtx, offset: Point3, size: Point3, filt: Any,
                     q: int) -> Response:
        vol = self.read_box(ctx, offset, size)
        if filt:
            vol = filt(vol, offset)
        img = imagecodec.encode_jpeg(vol.reshape(size[2] * size[1], size[0]), q)
        return Response(img, media_type="image/jpeg")

    def _plane_image(self, ctx: VersionedCtx, offset: Point3, size: Point3, filt: Any,
                     dims: tuple[int, ...], res: tuple[float, float], kind: str,
                     q: int) -> Response:
        vol = self.read_box(ctx, offset, size)
        if filt:
            vol = filt(vol, offset)
        if dims == (0, 1):
            img = vol[0]
        elif dims == (0, 2):
            img = vol[:, 0, :]
        else:
            img = vol[:, :, 0]
        ra, rb = res
        if ra != rb:
            h = img.shape[0]
            newh = max(1, round(h * rb / ra))
            rows = np.minimum((np.arange(newh) * ra / rb).astype(np.int64), h - 1)
            img = img[rows]
        return self.image_response(img, kind, q)

    def check_image_kind(self, kind: str) -> None:
        """400 when this voxel type has no image of ``kind`` (module docstring)."""
        v = self.voxel
        if kind == "jpeg" and not v.jpeg:
            raise BadRequest(f"JPEG images are for uint8 data; {self.type_name} has png "
                             f"({v.name} voxels)")
        if kind in ("tiff", "bmp") and not (v.jpeg or v.channels == 4):
            raise BadRequest(f"{kind} images are for uint8 and rgba8 data; use png for "
                             f"{self.type_name}")

    def image_response(self, img: np.ndarray, kind: str, quality: int) -> Response:
        """A 2-D ``(height, width)`` array of voxels as an image of ``kind`` (after
        :meth:`check_image_kind`)."""
        v = self.voxel
        if v.jpeg:
            return _image_response(img, kind, quality)
        img = np.ascontiguousarray(img)
        h, w = img.shape
        if kind in ("tiff", "bmp"):  # rgba8
            rgba = img.view(np.uint8).reshape(h, w, 4)
            buf = io.BytesIO()
            Image.fromarray(rgba, "RGBA").save(buf, format=kind.upper())
            return Response(buf.getvalue(), media_type=f"image/{kind}")
        depth, ctype = v.png
        try:
            png = imagecodec.encode_png_raw(img.view(np.uint8).reshape(h, -1), w, depth,
                                            ctype)
        except ValueError as e:
            raise BadRequest(f"cannot encode image: {e}") from None
        return Response(png, media_type="image/png")

    # ----- arbitrary planes -------------------------------------------------------------

    @endpoint(("GET", "HEAD"), "arb/{topleft}/{topright}/{bottomleft}/{res}/{format?}",
              "An arbitrary plane through the volume, resampled (physical coordinates)",
              params=(Param("topleft", "point", "physical x_y_z of the top-left pixel"),
                      Param("topright", "point", "physical x_y_z of the top-right pixel"),
                      Param("bottomleft", "point", "physical x_y_z of the bottom-left pixel"),
                      Param("res", "float", "physical size of one output pixel (> 0)"),
                      Param("format", "str", "png (default), jpg[:quality], tif or bmp")),
              returns={200: _IMAGES})
    def _get_arb(self, call: Call) -> Response:
        if not (self.voxel.jpeg or self.voxel.channels == 4):
            raise BadRequest(f"arbitrary planes are for uint8blk and rgba8blk (DVID's rule), "
                             f"not {self.type_name}")
        p = call.params
        tl, tr, bl, res = p["topleft"], p["topright"], p["bottomleft"], p["res"]
        if not res > 0:
            raise BadRequest(f"bad res {res!r}: must be a positive finite number")
        kind, q = _parse_format(p["format"] or "")
        self.check_image_kind(kind)
        try:
            plane = arbslice.make_plane(tl, tr, bl, res)
        except arbslice.PlaneTooLarge as e:
            raise TooLarge(str(e)) from None
        except ValueError as e:
            raise BadRequest(str(e)) from None
        self._check_volume(plane.num_pixels)
        try:
            arbslice.check_int32(plane, self.meta.config["VoxelSize"])
        except ValueError as e:
            raise BadRequest(str(e)) from None
        if kind == "jpeg" and max(plane.width, plane.height) > 65535:
            raise BadRequest(f"arb JPEG of {plane.width} x {plane.height} pixels is over the "
                             "JPEG limit of 65535 a side; use png")
        return self.image_response(self.sample_arb(call.ctx, plane), kind, q)

    def sample_arb(self, ctx: VersionedCtx, plane: arbslice.ArbPlane) -> np.ndarray:
        """``(height, width)`` voxel image of ``plane`` (DVID's arb resampling; per
        channel for rgba8).

        Rows are resampled in bands of about ``_ARB_BAND`` samples; each band reads the
        blocks its samples touch in one batched read (reusing the previous band's blocks)
        and gathers the 8 lattice voxels of every sample with fancy indexing.
        """
        vs = self.meta.config["VoxelSize"]
        w = plane.width
        out = np.empty((plane.height, w), dtype=self.voxel.dtype)
        flat = out.reshape(-1)
        starts = arbslice.row_starts(plane)
        rows = max(1, _ARB_BAND // w)
        cache: _BlockCache = {}
        for r0 in range(0, plane.height, rows):
            r1 = min(plane.height, r0 + rows)
            pts = arbslice.sample_points(plane, starts, r0, r1)
            lo, hi, frac = arbslice.lattice(pts, vs)
            cache = self._arb_fill(ctx, lo, hi, frac, flat[r0 * w:r1 * w], cache)
        return out

    def _arb_fill(self, ctx: VersionedCtx, lo: np.ndarray, hi: np.ndarray, frac: np.ndarray,
                  dst: np.ndarray, cache: _BlockCache,
                  ) -> _BlockCache:
        """Interpolate samples ``(lo, hi, frac)`` (``(3, N)`` each) into ``dst``; returns
        the blocks read. A range touching over ``_ARB_BLOCK_BUDGET`` bytes is halved."""
        n = lo.shape[1]
        bs = self.block_size
        bvol = bs[0] * bs[1] * bs[2]
        blocks, local = [], []
        for a in range(3):
            v = np.stack([lo[a], hi[a]])
            b = np.floor_divide(v, bs[a])
            blocks.append(b)
            local.append(v - b * bs[a])
        coords, slot = arbslice.corner_blocks(blocks)
        if len(coords) * bvol > max(_ARB_BLOCK_BUDGET, 8 * bvol) and n > 1:
            del blocks, local, slot
            h = n // 2
            cache = self._arb_fill(ctx, lo[:, :h], hi[:, :h], frac[:, :h], dst[:h], cache)
            return self._arb_fill(ctx, lo[:, h:], hi[:, h:], frac[:, h:], dst[h:], cache)
        stack, where, cache = self._arb_blocks(ctx, coords, cache)
        idx = where[slot] * bvol + arbslice.corners(local, (bs[0], bs[1]))
        corners = stack.reshape(-1)[idx]
        if self.voxel.channels == 4:
            dst[:] = per_channel(corners, lambda c: np.stack(
                [arbslice.trilinear_uint8(ch, frac) for ch in c]))
        else:
            dst[:] = arbslice.trilinear_uint8(corners, frac)
        return cache

    def _arb_blocks(self, ctx: VersionedCtx, coords: np.ndarray,
                    cache: _BlockCache,
                    ) -> tuple[np.ndarray, np.ndarray, _BlockCache]:
        """Blocks at ``coords``: ``(stack, where, new cache)``. ``stack[0]`` is a Background
        block and ``stack[where[i]]`` is block ``coords[i]``; blocks not in ``cache`` are
        read in one ``get_many`` (cache value ``None``: not stored)."""
        keys = [(c[0], c[1], c[2]) for c in coords.tolist()]
        missing = [i for i, k in enumerate(keys) if k not in cache]
        new: _BlockCache = {}
        if missing:
            raws = self.store.get_many(ctx, block_tkeys(coords[missing]))
            for i, raw in zip(missing, raws, strict=True):
                new[keys[i]] = None if raw is None else self.decode_block(raw)
        blocks = [new[k] if k in new else cache[k] for k in keys]
        where = np.zeros(len(keys), dtype=np.int64)
        present = [i for i, blk in enumerate(blocks) if blk is not None]
        stack = np.empty((len(present) + 1, *self.bshape), dtype=self.voxel.dtype)
        stack[0] = self.fill
        for j, i in enumerate(present, 1):
            stack[j] = blocks[i]
            where[i] = j
        return stack, where, dict(zip(keys, blocks, strict=True))

    def _stream_box(self, ctx: VersionedCtx, offset: Sequence[int], size: Sequence[int],
                    filt: Any) -> Iterator[bytes]:
        """Z-slabs one block-layer thick, each at most ``bz * ny * nx`` voxels."""
        bz = self.block_size[2]
        z, zend = offset[2], offset[2] + size[2]
        while z < zend:
            z1 = min(zend, (z // bz + 1) * bz)
            o = (offset[0], offset[1], z)
            s = (size[0], size[1], z1 - z)
            slab = self.read_box(ctx, o, s)
            if filt:
                slab = filt(slab, o)
            flat = memoryview(slab.reshape(-1).view(np.uint8))
            # Hand the slab to the server in <= 4 MiB views (zero-copy) so the transport
            # never buffers a whole slab next to the one being built.
            for i in range(0, len(flat), _STREAM_PIECE):
                yield flat[i:i + _STREAM_PIECE]
            del flat, slab
            z = z1

    # ----- writing ----------------------------------------------------------------------

    def _stripe_ids(self, coords: np.ndarray) -> list[int]:
        c = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
        h = (c[:, 0] * 73856093) ^ (c[:, 1] * 19349663) ^ (c[:, 2] * 83492791)
        return sorted(set((h % N_STRIPES).tolist()))

    class _Locked:
        def __init__(self, locks: list[threading.Lock]) -> None:
            self.locks = locks

        def __enter__(self) -> None:
            for lk in self.locks:
                lk.acquire()

        def __exit__(self, *exc: object) -> None:
            for lk in reversed(self.locks):
                lk.release()

    def lock_blocks(self, coords: np.ndarray) -> ImageBlk._Locked:
        """Context manager holding the stripe locks of ``coords`` (sorted: no deadlock);
        on a shared store, the instance lock held across servers instead."""
        if self.shared_store:
            return self._Locked([self._commit_lock])
        return self._Locked([self._stripes[i] for i in self._stripe_ids(coords)])

    def store_blocks(self, ctx: VersionedCtx, coords: np.ndarray, values: Iterable[bytes],
                     mark_dirty: bool = True,
                     grow: tuple[Sequence[int], Sequence[int]] | None = None,
                     t: int = 0) -> None:
        """Write encoded blocks of time sample ``t`` (``values`` may be produced lazily),
        their dirty markers and the grown extents, in batches of about
        ``writeBatchBytes`` (see :class:`_BlockBatches`).

        ``grow`` is the inclusive (lo, hi) voxel box to add to the extents (default: the
        blocks' bounds).
        """
        c = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
        if len(c) == 0:
            return
        if grow is None:
            bs = np.asarray(self.block_size)
            grow = ((c.min(axis=0) * bs).tolist(), ((c.max(axis=0) + 1) * bs - 1).tolist())
        out = _BlockBatches(self, ctx, grow, mark_dirty)
        try:
            for k, v in zip(block_tkeys(c, t=t), values, strict=True):
                out.put(k, v)
            out.flush()
        finally:
            out.wait()

    def write_box(self, ctx: VersionedCtx, offset: Sequence[int], vol: np.ndarray,
                  mask: Callable[[Point3, Point3], np.ndarray] | None = None,
                  t: int = 0) -> None:
        """Write a ``(nz, ny, nx)`` volume of voxels at ``offset`` (any alignment) of time
        sample ``t``.

        Blocks are encoded from views of ``vol`` (no copy of the volume) in runs of
        consecutive blocks along X of at most ``_WRITE_RUN`` bytes, and committed in
        batches of about ``writeBatchBytes`` of encoded data, so the memory a write needs
        besides ``vol`` is bounded whatever its size. A write that fits one batch is
        atomic; a bigger one is committed batch by batch (the extents grow with the first
        batch), after every check on the request has passed. Edge blocks are
        read-modify-written under their stripe locks, held for the whole write.

        ``mask(offset, size)`` (optional) gives the bool ``(nz, ny, nx)`` voxels of a box
        that may change (e.g. those inside an ROI); it is called once per run.
        """
        ctx.check_writable()
        self.check_time(t)
        if vol.dtype != self.voxel.dtype:
            raise BadRequest(f"{self.type_name} voxels are {self.voxel.dtype}, not {vol.dtype}")
        size = (vol.shape[2], vol.shape[1], vol.shape[0])
        if min(size) <= 0:
            return
        try:
            check_int32_box(offset, size)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        hi = [o + s - 1 for o, s in zip(offset, size, strict=True)]
        coords = blocks_in_box(offset, size, self.block_size)
        # the locks held (on a shared store, the instance lock) cover the commits too
        out = _BlockBatches(self, ctx, (list(offset), hi), True, held=self.shared_store)
        gate = _BIG_WRITES if vol.nbytes >= _BIG_WRITE else contextlib.nullcontext()
        with gate, self.lock_blocks(coords):
            try:
                for run in self._runs(offset, size):
                    for p, value in zip(run, self._encode_run(ctx, offset, vol, run, mask, t),
                                        strict=True):
                        out.put(block_tkey(*p.coord, t=t), value)
                out.flush()
            finally:
                out.wait()  # nothing of this write commits after its locks are released

    def _runs(self, offset: Sequence[int], size: Sequence[int]) -> Iterator[list[BlockPiece]]:
        """The box's block pieces in key order, grouped in runs of consecutive blocks of
        one (y, z) row holding at most ``_WRITE_RUN`` bytes (one block at least)."""
        run: list[BlockPiece] = []
        voxels = 0
        limit = max(1, _WRITE_RUN // self.voxel.itemsize)
        for p in iter_block_pieces(offset, size, self.block_size):
            zs, ys, xs = p.volume_slices
            n = (zs.stop - zs.start) * (ys.stop - ys.start) * (xs.stop - xs.start)
            if run and (run[-1].coord[1:] != p.coord[1:] or voxels + n > limit):
                yield run
                run, voxels = [], 0
            run.append(p)
            voxels += n
        if run:
            yield run

    def _encode_run(self, ctx: VersionedCtx, offset: Sequence[int], vol: np.ndarray,
                    run: list[BlockPiece],
                    mask: Callable[[Point3, Point3], np.ndarray] | None,
                    t: int = 0) -> list[bytes]:
        """Stored values of the blocks of one run (see :meth:`write_box`)."""
        z0, y0, x0 = (s.start for s in run[0].volume_slices)
        m_run = None
        if mask is not None:
            zs, ys = run[0].volume_slices[:2]
            xe = run[-1].volume_slices[2].stop
            m_run = mask((offset[0] + x0, offset[1] + y0, offset[2] + z0),
                         (xe - x0, ys.stop - ys.start, zs.stop - zs.start))
        need_old = [i for i, p in enumerate(run) if not p.full or mask is not None]
        if not need_old and not self.is_jpeg and self.meta.checksum != "crc32" \
                and vol.dtype == self.voxel.dtype:
            # whole blocks: gathered and framed by the compiled encoder when it is built
            origins = np.array([[s.start for s in p.volume_slices] for p in run],
                               dtype=np.int64)
            made = blockencode.encode_blocks(vol, origins, self.bshape,
                                             self.meta.compression, _encode_pool(),
                                             os.cpu_count() or 2)
            if made is not None:
                return made
        old: dict[int, bytes | None] = {}
        if need_old:
            got = self.store.get_many(ctx, block_tkeys(
                np.array([run[i].coord for i in need_old], dtype=np.int64), t=t))
            old = dict(zip(need_old, got, strict=True))

        def build(i: int) -> bytes:
            p = run[i]
            if i not in old:
                return self.encode_block(vol[p.volume_slices])
            raw = old[i]
            blk = (self.empty(self.bshape) if raw is None
                   else self.decode_block(raw).copy())
            if m_run is None:
                blk[p.block_slices] = vol[p.volume_slices]
            else:
                zs, ys, xs = p.volume_slices
                m = m_run[zs.start - z0:zs.stop - z0, ys.start - y0:ys.stop - y0,
                          xs.start - x0:xs.stop - x0]
                sub = blk[p.block_slices]
                sub[m] = vol[p.volume_slices][m]
            return self.encode_block(blk)

        # Copy + LZ4/JPEG/gzip release the GIL: encode big runs on all cores.
        if len(run) >= 8:
            return list(_encode_pool().map(build, range(len(run))))
        return [build(i) for i in range(len(run))]

    @endpoint("POST", "raw/{dims}/{size}/{offset}", "Write a 3-D box of raw voxels",
              params=_GEOMETRY[:3], body=Body(OCTET, "nx*ny*nz voxels (little-endian) in ZYX "
                                                     "order"),
              query=(Q("roi", "str", "only voxels inside this roi instance change (400 when "
                                     "there is no such roi)"),), returns=EMPTY)
    def _post_raw(self, call: Call) -> Response:
        dims, size, offset, _ = self._geometry(call)
        if dims != (0, 1, 2):
            raise BadRequest("POST raw accepts only 3-D data (0_1_2)")
        n = size[0] * size[1] * size[2]
        self._check_volume(n)
        nb = n * self.voxel.itemsize
        if len(call.body) != nb:
            raise BadRequest(f"POST raw body has {len(call.body)} bytes; size {size} of "
                             f"{self.voxel.name} voxels needs {nb}")
        mask = None
        if call.params["roi"]:
            roi = find_roi(self.repo, call.params["roi"], self.manager)
            ctx = call.ctx

            def mask(o: Point3, s: Point3) -> np.ndarray:
                return roi.mask(ctx, o, s).view(bool)

        vol = np.frombuffer(call.body, dtype=self.voxel.dtype).reshape(size[2], size[1],
                                                                       size[0])
        self.write_box(call.ctx, offset, vol, mask)
        return Response(b"")

    # ----- block endpoints --------------------------------------------------------------

    def _payload_mode(self, call: Call) -> str:
        comp = call.params["compression"] or ""
        if comp == "jpeg" and not self.is_jpeg:
            raise BadRequest(f"instance {self.meta.name!r} is not stored as JPEG "
                             f"({self.meta.compression}); use compression=uncompressed")
        return comp

    def _payload(self, raw: bytes, mode: str) -> bytes | memoryview:
        if mode == "uncompressed":
            return memoryview(self.decode_block(raw).reshape(-1).view(np.uint8))
        try:
            return split_frame(raw)[1]
        except CodecError as e:
            raise BadRequest(f"stored block of {self.meta.name!r} is corrupt: {e}") from None

    def _record(self, coord: Sequence[int], raw: bytes,
                mode: str) -> tuple[bytes, bytes | memoryview]:
        """Header and payload of block ``coord``'s record in a block stream."""
        p = self._payload(raw, mode)
        n = p.nbytes if isinstance(p, memoryview) else len(p)
        return encode_header(coord[0], coord[1], coord[2], n), p

    @endpoint(("GET", "HEAD"), "subvolblocks/{size}/{offset}",
              "Stored blocks of a block-aligned box as a block stream (missing ones omitted)",
              params=(Param("size", "size3", "nx_ny_nz voxels, multiples of the block size"),
                      Param("offset", "coord", "x_y_z voxels, multiples of the block size")),
              query=(_COMPRESSION,), returns=OCTET, inline=True)
    def _subvolblocks(self, call: Call) -> Response:
        size, offset = call.params["size"], call.params["offset"]
        bs = self.block_size
        if any(o % b or s % b for o, s, b in zip(offset, size, bs, strict=True)):
            raise BadRequest(f"subvolblocks size {size} and offset {offset} must be "
                             f"multiples of the block size {bs}")
        try:
            check_int32_box(offset, size)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        self._check_volume(size[0] * size[1] * size[2])
        mode = self._payload_mode(call)
        lo, hi = block_range(offset, size, bs)
        ctx = call.ctx
        nblocks = (hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1)
        one: tuple[tuple[tuple[int, int, int], bytes], ...] = ()
        if nblocks == 1:  # neuroglancer asks for one block at a time: a point read
            raw = self.store.get(ctx, blockscan.block_tkey(BLOCK_CLASS, *lo))
            if raw is not None and mode != "uncompressed":  # answered here, as stored
                return Response(b"".join(self._record(lo, raw, mode)),
                                media_type="application/octet-stream")
            one = () if raw is None else ((lo, raw),)

        def stored() -> Iterable[tuple[tuple[int, int, int], bytes]]:
            if nblocks == 1:
                return one
            # driven by the stored blocks, not by the (possibly huge, empty) box
            return scan_region(self.store, ctx, BLOCK_CLASS, BoxRegion(lo, hi))

        def gen() -> Iterator[bytes | memoryview]:
            for c, raw in stored():
                yield from self._record(c, raw, mode)

        return _block_stream(gen, nblocks, mode)

    @endpoint(("GET", "HEAD"), "specificblocks",
              "Listed stored blocks as a block stream, in request order (missing omitted)",
              query=(Q("blocks", "str", "block coordinates x1,y1,z1,x2,y2,z2,..."),
                     _COMPRESSION,
                     Q("prefetch", "bool", "answer nothing (DVID warms its caches)")),
              returns=OCTET, inline=True)
    def _specificblocks(self, call: Call) -> Response:
        try:
            coords = parse_block_list(call.params["blocks"] or "")
        except ValueError as e:
            raise BadRequest(str(e)) from None
        mode = self._payload_mode(call)
        if call.params["prefetch"]:
            return Response(b"", media_type="application/octet-stream")
        ctx = call.ctx
        keys = block_tkeys(coords)

        def gen() -> Iterator[bytes | memoryview]:
            for i in range(0, len(keys), 256):
                vals = self.store.get_many(ctx, keys[i:i + 256])
                for c, raw in zip(coords[i:i + 256].tolist(), vals, strict=True):
                    if raw is not None:
                        yield from self._record(c, raw, mode)

        return _block_stream(gen, len(keys), mode)

    def _span_args(self, call: Call) -> tuple[tuple[int, int, int], int]:
        (x, y, z), span = call.params["block"], call.params["span"]
        if span < 1:
            raise BadRequest(f"spanX must be >= 1, got {span}")
        bx, by, bz = self.block_size
        lo, hi = int32_block_limits(self.block_size)
        try:
            check_block_coords([[x, y, z], [x + span - 1, y, z]], lo, hi,
                               "int32 voxel coordinates")
        except ValueError as e:
            raise BadRequest(str(e)) from None
        self._check_volume(span * bx * by * bz)
        return (x, y, z), span

    @endpoint(("GET", "HEAD"), "blocks/{block}/{span}",
              "span consecutive blocks along X, uncompressed and concatenated (Background "
              "for missing ones)", params=_BLOCK_SPAN, returns=OCTET)
    def _get_blocks(self, call: Call) -> Response:
        (x, y, z), span = self._span_args(call)
        out = self.empty((span, *self.bshape))
        for cx, raw in self.iter_row(call.ctx, x, x + span - 1, y, z):
            out[cx - x] = self.decode_block(raw)
        return Response(out.tobytes(), media_type="application/octet-stream")

    @endpoint("POST", "blocks/{block}/{span}", "Store span consecutive blocks along X",
              params=_BLOCK_SPAN, body=Body(OCTET, "span uncompressed blocks, each bx*by*bz "
                                                   "voxels in ZYX order"), returns=EMPTY)
    def _post_blocks(self, call: Call) -> Response:
        (x, y, z), span = self._span_args(call)
        bx, by, bz = self.block_size
        nb = bx * by * bz * self.voxel.itemsize
        if len(call.body) != span * nb:
            raise BadRequest(f"POST blocks body has {len(call.body)} bytes; {span} blocks "
                             f"of {bx}x{by}x{bz} {self.voxel.name} voxels need {span * nb}")
        arr = np.frombuffer(call.body, dtype=self.voxel.dtype).reshape(span, *self.bshape)
        coords = np.empty((span, 3), dtype=np.int64)
        coords[:] = (x, y, z)
        coords[:, 0] += np.arange(span)
        with self.lock_blocks(coords):
            self.store_blocks(call.ctx, coords, (self.encode_block(a) for a in arr))
        return Response(b"")

    # ----- metadata endpoints -----------------------------------------------------------

    @endpoint("POST", "extents", "Replace the extents at this version", returns=EMPTY,
              body=Body(JSON, '{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]} (inclusive voxels)',
                        schema={"type": "object", "required": ["MinPoint", "MaxPoint"],
                                "properties": {"MinPoint": _POINT3, "MaxPoint": _POINT3}}))
    def _post_extents(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict):
            raise BadRequest('POST extents expects {"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}')
        pts = []
        for k in ("MinPoint", "MaxPoint"):
            v = body.get(k)
            if not (isinstance(v, list) and len(v) == 3
                    and all(isinstance(c, int) and not isinstance(c, bool) for c in v)):
                raise BadRequest(f"POST extents: {k} must be a list of 3 integers")
            pts.append(v)
        _coords_ok(*pts)
        if any(a > b for a, b in zip(pts[0], pts[1], strict=True)):
            raise BadRequest(f"MinPoint {pts[0]} is not <= MaxPoint {pts[1]}")
        with self._commit_lock:
            self.put_property(call.ctx, _EXTENTS, {"MinPoint": pts[0], "MaxPoint": pts[1]})
        return Response(b"")

    @endpoint("POST", "resolution", "Set the voxel size", returns=EMPTY,
              body=Body(JSON, "[rx, ry, rz] positive numbers", schema={
                  "type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
                  "minItems": 3, "maxItems": 3}))
    def _post_resolution(self, call: Call) -> Response:
        body = call.json()
        if not (isinstance(body, list) and len(body) == 3 and all(
                isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1e300
                for v in body)):
            raise BadRequest("POST resolution expects [rx, ry, rz] positive finite numbers")
        self.meta.config = {**self.meta.config, "VoxelSize": [float(v) for v in body]}
        self.save_meta()
        return Response(b"")

    @endpoint("GET", "metadata", "Axes and properties (DVID's nd-data JSON)", returns=ND_JSON)
    def _metadata(self, call: Call) -> Response:
        ext = self.extended(call.ctx)
        axes = []
        for i, lab in enumerate("XYZ"):
            mn = ext["MinPoint"][i] if ext["MinPoint"] else 0
            mx = ext["MaxPoint"][i] if ext["MaxPoint"] else -1
            axes.append({"Label": lab, "Resolution": ext["VoxelSize"][i],
                         "Units": ext["VoxelUnits"][i], "Size": mx - mn + 1, "Offset": mn})
        body = json.dumps({"Axes": axes, "Properties": ext}, separators=(",", ":"))
        return Response(body.encode(), media_type=ND_JSON)

    @endpoint("GET", "rawkey", "Hex TKey of a block (debugging)", returns=TEXT, inline=True,
              query=tuple(Q(a, "int32", f"block coordinate {a}", required=True) for a in "xyz"))
    def _rawkey(self, call: Call) -> Response:
        p = call.params
        return Response(block_tkey(p["x"], p["y"], p["z"]).hex(), media_type="text/plain")

    # ----- pyramid ----------------------------------------------------------------------

    def level_instance(self, ctx: VersionedCtx, k: int,
                       factors: tuple[int, int, int] = (2, 2, 2)) -> ImageBlk:
        """Pyramid level ``k`` (``NAME_k``), made when missing with this instance's type,
        block size, compression, time samples and a voxel size of ``factors**k`` times
        this one's; 400 when an instance of that name is something else."""
        name = f"{self.meta.name}_{k}"
        axes = "xy" if factors[2] == 1 else "xyz"
        inst = self.manager.find_instance(self.repo, name)
        if inst is None:
            cfg = self.meta.config
            comp = self.meta.compression
            if comp == "gzip" and self.meta.compression_level > 0:
                comp = f"gzip:{self.meta.compression_level}"
            vs = [float(v) * f ** k for v, f in zip(cfg["VoxelSize"], factors, strict=True)]
            body = {
                "typename": self.type_name, "dataname": name,
                "blocksize": ",".join(map(str, self.block_size)),
                "compression": comp,
                "voxelsize": ",".join(repr(v) for v in vs),
                "voxelunits": ",".join(cfg["VoxelUnits"]),
                "background": str(self.background),
                "jpegquality": str(cfg.get("JpegQuality", DEFAULT_JPEG_QUALITY)),
                "timesamples": str(self.time_samples),
                "versioned": "true" if self.meta.versioned else "false",
            }
            try:
                inst = self.manager.new_instance(self.repo, ctx.node, body)
            except BadRequest:
                # another process of the server (a --workers sibling) made it meanwhile:
                # taking the metadata lock reloaded the repo, so it is here now
                inst = self.manager.find_instance(self.repo, name)
                if inst is None:
                    raise
            else:
                inst.meta.config["ScaleLevel"] = k
                inst.meta.config["Downres"] = axes
                inst.save_meta()
        if (not isinstance(inst, ImageBlk) or inst.type_name != self.type_name
                or inst.block_size != self.block_size
                or inst.meta.config.get("Downres", axes) != axes):
            raise BadRequest(f"pyramid level instance {name!r} exists but is not a "
                             f"{self.type_name} with block size {self.block_size} halving "
                             f"{axes}")
        return inst

    def _scan_coords(self, ctx: VersionedCtx, cls: int) -> dict[int, np.ndarray]:
        """``{time sample: (N, 3) x,y,z}`` of the stored keys of block class ``cls``
        (BLOCK_CLASS or DIRTY_CLASS) of every time sample (sample 0 always present)."""
        out: dict[int, np.ndarray] = {}
        for head, width in ((bytes((cls, 1)), 14), (bytes((cls + 2, 1)), 18)):
            ks = [tk for tk, _ in self.store.scan_prefix(ctx, head, keys_only=True)
                  if len(tk) == width]
            if not ks:
                continue
            raw = np.frombuffer(b"".join(k[2:] for k in ks), dtype=">u4").reshape(
                -1, (width - 2) // 4).astype(np.int64)
            ts = raw[:, 0] if width == 18 else np.zeros(len(raw), dtype=np.int64)
            xyz = np.ascontiguousarray(raw[:, -3:][:, ::-1] + INT32_MIN)
            for t in np.unique(ts).tolist():
                out[t] = xyz[ts == t]
        out.setdefault(0, np.zeros((0, 3), dtype=np.int64))
        return out

    def _jobs(self) -> JobBoard:
        """The server's downres jobs, one record per instance (keyed by its data UUID) in
        the metadata store, so every process of the server reports and cancels the same
        job (see :mod:`dvidpy.jobrecords`)."""
        return JobBoard.of(self.manager, "downres", state_key="State", running="running",
                           lost={"State": "error",
                                 "Error": "the server process running it stopped"})

    def _set_job(self, **kw: Any) -> None:
        if self._job is not None:
            self._job.update(**kw)

    def downres_status(self, ctx: VersionedCtx | None = None) -> dict[str, Any]:
        """The current or last downres job's status, whichever process of the server runs
        or ran it (``State`` ``idle`` when there was none), plus the dirty count at
        ``ctx``. A job whose process stopped shows ``State`` ``error``."""
        st = self._jobs().get(self.meta.data_uuid) or {
            "State": "idle", "Level": 0, "Levels": 0, "BlocksDone": 0, "BlocksTotal": 0,
            "Error": ""}
        if ctx is not None:
            st["DirtyBlocks"] = sum(len(c) for c in self._scan_coords(ctx, DIRTY_CLASS)
                                    .values())
        return st

    def reduce(self, stack: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
        """One pyramid step of a stack of ``(n, fz*bz, 2*by, 2*bx)`` voxels -> ``(n, bz,
        by, bx)``: the mean (rounded half up; float32 in float64; rgba8 per channel) or,
        for ``uint64blk``, the mode."""
        if self.voxel.pyramid == "mode":
            n, z, y, x = stack.shape
            flat = downsample_mode(stack.reshape(n * z, y, x), factors)
            return flat.reshape(n, z // factors[2], y // factors[1], x // factors[0])
        if self.voxel.channels == 4:
            return per_channel(stack, lambda c: downsample_mean(c, factors))
        return downsample_mean(stack, factors)

    def cancel_downres(self) -> bool:
        """Ask a running downres to stop, in whichever process of the server it runs (it
        stops between batches of blocks, leaving the levels partly rebuilt and the dirty
        markers in place; from another process within about a second); whether one was
        running."""
        return self._jobs().cancel(self.meta.data_uuid)

    def _check_cancel(self) -> None:
        if self._job is not None and self._job.cancelled.is_set():
            raise _Cancelled("downres cancelled")

    def run_downres(self, ctx: VersionedCtx, levels: int | None = None,
                    bbox: Box | None = None, full: bool = False,
                    anisotropic: bool = False) -> None:
        """Build pyramid levels of every time sample (see the module doc); updates the job
        status as it goes. ``anisotropic``: halve x and y only."""
        factors = (2, 2, 1) if anisotropic else (2, 2, 2)
        fvec = np.asarray(factors, dtype=np.int64)
        cleared: dict[int, np.ndarray] = {}
        if bbox is not None:
            lo, hi = block_range(bbox.offset, bbox.size, self.block_size)
            seeds = {}
            for t, c in self._scan_coords(ctx, BLOCK_CLASS).items():
                sel = np.all((c >= np.asarray(lo)) & (c <= np.asarray(hi)), axis=1)
                seeds[t] = c[sel]
        else:
            with self._commit_lock:
                cleared = self._scan_coords(ctx, DIRTY_CLASS)
                with self.store.batch(ctx) as b:
                    for t, c in cleared.items():
                        for k in block_tkeys(c, DIRTY_CLASS, t):
                            b.delete(k)
            seeds = self._scan_coords(ctx, BLOCK_CLASS) if full else cleared
        try:
            ext = self.extents_at(ctx)
            if levels is None:
                levels = self._default_levels(ext, factors)
            sets: list[dict[int, np.ndarray]] = []
            cur = seeds
            for _ in range(levels):
                cur = {t: (np.unique(np.floor_divide(c, fvec), axis=0) if len(c) else c)
                       for t, c in cur.items()}
                sets.append(cur)
            total = int(sum(len(c) for s in sets for c in s.values()))
            self._set_job(Levels=levels, BlocksTotal=total, BlocksDone=0, Level=0)
            src: ImageBlk = self
            src_ctx = ctx
            done = 0
            step = self._parent_batch(factors)
            for k in range(1, levels + 1):
                dst = self.level_instance(ctx, k, factors)
                dst_ctx = self._level_ctx(dst, ctx)
                self._set_job(Level=k)
                for t, parents in sets[k - 1].items():
                    for i in range(0, len(parents), step):
                        self._check_cancel()
                        chunk = parents[i:i + step]
                        self._downres_parents(src, src_ctx, dst, dst_ctx, chunk, t, factors)
                        done += len(chunk)
                        self._set_job(BlocksDone=done)
                if ext is not None:
                    f = fvec ** k
                    lvl = {"MinPoint": [int(v) // int(g) for v, g in zip(ext["MinPoint"], f,
                                                                           strict=True)],
                           "MaxPoint": [int(v) // int(g) for v, g in zip(ext["MaxPoint"], f,
                                                                           strict=True)]}
                    with dst._commit_lock:
                        cur_ext = dst.extents_at(dst_ctx)
                        if cur_ext is not None:
                            lvl = self._grow(cur_ext, lvl["MinPoint"], lvl["MaxPoint"]) \
                                if bbox is not None else lvl
                        dst.put_property(dst_ctx, _EXTENTS, lvl)
                src, src_ctx = dst, dst_ctx
        except BaseException:
            if any(len(c) for c in cleared.values()):
                with self._commit_lock, self.store.batch(ctx) as b:
                    for t, c in cleared.items():
                        for kk in block_tkeys(c, DIRTY_CLASS, t):
                            b.put(kk, b"")
            raise

    def _default_levels(self, ext: dict[str, list[int]] | None,
                        factors: tuple[int, int, int]) -> int:
        """Levels that shrink the extents ``ext`` to one block (at least 1)."""
        if ext is None:
            return 1
        bs = np.asarray(self.block_size, dtype=np.int64)
        span = (np.asarray(ext["MaxPoint"]) // bs - np.asarray(ext["MinPoint"]) // bs
                + 1)[np.asarray(factors) == 2].max()
        return max(1, int(np.ceil(np.log2(max(int(span), 1)))))

    def _level_ctx(self, dst: ImageBlk, ctx: VersionedCtx) -> VersionedCtx:
        """``ctx`` (node, user, app, locked-node permission) for level instance ``dst``."""
        out = self.manager.context(dst, ctx.node, ctx.user, ctx.app)
        out.allow_locked = ctx.allow_locked
        return out

    def _parent_batch(self, factors: tuple[int, int, int]) -> int:
        """Parent blocks built per batch: their decoded children fill about
        :data:`_PYRAMID_BATCH` bytes (1..64 parents), which bounds a pyramid step's memory
        (the children, the mean's wider copy of them, the parents: about 4x that)."""
        child = (int(np.prod(self.block_size)) * self.voxel.itemsize
                 * factors[0] * factors[1] * factors[2])
        return max(1, min(64, _PYRAMID_BATCH // child))

    def _downres_parents(self, src: ImageBlk, src_ctx: VersionedCtx, dst: ImageBlk,
                         dst_ctx: VersionedCtx, parents: np.ndarray, t: int,
                         factors: tuple[int, int, int],
                         clip: tuple[Sequence[int], Sequence[int]] | None = None) -> int:
        """Build the blocks ``parents`` (``(N, 3)`` x, y, z) of level ``dst`` from their
        children in ``src`` (missing children count as Background; a parent with no
        stored child is not written) at time sample ``t``; the number written. ``clip``:
        the inclusive voxel box the written blocks may grow ``dst``'s extents to (default:
        the blocks' bounds)."""
        with _BIG_WRITES:  # one batch at a time per process, as big writes (parallel
            # pyramid tasks each held their batch's children, copies and parents)
            return self._downres_batch(src, src_ctx, dst, dst_ctx, parents, t, factors, clip)

    def _downres_batch(self, src: ImageBlk, src_ctx: VersionedCtx, dst: ImageBlk,
                       dst_ctx: VersionedCtx, parents: np.ndarray, t: int,
                       factors: tuple[int, int, int],
                       clip: tuple[Sequence[int], Sequence[int]] | None) -> int:
        # see _downres_parents
        fvec = np.asarray(factors, dtype=np.int64)
        offs = np.array([[x, y, z] for z in range(factors[2]) for y in (0, 1)
                         for x in (0, 1)], dtype=np.int64)
        nk = len(offs)
        bz, by, bx = self.bshape
        kids = (parents[:, None, :] * fvec + offs[None]).reshape(-1, 3)
        raws = src.store.get_many(src_ctx, block_tkeys(kids, t=t))
        have = np.array([r is not None for r in raws]).reshape(len(parents), nk)
        keep = have.any(axis=1)
        if not keep.any():
            return 0
        arr = self.empty((len(parents), factors[2] * bz, 2 * by, 2 * bx))
        for j, raw in enumerate(raws):
            if raw is None:
                continue
            p, q = divmod(j, nk)
            ox, oy, oz = offs[q]
            arr[p, oz * bz:(oz + 1) * bz, oy * by:(oy + 1) * by,
                ox * bx:(ox + 1) * bx] = src.decode_block(raw)
        down = self.reduce(arr[keep], factors)
        del arr
        pc = parents[keep]
        grow = None
        if clip is not None:
            b = np.asarray(self.block_size, dtype=np.int64)
            lo = np.maximum(pc.min(axis=0) * b, np.asarray(clip[0]))
            hi = np.minimum((pc.max(axis=0) + 1) * b - 1, np.asarray(clip[1]))
            grow = (lo.tolist(), np.maximum(hi, lo).tolist())
        vals = [dst.encode_block(down[j]) for j in range(len(pc))]
        with dst.lock_blocks(pc):
            dst.store_blocks(dst_ctx, pc, vals, mark_dirty=False, grow=grow, t=t)
        return len(pc)

    def pyramid_plan(self, ctx: VersionedCtx, box: Sequence[int]) -> PyramidPlan:
        """The levels ``POST downres`` would build now (until the extents fit one block;
        2x2x2, or the 2x2x1 of an existing anisotropic ``NAME_1``). The levels of time
        sample 0 (what DVID's API writes)."""
        ctx.check_writable()
        first = self.manager.find_instance(self.repo, f"{self.meta.name}_1")
        aniso = isinstance(first, ImageBlk) and first.meta.config.get("Downres") == "xy"
        factors = (2, 2, 1) if aniso else (2, 2, 2)
        levels = self._default_levels(self.extents_at(ctx), factors)
        return PyramidPlan(levels, self.block_size, factors)

    def prepare_pyramid(self, ctx: VersionedCtx, plan: PyramidPlan) -> None:
        """The level instances ``NAME_1``..``NAME_{levels}``, made when missing."""
        with self._levels_lock:  # one creator of the level instances at a time
            for k in range(1, plan.levels + 1):
                self.level_instance(ctx, k, plan.factors)

    def build_pyramid_blocks(self, ctx: VersionedCtx, level: int, lo: Sequence[int],
                             hi: Sequence[int]) -> int:
        """Blocks ``lo``..``hi`` of ``NAME_{level}`` (time sample 0) from the level below,
        the mean (``uint64blk``: the mode) as ``POST downres`` computes them, in batches
        of :meth:`_parent_batch`; the level's extents grow by the voxels of scale 0's
        extents that the blocks cover. 400 when a level instance is missing or not this
        type's."""
        ctx.check_writable()
        if level < 1:
            raise BadRequest(f"pyramid level {level}: levels start at 1")
        # (made by whichever process of the server prepared the plan)
        lvl1 = self.manager.find_instance(self.repo, f"{self.meta.name}_1")
        if not isinstance(lvl1, ImageBlk):
            raise BadRequest(f"no pyramid level instance {self.meta.name}_1: plan the "
                             "pyramid first")
        factors = (2, 2, 1) if lvl1.meta.config.get("Downres") == "xy" else (2, 2, 2)
        for k in (level - 1, level):
            if k and self.manager.find_instance(self.repo, f"{self.meta.name}_{k}") is None:
                raise BadRequest(f"no pyramid level instance {self.meta.name}_{k}")
        src = self if level == 1 else self.level_instance(ctx, level - 1, factors)
        dst = self.level_instance(ctx, level, factors)
        src_ctx = ctx if level == 1 else self._level_ctx(src, ctx)
        dst_ctx = self._level_ctx(dst, ctx)
        ext = self.extents_at(ctx)
        clip = None
        if ext is not None:
            f = [g ** level for g in factors]
            clip = ([int(v) // g for v, g in zip(ext["MinPoint"], f, strict=True)],
                    [int(v) // g for v, g in zip(ext["MaxPoint"], f, strict=True)])
        parents = blocks_between(lo, hi)
        step = self._parent_batch(factors)
        written = 0
        for i in range(0, len(parents), step):
            written += self._downres_parents(src, src_ctx, dst, dst_ctx, parents[i:i + step],
                                             0, factors, clip)
        return written

    def _job_thread(self, ctx: VersionedCtx, levels: int | None, bbox: Box | None,
                    full: bool, anisotropic: bool = False) -> None:
        job = self._job
        assert job is not None
        end: dict[str, Any] = {"State": "done"}
        try:
            self.run_downres(ctx, levels, bbox, full, anisotropic)
        except _Cancelled:
            end = {"State": "cancelled"}
        except DvidError as e:
            end = {"State": "error", "Error": str(e)}
        except Exception as e:  # background job: report, never crash the server
            end = {"State": "error", "Error": repr(e)}
        finally:
            self._job = None
            job.finish(**end, Finished=time.time())

    def start_downres(self, ctx: VersionedCtx, levels: int | None = None,
                      bbox: Box | None = None, full: bool = False, anisotropic: bool = False,
                      wait: bool = False) -> dict[str, Any]:
        """Start a downres job (400 when one is running or the version is locked) in a
        background thread, or run it here with ``wait``; the job status."""
        ctx.check_writable()
        with self._levels_lock:
            if self._job is not None:
                raise BadRequest(f"a downres of {self.meta.name!r} is already running")
            try:
                self._job = self._jobs().start(
                    self.meta.data_uuid,
                    {"Level": 0, "Levels": levels or 0, "BlocksDone": 0, "BlocksTotal": 0,
                     "Error": "", "Started": time.time(), "UUID": ctx.node.uuid},
                    exclusive=True, refuse=lambda _: f"a downres of {self.meta.name!r} is "
                                                     "already running")
            except JobRunning as e:
                raise BadRequest(str(e)) from None
        if wait:
            self._job_thread(ctx, levels, bbox, full, anisotropic)
            return self.downres_status()
        t = threading.Thread(target=self._job_thread,
                             args=(ctx, levels, bbox, full, anisotropic),
                             name=f"downres-{self.meta.name}", daemon=True)
        t.start()
        return self.downres_status()

    @endpoint("POST", "downres", "Build the 2x, 4x, ... pyramid into NAME_1, NAME_2, ...",
              query=(Q("levels", "count", "number of levels (1..31; default: until the "
                                          "extents fit one block)"),
                     Q("bbox", "str", "x0,y0,z0,x1,y1,z1 voxels (exclusive end): every "
                                      "stored block in the box instead of the dirty ones"),
                     Q("full", "bool", "every stored block instead of the dirty ones"),
                     Q("anisotropic", "bool", "halve x and y only (z kept)"),
                     Q("wait", "bool", "answer when done (200) instead of at once (202)")),
              returns={200: JSON, 202: JSON})
    def _post_downres(self, call: Call) -> Response:
        levels = call.params["levels"]
        if levels is not None and not 1 <= levels <= 31:
            raise BadRequest(f"levels must be 1..31, got {levels}")
        bbox = None
        if call.params["bbox"]:
            v = _ints(call.params["bbox"], "bbox", 6)
            _coords_ok(v)
            bbox = Box.from_bounds(v[:3], v[3:])
            if bbox.is_empty:
                raise BadRequest(f"bbox {v} is empty (x0,y0,z0,x1,y1,z1 with x1 > x0 ...)")
        wait = bool(call.params["wait"])
        st = self.start_downres(call.ctx, levels, bbox, bool(call.params["full"]),
                                bool(call.params["anisotropic"]), wait)
        if wait:
            if st["State"] == "error":
                raise BadRequest(f"downres failed: {st['Error']}")
            return Response(_json(st), media_type="application/json")
        return Response(_json(st), status_code=202, media_type="application/json")

    @endpoint("GET", "downres-status", "State of the current or last downres job")
    def _get_downres_status(self, call: Call) -> Response:
        return Response(_json(self.downres_status(call.ctx)), media_type="application/json")


class _Cancelled(Exception):
    """A downres job stopped by :meth:`ImageBlk.cancel_downres`."""


class _BlockBatches:
    """Encoded blocks of one write, committed in batches of about ``writeBatchBytes``.

    Each block is queued with its dirty marker (unless ``mark_dirty`` is false); a batch
    is handed to a commit thread (:func:`_commit_pool`) as soon as its values reach the
    limit, so the next batch is encoded while the last one is written (LMDB's commits
    release the GIL). At most one batch is in flight: before a batch is handed over, the
    previous one must have committed, and its error, if any, is raised here, so batches
    commit in order and none commits after one failed. :meth:`flush` commits the rest and
    returns only once everything queued is committed; :meth:`wait` (for error paths) waits
    for the batch in flight without committing more. Encoded values are not kept once
    committed, so a write holds at most two batches of them.

    Commits run under the instance's commit lock; the first batch also grows the extents
    by the voxel box ``grow`` (read and written under that lock, so concurrent writers
    never lose each other's growth). ``held``: the writer already holds that lock (on a
    shared store, the cross-server instance lock, for the whole write) and waits for every
    commit before releasing it, so the commit thread commits under the writer's hold
    instead of taking the lock, which it could not (it is the writer thread's). On a
    shared store without ``held``, batches commit in the writer's thread.
    """

    def __init__(self, inst: ImageBlk, ctx: VersionedCtx,
                 grow: tuple[Sequence[int], Sequence[int]] | None, mark_dirty: bool,
                 held: bool = False) -> None:
        self.inst = inst
        self.ctx = ctx
        self.grow = grow
        self.mark_dirty = mark_dirty
        self.held = held
        self.limit = inst.manager.settings.write_batch_bytes
        self.batch: VersionedBatch | None = None
        self.nbytes = 0
        self.pending: Future[None] | None = None

    def put(self, tk: bytes, value: bytes) -> None:
        """Queue block TKey ``tk`` with its stored ``value``."""
        if self.batch is None:
            self.batch = self.inst.store.batch(self.ctx)
        self.batch.put(tk, value)
        if self.mark_dirty:
            self.batch.put(bytes((tk[0] + 1,)) + tk[1:], b"")  # 23 -> 24, 25 -> 26
        self.nbytes += len(value) + 2 * len(tk)
        if self.nbytes >= self.limit:
            self._hand_over()

    def _hand_over(self) -> None:
        b = self.batch
        if b is None:
            return
        self.batch, self.nbytes = None, 0
        self.wait()
        if self.inst.shared_store and not self.held:
            # a commit thread could not take the cross-server instance lock the writer's
            # thread may hold: commit here
            self._commit(b)
            return
        self.pending = _commit_pool().submit(self._commit, b)

    def _commit(self, b: VersionedBatch) -> None:
        inst = self.inst
        with contextlib.nullcontext() if self.held else inst._commit_lock:
            if self.grow is not None:
                ext = inst._grow(inst.extents_at(self.ctx), self.grow[0], self.grow[1])
                b.put(tkey(1, _EXTENTS.encode() + b"\x00"),
                      f'{{"MinPoint":{ext["MinPoint"]},"MaxPoint":{ext["MaxPoint"]}}}'
                      .encode())
                self.grow = None
            b.commit()

    def wait(self) -> None:
        """Wait for the batch in flight, if any; raises its commit's error."""
        f, self.pending = self.pending, None
        if f is not None:
            f.result()

    def flush(self) -> None:
        """Commit what is queued (with the extents when it is the first batch) and wait
        until every batch handed over is committed."""
        self._hand_over()
        self.wait()


def _block_stream(gen: Callable[[], Iterator[bytes | memoryview]], nblocks: int,
                  mode: str) -> Response:
    """The answer of a block stream endpoint (declared ``inline``): up to
    :data:`_SMALL_SUBVOL` stored blocks passed through as stored are read and joined here,
    on the event loop (a few point reads: neuroglancer asks for one block at a time);
    decoded blocks (``compression=uncompressed``) are made in a worker thread, and more
    blocks are streamed from one."""
    if nblocks <= _SMALL_SUBVOL:
        if mode != "uncompressed":
            return Response(b"".join(gen()), media_type="application/octet-stream")
        return Deferred(lambda: Response(b"".join(gen()),
                                         media_type="application/octet-stream"))
    return StreamingResponse(gen(), media_type="application/octet-stream")


def _image_response(img: np.ndarray, kind: str, quality: int) -> Response:
    """Encode a 2-D uint8 image as ``kind`` (from :func:`_parse_format`)."""
    img = np.ascontiguousarray(img)
    try:
        if kind == "jpeg":
            return Response(imagecodec.encode_jpeg(img, quality), media_type="image/jpeg")
        if kind == "png":
            return Response(imagecodec.encode_png(img), media_type="image/png")
    except ValueError as e:
        raise BadRequest(f"cannot encode image: {e}") from None
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=kind.upper())
    return Response(buf.getvalue(), media_type=f"image/{kind}")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


_URL = "github.com/janelia-flyem/dvid/datatype/imageblk/"


@register_datatype
class Uint8Blk(ImageBlk):
    """uint8blk: 8-bit grayscale (the only imageblk type with JPEG)."""

    voxel = UINT8
    type_name = "uint8blk"
    type_url = _URL + "uint8.go"
    type_version = "0.2"


@register_datatype
class Uint16Blk(ImageBlk):
    """uint16blk: 16-bit intensities."""

    voxel = UINT16
    type_name = "uint16blk"
    type_url = _URL + "uint16.go"
    type_version = "0.1"


@register_datatype
class Uint32Blk(ImageBlk):
    """uint32blk: 32-bit intensities."""

    voxel = UINT32
    type_name = "uint32blk"
    type_url = _URL + "uint32.go"
    type_version = "0.1"


@register_datatype
class Uint64Blk(ImageBlk):
    """uint64blk: 64-bit values (labels: the pyramid takes the mode)."""

    voxel = UINT64
    type_name = "uint64blk"
    type_url = _URL + "uint64.go"
    type_version = "0.1"


@register_datatype
class Float32Blk(ImageBlk):
    """float32blk: 32-bit IEEE floats."""

    voxel = FLOAT32
    type_name = "float32blk"
    type_url = _URL + "float32.go"
    type_version = "0.1"


@register_datatype
class Rgba8Blk(ImageBlk):
    """rgba8blk: 8-bit red, green, blue, alpha."""

    voxel = RGBA8
    type_name = "rgba8blk"
    type_url = _URL + "rgba8.go"
    type_version = "0.2"


#: every imageblk type by name
IMAGEBLK_TYPES: dict[str, type[ImageBlk]] = {c.type_name: c for c in (
    Uint8Blk, Uint16Blk, Uint32Blk, Uint64Blk, Float32Blk, Rgba8Blk)}

__all__ = ["FLOAT32", "IMAGEBLK_TYPES", "RGBA8", "UINT8", "UINT16", "UINT32", "UINT64",
           "Float32Blk", "ImageBlk", "Rgba8Blk", "Uint8Blk", "Uint16Blk", "Uint32Blk",
           "Uint64Blk", "VoxelType", "block_head", "block_tkey", "block_tkeys",
           "decode_block_tkey"]
