"""``gather_block`` (the contiguous copy of a block before it is encoded): equal to numpy's
own copy for every dtype and layout, the buffer reused only within one thread."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from datatypes.imageblk import gather_block

DTYPES = ["u1", "<u2", "<u4", "<u8", "<f4", ">u2", "V3"]


@st.composite
def views(draw: st.DrawFn) -> np.ndarray:
    dt = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.integers(1, 9)) for _ in range(3))
    raw = draw(st.binary(min_size=int(np.prod(shape)) * dt.itemsize,
                         max_size=int(np.prod(shape)) * dt.itemsize))
    vol = np.frombuffer(raw, dt).reshape(shape)
    sl = []
    for n in shape:
        a = draw(st.integers(0, n))
        b = draw(st.integers(a, n))
        step = draw(st.sampled_from([1, 1, 1, 2, -1]))
        sl.append(slice(a, b, step) if step > 0 else slice(b - 1 if b else None,
                                                           a - 1 if a else None, -1))
    return vol[tuple(sl)]


@settings(max_examples=300, deadline=None)
@given(views())
def test_equals_a_contiguous_copy(v: np.ndarray) -> None:
    want = np.ascontiguousarray(v)
    got = gather_block(v)
    assert got.flags.c_contiguous and got.dtype == v.dtype and got.shape == v.shape
    assert got.tobytes() == want.tobytes()


def test_contiguous_input_is_returned_as_is() -> None:
    a = np.arange(64, dtype=np.uint8).reshape(4, 4, 4)
    assert gather_block(a) is a


def test_buffer_is_per_thread() -> None:
    vol = np.arange(16 * 16 * 16, dtype=np.uint16).reshape(16, 16, 16)
    a, b = vol[:8, :8, :8], vol[8:, 8:, 8:]
    got: dict[str, bytes] = {}
    ga = gather_block(a)

    def other() -> None:
        got["b"] = gather_block(b).tobytes()

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert ga.tobytes() == np.ascontiguousarray(a).tobytes()  # untouched by the other thread
    assert got["b"] == np.ascontiguousarray(b).tobytes()
    gb = gather_block(b)  # the same thread's next call reuses its buffer
    assert gb is ga and gb.tobytes() == np.ascontiguousarray(b).tobytes()
