"""The compiled block encoder (``_blockencode_c``) against the numpy reference.

Each property builds a random volume (noise, or with compressible stretches), picks whole
blocks of it anywhere inside, and has both paths frame them: every value must decode (the
same :func:`dvidpy.codec.deserialize` the reads use) to its block, carry DVID's head byte
and length prefix, and, with the same liblz4 algorithm, equal the reference byte for byte
where the reference's LZ4 makes the same block. Bad inputs tried: blocks reaching outside
the volume on each side (ValueError from both), a volume that is not C-contiguous, codecs
the kernel does not make (gzip, jpeg, an unknown name: None, so the caller encodes them),
origins of the wrong shape, an empty block.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datatypes.common import blockencode as be
from dvidpy.codec import deserialize

needs_ext = pytest.mark.skipif(be._ext is None, reason="compiled block encoder not built")
DTYPES = (np.dtype("u1"), np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8"))


def test_extension_is_built_in_ci() -> None:
    """CI installs liblz4-dev and gcc, so there the kernel must be what runs."""
    if not os.environ.get("CI") or os.environ.get("DVIDPY_NO_EXTENSION"):
        pytest.skip("only enforced in CI")
    assert be.HAVE_EXTENSION, "datatypes/common/_blockencode_c was not built by pip install"


@st.composite
def cases(draw: st.DrawFn) -> dict:
    dtype = draw(st.sampled_from(DTYPES))
    bshape = tuple(draw(st.integers(1, 20)) for _ in range(3))  # z, y, x
    shape = tuple(b * draw(st.integers(1, 3)) + draw(st.integers(0, 5)) for b in bshape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    vol = rng.integers(0, 2**63, shape, dtype=np.uint64).astype(dtype)
    if draw(st.booleans()):
        vol[rng.random(shape) < draw(st.floats(0.3, 1.0))] = 7
    n = draw(st.integers(0, 20))
    origins = [[draw(st.integers(0, shape[a] - bshape[a])) for a in range(3)]
               for _ in range(n)]
    return {"vol": vol, "bshape": bshape, "origins": np.array(origins, np.int64).reshape(-1, 3),
            "codec": draw(st.sampled_from(("lz4", "none", "snappy")))}


@needs_ext
@given(cases(), st.integers(1, 4))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_kernel_values_decode_to_their_blocks(c: dict, threads: int) -> None:
    vol, (bz, by, bx), origins = c["vol"], c["bshape"], c["origins"]
    with ThreadPoolExecutor(threads) as pool:
        got = be.encode_blocks(vol, origins, (bz, by, bx), c["codec"], pool, threads)
    ref = be.encode_blocks_numpy(vol, origins, (bz, by, bx), c["codec"])
    assert got is not None and len(got) == len(ref) == len(origins)
    nbytes = bz * by * bx * vol.itemsize
    for value, want, (z, y, x) in zip(got, ref, origins.tolist(), strict=True):
        assert type(value) is bytes
        blk = vol[z:z + bz, y:y + by, x:x + bx]
        assert value[0] == want[0]  # the head byte: codec, no checksum
        if c["codec"] == "none":
            assert value == want
        else:  # DVID's uint32 little-endian length, then LZ4
            assert value[1:5] == nbytes.to_bytes(4, "little")
        assert np.array_equal(np.frombuffer(deserialize(value), vol.dtype).reshape(blk.shape),
                              blk)
        assert deserialize(value) == deserialize(want)


@needs_ext
def test_refusals() -> None:
    vol = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    for o in ([1, 0, 0], [0, 2, 0], [0, 0, 3], [-1, 0, 0], [0, 0, -1]):
        with pytest.raises(ValueError, match="outside"):
            be.encode_blocks(vol, np.array([o]), (4, 4, 4), "lz4")
        with pytest.raises(ValueError, match="outside"):
            be.encode_blocks_numpy(vol, np.array([o]), (4, 4, 4), "lz4")
    assert be.encode_blocks(vol[:, :, ::2], np.zeros((1, 3), np.int64), (2, 2, 2), "lz4") is None
    for codec in ("gzip", "jpeg", "zstd"):
        assert be.encode_blocks(vol, np.zeros((1, 3), np.int64), (2, 2, 2), codec) is None
    with pytest.raises(ValueError, match="3 int64"):
        be._ext.encode_blocks(vol, vol.shape, np.zeros(4, np.int64), (2, 2, 2), 2, True)
    with pytest.raises(ValueError, match="empty block"):
        be._ext.encode_blocks(vol, vol.shape, np.zeros(3, np.int64), (0, 2, 2), 2, True)
    with pytest.raises(ValueError, match="does not match"):
        be._ext.encode_blocks(vol, (4, 5, 7), np.zeros(3, np.int64), (2, 2, 2), 2, True)
    assert be.encode_blocks(vol, np.zeros((0, 3), np.int64), (2, 2, 2), "lz4") == []
