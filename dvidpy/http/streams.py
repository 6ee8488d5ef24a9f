"""Streamed answers: one thread hand-off per response, few large writes, errors before 200.

Starlette's :class:`~starlette.responses.StreamingResponse` runs a synchronous iterator in
the thread pool *once per item* (``iterate_in_threadpool``): an answer of 10,000 small
records pays 10,000 hand-offs and 10,000 socket writes. :class:`StreamingResponse` here
takes the same arguments but runs a synchronous iterator in one worker thread for the
whole answer; the thread joins small pieces into writes of about ``chunk`` bytes (pieces
at least that large go out as they are, uncopied) and hands them over through a queue of
``depth`` writes, so memory stays bounded when the client reads slowly.

The first write is produced *before* the status line is sent: a generator that validates
its input lazily and raises a :class:`~dvidpy.errors.DvidError` on its first step answers
with that error (a 4xx), not with a 200 and a truncated body. An error after the first
write can only end the connection (it is logged by the dispatcher).

If the client goes away the worker stops at its next piece and the iterator is closed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.responses import StreamingResponse as _Starlette
from starlette.types import Receive, Scope, Send

from dvidpy.errors import DvidError

_DONE = object()
CHUNK = 1 << 20
DEPTH = 4


def _size(piece: Any) -> int:
    return piece.nbytes if isinstance(piece, memoryview) else len(piece)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def coalesce(pieces: Iterable[Any], chunk: int = CHUNK) -> Iterator[Any]:
    """``pieces`` regrouped into writes of about ``chunk`` bytes (large pieces alone)."""
    buf: list[Any] = []
    n = 0
    for p in pieces:
        k = _size(p)
        if k >= chunk:
            if buf:
                yield b"".join(buf)
                buf, n = [], 0
            yield p
            continue
        buf.append(p)
        n += k
        if n >= chunk:
            yield b"".join(buf)
            buf, n = [], 0
    if buf:
        yield b"".join(buf)


async def threaded(pieces: Iterable[Any], chunk: int = CHUNK,
                   depth: int = DEPTH) -> AsyncIterator[Any]:
    """The writes of ``coalesce(pieces)``, produced in one worker thread (see the module
    docstring)."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x: Any) -> None:
        asyncio.run_coroutine_threadsafe(q.put(x), loop).result()

    def produce() -> None:
        it = iter(coalesce(pieces, chunk))
        try:
            for w in it:
                if stop.is_set():
                    return
                put(w)
            put(_DONE)
        except BaseException as e:  # handed to the consumer, which raises it
            if not stop.is_set():
                try:
                    put(_Failure(e))
                except RuntimeError:  # the loop is gone (shutdown): nobody to tell
                    pass
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    worker = loop.run_in_executor(None, produce)
    try:
        while True:
            w = await q.get()
            if w is _DONE:
                break
            if isinstance(w, _Failure):
                raise w.exc
            yield w
    finally:
        stop.set()
        while not q.empty():  # unblock a worker waiting for room; it then sees stop
            q.get_nowait()
        del worker


class Deferred(Response):
    """A response made in the thread pool when it is sent: ``fn(*args)`` returns the real
    :class:`~starlette.responses.Response`. Lets a handler that runs on the event loop
    (declared ``inline``) answer its cheap cases at once and hand the expensive ones to a
    thread. A :class:`~dvidpy.errors.DvidError` from ``fn`` is raised before anything is
    sent, so it still becomes its 4xx answer."""

    def __init__(self, fn: Callable[..., Response], *args: Any) -> None:
        self.fn = fn
        self.args = args
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            resp = await run_in_threadpool(self.fn, *self.args)
        except DvidError as e:  # no traceback: the pool's frames would keep the request
            raise e.with_traceback(None) from None
        await resp(scope, receive, send)


class StreamingResponse(_Starlette):
    """:class:`starlette.responses.StreamingResponse` with the behaviour of the module
    docstring for synchronous iterators (asynchronous ones are used as they are)."""

    def __init__(self, content: Any, status_code: int = 200,
                 headers: dict[str, str] | None = None, media_type: str | None = None,
                 chunk: int = CHUNK) -> None:
        if not hasattr(content, "__aiter__"):
            content = threaded(content, chunk)
        super().__init__(content, status_code, headers, media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        it = self.body_iterator.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            first = None
        except DvidError:
            await it.aclose() if hasattr(it, "aclose") else None
            raise

        async def rest() -> AsyncIterator[Any]:
            if first is not None:
                yield first
                async for w in it:
                    yield w

        self.body_iterator = rest()
        await super().__call__(scope, receive, send)
