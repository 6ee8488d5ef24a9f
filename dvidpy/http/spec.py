"""Route declarations: what one HTTP operation takes and answers, declared once.

A :class:`RouteSpec` is everything the server knows about one operation: method, path
template with typed parameters, query parameters, request body, response media types,
whether it mutates stored data and which access class it needs. From it the router
dispatches and parses (:mod:`dvidpy.http.router`), the OpenAPI document is generated
(:mod:`dvidpy.http.openapi`), the fuzz tests generate requests, and authorization decides.

Path templates are ``/``-separated segments: a literal, ``{name}``, ``{name:kind}``, an
optional trailing ``{name?}`` / ``{name?:kind}`` (only at the end, any number of them), or a
final ``{name*}`` that takes every remaining segment (a list of strings). Kinds
(:data:`KINDS`) parse one segment or query value and give its JSON schema; a value that
does not parse is a 400 naming the parameter and what was expected.

Server-level routes declare absolute templates (``/api/repo/{uuid}/info``); datatype
endpoints declare templates relative to ``/api/node/{uuid}/{data}/`` whose first segment,
the keyword, is a literal (``key/{key:key}``).
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dvidpy.errors import BadRequest

#: access classes, weakest first: who may call a route (enforced by :mod:`dvidpy.auth`);
#: a dispatch route that checks the route it reaches instead says ``delegated``
ACCESS_CLASSES = ("public", "read", "write", "admin")
_ALL_ACCESS = (*ACCESS_CLASSES, "delegated")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT64_MAX = 2**64 - 1
JSON = "application/json"
OCTET = "application/octet-stream"
TEXT = "text/plain"
PROTOBUF = "application/x-protobuf"
#: ``returns=EMPTY``: a success answer with no body (and no Content-Type)
EMPTY: tuple[str, ...] = ()

_INT_RE = re.compile(r"^-?[0-9]+\Z")
_UINT_RE = re.compile(r"^[0-9]+\Z")
_FLOAT_RE = re.compile(r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")


@dataclass(frozen=True)
class Kind:
    """How one path segment or query value is parsed, and its JSON schema."""

    name: str
    parse: Callable[[str], Any]  # raises ValueError with a message saying what was expected
    schema: Mapping[str, Any]
    doc: str = ""


def _int(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(s: str) -> int:
        if not _INT_RE.match(s):
            raise ValueError(f"expected {what}")
        v = int(s)
        if not lo <= v <= hi:
            raise ValueError(f"{v} is outside {what} ({lo}..{hi})")
        return v

    return parse


def _float(s: str) -> float:
    if not _FLOAT_RE.match(s):
        raise ValueError("expected a number")
    v = float(s)
    if not math.isfinite(v):
        raise ValueError("expected a finite number")
    return v


def _ints_sep(n: tuple[int, ...], lo: int, hi: int, what: str) -> Callable[[str], tuple[int, ...]]:
    def parse(s: str) -> tuple[int, ...]:
        parts = s.split("_")
        if len(parts) not in n or not all(_INT_RE.match(p) for p in parts):
            raise ValueError(f"expected {what}")
        vals = tuple(int(p) for p in parts)
        for v in vals:
            if not lo <= v <= hi:
                raise ValueError(f"{v} is outside the range {lo}..{hi} of {what}")
        return vals

    return parse


def _floats3(s: str) -> tuple[float, float, float]:
    parts = s.split("_")
    if len(parts) != 3:
        raise ValueError("expected x_y_z numbers")
    a, b, c = (_float(p) for p in parts)
    return a, b, c


def _bool(s: str) -> bool:
    return s.lower() in ("true", "on")


def _utf8(s: str) -> str:
    try:
        s.encode()
    except UnicodeEncodeError:
        raise ValueError("not valid UTF-8") from None
    return s


def _str(s: str) -> str:
    if s == "":
        raise ValueError("expected a non-empty string")
    return _utf8(s)


def _span(s: str) -> tuple[int, int]:
    a, sep, b = s.partition(":")
    if not sep or not _UINT_RE.match(a) or not _UINT_RE.match(b):
        raise ValueError("expected a range start:stop of non-negative integers")
    lo, hi = int(a), int(b)
    if hi > INT32_MAX:
        raise ValueError(f"{hi} is outside the int32 range")
    if lo >= hi:
        raise ValueError(f"range {lo}:{hi} is empty (start must be < stop)")
    return lo, hi


def _key(s: str) -> str:
    if s == "":
        raise ValueError("expected a non-empty key")
    return s


def _memo(parse: Callable[[str], Any], longest: int = 64,
          size: int = 4096) -> Callable[[str], Any]:
    """``parse`` answering repeated short inputs from a bounded cache (the kinds whose
    parse builds numbers: a neuroglancer session asks for the same sizes and offsets over
    and over). Only values of at most ``longest`` characters are kept, at most ``size``
    of them (least recently used dropped), so a client cannot grow it; failures (which
    raise) are never kept. The values parsed are immutable (ints, floats, tuples)."""
    cached = functools.lru_cache(maxsize=size)(parse)

    def memo(s: str) -> Any:
        return cached(s) if len(s) <= longest else parse(s)

    memo.__wrapped__ = parse  # type: ignore[attr-defined]
    return memo


_COORD = r"-?[0-9]+"
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("str", _str, {"type": "string", "minLength": 1}),
    Kind("key", _key, {"type": "string", "minLength": 1},
         "any bytes, percent-encoded; kept as the exact bytes sent"),
    Kind("uuid", _str, {"type": "string", "minLength": 1, "pattern": r"^[^/]+$"},
         "a version UUID, a unique prefix of one, PREFIX:branch for a branch HEAD or "
         "PREFIX:branch~N for its N-th ancestor"),
    Kind("int", _memo(_int(-(2**63), 2**63 - 1, "an integer")), {"type": "integer"}),
    Kind("int32", _memo(_int(INT32_MIN, INT32_MAX, "a 32-bit integer")),
         {"type": "integer", "minimum": INT32_MIN, "maximum": INT32_MAX}),
    Kind("count", _memo(_int(0, 2**31 - 1, "a count")),
         {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}),
    Kind("uint64", _memo(_int(0, UINT64_MAX, "an unsigned 64-bit integer")),
         {"type": "integer", "minimum": 0, "maximum": UINT64_MAX}),
    Kind("label", _memo(_int(0, UINT64_MAX, "a label (unsigned 64-bit integer)")),
         {"type": "integer", "minimum": 0, "maximum": UINT64_MAX}, "a label id"),
    Kind("float", _memo(_float), {"type": "number"}),
    Kind("bool", _bool, {"type": "string", "enum": ["true", "false", "on", "off"]},
         "true or on; anything else is false (DVID's rule)"),
    Kind("coord", _memo(_ints_sep((3,), INT32_MIN, INT32_MAX, "x_y_z integers")),
         {"type": "string", "pattern": f"^{_COORD}_{_COORD}_{_COORD}$"},
         "x_y_z integer coordinate"),
    Kind("size", _memo(_ints_sep((2, 3), 1, INT32_MAX,
                             "nx_ny or nx_ny_nz positive integers")),
         {"type": "string", "pattern": r"^[0-9]+_[0-9]+(_[0-9]+)?$"},
         "extent nx_ny_nz (nx_ny for 2-D)"),
    Kind("size3", _memo(_ints_sep((3,), 1, INT32_MAX, "nx_ny_nz positive integers")),
         {"type": "string", "pattern": r"^[0-9]+_[0-9]+_[0-9]+$"}, "3-D extent nx_ny_nz"),
    Kind("dims", _str, {"type": "string",
                        "enum": ["0_1_2", "0_1", "0_2", "1_2", "xy", "xz", "yz"]},
         "axes: 0_1_2 for 3-D, 0_1 (xy), 0_2 (xz) or 1_2 (yz) for 2-D"),
    Kind("span", _memo(_span), {"type": "string", "pattern": r"^[0-9]+:[0-9]+$"},
         "half-open range start:stop (start < stop), the Boss's x0:x1"),
    Kind("point", _memo(_floats3), {"type": "string",
                                    "pattern": r"^[-+0-9.eE]+_[-+0-9.eE]+_[-+0-9.eE]+$"},
         "x_y_z numbers"),
)}


@dataclass(frozen=True)
class Param:
    """A path or query parameter."""

    name: str
    kind: str = "str"
    doc: str = ""
    default: Any = None
    required: bool = False
    enum: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r} for {self.name!r}")

    def parse(self, raw: str, where: str) -> Any:
        """``raw`` parsed by the kind; :class:`BadRequest` naming the parameter."""
        if self.enum is not None and raw not in self.enum:
            raise BadRequest(f"{where} {self.name}={raw!r} must be one of "
                             f"{', '.join(self.enum)}")
        try:
            return KINDS[self.kind].parse(raw)
        except ValueError as e:
            raise BadRequest(f"{where} {self.name}={raw!r}: {e}") from None

    def schema(self) -> dict[str, Any]:
        """JSON schema of the parameter."""
        s = dict(KINDS[self.kind].schema)
        if self.enum is not None:
            s = {"type": "string", "enum": list(self.enum)}
        if self.default is not None and s.get("type") != "boolean":
            s["default"] = self.default
        return s

    def description(self) -> str:
        """The parameter's doc, else its kind's."""
        return self.doc or KINDS[self.kind].doc


def Q(name: str, kind: str = "str", doc: str = "", default: Any = None,
      required: bool = False, enum: Sequence[str] | None = None) -> Param:
    """A query parameter (shorthand for :class:`Param`)."""
    return Param(name, kind, doc, default, required, tuple(enum) if enum else None)


@dataclass(frozen=True)
class Body:
    """A request body: media type, whether required, and its JSON schema or description."""

    media: str = JSON
    doc: str = ""
    required: bool = True
    schema: Mapping[str, Any] | None = None

    def openapi_schema(self) -> dict[str, Any]:
        if self.schema is not None:
            return dict(self.schema)
        if self.media == JSON:
            return {}
        return {"type": "string", "format": "binary"}


BODY_SHORTHANDS = {"json": Body(JSON), "octet": Body(OCTET), "protobuf": Body(PROTOBUF),
                   "text": Body(TEXT)}


@dataclass(frozen=True)
class Segment:
    """One template segment: a literal (``param is None``) or a parameter."""

    literal: str | None
    param: Param | None = None
    optional: bool = False
    rest: bool = False


_SEG_RE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_-]*)(\?|\*)?(?::([a-z0-9]+))?\}\Z")


def parse_template(template: str, params: Mapping[str, Param]) -> tuple[Segment, ...]:
    """Segments of ``template``; ``params`` gives kinds/docs of named parameters (a
    ``{name:kind}`` in the template wins over nothing, a ``params`` entry over the
    template's default kind ``str``)."""
    segs = []
    for s in template.strip("/").split("/"):
        m = _SEG_RE.match(s)
        if not m:
            if "{" in s or "}" in s:
                raise ValueError(f"bad template segment {s!r} in {template!r}")
            segs.append(Segment(s))
            continue
        name, mark, kind = m.group(1), m.group(2), m.group(3)
        p = params.get(name) or Param(name, kind or "str")
        if kind and p.kind != kind:
            p = Param(name, kind, p.doc, p.default, p.required, p.enum)
        segs.append(Segment(None, p, optional=mark == "?", rest=mark == "*"))
    seen_opt = False
    for i, sg in enumerate(segs):
        if sg.rest and i != len(segs) - 1:
            raise ValueError(f"{{...*}} must be last in {template!r}")
        if sg.optional:
            seen_opt = True
        elif seen_opt and not sg.rest:
            raise ValueError(f"optional segments must be trailing in {template!r}")
    return tuple(segs)


def _utf8_or_400(s: str, name: str) -> None:
    try:
        s.encode()
    except UnicodeEncodeError:
        raise BadRequest(f"path segment {s!r} of {name!r} is not valid UTF-8") from None


@dataclass
class RouteSpec:
    """One declared HTTP operation (see the module docstring).

    ``handler`` is called with a request object (server routes: :class:`~dvidpy.http.
    router.HttpCall`; datatype endpoints: the instance and a :class:`~dvidpy.datatype.
    Call`). An ``async`` server handler runs on the event loop; a plain function runs in
    the thread pool, as do datatype handlers unless ``inline``.
    """

    method: str
    template: str
    handler: Callable[..., Any]
    summary: str = ""
    query: tuple[Param, ...] = ()
    body: Body | None = None
    returns: Mapping[int, Sequence[str]] = field(default_factory=lambda: {200: (JSON,)})
    mutates: bool = False
    access: str = "read"
    inline: bool = False
    tags: tuple[str, ...] = ()
    segments: tuple[Segment, ...] = ()
    doc: str = ""
    #: False for dispatch routes that the OpenAPI document replaces by what they reach
    openapi: bool = True
    #: for routes that name their repo other than by a ``uuid`` parameter (the Boss API's
    #: collection/experiment/channel): ``call -> (root, instance, version)`` of what the
    #: access class is checked on (root None: a server-level check)
    resource: Callable[[Any], tuple[str | None, str | None, str | None]] | None = None
    #: the answer without awaiting, for a request without a body (``call -> response``, or
    #: None when this request needs the awaited path after all, e.g. a thread or a body);
    #: derived for inline plain-function handlers of body-less routes, declared for
    #: dispatch routes (see :attr:`direct`)
    now: Callable[[Any], Any] | None = None

    @functools.cached_property
    def direct(self) -> Callable[[Any], Any] | None:
        """What answers a body-less request to this route on the spot (no task, no thread):
        :attr:`now` when declared, else the handler itself when it is an inline plain
        function of a route without a body; None: the route is always awaited."""
        if self.now is not None:
            return self.now
        if self.inline and self.body is None and not inspect.iscoroutinefunction(self.handler):
            return self.handler
        return None

    @property
    def path_params(self) -> list[Param]:
        return [s.param for s in self.segments if s.param is not None]

    def arities(self) -> list[int]:
        """Numbers of segments this template accepts (optional ones make several)."""
        req = sum(1 for s in self.segments if not s.optional and not s.rest)
        if self.segments and self.segments[-1].rest:
            return [req]  # and more
        return list(range(req, len(self.segments) + 1))

    @functools.cached_property
    def _shape(self) -> tuple[tuple[Segment, ...], int, bool]:
        """The fixed segments, how many are required, whether a rest segment ends it."""
        segs = self.segments
        rest = bool(segs) and segs[-1].rest
        fixed = segs[:-1] if rest else segs
        return fixed, sum(1 for s in fixed if not s.optional), rest

    def match_segments(self, parts: Sequence[str], where: str) -> dict[str, Any]:
        """Parse ``parts`` (the path's segments) against the template; 400 when the count
        or a value is wrong. Literal segments must already have matched."""
        out: dict[str, Any] = {}
        fixed, req, rest = self._shape
        n = len(parts)
        if n < req or (not rest and n > len(fixed)):
            raise BadRequest(f"{where} expects {self.method} {self.display()} "
                             f"({n} path segments given)")
        for sg, raw in zip(fixed, parts, strict=False):
            if sg.param is None:
                if raw != sg.literal:
                    raise BadRequest(f"{where}: expected {sg.literal!r}, not {raw!r}")
                continue
            out[sg.param.name] = sg.param.parse(raw, "path parameter")
        if n < len(fixed):
            for sg in fixed[n:]:
                if sg.param is not None:
                    out[sg.param.name] = sg.param.default
        if rest:
            tail = list(parts[len(fixed):])
            rp = self.segments[-1].param
            assert rp is not None
            if rp.kind != "key":
                for t in tail:
                    _utf8_or_400(t, rp.name)
            out[rp.name] = tail
        return out

    @functools.cached_property
    def _query_defaults(self) -> tuple[dict[str, Any], str | None]:
        """Every declared query parameter's default, and the first required one."""
        required = next((p.name for p in self.query if p.required), None)
        return {p.name: p.default for p in self.query}, required

    def parse_query(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Declared query parameters, typed (defaults for absent ones; an empty value
        counts as absent); 400 when one does not parse or a required one is missing."""
        out: dict[str, Any] = {}
        if not self.query:
            return out
        if not query:  # none given (most requests): every default
            defaults, required = self._query_defaults
            if required:
                raise BadRequest(f"query parameter {required!r} is required")
            return dict(defaults)
        for p in self.query:
            raw = query.get(p.name)
            if raw is None or raw == "":
                if p.required:
                    raise BadRequest(f"query parameter {p.name!r} is required")
                out[p.name] = p.default
            else:
                out[p.name] = p.parse(raw, "query parameter")
        return out

    def display(self) -> str:
        """The template as users read it (``key/{key}``)."""
        parts = []
        for s in self.segments:
            if s.param is None:
                parts.append(s.literal or "")
            elif s.optional:
                parts.append(f"[{{{s.param.name}}}]")
            elif s.rest:
                parts.append(f"{{{s.param.name}...}}")
            else:
                parts.append(f"{{{s.param.name}}}")
        return "/".join(parts)


def make_spec(method: str, template: str, handler: Callable[..., Any], summary: str = "", *,
              params: Sequence[Param] = (), query: Sequence[Param] = (),
              body: Body | str | None = None,
              returns: str | Sequence[str] | Mapping[int, str | Sequence[str]] | None = None,
              mutates: bool | None = None, access: str | None = None, inline: bool = False,
              tags: Sequence[str] = (), doc: str = "", openapi: bool = True,
              resource: Callable[[Any], tuple[str | None, str | None, str | None]] | None
              = None, now: Callable[[Any], Any] | None = None) -> RouteSpec:
    """A :class:`RouteSpec` with defaults filled: ``mutates`` is POST/PUT/DELETE unless
    told; ``access`` is ``write`` for mutations, else ``read``; ``returns`` defaults to
    JSON; a body given as ``"json"``/``"octet"``/``"protobuf"``/``"text"`` is that media
    type, required; ``resource`` finds the repo of a route without a ``uuid`` parameter
    (see :attr:`RouteSpec.resource`); ``now`` answers body-less requests without awaiting
    (see :attr:`RouteSpec.now`)."""
    method = method.upper()
    if mutates is None:
        mutates = method in ("POST", "PUT", "DELETE")
    if access is None:
        access = "write" if mutates else "read"
    if access not in _ALL_ACCESS or (access == "delegated" and openapi):
        raise ValueError(f"unknown access class {access!r}")
    if isinstance(body, str):
        body = BODY_SHORTHANDS[body]
    if returns is None:
        ret: dict[int, tuple[str, ...]] = {200: (JSON,)}
    elif isinstance(returns, str):
        ret = {200: (returns,)}
    elif returns == EMPTY:
        ret = {200: EMPTY}
    elif isinstance(returns, Mapping):
        ret = {int(k): (v,) if isinstance(v, str) else tuple(v) for k, v in returns.items()}
    else:
        ret = {200: tuple(returns)}
    pmap = {p.name: p for p in params}
    segs = parse_template(template, pmap)
    names = {s.param.name for s in segs if s.param is not None}
    unknown = set(pmap) - names
    if unknown:
        raise ValueError(f"params {sorted(unknown)} are not in template {template!r}")
    return RouteSpec(method, template, handler, summary, tuple(query), body, ret, mutates,
                     access, inline, tuple(tags), segs, doc, openapi, resource, now)
