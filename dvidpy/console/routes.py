"""Routes of the web console (see :mod:`dvidpy.console`).

``GET /``                              redirect to ``/console/``
``GET /console``                       the server page (``/console`` redirects to ``/console/``)
``GET /console/repo/{uuid}``           the DAG page of the repo holding ``uuid``
``GET /console/node/{uuid}/{data}``    the page of instance ``data`` at version ``uuid``
``GET /console/jobs``                  the jobs page
``GET /console/login``                 signing in with a token (when auth is on)
``GET /console/config.json``           what the pages need to know about this server
``GET /console/static/{path...}``      the pages' files
``GET /console/neuroglancer/{path...}``  neuroglancer's built client, when installed

Page routes answer one HTML shell; the pages' modules read the path and fetch the rest.
Unknown repos, versions and instances are refused (400) before the shell is sent. With
auth on, the repo and instance pages need read access to the repo (as the API does); the
server, jobs and login pages and the static files are public, and every figure on them
comes from API calls that are checked as usual.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from dvidpy import __version__
from dvidpy.console.files import FileFolder
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import EMPTY, JSON, Body, Param
from dvidpy.http.table import RouteTable

routes = RouteTable("console")
HTML = "text/html"
#: optional API routes the pages use when this server has them (feature -> GET path)
OPTIONAL_ROUTES = {"transfer": "/api/transfer/jobs", "ingest": "/api/ingest"}
_STATIC = FileFolder(resources.files("dvidpy.console") / "static")
_FILE_TYPES = tuple(sorted(set(FileFolder.TYPES.values())))
_HTML_RETURNS = {200: (HTML,), 304: EMPTY}
_PAGE_RETURNS = {**_HTML_RETURNS, 307: EMPTY}
_FILE_RETURNS = {200: _FILE_TYPES, 304: EMPTY}
_PATH = Param("path", "str", "file path under the folder")
_NG_TOKEN = Param("token", "str", "viewer token (any; the console uses 'dvidpy')")
#: neuroglancer's page: the package ships the client built for its Python server, which
#: reads its token from ``.../v/{token}/`` and talks to ``events``/``credentials`` beside it
NG_PAGE = "/console/neuroglancer/v/dvidpy/"
NG_MISSING = ("neuroglancer's client is not installed on this server "
              "(pip install 'dvidpy[neuroglancer]')")
NG_EVENT_SECONDS = 30  # an idle event stream ends after this (the client reconnects)


def neuroglancer_client() -> Path | None:
    """Folder of the built neuroglancer client shipped by the ``neuroglancer`` package
    (``neuroglancer/static/client``), found without importing the package; ``None`` when
    it is not installed or ships no ``index.html``."""
    try:
        spec = importlib.util.find_spec("neuroglancer")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "static" / "client"
        if (d / "index.html").is_file():
            return d
    return None


_NG_DIR = neuroglancer_client()
_NG = FileFolder(_NG_DIR) if _NG_DIR is not None else None


def _shell(call: HttpCall, slash_path: str | None = None) -> Response:
    """The pages' HTML shell; a redirect to ``slash_path`` when the request lacks it."""
    if slash_path is not None and not call.path.endswith("/"):
        return RedirectResponse(slash_path, status_code=307)
    return _STATIC.response(["index.html"], call.headers)


@routes.get("/", "Redirect to the web console", access="public", returns={307: EMPTY},
            inline=True)
def root(call: HttpCall) -> Response:
    return RedirectResponse("/console/", status_code=307)


@routes.get("/console", "The web console: server info and repos", access="public",
            returns=_PAGE_RETURNS, inline=True)
def console_home(call: HttpCall) -> Response:
    return _shell(call, "/console/")


@routes.get("/console/jobs", "The web console: transfer, pyramid and ingest jobs",
            access="public", returns=_HTML_RETURNS, inline=True)
def console_jobs(call: HttpCall) -> Response:
    return _shell(call)


@routes.get("/console/login", "The web console: sign in with a token", access="public",
            returns=_HTML_RETURNS, inline=True)
def console_login(call: HttpCall) -> Response:
    return _shell(call)


@routes.get("/console/repo/{uuid}", "The web console: a repo's version DAG",
            params=(Param("uuid", "uuid"),), returns=_HTML_RETURNS, inline=True)
def console_repo(call: HttpCall) -> Response:
    call.mgr.resolve(call.params["uuid"])  # 400 for unknown or ambiguous UUIDs
    return _shell(call)


@routes.get("/console/node/{uuid}/{data}", "The web console: one instance at one version",
            params=(Param("uuid", "uuid"), Param("data", "str", "data instance name")),
            returns=_HTML_RETURNS, inline=True)
def console_instance(call: HttpCall) -> Response:
    repo, _ = call.mgr.resolve(call.params["uuid"])
    call.mgr.instance(repo, call.params["data"])  # 400 for unknown instances
    return _shell(call)


@routes.get("/console/config.json", "What the console's pages need to know about this "
            "server: optional routes present, neuroglancer, auth mode, stores (admins)",
            returns=JSON, access="public", inline=True)
def console_config(call: HttpCall) -> Any:
    router = call.state.extras["router"]
    features = {}
    for name, path in OPTIONAL_ROUTES.items():
        table = router.lookup(path.strip("/").split("/"))
        features[name] = bool(table and "GET" in table)
    s = call.settings
    auth = call.state.auth
    out: dict[str, Any] = {
        "version": __version__,
        "readonly": s.rwmode == "readonly",
        "neuroglancer": NG_PAGE if _NG is not None else None,
        "features": features,
        "auth": auth.cfg.enforce if auth is not None else "none",
    }
    if call.identity.admin:  # store locations are the administrators' business
        out["stores"] = [{"alias": a, "engine": st.engine, "location": st.location}
                         for a, st in sorted(s.stores.items())]
        out["backend"] = dict(s.backend)
    return out


@routes.get("/console/static/{path*}", "Files of the web console", access="public",
            returns=_FILE_RETURNS, inline=True, params=(_PATH,))
def console_static(call: HttpCall) -> Response:
    return _STATIC.response(call.params["path"], call.headers)


@routes.get("/console/neuroglancer", "Neuroglancer (redirect to its page)", access="public",
            returns={307: EMPTY}, inline=True)
def console_neuroglancer_home(call: HttpCall) -> Response:
    return RedirectResponse(NG_PAGE, status_code=307)


@routes.get("/console/neuroglancer/v/{token}/{path*}", "Neuroglancer's built client (from the "
            "neuroglancer package), for the console's 3-D links", access="public",
            returns={**_FILE_RETURNS, 307: EMPTY}, inline=True,
            params=(_NG_TOKEN, _PATH))
def console_neuroglancer(call: HttpCall) -> Response:
    if _NG is None:
        raise NotFound(NG_MISSING)
    parts = call.params["path"]
    if not parts:
        if not call.path.endswith("/"):  # the client loads its files relative to the page
            return RedirectResponse(call.path + "/", status_code=307)
        parts = ["index.html"]
    return _NG.response(parts, call.headers)


@routes.get("/console/neuroglancer/events/{token}", "Neuroglancer's state channel: an idle "
            "event stream (the page's state comes from its URL)", access="public",
            returns="text/event-stream", params=(_NG_TOKEN,),
            openapi=False)  # a minute-long stream for neuroglancer's page, not an API
async def console_neuroglancer_events(call: HttpCall) -> Response:
    if _NG is None:
        raise NotFound(NG_MISSING)
    return IdleEventStream()


class IdleEventStream(Response):
    """``text/event-stream`` that sends one comment and then nothing: it ends when the
    client goes away or after :data:`NG_EVENT_SECONDS` (neuroglancer then reconnects), so
    an open page never holds the server for long."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        await send({"type": "http.response.body", "body": b": dvidpy\n\n",
                    "more_body": True})
        with anyio.move_on_after(NG_EVENT_SECONDS):
            while (await receive())["type"] != "http.disconnect":
                pass
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@routes.post("/console/neuroglancer/credentials/{token}", "Credentials for neuroglancer's "
             "data sources: anonymous for dvid:// sources", access="public", mutates=False,
             params=(_NG_TOKEN,), body=Body(doc='{"key": "DVID", "parameters": {...}}',
                                            schema={"type": "object"}))
def console_neuroglancer_credentials(call: HttpCall) -> Any:
    body = call.obj("credentials request")
    if body.get("key") != "DVID":
        raise BadRequest(f"this server gives neuroglancer credentials only for dvid:// "
                         f"sources, not {body.get('key')!r}")
    return {"generation": 1, "credentials": {"token": ""}}


@routes.get("/favicon.ico", "The server's icon", access="public", returns=_FILE_RETURNS,
            inline=True)
def favicon(call: HttpCall) -> Response:
    return _STATIC.response(["favicon.png"], call.headers)
