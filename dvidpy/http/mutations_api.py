"""Server-Sent Events of the mutation stream (:mod:`dvidpy.mutations`).

``GET /api/mutations/stream`` (every instance) and
``GET /api/node/{uuid}/{data}/mutations/stream`` (one instance, all its versions) answer
``text/event-stream``: each logged mutation record as ``id: <Sequence>``,
``event: mutation``, ``data: <record JSON>``. The stream starts after the ``Last-Event-ID``
header (or the ``last_event_id`` query parameter; default: the records still in the log),
replays what the log holds, then follows it live with a ``: keepalive`` comment every 15 s
of silence when the client asks for an event stream (``Accept: text/event-stream``, as
``EventSource`` does) or says ``follow=true``; otherwise (or with ``follow=false``) the
answer ends after the replay, so generic HTTP clients get a finite answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from dvidpy.errors import BadRequest
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import Param, Q
from dvidpy.http.table import RouteTable

routes = RouteTable("mutations")
KEEPALIVE = 15.0
EVENT_STREAM = "text/event-stream"
_QUERY = (Q("last_event_id", "uint64", "resume after this sequence number"),
          Q("follow", "bool", "keep the answer open for new records (default: when the "
            "client accepts text/event-stream)"))


def _start(call: HttpCall) -> int:
    raw = call.headers.get("last-event-id")
    if raw is None or raw == "":
        v = call.params.get("last_event_id")
        return int(v) if v is not None else 0
    if not raw.strip().isdigit():
        raise BadRequest(f"Last-Event-ID {raw!r} is not a sequence number")
    return int(raw.strip())


def _event(rec: dict[str, Any]) -> bytes:
    data = json.dumps(rec, separators=(",", ":"))
    return f"id: {rec['Sequence']}\nevent: mutation\ndata: {data}\n\n".encode()


def sse(call: HttpCall, data_uuid: str | None) -> StreamingResponse:
    """The event stream of records (of ``data_uuid`` only, when given)."""
    hub = call.mgr.mutations
    pos = _start(call)
    asked = call.query.get("follow")
    follow = (asked.lower() in ("true", "on", "1") if asked
              else EVENT_STREAM in call.headers.get("accept", ""))

    async def gen() -> AsyncIterator[bytes]:
        nonlocal pos
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def notify(_: int) -> None:
            loop.call_soon_threadsafe(ready.set)

        hub.add_listener(notify)
        hub.start()
        try:
            yield b": dvidpy mutation stream\n\n"
            while True:
                ready.clear()
                recs = await run_in_threadpool(hub.records_after, pos)
                for r in recs:
                    pos = r["Sequence"]
                    if data_uuid is None or r.get("DataUUID") == data_uuid:
                        yield _event(r)
                if recs:
                    continue
                if not follow:
                    return
                try:
                    await asyncio.wait_for(ready.wait(), KEEPALIVE)
                except TimeoutError:
                    yield b": keepalive\n\n"
        finally:
            hub.remove_listener(notify)

    return StreamingResponse(gen(), media_type=EVENT_STREAM,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@routes.get("/api/mutations/stream", "Every mutation record as Server-Sent Events",
            returns=EVENT_STREAM, query=_QUERY)
async def server_stream(call: HttpCall) -> StreamingResponse:
    return sse(call, None)


@routes.get("/api/node/{uuid}/{data}/mutations/stream",
            "One instance's mutation records as Server-Sent Events", returns=EVENT_STREAM,
            query=_QUERY, params=(Param("uuid", "uuid"),
                                  Param("data", "str", "data instance name")))
async def instance_stream(call: HttpCall) -> StreamingResponse:
    repo, _ = call.mgr.resolve(call.params["uuid"])
    inst = call.mgr.instance(repo, call.params["data"])
    return sse(call, inst.meta.data_uuid)
