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
