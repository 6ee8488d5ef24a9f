"""``dvidpy.codec`` value framing: round trips and DVID's byte layout, property-based."""

from __future__ import annotations

import struct

import lz4.block
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvidpy.codec import CodecError, deserialize, serialize, split_frame

payloads = st.one_of(st.binary(max_size=5000),
                     st.integers(0, 3000).map(lambda n: b"\x07" * n))  # compressible too


@given(payloads, st.sampled_from(["none", "lz4", "gzip", "snappy"]), st.booleans(),
       st.booleans())
def test_round_trip(data: bytes, comp: str, crc: bool, as_view: bool) -> None:
    framed = serialize(memoryview(data) if as_view else data, comp, crc)
    assert deserialize(framed) == data
    code, _ = split_frame(framed)
    assert code == {"none": 0, "gzip": 2, "lz4": 4, "snappy": 4}[comp]


@given(payloads, st.booleans())
def test_lz4_layout_is_dvids(data: bytes, crc: bool) -> None:
    """byte 0 = 4 << 5 (| 8 with CRC), [CRC32], uint32 LE length, raw LZ4 block."""
    framed = serialize(data, "lz4", crc)
    assert framed[0] == (0x88 if crc else 0x80)
    body = framed[5:] if crc else framed[1:]
    assert struct.unpack_from("<I", body)[0] == len(data)
    assert lz4.block.decompress(body[4:], uncompressed_size=len(data)) == data


@given(st.binary(min_size=1, max_size=2000), st.integers(0, 10_000), st.booleans())
def test_corrupt_values_raise(data: bytes, where: int, crc: bool) -> None:
    framed = bytearray(serialize(data, "lz4", crc))
    i = 1 + where % (len(framed) - 1)
    framed[i] ^= 0xFF
    try:
        out = deserialize(bytes(framed))
    except CodecError:
        return
    assert not crc  # a checksummed value never decodes after a flipped byte
    assert isinstance(out, bytes)


def test_empty_and_short_values() -> None:
    for bad in (b"", b"\x88\x00", b"\x80\x01"):
        with pytest.raises(CodecError):
            deserialize(bad)
