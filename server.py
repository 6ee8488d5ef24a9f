"""The HTTP server: ``create_app(settings)`` wires storage, the repo manager and the routes.

Every route is declared once, in the module of its level (dvid-api.md §2, §4-§7):

=============================  ===========================================================
``dvidpy.http.server_api``     ``/api/heartbeat``, ``/api/server/...``, ``/api/repos``, ...
``dvidpy.http.repo_api``       ``/api/repo/{uuid}/...``
``dvidpy.http.node_api``       ``/api/node/{uuid}/{action}`` and the datatype dispatch
``dvidpy.transfer.routes``     ``/api/transfer/...`` (push/pull between servers)
``dvidpy.ingest.routes``       ``/api/ingest/...`` (ingest jobs)
``dvidpy.http.docs_api``       ``/api/openapi.json``, ``/api/docs``
``dvidpy.auth.routes``         whoami, tokens, login, ``/api/repo/{uuid}/permissions``
``dvidpy.console.routes``      ``/``, ``/console/...`` (the web console)
``dvidpy.boss.*``              ``/v1/...``: the Boss's API (see :mod:`dvidpy.boss`)
datatypes (``@endpoint``)      ``/api/node/{uuid}/{data}/{keyword}/...``
=============================  ===========================================================

:class:`~dvidpy.http.router.Dispatcher` serves them (routing, parsing, bodies, errors,
CORS, access log); FastAPI hosts it for the lifespan. Run it with ``dvidpy serve`` (see
``dvidpy/cli.py``) or ``uvicorn server:app``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import FastAPI

import datatypes  # noqa: F401  (registers the built-in datatypes)
from dvidpy import __version__
from dvidpy.auth import routes as auth_api
from dvidpy.auth.service import Auth
from dvidpy.boss import cutout as boss_cutout
from dvidpy.boss import groups as boss_groups
from dvidpy.boss import objects as boss_objects
from dvidpy.boss import resources as boss_resources
from dvidpy.config import Settings
from dvidpy.console import routes as console_routes
from dvidpy.http import diff_api, docs_api, mutations_api, node_api, repo_api, server_api
from dvidpy.http.router import Dispatcher, Router, ServerState
from dvidpy.http.spec import RouteSpec
from dvidpy.ingest import routes as ingest_api
from dvidpy.repo import RepoManager
from dvidpy.transfer import routes as transfer_api

#: the route tables of the server, in lookup-independent declaration order
ROUTE_TABLES = (server_api.routes, repo_api.routes, node_api.routes, transfer_api.routes,
                ingest_api.routes, docs_api.routes, auth_api.routes, console_routes.routes,
                mutations_api.routes, diff_api.routes, boss_resources.routes,
                boss_cutout.routes, boss_objects.routes, boss_groups.routes)


def all_routes() -> Iterable[RouteSpec]:
    """Every server-level route declaration (datatype endpoints are per datatype)."""
    for table in ROUTE_TABLES:
        yield from table


class DvidApp(FastAPI):
    """FastAPI for the lifespan; HTTP requests go straight to :attr:`dispatcher`, past the
    middleware FastAPI and Starlette wrap around every request (telemetry, error and body
    limit layers: 1 KiB keyvalue GETs spent ~15% of their in-process time there)."""

    dispatcher: Dispatcher | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        d = self.dispatcher
        if d is not None and scope["type"] == "http":
            await d(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, manager: RepoManager | None = None) -> FastAPI:
    """A new server app. ``manager`` may be given to share or pre-build storage."""
    settings = settings or Settings.memory()
    mgr = manager or RepoManager(settings)
    state = ServerState(settings, mgr)
    state.auth = Auth(settings.auth, mgr)
    router = Router(all_routes())
    state.extras["router"] = router

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if manager is None:
            mgr.close()

    app = DvidApp(title="dvidpy", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.manager = mgr
    app.state.settings = settings
    app.state.server = state
    app.add_middleware(Dispatcher, router=router, state=state)
    app.dispatcher = Dispatcher(None, router, state)
    return app


def app_from_env() -> FastAPI:
    """App for ``uvicorn server:app``: ``DVIDPY_CONFIG`` (TOML) or ./dvid-data (the
    default engine for a new folder). Tunes the allocator as ``dvidpy serve`` does."""
    from dvidpy.malloc import tune_allocator

    tune_allocator()
    cfg = os.environ.get("DVIDPY_CONFIG")
    return create_app(Settings.from_toml(cfg) if cfg else Settings.default())


def __getattr__(name: str) -> Any:  # lazy ``server:app`` so importing server opens nothing
    if name == "app":
        return app_from_env()
    raise AttributeError(name)
