"""Checks of decoded JSON fields, each a 400 naming the field when the type is wrong."""

from __future__ import annotations

from typing import Any

from dvidpy.errors import BadRequest


def str_field(d: dict[str, Any], key: str, default: str = "") -> str:
    """``d[key]`` as a string (``default`` when absent)."""
    v = d.get(key, default)
    if not isinstance(v, str):
        raise BadRequest(f"field {key!r} must be a string")
    return v


def str_list(d: dict[str, Any], key: str) -> list[str]:
    """``d[key]`` as a list of strings (empty when absent)."""
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadRequest(f"field {key!r} must be a list of strings")
    return v


def opt_uuid(d: dict[str, Any], key: str) -> str | None:
    """``d[key]`` as an optional UUID string (None when absent, null or empty)."""
    v = d.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise BadRequest(f"field {key!r} must be a UUID string")
    return v
