"""The API's own description: ``/api/openapi.json`` and ``/api/docs`` (Swagger UI)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.responses import HTMLResponse, Response

from dvidpy.errors import NotFound
from dvidpy.http.openapi import document, instance_types
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import Param, Q
from dvidpy.http.table import RouteTable

routes = RouteTable("docs")
STATIC = "swagger-ui"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
          ".txt": "text/plain", ".map": "application/json"}
_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>dvidpy API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui",
deepLinking: true});</script></body></html>"""


@routes.get("/api/openapi.json", "This document: every route of this server", access="public",
            query=(Q("repo", "uuid", "describe only this repo's instances"),))
def openapi_json(call: HttpCall) -> Any:
    specs = call.state.extras["router"].specs
    auth = call.state.auth
    readable = None if not auth.on else {
        r for r in list(call.mgr.repos) if auth.can_read(call.identity, r)}
    return document(specs, instance_types(call.mgr, call.params["repo"], readable))


@routes.get("/api/docs", "The API browser (Swagger UI over /api/openapi.json)",
            returns="text/html", access="public", inline=True)
def docs_page(call: HttpCall) -> Response:
    return HTMLResponse(_PAGE)


@routes.get("/api/docs/static/{name}", "Files of the API browser", access="public",
            returns=tuple(sorted(set(_TYPES.values()))), inline=True,
            params=(Param("name", "str", "file name"),))
def docs_static(call: HttpCall) -> Response:
    name = call.params["name"]
    ext = name[name.rfind("."):] if "." in name else ""
    folder = resources.files("dvidpy.http") / "static" / STATIC
    f = folder / name
    if "/" in name or name.startswith(".") or ext not in _TYPES or not f.is_file():
        raise NotFound(f"no file {name!r}")
    return Response(f.read_bytes(), media_type=_TYPES[ext],
                    headers={"Cache-Control": "max-age=86400"})
