"""neuronjson ``query``: DVID's matching rules for field values, lists, regular
expressions and field existence, restated.

A query is a JSON object ``{field: wanted, ...}`` (every field must match: AND) or a
non-empty list of such objects (any of them: OR). A record matches ``{field: wanted}`` when:

=====================================  ====================================================
``wanted``                             the record's value ``v`` of ``field`` (absent/null
                                       never matches)
=====================================  ====================================================
integer                                ``v`` is that integer, an integral float equal to
                                       it, or a list of integers holding it
list of integers                       as above for any of them (``[]`` matches nothing)
string                                 ``v`` is that string or a list of strings holding it
``"re/PATTERN"``                       PATTERN (RE2 syntax, as Go's ``regexp``; found
                                       anywhere unless anchored with ``^``) matches ``v`` or
                                       an element of a list of strings; a pattern that does
                                       not compile is an ordinary string (``"re/"`` alone
                                       matches every string)
list of strings (some ``"re/..."``)    any element matches as above (``"re/"`` alone is a
                                       plain string here)
list of numbers, some not integers     ``v`` is a non-integral float in the list (Go reads
                                       such lists as floats)
list starting with a string, mixed     its string elements, compared exactly
``"exists/1"`` / ``"exists/0"``        the field is present and not null / absent or null
anything else (non-integral numbers,   nothing (DVID logs these as illegal query types)
booleans, null, objects, other lists)
=====================================  ====================================================

Record values that are booleans, objects, non-integral-float lists or mixed lists never
match. A query whose objects name only ``bodyid`` with integer values is answered by
direct lookups of those ids; ``{}`` matches nothing (as in DVID). Regular expressions run on
RE2, so matching is linear in the size of the values and a query costs one pass over the
instance's records at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import re2

from dvidpy.errors import BadRequest

#: patterns longer than this are refused (RE2 programs grow with the pattern)
MAX_PATTERN = 4096


@dataclass(frozen=True)
class Exists:
    """``"exists/1"`` (True) or ``"exists/0"`` (False)."""

    present: bool


@dataclass(frozen=True)
class Floats:
    """A list of numbers with a non-integer among them: DVID compares them, as floats,
    with record values that are non-integral floats only."""

    values: frozenset[float]


class Never:
    """A query value of a type that matches nothing."""


NEVER = Never()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _regex(s: str) -> Any:
    if len(s) > MAX_PATTERN:
        raise BadRequest(f"query regular expression longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(s)
    except Exception:
        return None


def compile_value(v: Any) -> Any:
    """A query value as the matcher uses it: int, tuple of ints, str, compiled regex,
    tuple of str/regex, :class:`Exists` or :data:`NEVER`."""
    if _is_int(v):
        return v
    if isinstance(v, str):
        if v.startswith("re/"):
            r = _regex(v[3:])
            if r is not None:
                return r
        if len(v) == 8 and v.startswith("exists/"):
            return Exists(v[7] != "0")
        return v
    if isinstance(v, list):
        if all(_is_int(x) for x in v):
            return tuple(v)
        if all(isinstance(x, str) for x in v):
            out = []
            for x in v:
                r = _regex(x[3:]) if x.startswith("re/") and len(x) > 3 else None
                out.append(r if r is not None else x)
            return tuple(out)
        if isinstance(v[0], str):  # mixed: DVID compares the string elements only
            return tuple(x for x in v if isinstance(x, str))
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
            return Floats(frozenset(float(x) for x in v))
    return NEVER


def parse_query(body: Any) -> list[dict[str, Any]]:
    """The query objects of a request body (an object or a non-empty list of objects),
    compiled; 400 otherwise."""
    qs = body if isinstance(body, list) else [body]
    if not qs:
        raise BadRequest("no query provided")
    out = []
    for q in qs:
        if not isinstance(q, dict):
            raise BadRequest("a neuronjson query is a JSON object or a list of objects, "
                             f"not {q!r:.80}")
        out.append({k: compile_value(v) for k, v in q.items()})
    return out


def only_body_ids(queries: list[dict[str, Any]]) -> list[int] | None:
    """The body ids when every query names only ``bodyid`` with integers, else None."""
    ids: list[int] = []
    for q in queries:
        for k, v in q.items():
            if k != "bodyid":
                return None
            if _is_int(v):
                ids.append(v)
            elif isinstance(v, tuple) and all(_is_int(x) for x in v):
                ids.extend(v)
            else:
                return None
    return ids


def _field_lists(v: Any) -> tuple[list[int], list[str]] | None:
    """(integers, strings) a record value offers to matching; None when it offers none."""
    if _is_int(v):
        return [v], []
    if isinstance(v, float):
        return ([int(v)], []) if v.is_integer() else None
    if isinstance(v, str):
        return [], [v]
    if isinstance(v, list) and v:
        if all(_is_int(x) for x in v):
            return list(v), []
        if all(isinstance(x, str) for x in v):
            return [], list(v)
    return None


def _value_matches(wanted: Any, value: Any) -> bool:
    if value is None or wanted is NEVER:
        return False
    if isinstance(wanted, Floats):
        return isinstance(value, float) and not value.is_integer() and value in wanted.values
    lists = _field_lists(value)
    if lists is None:
        return False
    nums, strs = lists
    wants = wanted if isinstance(wanted, tuple) else (wanted,)
    for w in wants:
        if _is_int(w):
            if w in nums:
                return True
        elif isinstance(w, str):
            if w in strs:
                return True
        elif any(w.search(s) for s in strs):  # a compiled regex
            return True
    return False


def matches(queries: list[dict[str, Any]], record: Mapping[str, Any]) -> bool:
    """True when ``record`` matches any of the query objects (see the module docstring)."""
    for q in queries:
        for field, wanted in q.items():
            value = record.get(field)
            if isinstance(wanted, Exists):
                if wanted.present != (value is not None):
                    break
            elif not _value_matches(wanted, value):
                break
        else:
            return True
    return False
