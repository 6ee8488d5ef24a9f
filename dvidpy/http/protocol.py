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
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: 34\r\n\r\nrequest headers not received in time")


#: writes at least this large are not held back (nothing to gain: they are not small)
CORK_MAX = 64 << 10


class CorkedTransport:
    """A transport whose writes made in one event-loop step leave in one ``writelines``
    (one system call, one wake-up of the client) at the end of that step.

    uvicorn writes a response's status line and headers, then its body, as two
    ``transport.write`` calls; with ``TCP_NODELAY`` each is a separate segment and a separate
    wake-up of the reader, and the first one was the most expensive line of a small GET
    (py-spy). A write of :data:`CORK_MAX` bytes or more goes out at once with what is
    pending. Order is kept; ``close`` sends what is pending first; everything else is the
    wrapped transport's.
    """

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_t")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._t = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if len(data) >= CORK_MAX:  # a big piece: send it (and what waits) at once
            self._pending.append(data)
            self._flush()
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)
        self._pending_bytes += len(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        self._pending_bytes = 0
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
        return self._t.get_write_buffer_size() + self._pending_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


#: body bytes a connection buffers before it stops reading the socket until the handler
#: takes them. uvicorn's 64 KiB made a 512 MiB upload 8192 pause/resume round trips through
#: the event loop (and 8192 wake-ups of the body reader).
BODY_HIGH_WATER = 4 << 20
#: a body written into a :class:`BodySink` wakes its reader after this many bytes (or
#: :data:`SINK_WAKE_SECONDS`), so the reader's per-piece timeout still sees progress
SINK_WAKE_BYTES = 4 << 20
SINK_WAKE_SECONDS = 0.5


class BodySink:
    """A request body received straight into the body reader's own buffer.

    The protocol puts one in the request's scope as ``scope["dvidpy.body_sink"]``. After
    :meth:`install` (with a buffer of exactly ``Content-Length`` bytes) the body's bytes are
    copied from the parser into that buffer as they arrive, instead of being queued for
    ``receive`` (which copies them twice more); ``receive`` then only signals progress
    (empty ``http.request`` messages) and the end of the body. :attr:`received` is how many
    bytes have arrived; :meth:`close` ends the arrangement (bytes beyond the buffer, which a
    ``Content-Length`` body never has, are queued for ``receive`` as usual).
    """

    __slots__ = ("_cycle", "_proto", "_view", "_woke_at", "_woke_pos", "received")

    def __init__(self, proto: DeadlineHttpToolsProtocol, cycle: Any) -> None:
        self._proto = proto
        self._cycle = cycle
        self._view: memoryview | None = None
        self.received = 0
        self._woke_pos = 0
        self._woke_at = 0.0

    def install(self, buf: memoryview) -> None:
        """Receive the rest of the body into ``buf`` (what is already queued goes first)."""
        c = self._cycle
        queued = c.body
        n = len(queued)
        if n > len(buf):
            raise ValueError("more body queued than the buffer holds")
        buf[:n] = queued
        c.body = bytearray()
        self._view = buf
        self.received = n
        self._woke_pos = n
        self._woke_at = self._proto.loop.time()
        self._proto._sink = self
        self._proto.flow.resume_reading()

    def take(self, body: bytes) -> bool:
        """Copy a piece of body into the buffer; False when it does not fit."""
        view = self._view
        end = self.received + len(body)
        if view is None or end > len(view):
            return False
        view[self.received:end] = body
        self.received = end
        now = self._proto.loop.time()
        if end - self._woke_pos >= SINK_WAKE_BYTES or now - self._woke_at >= SINK_WAKE_SECONDS:
            self._woke_pos, self._woke_at = end, now
            self._cycle.message_event.set()
        return True

    def close(self) -> None:
        """Stop receiving into the buffer (idempotent)."""
        if self._proto._sink is self:
            self._proto._sink = None
        self._view = None


#: header values a response may not carry (uvicorn refuses them too: no header injection);
#: a response answered on the spot with one takes uvicorn's path, and its refusal
BAD_HEADER_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
#: request headers that keep a GET on the ASGI path: a body, ``Expect``, and what uvicorn's
#: proxy-headers middleware reads (it rewrites the scope for trusted proxies)
_AWAITED_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"expect",
                              b"x-forwarded-for", b"x-forwarded-proto"))
#: responses answered on the spot stop when this much waits unsent on the connection (the
#: rest take the ASGI path, which waits for the client to read: bounded memory for a
#: client that pipelines requests and reads nothing)
DIRECT_MAX_BUFFERED = 1 << 20

#: ``scope -> (status, headers, body) | None``: :meth:`~dvidpy.http.router.Dispatcher.
#: answer_now`
Answerer = Callable[[dict[str, Any]], "tuple[int, list[tuple[bytes, bytes]], Any] | None"]


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` closing connections whose headers are late, writing
    through a :class:`CorkedTransport`, and answering body-less GET and HEAD requests on
    the spot through :attr:`answer_now` when one is set.

    Answering on the spot skips what uvicorn does per request for an ASGI app (a task, a
    request-response cycle, its event, ASGI messages): for a small read that was most of
    the server's cost. It is taken only when nothing else is in progress on the connection
    (no running or pipelined request, less than :data:`DIRECT_MAX_BUFFERED` unsent, the
    transport not paused) and the request has no body, no ``Expect`` and no proxy
    headers, over HTTP/1.1; the answerer declines (None) for routes that must be awaited,
    and then the request takes uvicorn's path unchanged.
    """

    header_timeout: float = 30.0
    answer_now: Answerer | None = None

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._sink: BodySink | None = None
        self._now = False

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
        if self.answer_now is not None and self._may_answer_now():
            self._now = True  # answered when the message completes (it has no body)
            return
        self._start_cycle()

    def _start_cycle(self) -> None:
        """uvicorn's request start (a cycle and its ASGI task, or a place in the pipeline),
        with a :class:`BodySink` in the new cycle's scope."""
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before and self.cycle is not None:
            self.cycle.scope["dvidpy.body_sink"] = BodySink(self, self.cycle)

    def _may_answer_now(self) -> bool:
        p = self.parser
        if p.get_method() not in (b"GET", b"HEAD") or p.get_http_version() != "1.1":
            return False
        if p.should_upgrade() or self.pipeline or self.flow.write_paused:
            return False
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return False
        if self.transport.get_write_buffer_size() >= DIRECT_MAX_BUFFERED:
            return False
        for name, value in self.headers:
            if name in _AWAITED_HEADERS and not (name == b"content-length"
                                                 and value.strip() == b"0"):
                return False
        return True

    def on_message_complete(self) -> None:
        if not self._now:
            super().on_message_complete()
            return
        self._now = False
        scope = self.scope
        method = self.parser.get_method().decode("ascii")
        scope["method"] = method
        try:
            url = httptools.parse_url(self.url)
        except httptools.HttpParserError:
            url = None
        out = None
        if url is not None:
            raw = url.path
            path = raw.decode("ascii")
            if "%" in path:
                path = unquote(path)
            scope["path"] = self.root_path + path
            scope["raw_path"] = self.root_path.encode("ascii") + raw
            scope["query_string"] = url.query or b""
            out = self.answer_now(scope)  # type: ignore[misc]
        if out is None:
            self._start_cycle()  # uvicorn's path (scope may carry a prepared response)
            super().on_message_complete()
            return
        self._write_now(method, *out)
        self.on_response_complete()

    def _write_now(self, method: str, status: int, headers: list[tuple[bytes, bytes]],
                   body: Any) -> None:
        """Write a whole response (its header values already checked against
        :data:`BAD_HEADER_VALUE`), closing the connection after it when asked."""
        close = not self.parser.should_keep_alive()
        out = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            out += (name, b": ", value, b"\r\n")
        for name, value in headers:
            if name == b"connection" and value.lower() == b"close":
                close = True
            out += (name, b": ", value, b"\r\n")
        if close:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        t = self.transport
        t.write(b"".join(out))
        if method != "HEAD" and len(body):
            t.write(body)
        if close:
            t.close()

    def on_body(self, body: bytes) -> None:
        """Copy a piece of the body into the request's installed :class:`BodySink`, else
        queue it for the ASGI ``receive``, and stop reading the socket above
        :data:`BODY_HIGH_WATER` queued bytes (``receive`` resumes it)."""
        cycle = self.cycle
        if cycle.response_complete or (self.parser.should_upgrade() and
                                       self._should_upgrade()):
            return
        sink = self._sink
        if sink is not None and sink._cycle is cycle and sink.take(body):
            return
        cycle.body += body
        if len(cycle.body) > BODY_HIGH_WATER:
            self.flow.pause_reading()
        cycle.message_event.set()


def protocol_class(header_timeout: float, answer_now: Answerer | None = None
                   ) -> type[DeadlineHttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with this header deadline, and
    answering body-less reads on the spot through ``answer_now`` when given (see
    :class:`DeadlineHttpToolsProtocol`)."""
    return type("DeadlineHttpToolsProtocol", (DeadlineHttpToolsProtocol,),
                {"header_timeout": float(header_timeout),
                 "answer_now": staticmethod(answer_now) if answer_now else None})
