"""The HTTP server: ``create_app(settings)`` wires storage, the repo manager and datatypes.

Routes follow DVID (dvid-api.md §2, §4-§7): server-level ``/api/...``, repo-level
``/api/repo/{uuid}/...``, node-level ``/api/node/{uuid}/{action}`` and everything
datatype-specific under ``/api/node/{uuid}/{data}/{keyword}/...``, dispatched to the
instance's :meth:`~dvidpy.datatype.Datatype.handle`. Errors are plain text with DVID's
status codes; every response carries the CORS header; one log line per request.

Run it with ``dvidpy serve`` (see ``dvidpy/cli.py``) or ``uvicorn server:app``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import datatypes  # noqa: F401  (registers the built-in datatypes)
from dvidpy import __version__
from dvidpy.config import Settings
from dvidpy.dag import Node, branch_name, log_line
from dvidpy.datatype import Call, json_response
from dvidpy.datatype import datatypes as registered_datatypes
from dvidpy.errors import BadRequest, DvidError, LockedNodeError
from dvidpy.repo import Repo, RepoManager
from dvidpy.transfer.routes import transfer_routes
from dvidpy.web import error_response, guard, read_body, read_json

log = logging.getLogger("dvidpy.access")
NODE_ACTIONS = frozenset({"status", "commit", "newversion", "branch", "note", "log", "tag"})
LOCK_EXEMPT = frozenset({"branch", "newversion", "tag"})
LOAD_FIELDS = (
    "file bytes read", "file bytes written", "key bytes read", "key bytes written",
    "value bytes read", "value bytes written", "GET requests", "PUT requests",
    "handlers active", "goroutines", "active CGo writes", "pending log messages",
)


# ----- middleware -----------------------------------------------------------------------


class DvidMiddleware:
    """Pure ASGI middleware: CORS headers, read-only mode, error text, access log."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.cors = "*" if "*" in settings.cors_domains else ",".join(settings.cors_domains)
        self.readonly = settings.rwmode == "readonly"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0]
        method = scope["method"]
        cors = self.cors.encode()

        async def send_wrapper(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
                if cors:
                    headers = list(msg.get("headers", []))
                    headers.append((b"access-control-allow-origin", cors))
                    msg = {**msg, "headers": headers}
            await send(msg)

        try:
            if method == "OPTIONS":
                await PlainTextResponse(
                    "", headers={
                        "Access-Control-Allow-Methods": "GET, POST, DELETE, HEAD, OPTIONS",
                        "Access-Control-Allow-Headers": "*",
                    })(scope, receive, send_wrapper)
            elif self.readonly and method not in ("GET", "HEAD"):
                await PlainTextResponse(
                    "server is in read-only mode", status_code=400
                )(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            log.info("%s %s %d %.1fms", method, scope["path"], status[0],
                     (time.perf_counter() - t0) * 1e3)


# ----- helpers ----------------------------------------------------------------------------


def _obj(body: Any, what: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest(f"{what} expects a JSON object")
    return body


def _str_field(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise BadRequest(f"field {key!r} must be a string")
    return v


def _str_list(d: dict[str, Any], key: str) -> list[str]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadRequest(f"field {key!r} must be a list of strings")
    return v


# ----- the app ----------------------------------------------------------------------------


def create_app(settings: Settings | None = None, manager: RepoManager | None = None) -> FastAPI:
    """A new server app. ``manager`` may be given to share or pre-build storage."""
    settings = settings or Settings.memory()
    mgr = manager or RepoManager(settings)
    started = time.time()
    limit = settings.max_request_bytes

    # --- server level -------------------------------------------------------------------

    async def heartbeat(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def server_info(request: Request) -> Response:
        engines = "; ".join(sorted({s.engine for s in settings.stores.values()}))
        up = int(time.time() - started)
        return json_response({
            "Cores": str(os.cpu_count() or 1),
            "Maximum Cores": str(os.cpu_count() or 1),
            "Datastore Version": "1",
            "DVID Version": f"dvidpy {__version__}",
            "Storage backend": engines,
            "Server time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "Server uptime": f"{up}s",
            "RPC Address": "",
            "Host": platform.node(),
            "Note": settings.note,
            "TOML location": settings.toml_path,
            "Max Open Files": "0",
        })

    async def server_note(request: Request) -> Response:
        return PlainTextResponse(settings.note)

    async def server_types(request: Request) -> Response:
        used = {i.type_name: i.type_url for r in mgr.repos.values() for i in r.instances.values()}
        return json_response(used)

    async def compiled_types(request: Request) -> Response:
        return json_response({n: c.type_url for n, c in registered_datatypes().items()})

    async def load(request: Request) -> Response:
        return json_response({**dict.fromkeys(LOAD_FIELDS, 0), **mgr.cache_stats()})

    async def help_page(request: Request) -> Response:
        items = "".join(
            f'<li><a href="/api/help/{n}">{n}</a></li>' for n in sorted(registered_datatypes()))
        return HTMLResponse(
            "<html><body><h1>dvidpy</h1><p>A DVID-compatible versioned volume server. "
            "See the README for the HTTP API.</p><h2>Datatypes</h2><ul>"
            f"{items}</ul></body></html>")

    async def help_type(request: Request) -> Response:
        name = request.path_params["typename"]
        cls = registered_datatypes().get(name)
        if cls is None:
            raise BadRequest(f"unknown datatype {name!r}")
        return PlainTextResponse(cls.help_text or name)

    # --- repos --------------------------------------------------------------------------

    async def create_repo(request: Request) -> Response:
        body = _obj(await read_json(request, limit), "POST /api/repos")
        fields: dict[str, str] = {}
        for k, v in body.items():
            if not isinstance(v, str):
                raise BadRequest(f"Setting for {k!r} was not a string")
            fields[k.lower()] = v
        repo = await run_in_threadpool(
            mgr.create_repo, fields.get("alias", ""), fields.get("description", ""),
            fields.get("root") or None)
        return json_response({"root": repo.root})

    async def repos_info(request: Request) -> Response:
        def build() -> dict[str, Any]:
            with mgr.lock:
                return {root: mgr.repo_info(r) for root, r in mgr.repos.items()}

        return json_response(await run_in_threadpool(build))

    def _repo(request: Request) -> tuple[Repo, Node]:
        return mgr.resolve(request.path_params["uuid"])

    async def repo_head(request: Request) -> Response:
        repo, _ = _repo(request)
        return PlainTextResponse(f"Repo available with root UUID {repo.root}")

    async def repo_info(request: Request) -> Response:
        repo, _ = _repo(request)
        if request.method == "POST":
            body = _obj(await read_json(request, limit), "POST repo info")
            with mgr.lock:
                if "alias" in body:
                    repo.alias = _str_field(body, "alias")
                if "description" in body:
                    repo.description = _str_field(body, "description")
                mgr.save_repo(repo)
            return PlainTextResponse("")
        return json_response(await run_in_threadpool(mgr.repo_info, repo))

    async def repo_instance(request: Request) -> Response:
        repo, node = _repo(request)
        body = _obj(await read_json(request, limit), "instance creation")
        inst = await run_in_threadpool(mgr.new_instance, repo, node, body)
        return json_response(
            {"result": f"Added {inst.meta.name} [{inst.type_name}] to node {node.uuid}"})

    async def repo_log(request: Request) -> Response:
        repo, _ = _repo(request)
        if request.method == "POST":
            body = _obj(await read_json(request, limit), "POST log")
            lines = _str_list(body, "log")
            with mgr.lock:
                repo.log.extend(log_line(x) for x in lines)
                mgr.save_repo(repo)
            return PlainTextResponse("")
        return json_response({"log": list(repo.log)})

    async def branch_versions(request: Request) -> Response:
        repo, _ = _repo(request)
        nodes = repo.dag.branch_versions(branch_name(request.path_params["branch"]))
        return json_response([n.uuid for n in nodes])

    async def repo_merge(request: Request) -> Response:
        repo, _ = _repo(request)
        body = _obj(await read_json(request, limit), "merge")
        mtype = _str_field(body, "mergeType", "conflict-free")
        if mtype != "conflict-free":
            raise BadRequest(f"only 'conflict-free' merges are supported, not {mtype!r}")
        parents = []
        for p in _str_list(body, "parents"):
            prepo, pnode = mgr.resolve(p)
            if prepo is not repo:
                raise BadRequest(f"merge parent {p!r} is not in repo {repo.root}")
            parents.append(pnode)
        child = mgr.merge(repo, parents, _str_field(body, "note"))
        return json_response({"child": child.uuid})

    async def repo_resolve(request: Request) -> Response:
        repo, _ = _repo(request)
        body = _obj(await read_json(request, limit), "resolve")
        data = _str_list(body, "data")
        specs = _str_list(body, "parents")
        note = _str_field(body, "note")
        if not data:
            raise BadRequest("Must specify at least one data instance using 'data' field")
        if len(specs) < 2:
            raise BadRequest("Must specify at least two parent UUIDs using 'parents' field")
        parents = []
        for p in specs:
            try:
                prepo, pnode = mgr.resolve(p)
            except BadRequest as e:
                raise BadRequest(f"can't match parent {p!r}: {e.message}") from None
            if prepo is not repo:
                raise BadRequest(f"resolve parent {p!r} is not in repo {repo.root}")
            parents.append(pnode)
        child = await run_in_threadpool(mgr.resolve_merge, repo, parents, data, note)
        return json_response({"child": child.uuid})

    # --- nodes --------------------------------------------------------------------------

    async def node_action(request: Request, repo: Repo, node: Node, action: str) -> Response:
        method = request.method
        if method not in ("GET", "HEAD") and node.locked and action not in LOCK_EXEMPT \
                and action != "commit":
            raise LockedNodeError(f"Cannot do {method} on locked node {node.uuid}")
        body = await read_json(request, limit)
        if action in ("status", "commit") and method in ("GET", "HEAD"):
            return json_response({"Locked": node.locked})
        if action == "commit" and method == "POST":
            b = _obj(body, "commit")
            mgr.commit(repo, node, _str_field(b, "note"), _str_list(b, "log"))
            return json_response({"committed": node.uuid})
        if action == "newversion" and method == "POST":
            b = _obj(body, "newversion")
            child = mgr.new_version(repo, node, _str_field(b, "note"), b.get("uuid") or None)
            return json_response({"child": child.uuid})
        if action == "branch" and method == "POST":
            b = _obj(body, "branch")
            child = mgr.new_branch(repo, node, _str_field(b, "branch"), _str_field(b, "note"),
                                   b.get("uuid") or None)
            return json_response({"child": child.uuid})
        if action == "tag" and method == "POST":
            b = _obj(body, "tag")
            tag = _str_field(b, "tag")
            if not tag:
                raise BadRequest("tag needs a non-empty 'tag'")
            mgr.new_tag(repo, node, tag, _str_field(b, "note"))
            return json_response({"child": tag})
        if action == "note":
            if method == "POST":
                b = _obj(body, "note")
                with mgr.lock:
                    node.note = _str_field(b, "note")
                    node.touch()
                    mgr.save_repo(repo)
                return PlainTextResponse("")
            return json_response({"note": node.note})
        if action == "log":
            if method == "POST":
                b = _obj(body, "log")
                lines = _str_list(b, "log")
                with mgr.lock:
                    node.log.extend(log_line(x) for x in lines)
                    node.touch()
                    mgr.save_repo(repo)
                return PlainTextResponse("")
            return json_response({"log": list(node.log)})
        raise BadRequest(f"{method} not supported on node action {action!r}")

    async def node_dispatch(request: Request) -> Response:
        path = request.url.path
        try:
            parts = path[len("/api/node/"):].split("/")
            if parts and parts[-1] == "":
                parts.pop()
            if not parts or not parts[0]:
                raise BadRequest("missing UUID")
            repo, node = mgr.resolve(parts[0])
            if len(parts) == 1:
                raise BadRequest(f"missing action or data name after UUID ({path})")
            if len(parts) == 2 and parts[1] in NODE_ACTIONS:
                return await node_action(request, repo, node, parts[1])
            inst = mgr.instance(repo, parts[1])
            if len(parts) < 3:
                raise BadRequest(f"missing endpoint after data name {parts[1]!r} ({path})")
            keyword = parts[2]
            method = request.method
            if (inst.meta.versioned and node.locked and settings.rwmode != "fullwrite"
                    and inst.is_mutation(method, keyword)):
                raise LockedNodeError(
                    f'Cannot do {method} on endpoint "{keyword}" of locked node {node.uuid}')
            body = await read_body(request, limit)
            q = request.query_params
            ctx = mgr.context(inst, node, q.get("u", ""), q.get("app", ""))
            ctx.allow_locked = settings.rwmode == "fullwrite"
            call = Call(method, keyword, parts[3:], q, body, ctx, request.headers, path)
            return await run_in_threadpool(inst.handle, call)
        except DvidError as e:
            return error_response(e, path)

    routes = [
        Route("/api/heartbeat", heartbeat),
        Route("/api/server/info", server_info),
        Route("/api/server/note", server_note),
        Route("/api/server/types", server_types),
        Route("/api/server/compiled-types", compiled_types),
        Route("/api/load", load),
        Route("/api/help", help_page),
        Route("/api/help/{typename}", guard(help_type)),
        Route("/api/repos", guard(create_repo), methods=["POST"]),
        Route("/api/repos/info", guard(repos_info)),
        Route("/api/repo/{uuid}", guard(repo_head), methods=["GET", "HEAD"]),
        Route("/api/repo/{uuid}/info", guard(repo_info), methods=["GET", "POST"]),
        Route("/api/repo/{uuid}/instance", guard(repo_instance), methods=["POST"]),
        Route("/api/repo/{uuid}/log", guard(repo_log), methods=["GET", "POST"]),
        Route("/api/repo/{uuid}/branch-versions/{branch}", guard(branch_versions)),
        Route("/api/repo/{uuid}/merge", guard(repo_merge), methods=["POST"]),
        Route("/api/repo/{uuid}/resolve", guard(repo_resolve), methods=["POST"]),
        *transfer_routes(mgr, settings),
        Route("/api/node/{rest:path}", node_dispatch,
              methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if manager is None:
            mgr.close()

    app = FastAPI(title="dvidpy", version=__version__, docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json", lifespan=lifespan)
    app.router.routes.extend(routes)
    app.state.manager = mgr
    app.state.settings = settings

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"unknown endpoint {request.url.path}", status_code=404)

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(
            f"{request.method} not allowed on {request.url.path}", status_code=405)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        logging.getLogger("dvidpy").exception("internal error on %s", request.url.path)
        return PlainTextResponse(f"internal error: {exc!r}", status_code=500)

    app.add_middleware(DvidMiddleware, settings=settings)
    return app


def app_from_env() -> FastAPI:
    """App for ``uvicorn server:app``: ``DVIDPY_CONFIG`` (TOML) or LevelDB in ./dvid-data."""
    cfg = os.environ.get("DVIDPY_CONFIG")
    return create_app(Settings.from_toml(cfg) if cfg else Settings.default())


def __getattr__(name: str) -> Any:  # lazy ``server:app`` so importing server opens nothing
    if name == "app":
        return app_from_env()
    raise AttributeError(name)
