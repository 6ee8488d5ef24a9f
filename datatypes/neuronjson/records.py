"""neuronjson records: parsing, the per-field ``_user`` / ``_time`` stamps, and the
``show=`` / ``fields=`` views (DVID's ``datatype/neuronjson`` rules, restated).

A record is a JSON object with a ``bodyid`` (uint64, equal to its key). A field ``F`` may be
accompanied by ``F_user`` (who last set it) and ``F_time`` (when, RFC3339 to the second);
``bodyid`` and ``user`` never get stamps and ``bodyid_user`` / ``bodyid_time`` are refused.

Posting ``new`` over the stored ``orig`` (:func:`update_record`):

* a field posted as ``null`` is removed (with its value in ``orig``); unless it is itself a
  stamp, its ``F_user`` / ``F_time`` are set to the posted ones or to the request's user and
  the current time (a stamp posted as ``null`` is not written);
* a field whose value is new or different (compared as canonical JSON, so ``1`` and
  ``1.0`` differ) gets ``F_user`` = the request's user and ``F_time`` = now, unless the post
  sets them itself; an unchanged value keeps its old stamps;
* without ``replace=true``, fields of ``orig`` absent from the post are kept, and fields
  named in ``conditional`` keep their stored value when the record already has them;
* with ``replace=true`` fields absent from the post are dropped, and posted fields keep
  their stored stamps (or get new ones when they had none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dvidpy.dag import now
from dvidpy.errors import BadRequest

UINT64_MAX = 2**64 - 1
STAMPS = ("_user", "_time")
#: ``show=`` values → (show ``_user`` fields, show ``_time`` fields)
SHOW = {"": (False, False), "user": (True, False), "time": (False, True), "all": (True, True)}


def is_stamp(field: str) -> bool:
    """True for ``F_user`` / ``F_time`` metadata fields."""
    return field.endswith(STAMPS)


def canonical(value: Any) -> str:
    """Canonical JSON text of a value (what equality of field values means)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def dumps(record: Mapping[str, Any]) -> bytes:
    """Compact JSON with sorted keys (how DVID's Go encoder writes maps)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def is_uint64(v: Any) -> bool:
    """True for JSON integers in 0..2^64-1 (not booleans)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= UINT64_MAX


def parse_body_id(key: str, what: str = "key") -> int:
    """A neuronjson key: a decimal uint64 body id other than 0; 400 otherwise."""
    if not key.isascii() or not key.isdigit():
        raise BadRequest(f"neuronjson {what} {key!r} must be a decimal uint64 body id")
    v = int(key)
    if v > UINT64_MAX:
        raise BadRequest(f"neuronjson {what} {key!r} is larger than a uint64")
    return v


def range_bound(key: str) -> int:
    """A ``keyrange`` bound as DVID reads it: a first character above ``9`` means the
    largest id, below ``0`` the smallest; otherwise a decimal uint64 (400 if not)."""
    if not key:
        raise BadRequest("keyrange bounds must be non-empty")
    if key[0] > "9":
        return UINT64_MAX
    if key[0] < "0":
        return 0
    if not key.isascii() or not key.isdigit() or int(key) > UINT64_MAX:
        raise BadRequest(f"keyrange bound {key!r} is not a uint64 (or a bound below '0' / "
                         "above '9')")
    return int(key)


def check_post(key_id: int, record: Any) -> dict[str, Any]:
    """The posted record after DVID's checks: an object whose ``bodyid`` is a uint64 equal
    to the key, without ``bodyid_user`` / ``bodyid_time``, whose stamps are strings or
    null; 400 naming the problem otherwise."""
    if not isinstance(record, dict):
        raise BadRequest("a neuronjson value must be a JSON object")
    if key_id == 0:
        raise BadRequest("body id 0 is reserved and so cannot be stored")
    for f in ("bodyid_user", "bodyid_time"):
        if f in record:
            raise BadRequest(f"{f!r} field not allowed")
    if "bodyid" not in record:
        raise BadRequest("neuronjson data must have 'bodyid' field")
    if not is_uint64(record["bodyid"]):
        raise BadRequest("neuronjson 'bodyid' field must be uint64")
    if record["bodyid"] != key_id:
        raise BadRequest(f"neuronjson 'bodyid' field {record['bodyid']} must match key "
                         f"{key_id}")
    for f, v in record.items():
        if is_stamp(f) and v is not None and not isinstance(v, str):
            raise BadRequest(f"stamp field {f!r} must be a string or null, not {v!r}")
    return record


def stamp_time() -> str:
    """Now as RFC3339 with seconds and the numeric zone (Go's ``time.RFC3339``)."""
    return now().replace(microsecond=0).isoformat()


def update_record(orig: dict[str, Any] | None, new: dict[str, Any], user: str,
                  conditionals: Iterable[str] = (), replace: bool = False,
                  when: str | None = None) -> dict[str, Any]:
    """The record stored after posting ``new`` over ``orig`` (see the module docstring).
    ``new`` is consumed; ``orig`` is not modified."""
    t = when or stamp_time()
    orig = dict(orig) if orig is not None else None
    given_user = {f[:-5]: v for f, v in new.items() if f.endswith("_user")}
    given_time = {f[:-5]: v for f, v in new.items() if f.endswith("_time")}

    deleted = {f for f, v in new.items() if v is None}
    for f in deleted:
        del new[f]
        if orig is not None:
            orig.pop(f, None)
    for f in deleted:
        if is_stamp(f):
            continue
        u = given_user.get(f, user)  # a stamp posted as null: none written
        tm = given_time.get(f, t)
        if u:
            new[f + "_user"] = u
        if tm:
            new[f + "_time"] = tm

    changed: set[str] = set()
    posted: set[str] = set()
    if orig is None:
        changed = set(new)
        changed.update(f[:-5] for f in new if f.endswith("_user"))
    else:
        for f, v in new.items():
            if f not in orig or is_stamp(f) or canonical(v) != canonical(orig[f]):
                changed.add(f)
            if not is_stamp(f):
                posted.add(f)
        if not replace:
            protected = set(conditionals)
            for f, v in orig.items():
                if f in deleted:
                    continue
                if f not in new:
                    new[f] = v
                elif f in protected:
                    new[f] = v
                    changed.discard(f)

    for f in changed:
        if f in ("bodyid", "user") or f in deleted or is_stamp(f):
            continue
        if f + "_user" not in changed and user:
            new[f + "_user"] = user
        if f + "_time" not in changed:
            new[f + "_time"] = t
    if replace and orig is not None:
        for f in posted:
            if f == "bodyid" or f in deleted:
                continue
            if f + "_user" not in new:
                new[f + "_user"] = orig.get(f + "_user", user)
            if f + "_time" not in new:
                new[f + "_time"] = orig.get(f + "_time", t)
    return new


def parse_fields(raw: str | None) -> list[str]:
    """``fields=a,b`` as a list (empty: every field)."""
    return [f for f in (raw or "").split(",") if f]


def select(record: Mapping[str, Any], fields: list[str], show: str) -> dict[str, Any]:
    """The view of a record for ``fields=`` and ``show=``: ``bodyid`` always; the listed
    fields (with their stamps when shown) or every field but the hidden stamps."""
    show_user, show_time = SHOW.get(show or "", (False, False))
    out: dict[str, Any] = {}
    if "bodyid" in record:
        out["bodyid"] = record["bodyid"]
    if fields:
        for f in fields:
            if f == "bodyid":
                continue
            if f in record:
                out[f] = record[f]
            if show_user and f + "_user" in record:
                out[f + "_user"] = record[f + "_user"]
            if show_time and f + "_time" in record:
                out[f + "_time"] = record[f + "_time"]
        return out
    for f, v in record.items():
        if (not show_user and f.endswith("_user")) or (not show_time and f.endswith("_time")):
            continue
        out[f] = v
    return out
