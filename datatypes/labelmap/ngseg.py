"""Neuroglancer ``compressed_segmentation`` codec for single-channel uint64 volumes (§9.16.8).

Output layout (little-endian uint32 words)::

    word 0              1 = offset (in words) of the only channel's data
    channel, per 8³ block in z,y,x grid order (x fastest), 2 header words:
        A = lookup-table offset (low 24 bits) | encoded bits (high 8 bits)
        B = encoded-values offset
    then, per block in the same order: the encoded values (512 indices packed LSB-first into
    32-bit words, ``bits`` ∈ {0, 1, 2, 4, 8, 16}), followed by the block's lookup table
    (sorted unique uint64 labels, 2 words each) unless an identical table was already
    emitted for an earlier block, in which case that table is referenced instead.

Offsets are in words relative to the channel start (word 1).  This mirrors neuroglancer's
reference encoder (including the table de-duplication), so for inputs whose dimensions are
multiples of 8 the output is byte-identical to the ``compressed_segmentation`` package's
``compress(vol.T, order="F")``.
"""

from __future__ import annotations

import numpy as np

from datatypes.labelmap.block_codec import (
    SUBBLOCK_SIZE,
    SUBBLOCK_VOXELS,
    _as_label_volume,
    decompose_subblocks,
    from_subblock_order,
    to_subblock_order,
)

__all__ = ["decode_compressed_segmentation", "encode_compressed_segmentation"]

# Encoded bit width for n distinct values in a block: 0, then ceil(log2 n) rounded up to a
# power of two.  n <= 512 for an 8³ block.
_NG_BITS_LUT = np.zeros(SUBBLOCK_VOXELS + 1, dtype=np.int64)
_NG_BITS_LUT[2:] = np.ceil(np.log2(np.arange(2, SUBBLOCK_VOXELS + 1)))
_NG_BITS_LUT[2:] = 2 ** np.ceil(np.log2(_NG_BITS_LUT[2:])).astype(np.int64)
_VALID_BITS = (0, 1, 2, 4, 8, 16, 32)
_MAX_OFFSET = (1 << 24) - 1


def _pack_lsb_words(vals: np.ndarray, b: int) -> np.ndarray:
    """Pack (G, 512) values (< 2**b) LSB-first into (G, 16·b) little-endian uint32 words."""
    g = vals.shape[0]
    if b == 1:
        by = np.packbits(vals.astype(np.uint8, copy=False), axis=1, bitorder="little")
    elif b in (2, 4):
        per = 8 // b
        v = vals.astype(np.uint8).reshape(g, SUBBLOCK_VOXELS // per, per)
        by = v[:, :, 0].copy()
        for j in range(1, per):
            by |= v[:, :, j] << np.uint8(b * j)
    elif b == 8:
        by = vals.astype(np.uint8)
    elif b == 16:
        by = vals.astype("<u2").view(np.uint8)
    else:  # pragma: no cover - encoder never produces other widths
        raise AssertionError(b)
    return np.ascontiguousarray(by).view("<u4").reshape(g, 16 * b)


def encode_compressed_segmentation(arr: np.ndarray) -> bytes:
    """Encode a (nz, ny, nx) label volume as neuroglancer ``compressed_segmentation``.

    Block size is 8x8x8 and there is a single channel.  Every dimension must be a positive
    multiple of 8 (``ValueError`` otherwise); any non-negative integer dtype is accepted and
    treated as uint64.  The output starts with the channel-offset word (``1``).  Raises
    ``ValueError`` when the encoding would exceed the format's 24-bit lookup-table offsets
    (about 64 MiB of encoded data, far beyond any 64³-block request).
    """
    a = _as_label_volume(arr, "volume")
    if any(d <= 0 or d % SUBBLOCK_SIZE for d in a.shape):
        raise ValueError(
            f"compressed_segmentation volume dimensions must be positive multiples of "
            f"{SUBBLOCK_SIZE}, got {a.shape}"
        )
    sbv = to_subblock_order(a)
    t = decompose_subblocks(sbv)
    labels, ns, entry_label = t.labels, t.ns, t.entry_label
    nb = ns.size
    first = np.cumsum(ns) - ns
    bits = _NG_BITS_LUT[ns]

    # De-duplicate identical lookup tables: the first block with a given table emits it,
    # later blocks point at it.  Tables are identified by their label-index sequences.
    is_new = np.zeros(nb, dtype=bool)
    canon = np.empty(nb, dtype=np.int64)
    for length in np.unique(ns).tolist():
        bl = np.flatnonzero(ns == length)
        if length == 1:
            _, idx, inv = np.unique(entry_label[first[bl]], return_index=True, return_inverse=True)
        else:
            tab = entry_label[first[bl][:, None] + np.arange(length)]
            _, idx, inv = np.unique(tab, axis=0, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        is_new[bl[idx]] = True
        canon[bl] = bl[idx[inv]]

    vwords = 16 * bits
    sizes = vwords + 2 * ns * is_new
    pos = 2 * nb + np.cumsum(sizes) - sizes  # word offsets relative to channel start
    total = 2 * nb + int(sizes.sum())
    table_new = pos + vwords
    table_off = table_new[canon]
    if nb and int(table_off.max()) > _MAX_OFFSET:
        raise ValueError(
            "volume too large for compressed_segmentation: lookup-table offset exceeds 24 bits"
        )

    out = np.zeros(1 + total, dtype="<u4")
    out[0] = 1
    out[1 : 1 + 2 * nb : 2] = table_off | (bits << 24)
    out[2 : 2 + 2 * nb : 2] = pos

    for b in np.unique(bits[bits > 0]).tolist():
        rows = np.flatnonzero(bits == b)
        words = _pack_lsb_words(t.local[rows], b)
        out[1 + pos[rows][:, None] + np.arange(16 * b)] = words

    new_blocks = np.flatnonzero(is_new)
    cnt = ns[new_blocks]
    rep = np.repeat(new_blocks, cnt)
    within = np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    vals = labels[entry_label[first[rep] + within]]
    wpos = 1 + table_new[rep] + 2 * within
    out[wpos] = (vals & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    out[wpos + 1] = (vals >> np.uint64(32)).astype(np.uint32)
    return out.tobytes()


def decode_compressed_segmentation(
    data: bytes | bytearray | memoryview, shape: tuple[int, int, int]
) -> np.ndarray:
    """Decode single-channel uint64 ``compressed_segmentation`` (8³ blocks) to (nz, ny, nx).

    ``shape`` is (nz, ny, nx), each a positive multiple of 8.  Accepts any valid encoder's
    output (bits ∈ {0, 1, 2, 4, 8, 16, 32}, shared or unshared tables, any channel offset).
    Raises ``ValueError`` on truncated data, invalid bit widths, or offsets/indices that
    point outside the channel data.
    """
    nz, ny, nx = (int(d) for d in shape)
    if any(d <= 0 or d % SUBBLOCK_SIZE for d in (nz, ny, nx)):
        raise ValueError(f"shape dimensions must be positive multiples of 8, got {shape}")
    if len(data) % 4:
        raise ValueError(f"compressed_segmentation length {len(data)} is not a multiple of 4")
    words = np.frombuffer(data, dtype="<u4").astype(np.int64)
    if words.size < 1:
        raise ValueError("compressed_segmentation data is empty")
    start = int(words[0])
    nb = (nz // 8) * (ny // 8) * (nx // 8)
    if start < 1 or start + 2 * nb > words.size:
        raise ValueError("compressed_segmentation truncated: block headers out of range")
    chan = words[start:]
    hdr = chan[: 2 * nb].reshape(nb, 2)
    table_off = hdr[:, 0] & 0xFFFFFF
    bits = hdr[:, 0] >> 24
    val_off = hdr[:, 1]
    if not np.isin(bits, _VALID_BITS).all():
        bad = bits[~np.isin(bits, _VALID_BITS)][0]
        raise ValueError(f"compressed_segmentation has invalid encoded bit width {int(bad)}")
    clen = chan.size
    out_idx = np.empty((nb, SUBBLOCK_VOXELS), dtype=np.int64)  # word index of each voxel's label
    zero = bits == 0
    out_idx[zero] = table_off[zero][:, None]
    for b in np.unique(bits[~zero]).tolist():
        rows = np.flatnonzero(bits == b)
        nwords = 16 * b
        if int((val_off[rows] + nwords).max()) > clen:
            raise ValueError("compressed_segmentation truncated: encoded values out of range")
        w = chan[val_off[rows][:, None] + np.arange(nwords)]
        per = 32 // b
        shifts = (np.arange(per, dtype=np.int64) * b)[None, None, :]
        v = (w[:, :, None] >> shifts) & ((1 << b) - 1)
        out_idx[rows] = table_off[rows][:, None] + 2 * v.reshape(rows.size, SUBBLOCK_VOXELS)
    if nb and int(out_idx.max()) + 2 > clen:
        raise ValueError("compressed_segmentation truncated: lookup-table entry out of range")
    lo = chan[out_idx].astype(np.uint64)
    hi = chan[out_idx + 1].astype(np.uint64)
    labels = lo | (hi << np.uint64(32))
    return from_subblock_order(labels, (nz, ny, nx))
