"""The compiled label block kernels (``_block_codec_c``) against the numpy reference.

Every property compares the two paths on the same input: encoded bytes must be identical,
decoded arrays equal, and the compiled decoder must reject exactly the inputs that the
reference rejects (it hands those to the reference, which names the problem).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.labelmap import block_codec as bc
from tests.datatypes.labelmap.test_labelmap_block_codec import any_id, label_blocks

U64_MAX = 2**64 - 1
_ext = bc._ext

needs_ext = pytest.mark.skipif(_ext is None, reason="compiled label block codec not built")


def test_extension_is_built_in_ci() -> None:
    """CI installs with gcc, so there the fast path must be what runs."""
    if not os.environ.get("CI") or os.environ.get("DVIDPY_NO_EXTENSION"):
        pytest.skip("only enforced in CI")
    assert bc.HAVE_EXTENSION, "datatypes/labelmap/_block_codec_c was not built by pip install"


# ---------------------------------------------------------------------------------------------
# Strategies: the shared random blocks plus the extremes, in any memory layout
# ---------------------------------------------------------------------------------------------


@st.composite
def extreme_blocks(draw) -> np.ndarray:
    gz, gy, gx = (draw(st.integers(1, 3)) for _ in range(3))
    shape = (8 * gz, 8 * gy, 8 * gx)
    nsb = gz * gy * gx
    kind = draw(st.sampled_from(["distinct", "one", "max", "two_extremes", "per_subblock"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "distinct":  # every sub-block holds 512 different labels (9-bit packing)
        with np.errstate(over="ignore"):  # an odd multiplier is a bijection mod 2**64
            ids = (np.arange(1, 512 * nsb + 1, dtype=np.uint64)
                   * np.uint64(0x9E3779B97F4A7C15 + 2 * int(rng.integers(0, 2**20))))
        ids[0] = U64_MAX
        sb = ids.reshape(nsb, 512)
        return bc.from_subblock_order(sb, shape)
    if kind == "one":
        return np.full(shape, draw(any_id), dtype=np.uint64)
    if kind == "max":  # only the largest ids
        return (U64_MAX - rng.integers(0, 3, size=shape).astype(np.uint64)).astype(np.uint64)
    if kind == "two_extremes":
        return np.where(rng.random(shape) < 0.5, np.uint64(0), np.uint64(U64_MAX))
    # per sub-block label count k drawn from the bit-width boundaries
    k = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 9, 16, 17, 255, 256, 257, 511, 512]))
    sb = rng.integers(0, k, size=(nsb, 512)).astype(np.uint64) * np.uint64(2**50 + 1)
    return bc.from_subblock_order(sb, shape)


@st.composite
def laid_out(draw, blocks) -> np.ndarray:
    """The same block as C order, Fortran order, a strided window or a reversed view."""
    arr = draw(blocks)
    layout = draw(st.sampled_from(["c", "f", "window", "reversed", "broadcast"]))
    if layout == "f":
        return np.asfortranarray(arr)
    if layout == "window":
        big = np.zeros(tuple(s + 3 for s in arr.shape), dtype=np.uint64)
        big[1:-2, 2:-1, :-3] = arr
        return big[1:-2, 2:-1, :-3]
    if layout == "reversed":
        return np.ascontiguousarray(arr[::-1, :, ::-1])[::-1, :, ::-1]
    if layout == "broadcast":  # zero strides along z
        return np.broadcast_to(arr[:1], arr.shape)
    return arr


any_block = st.one_of(label_blocks(), extreme_blocks())


# ---------------------------------------------------------------------------------------------
# Encode / decode agreement
# ---------------------------------------------------------------------------------------------


@needs_ext
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(laid_out(any_block))
def test_fast_and_reference_agree(arr: np.ndarray) -> None:
    ref = bc.encode_block_numpy(arr)
    assert _ext.encode(arr, False) == ref
    assert bc.encode_block(arr) == ref
    enc, labels, counts = bc.encode_block_counts(arr)
    assert enc == ref
    u, c = np.unique(arr, return_counts=True)
    np.testing.assert_array_equal(labels, u)
    np.testing.assert_array_equal(counts, c)
    lab2, cnt2 = bc.label_counts(arr)
    np.testing.assert_array_equal(lab2, u)
    np.testing.assert_array_equal(cnt2, c)
    tables = bc.decompose_subblocks(bc.to_subblock_order(arr))  # the fallback's counts
    np.testing.assert_array_equal(tables.labels, u)
    np.testing.assert_array_equal(tables.counts, c)
    dec = bc.decode_block(ref)
    np.testing.assert_array_equal(dec, bc.decode_block_numpy(ref))
    np.testing.assert_array_equal(dec, arr)


@needs_ext
def test_all_distinct_subblocks_and_extremes() -> None:
    ids = np.arange(U64_MAX - 4095, U64_MAX + 1, dtype=np.uint64)  # 4096 ids up to max
    arr = bc.from_subblock_order(np.random.default_rng(1).permutation(ids).reshape(8, 512),
                                 (16, 16, 16))
    enc = bc.encode_block(arr)
    assert enc == bc.encode_block_numpy(arr)
    ns = np.frombuffer(enc, "<u2", count=8, offset=16 + 8 * 4096)
    assert ns.tolist() == [512] * 8
    np.testing.assert_array_equal(bc.decode_block(enc), arr)
    solid = np.full((8, 16, 24), U64_MAX, dtype=np.uint64)
    assert bc.encode_block(solid) == struct.pack("<IIIIQ", 3, 2, 1, 1, U64_MAX)
    np.testing.assert_array_equal(bc.decode_block(bc.encode_block(solid)), solid)
    _, labels, counts = bc.encode_block_counts(solid)
    assert labels.tolist() == [U64_MAX] and counts.tolist() == [8 * 16 * 24]


# ---------------------------------------------------------------------------------------------
# Corrupt input: the kernel rejects exactly what the reference rejects
# ---------------------------------------------------------------------------------------------


def _reference(data: bytes) -> np.ndarray | str:
    try:
        return bc.decode_block_numpy(data)
    except ValueError as e:
        return str(e)


def _kernel(data: bytes) -> np.ndarray | None:
    """The kernel's own answer: the array, or None when it calls the data corrupt."""
    if len(data) < 16:
        return None
    gx, gy, gz, n = struct.unpack_from("<IIII", data)
    if not (n and 1 <= gx <= 128 and 1 <= gy <= 128 and 1 <= gz <= 128):
        return None
    out = np.empty((8 * gz, 8 * gy, 8 * gx), np.uint64)
    return out if _ext.decode_into(data, out) == 0 else None


def _agree(data: bytes) -> None:
    ref = _reference(data)
    got = _kernel(data)
    if isinstance(ref, str):
        assert got is None, f"kernel accepted data the reference rejects: {ref}"
        with pytest.raises(ValueError) as e:
            bc.decode_block(data)
        assert str(e.value) == ref  # the public decoder reports the reference's message
    else:
        assert got is not None, "kernel rejected data the reference accepts"
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(bc.decode_block(data), ref)


@needs_ext
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_blocks(max_grid=2), st.data())
def test_mutated_and_truncated_input(arr: np.ndarray, data: st.DataObject) -> None:
    enc = bytearray(bc.encode_block(arr))
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(enc) - 1))
        enc[i] = data.draw(st.integers(0, 255))
    how = data.draw(st.sampled_from(["whole", "truncated", "trailing"]))
    if how == "truncated":
        enc = enc[: data.draw(st.integers(0, len(enc) - 1))]
    elif how == "trailing":
        enc += b"\xff\x00"
    _agree(bytes(enc))


@st.composite
def forged_blocks(draw) -> bytes:
    """Plausible headers (small grid, few labels) followed by arbitrary tables and values."""
    gx, gy, gz = (draw(st.integers(1, 2)) for _ in range(3))
    n = draw(st.integers(0, 6))
    nsb = gx * gy * gz
    labels = struct.pack(f"<{n}Q", *(draw(any_id) for _ in range(n)))
    ns = [draw(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8, 9, 300, 512, 513])) for _ in range(nsb)]
    idx = [draw(st.integers(0, n + 1)) for _ in range(sum(ns))]
    body = struct.pack(f"<{nsb}H", *ns) + struct.pack(f"<{len(idx)}I", *idx)
    need = sum(64 * bc.bits_for(k) for k in ns if k <= 512)
    values = draw(st.binary(min_size=0, max_size=8)) * (need // 8 + 1)
    blob = struct.pack("<IIII", gx, gy, gz, n) + labels + body + values[: need + 2]
    return blob[: draw(st.integers(0, len(blob)))] if draw(st.booleans()) else blob


@needs_ext
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forged_blocks())
def test_forged_input(blob: bytes) -> None:
    _agree(blob)


@needs_ext
@pytest.mark.parametrize(("k", "bad"), [(3, 3), (5, 7), (300, 511), (257, 300), (2, None)])
def test_packed_value_range_check(k: int, bad: int | None) -> None:
    """Values >= Ns are corrupt exactly when Ns is not a power of two."""
    b = bc.bits_for(k)
    vals = np.arange(512) % k
    if bad is not None:
        vals[-1] = bad
    bits = "".join(format(int(v), f"0{b}b") for v in vals)
    packed = int(bits, 2).to_bytes(len(bits) // 8, "big")
    data = (struct.pack("<IIII", 1, 1, 1, k) + struct.pack(f"<{k}Q", *range(10, 10 + k))
            + struct.pack("<H", k) + struct.pack(f"<{k}I", *range(k)) + packed)
    _agree(data)
    assert (_kernel(data) is None) == (bad is not None)


@needs_ext
def test_kernel_argument_errors() -> None:
    enc = bc.encode_block(np.arange(512, dtype=np.uint64).reshape(8, 8, 8))
    with pytest.raises(ValueError, match="output buffer"):
        _ext.decode_into(enc, np.empty((8, 8, 16), np.uint64))
    with pytest.raises(ValueError, match="8-byte"):
        _ext.encode(np.zeros((8, 8, 8), np.uint32), False)
    with pytest.raises(ValueError, match="multiples of 8"):
        _ext.encode(np.zeros((8, 8, 12), np.uint64), False)
    with pytest.raises(BufferError):
        _ext.decode_into(enc, b"read-only")


# ---------------------------------------------------------------------------------------------
# Threads (the kernels release the GIL) and the numpy fallback
# ---------------------------------------------------------------------------------------------


@needs_ext
def test_parallel_threads_give_the_serial_answers() -> None:
    rng = np.random.default_rng(2)
    blocks = [rng.integers(0, 40, size=(32, 32, 32)).astype(np.uint64) * np.uint64(2**40)
              for _ in range(8)]
    want = [bc.encode_block_numpy(b) for b in blocks]
    got: dict[int, tuple[bytes, np.ndarray]] = {}

    def work(i: int) -> None:
        for _ in range(5):
            enc = bc.encode_block(blocks[i])
            got[i] = (enc, bc.decode_block(enc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, b in enumerate(blocks):
        assert got[i][0] == want[i]
        np.testing.assert_array_equal(got[i][1], b)


def test_numpy_fallback_is_selectable() -> None:
    code = (
        "import numpy as np\n"
        "from datatypes.labelmap import block_codec as bc\n"
        "assert not bc.HAVE_EXTENSION and bc._ext is None\n"
        "a = (np.arange(4096, dtype=np.uint64) // 100).reshape(16, 16, 16)\n"
        "e, l, c = bc.encode_block_counts(a)\n"
        "assert e == bc.encode_block_numpy(a) and (bc.decode_block(e) == a).all()\n"
        "assert l.tolist() == sorted(set(a.ravel().tolist())) and int(c.sum()) == 4096\n"
        "l2, c2 = bc.label_counts(a)\n"
        "assert (l2 == l).all() and (c2 == c).all() and c.tolist()[-1] == 4096 - 4000\n"
        "print('ok')\n"
    )
    env = {**os.environ, "DVIDPY_NO_EXTENSION": "1"}
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
