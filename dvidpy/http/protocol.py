"""uvicorn's httptools protocol with a request-header deadline and corked writes.

uvicorn closes idle kept-alive connections (``timeout_keep_alive``) but puts no limit on
how long a client may take to send a request's headers: a connection that is opened and
never finishes its headers (slowloris, half-open peers) stays open for ever. Here every
request must deliver its complete headers within ``header_timeout`` seconds of the
connection opening or of its first byte; otherwise the connection is closed (with a 408
when a request had begun; silently when nothing was sent, since a client may be about to
reuse an idle connection). Idle time between requests is uvicorn's ``timeout_keep_alive``.
Body pauses are bounded separately, by the body reader (:mod:`dvidpy.http.body`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: 34\r\n\r\nrequest headers not received in time")


class CorkedTransport:
    """A transport whose writes made in one event-loop step leave in one ``writelines``
    (one system call, one wake-up of the client) at the end of that step.

    uvicorn writes a response's status line and headers, then its body, as two
    ``transport.write`` calls; with ``TCP_NODELAY`` each is a separate segment and a separate
    wake-up of the reader, and the first one was the most expensive line of a small GET
    (py-spy). Order is kept; ``close`` sends what is pending first; everything else is the
    wrapped transport's.
    """

    __slots__ = ("_loop", "_pending", "_t")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._t = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or self._t.is_closing():
            return
        if len(pending) == 1:
            self._t.write(pending[0])
        else:
            self._t.writelines(pending)

    def close(self) -> None:
        self._flush()
        self._t.close()

    def get_write_buffer_size(self) -> int:
        return self._t.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` closing connections whose headers are late, writing
    through a :class:`CorkedTransport`."""

    header_timeout: float = 30.0

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = False

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self._in_headers:
            self.transport.write(_408)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()


def protocol_class(header_timeout: float) -> type[DeadlineHttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with this header deadline."""
    return type("DeadlineHttpToolsProtocol", (DeadlineHttpToolsProtocol,),
                {"header_timeout": float(header_timeout)})
