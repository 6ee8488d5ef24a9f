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
import sys
import threading
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


#: bodies of at least this many bytes are received straight into their buffer when the
#: server offers a sink (see :func:`read_body`)
SINK_MIN = 1 << 20


class BufferPool:
    """Large body buffers kept for the next body of the same size.

    A buffer handed out stays referenced here (the :attr:`keep` most recent, at most
    :attr:`max_bytes` in all); :meth:`get` gives one back out only when nothing else refers
    to it any more (its reference count says only the pool holds it: the request, its
    handler and every array or view over it are gone), so a buffer in use is never handed
    out twice. Why: a fresh buffer is a fresh ``mmap`` whose every page faults and is
    zeroed by the kernel on first touch, and on a VM that reports free memory to its host
    (virtio-balloon free page reporting) a page freed for more than ~2 s costs ~10x more to
    touch again; a stream of same-sized uploads (an ingest's chunks) receives into warm
    pages instead. A reused buffer holds the previous body's bytes until the new body has
    overwritten all of it; a body that ends short is refused before a handler sees it.
    Buffers not handed out for :attr:`idle_seconds` are dropped (by :meth:`expire`, which
    the body reader schedules after each large body, and at the next :meth:`get`).
    """

    def __init__(self, keep: int = 4, max_bytes: int = 1 << 30,
                 idle_seconds: float = 60.0) -> None:
        self.keep = keep
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self._bufs: list[tuple[float, bytearray]] = []  # (last handed out, buffer), newest last
        self._lock = threading.Lock()

    def get(self, n: int, now: float) -> bytearray:
        """A buffer of exactly ``n`` bytes (contents undefined when reused)."""
        with self._lock:
            bufs = [e for e in self._bufs if now - e[0] < self.idle_seconds]
            b = self._free(bufs, n)
            if b is None:
                b = bytearray(n)
            bufs.append((now, b))
            total = 0
            kept: list[tuple[float, bytearray]] = []
            for t, x in reversed(bufs):  # newest first
                if len(kept) < self.keep and total + len(x) <= self.max_bytes:
                    kept.append((t, x))
                    total += len(x)
            self._bufs = kept[::-1]
            return b

    def expire(self, now: float) -> None:
        """Drop the buffers not handed out since ``now - idle_seconds``."""
        with self._lock:
            self._bufs = [e for e in self._bufs if now - e[0] < self.idle_seconds]

    @staticmethod
    def _free(bufs: list[tuple[float, bytearray]], n: int) -> bytearray | None:
        """Takes out of ``bufs`` and returns a buffer of ``n`` bytes nothing else uses."""
        for i in range(len(bufs)):
            # references to it: its (time, buffer) tuple, and getrefcount's argument
            if len(bufs[i][1]) == n and sys.getrefcount(bufs[i][1]) <= 2:
                return bufs.pop(i)[1]
        return None

    def nbytes(self) -> int:
        """Bytes of the buffers held."""
        with self._lock:
            return sum(len(b) for _, b in self._bufs)


#: the body buffers of bodies received into a sink (see :class:`BufferPool`)
POOL = BufferPool()


async def _read_into_sink(receive: Receive, sink: Any, n: int,
                          timeout: float | None) -> bytearray:
    loop = asyncio.get_running_loop()
    buf = POOL.get(n, loop.time())
    loop.call_later(POOL.idle_seconds + 1, lambda: POOL.expire(loop.time()))
    view = memoryview(buf)
    try:
        sink.install(view)
        more = True
        while more:
            chunk, more = await _piece(receive, timeout)
            if chunk:  # only bytes that did not fit (never for a Content-Length)
                raise BadRequest(f"request body is longer than its Content-Length {n}")
        got = sink.received
    finally:
        sink.close()
        view.release()
    if got != n:
        raise BadRequest(f"request body has {got} bytes, Content-Length said {n}")
    return buf


async def read_body(receive: Receive, headers: list[tuple[bytes, bytes]], limit: int,
                    timeout: float | None = None, sink: Any = None) -> bytes | bytearray:
    """The whole request body (see the module docstring).

    ``sink``: the server's ``scope["dvidpy.body_sink"]``
    (:class:`dvidpy.http.protocol.BodySink`), if any: a body of at least :data:`SINK_MIN`
    bytes with a ``Content-Length`` is then copied once, by the server's protocol, from the
    HTTP parser into the returned buffer (instead of three times through ``receive``).

    Raises :class:`TooLarge` (413) over ``limit`` bytes, :class:`RequestTimeout` (408) when
    a part does not arrive within ``timeout`` s, :class:`ClientGone` on disconnect, and
    :class:`BadRequest` when the body is shorter or longer than its ``Content-Length``.
    """
    n = content_length(headers)
    if n is not None and n > limit:
        raise TooLarge(f"request body of {n} bytes is over the server limit of {limit} bytes")
    if n is not None and sink is not None and n >= SINK_MIN:
        return await _read_into_sink(receive, sink, n, timeout)
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
