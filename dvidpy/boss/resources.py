"""Boss resource routes: ``/v1/collection/...`` and ``/v1/coord/...`` (the Boss's
``bosscore`` views; JSON shapes of its serializers).

``GET /v1/collection/``                             ``{"collections": [names]}`` (readable)
``GET|POST|PUT|DELETE /v1/collection/{c}/``         one collection
``GET /v1/collection/{c}/experiment/``              ``{"experiments": [names]}``
``GET|POST|PUT|DELETE .../experiment/{e}/``         one experiment (POST makes its repo)
``GET .../experiment/{e}/channel/``                 ``{"channels": [names]}``
``GET|POST|PUT|DELETE .../channel/{ch}/``           one channel (POST makes its instance)
``GET /v1/coord/``                                  ``{"coords": [names]}``
``GET|POST|PUT|DELETE /v1/coord/{f}/``              one coordinate frame

POST answers 201 with the new resource, PUT 200 with the changed one, DELETE 204. Bodies
are JSON objects; unknown fields of a POST are ignored, those a PUT may not change are a
400 (the Boss's rules). Experiments and channels also show where they live in DVID's API:
``dvid_repo`` (the repo's root UUID) and ``dvid_instance`` (the instance name).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from dvidpy.boss import access
from dvidpy.boss.access import collection_root, frame_root, model, target
from dvidpy.boss.model import (
    CHANNEL_FIELDS,
    COLLECTION_FIELDS,
    EXPERIMENT_FIELDS,
    FRAME_FIELDS,
    view,
)
from dvidpy.datatype import json_response
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import EMPTY, JSON, Body, Param
from dvidpy.http.table import RouteTable

routes = RouteTable("boss")
_C = Param("collection", "str", "collection name")
_E = Param("experiment", "str", "experiment name")
_CH = Param("channel", "str", "channel name")
_F = Param("frame", "str", "coordinate frame name")
_OBJ = {"type": "object"}
_COLL = "/v1/collection/{collection}"
_EXP = _COLL + "/experiment/{experiment}"
_CHAN = _EXP + "/channel/{channel}"


def _body(what: str, required: bool = False) -> Body:
    return Body(JSON, f"{what} fields (JSON object)", required=required, schema=_OBJ)


def _created(obj: Any) -> Response:
    return json_response(obj, 201)


def _gone() -> Response:
    return Response(b"", status_code=204)


def _coll_view(call: HttpCall, rec: dict[str, Any]) -> dict[str, Any]:
    m = model(call)
    exps = [e["name"] for e in m.experiments(rec["name"])
            if access.readable(call, e["repo"])]
    return view(rec, COLLECTION_FIELDS, experiments=exps)


def _exp_view(call: HttpCall, rec: dict[str, Any]) -> dict[str, Any]:
    chans = [c["name"] for c in model(call).channels(rec["collection"], rec["name"])
             if access.readable(call, rec["repo"], c["instance"])]
    return view(rec, EXPERIMENT_FIELDS, channels=chans, dvid_repo=rec["repo"])


def _chan_view(rec: dict[str, Any]) -> dict[str, Any]:
    return view(rec, CHANNEL_FIELDS, dvid_instance=rec["instance"])


# ----- collections ----------------------------------------------------------------------

@routes.get("/v1/collection", "The collections the caller may read", access="public")
def list_collections(call: HttpCall) -> Any:
    return {"collections": [c["name"] for c in model(call).collections()
                            if access.readable(call, collection_root(c["name"]))]}


@routes.get(_COLL, "A collection", params=(_C,), resource=access.on_collection)
def get_collection(call: HttpCall) -> Any:
    return _coll_view(call, model(call).collection(call.params["collection"]))


@routes.post(_COLL, "Create a collection", params=(_C,), body=_body("collection"),
             returns={201: JSON})
def post_collection(call: HttpCall) -> Response:
    name = call.params["collection"]
    rec = model(call).create_collection(name, call.obj("collection"), access.creator(call))
    access.grant_creator(call, collection_root(name), rec["public"])
    return _created(view(rec, COLLECTION_FIELDS, experiments=[]))


@routes.put(_COLL, "Change a collection", params=(_C,), body=_body("collection"),
            resource=access.on_collection)
def put_collection(call: HttpCall) -> Any:
    old = call.params["collection"]
    rec = model(call).update_collection(old, call.obj("collection"))
    if rec["name"] != old:
        _move_grants(call, collection_root(old), collection_root(rec["name"]))
    access.set_public(call, collection_root(rec["name"]), rec["public"])
    return _coll_view(call, rec)


@routes.delete(_COLL, "Delete a collection (it must hold no experiment)", params=(_C,),
               access="admin", resource=access.on_collection, returns={204: EMPTY})
def delete_collection(call: HttpCall) -> Response:
    name = call.params["collection"]
    model(call).delete_collection(name)
    _clear_grants(call, collection_root(name))
    return _gone()


def _move_grants(call: HttpCall, old: str, new: str) -> None:
    auth = call.state.auth
    if auth is None:
        return
    g = auth.grants.get(old)
    auth.grants.clear(new)
    auth.grants.update(new, dict(g["grants"]), None, g["public"])
    for inst, table in g["instances"].items():
        auth.grants.update(new, dict(table), inst)
    auth.grants.clear(old)


def _clear_grants(call: HttpCall, root: str) -> None:
    if call.state.auth is not None:
        call.state.auth.grants.clear(root)


# ----- experiments ----------------------------------------------------------------------

@routes.get(_COLL + "/experiment", "The experiments of a collection the caller may read",
            params=(_C,), resource=access.on_collection)
def list_experiments(call: HttpCall) -> Any:
    exps = model(call).experiments(call.params["collection"])
    return {"experiments": [e["name"] for e in exps if access.readable(call, e["repo"])]}


@routes.get(_EXP, "An experiment (a dvidpy repo)", params=(_C, _E),
            resource=access.on_experiment)
def get_experiment(call: HttpCall) -> Any:
    return _exp_view(call, target(call, "experiment").exp or {})


@routes.post(_EXP, "Create an experiment: a new repo aliased collection/experiment",
             params=(_C, _E), body=_body("experiment", required=True), returns={201: JSON},
             resource=access.on_collection)
def post_experiment(call: HttpCall) -> Response:
    p = call.params
    rec = model(call).create_experiment(p["collection"], p["experiment"],
                                        call.obj("experiment"), access.creator(call))
    access.grant_creator(call, rec["repo"], rec["public"])
    return _created(view(rec, EXPERIMENT_FIELDS, channels=[], dvid_repo=rec["repo"]))


@routes.put(_EXP, "Change an experiment", params=(_C, _E), body=_body("experiment"),
            resource=access.on_experiment)
def put_experiment(call: HttpCall) -> Any:
    p = call.params
    rec = model(call).update_experiment(p["collection"], p["experiment"],
                                        call.obj("experiment"))
    access.set_public(call, rec["repo"], rec["public"])
    return _exp_view(call, rec)


@routes.delete(_EXP, "Delete an experiment's Boss view (its repo and data stay)",
               params=(_C, _E), access="admin", resource=access.on_experiment,
               returns={204: EMPTY})
def delete_experiment(call: HttpCall) -> Response:
    p = call.params
    model(call).delete_experiment(p["collection"], p["experiment"])
    return _gone()


# ----- channels -------------------------------------------------------------------------

@routes.get(_EXP + "/channel", "The channels of an experiment the caller may read",
            params=(_C, _E), resource=access.on_experiment)
def list_channels(call: HttpCall) -> Any:
    t = target(call, "experiment")
    assert t.exp is not None
    chans = model(call).channels(t.exp["collection"], t.exp["name"])
    return {"channels": [c["name"] for c in chans
                         if access.readable(call, t.exp["repo"], c["instance"])]}


@routes.get(_CHAN, "A channel (a data instance)", params=(_C, _E, _CH),
            resource=access.on_channel)
def get_channel(call: HttpCall) -> Any:
    return _chan_view(target(call).chan or {})


@routes.post(_CHAN, "Create a channel: a new instance in the experiment's repo",
             params=(_C, _E, _CH), body=_body("channel", required=True), returns={201: JSON},
             resource=access.on_experiment)
def post_channel(call: HttpCall) -> Response:
    p = call.params
    rec = model(call).create_channel(p["collection"], p["experiment"], p["channel"],
                                     call.obj("channel"), access.creator(call))
    return _created(_chan_view(rec))


@routes.put(_CHAN, "Change a channel", params=(_C, _E, _CH), body=_body("channel"),
            resource=access.on_channel)
def put_channel(call: HttpCall) -> Any:
    p = call.params
    return _chan_view(model(call).update_channel(p["collection"], p["experiment"],
                                                 p["channel"], call.obj("channel")))


@routes.delete(_CHAN, "Delete a channel's Boss view (its instance and data stay)",
               params=(_C, _E, _CH), access="admin", resource=access.on_channel,
               returns={204: EMPTY})
def delete_channel(call: HttpCall) -> Response:
    p = call.params
    model(call).delete_channel(p["collection"], p["experiment"], p["channel"])
    return _gone()


# ----- coordinate frames ----------------------------------------------------------------

@routes.get("/v1/coord", "The coordinate frames", access="public")
def list_frames(call: HttpCall) -> Any:
    return {"coords": [f["name"] for f in model(call).frames()]}


@routes.get("/v1/coord/{frame}", "A coordinate frame", params=(_F,), access="public")
def get_frame(call: HttpCall) -> Any:
    return view(model(call).frame(call.params["frame"]), FRAME_FIELDS)


@routes.post("/v1/coord/{frame}", "Create a coordinate frame", params=(_F,),
             body=_body("coordinate frame", required=True), returns={201: JSON})
def post_frame(call: HttpCall) -> Response:
    name = call.params["frame"]
    rec = model(call).create_frame(name, call.obj("coordinate frame"), access.creator(call))
    access.grant_creator(call, frame_root(name))
    return _created(view(rec, FRAME_FIELDS))


@routes.put("/v1/coord/{frame}", "Change a coordinate frame's name or description",
            params=(_F,), body=_body("coordinate frame"), resource=access.on_frame)
def put_frame(call: HttpCall) -> Any:
    old = call.params["frame"]
    rec = model(call).update_frame(old, call.obj("coordinate frame"))
    if rec["name"] != old:
        _move_grants(call, frame_root(old), frame_root(rec["name"]))
    return view(rec, FRAME_FIELDS)


@routes.delete("/v1/coord/{frame}", "Delete a coordinate frame no experiment uses",
               params=(_F,), access="admin", resource=access.on_frame, returns={204: EMPTY})
def delete_frame(call: HttpCall) -> Response:
    name = call.params["frame"]
    model(call).delete_frame(name)
    _clear_grants(call, frame_root(name))
    return _gone()
