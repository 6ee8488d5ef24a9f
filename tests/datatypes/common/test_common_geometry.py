"""Tests for datatypes.common.geometry (parsing, boxes, block math, extract/split)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.common.geometry import (
    INT32_MAX,
    INT32_MIN,
    BlockPiece,
    Box,
    as_block_size,
    as_point3,
    assemble_block,
    block_pieces,
    block_range,
    blocks_between,
    blocks_in_box,
    check_block_coords,
    check_int32_box,
    extract_subvolume,
    format_xyz,
    int32_block_limits,
    is_block_aligned,
    parse_block_list,
    parse_dims,
    parse_ints,
    parse_size,
    parse_xyz,
    plane_size_to_3d,
    split_into_blocks,
    voxel_to_block,
    xyz_size,
    zyx_shape,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
i32 = st.integers(INT32_MIN, INT32_MAX)
_STRICT_INT = re.compile(r"[+-]?[0-9]+")

# ---------------------------------------------------------------------------- parsing


@SETTINGS
@given(st.tuples(i32, i32, i32))
def test_parse_xyz_roundtrip(p):
    assert parse_xyz(format_xyz(p)) == p
    assert parse_xyz(format_xyz(p, ","), sep=",") == p
    assert all(type(v) is int for v in parse_xyz(format_xyz(p)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10_20_30", (10, 20, 30)), ("-1_0_-64", (-1, 0, -64)), ("+5_007_0", (5, 7, 0))],
)
def test_parse_xyz_examples(text, expected):
    assert parse_xyz(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1_2",
        "1_2_3_4",
        "1__3",
        "_1_2",
        "a_b_c",
        "1.5_2_3",
        "1e3_2_3",
        " 1_2_3",
        "1_2_3 ",
        "1_2_3\n",
        "\u0663_1_2",  # Arabic-Indic digit: int() accepts it, DVID does not
        "2147483648_0_0",
        "0_0_-2147483649",
        "1,2,3",
        "--1_2_3",
        "0x10_0_0",
    ],
)
def test_parse_xyz_rejects(text):
    with pytest.raises(ValueError):
        parse_xyz(text)


def test_parse_xyz_rejects_non_string():
    with pytest.raises(ValueError):
        parse_xyz(123)  # type: ignore[arg-type]


def _oracle_xyz(text: str):
    parts = text.split("_")
    if len(parts) != 3 or not all(_STRICT_INT.fullmatch(p) for p in parts):
        return None
    vals = tuple(int(p) for p in parts)
    if not all(INT32_MIN <= v <= INT32_MAX for v in vals):
        return None
    return vals


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=20),
        st.text(alphabet="0123456789_-+ .,a", max_size=16),
    )
)
def test_parse_xyz_garbage_only_valueerror(text):
    expected = _oracle_xyz(text)
    if expected is None:
        with pytest.raises(ValueError):
            parse_xyz(text)
    else:
        assert parse_xyz(text) == expected


@SETTINGS
@given(st.lists(st.integers(1, INT32_MAX), min_size=3, max_size=3))
def test_parse_size_valid(vals):
    assert parse_size("_".join(map(str, vals))) == tuple(vals)


@pytest.mark.parametrize("text", ["0_64_64", "64_-1_64", "64_64", "64_64_64_64", "", "x_y_z"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_size_2d():
    assert parse_size("512_256", 2) == (512, 256)
    with pytest.raises(ValueError):
        parse_size("512_256_1", 2)
    with pytest.raises(ValueError):
        parse_size("512_0", 2)


@SETTINGS
@given(st.text(alphabet="0123456789_-+ .,a", max_size=12), st.integers(1, 4))
def test_parse_size_garbage_only_valueerror(text, ndim):
    try:
        out = parse_size(text, ndim)
    except ValueError:
        return
    assert len(out) == ndim and all(v > 0 for v in out)


@pytest.mark.parametrize(
    ("text", "dims"),
    [
        ("0_1_2", (0, 1, 2)),
        ("0_1", (0, 1)),
        ("0_2", (0, 2)),
        ("1_2", (1, 2)),
        ("xy", (0, 1)),
        ("xz", (0, 2)),
        ("yz", (1, 2)),
        ("XY", (0, 1)),
    ],
)
def test_parse_dims_valid(text, dims):
    assert parse_dims(text) == dims


_VALID_DIMS = {"0_1_2", "0_1", "0_2", "1_2", "xy", "xz", "yz"}


@SETTINGS
@given(st.one_of(st.text(max_size=8), st.text(alphabet="012_xyz", max_size=6)))
def test_parse_dims_garbage(text):
    if text.lower() in _VALID_DIMS:
        parse_dims(text)
    else:
        with pytest.raises(ValueError, match="dims"):
            parse_dims(text)


@pytest.mark.parametrize("text", ["1_0", "0", "0_1_2_3", "2_1_0", "zy", "x", "", "0_0"])
def test_parse_dims_rejects(text):
    with pytest.raises(ValueError):
        parse_dims(text)


def test_plane_size_to_3d():
    assert plane_size_to_3d((0, 1), (5, 6)) == (5, 6, 1)
    assert plane_size_to_3d((0, 2), (5, 6)) == (5, 1, 6)
    assert plane_size_to_3d((1, 2), (5, 6)) == (1, 5, 6)
    assert plane_size_to_3d((0, 1, 2), (5, 6, 7)) == (5, 6, 7)
    with pytest.raises(ValueError):
        plane_size_to_3d((0, 1), (5, 6, 7))


@SETTINGS
@given(st.lists(st.tuples(i32, i32, i32), max_size=10))
def test_parse_block_list_roundtrip(coords):
    text = ",".join(str(v) for c in coords for v in c)
    arr = parse_block_list(text)
    assert arr.shape == (len(coords), 3)
    assert arr.tolist() == [list(c) for c in coords]


@pytest.mark.parametrize("text", ["1,2", "1,2,3,4", "1,,3", "a,b,c", "1,2,3,", "1.0,2,3"])
def test_parse_block_list_rejects(text):
    with pytest.raises(ValueError):
        parse_block_list(text)


def test_parse_ints_messages():
    with pytest.raises(ValueError, match="expected 3"):
        parse_ints("1_2", 3, what="point")
    with pytest.raises(ValueError, match="not an integer"):
        parse_ints("1_z_2", 3)


# ---------------------------------------------------------------------------- points/boxes


def test_as_point3_and_block_size():
    assert as_point3(np.array([1, 2, 3])) == (1, 2, 3)
    for bad in [(1, 2), (1, 2, 3, 4), (1.0, 2, 3), (True, 2, 3), "abc", 5, None]:
        with pytest.raises(ValueError):
            as_point3(bad)  # type: ignore[arg-type]
    assert as_block_size(64) == (64, 64, 64)
    assert as_block_size((8, 16, 32)) == (8, 16, 32)
    for bad in [0, -1, (0, 1, 1), (1, 1), True]:
        with pytest.raises(ValueError):
            as_block_size(bad)  # type: ignore[arg-type]


def test_shape_helpers():
    assert zyx_shape((1, 2, 3)) == (3, 2, 1)
    assert xyz_size((3, 2, 1)) == (1, 2, 3)
    with pytest.raises(ValueError):
        xyz_size((1, 2))


small = st.integers(-20, 20)
small_size = st.integers(0, 12)


@SETTINGS
@given(
    st.tuples(small, small, small),
    st.tuples(small_size, small_size, small_size),
    st.tuples(small, small, small),
    st.tuples(small_size, small_size, small_size),
)
def test_box_intersect_bruteforce(o1, s1, o2, s2):
    a, b = Box(o1, s1), Box(o2, s2)
    c = a.intersect(b)
    assert c.shape == zyx_shape(c.size)
    assert c.num_voxels == len(
        {
            p
            for p in itertools.product(*(range(o, o + s) for o, s in zip(o1, s1, strict=True)))
            if b.contains(p)
        }
    )
    if not c.is_empty:
        assert a.contains(c.offset) and b.contains(c.offset)
        assert a.contains(c.max_point) and b.contains(c.max_point)


def test_box_basics():
    b = Box((-5, 0, 10), (4, 3, 2))
    assert b.end == (-1, 3, 12)
    assert b.max_point == (-2, 2, 11)
    assert b.shape == (2, 3, 4)
    assert b.num_voxels == 24
    assert b.slices((-10, 0, 0)) == (slice(10, 12), slice(0, 3), slice(5, 9))
    assert Box.from_bounds((0, 0, 0), (-1, 5, 5)).is_empty
    with pytest.raises(ValueError):
        Box((0, 0, 0), (-1, 1, 1))
    assert b.block_range(4) == ((-2, 0, 2), (-1, 0, 2))


# ---------------------------------------------------------------------------- block math

block_sizes = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))


@SETTINGS
@given(st.tuples(small, small, small), st.tuples(small_size, small_size, small_size), block_sizes)
def test_blocks_in_box_bruteforce(offset, size, bs):
    got = blocks_in_box(offset, size, bs)
    voxels = itertools.product(*(range(o, o + s) for o, s in zip(offset, size, strict=True)))
    expected = {tuple(v // b for v, b in zip(p, bs, strict=True)) for p in voxels}
    assert got.shape == (len(expected), 3)
    assert {tuple(r) for r in got.tolist()} == expected
    # ZYX scan order: sorted by (z, y, x)
    keys = [(r[2], r[1], r[0]) for r in got.tolist()]
    assert keys == sorted(keys)
    if expected:
        lo, hi = block_range(offset, size, bs)
        assert tuple(got.min(axis=0)) == lo and tuple(got.max(axis=0)) == hi


def test_blocks_in_box_errors():
    with pytest.raises(ValueError):
        blocks_in_box((0, 0, 0), (-1, 1, 1), 4)
    with pytest.raises(ValueError):
        block_range((0, 0, 0), (0, 1, 1), 4)
    assert blocks_in_box((0, 0, 0), (0, 5, 5), 4).shape == (0, 3)
    assert blocks_between((0, 0, 0), (-1, 3, 3)).shape == (0, 3)
    assert blocks_between((1, 2, 3), (2, 2, 4)).tolist() == [[1, 2, 3], [2, 2, 3],
                                                            [1, 2, 4], [2, 2, 4]]


@SETTINGS
@given(st.lists(st.tuples(i32, i32, i32), min_size=1, max_size=20), block_sizes)
def test_voxel_to_block_floor(points, bs):
    got = voxel_to_block(np.array(points), bs)
    assert got.tolist() == [[p // b for p, b in zip(pt, bs, strict=True)] for pt in points]


def test_voxel_to_block_negative():
    assert voxel_to_block((-1, -64, 63), 64).tolist() == [-1, -1, 0]
    with pytest.raises(ValueError):
        voxel_to_block([[1, 2]], 64)


@SETTINGS
@given(st.tuples(small, small, small), st.tuples(small_size, small_size, small_size), block_sizes)
def test_is_block_aligned(offset, size, bs):
    expected = all(o % b == 0 and s % b == 0 for o, s, b in zip(offset, size, bs, strict=True))
    assert is_block_aligned(offset, size, bs) == expected


def test_is_block_aligned_examples():
    assert is_block_aligned((-64, 0, 64), (64, 128, 64), 64)
    assert not is_block_aligned((-63, 0, 64), (64, 128, 64), 64)
    assert is_block_aligned((0, 0, 0), (0, 0, 0), 64)


# ---------------------------------------------------------------------------- extract / split


def _world(bs, nblocks, rng):
    """A big array covering blocks [-nb, nb) per axis; its voxel origin is negative."""
    nb = np.asarray(nblocks)
    origin = tuple(int(-n * b) for n, b in zip(nb, bs, strict=True))
    size = tuple(int(2 * n * b) for n, b in zip(nb, bs, strict=True))
    arr = rng.integers(0, 2**16, size=zyx_shape(size), dtype=np.uint16)
    return origin, size, arr


def _blocks_from_world(origin, arr, bs):
    blocks = {}
    for piece in split_into_blocks(arr, origin, bs):
        assert piece.full
        blocks[piece.coord] = arr[piece.volume_slices].copy()
    return blocks


@st.composite
def world_and_box(draw):
    bs = draw(block_sizes)
    nblocks = (3, 3, 3)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    origin, size, arr = _world(bs, nblocks, rng)
    offset = tuple(draw(st.integers(o, o + s - 1)) for o, s in zip(origin, size, strict=True))
    box_size = tuple(
        draw(st.integers(0, o + s - off)) for o, s, off in zip(origin, size, offset, strict=True)
    )
    return bs, origin, arr, offset, box_size, rng


@SETTINGS
@given(world_and_box(), st.sampled_from(["mapping", "callable", "iterable"]))
def test_extract_matches_numpy_slicing(case, kind):
    bs, origin, arr, offset, size, rng = case
    blocks = _blocks_from_world(origin, arr, bs)
    # Drop a random subset of blocks: they must read as `fill`.
    coords = list(blocks)
    dropped = {c for c in coords if rng.random() < 0.3}
    fill = 7
    expected_world = arr.copy()
    for c in dropped:
        del blocks[c]
        b = Box(tuple(ci * bi for ci, bi in zip(c, bs, strict=True)), bs)
        expected_world[b.slices(origin)] = fill
    expected = expected_world[Box(offset, size).slices(origin)]

    if kind == "mapping":
        source = blocks
    elif kind == "callable":
        seen = []

        def source(wanted):
            seen.append(wanted)
            assert wanted.shape[1] == 3
            return ((tuple(c), blocks.get(tuple(c))) for c in wanted.tolist())

    else:
        # Extra blocks outside the box must be ignored; flat and bytes payloads accepted.
        source = [(c, b.ravel() if c[0] % 2 else b.tobytes()) for c, b in blocks.items()]
    got = extract_subvolume(source, offset, size, bs, fill=fill, dtype=np.uint16)
    assert got.dtype == np.uint16
    assert got.shape == zyx_shape(size)
    np.testing.assert_array_equal(got, expected)
    if kind == "callable" and min(size) > 0:
        np.testing.assert_array_equal(seen[0], blocks_in_box(offset, size, bs))


@SETTINGS
@given(world_and_box())
def test_split_assemble_roundtrip(case):
    bs, origin, arr, offset, size, rng = case
    blocks = _blocks_from_world(origin, arr, bs)
    volume = rng.integers(0, 2**16, size=zyx_shape(size), dtype=np.uint16)

    # Expected: plain numpy write into the big array.
    expected = arr.copy()
    expected[Box(offset, size).slices(origin)] = volume

    pieces = split_into_blocks(volume, offset, bs)
    coverage = np.zeros(volume.shape, dtype=np.int32)
    for p in pieces:
        assert isinstance(p, BlockPiece)
        coverage[p.volume_slices] += 1
        region = volume[p.volume_slices]
        assert region.shape == np.empty(zyx_shape(bs))[p.block_slices].shape
        assert p.full == (region.shape == zyx_shape(bs))
        blocks[p.coord] = assemble_block(volume, p, bs, base=blocks.get(p.coord))
        assert blocks[p.coord].flags.c_contiguous
    assert (coverage == 1).all()
    assert [p.coord for p in pieces] == [tuple(c) for c in blocks_in_box(offset, size, bs).tolist()]

    # Read back the whole world from blocks.
    got = extract_subvolume(blocks, origin, xyz_size(arr.shape), bs, dtype=np.uint16)
    np.testing.assert_array_equal(got, expected)


def test_assemble_block_fill_and_no_alias():
    vol = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    (piece,) = block_pieces((1, 1, 1), (2, 2, 2), 4)
    assert not piece.full
    blk = assemble_block(vol, piece, 4, fill=9)
    assert blk.shape == (4, 4, 4)
    assert (blk[1:3, 1:3, 1:3] == vol).all()
    assert blk.sum() == vol.sum() + 9 * (64 - 8)
    base = np.zeros((4, 4, 4), np.uint8)
    out = assemble_block(vol, piece, 4, base=base)
    assert base.sum() == 0 and out.sum() == vol.sum()
    (full,) = block_pieces((0, 0, 0), (2, 2, 2), 2)
    copy = assemble_block(vol, full, 2)
    copy[0, 0, 0] = 99
    assert vol[0, 0, 0] == 0
    with pytest.raises(ValueError):
        assemble_block(vol, piece, 4, base=np.zeros(5, np.uint8))


def test_extract_out_and_errors():
    blocks = {(0, 0, 0): np.ones((2, 2, 2), np.uint8)}
    out = np.full((2, 2, 3), 5, np.uint8)
    res = extract_subvolume(blocks, (0, 0, 0), (3, 2, 2), 2, out=out)
    assert res is out
    assert out[:, :, :2].sum() == 8 and (out[:, :, 2] == 0).all()
    with pytest.raises(ValueError):
        extract_subvolume(blocks, (0, 0, 0), (3, 2, 2), 2, out=np.zeros((1, 1, 1), np.uint8))
    with pytest.raises(ValueError):
        extract_subvolume({(0, 0, 0): np.ones(7, np.uint8)}, (0, 0, 0), (2, 2, 2), 2)
    assert extract_subvolume(blocks, (0, 0, 0), (0, 2, 2), 2).shape == (2, 2, 0)


def test_extract_speed_is_block_level():
    """A 256^3 read from 64^3 blocks is 64 slice assignments (sanity, not a benchmark)."""
    bs = (64, 64, 64)
    blk = np.ones((64, 64, 64), np.uint8)
    blocks = {tuple(c): blk for c in blocks_in_box((0, 0, 0), (256, 256, 256), bs).tolist()}
    out = extract_subvolume(blocks, (10, 10, 10), (256, 256, 256), bs)
    assert out.shape == (256, 256, 256)
    assert out[:-10, :-10, :-10].all() and not out[-1, -1, -1]


# ----- limits of the coordinate space and of key encodings ------------------------------


@SETTINGS
@given(o=st.tuples(i32, i32, i32), s=st.tuples(*[st.integers(1, 2**32)] * 3))
def test_check_int32_box_matches_model(o, s):
    last = [a + b - 1 for a, b in zip(o, s, strict=True)]
    inside = all(v <= INT32_MAX for v in last)
    if inside:
        check_int32_box(o, s)
    else:
        axis = "xyz"[next(i for i, v in enumerate(last) if v > INT32_MAX)]
        with pytest.raises(ValueError, match=f"ends at {axis}=.*int32 voxel coordinate limit"):
            check_int32_box(o, s, "raw request")


@SETTINGS
@given(b=st.tuples(*[st.integers(1, 1024)] * 3))
def test_int32_block_limits_are_tight(b):
    lo, hi = int32_block_limits(b)
    for i in range(3):
        assert lo[i] * b[i] >= INT32_MIN and (lo[i] - 1) * b[i] < INT32_MIN
        assert (hi[i] + 1) * b[i] - 1 <= INT32_MAX and (hi[i] + 2) * b[i] - 1 > INT32_MAX


@SETTINGS
@given(coords=st.lists(st.tuples(*[st.integers(-40, 40)] * 3), max_size=20),
       lo=st.tuples(*[st.integers(-30, 0)] * 3), hi=st.tuples(*[st.integers(0, 30)] * 3))
def test_check_block_coords_matches_model(coords, lo, hi):
    bad = [c for c in coords if any(not a <= v <= z for a, v, z in zip(lo, c, hi, strict=True))]
    if not bad:
        check_block_coords(np.array(coords, dtype=np.int64).reshape(-1, 3), lo, hi, "keys")
        return
    with pytest.raises(ValueError) as e:
        check_block_coords(coords, lo, hi, "label-index block keys")
    msg = str(e.value)
    assert f"block coordinate {bad[0]}" in msg
    assert "label-index block keys" in msg and str(tuple(hi)) in msg


@SETTINGS
@given(st.tuples(*(st.integers(-50, 50),) * 3), st.tuples(*(st.integers(-1, 4),) * 3))
def test_blocks_between_matches_itertools(lo, extent):
    """Every block lo..hi in ZYX scan order (one block, none, and many), as a plain
    triple loop lists them."""
    hi = tuple(a + e for a, e in zip(lo, extent, strict=True))
    want = [[x, y, z] for z, y, x in itertools.product(
        range(lo[2], hi[2] + 1), range(lo[1], hi[1] + 1), range(lo[0], hi[0] + 1))]
    got = blocks_between(lo, hi)
    assert got.dtype == np.int64 and got.shape == (len(want), 3)
    assert got.tolist() == want
