"""Reading request bodies: one buffer, bounded in size and in time.

:func:`read_body` is the only place a request body is read. With a ``Content-Length`` it
refuses an oversized body with 413 *before reading any of it*, then fills one buffer
allocated at that size (no growing, no joining, no second copy); a chunked body grows one
buffer only up to the limit, then 413. Each wait for the next piece of the body is bounded
by ``timeout`` seconds (408 after it, and the connection is closed), so a client that stops
sending mid-body does not hold a handler for ever.

The result is a :class:`bytearray` (or, when the whole body arrived in one piece, that
piece itself, uncopied): handlers read it in place (``np.frombuffer``, ``memoryview``,
slicing) and never copy it whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from dvidpy.errors import BadRequest, DvidError, TooLarge

Receive = Callable[[], Awaitable[dict[str, Any]]]


class RequestTimeout(DvidError):
    """The client took longer than the body timeout to send the rest of its body (408)."""

    status_code = 408


class ClientGone(DvidError):
    """The client disconnected before sending its whole body (no answer can reach it)."""

    status_code = 400


def content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` header as an int (None when absent); 400 when malformed."""
    for k, v in headers:
        if k == b"content-length":
            if not v.isdigit():
                raise BadRequest(f"malformed Content-Length {v[:40]!r}")
            return int(v)
    return None


async def _piece(receive: Receive, timeout: float | None) -> tuple[bytes, bool]:
    """The next piece of the body and whether more follows (408 / ClientGone)."""
    try:
        msg = await (receive() if timeout is None else asyncio.wait_for(receive(), timeout))
    except asyncio.TimeoutError:
        raise RequestTimeout(
            f"request body not received within {timeout:g} s of the previous part") from None
    if msg["type"] == "http.disconnect":
        raise ClientGone("client disconnected before sending its body")
    return msg.get("body", b""), msg.get("more_body", False)


async def read_body(receive: Receive, headers: list[tuple[bytes, bytes]], limit: int,
                    timeout: float | None = None) -> bytes | bytearray:
    """The whole request body (see the module docstring).

    Raises :class:`TooLarge` (413) over ``limit`` bytes, :class:`RequestTimeout` (408) when
    a part does not arrive within ``timeout`` s, :class:`ClientGone` on disconnect, and
    :class:`BadRequest` when the body is shorter or longer than its ``Content-Length``.
    """
    n = content_length(headers)
    if n is not None and n > limit:
        raise TooLarge(f"request body of {n} bytes is over the server limit of {limit} bytes")
    if n is not None:
        chunk, more = await _piece(receive, timeout)
        if not more:  # all in one piece: no copy at all
            if len(chunk) != n:
                raise BadRequest(f"request body has {len(chunk)} bytes, Content-Length said "
                                 f"{n}")
            return chunk
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while True:
            k = len(chunk)
            if got + k > n:
                raise BadRequest(f"request body is longer than its Content-Length {n}")
            view[got:got + k] = chunk
            got += k
            if not more:
                break
            chunk, more = await _piece(receive, timeout)
        view.release()
        if got != n:
            raise BadRequest(f"request body has {got} bytes, Content-Length said {n}")
        return buf
    buf = bytearray()
    more = True
    while more:
        chunk, more = await _piece(receive, timeout)
        if len(buf) + len(chunk) > limit:
            raise TooLarge(f"request body is over the server limit of {limit} bytes")
        buf += chunk
    return buf
