"""HTTP routes of ingest jobs (the protocol is described in :mod:`dvidpy.ingest`).

Access: every route needs a valid credential when auth is on; what a job allows is decided
against the job's target, in the handler: reading a job needs ``read`` on its repo,
creating, acknowledging, changing state and cancelling need ``write`` on its repo and
instance (the same grant its ``POST raw`` needs). Jobs the caller may not read are left out
of the list; naming one is a 403.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.responses import PlainTextResponse, Response

from dvidpy.http.router import HttpCall
from dvidpy.http.spec import TEXT, Body, Param
from dvidpy.http.table import RouteTable
from dvidpy.ingest.jobs import CLIENT_TRANSITIONS, JobStore

routes = RouteTable("ingest")
_STORE_LOCK = threading.Lock()
_JOB = Param("job", "str", "ingest job id (from POST /api/ingest or GET /api/ingest)")
_BOX = {"type": "array", "items": {"type": "integer", "minimum": -(2**31),
                                   "maximum": 2**31 - 1}, "minItems": 6, "maxItems": 6}
_XYZ = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        "minItems": 3, "maxItems": 3}
_JOB_SCHEMA = {
    "type": "object", "required": ["uuid", "instance", "source", "source_key", "dtype", "box",
                                   "chunk"],
    "properties": {
        "uuid": {"type": "string", "minLength": 1, "maxLength": 200},
        "instance": {"type": "string", "minLength": 1, "maxLength": 500},
        "source": {"type": "string", "minLength": 1, "maxLength": 2000},
        "source_key": {"type": "string", "minLength": 1, "maxLength": 200},
        "dtype": {"type": "string", "minLength": 1, "maxLength": 40}, "box": _BOX,
        "chunk": _XYZ,
        "pyramid": {"type": "boolean"}, "restart": {"type": "boolean"}},
    "example": {"uuid": "x", "instance": "grayscale", "source": "slices/*.tif (64 files)",
                "source_key": "0123abcd", "dtype": "uint8", "box": [0, 0, 0, 64, 64, 64],
                "chunk": [64, 64, 64]}}
_ACK_SCHEMA = {"type": "object", "required": ["crc", "bytes"], "properties": {
    "crc": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    "bytes": {"type": "integer", "minimum": 0}, "fp": {"type": "string", "maxLength": 200},
    "replace": {"type": "boolean"}}}
_STATE_SCHEMA = {"type": "object", "required": ["state"], "properties": {
    "state": {"type": "string", "enum": list(CLIENT_TRANSITIONS)},
    "error": {"type": "string", "maxLength": 4000}, "task": _XYZ}}


def job_store(call: HttpCall) -> JobStore:
    """This server's :class:`JobStore` (made on first use: jobs that were building their
    pyramid when the server stopped resume it then)."""
    js = call.state.extras.get("ingest")
    if js is None:
        with _STORE_LOCK:
            js = call.state.extras.get("ingest")
            if js is None:
                js = call.state.extras["ingest"] = JobStore(call.mgr)
    return js


def _allow(call: HttpCall, access: str, root: str, instance: str | None = None,
           version: str | None = None) -> None:
    auth = call.state.auth
    if auth is not None and auth.on:
        auth.authorize(call.identity, access, root, instance, version)


def _job(call: HttpCall, access: str) -> dict[str, Any]:
    rec = job_store(call).get(call.params["job"])
    _allow(call, access, rec["root"], rec["instance"] if access != "read" else None,
           rec["uuid"])
    return rec


@routes.post("/api/ingest", "Create an ingest job, or find the same one and resume it",
             access="read", body=Body(doc="the job: target uuid and instance, source "
                                          "description and identity, voxel type, box, chunk",
                                      schema=_JOB_SCHEMA))
def create(call: HttpCall) -> Any:
    """Needs write access to the target instance."""
    body = call.json("ingest job")
    name = body.get("instance") if isinstance(body, dict) else None

    def check(repo: Any, node: Any) -> None:
        _allow(call, "write", repo.root, name if isinstance(name, str) else None, node.uuid)

    js = job_store(call)
    rec, resumed = js.open_job(body, call.identity.user, check)
    return {**js.view(rec), "resumed": resumed}


@routes.get("/api/ingest", "Every ingest job the caller may read, oldest first")
def list_jobs(call: HttpCall) -> Any:
    js = job_store(call)
    auth = call.state.auth
    return [js.view(rec) for rec in js.records()
            if auth is None or auth.can_read(call.identity, rec["root"])]


@routes.get("/api/ingest/{job}", "One ingest job: state, counts, pyramid progress, error",
            params=(_JOB,))
def get_job(call: HttpCall) -> Any:
    """Needs read access to the job's repo."""
    return job_store(call).view(_job(call, "read"))


@routes.get("/api/ingest/{job}/chunks", "The acknowledged chunks of a job (parallel lists "
            "chunks, crc, bytes, fp)", params=(_JOB,))
def get_chunks(call: HttpCall) -> Any:
    """Needs read access to the job's repo."""
    rec = _job(call, "read")
    return job_store(call).acks(rec["id"])


@routes.post("/api/ingest/{job}/chunks/{n}", "Acknowledge one chunk written with POST raw",
             access="read", params=(_JOB, Param("n", "count", "chunk index")),
             body=Body(doc='{"crc": CRC-32 of the voxels, "bytes": n, "fp": source '
                           'fingerprint, "replace": false}', schema=_ACK_SCHEMA))
def ack(call: HttpCall) -> Any:
    """Needs write access to the job's instance."""
    body = call.json("acknowledgement")  # a malformed body is a 400 before any lookup
    rec = _job(call, "write")
    return job_store(call).ack(rec["id"], call.params["n"], body)


@routes.post("/api/ingest/{job}/state", "Ask for a state: UPLOADING, DOWNSAMPLING (every "
             "chunk acknowledged: plan the pyramid's tasks) or FAILED (with an error)",
             access="read", params=(_JOB,),
             body=Body(doc='{"state", "error", "task": [x, y, z] voxels of a pyramid task}',
                       schema=_STATE_SCHEMA))
def set_state(call: HttpCall) -> Any:
    """Needs write access to the job's instance."""
    body = call.json("state request")  # a malformed body is a 400 before any lookup
    rec = _job(call, "write")
    js = job_store(call)
    return js.view(js.request_state(rec["id"], body))


@routes.get("/api/ingest/{job}/pyramid", "The pyramid tasks of a job: task count per level "
            "and the tasks done", params=(_JOB,))
def get_pyramid(call: HttpCall) -> Any:
    """Needs read access to the job's repo. ``levels`` is 0 before ``DOWNSAMPLING``."""
    rec = _job(call, "read")
    return job_store(call).pyramid_tasks(rec["id"])


@routes.post("/api/ingest/{job}/pyramid/{level}/{n}", "Build one pyramid task of a "
             "DOWNSAMPLING job (its blocks of that level, from the level below) and record "
             "it done", access="read",
             params=(_JOB, Param("level", "count", "pyramid level (1..levels)"),
                     Param("n", "count", "task index within the level")))
def run_pyramid_task(call: HttpCall) -> Any:
    """Needs write access to the job's instance. 409 while the job is not DOWNSAMPLING or
    a level below has tasks not done; sending a task again builds the same blocks."""
    rec = _job(call, "write")
    return job_store(call).run_task(rec["id"], call.params["level"], call.params["n"])


@routes.delete("/api/ingest/{job}", "Cancel an unfinished ingest job; forget a COMPLETE or "
               "CANCELLED one", access="read", params=(_JOB,), returns=TEXT)
def delete_job(call: HttpCall) -> Response:
    """Needs write access to the job's instance. Acknowledged chunks stay written."""
    rec = _job(call, "write")
    _, msg = job_store(call).cancel(rec["id"])
    return PlainTextResponse(msg)


__all__ = ["routes"]
