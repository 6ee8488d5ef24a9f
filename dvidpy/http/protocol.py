"""uvicorn's httptools protocol with a request-header deadline.

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


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` closing connections whose headers are late."""

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
        super().connection_made(transport)
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
