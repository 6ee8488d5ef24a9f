"""Boss groups and permissions (the Boss's ``/v1/groups`` and ``/v1/permissions``) on
dvidpy's groups and grants.

**Groups** are dvidpy's API groups (:class:`~dvidpy.auth.stores.GroupStore`): a user's
groups, for every grant of the server, include those listing them as members.

``GET /v1/groups/[?filter=member|maintainer]``      ``{"groups": [names]}``
``GET|POST|DELETE /v1/groups/{g}/``                 ``{"name", "owner", "resources"}`` /
                                                    create (201; the creator owns,
                                                    maintains and belongs to it) /
                                                    delete (204; owner or administrator)
``GET /v1/groups/{g}/members/[{user}]``             ``{"members": [...]}`` or
                                                    ``{"result": bool}``
``POST|DELETE /v1/groups/{g}/members/{user}``       add / remove (204; maintainers)
``.../maintainers/...``                             the same for maintainers

**Permissions** map the Boss's verbs onto dvidpy's levels of a group principal
(``group:G``) on the resource's repo (collection: its pseudo-repo; channel: an additive
grant on the instance of its experiment's repo, which raises members' levels there and,
as in the Boss, never lowers what they hold otherwise):

==============================================================  =========
Boss permissions in the set                                     level
==============================================================  =========
``read``, ``read_volumetric_data``                              ``read``
``add``, ``update``, ``add_volumetric_data``,                   ``write``
``delete_volumetric_data``
``delete``, ``assign_group``, ``remove_group``                  ``admin``
==============================================================  =========

A set is granted the highest level any of its verbs needs, and read back as every verb
of that level (``read`` -> ``read``, ``read_volumetric_data``; ``write`` -> those and
``add``, ``update``, ``add_volumetric_data``, ``delete_volumetric_data``; ``admin`` -> all
nine; collections and experiments show the non-volumetric verbs only). The ``public``
group stands for anonymous callers: it may only be given ``read`` verbs, on a collection
or experiment, and sets its public flag.

``GET /v1/permissions/?group=&collection=&experiment=&channel=``   ``{"permission-sets":
[{"group", "collection", "experiment"?, "channel"?, "permissions": [...]}]}``
``POST /v1/permissions/`` (201) / ``PATCH`` (200) body ``{"group", "permissions": [...],
"collection", "experiment"?, "channel"?}``: add to / replace the group's grant; ``DELETE
/v1/permissions/?group=&collection=...`` (204) removes it. Changing permissions needs
``admin`` on the resource (the Boss's ``assign_group``/``remove_group``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from dvidpy.auth.stores import LEVELS
from dvidpy.boss.access import collection_root, model
from dvidpy.boss.errors import (
    GROUP_EXISTS,
    GROUP_NOT_FOUND,
    INVALID_POST_ARGUMENT,
    MISSING_PERMISSION,
    BossError,
)
from dvidpy.errors import Forbidden
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import EMPTY, JSON, Body, Param, Q
from dvidpy.http.table import RouteTable

routes = RouteTable("boss")
_G = Param("group", "str", "group name")
_U = Param("user", "str", "user name")
#: a user name as a grant's ``user:NAME`` principal takes it
_USER_NAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}\Z")
RESERVED = ("admin", "public")
VERB_LEVEL = {"read": "read", "read_volumetric_data": "read",
              "add": "write", "update": "write", "add_volumetric_data": "write",
              "delete_volumetric_data": "write",
              "delete": "admin", "assign_group": "admin", "remove_group": "admin"}
_ORDER = ("read", "add", "update", "delete", "assign_group", "remove_group",
          "add_volumetric_data", "read_volumetric_data", "delete_volumetric_data")


def verbs_of(level: str, channel: bool) -> list[str]:
    """The Boss verbs a level reads back as (see the module docstring)."""
    rank = LEVELS[level]
    return [v for v in _ORDER if LEVELS[VERB_LEVEL[v]] <= rank
            and (channel or not v.endswith("_volumetric_data"))]


def level_of(verbs: Any) -> str:
    """The level a set of Boss verbs needs; 400 for an unknown verb or an empty set."""
    if not isinstance(verbs, list) or not verbs or \
            not all(isinstance(v, str) for v in verbs):
        raise BossError("permissions must be a non-empty list of Boss permission names",
                        INVALID_POST_ARGUMENT)
    bad = [v for v in verbs if v not in VERB_LEVEL]
    if bad:
        raise BossError(f"Invalid permissions in post: {bad} (known: {', '.join(_ORDER)})",
                        3002)
    return max((VERB_LEVEL[v] for v in verbs), key=LEVELS.__getitem__)


def _auth(call: HttpCall) -> Any:
    return call.state.auth


def _me(call: HttpCall) -> str:
    return call.identity.user or ("admin" if call.identity.admin else "anonymous")


def _group(call: HttpCall, name: str) -> dict[str, Any]:
    rec = _auth(call).groups.get(name)
    if rec is None:
        raise BossError(f"{name} does not exist.", GROUP_NOT_FOUND, 404)
    return rec


def _may_see(call: HttpCall, rec: dict[str, Any]) -> None:
    me = call.identity
    if me.admin or me.user in rec["members"] or me.user in rec["maintainers"]:
        return
    raise BossError(f"The user {me.user} is not a member or maintainer of the group "
                    f"{rec['name']}", MISSING_PERMISSION, 403)


def _may_maintain(call: HttpCall, rec: dict[str, Any]) -> None:
    me = call.identity
    if me.admin or me.user in rec["maintainers"]:
        return
    raise BossError(f"The user {me.user} does not have the maintain_group permission on "
                    f"the group {rec['name']}", MISSING_PERMISSION, 403)


# ----- groups ---------------------------------------------------------------------------

@routes.get("/v1/groups", "The groups (or those the caller is a member or maintainer of)",
            query=(Q("filter", "str", "member or maintainer", enum=("member", "maintainer")),))
def list_groups(call: HttpCall) -> Any:
    f = call.params["filter"]
    me = call.identity.user
    recs = _auth(call).groups.all()
    if f == "member":
        recs = [r for r in recs if me in r["members"]]
    elif f == "maintainer":
        recs = [r for r in recs if me in r["maintainers"]]
    return {"groups": [r["name"] for r in recs]}


@routes.get("/v1/groups/{group}", "A group: name, owner and the resources it has grants on",
            params=(_G,))
def get_group(call: HttpCall) -> Any:
    rec = _group(call, call.params["group"])
    _may_see(call, rec)
    return {"name": rec["name"], "owner": rec["owner"],
            "resources": [{k: v for k, v in s.items() if k != "permissions"}
                          for s in _sets(call, rec["name"])]}


@routes.post("/v1/groups/{group}", "Create a group (the caller owns and maintains it)",
             params=(_G,), access="read", returns={201: EMPTY})
def post_group(call: HttpCall) -> Response:
    name = call.params["group"]
    if name in RESERVED:
        raise BossError(f"{name} is a reserved group name", INVALID_POST_ARGUMENT)
    store = _auth(call).groups
    with model(call).lock:
        if store.get(name) is not None:
            raise BossError(f"A group  with name {name} already exist", GROUP_EXISTS)
        me = _me(call)
        store.put({"name": name, "owner": me, "members": [me], "maintainers": [me]})
    return Response(b"", status_code=201)


@routes.delete("/v1/groups/{group}", "Delete a group (its owner or an administrator)",
               params=(_G,), access="read", returns={204: EMPTY})
def delete_group(call: HttpCall) -> Response:
    rec = _group(call, call.params["group"])
    if not (call.identity.admin or call.identity.user == rec["owner"]):
        raise BossError("Groups can only be deleted by the creator or administrator",
                        MISSING_PERMISSION, 403)
    for s in _sets(call, rec["name"]):
        _revoke(call, rec["name"], s)
    _auth(call).groups.delete(rec["name"])
    return Response(b"", status_code=204)


def _roster(kind: str) -> None:
    """Declare GET/POST/DELETE of a group's members or maintainers."""
    base = f"/v1/groups/{{group}}/{kind}"

    @routes.get(base + "/{user?}", f"The group's {kind}, or whether a user is one",
                params=(_G, _U))
    def get_roster(call: HttpCall) -> Any:
        rec = _group(call, call.params["group"])
        _may_see(call, rec)
        user = call.params["user"]
        if user is None:
            return {kind: list(rec[kind])}
        return {"result": user in rec[kind]}

    @routes.post(base + "/{user}", f"Add a user to the group's {kind}", params=(_G, _U),
                 access="read", returns={204: EMPTY})
    def post_roster(call: HttpCall) -> Response:
        with model(call).lock:
            rec = _group(call, call.params["group"])
            _may_maintain(call, rec)
            user = call.params["user"]
            if user not in rec[kind]:
                if not _USER_NAME.match(user):
                    raise BossError(f"bad user name {user!r}: 1 to 256 characters, no "
                                    "spaces or control characters", INVALID_POST_ARGUMENT)
                rec[kind].append(user)
                _auth(call).groups.put(rec)
        return Response(b"", status_code=204)

    @routes.delete(base + "/{user}", f"Remove a user from the group's {kind}",
                   params=(_G, _U), access="read", returns={204: EMPTY})
    def delete_roster(call: HttpCall) -> Response:
        with model(call).lock:
            rec = _group(call, call.params["group"])
            _may_maintain(call, rec)
            user = call.params["user"]
            if user not in rec[kind]:
                raise BossError(f"{user} is not one of the {kind} of {rec['name']}",
                                INVALID_POST_ARGUMENT)
            if kind == "maintainers" and len(rec["maintainers"]) == 1:
                raise BossError(f"{user} is the last maintainer of {rec['name']}",
                                INVALID_POST_ARGUMENT)
            rec[kind].remove(user)
            _auth(call).groups.put(rec)
        return Response(b"", status_code=204)


_roster("members")
_roster("maintainers")


# ----- permissions ----------------------------------------------------------------------

def _resource(call: HttpCall, c: Any, e: Any, ch: Any) -> tuple[dict[str, str], str,
                                                               str | None]:
    """``(names, root, instance)`` of the resource a permission request names."""
    m = model(call)
    if not isinstance(c, str) or not c:
        raise BossError("Invalid resource or missing resource name in request",
                        INVALID_POST_ARGUMENT)
    names = {"collection": c}
    m.collection(c)
    if not e:
        if ch:
            raise BossError("a channel needs its experiment", INVALID_POST_ARGUMENT)
        return names, collection_root(c), None
    if not isinstance(e, str):
        raise BossError("experiment must be a name", INVALID_POST_ARGUMENT)
    names["experiment"] = e
    erec = m.experiment(c, e)
    if not ch:
        return names, erec["repo"], None
    if not isinstance(ch, str):
        raise BossError("channel must be a name", INVALID_POST_ARGUMENT)
    names["channel"] = ch
    crec = m.channel(c, e, ch)
    return names, erec["repo"], crec["instance"]


def _require(call: HttpCall, access: str, root: str, instance: str | None) -> None:
    auth = _auth(call)
    if auth is not None and auth.on:
        try:
            auth.authorize(call.identity, access, root, instance)
        except Forbidden as err:
            raise BossError(err.message, MISSING_PERMISSION, 403) from None


def _set_of(call: HttpCall, group: str, names: dict[str, str], root: str,
            instance: str | None) -> dict[str, Any] | None:
    g = _auth(call).grants.get(root)
    table = g.get("adds", {}).get(instance, {}) if instance else g["grants"]
    if group == "public":
        if instance is None and g["public"]:
            return {"group": group, **names, "permissions": ["read"]}
        return None
    lv = table.get(f"group:{group}")
    if lv is None:
        return None
    return {"group": group, **names, "permissions": verbs_of(lv, instance is not None)}


def _all_resources(call: HttpCall) -> list[tuple[dict[str, str], str, str | None]]:
    m = model(call)
    out: list[tuple[dict[str, str], str, str | None]] = []
    for c in m.collections():
        out.append(({"collection": c["name"]}, collection_root(c["name"]), None))
        for e in m.experiments(c["name"]):
            out.append(({"collection": c["name"], "experiment": e["name"]}, e["repo"], None))
            out.extend(({"collection": c["name"], "experiment": e["name"],
                         "channel": ch["name"]}, e["repo"], ch["instance"])
                       for ch in m.channels(c["name"], e["name"]))
    return out


def _sets(call: HttpCall, group: str) -> list[dict[str, Any]]:
    return [s for names, root, inst in _all_resources(call)
            if (s := _set_of(call, group, names, root, inst)) is not None]


def _revoke(call: HttpCall, group: str, s: dict[str, Any]) -> None:
    _, root, inst = _resource(call, s.get("collection"), s.get("experiment"),
                              s.get("channel"))
    grants = _auth(call).grants
    if group == "public":
        grants.update(root, {}, None, False)
    else:
        grants.remove(root, [f"group:{group}"], inst, additive=inst is not None)


_PERM_QUERY = (Q("group", "str", "group name"), Q("collection", "str", "collection name"),
               Q("experiment", "str", "experiment name"), Q("channel", "str", "channel name"))


@routes.get("/v1/permissions", "Permission sets of groups on resources",
            query=_PERM_QUERY)
def get_permissions(call: HttpCall) -> Any:
    p = call.params
    group = p["group"]
    if group is not None and group != "public":
        _group(call, group)
    groups = [group] if group else sorted(call.identity.groups)
    if p["collection"]:
        names, root, inst = _resource(call, p["collection"], p["experiment"], p["channel"])
        targets = [(names, root, inst)]
    else:
        targets = _all_resources(call)
    out = [s for g in groups for names, root, inst in targets
           if (s := _set_of(call, g, names, root, inst)) is not None]
    return {"permission-sets": out}


def _grant(call: HttpCall, replace: bool) -> None:
    b = call.obj("permissions")
    group = b.get("group")
    if not isinstance(group, str) or not group:
        raise BossError("Group are not included in the request", INVALID_POST_ARGUMENT)
    if "permissions" not in b:
        raise BossError("Permission are not included in the request", INVALID_POST_ARGUMENT)
    level = level_of(b["permissions"])
    _, root, inst = _resource(call, b.get("collection"), b.get("experiment"),
                              b.get("channel"))
    _require(call, "admin", root, inst)
    grants = _auth(call).grants
    if group == "public":
        if level != "read" or inst is not None:
            raise BossError("The public group can only have read permissions, on a "
                            "collection or experiment", INVALID_POST_ARGUMENT)
        grants.update(root, {}, None, True)
        return
    rec = _group(call, group)
    me = call.identity
    if not (me.admin or me.user in rec["members"] or me.user in rec["maintainers"]):
        raise BossError(f"The user {me.user} is not a member or maintainer of the group "
                        f"{group}", MISSING_PERMISSION, 403)
    principal = f"group:{group}"
    if not replace:
        g = grants.get(root)
        table = g.get("adds", {}).get(inst, {}) if inst else g["grants"]
        old = table.get(principal)
        if old is not None and LEVELS[old] > LEVELS[level]:
            level = old
    grants.update(root, {principal: level}, inst, additive=inst is not None)


_PERM_BODY = Body(JSON, '{"group", "permissions": [...], "collection", "experiment"?, '
                        '"channel"?}', schema={"type": "object", "properties": {
                            "group": {"type": "string"}, "collection": {"type": "string"},
                            "experiment": {"type": "string"},
                            "channel": {"type": "string"},
                            "permissions": {"type": "array", "items": {"type": "string"}}}})


@routes.post("/v1/permissions", "Add permissions of a group on a resource", access="read",
             body=_PERM_BODY, returns={201: EMPTY})
def post_permissions(call: HttpCall) -> Response:
    _grant(call, replace=False)
    return Response(b"", status_code=201)


@routes.patch("/v1/permissions", "Replace the permissions of a group on a resource",
              access="read", body=_PERM_BODY, returns=EMPTY)
def patch_permissions(call: HttpCall) -> Response:
    _grant(call, replace=True)
    return Response(b"", status_code=200)


@routes.delete("/v1/permissions", "Remove the permissions of a group on a resource",
               access="read", query=_PERM_QUERY, returns={204: EMPTY})
def delete_permissions(call: HttpCall) -> Response:
    p = call.params
    group = p["group"]
    if not group:
        raise BossError("Group are not included in the request", INVALID_POST_ARGUMENT)
    names, root, inst = _resource(call, p["collection"], p["experiment"], p["channel"])
    _require(call, "admin", root, inst)
    if group != "public":
        _group(call, group)
    _revoke(call, group, names)
    return Response(b"", status_code=204)
