"""HTTP routes of the transfer protocol and the server-side transfer jobs.

Sending side:

``GET  /api/transfer/protocol``   ``{"protocol": "dvidpy-transfer", "version": 1}`` (probe)
``POST /api/transfer/manifest``   ``{"uuid", "flatten", "data", "roi"}`` -> manifest JSON
``POST /api/transfer/count``      stream request -> ``{"records": n}``
``POST /api/transfer/stream``     stream request -> ``application/octet-stream`` frames

Receiving side:

``POST   /api/transfer/receive``               manifest -> plan
``POST   /api/transfer/receive/{tid}/{gid}``   one frame (chunk or end marker)
``POST   /api/transfer/receive/{tid}/finish``  publish (all groups must be done)
``GET    /api/transfer/receive/{tid}``         progress of a pending transfer
``DELETE /api/transfer/receive/{tid}``         abort: drop the record and staged data

Jobs (what ``dvidpy push`` / ``dvidpy pull`` start and watch):

``POST /api/transfer/push``  ``{"uuid", "dst", "flatten", "data", "roi"}``: this server
    sends to the server at ``dst``. Answers ``{"id": job id}``.
``POST /api/transfer/pull``  ``{"uuid", "src", "flatten", "data", "roi", "from_dvid"}``:
    this server receives from ``src``; ``from_dvid`` (or a source that does not answer
    the protocol probe) imports through DVID's public HTTP API instead.
``GET  /api/transfer/missing/{uuid}``  ``{instance: [version UUIDs]}`` received
    incomplete (ROI- or ``data``-filtered) in the repo holding ``uuid``; a later push
    without filters completes and clears them.
``GET  /api/transfer/jobs``  every job; ``GET /api/transfer/{id}``: one job's state
    (``state`` running|done|failed, ``error``, ``records``, ``records_total``, ``bytes``,
    ``seconds``, ...).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from starlette.responses import PlainTextResponse, Response

from dvidpy.errors import BadRequest, DvidError, Forbidden, NotFound, TooLarge
from dvidpy.http.router import HttpCall, ServerState
from dvidpy.http.spec import OCTET, TEXT, Body, Param
from dvidpy.http.streams import StreamingResponse
from dvidpy.http.table import RouteTable
from dvidpy.jobrecords import JOB_ID, JobBoard, LiveJob, new_job_id
from dvidpy.transfer.client import (
    HttpSink,
    HttpSource,
    LocalSink,
    TransferError,
    parse_peer_url,
    run_transfer,
    speaks_transfer,
)
from dvidpy.transfer.protocol import PROTOCOL_NAME, PROTOCOL_VERSION
from dvidpy.transfer.receiver import Receiver
from dvidpy.transfer.sender import LocalSource

log = logging.getLogger("dvidpy.transfer")
routes = RouteTable("transfer")
_OPTS_SCHEMA = {"type": "object", "required": ["uuid"], "properties": {
    "uuid": {"type": "string"}, "flatten": {"type": "boolean"}, "roi": {"type": "string"},
    "data": {"type": "array", "items": {"type": "string"}}}}
_STREAM_REQ = Body(doc="a stream request made by the receiver from a plan", schema={
    "type": "object"})
_TID = Param("tid", "str", "transfer id from POST /api/transfer/receive")


def job_view(rec: dict[str, Any]) -> dict[str, Any]:
    """A job record as ``GET /api/transfer/{id}`` shows it (with ``elapsed`` seconds)."""
    end = rec.get("finished") or time.time()
    return {**rec, "elapsed": end - float(rec.get("started", end))}


class TransferState:
    """The sending and receiving ends and the jobs of one server. The jobs' records live
    in the metadata store (:mod:`dvidpy.jobrecords`), so every process of the server
    lists the same jobs; a job runs in the process that started it."""

    def __init__(self, state: ServerState) -> None:
        self.source = LocalSource(state.mgr)
        self.receiver = Receiver(state.mgr, state.settings)
        self.jobs = JobBoard.of(state.mgr, "transfer", state_key="state", running="running",
                                lost={"state": "failed",
                                      "error": "the server process running it stopped"})


def transfer_state(call: HttpCall) -> TransferState:
    """This server's :class:`TransferState` (made on first use)."""
    ts = call.state.extras.get("transfer")
    if ts is None:
        ts = call.state.extras.setdefault("transfer", TransferState(call.state))
    return ts


def _opts(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    uuid = body.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise BadRequest("'uuid' (a UUID or prefix) is required")
    data = body.get("data")
    if isinstance(data, str):
        data = [d for d in data.split(",") if d]
    if data is not None and (not isinstance(data, list)
                             or not all(isinstance(d, str) and d for d in data)):
        raise BadRequest("'data' must be a list of instance names")
    roi = body.get("roi")
    if roi is not None and (not isinstance(roi, str) or not roi):
        raise BadRequest("'roi' must be an instance name")
    flatten = body.get("flatten", False)
    if not isinstance(flatten, bool):
        raise BadRequest("'flatten' must be true or false")
    return {"uuid": uuid, "flatten": flatten, "data": data or None, "roi": roi}


def _peer(call: HttpCall, body: dict[str, Any], key: str, what: str) -> tuple[str, str]:
    """The peer URL named by ``body[key]`` (400 when malformed; 403 when auth is on and it
    is not in ``[transfer] allowedPeers``) and the credential configured for it."""
    url = body.get(key)
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{key!r} ({what}) is required")
    try:
        parse_peer_url(url)
    except ValueError as e:
        raise BadRequest(f"{key!r}: {e}") from None
    cfg = call.state.auth.cfg
    root = url.rstrip("/")
    if "://" not in root:
        root = "http://" + root
    if cfg.on and root not in cfg.allowed_peers:
        raise Forbidden(f"{key!r}: {root} is not in [transfer] allowedPeers")
    return url, cfg.peer_token(root)


@routes.get("/api/transfer/protocol", "Protocol probe: name and version", inline=True)
def protocol(call: HttpCall) -> Any:
    return {"protocol": PROTOCOL_NAME, "version": PROTOCOL_VERSION}


@routes.post("/api/transfer/manifest", "Describe a repo for a transfer", mutates=False,
             access="admin", body=Body(doc='{"uuid", "flatten", "data", "roi"}',
                                       schema=_OPTS_SCHEMA))
def manifest(call: HttpCall) -> Any:
    o = _opts(call.json("manifest request"))
    return transfer_state(call).source.manifest(o["uuid"], flatten=o["flatten"],
                                                data=o["data"], roi=o["roi"])


@routes.post("/api/transfer/count", "Records a stream request will carry", mutates=False,
             access="admin", body=_STREAM_REQ)
def count(call: HttpCall) -> Any:
    req = call.json("stream request")
    if not isinstance(req, dict):
        raise BadRequest("expected a JSON stream request")
    return {"records": transfer_state(call).source.count(req)}


@routes.post("/api/transfer/stream", "Stream records as checksummed frames", mutates=False,
             access="admin", body=_STREAM_REQ, returns=OCTET)
def stream(call: HttpCall) -> Response:
    req = call.json("stream request")
    if not isinstance(req, dict):
        raise BadRequest("expected a JSON stream request")
    # validation errors surface on the first frame, which is made before the 200 is sent
    return StreamingResponse(transfer_state(call).source.stream(req), media_type=OCTET)


@routes.post("/api/transfer/receive", "Begin receiving: manifest in, plan out",
             access="admin", body=Body(doc="the source's manifest", schema={"type": "object"}))
def receive_begin(call: HttpCall) -> Any:
    return transfer_state(call).receiver.begin(call.json("manifest"))


@routes.post("/api/transfer/receive/{tid}/{gid}", "Apply one frame of a group",
             access="admin", params=(_TID, Param("gid", "count", "group id of the plan")),
             inline=True)
async def receive_chunk(call: HttpCall) -> Any:
    from starlette.concurrency import run_in_threadpool

    tid, gid = call.params["tid"], call.params["gid"]
    rx = transfer_state(call).receiver
    try:
        await call.read_body()
    except TooLarge as e:
        await run_in_threadpool(rx.abort, tid)
        raise TooLarge(f"{e.message}; transfer {tid} was aborted and nothing was "
                       "kept") from None
    return await run_in_threadpool(rx.apply_chunk, tid, gid, bytes(call.body))


@routes.post("/api/transfer/receive/{tid}/finish", "Publish the received versions",
             access="admin", params=(_TID,))
def receive_finish(call: HttpCall) -> Any:
    return transfer_state(call).receiver.finish(call.params["tid"])


@routes.get("/api/transfer/receive/{tid}", "Progress of a pending transfer", access="admin",
            params=(_TID,))
def receive_status(call: HttpCall) -> Any:
    return transfer_state(call).receiver.status(call.params["tid"])


@routes.delete("/api/transfer/receive/{tid}", "Abort a pending transfer; drops staged data",
               access="admin", params=(_TID,), returns=TEXT)
def receive_abort(call: HttpCall) -> Response:
    tid = call.params["tid"]
    if not transfer_state(call).receiver.abort(tid):
        raise NotFound(f"no pending transfer {tid!r}")
    return PlainTextResponse(f"transfer {tid} aborted")


def start_job(ts: TransferState, kind: str, params: dict[str, Any], src: Any,
              sink: Any, owner: str | None = None) -> LiveJob:
    """Run a transfer in a background thread, recorded as a job of ``owner``."""
    jid = new_job_id()
    job = ts.jobs.start(jid, {"id": jid, "kind": kind, "params": params, "owner": owner,
                              "error": "", "records": 0, "bytes": 0, "records_total": None,
                              "started": time.time(), "finished": None})

    def work() -> None:
        end: dict[str, Any] = {"state": "done"}
        try:
            end.update(run_transfer(src, sink, params["uuid"], flatten=params["flatten"],
                                    data=params["data"], roi=params["roi"],
                                    progress=lambda st: job.update(**st)))
        except (DvidError, TransferError) as e:
            end = {"state": "failed", "error": e.message}
        except Exception as e:  # report, never kill the server
            log.exception("transfer job %s failed", jid)
            end = {"state": "failed", "error": f"internal error: {e!r}"}
        finally:
            job.finish(**end, finished=time.time())

    threading.Thread(target=work, daemon=True, name=f"transfer-{jid}").start()
    return job


@routes.post("/api/transfer/push", "Start a job sending a repo to another server",
             mutates=False, access="admin", body=Body(
                 doc='{"uuid", "dst", "flatten", "data", "roi"}',
                 schema={**_OPTS_SCHEMA, "required": ["uuid", "dst"], "properties": {
                     **_OPTS_SCHEMA["properties"], "dst": {"type": "string"}}}))
def push(call: HttpCall) -> Any:
    body = call.json("push request")
    o = _opts(body)
    dst, token = _peer(call, body, "dst", "the receiving server's URL")
    ts = transfer_state(call)
    # 400 now (not a failed job) for unknown UUIDs, instance names or ROI
    ts.source.manifest(o["uuid"], flatten=o["flatten"], data=o["data"], roi=o["roi"])
    job = start_job(ts, "push", {**o, "dst": dst}, ts.source, HttpSink(dst, token),
                    call.identity.user)
    return {"id": job.id}


@routes.post("/api/transfer/pull", "Start a job receiving a repo from another server",
             mutates=False, access="admin", body=Body(
                 doc='{"uuid", "src", "flatten", "data", "roi", "from_dvid"}',
                 schema={**_OPTS_SCHEMA, "required": ["uuid", "src"], "properties": {
                     **_OPTS_SCHEMA["properties"], "src": {"type": "string"},
                     "from_dvid": {"type": "boolean"}}}))
def pull(call: HttpCall) -> Any:
    body = call.json("pull request")
    o = _opts(body)
    src, token = _peer(call, body, "src", "the sending server's URL")
    from_dvid = body.get("from_dvid", False)
    if not isinstance(from_dvid, bool):
        raise BadRequest("'from_dvid' must be true or false")
    try:
        if not from_dvid:
            from_dvid = not speaks_transfer(src, token)
    except TransferError as e:
        raise BadRequest(f"can't reach the source server: {e.message}") from None
    ts = transfer_state(call)
    if from_dvid:
        from dvidpy.transfer.dvid_import import DvidApiSource

        s: Any = DvidApiSource(src, call.mgr, token)
    else:
        s = HttpSource(src, token)
    job = start_job(ts, "pull", {**o, "src": src, "from_dvid": from_dvid}, s,
                    LocalSink(ts.receiver), call.identity.user)
    return {"id": job.id}


@routes.get("/api/transfer/missing/{uuid}", "Versions received incomplete, by instance",
            params=(Param("uuid", "uuid"),))
def missing(call: HttpCall) -> Any:
    return transfer_state(call).receiver.missing_report(call.params["uuid"])


@routes.get("/api/transfer/jobs", "Every transfer job of this server", access="admin",
            inline=True)
def list_jobs(call: HttpCall) -> Any:
    me = call.identity
    return [job_view(j) for j in transfer_state(call).jobs.records()
            if me.admin or (me.user is not None and j.get("owner") == me.user)]


@routes.get("/api/transfer/{jid}", "One transfer job's state", access="admin", inline=True,
            params=(Param("jid", "str", "job id"),))
def job_info(call: HttpCall) -> Any:
    jid = call.params["jid"]
    job = transfer_state(call).jobs.get(jid) if JOB_ID.fullmatch(jid) else None
    me = call.identity
    if job is not None and not me.admin and (me.user is None or job.get("owner") != me.user):
        job = None
    if job is None:
        raise NotFound(f"no transfer job {jid[:40]!r}")
    return job_view(job)


__all__ = ["routes"]
