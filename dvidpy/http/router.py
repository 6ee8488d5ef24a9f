"""The router: declared routes in a segment trie, and the ASGI entry that serves them.

Lookup walks the request path's segments through a trie of the declared templates (literal
children before parameter children, with backtracking), so its cost grows with the path's
depth, not with the number of routes. Path segments are split on the *raw* path and then
percent-decoded to bytes, so ``%2F`` inside a segment stays inside it and every distinct
byte string stays distinct; segments reach handlers as ``str`` decoded from UTF-8 with
``surrogateescape`` (``seg.encode("utf-8", "surrogateescape")`` gives the exact bytes back).

:class:`Dispatcher` is the ASGI application for HTTP: it answers CORS preflights, finds
the route (404 unknown path, 405 wrong method), refuses mutations in read-only mode, parses
the declared parameters (400), reads the declared body (413/408), runs the handler on the
event loop (``async def``) or in the thread pool (``def``), turns
:class:`~dvidpy.errors.DvidError` into DVID's plain-text answers and any other exception
into a logged 500, and writes one access-log line.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from dvidpy import jsonio
from dvidpy.auth.identity import ANONYMOUS, UNCHECKED, Identity
from dvidpy.errors import BadRequest, DvidError, NotFound, Unauthorized
from dvidpy.http.body import read_body
from dvidpy.http.load import LoadCounters
from dvidpy.http.protocol import BAD_HEADER_VALUE
from dvidpy.http.spec import RouteSpec, Segment

if TYPE_CHECKING:
    from dvidpy.config import Settings
    from dvidpy.repo import RepoManager

log = logging.getLogger("dvidpy.access")
errlog = logging.getLogger("dvidpy")
CLOSE = {"Connection": "close"}
#: scope key: a handler that sets it to a user name has this request's latency recorded
#: for that user (``/api/user-latencies``; the heartbeat's ``u=``)
LATENCY_USER = "dvidpy.latency_user"
#: the query of a request without one (immutable, so one for all)
NO_QUERY = QueryParams(b"")


def split_path(scope: Scope) -> list[str]:
    """The request path's segments (see the module docstring); one trailing ``/`` and the
    leading one are dropped."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    raw = raw.partition(b"?")[0]
    parts = raw.split(b"/")
    if parts and parts[0] == b"":
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] == b"":
        parts = parts[:-1]
    if b"//" in raw:
        fmt = error_format(raw.decode("latin-1"))
        if fmt is not None and fmt.collapse_slashes:
            parts = [p for p in parts if p]
    return [(unquote_to_bytes(p) if b"%" in p else p).decode("utf-8", "surrogateescape")
            for p in parts]


@dataclass
class ServerState:
    """What every handler may reach: settings, the repo manager, per-module state."""

    settings: Settings
    mgr: RepoManager
    started: float = field(default_factory=time.time)
    extras: dict[str, Any] = field(default_factory=dict)
    load: LoadCounters = field(default_factory=LoadCounters)
    #: the server's :class:`~dvidpy.auth.service.Auth` (None: every request allowed)
    auth: Any = None


class MethodNotAllowed(DvidError):
    """A known path with a method it does not take (405)."""

    status_code = 405


class HttpCall:
    """One request to a declared server-level route, with its parameters parsed."""

    __slots__ = ("_headers", "body", "identity", "method", "params", "path", "query",
                 "receive", "scope", "spec", "state")

    def __init__(self, scope: Scope, receive: Receive, state: ServerState, spec: RouteSpec,
                 params: dict[str, Any], query: QueryParams) -> None:
        self.scope = scope
        self.receive = receive
        self.state = state
        self.spec = spec
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.params = params
        self.query = query
        self.body: bytes | bytearray = b""
        self.identity: Identity = UNCHECKED
        self._headers: Headers | None = None

    @property
    def mgr(self) -> RepoManager:
        return self.state.mgr

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(scope=self.scope)
        return self._headers

    async def read_body(self) -> bytes | bytearray:
        """Read the body (bounded by the server's limits) into :attr:`body`."""
        s = self.state.settings
        self.body = await read_body(self.receive, self.scope["headers"], s.max_request_bytes,
                                    s.body_timeout, self.scope.get("dvidpy.body_sink"))
        return self.body

    def json(self, what: str = "request body") -> Any:
        """The body as JSON (``None`` when blank), bounded in depth; 400 when malformed."""
        if not self.body.strip():
            return None
        return jsonio.loads(self.body, what)

    def obj(self, what: str) -> dict[str, Any]:
        """The body as a JSON object (``{}`` when blank); 400 for anything else."""
        body = self.json(f"{what} body")
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise BadRequest(f"{what} expects a JSON object")
        return body


@dataclass
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    rest: dict[str, RouteSpec] | None = None
    methods: dict[str, RouteSpec] = field(default_factory=dict)


class Router:
    """A trie of route templates (see the module docstring)."""

    #: raw paths of at most this many bytes are remembered by :meth:`resolve` ...
    MEMO_PATH_BYTES = 256
    #: ... at most this many of them (then the memo starts again empty)
    MEMO_PATHS = 4096

    def __init__(self, specs: Iterable[RouteSpec] = ()) -> None:
        self.root = _Node()
        self.specs: list[RouteSpec] = []
        self._memo: dict[bytes, tuple[tuple[str, ...], dict[str, RouteSpec]]] = {}
        for s in specs:
            self.add(s)

    def resolve(self, scope: Scope) -> tuple[Sequence[str], dict[str, RouteSpec] | None]:
        """The request path's segments (:func:`split_path`) and the method table of the
        route they match (None when none does). Paths that matched are remembered (short
        ones, a bounded number: a client repeating requests, as neuroglancer and
        proofreading tools do, skips the splitting, unquoting and walking); the answer
        depends only on the path and the routes, and :meth:`add` forgets them all."""
        raw = scope.get("raw_path")
        hit = self._memo.get(raw) if raw is not None else None
        if hit is not None:
            return hit
        parts = tuple(split_path(scope))
        table = self.lookup(parts)
        if table is None:
            return parts, None
        out = (parts, table)
        if raw is not None and len(raw) <= self.MEMO_PATH_BYTES:
            if len(self._memo) >= self.MEMO_PATHS:
                self._memo.clear()
            self._memo[raw] = out
        return out

    def add(self, spec: RouteSpec) -> None:
        """Add ``spec``; a second spec for one method and template is an error."""
        self._memo.clear()
        segs = spec.segments
        rest = bool(segs) and segs[-1].rest
        fixed = segs[:-1] if rest else segs
        req = sum(1 for s in fixed if not s.optional)
        for n in range(req, len(fixed) + 1):
            node = self.root
            for sg in fixed[:n]:
                node = self._child(node, sg)
            table = node.methods
            if rest:
                if node.rest is None:
                    node.rest = {}
                table = node.rest
            if spec.method in table:
                raise ValueError(f"route {spec.method} {spec.template} declared twice")
            table[spec.method] = spec
        self.specs.append(spec)

    @staticmethod
    def _child(node: _Node, sg: Segment) -> _Node:
        if sg.literal is not None:
            return node.literals.setdefault(sg.literal, _Node())
        if node.param is None:
            node.param = _Node()
        return node.param

    def lookup(self, parts: Sequence[str]) -> dict[str, RouteSpec] | None:
        """The method table of the route matching ``parts``, or None."""
        return self._walk(self.root, parts, 0)

    def _walk(self, node: _Node, parts: Sequence[str], i: int) -> dict[str, RouteSpec] | None:
        if i == len(parts):
            if node.methods:
                return node.methods
            return node.rest
        seg = parts[i]
        child = node.literals.get(seg)
        if child is not None:
            found = self._walk(child, parts, i + 1)
            if found is not None:
                return found
        if node.param is not None and seg != "":
            found = self._walk(node.param, parts, i + 1)
            if found is not None:
                return found
        return node.rest


@dataclass(frozen=True)
class ErrorFormat:
    """How a path prefix whose API is not DVID's differs (the Boss's ``/v1/``): errors
    are answered by ``render(error, path)`` (JSON there) with the media type and
    description the OpenAPI document gives its 4XX answers; empty segments may be
    dropped."""

    render: Any
    media: str
    doc: str
    #: drop empty path segments (``//``), which clients of that API write (intern lists
    #: collections at ``/v1/collection//``)
    collapse_slashes: bool = False


#: path prefix -> :class:`ErrorFormat` (register with :func:`register_error_format`)
ERROR_FORMATS: dict[str, ErrorFormat] = {}


def register_error_format(prefix: str, fmt: ErrorFormat) -> None:
    """Answer every error under ``prefix`` (routes, unknown paths, wrong methods) with
    ``fmt`` instead of DVID's plain text."""
    ERROR_FORMATS[prefix] = fmt


def error_format(path: str) -> ErrorFormat | None:
    """The registered format of ``path``'s prefix, or None (plain text)."""
    for prefix, fmt in ERROR_FORMATS.items():
        if path.startswith(prefix):
            return fmt
    return None


def error_response(e: DvidError, path: str) -> Response:
    """``e`` as plain text with its status code (or as the :class:`ErrorFormat` registered
    for the path's prefix); `` (path)`` is appended unless the message already ends with a
    parenthesis (which by convention names the path). Answers that leave a body unread
    (413, 408) close the connection."""
    fmt = error_format(path)
    if fmt is not None:
        r = fmt.render(e, path)
        if e.status_code in (408, 413):
            r.headers["Connection"] = "close"
        return r
    msg = e.message if e.message.endswith(")") else f"{e.message} ({path})"
    headers = CLOSE if e.status_code in (408, 413) else None
    if e.status_code == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="dvidpy"'}
    return PlainTextResponse(msg, status_code=e.status_code, headers=headers)


def to_response(out: Any) -> Response:
    """A handler's return value as a response (JSON-able values as compact JSON)."""
    if isinstance(out, Response):
        return out
    from dvidpy.datatype import json_response

    return json_response(out)


async def call_handler(fn: Any, *args: Any, inline: bool = False) -> Any:
    """Run ``fn(*args)``: awaited when it is a coroutine function, called directly when
    ``inline``, else in the thread pool.

    A :class:`~dvidpy.errors.DvidError` leaves without its traceback: the thread pool's
    future, its frames and the traceback form a reference cycle that would keep the
    request (and a rejected body of gigabytes) alive until a full garbage collection.
    """
    try:
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        if inline:
            return fn(*args)
        return await run_in_threadpool(fn, *args)
    except DvidError as e:
        raise e.with_traceback(None) from None


class Dispatcher:
    """The ASGI app of the HTTP surface (see the module docstring).

    ``fallback`` receives non-HTTP scopes (lifespan) and nothing else.
    """

    def __init__(self, fallback: Any, router: Router, state: ServerState) -> None:
        self.fallback = fallback
        self.router = router
        self.state = state
        s = state.settings
        self.readonly = s.rwmode == "readonly"
        self.auth = state.auth
        auth_on = self.auth is not None and self.auth.on
        domains = s.cors_domains if (s.cors_configured or not auth_on) else []
        #: ``*``: any origin (never with credentials); else the allowed origins
        self.cors_any = "*" in domains
        self.cors_origins = frozenset(d.rstrip("/") for d in domains if d != "*")
        self.cors_credentials = auth_on

    def cors_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """CORS headers for this request's ``Origin`` (see :class:`Dispatcher`)."""
        if self.cors_any:
            return [(b"access-control-allow-origin", b"*")]
        if not self.cors_origins:
            return []
        origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
        if origin is None or origin.decode("latin-1").rstrip("/") not in self.cors_origins:
            return []
        out = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if self.cors_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        prepared: tuple[float, Response] | None = scope.pop("dvidpy.prepared", None)
        if prepared is None:
            t0 = time.perf_counter()
            self.state.load.begin()
            resp = None
        else:  # begun by :meth:`answer_now`, which left this response to be sent here
            t0, resp = prepared
        status = [0]
        nbytes = [0, 0]  # body bytes received, sent (for /api/load)
        cors = self.cors_headers(scope)

        async def counting_receive() -> Message:
            msg = await receive()
            nbytes[0] += len(msg.get("body", b""))
            return msg

        async def send_wrapper(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
                if cors:
                    msg["headers"] = [*msg.get("headers", ()), *cors]
            else:
                nbytes[1] += len(msg.get("body", b""))
            await send(msg)

        method = scope["method"]
        try:
            if resp is None:
                resp = await self.respond(scope, counting_receive, method, bool(cors))
            try:
                await resp(scope, counting_receive, send_wrapper)
            except DvidError as e:  # raised by a stream before its first write
                if status[0] != 0:
                    raise
                await error_response(e, scope["path"])(scope, receive, send_wrapper)
        except Exception:  # a failure while streaming: nothing more can reach the client
            errlog.exception("error while answering %s %s", method, scope["path"])
            if status[0] == 0:
                await PlainTextResponse("internal error", status_code=500)(
                    scope, receive, send_wrapper)
        finally:
            sink = scope.get("dvidpy.body_sink")
            if sink is not None:  # bytes received straight into a handler's buffer
                nbytes[0] += sink.received
            self._account(scope, method, status[0], nbytes[0], nbytes[1], t0)

    def _account(self, scope: Scope, method: str, status: int, bytes_in: int, bytes_out: int,
                 t0: float) -> None:
        """Count an answered request in ``/api/load`` and write its access-log line."""
        dt = time.perf_counter() - t0
        path = scope["path"]
        self.state.load.end(method, bytes_in, bytes_out, dt, scope.get(LATENCY_USER, ""))
        if log.isEnabledFor(logging.INFO):
            user = scope.get("dvidpy.user")
            log.info("%s %s %d %.1fms%s", method, path, status, dt * 1e3,
                     f" user={user}" if user else "")

    def answer_now(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Answer a GET or HEAD without a body on the spot, when its route can
        (:attr:`~dvidpy.http.spec.RouteSpec.direct`): ``(status, headers, body)`` of a
        complete response, counted and logged as :meth:`__call__` does; the protocol writes
        it (without the body for HEAD). None: send it through the ASGI app — untouched
        when the route is always awaited, or with the response begun here in
        ``scope["dvidpy.prepared"]`` when it is not one of plain bytes (a stream, a
        deferred encoding), which :meth:`__call__` then sends. The caller checks that the
        request has no body and that nothing else is in progress on the connection.
        """
        t0 = time.perf_counter()
        method = scope["method"]
        try:
            r = self._route(scope, None, method)
            if isinstance(r, HttpCall):
                fn = r.spec.direct
                if fn is None:
                    return None
                out = fn(r)
                if out is None:
                    return None
                r = to_response(out)
        except DvidError as e:
            r = error_response(e, scope["path"])
        except Exception as e:
            errlog.exception("internal error on %s %s", method, scope["path"])
            r = PlainTextResponse(f"internal error: {e!r}", status_code=500)
        # counted from here: nothing else ran on the event loop while the handler did
        self.state.load.begin()
        body = getattr(r, "body", None)
        if (type(r).__call__ is not Response.__call__ or r.background is not None
                or not isinstance(body, (bytes, bytearray, memoryview))
                or r.status_code in (204, 304)):
            scope["dvidpy.prepared"] = (t0, r)
            return None
        headers = r.raw_headers
        cors = self.cors_headers(scope)
        if cors:
            headers = [*headers, *cors]
        if BAD_HEADER_VALUE.search(b"\t".join([v for _, v in headers])):
            scope["dvidpy.prepared"] = (t0, r)
            return None
        sent = 0 if method == "HEAD" else memoryview(body).nbytes
        self._account(scope, method, r.status_code, 0, sent, t0)
        return r.status_code, headers, body

    def _preflight(self, scope: Scope, allowed: bool) -> Response:
        if not allowed and (self.cors_origins or self.cors_credentials):
            return PlainTextResponse("origin not allowed by corsDomains", status_code=403)
        req_headers = next((v for k, v in scope["headers"]
                            if k == b"access-control-request-headers"), b"")
        return PlainTextResponse("", headers={
            "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": req_headers.decode("latin-1") or "*",
            "Access-Control-Max-Age": "600"})

    async def respond(self, scope: Scope, receive: Receive, method: str,
                      cors_ok: bool = True) -> Response:
        """The response to one request (never raises for bad input)."""
        path = scope["path"]
        if method == "OPTIONS":
            return self._preflight(scope, cors_ok)
        try:
            call = self._route(scope, receive, method)
            if not isinstance(call, HttpCall):
                return call
            spec = call.spec
            if spec.body is not None:
                await call.read_body()
            return to_response(await call_handler(spec.handler, call, inline=spec.inline))
        except DvidError as e:
            return error_response(e, path)
        except Exception as e:
            errlog.exception("internal error on %s %s", method, path)
            return PlainTextResponse(f"internal error: {e!r}", status_code=500)

    def _route(self, scope: Scope, receive: Receive | None, method: str) -> Response | HttpCall:
        """The declared route of a request with its parameters parsed and its caller
        identified and authorized, or the answer when there is none (404, 405); raises
        :class:`~dvidpy.errors.DvidError` for bad input and refused callers."""
        path = scope["path"]
        parts, table = self.router.resolve(scope)
        if table is None:
            if error_format(path) is not None:
                return error_response(NotFound(f"unknown endpoint {path}"), path)
            return PlainTextResponse(f"unknown endpoint {path}", status_code=404)
        spec = table.get(method) or (table.get("GET") if method == "HEAD" else None)
        if spec is None:
            allowed = ", ".join(sorted(table))
            r = error_response(MethodNotAllowed(f"{method} not allowed on {path} "
                                                f"(allowed: {allowed})"), path)
            r.headers["Allow"] = allowed
            return r
        if self.readonly and spec.mutates:
            raise BadRequest("server is in read-only mode")
        qs = scope.get("query_string", b"")
        query = QueryParams(qs) if qs else NO_QUERY
        ident = self.identify(scope, query, spec)
        params = spec.match_segments(parts, path)
        params.update(spec.parse_query(query))
        call = HttpCall(scope, receive, self.state, spec, params, query)  # type: ignore[arg-type]
        call.identity = ident
        if spec.access != "delegated":
            self.authorize(call)
        return call

    def identify(self, scope: Scope, query: QueryParams, spec: RouteSpec) -> Identity:
        """The caller (an invalid credential is a 401, except on public routes)."""
        if self.auth is None:
            return UNCHECKED
        try:
            ident = self.auth.identify(scope["headers"], query)
        except Unauthorized:
            if spec.access == "public":
                return ANONYMOUS
            raise
        scope["dvidpy.user"] = ident.user
        return ident

    def authorize(self, call: HttpCall) -> None:
        """Check the route's access class for the caller, on the repo its ``uuid`` names."""
        auth = self.auth
        if auth is None or not auth.on:
            return
        root = version = instance = None
        if call.spec.resource is not None and call.spec.access != "public":
            try:
                root, instance, version = call.spec.resource(call)
            except (BadRequest, NotFound):
                if call.identity.anonymous:
                    raise Unauthorized("credentials required") from None
                raise
        elif "uuid" in call.params and call.spec.access != "public":
            try:
                repo, node = call.mgr.resolve(call.params["uuid"])
            except BadRequest:
                if call.identity.anonymous:
                    raise Unauthorized("credentials required") from None
                raise
            root, version = repo.root, node.uuid
        auth.authorize(call.identity, call.spec.access, root, instance, version)


def routes_by_path(specs: Iterable[RouteSpec]) -> Mapping[str, list[RouteSpec]]:
    """Specs grouped by template, in declaration order (for docs and tests)."""
    out: dict[str, list[RouteSpec]] = {}
    for s in specs:
        out.setdefault(s.template, []).append(s)
    return out
