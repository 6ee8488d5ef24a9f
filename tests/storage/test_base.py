"""KeyRange and prefix_successor (engine-independent)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from storage import KeyRange, prefix_successor

small_bytes = st.lists(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]), max_size=4).map(bytes)


def test_prefix_successor_examples() -> None:
    assert prefix_successor(b"a") == b"b"
    assert prefix_successor(b"a\xff") == b"b"
    assert prefix_successor(b"\x00\xff\xff") == b"\x01"
    assert prefix_successor(b"\xfe") == b"\xff"
    assert prefix_successor(b"\xff") is None
    assert prefix_successor(b"\xff\xff") is None
    assert prefix_successor(b"") is None


@given(prefix=small_bytes, key=small_bytes)
def test_prefix_range_contains_exactly_the_prefixed_keys(prefix: bytes, key: bytes) -> None:
    assert (key in KeyRange.prefix(prefix)) == key.startswith(prefix)


def test_key_range_basics() -> None:
    r = KeyRange(b"b", b"d")
    assert b"b" in r
    assert b"c\xff" in r
    assert b"d" not in r
    assert b"a" not in r
    assert bytearray(b"c") in r
    assert "c" not in r
    assert b"\xff" * 10 in KeyRange(b"a")
    assert not r.is_empty()
    assert KeyRange(b"b", b"b").is_empty()
    assert KeyRange(b"c", b"b").is_empty()
    assert not KeyRange().is_empty()
    assert KeyRange.prefix(b"") == KeyRange()
