"""Auth routes: who am I, tokens, logging a browser in, and a repo's permissions.

``GET  /api/server/whoami``                     the caller as the server sees it
``GET  /api/server/token``                      a JWT of this server for the caller (text;
                                                neuroglancer asks it, DVID's route)
``POST /api/server/tokens``                     ``{"user", "expires": seconds, "note"}``: a
                                                new API token (admins: any user; others:
                                                themselves); shown once
``GET  /api/server/tokens``                     token records (admins: all; others: theirs)
``DELETE /api/server/tokens/{id}``              revoke
``POST /api/server/login``                      ``{"token": t}``: checks it and sets the
                                                ``dvidpy_token`` cookie (HttpOnly,
                                                SameSite=Strict) for browsers
``POST /api/server/logout``                     clears the cookie
``GET|POST|DELETE /api/repo/{uuid}/permissions`` grants of the repo (repo admins): POST
    ``{"grants": {"user:alice": "write", "group:lab": "read", "*": "read"}, "public": true,
    "instance": optional name}``; DELETE ``{"principals": [...], "instance": ...}``
"""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse, Response

from dvidpy.errors import BadRequest, Forbidden, NotFound
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import TEXT, Body, Param
from dvidpy.http.table import RouteTable

routes = RouteTable("auth")
_UUID = Param("uuid", "uuid")
_GRANTS = {"type": "object", "additionalProperties": {"type": "string",
                                                      "enum": ["read", "write", "admin"]}}


@routes.get("/api/server/whoami", "The caller: user, groups, admin, how authenticated",
            access="public", inline=True)
def whoami(call: HttpCall) -> Any:
    i = call.identity
    return {"user": i.user, "groups": sorted(i.groups), "admin": i.admin, "via": i.via,
            "auth": call.state.auth.cfg.enforce}


@routes.get("/api/server/token", "A JWT of this server for the caller", returns=TEXT,
            inline=True)
def server_token(call: HttpCall) -> Response:
    auth = call.state.auth
    if not auth.on:
        raise BadRequest("authentication is off on this server: no token is needed")
    return PlainTextResponse(auth.issue_token(call.identity))


@routes.post("/api/server/tokens", "Create an API token (shown only in this answer)",
             access="read", mutates=False, body=Body(
                 doc='{"user": name (admins only; default: yourself), "expires": seconds, '
                     '"note": text}', required=False, schema={
                     "type": "object", "properties": {
                         "user": {"type": "string"}, "expires": {"type": "number"},
                         "note": {"type": "string"}}}))
def create_token(call: HttpCall) -> Any:
    auth = call.state.auth
    b = call.obj("token request")
    if not auth.on:
        raise BadRequest("authentication is off on this server: API tokens are not used")
    me = call.identity
    user = b.get("user", me.user)
    if not isinstance(user, str) or not user:
        raise BadRequest("'user' must name the token's user")
    if user != me.user and not me.admin:
        raise Forbidden("only administrators make tokens for other users")
    exp = b.get("expires")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float)
                            or exp <= 0):
        raise BadRequest("'expires' must be a positive number of seconds")
    note = b.get("note", "")
    if not isinstance(note, str):
        raise BadRequest("'note' must be a string")
    token, rec = auth.tokens.create(user, exp, note)
    rec = {k: v for k, v in rec.items() if k != "sha256"}
    return {"token": token, **rec}


@routes.get("/api/server/tokens", "API token records (admins: all; others: their own)")
def list_tokens(call: HttpCall) -> Any:
    me = call.identity
    return call.state.auth.tokens.list(None if me.admin else me.user)


@routes.delete("/api/server/tokens/{id}", "Revoke an API token", access="read",
               mutates=False, params=(Param("id", "str", "token id"),))
def revoke_token(call: HttpCall) -> Any:
    auth = call.state.auth
    me = call.identity
    tid = call.params["id"]
    recs = {r["id"]: r for r in auth.tokens.list(None if me.admin else me.user)}
    if tid not in recs:
        raise NotFound(f"no token {tid!r} of yours")
    return auth.tokens.revoke(tid)


@routes.post("/api/server/login", "Check a token and keep it in a cookie for this browser",
             access="public", returns=TEXT, body=Body(doc='{"token": t}', schema={
                 "type": "object", "required": ["token"],
                 "properties": {"token": {"type": "string"}}}))
def login(call: HttpCall) -> Response:
    auth = call.state.auth
    token = call.obj("login").get("token")
    if not auth.on:
        raise BadRequest("authentication is off on this server: no login is needed")
    if not isinstance(token, str) or not token:
        raise BadRequest("login needs {\"token\": ...}")
    ident = auth.identify([(b"authorization", f"Bearer {token}".encode("latin-1", "replace"))],
                          {})
    r = PlainTextResponse(f"logged in as {ident.user}")
    secure = call.scope.get("scheme") == "https"
    r.set_cookie("dvidpy_token", token, httponly=True, samesite="strict", secure=secure,
                 path="/")
    return r


@routes.post("/api/server/logout", "Forget this browser's login cookie", access="public",
             returns=TEXT)
def logout(call: HttpCall) -> Response:
    r = PlainTextResponse("logged out")
    r.delete_cookie("dvidpy_token", path="/")
    return r


@routes.get("/api/repo/{uuid}/permissions", "The repo's grants", params=(_UUID,),
            access="admin")
def get_permissions(call: HttpCall) -> Any:
    repo, _ = call.mgr.resolve(call.params["uuid"])
    return call.state.auth.grants.get(repo.root)


@routes.post("/api/repo/{uuid}/permissions", "Grant read/write/admin to users and groups",
             params=(_UUID,), access="admin", mutates=False, body=Body(
                 doc='{"grants": {"user:U"|"group:G"|"*": "read"|"write"|"admin"}, '
                     '"public": bool, "instance": name}', schema={
                     "type": "object", "properties": {
                         "grants": _GRANTS, "public": {"type": "boolean"},
                         "instance": {"type": "string"}}}))
def post_permissions(call: HttpCall) -> Any:
    repo, _ = call.mgr.resolve(call.params["uuid"])
    b = call.obj("permissions")
    grants = b.get("grants", {})
    if not isinstance(grants, dict):
        raise BadRequest("'grants' must map principals to levels")
    public = b.get("public")
    if public is not None and not isinstance(public, bool):
        raise BadRequest("'public' must be true or false")
    inst = b.get("instance")
    if inst is not None:
        if not isinstance(inst, str) or inst not in repo.instances:
            raise BadRequest(f"no instance {inst!r} in repo {repo.root}")
        if public is not None:
            raise BadRequest("'public' applies to a repo, not to one instance")
    return call.state.auth.grants.update(repo.root, grants, inst, public)


@routes.delete("/api/repo/{uuid}/permissions", "Remove grants", params=(_UUID,),
               access="admin", mutates=False, body=Body(
                   doc='{"principals": ["user:U", ...], "instance": name}', schema={
                       "type": "object", "required": ["principals"], "properties": {
                           "principals": {"type": "array", "items": {"type": "string"}},
                           "instance": {"type": "string"}}}))
def delete_permissions(call: HttpCall) -> Any:
    repo, _ = call.mgr.resolve(call.params["uuid"])
    b = call.obj("permissions")
    ps = b.get("principals")
    if not isinstance(ps, list):
        raise BadRequest("'principals' must be a list")
    inst = b.get("instance")
    if inst is not None and not isinstance(inst, str):
        raise BadRequest("'instance' must be an instance name")
    return call.state.auth.grants.remove(repo.root, ps, inst)
