"""Per-request cost of the HTTP surface, in process (no sockets), against a bare Starlette app.

Run:  python benchmarks/request_path.py [--seconds 2]

Each figure drives the ASGI app directly with a pre-built scope and a no-op ``send``, so it
measures routing, parameter parsing, middleware, handler dispatch and response building,
and nothing of the network. The baseline, measured in the same run, is a bare Starlette
app with one route answering the same bytes: the floor of the framework our server sits on.

Rows: ``GET /api/heartbeat``, ``GET /api/repo/{uuid}/info``, keyvalue ``GET key/{k}`` of a
1 KiB value (memory engine), ``GET .../info`` of an instance, and a 404 (unknown route).
Printed as microseconds per request and as a multiple of the bare app's cost, through the
ASGI app and as answered on the spot (``Dispatcher.answer_now``, what the server's protocol
calls for body-less GET/HEAD requests to inline routes, skipping the ASGI layer).

Not a test: prints numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scope(method: str, path: str) -> dict[str, Any]:
    """A minimal HTTP scope as uvicorn builds it."""
    raw = path.encode()
    p, _, q = raw.partition(b"?")
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": p.decode(),
            "raw_path": p, "query_string": q, "root_path": "", "headers": [
                (b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}


async def drive(app: Any, sc: dict[str, Any], seconds: float) -> tuple[float, int]:
    """Mean seconds per request over ``seconds`` of back-to-back requests; last status."""
    status = [0]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            status[0] = msg["status"]

    for _ in range(200):  # warm up
        await app(dict(sc), receive, send)
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(100):
            await app(dict(sc), receive, send)
        n += 100
        t = time.perf_counter()
        if t >= deadline:
            return (t - t0) / n, status[0]


def spot(dispatcher: Any, sc: dict[str, Any], seconds: float) -> float:
    """Mean seconds per request of ``Dispatcher.answer_now`` (the protocol's path for
    body-less reads of inline routes: no task, no ASGI messages), as ``drive`` times."""
    assert dispatcher.answer_now(dict(sc)) is not None, sc["path"]
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(100):
            dispatcher.answer_now(dict(sc))
        n += 100
        t = time.perf_counter()
        if t >= deadline:
            return (t - t0) / n


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    value = b"x" * 1024

    async def handler(request: Any) -> Response:
        return Response(value, media_type="application/octet-stream")

    return Starlette(routes=[Route("/api/node/{uuid}/{data}/key/{key}", handler)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()

    from starlette.testclient import TestClient

    from dvidpy.config import Settings
    from server import create_app

    app = create_app(Settings.memory())
    with TestClient(app) as c:  # runs the lifespan, builds the repo
        root = c.post("/api/repos", json={"alias": "bench"}).json()["root"]
        c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
        c.post(f"/api/node/{root}/kv/key/k1", content=b"x" * 1024)
        assert c.get(f"/api/node/{root}/kv/key/k1").content == b"x" * 1024

        async def run() -> None:
            base, st = await drive(bare_app(), scope("GET", f"/api/node/{root}/kv/key/k1"),
                                   args.seconds)
            print(f"bare Starlette, one route, 1 KiB answer: {base * 1e6:7.1f} us/request "
                  f"(status {st})")
            rows = [
                ("GET /api/heartbeat", scope("GET", "/api/heartbeat")),
                ("GET /api/repo/{uuid}/info", scope("GET", f"/api/repo/{root}/info")),
                ("GET keyvalue key/{k} (1 KiB)", scope("GET", f"/api/node/{root}/kv/key/k1")),
                ("GET instance info", scope("GET", f"/api/node/{root}/kv/info")),
                ("GET unknown route (404)", scope("GET", "/api/nosuch/route")),
            ]
            for name, sc in rows:
                t, st = await drive(app, sc, args.seconds)
                now = spot(app.dispatcher, sc, args.seconds)
                print(f"{name:32s} {t * 1e6:7.1f} us/request = {t / base:5.2f}x bare "
                      f"(status {st}); answered on the spot {now * 1e6:6.1f} us = "
                      f"{now / base:5.2f}x bare")

        asyncio.run(run())


if __name__ == "__main__":
    main()
