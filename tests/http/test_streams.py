"""Streamed answers (dvidpy/http/streams.py): one worker thread per answer, coalesced
writes, bounded buffering, lazy validation errors answered as 4xx, disconnects stop work."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dvidpy.errors import BadRequest
from dvidpy.http.router import Dispatcher, Router, ServerState
from dvidpy.http.streams import StreamingResponse, coalesce


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=60), st.integers(1, 1000))
def test_coalesce_keeps_bytes_and_bounds_writes(pieces: list[bytes], chunk: int) -> None:
    out = list(coalesce(pieces, chunk))
    assert b"".join(out) == b"".join(pieces)
    # every write but the last reached the chunk size, is one piece, or was flushed
    # because the next piece is large enough to go out alone
    for w, nxt in itertools.pairwise(out):
        assert len(w) >= chunk or w in pieces or len(nxt) >= chunk


def run(resp: Any, disconnect_after: int | None = None) -> tuple[int, bytes, int]:
    """Status, body and number of body messages of ``resp`` sent to a fake client."""
    msgs: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if disconnect_after is not None:
            while sum(1 for m in msgs if m["type"] == "http.response.body") < disconnect_after:
                await asyncio.sleep(0.001)
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)
        return {}

    async def send(m: dict[str, Any]) -> None:
        msgs.append(m)

    scope = {"type": "http", "method": "GET", "path": "/x", "raw_path": b"/x",
             "headers": [], "query_string": b"", "asgi": {"spec_version": "2.3"}}  # as uvicorn

    async def main() -> None:
        await resp(scope, receive, send)

    asyncio.run(main())
    status = next(m["status"] for m in msgs if m["type"] == "http.response.start")
    bodies = [m.get("body", b"") for m in msgs if m["type"] == "http.response.body"]
    return status, b"".join(bodies), len(bodies)


def test_many_small_pieces_one_thread_few_writes() -> None:
    threads: set[int] = set()

    def gen() -> Any:
        for i in range(10_000):
            threads.add(threading.get_ident())
            yield b"%05d" % i

    status, body, writes = run(StreamingResponse(gen(), chunk=4096))
    assert status == 200 and body == b"".join(b"%05d" % i for i in range(10_000))
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert writes <= 50_000 // 4096 + 3


def test_error_on_first_step_is_a_4xx_through_the_dispatcher() -> None:
    from dvidpy.config import Settings
    from dvidpy.http.spec import make_spec
    from dvidpy.repo import RepoManager

    def gen() -> Any:
        raise BadRequest("bad range")
        yield b""  # pragma: no cover

    def handler(call: Any) -> Any:
        return StreamingResponse(gen())

    settings = Settings.memory()
    state = ServerState(settings, RepoManager(settings))
    d = Dispatcher(None, Router([make_spec("GET", "/x", handler, access="public")]), state)
    status, body, _ = run(d)
    assert status == 400 and body.startswith(b"bad range")


def test_disconnect_stops_the_worker() -> None:
    produced = [0]
    closed = threading.Event()

    def gen() -> Any:
        try:
            for _ in range(10**6):
                produced[0] += 1
                yield b"x" * 1000
        finally:
            closed.set()

    run(StreamingResponse(gen(), chunk=1000), disconnect_after=3)
    assert closed.wait(5)
    time.sleep(0.05)
    assert produced[0] < 1000  # the queue bounded the work done ahead of the client
