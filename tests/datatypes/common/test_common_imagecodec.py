"""Tests for datatypes.common.imagecodec (JPEG blocks, PNG/JPEG slices), both backends."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from datatypes.common import imagecodec
from datatypes.common.imagecodec import (
    decode_jpeg,
    decode_jpeg_block,
    decode_png,
    encode_jpeg,
    encode_jpeg_block,
    encode_png,
)

SETTINGS = settings(max_examples=40, deadline=None)
BACKENDS = ["default", "pillow"]


@contextlib.contextmanager
def backend(name: str):
    """Temporarily force the Pillow fallback (``"pillow"``) or keep the default."""
    saved = imagecodec._simplejpeg
    if name == "pillow":
        imagecodec._simplejpeg = None
    try:
        yield
    finally:
        imagecodec._simplejpeg = saved


def _pillow_decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@st.composite
def smooth_blocks(draw):
    """Low-frequency uint8 blocks (what EM grayscale roughly looks like to JPEG)."""
    bx, by, bz = draw(st.integers(1, 70)), draw(st.integers(1, 24)), draw(st.integers(1, 24))
    base = draw(st.integers(30, 220))
    gx, gy, gz = (draw(st.floats(-1.0, 1.0)) for _ in range(3))
    z, y, x = np.meshgrid(np.arange(bz), np.arange(by), np.arange(bx), indexing="ij")
    vol = base + gx * x + gy * y + gz * z
    return np.clip(np.rint(vol), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(block=smooth_blocks(), quality=st.integers(75, 95))
def test_jpeg_block_dims_and_tolerance(name, block, quality):
    bz, by, bx = block.shape
    with backend(name):
        data = encode_jpeg_block(block, quality)
        im = _pillow_decode(data)  # independent decoder
        assert im.format == "JPEG"
        assert im.mode == "L"
        assert im.size == (bx, by * bz)  # width bx, height by*bz: Z slices stacked
        pil = np.asarray(im).reshape(bz, by, bx)
        assert np.abs(pil.astype(int) - block.astype(int)).mean() <= 3.0
        ours = decode_jpeg_block(data, (bx, by, bz))
        assert ours.shape == (bz, by, bx) and ours.dtype == np.uint8
        assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 2


def test_jpeg_block_slice_order():
    """Z slice k occupies image rows [k*by, (k+1)*by) -- what neuroglancer assumes."""
    block = np.zeros((4, 8, 16), np.uint8)
    for k in range(4):
        block[k] = 40 + 50 * k
    img = np.asarray(_pillow_decode(encode_jpeg_block(block, 95)))
    for k in range(4):
        assert abs(int(img[k * 8 : (k + 1) * 8].mean()) - (40 + 50 * k)) <= 2


@pytest.mark.parametrize("name", BACKENDS)
def test_jpeg_is_baseline_single_component(name):
    """Baseline (SOF0) 1-component JFIF: the safest input for neuroglancer's decoder."""
    with backend(name):
        data = encode_jpeg_block(np.full((2, 8, 8), 77, np.uint8))
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    sof = data.index(b"\xff\xc0")
    assert b"\xff\xc2" not in data  # not progressive
    # SOF0: length(2) precision(1) height(2) width(2) ncomponents(1)
    assert data[sof + 4] == 8
    assert int.from_bytes(data[sof + 5 : sof + 7], "big") == 16
    assert int.from_bytes(data[sof + 7 : sof + 9], "big") == 8
    assert data[sof + 9] == 1


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(value=st.integers(0, 255), shape=st.tuples(*(st.integers(1, 20),) * 3))
def test_jpeg_uniform_block_nearly_exact(name, value, shape):
    block = np.full(shape, value, np.uint8)
    with backend(name):
        out = decode_jpeg_block(encode_jpeg_block(block), shape[::-1])
    assert np.abs(out.astype(int) - value).max() <= 1


@pytest.mark.parametrize("name", BACKENDS)
def test_jpeg_block_wrong_size_and_garbage(name):
    block = np.zeros((4, 8, 16), np.uint8)
    with backend(name):
        data = encode_jpeg_block(block)
        with pytest.raises(ValueError, match="expected"):
            decode_jpeg_block(data, (16, 8, 3))
        with pytest.raises(ValueError):
            decode_jpeg_block(data, (16, 8))
        with pytest.raises(ValueError):
            decode_jpeg_block(b"not a jpeg", (16, 8, 4))
        with pytest.raises(ValueError):
            decode_jpeg_block(data[: len(data) // 2], (16, 8, 4))


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=64))
def test_decode_garbage_is_valueerror(name, data):
    with backend(name):
        with pytest.raises(ValueError):
            decode_jpeg(data)
        with pytest.raises(ValueError):
            decode_png(data)


@pytest.mark.parametrize("name", BACKENDS)
def test_decode_color_jpeg_gives_luminance(name):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., :] = (100, 100, 100)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    with backend(name):
        out = decode_jpeg(buf.getvalue())
    assert out.shape == (16, 24)
    assert abs(int(out.mean()) - 100) <= 2


@pytest.mark.parametrize("name", BACKENDS)
@SETTINGS
@given(h=st.integers(1, 300), w=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_jpeg_slice_dims(name, h, w, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    with backend(name):
        data = encode_jpeg(img, 80)
        assert data[:2] == b"\xff\xd8"
        im = _pillow_decode(data)
        assert im.mode == "L" and im.size == (w, h)
        assert decode_jpeg(data).shape == (h, w)


@SETTINGS
@given(
    h=st.integers(1, 200),
    w=st.integers(1, 200),
    seed=st.integers(0, 2**32 - 1),
    level=st.integers(0, 9),
)
def test_png_lossless(h, w, seed, level):
    img = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    data = encode_png(img, level)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    im = _pillow_decode(data)
    assert im.mode == "L" and im.size == (w, h)
    np.testing.assert_array_equal(np.asarray(im), img)
    np.testing.assert_array_equal(decode_png(data), img)


def test_png_non_contiguous_input():
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)[:, ::2]
    np.testing.assert_array_equal(decode_png(encode_png(img)), img)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint16),
        np.zeros((4, 4, 3), np.uint8),
        np.zeros((0, 4), np.uint8),
        np.zeros(4, np.uint8),
    ],
)
def test_slice_encoders_reject(bad):
    with pytest.raises(ValueError):
        encode_png(bad)
    with pytest.raises(ValueError):
        encode_jpeg(bad)


def test_bad_parameters():
    img = np.zeros((4, 4), np.uint8)
    for q in (0, 101, 80.5, True):
        with pytest.raises(ValueError):
            encode_jpeg(img, q)  # type: ignore[arg-type]
    for lvl in (-1, 10):
        with pytest.raises(ValueError):
            encode_png(img, lvl)
    with pytest.raises(ValueError):
        encode_jpeg_block(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        encode_jpeg_block(np.zeros((2, 2, 2), np.int16))
    with pytest.raises(ValueError):
        encode_jpeg(np.zeros((70000, 1), np.uint8))


def test_backend_reported():
    assert imagecodec.JPEG_BACKEND in ("simplejpeg", "pillow")
