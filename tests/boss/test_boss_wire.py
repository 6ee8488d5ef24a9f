"""The Boss's cutout wire formats (dvidpy.boss.wire): every format round-trips random
arrays of every channel type; hostile bodies (wrong sizes, blosc headers lying about their
size, zip bombs, pickles that would run code) are 400s, never a crash or a decode of
something else."""

from __future__ import annotations

import io
import os
import pickle
import zlib

import blosc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from dvidpy.boss import wire
from dvidpy.boss.errors import BossError

DTYPES = [np.dtype(t) for t in ("u1", "<u2", "<u4", "<u8")]
arrays = st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=3, max_dims=4, min_side=1, max_side=9)))


@settings(max_examples=80, deadline=None)
@given(arrays, st.sampled_from(wire.BODY_FORMATS))
def test_every_body_format_round_trips(arr: np.ndarray, media: str) -> None:
    body = wire.encode(media, arr)
    got = wire.decode_body(media, body, arr.dtype, arr.shape)
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert got.tobytes() == arr.tobytes()


@settings(max_examples=40, deadline=None)
@given(arrays)
def test_blosc_with_either_typesize_decodes(arr: np.ndarray) -> None:
    """intern and the Boss pass the bit width as typesize; the bytes form is ours."""
    for typesize in (arr.dtype.itemsize * 8, arr.dtype.itemsize, 1):
        body = blosc.compress(arr.tobytes(), typesize=typesize)
        assert wire.decode_body(wire.BLOSC, body, arr.dtype, arr.shape).tobytes() == \
            arr.tobytes()
    assert blosc.decompress(wire.encode(wire.BLOSC, arr)) == arr.tobytes()


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1,
                                              max_side=12)))
def test_jpeg_sprite_sheet_is_the_stack_of_z_slices(arr: np.ndarray) -> None:
    img = Image.open(io.BytesIO(wire.encode(wire.JPEG, arr)))
    nz, ny, nx = arr.shape
    assert img.size == (nx, nz * ny) and img.mode == "L"
    flat = np.full(arr.shape, 117, np.uint8)  # a uniform volume survives exactly
    dec = np.array(Image.open(io.BytesIO(wire.encode(wire.JPEG, flat))))
    assert (np.abs(dec.astype(int) - 117) <= 1).all()


def test_wrong_shape_dtype_and_size_are_400() -> None:
    a = np.arange(24, dtype="<u2").reshape(2, 3, 4)
    for media in wire.BODY_FORMATS:
        body = wire.encode(media, a)
        with pytest.raises(BossError) as e:
            wire.decode_body(media, body, np.dtype("<u2"), (2, 3, 5))
        assert e.value.status_code == 400
        if media != wire.BLOSC:  # a blosc body has no dtype: only its size speaks
            with pytest.raises(BossError):
                wire.decode_body(media, body, np.dtype("<u8"), (2, 3, 4))
    with pytest.raises(BossError) as e:
        wire.decode_body("text/plain", b"x", np.dtype("u1"), (1, 1, 1))
    assert "Content-Type" in e.value.message


def test_hostile_blosc_bodies() -> None:
    a = np.zeros((4, 4, 4), np.uint8)
    good = blosc.compress(a.tobytes(), typesize=8)
    for body in (b"", b"\x00" * 15, b"not blosc at all" * 4, good[:-1], good + b"x",
                 os.urandom(200)):
        with pytest.raises(BossError):
            wire.decode_body(wire.BLOSC, body, np.dtype("u1"), (4, 4, 4))
    # a header claiming 2 GiB: refused from the header, nothing inflated
    big = bytearray(good)
    big[4:8] = (2**31 - 1).to_bytes(4, "little")
    with pytest.raises(BossError):
        wire.decode_body(wire.BLOSC, bytes(big), np.dtype("u1"), (4, 4, 4))


class _Boom:
    def __reduce__(self):  # would run os.system at unpickling
        return (os.system, ("echo pwned > /tmp/dvidpy-boss-pwned",))


def test_blosc_python_pickles_that_are_not_arrays_are_refused(tmp_path) -> None:
    for obj in (_Boom(), {"a": 1}, [np.zeros(3)], "text"):
        body = blosc.compress(pickle.dumps(obj), typesize=1)
        with pytest.raises(BossError):
            wire.decode_body(wire.BLOSC_PYTHON, body, np.dtype("u1"), (1, 1, 3))
    assert not os.path.exists("/tmp/dvidpy-boss-pwned")
    # an object-dtype array cannot smuggle objects in either
    body = blosc.compress(pickle.dumps(np.array([_Boom()], dtype=object)), typesize=1)
    with pytest.raises(BossError):
        wire.decode_body(wire.BLOSC_PYTHON, body, np.dtype("u1"), (1,))
    assert not os.path.exists("/tmp/dvidpy-boss-pwned")
    # old pickle protocols of real arrays are arrays
    a = np.arange(6, dtype="<u2").reshape(1, 2, 3)
    for proto in (2, 3, 4, 5):
        body = blosc.compress(pickle.dumps(a, protocol=proto), typesize=2)
        assert wire.decode_body(wire.BLOSC_PYTHON, body, a.dtype, a.shape).tobytes() == \
            a.tobytes()


def test_npygz_bomb_and_pickled_npy_are_refused() -> None:
    bomb = zlib.compress(b"\x00" * (50 << 20))
    with pytest.raises(BossError):
        wire.decode_body(wire.NPYGZ, bomb, np.dtype("u1"), (4, 4, 4))
    buf = io.BytesIO()
    np.save(buf, np.array([1, "x"], dtype=object), allow_pickle=True)
    with pytest.raises(BossError):
        wire.decode_body(wire.NPYGZ, zlib.compress(buf.getvalue()), np.dtype("u1"), (2,))
    with pytest.raises(BossError):
        wire.decode_body(wire.NPYGZ, b"\x78\x9c garbage", np.dtype("u1"), (2,))


@pytest.mark.parametrize("accept,want", [
    ("", wire.BLOSC), ("*/*", wire.BLOSC), ("application/blosc", wire.BLOSC),
    ("application/npygz, application/blosc;q=0.5", wire.NPYGZ),
    ("application/blosc;q=0.2, application/blosc-python", wire.BLOSC_PYTHON),
    ("image/jpeg", wire.JPEG), ("image/*", wire.JPEG), ("text/html, */*;q=0.1", wire.BLOSC),
])
def test_accept_negotiation(accept: str, want: str) -> None:
    assert wire.negotiate(accept) == want


def test_unanswerable_accept_is_400() -> None:
    with pytest.raises(BossError) as e:
        wire.negotiate("text/html")
    assert e.value.status_code == 400 and "application/blosc" in e.value.message


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3 << 20), st.sampled_from([1, 2, 4, 8]), st.integers(0, 2**32 - 1))
def test_stored_frames_are_blosc_frames(n: int, itemsize: int, seed: int) -> None:
    """What the server streams for incompressible answers: any blosc reads it back."""
    n -= n % itemsize
    if n == 0:
        n = itemsize
    data = np.random.default_rng(seed).bytes(n)
    frame = wire.stored_header(n, itemsize) + data
    assert blosc.get_cbuffer_sizes(frame)[:2] == (n, n + 16)
    assert blosc.decompress(frame) == data
    arr = np.frombuffer(data, dtype=f"<u{itemsize}" if itemsize > 1 else "u1")
    assert wire.decode_body(wire.BLOSC, frame, arr.dtype, arr.shape).tobytes() == data


def test_compressibility_is_judged_on_a_sample() -> None:
    rng = np.random.default_rng(0)
    assert not wire.worth_compressing(rng.integers(0, 255, (8, 512, 512), dtype=np.uint8))
    assert wire.worth_compressing(np.zeros((8, 512, 512), np.uint64))
    seg = np.repeat(rng.integers(1, 50, (8, 64, 64), dtype=np.uint64), 8, axis=2)
    assert wire.worth_compressing(seg)
