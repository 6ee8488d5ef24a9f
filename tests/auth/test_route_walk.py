"""Every route of ``/api/openapi.json``, in every auth mode: without credentials 401, a
valid user without the grant 403, with the grant neither (issue 11).

The document lists the server, repo, node, transfer, docs and auth routes and every
endpoint of one instance of each datatype; each operation's ``x-dvidpy-access`` says what
it needs. Users: ``reader``/``writer``/``radmin`` hold read/write/admin grants on the repo,
``outsider`` holds none, ``curator`` may create repos (``creators``), ``root`` is a server
administrator.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from credentials import ADMIN

from dvidpy.boss.access import collection_root, frame_root
from dvidpy.datatype import datatypes as registered_datatypes
from dvidpy.http.openapi import _paths_of
from dvidpy.http.spec import ACCESS_CLASSES
from server import all_routes

USERS = {"read": "reader@lab.org", "write": "writer@lab.org", "admin": "radmin@lab.org"}
OUTSIDER = "outsider@lab.org"
CURATOR = "curator@lab.org"


def concrete(path: str, op: dict[str, Any], root: str) -> str:
    """``path`` with its parameters filled from their schemas."""
    values = {}
    for p in op.get("parameters", []):
        if p["in"] != "path":
            continue
        sch = p["schema"]
        if p["name"] == "uuid":
            v = root
        elif "enum" in sch:
            v = sch["enum"][0]
        elif ":" in sch.get("pattern", ""):  # a Boss range x0:x1
            v = "0:1"
        elif sch.get("type") == "integer":
            v = "1"
        elif "_[0-9]+)?$" in sch.get("pattern", ""):
            v = "1_1_1"
        elif "_" in sch.get("pattern", ""):
            v = "0_0_0"
        else:
            v = "x"
        values[p["name"]] = v
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)


#: (method, path) of the Boss routes that check access on a resource their path names
BOSS_SCOPED = {(s.method.lower(), path) for s in all_routes() if s.resource is not None
               for path, _ in _paths_of(s)}
FRAME = {"x_start": 0, "x_stop": 64, "y_start": 0, "y_stop": 64, "z_start": 0, "z_stop": 8,
         "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 40,
         "voxel_unit": "nanometers"}


def boss_resources(srv: Any, admin: dict[str, str]) -> None:
    """Boss collection, frame, experiment and channel ``x`` (what :func:`concrete` names
    them), made again when a walked DELETE removed one, with the users' grants on them."""
    c = srv.client
    for path, body in (("/v1/collection/x", {}), ("/v1/coord/x", FRAME),
                       ("/v1/collection/x/experiment/x", {"coord_frame": "x"}),
                       ("/v1/collection/x/experiment/x/channel/x",
                        {"type": "image", "datatype": "uint8"})):
        if c.get(path, headers=admin).status_code == 404:
            r = c.post(path, json=body, headers=admin)
            assert r.status_code == 201, r.text
    repo = c.get("/v1/collection/x/experiment/x", headers=admin).json()["dvid_repo"]
    grants = srv.app.state.server.auth.grants
    for root in (collection_root("x"), frame_root("x"), repo):
        grants.update(root, {f"user:{u}": lv for lv, u in USERS.items()})


@pytest.mark.parametrize("mode", ["token", "authfile", "oidc"])
def test_every_route_needs_its_grant(auth_server: Any, mode: str) -> None:
    srv = auth_server(mode, creators=[CURATOR])
    c = srv.client
    admin = srv.headers(ADMIN)
    root = c.post("/api/repos", json={"alias": "walk"}, headers=admin).json()["root"]
    for t in sorted(registered_datatypes()):
        r = c.post(f"/api/repo/{root}/instance", json={"typename": t, "dataname": f"{t}1"},
                   headers=admin)
        assert r.status_code == 200, r.text
    r = c.post(f"/api/repo/{root}/permissions", headers=admin, json={
        "grants": {f"user:{u}": lv for lv, u in USERS.items()}})
    assert r.status_code == 200, r.text
    boss_resources(srv, admin)
    doc = c.get(f"/api/openapi.json?repo={root}", headers=admin).json()  # its instances
    anonymous_doc = c.get("/api/openapi.json").json()
    assert not any(f"/{t}1/" in p for p in anonymous_doc["paths"] for t in ("keyvalue",)), \
        "instance names of a private repo leak to anonymous callers"
    ops = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]
    assert len(ops) > 150
    checked = dict.fromkeys(ACCESS_CLASSES, 0)
    for path, method, op in ops:
        access = op["x-dvidpy-access"]
        url = concrete(path, op, root)
        repo_scoped = "{uuid}" in path or (method, path) in BOSS_SCOPED
        checked[access] += 1

        def status(user: str | None, method: str = method, url: str = url) -> int:
            code = c.request(method.upper(), url, headers=srv.headers(user)).status_code
            if url.startswith("/v1/") and code == 204:  # a deletion: make it again
                boss_resources(srv, admin)
            return code

        if access == "public":
            assert status(None) not in (401, 403), (method, url)
            continue
        assert status(None) == 401, (method, url, access)
        if repo_scoped:
            assert status(OUTSIDER) == 403, (method, url, access)
            got = status(USERS[access])
        elif access == "read":
            got = status(OUTSIDER)
        elif access == "write":
            assert status(OUTSIDER) == 403, (method, url, access)
            got = status(CURATOR)
        else:
            assert status(OUTSIDER) == 403, (method, url, access)
            got = status(ADMIN)
        assert got not in (401, 403), (method, url, access, got)
        if repo_scoped and access != "read":  # one level below is not enough
            below = "read" if access == "write" else "write"
            assert status(USERS[below]) == 403, (method, url, access)
    assert all(checked.values()), checked  # every access class was exercised
