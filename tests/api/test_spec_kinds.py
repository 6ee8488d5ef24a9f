"""Parameter kinds of the route table (dvidpy.http.spec.KINDS) that datatypes rely on."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvidpy.errors import BadRequest
from dvidpy.http.spec import INT32_MAX, KINDS, Param


@given(st.tuples(*(st.integers(1, INT32_MAX),) * 3))
def test_size3_roundtrip(s: tuple[int, int, int]) -> None:
    text = "_".join(map(str, s))
    assert KINDS["size3"].parse(text) == s
    assert re.fullmatch(KINDS["size3"].schema["pattern"], text)


@pytest.mark.parametrize("text", ["1_2", "1_2_3_4", "0_1_1", "1_-1_1", "a_b_c", "1__2",
                                  "", "2147483648_1_1", "1.5_1_1", "+1_1_1", " 1_1_1"])
def test_size3_rejects(text: str) -> None:
    with pytest.raises(BadRequest, match="size"):
        Param("size", "size3").parse(text, "path parameter")


def test_parsed_values_are_remembered_within_bounds() -> None:
    """Numeric kinds answer repeated short inputs from a bounded cache: the same value
    (immutable) comes back; failures are not kept (each raises again); inputs longer than
    the bound are parsed every time and never kept, so a client cannot grow the cache."""
    kind = KINDS["coord"]
    inner = kind.parse.__wrapped__
    first = kind.parse("1_2_3")
    assert first == (1, 2, 3) and kind.parse("1_2_3") is first
    for _ in range(3):
        with pytest.raises(ValueError):
            kind.parse("1_2_x")
    long = "1_2_" + "0" * 70 + "3"
    before = _cache_size(kind)
    assert kind.parse(long) == (1, 2, 3) == inner(long)
    assert _cache_size(kind) == before
    for i in range(5000):  # more distinct values than the cache holds
        kind.parse(f"{i}_0_0")
    assert _cache_size(kind) <= 4096


def _cache_size(kind) -> int:
    cached = kind.parse.__closure__  # memo(s) -> cached(s) if short else parse(s)
    fn = next(c.cell_contents for c in cached if hasattr(c.cell_contents, "cache_info"))
    return fn.cache_info().currsize
