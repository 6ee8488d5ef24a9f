"""Node-level routes (dvid-api.md §6-§7): version actions and the datatype dispatch.

``/api/node/{uuid}/{action}`` are the version's own actions (status, commit, newversion,
branch, tag, note, log). Everything else under ``/api/node/{uuid}/{data}/...`` goes to the
instance's datatype: its declaration for (method, keyword) is found in one dict lookup
(:meth:`~dvidpy.datatype.Datatype.route`), its parameters parsed, mutations refused on
locked nodes of versioned data (DVID's rule; ``fullwrite`` mode lifts it), the body read
only when the endpoint takes one, and the handler run.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse, Response

from dvidpy.dag import Node, log_line
from dvidpy.datatype import Call
from dvidpy.errors import BadRequest, LockedNodeError, Unauthorized
from dvidpy.http.repo_api import by, note_child, repo_of
from dvidpy.http.router import HttpCall, call_handler, to_response
from dvidpy.http.spec import TEXT, Body, Param, RouteSpec
from dvidpy.http.table import RouteTable
from dvidpy.validate import opt_uuid, str_field, str_list

routes = RouteTable("node")
_UUID = Param("uuid", "uuid")
_NOTE = {"type": "object", "properties": {"note": {"type": "string"}}}
_CHILD = {"type": "object", "properties": {"note": {"type": "string"},
                                           "uuid": {"type": "string"}}}


def open_node(call: HttpCall) -> tuple[Any, Node]:
    """Repo and node of the request (as :func:`repo_of` finds them: current, even when
    another worker just committed the node); :class:`LockedNodeError` when the node is
    locked."""
    repo, node = repo_of(call)
    if node.locked:
        raise LockedNodeError(f"Cannot do {call.method} on locked node {node.uuid}")
    return repo, node


@routes.route(("GET", "HEAD"), "/api/node/{uuid}/status", "Whether the version is locked",
              params=(_UUID,), inline=True)
def node_status(call: HttpCall) -> Any:
    _, node = repo_of(call)
    return {"Locked": node.locked}


@routes.route(("GET", "HEAD"), "/api/node/{uuid}/commit", "Whether the version is locked",
              params=(_UUID,), inline=True)
def node_commit_status(call: HttpCall) -> Any:
    return node_status(call)


@routes.post("/api/node/{uuid}/commit", "Lock the version (with a note and log lines)",
             params=(_UUID,), body=Body(doc='{"note": ..., "log": [lines]}', required=False,
                                        schema={"type": "object", "properties": {
                                            "note": {"type": "string"}, "log": {
                                                "type": "array",
                                                "items": {"type": "string"}}}}))
def node_commit(call: HttpCall) -> Any:
    repo, node = repo_of(call)
    b = call.obj("commit")
    call.mgr.commit(repo, node, str_field(b, "note"), str_list(b, "log") + by(call, "committed"))
    return {"committed": node.uuid}



@routes.post("/api/node/{uuid}/newversion", "A child version on the same branch",
             params=(_UUID,), body=Body(doc='{"note": ..., "uuid": optional}', required=False,
                                        schema=_CHILD))
def node_newversion(call: HttpCall) -> Any:
    repo, node = repo_of(call)
    b = call.obj("newversion")
    child = call.mgr.new_version(repo, node, str_field(b, "note"), opt_uuid(b, "uuid"))
    note_child(call, repo, child, "version created")
    return {"child": child.uuid}


@routes.post("/api/node/{uuid}/branch", "A child version starting a new branch",
             params=(_UUID,), body=Body(doc='{"branch": name, "note": ..., "uuid": optional}',
                                        schema={**_CHILD, "required": ["branch"], "properties": {
                                            **_CHILD["properties"],
                                            "branch": {"type": "string"}}}))
def node_branch(call: HttpCall) -> Any:
    repo, node = repo_of(call)
    b = call.obj("branch")
    child = call.mgr.new_branch(repo, node, str_field(b, "branch"), str_field(b, "note"),
                                opt_uuid(b, "uuid"))
    note_child(call, repo, child, f"branch {child.branch!r} created")
    return {"child": child.uuid}


@routes.post("/api/node/{uuid}/tag", "A named, committed child: a fixed name for this state",
             params=(_UUID,), body=Body(doc='{"tag": name, "note": ...}', schema={
                 "type": "object", "required": ["tag"], "properties": {
                     "tag": {"type": "string"}, "note": {"type": "string"}}}))
def node_tag(call: HttpCall) -> Any:
    repo, node = repo_of(call)
    b = call.obj("tag")
    child = call.mgr.new_tag(repo, node, str_field(b, "tag"), str_field(b, "note"))
    return {"child": child.uuid}


@routes.get("/api/node/{uuid}/note", "The version's note", params=(_UUID,), inline=True)
def node_note(call: HttpCall) -> Any:
    _, node = repo_of(call)
    return {"note": node.note}


@routes.post("/api/node/{uuid}/note", "Set the version's note (open versions only)",
             params=(_UUID,), returns=TEXT, body=Body(doc='{"note": ...}', schema=_NOTE))
def node_set_note(call: HttpCall) -> Response:
    repo, node = open_node(call)
    note = str_field(call.obj("note"), "note")
    with call.mgr.lock:
        node.note = note
        node.touch()
        call.mgr.save_repo(repo)
    return PlainTextResponse("")


@routes.get("/api/node/{uuid}/log", "The version's log lines", params=(_UUID,), inline=True)
def node_log(call: HttpCall) -> Any:
    _, node = repo_of(call)
    return {"log": list(node.log)}


@routes.post("/api/node/{uuid}/log", "Append lines to the version's log (open versions only)",
             params=(_UUID,), returns=TEXT, body=Body(doc='{"log": [lines]}', schema={
                 "type": "object", "properties": {
                     "log": {"type": "array", "items": {"type": "string"}}}}))
def node_add_log(call: HttpCall) -> Response:
    repo, node = open_node(call)
    lines = str_list(call.obj("log"), "log")
    with call.mgr.lock:
        node.log.extend(log_line(x) for x in lines)
        node.touch()
        call.mgr.save_repo(repo)
    return PlainTextResponse("")


def _instance_endpoint(call: HttpCall) -> tuple[Any, Any, Any, RouteSpec, dict[str, Any]]:
    """The instance, version and endpoint declaration a datatype request reaches, with the
    endpoint's parameters parsed and every check made that needs no body: the caller's
    access (on the repo, then on the endpoint), read-only mode, locked versions."""
    p = call.params
    mgr = call.mgr
    settings = call.settings
    auth = call.state.auth
    ident = call.identity
    try:
        repo, node = mgr.resolve(p["uuid"])
    except BadRequest:
        if auth.on and ident.anonymous:
            raise Unauthorized("credentials required") from None
        raise
    if auth.on:  # no instance names or endpoints to callers who may not read the repo
        auth.authorize(ident, "read", repo.root, None, node.uuid)
    inst = mgr.instance(repo, p["data"])
    rest: list[str] = p["endpoint"]
    if not rest:
        raise BadRequest(f"missing endpoint after data name {p['data']!r}")
    method = call.method
    spec = inst.route(method, rest[0], call.path)
    if auth.on:
        auth.authorize(ident, spec.access, repo.root, inst.meta.name, node.uuid)
    if spec.mutates and settings.rwmode == "readonly":
        raise BadRequest("server is in read-only mode")
    params = spec.match_segments(rest, call.path)
    params.update(spec.parse_query(call.query))
    if spec.mutates and inst.meta.versioned:
        node = mgr.current(repo, node)  # committed by another worker just now?
    if (spec.mutates and inst.meta.versioned and node.locked
            and settings.rwmode != "fullwrite"):
        raise LockedNodeError(
            f'Cannot do {method} on endpoint "{rest[0]}" of locked node {node.uuid}')
    return inst, node, rest, spec, params


def _instance_call(call: HttpCall, inst: Any, node: Any, rest: list[str],
                   params: dict[str, Any]) -> Call:
    """The datatype's request object for ``call`` (after its body, if any, was read)."""
    q = call.query
    user, app = (q.get("u", ""), q.get("app", "")) if q else ("", "")
    ctx = call.mgr.context(inst, node, call.identity.user or user, app)
    ctx.allow_locked = call.settings.rwmode == "fullwrite"
    return Call(call.method, rest[0], rest[1:], q, call.body, ctx, call.headers, call.path,
                params, call.identity)


def _needs_body(call: HttpCall, spec: RouteSpec) -> bool:
    return spec.body is not None or call.method in ("POST", "PUT") or spec.segments[-1].rest


def instance_dispatch_now(call: HttpCall) -> Any:
    """:func:`instance_dispatch` without awaiting, for endpoints declared ``inline`` on a
    local engine that take no body; None for any other (then it is awaited)."""
    inst, node, rest, spec, params = _instance_endpoint(call)
    if spec.direct is None or not inst.store.engine.local or _needs_body(call, spec):
        return None
    return spec.handler(inst, _instance_call(call, inst, node, rest, params))


@routes.route(("GET", "HEAD", "POST", "PUT", "DELETE"), "/api/node/{uuid}/{data}/{endpoint*:key}",
              "A datatype endpoint of instance {data}", mutates=False, inline=True,
              openapi=False, access="delegated", now=instance_dispatch_now,
              params=(_UUID, Param("data", "str", "data instance name")))
async def instance_dispatch(call: HttpCall) -> Response:
    """Resolve the instance and its endpoint declaration, then run the endpoint."""
    inst, node, rest, spec, params = _instance_endpoint(call)
    if _needs_body(call, spec):
        await call.read_body()
    dcall = _instance_call(call, inst, node, rest, params)
    inline = spec.inline and inst.store.engine.local
    return to_response(await call_handler(spec.handler, inst, dcall, inline=inline))
