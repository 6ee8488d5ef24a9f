"""The one JSON reader for untrusted input: bounded in nesting depth and in size.

Python's :func:`json.loads` recurses once per nesting level, so ``[[[[...]]]]`` a few
thousand levels deep raises :class:`RecursionError` (a 500 if nothing catches it), and
code that walks the result recurses again. :func:`loads` refuses such documents before
parsing, with a :class:`~dvidpy.errors.BadRequest` naming the limit, in time linear in the
document and without recursion:

* a document with at most ``max_depth`` opening brackets cannot nest deeper, so the common
  case costs one ``bytes.count`` pair;
* otherwise the depth is computed with numpy over the bytes outside strings (quotes
  preceded by an odd run of backslashes are escaped, so they do not end a string).

Every HTTP route (server, repo, node, datatype, transfer) and every reader of a peer's JSON
answer goes through this module.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from dvidpy.errors import BadRequest, TooLarge

#: nesting depth allowed in request bodies (DVID's documents nest at most ~5 levels)
MAX_DEPTH = 64
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def nesting_depth(data: bytes | bytearray | memoryview) -> int:
    """Maximum bracket nesting depth of a JSON text, ignoring brackets inside strings.

    Malformed text (unbalanced brackets, an unterminated string) still gets a number:
    the depth of the deepest prefix, which is what a parser would reach before failing.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        return 0
    quotes = np.flatnonzero(buf == _QUOTE)
    if quotes.size:
        # length of the run of backslashes right before each quote
        bs = (buf == _BACKSLASH).astype(np.int64)
        # index of the last non-backslash at or before i; the run before q is q-1 minus it
        idx = np.arange(buf.size)
        last_non = np.maximum.accumulate(np.where(bs == 0, idx, -1))
        run_before = np.where(quotes > 0, quotes - 1 - last_non[np.maximum(quotes - 1, 0)], 0)
        real = quotes[run_before % 2 == 0]
        toggles = np.zeros(buf.size, dtype=np.int8)
        toggles[real] = 1
        inside = (np.cumsum(toggles) % 2).astype(bool)  # True inside strings (and on "open)
        delta = _OPEN[buf]
        delta[inside] = 0
    else:
        delta = _OPEN[buf]
    return int(np.cumsum(delta, dtype=np.int64).max(initial=0))


def loads(data: bytes | bytearray | memoryview | str, what: str = "request body",
          max_depth: int = MAX_DEPTH, max_bytes: int | None = None) -> Any:
    """Parse untrusted JSON; :class:`BadRequest` when malformed or nested deeper than
    ``max_depth``, :class:`TooLarge` when over ``max_bytes`` (no limit when None).

    ``what`` names the document in messages (e.g. ``"merge body"``: "malformed JSON in
    merge body (...)"). Text must be UTF-8
    (a BOM or other encodings are malformed, as for DVID).
    """
    raw = data.encode() if isinstance(data, str) else data
    n = len(raw) if not isinstance(raw, memoryview) else raw.nbytes
    if max_bytes is not None and n > max_bytes:
        raise TooLarge(f"{what} of {n} bytes is over the limit of {max_bytes} bytes")
    if (raw.count(b"[") + raw.count(b"{")) > max_depth and nesting_depth(raw) > max_depth:
        raise BadRequest(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(bytes(raw) if isinstance(raw, memoryview) else raw)
    except RecursionError:  # defensive: a smaller interpreter stack than assumed
        raise BadRequest(f"{what} nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON in {what} ({e})") from None
