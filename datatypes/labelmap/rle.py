"""Sparse-volume encodings of the labelmap datatype (spec §9.16.3-§9.16.6, §9.16.9 keys).

* Legacy RLE (``format=rles``, split bodies): 12-byte header + int32 (x, y, z, length) spans.
* Streaming RLE (``format=srles``): the span records only.
* Coarse sparse volume (``/sparsevol-coarse``): RLE header + block-coordinate spans merged
  into maximal X runs, sorted z, y, x; and the ``/sparsevols-coarse`` stream record.
* Binary block masks (``format=blocks``).
* Label-index block-coordinate keys (21-bit sign-magnitude fields packed in a uint64).

Spans are numpy ``int32`` arrays of shape (S, 4) with columns ``x, y, z, length``; a span
covers ``length`` voxels from (x, y, z) going +X.  All functions are vectorized.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np

from datatypes.labelmap.block_codec import SUBBLOCK_SIZE, SUBBLOCK_VOXELS, to_subblock_order

__all__ = [
    "INDEX_BLOCK_MAX",
    "RLE_HEADER_SIZE",
    "block_coords_to_spans",
    "decode_binary_blocks",
    "decode_block_coord",
    "decode_block_coords",
    "decode_rles",
    "decode_sparsevol_coarse",
    "decode_srles",
    "encode_binary_block",
    "encode_binary_blocks",
    "encode_block_coord",
    "encode_block_coords",
    "encode_rles",
    "encode_sparsevol_coarse",
    "encode_sparsevols_coarse_record",
    "encode_srles",
    "mask_to_spans",
    "normalize_spans",
    "spans_to_coords",
    "spans_to_mask",
    "spans_voxel_count",
]

RLE_HEADER_SIZE = 12
_RLE_HEAD = bytes((0, 3, 0, 0))  # descriptor 0 (binary mask), 3 dims, runs along X, reserved
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1

Offset = Sequence[int] | np.ndarray


# --------------------------------------------------------------------------------------------
# Span arrays
# --------------------------------------------------------------------------------------------


def _as_spans(spans: np.ndarray) -> np.ndarray:
    """Validate an (S, 4) span array and return it as int32 (raises ValueError)."""
    s = np.asarray(spans)
    if s.size == 0:
        return np.zeros((0, 4), dtype=np.int32)
    if s.ndim != 2 or s.shape[1] != 4:
        raise ValueError(f"spans must have shape (S, 4) [x, y, z, length], got {s.shape}")
    if not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"spans must be integers, got {s.dtype}")
    if s.dtype != np.int32:
        if s.min() < _I32_MIN or s.max() > _I32_MAX:
            raise ValueError("span values do not fit in int32")
        s = s.astype(np.int32)
    return s


def spans_voxel_count(spans: np.ndarray) -> int:
    """Total number of voxels covered by the spans (sum of lengths; overlaps counted twice)."""
    s = _as_spans(spans)
    return int(s[:, 3].astype(np.int64).sum())


def normalize_spans(spans: np.ndarray) -> np.ndarray:
    """Sort spans by (z, y, x) and merge overlapping or X-adjacent spans on the same row.

    Zero- or negative-length spans are dropped.  The result is the canonical set of maximal
    runs covering exactly the same voxels.
    """
    s = _as_spans(spans).astype(np.int64)
    s = s[s[:, 3] > 0]
    if s.shape[0] == 0:
        return np.zeros((0, 4), dtype=np.int32)
    order = np.lexsort((s[:, 0], s[:, 1], s[:, 2]))
    s = s[order]
    x0, y, z = s[:, 0], s[:, 1], s[:, 2]
    x1 = x0 + s[:, 3]  # exclusive end
    row_new = np.ones(s.shape[0], dtype=bool)
    row_new[1:] = (y[1:] != y[:-1]) | (z[1:] != z[:-1])
    # Running max of end within each row (ends can nest); a span starts a new run when its
    # start is beyond every earlier end in its row.
    row_id = np.cumsum(row_new) - 1
    big = (row_id << 34).astype(np.int64)  # rows are separated by an offset larger than any x
    run_end = np.maximum.accumulate(x1 + big) - big
    starts_new = row_new.copy()
    starts_new[1:] |= x0[1:] > run_end[:-1]
    run_idx = np.flatnonzero(starts_new)
    ends = np.maximum.reduceat(x1, run_idx)
    out = np.empty((run_idx.size, 4), dtype=np.int64)
    out[:, 0] = x0[run_idx]
    out[:, 1] = y[run_idx]
    out[:, 2] = z[run_idx]
    out[:, 3] = ends - x0[run_idx]
    return _as_spans(out)


def mask_to_spans(mask: np.ndarray, offset_xyz: Offset = (0, 0, 0)) -> np.ndarray:
    """Runs along X of a boolean (nz, ny, nx) mask, as (S, 4) int32 spans sorted z, y, x.

    ``offset_xyz`` is added to the voxel coordinates (x, y, z order).  Spans are maximal
    within the mask (they never continue across rows).  An all-False mask → (0, 4).
    Raises ``ValueError`` if the mask is not 3-D or coordinates overflow int32.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 3:
        raise ValueError(f"mask must be 3-D (nz, ny, nx), got shape {m.shape}")
    nz, ny, nx = m.shape
    if m.size == 0:
        return np.zeros((0, 4), dtype=np.int32)
    w = nx + 1
    # Each row is followed by one False pad so runs never wrap; diff on the flat array.
    padded = np.zeros((nz * ny, w + 1), dtype=np.int8)
    padded[:, 1 : nx + 1] = m.reshape(nz * ny, nx)
    d = np.diff(padded.reshape(-1))
    starts = np.flatnonzero(d == 1)  # index of the voxel in padded coords minus 1
    ends = np.flatnonzero(d == -1)
    row, x = np.divmod(starts, w + 1)
    length = ends - starts
    z, y = np.divmod(row, ny)
    ox, oy, oz = (int(v) for v in offset_xyz)
    out = np.empty((starts.size, 4), dtype=np.int64)
    out[:, 0] = x + ox
    out[:, 1] = y + oy
    out[:, 2] = z + oz
    out[:, 3] = length
    return _as_spans(out)


def spans_to_mask(
    spans: np.ndarray, shape: Sequence[int], offset_xyz: Offset = (0, 0, 0)
) -> np.ndarray:
    """Rasterize spans into a boolean (nz, ny, nx) mask whose voxel (0,0,0) is at offset_xyz.

    Spans (or the parts of spans) outside the volume are ignored; overlapping spans are
    fine.  Non-positive lengths cover nothing.
    """
    nz, ny, nx = (int(d) for d in shape)
    s = _as_spans(spans).astype(np.int64)
    out = np.zeros((nz, ny, nx), dtype=bool)
    if s.shape[0] == 0 or out.size == 0:
        return out
    ox, oy, oz = (int(v) for v in offset_xyz)
    x0 = s[:, 0] - ox
    y = s[:, 1] - oy
    z = s[:, 2] - oz
    x1 = x0 + s[:, 3]
    x0 = np.clip(x0, 0, nx)
    x1 = np.clip(x1, 0, nx)
    keep = (y >= 0) & (y < ny) & (z >= 0) & (z < nz) & (x1 > x0)
    if not keep.any():
        return out
    row = (z[keep] * ny + y[keep]) * (nx + 1)
    size = nz * ny * (nx + 1)
    delta = np.bincount(row + x0[keep], minlength=size) - np.bincount(
        row + x1[keep], minlength=size
    )
    cover = np.cumsum(delta[:size]).reshape(nz * ny, nx + 1)[:, :nx] > 0
    return cover.reshape(nz, ny, nx)


def spans_to_coords(spans: np.ndarray) -> np.ndarray:
    """Expand spans to an (V, 3) int32 array of voxel coordinates in **x, y, z** column order.

    Voxels are listed span by span, X increasing within a span.  Overlapping spans produce
    repeated coordinates; non-positive lengths produce nothing.
    """
    s = _as_spans(spans)
    lengths = np.maximum(s[:, 3].astype(np.int64), 0)
    total = int(lengths.sum())
    out = np.empty((total, 3), dtype=np.int32)
    if total == 0:
        return out
    rep = np.repeat(np.arange(s.shape[0]), lengths)
    start = np.cumsum(lengths) - lengths
    step = np.arange(total, dtype=np.int64) - start[rep]
    xs = s[rep, 0].astype(np.int64) + step
    if xs.max() > _I32_MAX:
        raise ValueError("span end overflows int32")
    out[:, 0] = xs
    out[:, 1] = s[rep, 1]
    out[:, 2] = s[rep, 2]
    return out


# --------------------------------------------------------------------------------------------
# Legacy RLE / streaming RLE
# --------------------------------------------------------------------------------------------


def encode_srles(spans: np.ndarray) -> bytes:
    """Streaming RLE (``format=srles``): the int32 (x, y, z, length) records, no header."""
    return _as_spans(spans).astype("<i4", copy=False).tobytes()


def decode_srles(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Parse streaming RLE records → (S, 4) int32.  Length must be a multiple of 16."""
    if len(data) % 16:
        raise ValueError(f"srles payload length {len(data)} is not a multiple of 16")
    return np.frombuffer(data, dtype="<i4").reshape(-1, 4).astype(np.int32)


def encode_rles(spans: np.ndarray) -> bytes:
    """Legacy RLE (``format=rles``): header ``[0,3,0,0] + uint32 0 + uint32 S`` then spans.

    Spans are written in the given order (callers wanting DVID-compatible sorted output
    should pass sorted spans, e.g. from :func:`mask_to_spans` or :func:`normalize_spans`).
    The voxel-count field is always 0, as DVID writes it.
    """
    s = _as_spans(spans)
    return _RLE_HEAD + struct.pack("<II", 0, s.shape[0]) + s.astype("<i4", copy=False).tobytes()


def decode_rles(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Parse a legacy RLE payload → (S, 4) int32 spans.

    Like DVID, requires payload descriptor byte 0 == 0 and ignores bytes 1-7 (dims, run
    dimension, voxel count).  The payload must hold exactly the declared S spans: too short
    or trailing bytes → ``ValueError``.
    """
    n = len(data)
    if n < RLE_HEADER_SIZE:
        raise ValueError(f"RLE payload truncated: {n} bytes, need a {RLE_HEADER_SIZE}-byte header")
    if data[0] != 0:
        raise ValueError(
            f"RLE payload descriptor {data[0]} not supported (only 0 = binary mask is)"
        )
    (count,) = struct.unpack_from("<I", data, 8)
    need = RLE_HEADER_SIZE + 16 * count
    if n != need:
        raise ValueError(f"RLE payload declares {count} spans ({need} bytes) but has {n} bytes")
    return np.frombuffer(data, dtype="<i4", offset=RLE_HEADER_SIZE).reshape(-1, 4).astype(np.int32)


# --------------------------------------------------------------------------------------------
# Coarse sparse volumes
# --------------------------------------------------------------------------------------------


def block_coords_to_spans(block_coords: np.ndarray) -> np.ndarray:
    """Block coordinates (B, 3) in x, y, z → spans sorted z, y, x merged into maximal X runs.

    Duplicate coordinates are collapsed.  Empty input → (0, 4).
    """
    c = np.asarray(block_coords)
    if c.size == 0:
        return np.zeros((0, 4), dtype=np.int32)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"block coordinates must have shape (B, 3) [x, y, z], got {c.shape}")
    spans = np.ones((c.shape[0], 4), dtype=np.int64)
    spans[:, :3] = c
    return normalize_spans(spans)


def encode_sparsevol_coarse(block_coords: np.ndarray) -> bytes:
    """``/sparsevol-coarse`` body: RLE header + merged block-coordinate spans (sorted z,y,x)."""
    return encode_rles(block_coords_to_spans(block_coords))


def decode_sparsevol_coarse(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Parse a ``/sparsevol-coarse`` body → (S, 4) int32 block spans (same rules as rles)."""
    return decode_rles(data)


def encode_sparsevols_coarse_record(label: int, block_coords: np.ndarray) -> bytes:
    """One ``/sparsevols-coarse`` stream record: ``uint64 label, int32 S, S spans``."""
    spans = block_coords_to_spans(block_coords)
    return struct.pack("<Qi", int(label), spans.shape[0]) + spans.astype("<i4").tobytes()


# --------------------------------------------------------------------------------------------
# Binary block masks (format=blocks)
# --------------------------------------------------------------------------------------------


def encode_binary_block(offset_xyz: Offset, mask: np.ndarray) -> bytes:
    """One block of the ``format=blocks`` stream (no global header).

    ``mask`` is the block's boolean (nz, ny, nx) foreground (dims multiples of 8) and
    ``offset_xyz`` the voxel coordinate of its first voxel.  Writes ``int32 x0, y0, z0``,
    the block flag (0 all background / 1 all foreground / 2 mixed) and, if mixed, per
    sub-block a flag and, for mixed sub-blocks, 64 bytes of mask bits LSB-first.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 3 or any(d <= 0 or d % SUBBLOCK_SIZE for d in m.shape):
        raise ValueError(f"block mask dims must be positive multiples of 8, got {m.shape}")
    ox, oy, oz = (int(v) for v in offset_xyz)
    head = struct.pack("<iii", ox, oy, oz)
    sb = to_subblock_order(m)  # (Nsb, 512) bool
    cnt = sb.sum(axis=1)
    if not cnt.any():
        return head + b"\x00"
    if (cnt == SUBBLOCK_VOXELS).all():
        return head + b"\x01"
    flags = np.where(cnt == 0, 0, np.where(cnt == SUBBLOCK_VOXELS, 1, 2)).astype(np.uint8)
    mixed = np.flatnonzero(flags == 2)
    sizes = np.where(flags == 2, 65, 1)
    pos = np.cumsum(sizes) - sizes
    body = np.empty(int(sizes.sum()), dtype=np.uint8)
    body[pos] = flags
    packed = np.packbits(sb[mixed], axis=1, bitorder="little")
    body[pos[mixed][:, None] + 1 + np.arange(64)] = packed
    return head + b"\x02" + body.tobytes()


def encode_binary_blocks(label: int, blocks: Iterable[tuple[Offset, np.ndarray]]) -> bytes:
    """The full ``format=blocks`` stream for ``label``.

    ``blocks`` yields ``(offset_xyz, mask)`` pairs; blocks with no foreground voxel are
    skipped (DVID only emits blocks touched by the label), the rest are written sorted by
    (z, y, x) of their offsets.  The global header ``uint32 gx, gy, gz, uint64 label`` is
    written only if at least one block is emitted (else the result is ``b""``).  All masks
    must have the same shape.
    """
    items = []
    shape = None
    for off, mask in blocks:
        m = np.asarray(mask, dtype=bool)
        if shape is None:
            shape = m.shape
        elif m.shape != shape:
            raise ValueError(f"all block masks must have the same shape: {m.shape} != {shape}")
        if m.any():
            ox, oy, oz = (int(v) for v in off)
            items.append(((oz, oy, ox), m))
    if not items:
        return b""
    assert shape is not None
    items.sort(key=lambda it: it[0])
    nz, ny, nx = shape
    parts = [struct.pack("<IIIQ", nx // 8, ny // 8, nz // 8, int(label))]
    parts.extend(encode_binary_block((ox, oy, oz), m) for (oz, oy, ox), m in items)
    return b"".join(parts)


def decode_binary_blocks(
    data: bytes | bytearray | memoryview,
) -> tuple[tuple[int, int, int], int, list[tuple[tuple[int, int, int], np.ndarray]]]:
    """Parse a ``format=blocks`` stream → ``((gx, gy, gz), label, [(offset_xyz, mask), …])``.

    Masks are boolean (nz, ny, nx).  Empty input → ``((0, 0, 0), 0, [])``.  Raises
    ``ValueError`` on truncation or bad flags.  (Loops per block and sub-block; intended
    for tests and small payloads.)
    """
    buf = bytes(data)
    if not buf:
        return (0, 0, 0), 0, []
    if len(buf) < 20:
        raise ValueError("binary blocks header truncated")
    gx, gy, gz, label = struct.unpack_from("<IIIQ", buf, 0)
    if not all(1 <= g <= 128 for g in (gx, gy, gz)):
        raise ValueError(f"binary blocks header has invalid grid {(gx, gy, gz)}")
    nsb = gx * gy * gz
    shape = (gz * 8, gy * 8, gx * 8)
    pos = 20
    out = []
    while pos < len(buf):
        if pos + 13 > len(buf):
            raise ValueError("binary block header truncated")
        ox, oy, oz = struct.unpack_from("<iii", buf, pos)
        flag = buf[pos + 12]
        pos += 13
        if flag in (0, 1):
            out.append(((ox, oy, oz), np.full(shape, flag == 1, dtype=bool)))
            continue
        if flag != 2:
            raise ValueError(f"bad binary block flag {flag}")
        sb = np.zeros((nsb, SUBBLOCK_VOXELS), dtype=bool)
        for i in range(nsb):
            if pos >= len(buf):
                raise ValueError("binary block sub-block data truncated")
            f = buf[pos]
            pos += 1
            if f == 1:
                sb[i] = True
            elif f == 2:
                if pos + 64 > len(buf):
                    raise ValueError("binary block sub-block mask truncated")
                bits = np.frombuffer(buf, dtype=np.uint8, count=64, offset=pos)
                sb[i] = np.unpackbits(bits, bitorder="little").astype(bool)
                pos += 64
            elif f != 0:
                raise ValueError(f"bad binary sub-block flag {f}")
        g = sb.reshape(gz, gy, gx, 8, 8, 8).transpose(0, 3, 1, 4, 2, 5).reshape(shape)
        out.append(((ox, oy, oz), g))
    return (gx, gy, gz), label, out


# --------------------------------------------------------------------------------------------
# Label-index block-coordinate keys (§9.16.9)
# --------------------------------------------------------------------------------------------

_MAG = 0xFFFFF
#: largest |block coordinate| a label-index block key holds (20-bit magnitude)
INDEX_BLOCK_MAX = _MAG
_SIGN = 0x100000
_FIELD = 0x1FFFFF


def encode_block_coord(x: int, y: int, z: int) -> int:
    """Pack a signed block coordinate into the LabelIndex ``blocks`` map key.

    Three 21-bit sign-magnitude fields: x in bits 0-20, y in 21-41, z in 42-62 (bit 20 of
    each field is the sign).  ``|v|`` must be <= 2**20-1 (DVID silently truncates larger
    magnitudes; we raise ``ValueError`` instead of producing colliding keys).
    """
    key = 0
    for shift, v in ((42, int(z)), (21, int(y)), (0, int(x))):
        mag = -v if v < 0 else v
        if mag > _MAG:
            raise ValueError(f"block coordinate {v} exceeds the 20-bit magnitude of the key")
        key |= (mag | (_SIGN if v < 0 else 0)) << shift
    return key


def decode_block_coord(key: int) -> tuple[int, int, int]:
    """Inverse of :func:`encode_block_coord` → (x, y, z).  Bit 63 is ignored (as in DVID);
    a set sign bit with zero magnitude decodes to 0."""
    k = int(key)
    if not 0 <= k < 2**64:
        raise ValueError(f"block key {key} is not a uint64")
    out = []
    for shift in (0, 21, 42):
        f = (k >> shift) & _FIELD
        mag = f & _MAG
        out.append(-mag if f & _SIGN else mag)
    return out[0], out[1], out[2]


def encode_block_coords(coords: np.ndarray) -> np.ndarray:
    """Vectorized :func:`encode_block_coord`: (B, 3) x, y, z → (B,) uint64 keys."""
    c = np.asarray(coords)
    if c.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if c.ndim != 2 or c.shape[1] != 3 or not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"coords must be an integer (B, 3) [x, y, z] array, got {c.shape}")
    c = c.astype(np.int64)
    mag = np.abs(c)
    if mag.max() > _MAG:
        raise ValueError("block coordinate exceeds the 20-bit magnitude of the key")
    field = (mag | np.where(c < 0, _SIGN, 0)).astype(np.uint64)
    return field[:, 0] | (field[:, 1] << np.uint64(21)) | (field[:, 2] << np.uint64(42))


def decode_block_coords(keys: np.ndarray) -> np.ndarray:
    """Vectorized :func:`decode_block_coord`: (B,) uint64 keys → (B, 3) int32 x, y, z."""
    k = np.asarray(keys, dtype=np.uint64).reshape(-1)
    out = np.empty((k.size, 3), dtype=np.int32)
    for col, shift in enumerate((0, 21, 42)):
        f = ((k >> np.uint64(shift)) & np.uint64(_FIELD)).astype(np.int64)
        mag = f & _MAG
        out[:, col] = np.where(f & _SIGN, -mag, mag)
    return out
