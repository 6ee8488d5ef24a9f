"""The OpenAPI 3.1 document, generated from the route declarations.

Server, repo, node and transfer routes appear with their templates. Datatype endpoints
live under ``/api/node/{uuid}/{data}/...`` where ``{data}`` is an instance name whose
datatype decides what follows, which one path template cannot say; so the document lists
each endpoint once per instance *of this server* with the instance name as a literal
segment (``/api/node/{uuid}/grayscale/raw/{dims}/{size}/{offset}``). Where two repos use
one instance name for different datatypes, the first repo's (by root UUID) is shown.
``document(..., repo=UUID)`` describes one repo's instances only.

Optional trailing segments give one path per arity. Every operation answers ``4XX`` as
``text/plain`` (DVID's error convention); ``x-dvidpy-access`` and ``x-dvidpy-mutates``
carry the access class and whether the operation changes stored data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dvidpy import __version__
from dvidpy.http.spec import JSON, TEXT, Param, RouteSpec

if TYPE_CHECKING:
    from dvidpy.datatype import Datatype
    from dvidpy.repo import RepoManager

NODE_PREFIX = "/api/node/{uuid}/"
_UUID_PARAM = Param("uuid", "uuid")
_ERROR = {"description": "DVID's plain-text error: bad input (400), unknown key or label "
                         "(404), wrong method (405), timeout (408), too large (413), ...",
          "content": {TEXT: {"schema": {"type": "string"}}}}


def _media_schema(media: str) -> dict[str, Any]:
    if media == JSON:
        return {}
    if media.startswith("text/"):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def _param(p: Param, where: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": p.name, "in": where, "schema": p.schema()}
    if where == "path" or p.required:
        d["required"] = True
    desc = p.description()
    if desc:
        d["description"] = desc
    return d


def _error_doc(path: str) -> dict[str, Any]:
    """The 4XX answer of operations at ``path``: DVID's plain text, or the error format
    registered for its prefix (:func:`~dvidpy.http.router.register_error_format`)."""
    from dvidpy.http.router import error_format

    fmt = error_format(path)
    if fmt is None:
        return _ERROR
    return {"description": fmt.doc, "content": {fmt.media: {"schema": {}}}}


def _operation(spec: RouteSpec, path_params: list[Param], op_id: str,
               path: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "tags": list(spec.tags) or ["other"]}
    if spec.summary:
        op["summary"] = spec.summary
    if spec.doc and spec.doc != spec.summary:
        op["description"] = spec.doc
    params = [_param(p, "path") for p in path_params]
    params += [_param(p, "query") for p in spec.query]
    if params:
        op["parameters"] = params
    if spec.body is not None:
        rb: dict[str, Any] = {"required": spec.body.required, "content": {
            spec.body.media: {"schema": spec.body.openapi_schema()}}}
        if spec.body.doc:
            rb["description"] = spec.body.doc
        op["requestBody"] = rb
    responses: dict[str, Any] = {}
    for status, medias in spec.returns.items():
        r: dict[str, Any] = {"description": "success" if medias else "success, no body"}
        if medias and spec.method != "HEAD":
            r["content"] = {m: {"schema": _media_schema(m)} for m in medias}
        elif medias:
            r["content"] = {m: {} for m in medias}
        responses[str(status)] = r
    responses["4XX"] = _error_doc(path)
    op["responses"] = responses
    op["x-dvidpy-access"] = spec.access
    op["x-dvidpy-mutates"] = spec.mutates
    return op


def _paths_of(spec: RouteSpec, prefix: str = "") -> Iterable[tuple[str, list[Param]]]:
    """``(path, path params)`` for each arity of ``spec`` under ``prefix``."""
    segs = spec.segments
    fixed = segs[:-1] if segs and segs[-1].rest else segs
    req = sum(1 for s in fixed if not s.optional)
    for n in range(req, len(fixed) + 1):
        parts, params = [], []
        for sg in fixed[:n]:
            if sg.param is None:
                parts.append(sg.literal or "")
            else:
                parts.append(f"{{{sg.param.name}}}")
                params.append(sg.param)
        path = "/".join(parts)
        yield (prefix + path if prefix else "/" + path.lstrip("/")), params


def _op_id(method: str, path: str) -> str:
    return method.lower() + "_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")


def instance_types(mgr: RepoManager, repo: str | None = None,
                   readable: set[str] | None = None) -> dict[str, type[Datatype]]:
    """Instance name -> datatype class, for one repo (``repo`` a UUID of it) or all
    (only those whose root is in ``readable`` unless it is None)."""
    with mgr.lock:
        if repo is not None:
            r, _ = mgr.resolve(repo)
            repos = [r]
        else:
            repos = [mgr.repos[k] for k in sorted(mgr.repos)]
        if readable is not None:
            repos = [r for r in repos if r.root in readable]
        out: dict[str, type[Datatype]] = {}
        for r in repos:
            for name, inst in sorted(r.instances.items()):
                out.setdefault(name, type(inst))
    return out


def document(specs: Iterable[RouteSpec], instances: dict[str, type[Datatype]],
             title: str = "dvidpy") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``specs`` plus the datatype endpoints of ``instances``
    (name -> datatype class)."""
    paths: dict[str, dict[str, Any]] = {}

    def add(spec: RouteSpec, prefix: str, extra: list[Param], tag: str | None = None) -> None:
        for path, params in _paths_of(spec, prefix):
            item = paths.setdefault(path, {})
            method = spec.method.lower()
            if method in item:
                continue
            allp = extra + params
            names = [p.name for p in allp]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate parameter names in {path}: {names}")
            op = _operation(spec, allp, _op_id(spec.method, path), path)
            if tag:
                op["tags"] = [tag]
            item[method] = op

    for spec in specs:
        if spec.openapi:
            add(spec, "", [])
    for name, cls in instances.items():
        prefix = NODE_PREFIX + quote(name, safe="") + "/"
        for spec in sorted(cls.routes(), key=lambda s: (s.template, s.method)):
            add(spec, prefix, [_UUID_PARAM], tag=f"{cls.type_name}: {name}")
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__,
                 "description": "DVID's HTTP API as served by dvidpy. Errors are plain "
                                "text; UUIDs may be prefixes, PREFIX:branch or "
                                "PREFIX:branch~N."},
        "paths": paths,
    }
