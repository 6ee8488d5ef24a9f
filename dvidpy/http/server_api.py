"""Server-level routes (dvid-api.md §4): ``/api/heartbeat``, ``/api/user-latencies``,
``/api/server/...``, ``/api/load``, ``/api/storage``, ``/api/help``, ``/api/repos``.

``/api/server/info`` reports ``"DVID Version"`` in DVID's ``git describe`` form
(:data:`DVID_VERSION`, the DVID release whose API this server follows; clients such as
neuclease parse it to choose formats) and dvidpy's own version as ``"dvidpy Version"``.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

from starlette.responses import HTMLResponse, PlainTextResponse, Response

from dvidpy import __version__
from dvidpy.datatype import datatypes as registered_datatypes
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.router import LATENCY_USER, HttpCall
from dvidpy.http.spec import OCTET, TEXT, Body, Param, Q
from dvidpy.http.table import RouteTable

routes = RouteTable("server")
log = logging.getLogger("dvidpy")
#: the DVID release whose HTTP API this server follows, as ``git describe`` prints it
DVID_VERSION = "v1.0.0"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}


@routes.get("/api/heartbeat", "Liveness probe: answers OK (u=USER records a latency)",
            returns=TEXT, access="public", inline=True,
            query=(Q("u", "str", "user whose latency to record"),))
def heartbeat(call: HttpCall) -> Response:
    u = call.params.get("u")
    if u:  # the dispatcher records this request's latency for ``u`` when it is answered
        call.scope[LATENCY_USER] = u
    return PlainTextResponse("OK")


@routes.get("/api/user-latencies", "Heartbeat latencies (ms) by user, or of one user",
            inline=True, query=(Q("u", "str", "only this user (null when unknown)"),))
def user_latencies(call: HttpCall) -> Any:
    lat = call.state.load.latencies
    u = call.params.get("u")
    if u:
        return lat.get(u)
    return {k: dict(v) for k, v in lat.items()}


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
        "DVID Version": DVID_VERSION,
        "dvidpy Version": __version__,
        "Storage backend": engines,
        "Server time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "Server uptime": f"{up}s",
        "RPC Address": "",
        "Host": platform.node() if admin else "",
        "Server process": str(os.getpid()) if admin else "",  # which worker answered
        "Note": s.note,
        "TOML location": s.toml_path if admin else "",
        "Max Open Files": "0",
        **({"Mode": {"readonly": "read only", "fullwrite": "allow writes on committed nodes"}[
            s.rwmode]} if s.rwmode else {}),
        **({"Kafka Servers": ",".join(map(str, s.mutations.dvid["kafka"].get("servers", [])))}
           if "kafka" in s.mutations.dvid else {}),
    }


@routes.get("/api/server/config", "The configuration TOML as written", returns=TEXT,
            access="admin")
def server_config(call: HttpCall) -> Response:
    """The raw TOML the server was started with; without a file, the equivalent TOML of
    its settings (stores and backends)."""
    s = call.settings
    if s.toml_path:
        try:
            return PlainTextResponse(Path(s.toml_path).read_text())
        except OSError as e:
            raise BadRequest(f"cannot read configuration {s.toml_path}: {e}") from None
    lines = ["[server]", f'httpAddress = "{s.host}:{s.port}"', f"note = {_toml_str(s.note)}",
             ""]
    for alias, st in s.stores.items():
        lines += [f"[store.{alias}]", f"engine = {_toml_str(st.engine)}"]
        if st.location:
            lines.append(f"path = {_toml_str(st.location)}")
        lines.append("")
    for rule, alias in s.backend.items():
        lines += [f"[backend.{_toml_str(rule)}]", f"store = {_toml_str(alias)}", ""]
    return PlainTextResponse("\n".join(lines))


def _toml_str(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


@routes.get("/api/storage", "Log a storage summary (keys and bytes per instance)",
            returns=(TEXT, "application/json"), access="admin",
            query=(Q("result", "bool", "answer the last summary as JSON instead"),))
def storage_summary(call: HttpCall) -> Response:
    """Starts a summary in the background (one scan of every instance) and answers at
    once, as DVID does; the summary goes to the server log and to ``?result=true``."""
    mgr = call.mgr
    state = call.state.extras
    if call.params.get("result"):
        last = state.get("storage-summary")
        if last is None:
            raise NotFound("no storage summary has been computed yet")
        from dvidpy.datatype import json_response

        return json_response(last)

    def run() -> None:
        from dvidpy.keys import instance_prefix
        from storage.base import KeyRange

        out: dict[str, Any] = {}
        for root, repo in list(mgr.repos.items()):
            for name, inst in list(repo.instances.items()):
                n = size = 0
                rng = KeyRange.prefix(instance_prefix(inst.meta.instance_id))
                for k, v in inst.store.engine.scan(rng):
                    n += 1
                    size += len(k) + len(v)
                out[f"{root}/{name}"] = {"TypeName": inst.type_name, "Keys": n, "Bytes": size}
                log.info("storage summary: repo %s instance %s (%s): %d keys, %d bytes",
                         root, name, inst.type_name, n, size)
        state["storage-summary"] = out

    threading.Thread(target=run, name="storage-summary", daemon=True).start()
    return PlainTextResponse("Storage summary requested.  Check log for details.\n")


@routes.get("/api/server/blobstore/{ref}", "A blob by reference, from any instance",
            returns=OCTET, params=(Param("ref", "str", "content reference"),))
def server_blob(call: HttpCall) -> Response:
    """The blobstore blob with reference ``ref`` (mutation-log bodies, split RLEs), looked
    up in every instance; 404 when none has it."""
    ref = call.params["ref"]
    for repo in list(call.mgr.repos.values()):
        for inst in list(repo.instances.values()):
            data = inst.get_blob(ref)
            if data is not None:
                return Response(data, media_type="application/octet-stream")
    raise NotFound(f"no blob with reference {ref!r}")


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


@routes.get("/api/load", "Load: requests and bytes per second, handlers active, and the "
            "cache tier's hits/misses", inline=True)
def load(call: HttpCall) -> Any:
    """DVID's fields as per-second rates over the last seconds (see
    :mod:`dvidpy.http.load`), plus the cache tier's counters."""
    return {**call.state.load.snapshot(), **call.mgr.cache_stats()}


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
