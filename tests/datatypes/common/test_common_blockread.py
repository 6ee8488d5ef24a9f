"""The compiled block reader (``_blockread_c``) against the numpy reference and the truth.

Each property builds a random volume of random blocks (noise, which LZ4 stores as one run of
literals that the kernel copies from the value itself, or with compressible stretches, which
it decodes), stores a random subset of them in random codecs (LZ4, uncompressed, gzip,
CRC32-checked: the kernel hands the last two back), reads a random box (aligned or not,
partly or wholly outside the stored blocks) through both paths and compares them with the
volume itself. Corrupt values (flipped or cut bytes, wrong length prefixes, wrong sizes,
unknown codes) must raise the caller's ``CodecError`` from both paths, never crash or write
garbage silently.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.common import blockread as br
from datatypes.common.geometry import block_range, blocks_between
from dvidpy.codec import CodecError, deserialize, serialize

needs_ext = pytest.mark.skipif(br._ext is None, reason="compiled block reader not built")
DTYPES = (np.dtype("u1"), np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8"))
CODECS = ("lz4", "none", "gzip", "lz4+crc", "none+crc")


def test_extension_is_built_in_ci() -> None:
    """CI installs liblz4-dev and gcc, so there the kernel must be what runs."""
    if not os.environ.get("CI") or os.environ.get("DVIDPY_NO_EXTENSION"):
        pytest.skip("only enforced in CI")
    assert br.HAVE_EXTENSION, "datatypes/common/_blockread_c was not built by pip install"


def _encode(block: np.ndarray, codec: str) -> bytes:
    name, _, crc = codec.partition("+")
    return serialize(memoryview(block.reshape(-1).view(np.uint8)), name, bool(crc))


def _decoder(bshape: tuple[int, int, int], dtype: np.dtype) -> Callable[[object], np.ndarray]:
    def decode(value: object) -> np.ndarray:
        data = deserialize(value)  # type: ignore[arg-type]
        if len(data) != int(np.prod(bshape)) * dtype.itemsize:
            raise CodecError(f"{len(data)} bytes is not one block")
        return np.frombuffer(data, dtype=dtype).reshape(bshape)
    return decode


@st.composite
def cases(draw: st.DrawFn) -> dict:
    dtype = draw(st.sampled_from(DTYPES))
    bsize = tuple(draw(st.integers(1, 9)) for _ in range(3))  # x, y, z
    grid = tuple(draw(st.integers(1, 4)) for _ in range(3))  # blocks per axis, x, y, z
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = tuple(grid[a] * bsize[a] for a in (2, 1, 0))  # z, y, x voxels
    vol = rng.integers(0, 2**63, shape, dtype=np.uint64).astype(dtype)
    if draw(st.booleans()):  # compressible stretches; else noise, which LZ4 keeps as
        vol[rng.random(shape) < 0.5] = 7  # literals only (read from the value itself)
    # a box anywhere around the volume (may reach past it: those blocks are not stored)
    off = tuple(draw(st.integers(-bsize[a], grid[a] * bsize[a])) for a in range(3))
    size = tuple(draw(st.integers(1, grid[a] * bsize[a] + bsize[a])) for a in range(3))
    stored: dict[tuple[int, int, int], bytes] = {}
    for x in range(grid[0]):
        for y in range(grid[1]):
            for z in range(grid[2]):
                if draw(st.booleans()) or draw(st.booleans()):
                    blk = vol[z * bsize[2]:(z + 1) * bsize[2], y * bsize[1]:(y + 1) * bsize[1],
                              x * bsize[0]:(x + 1) * bsize[0]]
                    stored[(x, y, z)] = _encode(np.ascontiguousarray(blk),
                                                draw(st.sampled_from(CODECS)))
    fill = draw(st.integers(0, 255))
    return {"dtype": dtype, "bsize": bsize, "vol": vol, "off": off, "size": size,
            "stored": stored, "fill": fill}


def _inputs(c: dict) -> tuple[list, np.ndarray, tuple[int, int, int]]:
    lo, hi = block_range(c["off"], c["size"], c["bsize"])
    coords = blocks_between(lo, hi)
    values = [c["stored"].get(tuple(map(int, xyz))) for xyz in coords]
    places = br.block_places(c["off"], c["size"], c["bsize"], coords)
    bx, by, bz = c["bsize"]
    return values, places, (bz, by, bx)


def _truth(c: dict) -> np.ndarray:
    """The box from the volume: stored blocks' voxels, ``fill`` everywhere else."""
    (ox, oy, oz), (sx, sy, sz) = c["off"], c["size"]
    bx, by, bz = c["bsize"]
    out = np.full((sz, sy, sx), c["fill"], dtype=c["dtype"])
    for (x, y, z) in c["stored"]:
        x0, x1 = max(ox, x * bx), min(ox + sx, (x + 1) * bx)
        y0, y1 = max(oy, y * by), min(oy + sy, (y + 1) * by)
        z0, z1 = max(oz, z * bz), min(oz + sz, (z + 1) * bz)
        if x0 < x1 and y0 < y1 and z0 < z1:
            out[z0 - oz:z1 - oz, y0 - oy:y1 - oy, x0 - ox:x1 - ox] = \
                c["vol"][z0:z1, y0:y1, x0:x1]
    return out


def _read(c: dict, values: list, kernel: bool, threads: int = 2, group: int = 1
          ) -> np.ndarray:
    _, places, bshape = _inputs(c)
    sx, sy, sz = c["size"]
    out = np.full((sz, sy, sx), 0xAB, dtype=c["dtype"])  # garbage a missed piece would show
    decode = _decoder(bshape, c["dtype"])
    if kernel:
        br.decode_into(out, values, places, bshape, c["fill"], decode, threads=threads,
                       group=group)
    else:
        br.decode_into_numpy(out, values, places, bshape, c["fill"], decode)
    return out


@given(cases(), st.integers(1, 4), st.integers(0, 5))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_both_paths_write_the_box(c: dict, threads: int, group: int) -> None:
    values, _, _ = _inputs(c)
    want = _truth(c)
    assert np.array_equal(_read(c, values, False), want)
    assert np.array_equal(_read(c, values, True, threads, group), want)
    # buffers, not bytes (LMDB hands out memoryviews): the same voxels
    views = [None if v is None else memoryview(bytearray(v)) for v in values]
    assert np.array_equal(_read(c, views, True, threads, group), want)


def _corrupt(value: bytes, how: str, where: int) -> bytes:
    if how == "cut":
        return value[:where % max(len(value), 1)]
    if how == "flip":
        b = bytearray(value)
        b[where % len(b)] ^= 0xFF
        return bytes(b)
    if how == "length":  # an LZ4 length prefix that is not one block's
        return value[:1] + struct.pack("<I", where) + value[5:]
    if how == "code":  # compression codes 1, 3, 6, 7 are not stored by dvidpy
        return bytes([(value[0] & 0x1F) | ((1, 3, 6, 7)[where % 4] << 5)]) + value[1:]
    return value + b"\x00" * (1 + where % 7)  # "long": trailing bytes


@given(cases(), st.sampled_from(("cut", "flip", "length", "code", "long")),
       st.integers(0, 2**32 - 1), st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_corrupt_values_raise_codec_error(c: dict, how: str, where: int,
                                          data: st.DataObject) -> None:
    values, _, _ = _inputs(c)
    present = [i for i, v in enumerate(values) if v is not None]
    if not present:
        return
    i = data.draw(st.sampled_from(present))
    values = list(values)
    values[i] = _corrupt(values[i], how, where)
    decode = _decoder(_inputs(c)[2], c["dtype"])
    try:
        decode(values[i])
    except CodecError:
        bad = True
    else:
        bad = False  # a flip inside literal data of an unchecked value still decodes
    for kernel in (False, True):
        if bad:
            with pytest.raises(CodecError):
                _read(c, values, kernel)
        else:  # both paths agree with the reference decoder on what it decodes to
            got = _read(c, values, kernel)
            ref = _read(c, values, False)
            assert np.array_equal(got, ref)


@needs_ext
def test_places_outside_are_refused() -> None:
    out = np.zeros((4, 4, 4), np.uint8)
    block = serialize(bytes(8), "none")
    for q in ([0, 0, 3, 0, 0, 0, 1, 1, 2],   # past out's x end
              [0, 0, 0, 0, 0, 1, 1, 1, 2],   # past the block's x end
              [-1, 0, 0, 0, 0, 0, 1, 1, 1],  # negative
              [0, 0, 0, 0, 0, 0, 1, 1, -1]):
        with pytest.raises(ValueError, match="outside"):
            br._ext.decode_into(out, out.shape, [block], np.array(q, np.int64),
                                (2, 2, 2), 1, b"\x00", 2, 1)
        with pytest.raises(ValueError, match="outside"):
            br.decode_into_numpy(out, [block], np.array(q, np.int64), (2, 2, 2), 0,
                                 _decoder((2, 2, 2), np.dtype("u1")))
    assert not out.any()
    with pytest.raises(ValueError, match="dims"):
        br._ext.decode_into(out, (4, 4, 5), [block], np.zeros(9, np.int64), (2, 2, 2), 1,
                            b"\x00", 1, 1)
    with pytest.raises(ValueError, match="places"):
        br._ext.decode_into(out, out.shape, [block, None], np.zeros(9, np.int64), (2, 2, 2),
                            1, b"\x00", 1, 1)
    with pytest.raises(ValueError, match="too large"):  # sizes that overflow 64 bits
        br._ext.decode_into(out, (1 << 31, 1 << 31, 1 << 31), [block], np.zeros(9, np.int64),
                            (2, 2, 2), 8, bytes(8), 1, 1)
    with pytest.raises(ValueError, match="too large"):  # a block LZ4 cannot hold
        br._ext.decode_into(out, out.shape, [block], np.zeros(9, np.int64),
                            (1 << 20, 1 << 20, 1), 1, b"\x00", 1, 1)
    with pytest.raises(TypeError):
        br._ext.decode_into(out, out.shape, [3], np.zeros(9, np.int64), (2, 2, 2), 1,
                            b"\x00", 1, 1)


def test_non_contiguous_output_takes_the_numpy_path() -> None:
    vol = np.arange(4 * 4 * 8, dtype=np.uint16).reshape(4, 4, 8)
    blocks = [serialize(memoryview(np.ascontiguousarray(vol[:, :, x:x + 4]).view(np.uint8)
                                   .reshape(-1)), "lz4") for x in (0, 4)]
    big = np.zeros((4, 4, 16), np.uint16)
    out = big[:, :, ::2]  # strided: not C-contiguous
    places = br.block_places((0, 0, 0), (8, 4, 4), (4, 4, 4), np.array([[0, 0, 0], [1, 0, 0]]))
    br.decode_into(out, blocks, places, (4, 4, 4), 0, _decoder((4, 4, 4), np.dtype("<u2")))
    assert np.array_equal(out, vol)


@needs_ext
@given(st.integers(0, 2**32 - 1), st.sampled_from(DTYPES[:2]), st.integers(0, 3),
       st.sampled_from((0, 16, 32, 64)), st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_whole_cache_line_rows(seed: int, dtype: np.dtype, shift: int, x0: int,
                               threads: int) -> None:
    """Rows of 64-byte multiples into a 64-byte aligned answer take the kernel's
    non-temporal stores; misaligned ones memcpy: both equal the truth."""
    rng = np.random.default_rng(seed)
    c = {"dtype": dtype, "bsize": (64, 3, 2), "fill": 3, "off": (x0, 1, 0),
         "size": (128, 5, 4), "vol": rng.integers(0, 250, (4, 6, 192)).astype(dtype)}
    c["stored"] = {(x, y, z): _encode(np.ascontiguousarray(
        c["vol"][z * 2:z * 2 + 2, y * 3:y * 3 + 3, x * 64:x * 64 + 64]), "lz4")
        for x in range(3) for y in range(2) for z in range(2) if rng.random() < 0.8}
    values, places, bshape = _inputs(c)
    n = 4 * 5 * 128 * dtype.itemsize
    raw = np.empty(n + 128, np.uint8)
    at = -raw.ctypes.data % 64 + 16 * shift
    out = raw[at:at + n].view(dtype).reshape(4, 5, 128)
    br.decode_into(out, values, places, bshape, 3, _decoder(bshape, dtype), threads, group=3)
    assert np.array_equal(out, _truth(c))


@settings(max_examples=200, deadline=None)
@given(st.tuples(*(st.integers(-40, 40),) * 3), st.tuples(*(st.integers(1, 30),) * 3),
       st.tuples(*(st.integers(1, 9),) * 3), st.data())
def test_block_places_match_per_block_arithmetic(off, size, bsize, data):
    """Each row (one block alone, taken by the integer path, or several, by the
    vectorized one) is where that block's piece of the box lies, computed block by block:
    the piece's start in the output and in the block (z, y, x), then its extent; a block
    the box misses has a zero extent and zero starts."""
    near = [st.integers(off[i] // bsize[i] - 1, (off[i] + size[i] - 1) // bsize[i] + 1)
            for i in range(3)]  # the box's blocks and one more on each side
    coords = data.draw(st.lists(st.tuples(*near), min_size=1, max_size=6))
    for cs in ([coords[0]], coords):
        got = br.block_places(off, size, bsize, np.array(cs, dtype=np.int64))
        assert got.dtype == np.int64 and got.shape == (len(cs), 9)
        for row, c in zip(got.tolist(), cs, strict=True):
            lo = [max(c[i] * bsize[i], off[i]) for i in range(3)]
            ext = [max(0, min((c[i] + 1) * bsize[i], off[i] + size[i]) - lo[i])
                   for i in range(3)]
            if 0 in ext:
                assert row == [0] * 6 + ext[::-1]
            else:
                assert row == ([lo[i] - off[i] for i in (2, 1, 0)]
                               + [lo[i] - c[i] * bsize[i] for i in (2, 1, 0)] + ext[::-1])


@needs_ext
@given(st.integers(0, 2**32 - 1), st.integers(0, 15), st.integers(0, 2),
       st.sampled_from((0, 1, 16, 40)))
@settings(max_examples=60, deadline=None)
def test_literal_runs_decode_as_lz4_does(seed: int, nibble: int, extra: int, x0: int) -> None:
    """An LZ4 block of literals only is copied from the value itself: the same voxels as
    the reference whatever the token's match nibble (LZ4 does not read it in the last
    sequence), and the same refusal when the run is one byte short or trailing bytes
    follow it; in rows of several such blocks (one box row, unaligned or not)."""
    rng = np.random.default_rng(seed)
    bsize = (32, 4, 3)
    vol = rng.integers(0, 256, (3, 4, 96), dtype=np.uint8)
    values = []
    for x in range(3):
        v = bytearray(_encode(np.ascontiguousarray(vol[:, :, x * 32:x * 32 + 32]), "lz4"))
        # one run of 384 literals: token 15, then 255 + 114 more
        assert v[5] >> 4 == 15 and v[6:8] == b"\xff\x72" and len(v) == 5 + 3 + 384
        values.append(v)
    values[1][5] = (values[1][5] & 0xF0) | nibble
    if extra == 1:
        values[2] += b"\x00"  # a byte after the run
    elif extra == 2:
        values[2][7] -= 1  # the run says one byte fewer than the block
    c = {"dtype": np.dtype("u1"), "bsize": bsize, "fill": 0, "vol": vol,
         "off": (x0, 0, 0), "size": (96 - x0, 4, 3),
         "stored": {(x, 0, 0): bytes(values[x]) for x in range(3)}}
    vals, _, _ = _inputs(c)
    if extra:
        for kernel in (False, True):
            with pytest.raises(CodecError):
                _read(c, vals, kernel, group=3)
        return
    assert np.array_equal(_read(c, vals, True, group=3), _truth(c))
    assert np.array_equal(_read(c, vals, False), _truth(c))
