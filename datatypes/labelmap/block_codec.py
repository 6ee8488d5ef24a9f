"""DVID compressed label Block codec (``labels.Block`` serialization, spec §9.16.1).

Layout (all integers little-endian)::

    uint32 gx, gy, gz            sub-blocks per dimension (block is 8·gx x 8·gy x 8·gz voxels)
    uint32 N                     entries in the block label list (N >= 1)
    uint64 labels[N]             may hold duplicates / stale entries; N == 1 => solid block, end
    uint16 Ns[gx·gy·gz]          distinct labels per 8³ sub-block (0 => all voxels 0)
    uint32 idx[ΣNs]              per sub-block, Ns indices into labels[]
    packed values                per sub-block with Ns >= 2: 512 values of ceil(log2 Ns) bits,
                                 MSB-first, voxel order z,y,x; each sub-block byte-aligned

Sub-blocks are numbered ``sb = sz·gx·gy + sy·gx + sx`` (x fastest).

Two implementations produce the same bytes and accept the same inputs: the compiled kernels of
``datatypes/labelmap/_block_codec_c.c`` (built by ``pip install``; the GIL is released while a
block is encoded or decoded), used whenever they are importable, and the numpy reference
(:func:`encode_block_numpy`, :func:`decode_block_numpy`), vectorized so that there are no Python
loops over voxels (the only ones are over the at most nine distinct bit widths).  Setting the
environment variable ``DVIDPY_NO_EXTENSION=1`` before the import selects the numpy path.
Corrupt input found by the compiled decoder is handed to the reference, so error messages come
from one place.

Encoder choices (any valid encoding is accepted by DVID, libdvid and neuclease):

* The block label list is the *sorted* unique labels of the block, without duplicates.
* Each sub-block's index list is sorted ascending (hence sorted by label value).
* A block holding a single label is written as the 24-byte solid form.
"""

from __future__ import annotations

import os
import struct
import sys
from typing import NamedTuple

import numpy as np

__all__ = [
    "HAVE_EXTENSION",
    "MAX_BLOCK_DIM",
    "SUBBLOCK_SIZE",
    "SUBBLOCK_VOXELS",
    "SubblockTables",
    "bits_for",
    "block_labels",
    "block_shape",
    "decode_block",
    "decode_block_mask",
    "decode_block_numpy",
    "decompose_subblocks",
    "encode_block",
    "encode_block_counts",
    "encode_block_numpy",
    "encode_solid_block",
    "from_subblock_order",
    "label_counts",
    "max_serialization_size",
    "to_subblock_order",
]

try:
    if os.environ.get("DVIDPY_NO_EXTENSION") or sys.byteorder != "little":
        raise ImportError("compiled label block codec disabled")
    from datatypes.labelmap import _block_codec_c as _ext
except ImportError:  # not built (no compiler at install time) or disabled: numpy path
    _ext = None

HAVE_EXTENSION = _ext is not None
"""True when the compiled kernels are in use (see the module docstring)."""

SUBBLOCK_SIZE = 8
SUBBLOCK_VOXELS = SUBBLOCK_SIZE**3
MAX_BLOCK_DIM = 1024
_MAX_GRID = MAX_BLOCK_DIM // SUBBLOCK_SIZE  # 128 sub-blocks per dimension
_HEADER = struct.Struct("<IIII")  # gx, gy, gz, N

# _BITS_LUT[n] = bits needed to store an index for n distinct values (0 for n <= 1).
_BITS_LUT = np.zeros(SUBBLOCK_VOXELS + 1, dtype=np.int64)
_BITS_LUT[2:] = np.ceil(np.log2(np.arange(2, SUBBLOCK_VOXELS + 1))).astype(np.int64)

# Per bit width b: byte offset and in-byte bit offset of value i (i = 0..511) in an MSB-first
# stream that starts on a byte boundary.  Values of <= 9 bits straddle at most two bytes.
_VOXEL = np.arange(SUBBLOCK_VOXELS, dtype=np.int64)
_UNPACK_BYTE = {b: (_VOXEL * b) >> 3 for b in range(1, 10)}
_UNPACK_SHIFT = {b: (16 - b - ((_VOXEL * b) & 7)).astype(np.uint16) for b in range(1, 10)}
_MSB_SHIFTS = {b: np.arange(b - 1, -1, -1, dtype=np.uint16) for b in range(1, 10)}


def bits_for(n: int) -> int:
    """Bits per voxel used for a sub-block with ``n`` distinct labels.

    ``n <= 1`` → 0 (no packed data); 2 → 1; 3-4 → 2; 5-8 → 3; …; 257-512 → 9.
    """
    if n < 2:
        return 0
    return int(n - 1).bit_length()


# --------------------------------------------------------------------------------------------
# Layout helpers shared with the neuroglancer codec
# --------------------------------------------------------------------------------------------


def _as_label_volume(arr: np.ndarray, what: str = "block") -> np.ndarray:
    """Validate a 3-D integer volume and return it as uint64 (a view when already uint64)."""
    a = np.asarray(arr)
    if a.ndim != 3:
        raise ValueError(f"{what} must be 3-D (nz, ny, nx), got shape {a.shape}")
    if a.dtype != np.uint64:
        if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{what} must have an integer dtype, got {a.dtype}")
        if np.issubdtype(a.dtype, np.signedinteger) and a.size and a.min() < 0:
            raise ValueError(f"{what} contains negative labels")
        a = a.astype(np.uint64)
    return a


def to_subblock_order(arr: np.ndarray) -> np.ndarray:
    """Reorder a (nz, ny, nx) volume (dims multiples of 8) into (n_subblocks, 512).

    Rows are 8³ sub-blocks in z,y,x grid order (x fastest); within a row voxels are in
    z,y,x order (x fastest).  Always returns a new C-contiguous array.
    """
    nz, ny, nx = arr.shape
    gz, gy, gx = nz // SUBBLOCK_SIZE, ny // SUBBLOCK_SIZE, nx // SUBBLOCK_SIZE
    s = SUBBLOCK_SIZE
    t = arr.reshape(gz, s, gy, s, gx, s).transpose(0, 2, 4, 1, 3, 5)
    return np.ascontiguousarray(t).reshape(gz * gy * gx, SUBBLOCK_VOXELS)


def from_subblock_order(sb: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`to_subblock_order`: (n_subblocks, 512) rows → (nz, ny, nx) volume."""
    nz, ny, nx = shape
    s = SUBBLOCK_SIZE
    gz, gy, gx = nz // s, ny // s, nx // s
    t = sb.reshape(gz, gy, gx, s, s, s).transpose(0, 3, 1, 4, 2, 5)
    return np.ascontiguousarray(t).reshape(nz, ny, nx)


class SubblockTables(NamedTuple):
    """Per-8³-sub-block label tables of a volume (see :func:`decompose_subblocks`)."""

    labels: np.ndarray
    """Sorted unique labels of the whole volume (uint64, length N >= 1 for a non-empty input)."""
    ns: np.ndarray
    """(n_subblocks,) int64: number of distinct labels in each sub-block (>= 1)."""
    entry_label: np.ndarray
    """(Σns,) int64: per sub-block (in order), the indices into ``labels`` of its distinct
    labels, ascending (i.e. each sub-block's table is sorted by label value)."""
    local: np.ndarray
    """(n_subblocks, 512) uint16: each voxel's position within its sub-block's table."""
    counts: np.ndarray
    """(N,) uint64: voxels of each entry of ``labels``."""


def decompose_subblocks(sbv: np.ndarray) -> SubblockTables:
    """Compute per-sub-block sorted label tables and per-voxel local indices.

    ``sbv`` is a (n_subblocks, 512) uint64 array as produced by :func:`to_subblock_order`.
    Works by run-length collapsing each row (smooth label fields have few runs), so the
    sorting work is proportional to the number of runs, not voxels.
    """
    nsb = sbv.shape[0]
    flat = sbv.reshape(-1)
    m = flat.size
    brk = np.empty(m, dtype=bool)
    brk[0] = True
    np.not_equal(flat[1:], flat[:-1], out=brk[1:])
    brk[::SUBBLOCK_VOXELS] = True  # runs never cross sub-blocks
    starts = np.flatnonzero(brk)
    run_vals = flat[starts]
    labels, run_lab = np.unique(run_vals, return_inverse=True)
    n = labels.size
    run_lab = run_lab.reshape(-1).astype(np.int64, copy=False)
    run_sb = starts >> 9
    if n == 1:
        ns = np.ones(nsb, dtype=np.int64)
        entry_label = np.zeros(nsb, dtype=np.int64)
        local = np.zeros((nsb, SUBBLOCK_VOXELS), dtype=np.uint16)
        return SubblockTables(labels, ns, entry_label, local, np.array([m], dtype=np.uint64))
    key = run_sb * n + run_lab
    ukey, run_k = np.unique(key, return_inverse=True)
    k_sb = ukey // n
    entry_label = ukey - k_sb * n
    ns = np.bincount(k_sb, minlength=nsb)
    first = np.cumsum(ns) - ns
    k_local = (np.arange(ukey.size, dtype=np.int64) - first[k_sb]).astype(np.uint16)
    run_local = k_local[run_k.reshape(-1)]
    lengths = np.diff(starts, append=m)
    local = np.repeat(run_local, lengths).reshape(nsb, SUBBLOCK_VOXELS)
    counts = np.bincount(run_lab, weights=lengths, minlength=n).astype(np.uint64)
    return SubblockTables(labels, ns, entry_label, local, counts)


# --------------------------------------------------------------------------------------------
# Bit packing (MSB-first, per sub-block rows of 512 values)
# --------------------------------------------------------------------------------------------


def _pack_msb(vals: np.ndarray, b: int) -> np.ndarray:
    """Pack (G, 512) values (< 2**b) MSB-first into (G, 64·b) bytes."""
    g = vals.shape[0]
    if b == 1:
        return np.packbits(vals.astype(np.uint8, copy=False), axis=1)
    if b in (2, 4, 8):
        per = 8 // b
        v = vals.astype(np.uint8).reshape(g, SUBBLOCK_VOXELS // per, per)
        out = v[:, :, 0] << np.uint8(8 - b)
        for j in range(1, per):
            out |= v[:, :, j] << np.uint8(8 - b * (j + 1))
        return out
    bits = (vals[:, :, None] >> _MSB_SHIFTS[b]) & np.uint16(1)
    return np.packbits(bits.astype(np.uint8).reshape(g, SUBBLOCK_VOXELS * b), axis=1)


def _unpack_msb(buf: np.ndarray, starts: np.ndarray, b: int) -> np.ndarray:
    """Unpack 512 b-bit MSB-first values for each byte offset in ``starts``.

    ``buf`` must have at least one byte of padding after the last packed byte.
    Returns (G, 512) uint16.
    """
    if b == 1:
        rows = buf[starts[:, None] + np.arange(64)]
        return np.unpackbits(rows, axis=1).astype(np.uint16)
    pos = starts[:, None] + _UNPACK_BYTE[b]
    word = (buf[pos].astype(np.uint16) << np.uint16(8)) | buf[pos + 1]
    return (word >> _UNPACK_SHIFT[b]) & np.uint16((1 << b) - 1)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _check_block_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"block shape must be 3-D (nz, ny, nx), got {shape}")
    for d in shape:
        if d <= 0 or d % SUBBLOCK_SIZE or d > MAX_BLOCK_DIM:
            raise ValueError(
                f"block dimensions must be positive multiples of {SUBBLOCK_SIZE} "
                f"and <= {MAX_BLOCK_DIM}, got {tuple(shape)}"
            )
    nz, ny, nx = (int(d) for d in shape)
    return nz, ny, nx


def encode_solid_block(label: int, shape: tuple[int, int, int] = (64, 64, 64)) -> bytes:
    """The 24-byte serialization of a block whose every voxel is ``label``.

    ``shape`` is (nz, ny, nx); each must be a positive multiple of 8 and <= 1024.
    """
    nz, ny, nx = _check_block_shape(tuple(shape))
    if not 0 <= int(label) < 2**64:
        raise ValueError(f"label {label} out of uint64 range")
    s = SUBBLOCK_SIZE
    return _HEADER.pack(nx // s, ny // s, nz // s, 1) + struct.pack("<Q", int(label))


def encode_block(arr: np.ndarray) -> bytes:
    """Encode a (nz, ny, nx) label volume as a DVID compressed label Block.

    Each dimension must be a positive multiple of 8 and at most 1024 (the block need not be
    cubic).  Any integer dtype is accepted (negative values are rejected); values are treated
    as uint64, so ids up to 2**64-1 round-trip.  Any strides are accepted (views are encoded
    without a copy).  A single-label block yields the 24-byte solid form.  Raises
    ``ValueError`` on bad shape/dtype.  The bytes equal :func:`encode_block_numpy`'s.
    """
    a = _as_label_volume(arr, "block")
    _check_block_shape(a.shape)
    if _ext is not None:
        return _ext.encode(a, False)
    return _encode_numpy(a)


def encode_block_counts(arr: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``(encode_block(arr), labels, counts)``: the serialization, the sorted unique labels
    of the block (its label list, so 0 is included when present) and their voxel counts
    (uint64), computed in the same pass.  Raises like :func:`encode_block`."""
    a = _as_label_volume(arr, "block")
    _check_block_shape(a.shape)
    if _ext is not None:
        enc, counts = _ext.encode(a, True)
        n = _HEADER.unpack_from(enc, 0)[3]
        return enc, np.frombuffer(enc, "<u8", n, 16), np.frombuffer(counts, np.uint64)
    tables = decompose_subblocks(to_subblock_order(a))
    return _encode_numpy(a, tables), tables.labels, tables.counts


def label_counts(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels of a block and their voxel counts (uint64), as
    ``np.unique(arr, return_counts=True)`` gives them; 0 is included when present.  The
    block must satisfy :func:`encode_block`'s shape rules (ValueError otherwise)."""
    a = _as_label_volume(arr, "block")
    _check_block_shape(a.shape)
    if _ext is not None:
        labels, counts = _ext.label_counts(a)
        return np.frombuffer(labels, np.uint64), np.frombuffer(counts, np.uint64)
    tables = decompose_subblocks(to_subblock_order(a))
    return tables.labels, tables.counts


def encode_block_numpy(arr: np.ndarray) -> bytes:
    """The numpy reference of :func:`encode_block` (same arguments, bytes and errors)."""
    a = _as_label_volume(arr, "block")
    _check_block_shape(a.shape)
    return _encode_numpy(a)


def _encode_numpy(a: np.ndarray, tables: SubblockTables | None = None) -> bytes:
    nz, ny, nx = a.shape
    s = SUBBLOCK_SIZE
    gz, gy, gx = nz // s, ny // s, nx // s
    if tables is None:
        tables = decompose_subblocks(to_subblock_order(a))
    labels, ns = tables.labels, tables.ns
    n = labels.size
    if n == 1:
        return _HEADER.pack(gx, gy, gz, 1) + labels.astype("<u8").tobytes()

    bits = _BITS_LUT[ns]
    vbytes = bits * (SUBBLOCK_VOXELS // 8)
    voff = np.cumsum(vbytes) - vbytes
    values = np.empty(int(vbytes.sum()), dtype=np.uint8)
    for b in np.unique(bits[bits > 0]).tolist():
        rows = np.flatnonzero(bits == b)
        packed = _pack_msb(tables.local[rows], b)
        values[voff[rows][:, None] + np.arange(packed.shape[1])] = packed

    return b"".join(
        (
            _HEADER.pack(gx, gy, gz, n),
            labels.astype("<u8", copy=False).tobytes(),
            ns.astype("<u2").tobytes(),
            tables.entry_label.astype("<u4").tobytes(),
            values.tobytes(),
        )
    )


def max_serialization_size(shape: tuple[int, int, int]) -> int:
    """Bytes of the largest serialization a block of ``shape`` (nz, ny, nx) can need when
    its label list has at most one entry per voxel (true of every encoder, DVID's
    included): header, labels, sub-block counts, index lists and 9-bit packed values.

    Readers of posted blocks decompress no further than this, so a small gzip payload
    cannot expand without bound.
    """
    nz, ny, nx = _check_block_shape(tuple(shape))
    v = nz * ny * nx
    return _HEADER.size + 8 * v + 2 * (v // SUBBLOCK_VOXELS) + 4 * v + (9 * v + 7) // 8


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


class _Parsed(NamedTuple):
    buf: bytes | memoryview  # the input as a flat byte buffer
    shape: tuple[int, int, int]
    labels: np.ndarray  # (N,) uint64
    ns: np.ndarray | None  # (Nsb,) int64, None for solid
    indices: np.ndarray | None  # (ΣNs,) int64
    values_off: int  # byte offset of the packed-values area
    values_len: int  # bytes required by the packed-values area
    bits: np.ndarray | None


def _parse(data: bytes | bytearray | memoryview) -> _Parsed:
    """Parse and validate everything but the packed voxel values."""
    buf = data if isinstance(data, bytes) else memoryview(data).cast("B")
    size = len(buf)
    if size < _HEADER.size:
        raise ValueError(f"label block truncated: {size} bytes, need at least 16 for the header")
    gx, gy, gz, n = _HEADER.unpack_from(buf, 0)
    for name, g in (("gx", gx), ("gy", gy), ("gz", gz)):
        if not 1 <= g <= _MAX_GRID:
            raise ValueError(f"label block header has invalid {name}={g} (must be 1..{_MAX_GRID})")
    if n == 0:
        raise ValueError("label block has 0 labels, which is not allowed")
    shape = (gz * SUBBLOCK_SIZE, gy * SUBBLOCK_SIZE, gx * SUBBLOCK_SIZE)
    pos = _HEADER.size
    if size < pos + 8 * n:
        raise ValueError(f"label block truncated: {n} labels need {pos + 8 * n} bytes, got {size}")
    labels = np.frombuffer(buf, dtype="<u8", count=n, offset=pos).astype(np.uint64)
    pos += 8 * n
    if n == 1:
        return _Parsed(buf, shape, labels, None, None, pos, 0, None)

    nsb = gx * gy * gz
    if size < pos + 2 * nsb:
        raise ValueError(
            f"label block truncated in sub-block label counts: need {pos + 2 * nsb} bytes, "
            f"got {size}"
        )
    ns = np.frombuffer(buf, dtype="<u2", count=nsb, offset=pos).astype(np.int64)
    pos += 2 * nsb
    if ns.max() > SUBBLOCK_VOXELS:
        bad = int(np.argmax(ns > SUBBLOCK_VOXELS))
        raise ValueError(f"sub-block {bad} claims {int(ns[bad])} labels (max {SUBBLOCK_VOXELS})")
    total = int(ns.sum())
    if size < pos + 4 * total:
        raise ValueError(
            f"label block truncated in sub-block index lists: need {pos + 4 * total} bytes, "
            f"got {size}"
        )
    indices = np.frombuffer(buf, dtype="<u4", count=total, offset=pos).astype(np.int64)
    pos += 4 * total
    if total and indices.max() >= n:
        raise ValueError(
            f"sub-block index {int(indices.max())} out of range for a {n}-entry label list"
        )
    bits = _BITS_LUT[ns]
    vlen = int(bits.sum()) * (SUBBLOCK_VOXELS // 8)
    if size < pos + vlen:
        raise ValueError(
            f"label block truncated in packed values: need {pos + vlen} bytes, got {size}"
        )
    return _Parsed(buf, shape, labels, ns, indices, pos, vlen, bits)


def block_shape(data: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(nz, ny, nx) of an encoded block, from its header (validates the header only)."""
    if len(data) < 12:
        raise ValueError(f"label block truncated: {len(data)} bytes, need 12 for the header")
    gx, gy, gz = struct.unpack_from("<III", data, 0)
    for name, g in (("gx", gx), ("gy", gy), ("gz", gz)):
        if not 1 <= g <= _MAX_GRID:
            raise ValueError(f"label block header has invalid {name}={g} (must be 1..{_MAX_GRID})")
    return gz * SUBBLOCK_SIZE, gy * SUBBLOCK_SIZE, gx * SUBBLOCK_SIZE


def decode_block(
    data: bytes | bytearray | memoryview,
    expected_shape: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Decode a DVID compressed label Block into a new (nz, ny, nx) uint64 array.

    Same result and errors as :func:`decode_block_numpy` (see there for the edge cases),
    through the compiled kernel when it is available.
    """
    if _ext is not None:
        buf = data if isinstance(data, (bytes, bytearray)) else memoryview(data).cast("B")
        if len(buf) >= _HEADER.size:
            gx, gy, gz, n = _HEADER.unpack_from(buf, 0)
            shape = (gz * SUBBLOCK_SIZE, gy * SUBBLOCK_SIZE, gx * SUBBLOCK_SIZE)
            if (
                n
                and 1 <= gx <= _MAX_GRID
                and 1 <= gy <= _MAX_GRID
                and 1 <= gz <= _MAX_GRID
                and (expected_shape is None or tuple(expected_shape) == shape)
            ):
                out = np.empty(shape, dtype=np.uint64)
                if _ext.decode_into(buf, out) == 0:
                    return out
    # Not handled by the kernel (absent, or the data is bad): the reference decodes or raises.
    return decode_block_numpy(data, expected_shape)


def decode_block_numpy(
    data: bytes | bytearray | memoryview,
    expected_shape: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Decode a DVID compressed label Block into a (nz, ny, nx) uint64 array (numpy
    reference of :func:`decode_block`).

    The shape comes from the header (8·gz, 8·gy, 8·gx).  Handles solid blocks (N == 1; any
    bytes after the label are ignored, as DVID does), sub-blocks with Ns == 0 (all voxels 0),
    Ns == 1, and 2..512 labels (1..9-bit MSB-first packing), duplicate or stale entries in
    the label list, and the full uint64 id range.  Trailing bytes after the packed values are
    ignored (as DVID does).  Raises ``ValueError`` for truncated or inconsistent data: bad
    grid, N == 0, Ns > 512, index out of the label list, packed value >= Ns.

    ``expected_shape`` (nz, ny, nx), if given, must equal the header's shape, else
    ``ValueError`` — servers should pass their block size so that a tiny solid-block
    payload cannot make them allocate a huge (up to 1024³ voxels = 8 GiB) array.
    """
    p = _parse(data)
    if expected_shape is not None and tuple(expected_shape) != p.shape:
        raise ValueError(
            f"label block shape {p.shape} does not match the expected {tuple(expected_shape)}"
        )
    if p.ns is None:
        return np.full(p.shape, p.labels[0], dtype=np.uint64)
    ns, indices, bits = p.ns, p.indices, p.bits
    assert indices is not None and bits is not None
    n = p.labels.size
    nsb = ns.size
    # Extended label table: entry n is the implicit 0 of Ns == 0 sub-blocks.
    lab_ext = np.empty(n + 1, dtype=np.uint64)
    lab_ext[:n] = p.labels
    lab_ext[n] = 0
    idx_dtype = np.int32 if n < 2**31 - 1 else np.int64
    gidx = np.empty((nsb, SUBBLOCK_VOXELS), dtype=idx_dtype)
    first = np.cumsum(ns) - ns

    zero = ns == 0
    if zero.any():
        gidx[zero] = n
    one = ns == 1
    if one.any():
        gidx[one] = indices[first[one]][:, None]

    if p.values_len:
        buf = np.frombuffer(p.buf, dtype=np.uint8, count=p.values_len, offset=p.values_off)
        padded = np.empty(p.values_len + 1, dtype=np.uint8)
        padded[:-1] = buf
        padded[-1] = 0
        vbytes = bits * (SUBBLOCK_VOXELS // 8)
        voff = np.cumsum(vbytes) - vbytes
        for b in np.unique(bits[bits > 0]).tolist():
            rows = np.flatnonzero(bits == b)
            vals = _unpack_msb(padded, voff[rows], b)
            # Only widths that cannot represent exactly Ns values can hold out-of-range data.
            limit = ns[rows]
            if (limit != (1 << b)).any() and (vals >= limit[:, None]).any():
                r, c = np.argwhere(vals >= limit[:, None])[0]
                raise ValueError(
                    f"sub-block {int(rows[r])} voxel {int(c)} has packed value {int(vals[r, c])} "
                    f"but only {int(limit[r])} labels"
                )
            gidx[rows] = indices[first[rows][:, None] + vals]

    vol_idx = from_subblock_order(gidx, p.shape)
    return lab_ext[vol_idx]


def decode_block_mask(
    data: bytes | bytearray | memoryview,
    labels: np.ndarray,
    expected_shape: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """(nz, ny, nx) bool mask of the voxels of an encoded block whose label is in
    ``labels`` — equal to ``np.isin(decode_block(data), labels)`` but much cheaper.

    Membership is decided per label-list entry; sub-blocks whose entries are all in (or
    all out) are filled without unpacking their voxels, and only mixed sub-blocks are
    unpacked. Ns == 0 sub-blocks are voxels of label 0 (in the mask iff 0 is in
    ``labels``). Raises ``ValueError`` like :func:`decode_block` on corrupt data.
    """
    p = _parse(data)
    if expected_shape is not None and tuple(expected_shape) != p.shape:
        raise ValueError(
            f"label block shape {p.shape} does not match the expected {tuple(expected_shape)}"
        )
    want = np.asarray(labels, dtype=np.uint64)
    if p.ns is None:
        return np.full(p.shape, bool(np.isin(p.labels[0], want)), dtype=bool)
    ns, indices, bits = p.ns, p.indices, p.bits
    assert indices is not None and bits is not None
    nsb = ns.size
    entry_in = np.isin(p.labels, want)[indices] if indices.size else np.zeros(0, bool)
    first = np.cumsum(ns) - ns
    cs = np.zeros(entry_in.size + 1, dtype=np.int64)
    np.cumsum(entry_in, out=cs[1:])
    n_in = cs[first + ns] - cs[first]
    out = np.empty((nsb, SUBBLOCK_VOXELS), dtype=bool)
    zero = ns == 0
    out[zero] = bool(np.isin(np.uint64(0), want))
    full = (ns > 0) & (n_in == ns)
    out[full] = True
    none = (ns > 0) & (n_in == 0)
    out[none] = False
    mixed = (ns > 1) & (n_in > 0) & (n_in < ns)
    if mixed.any():
        buf = np.frombuffer(p.buf, dtype=np.uint8, count=p.values_len, offset=p.values_off)
        padded = np.empty(p.values_len + 1, dtype=np.uint8)
        padded[:-1] = buf
        padded[-1] = 0
        vbytes = bits * (SUBBLOCK_VOXELS // 8)
        voff = np.cumsum(vbytes) - vbytes
        mb = bits[mixed]
        for b in np.unique(mb).tolist():
            rows = np.flatnonzero(mixed & (bits == b))
            vals = _unpack_msb(padded, voff[rows], b)
            limit = ns[rows]
            if (limit != (1 << b)).any() and (vals >= limit[:, None]).any():
                raise ValueError("label block has a packed value beyond its sub-block table")
            out[rows] = entry_in[first[rows][:, None] + vals]
    return from_subblock_order(out, p.shape)


def block_labels(data: bytes | bytearray | memoryview, exact: bool = False) -> np.ndarray:
    """Sorted unique labels present in an encoded block (uint64).

    By default this reads only the header, label list and sub-block index lists (no voxel
    unpacking): the result is the set of labels referenced by some sub-block, plus 0 if any
    sub-block has Ns == 0.  Stale label-list entries that no sub-block references are not
    reported.  That equals the voxel label set for any encoder that lists only used labels
    in each sub-block (DVID, this module).  With ``exact=True`` the block is fully decoded
    and the true voxel label set is returned.  Raises ``ValueError`` on corrupt data.
    """
    if exact:
        return np.unique(decode_block(data))
    p = _parse(data)
    if p.ns is None:
        return p.labels[:1].copy()
    assert p.indices is not None
    used = np.unique(p.labels[p.indices])
    if (p.ns == 0).any() and (used.size == 0 or used[0] != 0):
        used = np.concatenate([np.zeros(1, dtype=np.uint64), used])
    return used
