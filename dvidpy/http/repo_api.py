"""Repo-level routes (dvid-api.md §5): ``/api/repo/{uuid}/...``."""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse, Response

from dvidpy.dag import Node, branch_name, log_line
from dvidpy.errors import BadRequest
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import TEXT, Body, Param
from dvidpy.http.table import RouteTable
from dvidpy.repo import Repo
from dvidpy.validate import str_field, str_list

routes = RouteTable("repo")
_UUID = Param("uuid", "uuid")
_LOG_BODY = Body(doc='{"log": ["line", ...]}', schema={
    "type": "object", "properties": {"log": {"type": "array", "items": {"type": "string"}}}})


def repo_of(call: HttpCall) -> tuple[Repo, Node]:
    """The repo and node named by the ``uuid`` path parameter (400 when unknown), as the
    metadata store has them now: with several workers over one store, the repo and
    version endpoints (info, status, log, branches, locks) show a change another worker
    answered a moment ago (one small metadata read; nothing on an exclusive store)."""
    call.mgr.refresh()
    return call.mgr.resolve(call.params["uuid"])


def by(call: HttpCall, what: str) -> list[str]:
    """``["<what> by <user>"]`` for an authenticated caller (the node log names who did
    it), else nothing."""
    user = call.identity.user
    return [f"{what} by {user}"] if user else []


def note_child(call: HttpCall, repo: Repo, child: Node, what: str) -> None:
    """Record in the new version's log who made it."""
    lines = by(call, what)
    if lines:
        with call.mgr.lock:
            child.log.extend(log_line(x) for x in lines)
            call.mgr.save_repo(repo)


def parents_in(call: HttpCall, repo: Repo, specs: list[str], what: str) -> list[Node]:
    """Nodes of ``repo`` named by ``specs`` (400 for unknown ones or ones elsewhere)."""
    out = []
    for p in specs:
        try:
            prepo, pnode = call.mgr.resolve(p)
        except BadRequest as e:
            raise BadRequest(f"can't match parent {p!r}: {e.message}") from None
        if prepo is not repo:
            raise BadRequest(f"{what} parent {p!r} is not in repo {repo.root}")
        out.append(pnode)
    return out


@routes.route(("GET", "HEAD"), "/api/repo/{uuid}", "Whether a repo holds this UUID",
              returns=TEXT, params=(_UUID,), inline=True)
def repo_head(call: HttpCall) -> Response:
    repo, _ = repo_of(call)
    return PlainTextResponse(f"Repo available with root UUID {repo.root}")


@routes.get("/api/repo/{uuid}/info", "The repo: root, alias, DAG, instances", params=(_UUID,),
            inline=True)
def repo_info(call: HttpCall) -> Any:
    repo, _ = repo_of(call)
    return call.mgr.repo_info(repo)


@routes.post("/api/repo/{uuid}/info", "Change the repo's alias and description",
             params=(_UUID,), returns=TEXT, body=Body(
                 doc='{"alias": ..., "description": ...}', schema={
                     "type": "object", "properties": {"alias": {"type": "string"},
                                                      "description": {"type": "string"}}}))
def repo_set_info(call: HttpCall) -> Response:
    repo, _ = repo_of(call)
    body = call.obj("POST repo info")
    mgr = call.mgr
    with mgr.lock:
        alias = str_field(body, "alias", repo.alias)
        description = str_field(body, "description", repo.description)
        repo.alias, repo.description = alias, description
        mgr.save_repo(repo)
    return PlainTextResponse("")


@routes.post("/api/repo/{uuid}/instance", "Create a data instance at this version",
             params=(_UUID,), body=Body(
                 doc='{"typename": ..., "dataname": ..., other settings as strings}',
                 schema={"type": "object", "required": ["typename", "dataname"],
                         "properties": {"typename": {"type": "string"},
                                        "dataname": {"type": "string"}},
                         "additionalProperties": {"type": "string"}}))
def repo_instance(call: HttpCall) -> Any:
    repo, node = repo_of(call)
    inst = call.mgr.new_instance(repo, node, call.obj("instance creation"))
    return {"result": f"Added {inst.meta.name} [{inst.type_name}] to node {node.uuid}"}


@routes.get("/api/repo/{uuid}/log", "The repo's log lines", params=(_UUID,), inline=True)
def repo_log(call: HttpCall) -> Any:
    repo, _ = repo_of(call)
    return {"log": list(repo.log)}


@routes.post("/api/repo/{uuid}/log", "Append lines to the repo's log", params=(_UUID,),
             returns=TEXT, body=_LOG_BODY)
def repo_add_log(call: HttpCall) -> Response:
    repo, _ = repo_of(call)
    lines = str_list(call.obj("POST log"), "log")
    with call.mgr.lock:
        repo.log.extend(log_line(x) for x in lines)
        call.mgr.save_repo(repo)
    return PlainTextResponse("")


@routes.get("/api/repo/{uuid}/branch-versions/{branch}",
            "UUIDs along a branch, HEAD first", inline=True,
            params=(_UUID, Param("branch", "str", "branch name (master: empty or 'master')")))
def branch_versions(call: HttpCall) -> Any:
    repo, _ = repo_of(call)
    return [n.uuid for n in repo.dag.branch_versions(branch_name(call.params["branch"]))]


@routes.post("/api/repo/{uuid}/merge", "Conflict-free merge of parents into a new child",
             params=(_UUID,), body=Body(
                 doc='{"mergeType": "conflict-free", "parents": [UUID, ...], "note": ...}',
                 schema={"type": "object", "properties": {
                     "mergeType": {"type": "string"}, "note": {"type": "string"},
                     "parents": {"type": "array", "items": {"type": "string"}}}}))
def repo_merge(call: HttpCall) -> Any:
    repo, _ = repo_of(call)
    body = call.obj("merge")
    mtype = str_field(body, "mergeType", "conflict-free")
    if mtype != "conflict-free":
        raise BadRequest(f"only 'conflict-free' merges are supported, not {mtype!r}")
    parents = parents_in(call, repo, str_list(body, "parents"), "merge")
    child = call.mgr.merge(repo, parents, str_field(body, "note"))
    note_child(call, repo, child, "merge created")
    return {"child": child.uuid}


@routes.post("/api/repo/{uuid}/resolve",
             "Merge with conflict resolution: earlier parents win", params=(_UUID,),
             body=Body(doc='{"data": [names], "parents": [UUIDs], "note": ...}', schema={
                 "type": "object", "required": ["data", "parents"], "properties": {
                     "data": {"type": "array", "items": {"type": "string"}},
                     "parents": {"type": "array", "items": {"type": "string"}},
                     "note": {"type": "string"}}}))
def repo_resolve(call: HttpCall) -> Any:
    repo, _ = repo_of(call)
    body = call.obj("resolve")
    data = str_list(body, "data")
    specs = str_list(body, "parents")
    note = str_field(body, "note")
    if not data:
        raise BadRequest("Must specify at least one data instance using 'data' field")
    if len(specs) < 2:
        raise BadRequest("Must specify at least two parent UUIDs using 'parents' field")
    parents = parents_in(call, repo, specs, "resolve")
    child = call.mgr.resolve_merge(repo, parents, data, note)
    note_child(call, repo, child, "resolved merge created")
    return {"child": child.uuid}
