"""Server-level routes (dvid-api.md §4): ``/api/heartbeat``, ``/api/server/...``,
``/api/load``, ``/api/help``, ``/api/repos``."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from starlette.responses import HTMLResponse, PlainTextResponse, Response

from dvidpy import __version__
from dvidpy.datatype import datatypes as registered_datatypes
from dvidpy.errors import BadRequest
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import TEXT, Body, Param
from dvidpy.http.table import RouteTable

routes = RouteTable("server")
LOAD_FIELDS = (
    "file bytes read", "file bytes written", "key bytes read", "key bytes written",
    "value bytes read", "value bytes written", "GET requests", "PUT requests",
    "handlers active", "goroutines", "active CGo writes", "pending log messages",
)
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


@routes.get("/api/heartbeat", "Liveness probe: answers OK", returns=TEXT, access="public",
            inline=True)
def heartbeat(call: HttpCall) -> Response:
    return PlainTextResponse("OK")


@routes.get("/api/server/info", "Server description (DVID's fields, all strings)", inline=True)
def server_info(call: HttpCall) -> Any:
    s = call.settings
    engines = "; ".join(sorted({st.engine for st in s.stores.values()}))
    up = int(time.time() - call.state.started)
    admin = call.identity.admin  # host and file locations are for administrators
    return {
        "Cores": str(os.cpu_count() or 1),
        "Maximum Cores": str(os.cpu_count() or 1),
        "Datastore Version": "1",
        "DVID Version": f"dvidpy {__version__}",
        "Storage backend": engines,
        "Server time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "Server uptime": f"{up}s",
        "RPC Address": "",
        "Host": platform.node() if admin else "",
        "Note": s.note,
        "TOML location": s.toml_path if admin else "",
        "Max Open Files": "0",
    }


@routes.get("/api/server/note", "The server's note from its configuration", returns=TEXT,
            inline=True)
def server_note(call: HttpCall) -> Response:
    return PlainTextResponse(call.settings.note)


@routes.get("/api/server/types", "Datatypes in use (in repos the caller may read)",
            inline=True)
def server_types(call: HttpCall) -> Any:
    mgr = call.mgr
    auth = call.state.auth
    return {i.type_name: i.type_url for r in list(mgr.repos.values())
            if auth.can_read(call.identity, r.root) for i in r.instances.values()}


@routes.get("/api/server/compiled-types", "Datatypes this server can create: name -> URL",
            inline=True)
def compiled_types(call: HttpCall) -> Any:
    return {n: c.type_url for n, c in registered_datatypes().items()}


@routes.get("/api/load", "Load counters (DVID's fields) and the cache tier's hits/misses",
            inline=True)
def load(call: HttpCall) -> Any:
    return {**dict.fromkeys(LOAD_FIELDS, 0), **call.mgr.cache_stats()}


@routes.get("/api/help", "HTML index of the datatypes and the API", returns="text/html",
            access="public", inline=True)
def help_page(call: HttpCall) -> Response:
    items = "".join(
        f'<li><a href="/api/help/{n}">{n}</a></li>' for n in sorted(registered_datatypes()))
    return HTMLResponse(
        "<html><body><h1>dvidpy</h1><p>A DVID-compatible versioned volume server. "
        'The HTTP API is described at <a href="/api/docs">/api/docs</a> '
        '(<a href="/api/openapi.json">OpenAPI</a>).</p><h2>Datatypes</h2><ul>'
        f"{items}</ul></body></html>")


@routes.get("/api/help/{typename}", "A datatype's HTTP API description", returns=TEXT,
            access="public", inline=True,
            params=(Param("typename", "str", "a datatype name, e.g. keyvalue"),))
def help_type(call: HttpCall) -> Response:
    name = call.params["typename"]
    cls = registered_datatypes().get(name)
    if cls is None:
        raise BadRequest(f"unknown datatype {name!r}")
    return PlainTextResponse(cls.help_text or name)


@routes.post("/api/repos", "Create a repo; answers {\"root\": UUID}", body=Body(
    doc='{"alias": ..., "description": ..., "root": optional 32-hex UUID}', required=False,
    schema=_STRING_MAP))
def create_repo(call: HttpCall) -> Any:
    fields: dict[str, str] = {}
    for k, v in call.obj("POST /api/repos").items():
        if not isinstance(v, str):
            raise BadRequest(f"Setting for {k!r} was not a string")
        fields[k.lower()] = v
    repo = call.mgr.create_repo(fields.get("alias", ""), fields.get("description", ""),
                                fields.get("root") or None)
    call.state.auth.grant_creator(call.identity, repo.root)
    return {"root": repo.root}


@routes.get("/api/repos/info", "Every repo's info, by root UUID (those the caller may read)",
            access="public")
def repos_info(call: HttpCall) -> Any:
    mgr = call.mgr
    auth = call.state.auth
    with mgr.lock:
        return {root: mgr.repo_info(r) for root, r in mgr.repos.items()
                if auth.can_read(call.identity, root)}
