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
import uuid as uuidlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from dvidpy.config import Settings
from dvidpy.datatype import json_response
from dvidpy.errors import BadRequest, DvidError, NotFound, TooLarge
from dvidpy.repo import RepoManager
from dvidpy.transfer.client import (
    HttpSink,
    HttpSource,
    LocalSink,
    TransferError,
    run_transfer,
    speaks_transfer,
)
from dvidpy.transfer.protocol import PROTOCOL_NAME, PROTOCOL_VERSION
from dvidpy.transfer.receiver import Receiver
from dvidpy.transfer.sender import LocalSource
from dvidpy.web import Handler, read_body, read_json
from dvidpy.web import guard as dvid_guard

log = logging.getLogger("dvidpy.transfer")


class Job:
    """A transfer running in a background thread of this server."""

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        self.id = uuidlib.uuid4().hex[:16]
        self.kind = kind
        self.params = params
        self.state: dict[str, Any] = {"records": 0, "bytes": 0, "records_total": None}
        self.status = "running"
        self.error = ""
        self.started = time.time()
        self.finished: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The job as ``GET /api/transfer/{id}`` shows it."""
        return {"id": self.id, "kind": self.kind, "params": self.params,
                "state": self.status, "error": self.error, **self.state,
                "elapsed": (self.finished or time.time()) - self.started}


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
    return {"uuid": uuid, "flatten": bool(body.get("flatten", False)), "data": data or None,
            "roi": roi}


def transfer_routes(mgr: RepoManager, settings: Settings) -> list[Route]:
    """The routes above, bound to ``mgr``; include them before the ``/api/node`` catch-all."""
    source = LocalSource(mgr)
    receiver = Receiver(mgr, settings)
    jobs: dict[str, Job] = {}
    limit = settings.max_request_bytes

    def guard(fn: Handler) -> Handler:
        """:func:`dvidpy.web.guard`, and a failed transfer to another server is a 502."""
        async def wrapped(request: Request) -> Response:
            try:
                return await fn(request)
            except TransferError as e:
                return PlainTextResponse(e.message, status_code=502)
        return dvid_guard(wrapped)

    async def protocol(request: Request) -> Response:
        return json_response({"protocol": PROTOCOL_NAME, "version": PROTOCOL_VERSION})

    async def manifest(request: Request) -> Response:
        o = _opts(await read_json(request, limit))
        m = await run_in_threadpool(source.manifest, o["uuid"], flatten=o["flatten"],
                                    data=o["data"], roi=o["roi"])
        return json_response(m)

    async def count(request: Request) -> Response:
        req = await read_json(request, limit)
        if not isinstance(req, dict):
            raise BadRequest("expected a JSON stream request")
        return json_response({"records": await run_in_threadpool(source.count, req)})

    async def stream(request: Request) -> Response:
        req = await read_json(request, limit)
        if not isinstance(req, dict):
            raise BadRequest("expected a JSON stream request")
        frames = await run_in_threadpool(source.stream, req)
        # Validation errors surface on the first item; fetch it before answering 200.
        it = iter(frames)
        first = await run_in_threadpool(next, it)

        def rest() -> Any:
            yield first
            yield from it

        return StreamingResponse(rest(), media_type="application/octet-stream")

    async def receive_begin(request: Request) -> Response:
        m = await read_json(request, limit)
        return json_response(await run_in_threadpool(receiver.begin, m))

    async def receive_chunk(request: Request) -> Response:
        tid = request.path_params["tid"]
        gid = request.path_params["gid"]
        try:
            body = await read_body(request, limit)
        except TooLarge as e:
            await run_in_threadpool(receiver.abort, tid)
            raise TooLarge(f"{e.message}; transfer {tid} was aborted and nothing was "
                           "kept") from None
        return json_response(await run_in_threadpool(receiver.apply_chunk, tid, gid, body))

    async def receive_finish(request: Request) -> Response:
        return json_response(await run_in_threadpool(receiver.finish,
                                                     request.path_params["tid"]))

    async def receive_tid(request: Request) -> Response:
        tid = request.path_params["tid"]
        if request.method == "DELETE":
            if not await run_in_threadpool(receiver.abort, tid):
                raise NotFound(f"no pending transfer {tid!r}")
            return PlainTextResponse(f"transfer {tid} aborted")
        return json_response(await run_in_threadpool(receiver.status, tid))

    def start_job(kind: str, params: dict[str, Any], src: Any, sink: Any) -> Job:
        job = Job(kind, params)
        jobs[job.id] = job

        def progress(st: dict[str, Any]) -> None:
            job.state = dict(st)

        def work() -> None:
            try:
                job.state = run_transfer(src, sink, params["uuid"], flatten=params["flatten"],
                                         data=params["data"], roi=params["roi"],
                                         progress=progress)
                job.status = "done"
            except (DvidError, TransferError) as e:
                job.error = e.message
                job.status = "failed"
            except Exception as e:  # report, never kill the server
                log.exception("transfer job %s failed", job.id)
                job.error = f"internal error: {e!r}"
                job.status = "failed"
            finally:
                job.finished = time.time()

        threading.Thread(target=work, daemon=True, name=f"transfer-{job.id}").start()
        return job

    async def push(request: Request) -> Response:
        body = await read_json(request, limit)
        o = _opts(body)
        dst = body.get("dst")
        if not isinstance(dst, str) or not dst:
            raise BadRequest("'dst' (the receiving server's URL) is required")
        # 400 now (not a failed job) for unknown UUIDs, instance names or ROI
        await run_in_threadpool(source.manifest, o["uuid"], flatten=o["flatten"],
                                data=o["data"], roi=o["roi"])
        job = start_job("push", {**o, "dst": dst}, source, HttpSink(dst))
        return json_response({"id": job.id})

    async def pull(request: Request) -> Response:
        body = await read_json(request, limit)
        o = _opts(body)
        src = body.get("src")
        if not isinstance(src, str) or not src:
            raise BadRequest("'src' (the sending server's URL) is required")
        from_dvid = bool(body.get("from_dvid", False))
        if not from_dvid:
            from_dvid = not await run_in_threadpool(speaks_transfer, src)
        if from_dvid:
            from dvidpy.transfer.dvid_import import DvidApiSource

            s: Any = DvidApiSource(src, mgr)
        else:
            s = HttpSource(src)
        job = start_job("pull", {**o, "src": src, "from_dvid": from_dvid}, s,
                        LocalSink(receiver))
        return json_response({"id": job.id})

    async def missing(request: Request) -> Response:
        return json_response(await run_in_threadpool(receiver.missing_report,
                                                     request.path_params["uuid"]))

    async def list_jobs(request: Request) -> Response:
        return json_response([j.to_json() for j in jobs.values()])

    async def job_info(request: Request) -> Response:
        job = jobs.get(request.path_params["jid"])
        if job is None:
            raise NotFound(f"no transfer job {request.path_params['jid']!r}")
        return json_response(job.to_json())

    return [
        Route("/api/transfer/protocol", guard(protocol)),
        Route("/api/transfer/manifest", guard(manifest), methods=["POST"]),
        Route("/api/transfer/count", guard(count), methods=["POST"]),
        Route("/api/transfer/stream", guard(stream), methods=["POST"]),
        Route("/api/transfer/receive", guard(receive_begin), methods=["POST"]),
        Route("/api/transfer/receive/{tid}/finish", guard(receive_finish), methods=["POST"]),
        Route("/api/transfer/receive/{tid}/{gid:int}", guard(receive_chunk),
              methods=["POST"]),
        Route("/api/transfer/receive/{tid}", guard(receive_tid), methods=["GET", "DELETE"]),
        Route("/api/transfer/push", guard(push), methods=["POST"]),
        Route("/api/transfer/pull", guard(pull), methods=["POST"]),
        Route("/api/transfer/missing/{uuid}", guard(missing)),
        Route("/api/transfer/jobs", guard(list_jobs)),
        Route("/api/transfer/{jid}", guard(job_info)),
    ]
