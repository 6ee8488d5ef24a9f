"""``GET /api/repo/{uuid}/diff/{from}/{to}``: what changed between two versions
(:mod:`dvidpy.diff`), streamed as one JSON object."""

from __future__ import annotations

import json
from collections.abc import Iterator

from dvidpy.diff import repo_diff
from dvidpy.errors import BadRequest
from dvidpy.http.router import HttpCall
from dvidpy.http.spec import Param, Q
from dvidpy.http.streams import StreamingResponse
from dvidpy.http.table import RouteTable

routes = RouteTable("repo")


@routes.get("/api/repo/{uuid}/diff/{from}/{to}",
            "Keys added, changed and deleted in each instance between two versions",
            params=(Param("uuid", "uuid", "any version of the repo"),
                    Param("from", "uuid", "the older side (any version of the repo)"),
                    Param("to", "uuid", "the newer side (any version of the repo)")),
            query=(Q("data", "str", "comma-separated instance names (default: all)"),))
def repo_diff_route(call: HttpCall) -> StreamingResponse:
    mgr = call.mgr
    repo, _ = mgr.resolve(call.params["uuid"])
    nodes = []
    for side in ("from", "to"):
        try:
            r, n = mgr.resolve(call.params[side])
        except BadRequest as e:
            raise BadRequest(f"diff {side} version: {e.message}") from None
        if r is not repo:
            raise BadRequest(f"diff {side} version {call.params[side]!r} is not in repo "
                             f"{repo.root}")
        nodes.append(n)
    names = [n for n in (call.params.get("data") or "").split(",") if n]
    for n in names:
        if n not in repo.instances:
            raise BadRequest(f"no data instance named {n!r} in repo {repo.root}")
    insts = [repo.instances[n] for n in (names or sorted(repo.instances))]
    a, b = nodes

    def gen() -> Iterator[bytes]:
        yield (f'{{"from":{json.dumps(a.uuid)},"to":{json.dumps(b.uuid)},'
               '"instances":{').encode()
        for i, (name, d) in enumerate(repo_diff(mgr, a, b, insts)):
            yield ((b"," if i else b"") + json.dumps(name).encode() + b":"
                   + json.dumps(d, separators=(",", ":")).encode())
        yield b"}}"

    return StreamingResponse(gen(), media_type="application/json")
