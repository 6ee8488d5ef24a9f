"""HTTP plumbing shared by ``server.py`` and the transfer routes.

:func:`guard` wraps a request handler so that a :class:`~dvidpy.errors.DvidError` becomes
the plain-text answer DVID gives (:func:`error_response`); :func:`read_body` reads a
request body up to the server's size limit and :func:`read_json` parses it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from dvidpy.errors import BadRequest, DvidError, TooLarge

Handler = Callable[[Request], Awaitable[Response]]


def error_response(e: DvidError, path: str) -> Response:
    """``e`` as plain text with its status code; `` (path)`` is appended unless the message
    already ends with a parenthesis (which by convention names the path)."""
    msg = e.message if e.message.endswith(")") else f"{e.message} ({path})"
    return PlainTextResponse(msg, status_code=e.status_code)


def guard(fn: Handler) -> Handler:
    """``fn`` answering a :class:`DvidError` with :func:`error_response`."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except DvidError as e:
            return error_response(e, request.url.path)

    return wrapped


async def read_body(request: Request, limit: int) -> bytes:
    """The request body; :class:`TooLarge` (413) past ``limit`` bytes, before reading it
    all when ``Content-Length`` says so."""
    cl = request.headers.get("content-length")
    if cl is not None and cl.isdigit() and int(cl) > limit:
        raise TooLarge(f"request body of {cl} bytes is over the server limit of {limit}")
    parts = []
    n = 0
    async for part in request.stream():
        n += len(part)
        if n > limit:
            raise TooLarge(f"request body is over the server limit of {limit} bytes")
        parts.append(part)
    return b"".join(parts)


async def read_json(request: Request, limit: int) -> Any:
    """The request body (see :func:`read_body`) parsed as JSON; ``None`` when it is blank,
    :class:`BadRequest` when it is not JSON."""
    body = await read_body(request, limit)
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON body ({e}) ({request.url.path})") from None
